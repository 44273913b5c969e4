/**
 * `npm start`: metallb-ts running on this machine. There is no kube-apiserver here, so the
 * cluster is the API server double (test/apiserver) with the project's manifests installed,
 * and the controller is two real `dist/webhook/main.js` processes behind the webhook Service,
 * exactly as the end-to-end tests run them. An example pool is configured; then it waits for
 * you to use kubectl against it, until Ctrl-C.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { E2ECluster, NAMESPACE } from '../e2e/support.js';

const EXAMPLE_POOL = {
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { name: 'demo', namespace: NAMESPACE },
  spec: { addresses: ['203.0.113.0/28', '2001:db8:100::/120'] },
};

async function main(): Promise<void> {
  process.stderr.write('starting the API server double and two controller replicas...\n');
  const cluster = await E2ECluster.start();
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nstopping...\n');
    await cluster.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    await cluster.startController();
    await cluster.startController();
    await cluster.leader();
    const objects = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    await objects.createNamespacedCustomObject({ group: 'metallb.io', version: 'v1beta1', namespace: NAMESPACE, plural: 'ipaddresspools', body: EXAMPLE_POOL });
  } catch (err) {
    process.stderr.write(`error: could not start: ${(err as Error).message.split('\n')[0]}\n`);
    await stop(1);
    return;
  }

  const kubeconfig = cluster.api.kubeconfigPath;
  process.stdout.write(
    [
      '',
      'metallb-ts is running: an API server double with two controller replicas (webhook + reconcile loop).',
      `Pool "demo": ${EXAMPLE_POOL.spec.addresses.join(', ')}`,
      '',
      'In another terminal:',
      `  export KUBECONFIG=${kubeconfig}`,
      `  export PATH="${process.cwd()}/plugin/bin:$PATH"`,
      '  kubectl create service loadbalancer web --tcp=80:8080',
      '  kubectl get svc web            # EXTERNAL-IP is there from the moment it exists',
      '  kubectl describe svc web       # events from the controller',
      '  kubectl get ipaddresspools,ipclaims -A',
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

void main();
