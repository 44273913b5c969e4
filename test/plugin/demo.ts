/**
 * Runs the plugin tests' cluster until interrupted, for trying `kubectl metallb` by hand (and
 * for the README's examples): `npm run build && node dist/test/plugin/demo.js`, then
 * `export KUBECONFIG=...` as printed and `PATH=$PWD/plugin/bin:$PATH kubectl metallb pools`.
 */
import { startPluginCluster } from './cluster.js';

const c = await startPluginCluster();
process.stdout.write(`export KUBECONFIG=${c.cluster.api.kubeconfigPath}\n`);
const stop = () => {
  void c.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
