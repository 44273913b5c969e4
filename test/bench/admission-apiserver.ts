/**
 * The admission bench's API server double, in a worker thread of the bench's process (see
 * admission.ts): the project's manifests installed as the end-to-end tests install them
 * (namespace, CRDs, RBAC, webhook configurations), a second token that authenticates as the
 * controller's ServiceAccount (CONTROLLER_USER, as test/e2e/support.ts does) and a kubeconfig for
 * it, the webhook Service routed to whichever controller process the bench says, the request
 * counters, and the cluster-wide invariant checker of test/e2e/invariants.ts.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { startApiServer } from '../apiserver/index.js';
import { writeKubeconfig } from '../apiserver/kubeconfig.js';
import { checkInvariants, clusterObjects, formatViolations } from '../e2e/invariants.js';
import { CONTROLLER_USER, manifestObjects } from '../e2e/support.js';
import { NAMESPACE, SERVICE_CIDR_V4, WEBHOOK_SERVICE, type FromApiServer, type ToApiServer } from './admission-protocol.js';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('admission-apiserver runs as a worker thread of admission.js');
  const send = (m: FromApiServer) => port.postMessage(m);
  const controllerToken = randomBytes(24).toString('hex');
  const api = await startApiServer({ users: { [controllerToken]: CONTROLLER_USER }, serviceNetwork: { ipv4Cidr: SERVICE_CIDR_V4 } });
  const controllerKubeconfigPath = join(api.dir, 'controller.kubeconfig');
  await writeKubeconfig(controllerKubeconfigPath, { server: api.url, token: controllerToken, ...(api.caPem ? { caPem: api.caPem } : {}) });
  for (const o of manifestObjects()) await api.store.create(o);
  await api.settle();

  port.on('message', (m: ToApiServer) => {
    switch (m.op) {
      case 'route':
        api.routeService(NAMESPACE, WEBHOOK_SERVICE, 443, { host: '127.0.0.1', port: m.port });
        send({ op: 'routed' });
        break;
      case 'counts': {
        const rows = api.requests.rows();
        const total = api.requests.total;
        if (m.reset) api.resetRequestCounts();
        send({ op: 'counts', rows, total });
        break;
      }
      case 'invariants': {
        const { services, claims } = clusterObjects(api);
        const violations = checkInvariants(services, claims);
        send({ op: 'invariants', violations: violations.length > 0 ? formatViolations(violations).split('\n') : [], services: services.length, claims: claims.length });
        break;
      }
      case 'stop':
        void api.stop().then(() => send({ op: 'stopped' }));
        break;
      default:
        break;
    }
  });
  send({ op: 'ready', kubeconfigPath: api.kubeconfigPath, controllerKubeconfigPath });
}

main().catch((e: unknown) => {
  // Rethrown outside the promise so that the main thread's 'error' handler sees it.
  setImmediate(() => {
    throw e;
  });
});
