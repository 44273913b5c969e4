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
 * As root it also brings up the layer-2 lab (test/lab): a LAN (a Linux bridge) with three node
 * network namespaces, each running a real agent against the double (with matching Node
 * objects), and a client namespace, and prints `client namespace: NAME` and
 * `LAN: BRIDGE IPV4-CIDR IPV6-CIDR`. Without root it runs the control plane alone and says why.
 *
 * It stops everything (SIGTERM to the controllers, SIGKILL after 5 s; the API double; its temp
 * directory with the kubeconfigs) on SIGINT, SIGTERM or SIGHUP sent to this process alone, not
 * only on Ctrl-C to the whole process group, and also when its parent goes away: `npm start`
 * runs this under `sh -c`, and a SIGTERM that npm forwards kills that shell without reaching us.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { E2ECluster, NAMESPACE, type ControllerProcess } from '../e2e/support.js';
import { LabCluster, POOL4, POOL6 } from '../lab/cluster.js';
import { labUnavailable, LAN4, LAN6 } from '../lab/lab.js';

const REPLICAS = 2;

const EXAMPLE_POOL = {
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { name: 'demo', namespace: NAMESPACE },
  spec: { addresses: [POOL4, POOL6] },
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
  const noLab = await labUnavailable();
  process.stderr.write(`starting the API server double, ${REPLICAS} controller replicas${noLab ? '' : ' and the layer-2 lab (3 nodes with an agent each, a client)'}...\n`);
  if (noLab) process.stderr.write(`no layer-2 lab: ${noLab}; running the control plane alone\n`);
  const logAgent = (node: string, line: string) => process.stderr.write(`[agent ${node}] ${line}\n`);
  let running: { cluster: E2ECluster; lab?: LabCluster } | undefined;
  let stopping: Promise<void> | undefined;
  const watch = (p: ControllerProcess) => {
    prefixLogs(p);
    void p.exited.then(({ code, signal }) => {
      if (!stopping) process.stderr.write(`[${p.identity}] exited (${signal ?? `code ${String(code)}`})\n`);
    });
  };
  const starting: Promise<{ cluster: E2ECluster; lab?: LabCluster }> = noLab
    ? E2ECluster.start().then((cluster) => ({ cluster }))
    : LabCluster.start({ controllers: REPLICAS, onController: (p) => watch(p), log: logAgent }).then((lab) => ({ cluster: lab.cluster, lab }));
  const stop = (why: string, code: number): Promise<void> => {
    stopping ??= (async () => {
      process.stderr.write(`\n${why}: stopping ${running?.lab ? 'the agents, the lab, ' : ''}the controllers and the API server double...\n`);
      const force = setTimeout(() => {
        process.stderr.write(`not stopped after ${STOP_TIMEOUT_MS / 1000} s; exiting anyway\n`);
        for (const r of running?.cluster.replicas ?? []) r.kill('SIGKILL');
        for (const a of running?.lab?.agents.values() ?? []) a.kill('SIGKILL');
        process.exit(1);
      }, STOP_TIMEOUT_MS);
      // A signal during start-up: the double (and its temp directory) exists once start resolves.
      running ??= await starting.catch(() => undefined);
      // Never throws: the agents and the lab's namespaces, the replicas, then the double and its temp directory.
      if (running?.lab) await running.lab.stop();
      else await running?.cluster.stop();
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

  try {
    running = await starting;
    const { cluster } = running;
    if (!running.lab) {
      const started: ControllerProcess[] = [];
      for (let i = 0; i < REPLICAS; i++) {
        if (stopping) return;
        const p = await cluster.startController([], { identity: `controller-${i}`, wait: false });
        watch(p);
        started.push(p);
      }
      await Promise.all(started.map((p) => p.waitUntil(() => p.ready && p.metricsPort !== undefined, 'ready', 30_000)));
      await cluster.leader();
      const objects = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
      await objects.createNamespacedCustomObject({ group: 'metallb.io', version: 'v1beta1', namespace: NAMESPACE, plural: 'ipaddresspools', body: EXAMPLE_POOL });
    }
  } catch (err) {
    process.stderr.write(`error: could not start: ${(err as Error).message.split('\n')[0] ?? ''}\n`);
    await stop('start-up failed', 1);
    return;
  }
  if (stopping) return;

  const { cluster, lab } = running;
  const kubeconfig = cluster.api.kubeconfigPath;
  const client = lab?.lab.client.netns ?? '';
  const labLines = lab
    ? [
        ...lab.lab.nodes.map((n) => {
          const a = lab.agents.get(n.name);
          return `agent ${n.name}: pid ${String(a?.child.pid)}, namespace ${n.netns}, ${n.address4} ${n.address6} MAC ${n.mac}, metrics http://${n.address4}:${String(a?.metricsPort)}/metrics`;
        }),
        `client namespace: ${client}`,
        `LAN: ${lab.lab.bridge} ${LAN4} ${LAN6}`,
        `  (the host is .1; attach further hosts, e.g. a router, to ${lab.lab.bridge} at .200 and up)`,
      ]
    : [];
  const labUsage = lab
    ? [
        '  # endpoints, as the endpoint controller would write them (no kubelet runs here):',
        '  kubectl apply -f - <<EOF',
        '  {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",',
        '   "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},',
        '   "endpoints": [{"addresses": ["192.0.2.10"], "conditions": {"ready": true}, "nodeName": "node-1"}],',
        '   "ports": [{"name": "80-8080", "port": 8080, "protocol": "TCP"}]}',
        '  EOF',
        '  kubectl get servicel2status -A          # the node announcing web',
        `  ip netns exec ${client} arping -c 3 -i eth0 IP     # answered by that node's MAC`,
        `  ip netns exec ${client} ping -c 3 IP`,
        `  kill -9 PID-OF-THAT-AGENT                # and watch the IP move (arping again)`,
      ]
    : [];
  process.stdout.write(
    [
      '',
      `API server double: ${cluster.api.url}`,
      ...cluster.replicas.map((r) => `${r.identity}: pid ${String(r.child.pid)}, metrics http://127.0.0.1:${String(r.metricsPort)}/metrics`),
      `Pool "demo": ${EXAMPLE_POOL.spec.addresses.join(', ')}`,
      ...labLines,
      ...(noLab ? [`No layer-2 lab (${noLab}): IPs are assigned, nothing answers ARP/NDP for them.`] : []),
      '',
      'In another terminal:',
      `  export KUBECONFIG=${kubeconfig}`,
      `  export PATH="${process.cwd()}/plugin/bin:$PATH"`,
      '  kubectl create service loadbalancer web --tcp=80:8080',
      '  kubectl get svc web            # EXTERNAL-IP is there from the moment it exists',
      '  kubectl describe svc web       # events from the controller',
      '  kubectl get ipaddresspools,ipclaims -A',
      ...labUsage,
      '',
      `Logs follow on stderr, prefixed [controller-0] ... [controller-${REPLICAS - 1}]${lab ? ' and [agent node-N]' : ''}.`,
      'Ctrl-C (or SIGTERM to this process) stops everything and removes the temp directory.',
      `metallb-ts is running: an API server double with ${REPLICAS} controller replicas (webhook + reconcile loop)${lab ? ` and ${lab.agents.size} node agents on the layer-2 lab` : ''}.`,
      '',
    ].join('\n'),
  );
}

void main();
