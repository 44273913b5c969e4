/**
 * `npm start`: metallb-ts running on this machine. There is no kube-apiserver here, so the
 * cluster is the API server double (test/apiserver) with the project's manifests installed,
 * and the controller is two real `dist/webhook/main.js` processes behind the webhook Service,
 * exactly as the end-to-end tests run them. An example pool is configured; then it waits for
 * you to use kubectl against it.
 *
 * Output: the controllers' logs on stderr, each line prefixed by its replica
 * (`[controller-0] ...`); on stdout, once everything is up, the KUBECONFIG to use, each
 * replica's pid and metrics URL, and the line `metallb-ts is running` (what a test waits for).
 *
 * It stops everything (SIGTERM to the controllers, SIGKILL after 5 s; the API double; its temp
 * directory with the kubeconfigs) on SIGINT, SIGTERM or SIGHUP sent to this process alone, not
 * only on Ctrl-C to the whole process group, and also when its parent goes away: `npm start`
 * runs this under `sh -c`, and a SIGTERM that npm forwards kills that shell without reaching us.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { E2ECluster, NAMESPACE, type ControllerProcess } from '../e2e/support.js';

const REPLICAS = 2;

const EXAMPLE_POOL = {
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { name: 'demo', namespace: NAMESPACE },
  spec: { addresses: ['203.0.113.0/28', '2001:db8:100::/120'] },
};

/** How often the parent is checked (a SIGTERM to `npm start` kills the shell between npm and us). */
const PARENT_CHECK_MS = 500;
/** Past this, stopping gives up waiting and exits anyway. */
const STOP_TIMEOUT_MS = 15_000;

/** Copies a replica's output to our stderr, one `[identity] line` per line. */
function prefixLogs(p: ControllerProcess): void {
  for (const stream of [p.child.stdout, p.child.stderr]) {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) process.stderr.write(`[${p.identity}] ${line}\n`);
    });
    stream?.on('end', () => {
      if (partial) process.stderr.write(`[${p.identity}] ${partial}\n`);
      partial = '';
    });
  }
}

async function main(): Promise<void> {
  process.stderr.write(`starting the API server double and ${REPLICAS} controller replicas...\n`);
  const starting = E2ECluster.start();
  let cluster: E2ECluster | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (why: string, code: number): Promise<void> => {
    stopping ??= (async () => {
      process.stderr.write(`\n${why}: stopping the controllers and the API server double...\n`);
      const force = setTimeout(() => {
        process.stderr.write(`not stopped after ${STOP_TIMEOUT_MS / 1000} s; exiting anyway\n`);
        for (const r of cluster?.replicas ?? []) r.kill('SIGKILL');
        process.exit(1);
      }, STOP_TIMEOUT_MS);
      // A signal during start-up: the double (and its temp directory) exists once start resolves.
      cluster ??= await starting.catch(() => undefined);
      await cluster?.stop(); // never throws: the replicas, then the double and its temp directory
      clearTimeout(force);
      process.stderr.write('stopped\n');
      process.exit(code);
    })();
    return stopping;
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(signal, 0));
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stop('the parent process is gone', 0);
  }, PARENT_CHECK_MS).unref();

  let replicas: ControllerProcess[];
  try {
    cluster = await starting;
    const started: ControllerProcess[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      if (stopping) return;
      const p = await cluster.startController([], { identity: `controller-${i}`, wait: false });
      prefixLogs(p);
      void p.exited.then(({ code, signal }) => {
        if (!stopping) process.stderr.write(`[${p.identity}] exited (${signal ?? `code ${String(code)}`})\n`);
      });
      started.push(p);
    }
    await Promise.all(started.map((p) => p.waitUntil(() => p.ready && p.metricsPort !== undefined, 'ready', 30_000)));
    replicas = started;
    await cluster.leader();
    const objects = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    await objects.createNamespacedCustomObject({ group: 'metallb.io', version: 'v1beta1', namespace: NAMESPACE, plural: 'ipaddresspools', body: EXAMPLE_POOL });
  } catch (err) {
    process.stderr.write(`error: could not start: ${(err as Error).message.split('\n')[0] ?? ''}\n`);
    await stop('start-up failed', 1);
    return;
  }
  if (stopping) return;

  const kubeconfig = cluster.api.kubeconfigPath;
  process.stdout.write(
    [
      '',
      `API server double: ${cluster.api.url}`,
      ...replicas.map((r) => `${r.identity}: pid ${String(r.child.pid)}, metrics http://127.0.0.1:${String(r.metricsPort)}/metrics`),
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
      `Controller logs follow on stderr, prefixed [controller-0] ... [controller-${REPLICAS - 1}].`,
      'Ctrl-C (or SIGTERM to this process) stops everything and removes the temp directory.',
      `metallb-ts is running: an API server double with ${REPLICAS} controller replicas (webhook + reconcile loop).`,
      '',
    ].join('\n'),
  );
}

void main();
