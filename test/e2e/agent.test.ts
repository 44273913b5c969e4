/**
 * The node agent end to end: real `dist/agent/main.js` processes (one per node name, all on
 * this machine) against the API server double with the project's manifests and a real
 * controller assigning the IPs. The speaker is told to answer only on an interface no machine
 * has (the L2Advertisement's `interfaces`), so no packet leaves and no privilege is needed; the
 * packets themselves are the network lab's business.
 *
 * - flags: bad ones exit 2 in one line, an unreachable API server or a missing Node exit 1;
 * - without gossip: one node publishes each Service's ServiceL2Status (kubectl shows it) and the
 *   nodeAssigned event; the status moves when the owner's Node goes NotReady; SIGTERM exits 0;
 * - with gossip (the key the controller made, on 127.0.0.x addresses): SIGKILL the owner and
 *   another node takes over within seconds, no Node changing;
 * - a bad configuration landing past admission keeps the last good one, reported;
 * - API faults (watches closed, history compacted, 500s) take nothing away.
 */
import { createSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClientKube, RESOURCES, type KubeObject } from '../../kube/client.js';
import { MEMBERLIST_SECRET, MEMBERLIST_SECRET_KEY } from '../../kube/memberlist.js';
import { SERVICE_L2_STATUSES } from '../../agent/status.js';
import { eventually, kubeConfigFor, kubectl } from '../apiserver/testing.js';
import { AgentProcess, runAgent } from '../agent/process.js';
import { E2ECluster, ingressIPs, NAMESPACE } from './support.js';

const NODES = { group: '', version: 'v1', plural: 'nodes', namespaced: false } as const;
const POOLS = { group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true } as const;
const L2ADS = { group: 'metallb.io', version: 'v1beta1', plural: 'l2advertisements', namespaced: true } as const;

/** Node name -> the loopback address it "has" (gossip binds there). */
const NODE_ADDRESSES: Record<string, string> = { 'node-1': '127.0.0.11', 'node-2': '127.0.0.12', 'node-3': '127.0.0.13' };
const NAMES = Object.keys(NODE_ADDRESSES);

let cluster: E2ECluster;
let kube: ClientKube;
let keyFile: string;
let gossipPort: number;
const agents: AgentProcess[] = [];

function nodeObject(name: string, ready: boolean): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: {
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastHeartbeatTime: new Date().toISOString() }],
      addresses: [{ type: 'InternalIP', address: NODE_ADDRESSES[name] }],
    },
  };
}

const setReady = (name: string, ready: boolean) => kube.patch(NODES, name, undefined, { status: nodeObject(name, ready).status }, { subresource: 'status' });

/** A UDP port free on the nodes' addresses. */
async function freeUdpPort(): Promise<number> {
  for (;;) {
    const s = createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, NODE_ADDRESSES['node-1'], () => resolve(s.address().port));
    });
    s.close();
    let free = true;
    for (const address of Object.values(NODE_ADDRESSES).slice(1)) {
      const t = createSocket('udp4');
      free = await new Promise<boolean>((resolve) => {
        t.once('error', () => resolve(false));
        t.bind(port, address, () => resolve(true));
      });
      t.close();
    }
    if (free) return port;
  }
}

beforeAll(async () => {
  cluster = await E2ECluster.start();
  kube = new ClientKube(kubeConfigFor(cluster.api));
  await cluster.startController();
  for (const name of NAMES) await kube.create(NODES, nodeObject(name, true));
  await kube.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  await kube.create(POOLS, { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'lan', namespace: NAMESPACE }, spec: { addresses: ['203.0.113.0/28'] } });
  // An interface no machine has: the speaker opens no socket and sends nothing from this host.
  await kube.create(L2ADS, { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'lan', namespace: NAMESPACE }, spec: { interfaces: ['mlb-e2e-none'] } });
  // The membership key the controller made, where the kubelet would mount it.
  const secret = await eventually(() => kube.get(RESOURCES.secrets, MEMBERLIST_SECRET, NAMESPACE), 10_000, 'the controller to create the memberlist Secret');
  keyFile = join(cluster.api.dir, 'memberlist-secretkey');
  await writeFile(keyFile, Buffer.from((secret.data as Record<string, string>)[MEMBERLIST_SECRET_KEY] ?? '', 'base64'));
  gossipPort = await freeUdpPort();
}, 60_000);

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  for (const name of NAMES) await setReady(name, true);
}, 30_000);

afterAll(async () => {
  kube?.close();
  await cluster?.stop();
}, 30_000);

/** Starts an agent per node name and waits until all are ready. */
async function startAgents(names: string[], options: { gossip?: boolean } = {}): Promise<AgentProcess[]> {
  const started = names.map((node) => {
    const args = [`--kubeconfig=${cluster.api.kubeconfigPath}`, `--node-name=${node}`, `--namespace=${NAMESPACE}`, '--metrics-bind-address=127.0.0.1', '--metrics-port=0'];
    if (options.gossip) args.push(`--memberlist-key-file=${keyFile}`, `--memberlist-bind-address=${NODE_ADDRESSES[node] ?? ''}`, `--memberlist-port=${gossipPort}`);
    const p = new AgentProcess(node, args, { env: { METALLB_ML_SECRET_KEY: '', METALLB_ML_SECRET_KEY_PATH: '', POD_IP: '', HOST_IP: '' } });
    agents.push(p);
    return p;
  });
  await Promise.all(started.map((p) => p.waitUntil(() => p.ready, 'ready', 20_000)));
  return started;
}

let serviceCount = 0;
/** A LoadBalancer Service in shop, waited on until the controller has given it an IP. */
async function service(): Promise<{ name: string; ip: string }> {
  const name = `web-${++serviceCount}`;
  await kube.create(RESOURCES.services, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop' },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] },
  });
  // A ready endpoint somewhere: a Cluster-policy Service is announced only while it has one.
  await kube.create(
    { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, namespace: 'shop', labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'], nodeName: 'node-1', conditions: { ready: true } }],
    },
  );
  const ip = await eventually(async () => ingressIPs((await kube.get(RESOURCES.services, name, 'shop')) as never)[0], 10_000, `an IP for ${name}`);
  return { name, ip };
}

const statusesOf = async (name: string) =>
  (await kube.list(SERVICE_L2_STATUSES, { namespace: NAMESPACE, labelSelector: `metallb.io/service-namespace=shop,metallb.io/service-name=${name}` })).items;

/** Waits until the Service has exactly one ServiceL2Status, on a node `accept` likes; returns the node. */
function statusNode(name: string, accept: (node: string) => boolean = () => true, timeoutMs = 10_000): Promise<string> {
  return eventually(
    async () => {
      const items = await statusesOf(name);
      const node = (items[0]?.status as { node?: string } | undefined)?.node;
      return items.length === 1 && node && accept(node) ? node : undefined;
    },
    timeoutMs,
    `one ServiceL2Status for shop/${name}`,
  );
}

describe('flags and start-up errors', () => {
  test.each([
    [['--node-name=n', '--metrics-port=99999'], /--metrics-port must be a port number/],
    [['--node-name=n', '--no-such-flag'], /Unknown option '--no-such-flag'/],
    [[], /no node name: pass --node-name or set NODE_NAME/],
    [['--node-name=n', '--kubeconfig=/nonexistent/kubeconfig'], /cannot load the kubeconfig \/nonexistent\/kubeconfig/],
  ])('%j exits 2 with one line', async (args, message) => {
    const r = await runAgent(args);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(message);
  });

  test('--help prints every flag and exits 0', async () => {
    const r = await runAgent(['--help']);
    expect(r.code).toBe(0);
    for (const f of [
      '--node-name',
      '--kubeconfig',
      '--namespace',
      '--metrics-port',
      '--memberlist-port',
      '--memberlist-bind-address',
      '--memberlist-key-file',
      '--lb-class',
      '--log-level',
    ])
      expect(r.output).toContain(f);
  });

  test('a Node that does not exist, or an unreachable API server: one line, exit 1', async () => {
    const missing = await runAgent([`--kubeconfig=${cluster.api.kubeconfigPath}`, '--node-name=no-such-node', '--metrics-port=0']);
    expect(missing.code).toBe(1);
    expect(missing.lines).toEqual([expect.stringMatching(/^metallb-ts agent: node no-such-node does not exist on https:\/\/.*; is --node-name/)]);
    const path = join(cluster.api.dir, 'unreachable.kubeconfig');
    await writeFile(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    const unreachable = await runAgent([`--kubeconfig=${path}`, '--node-name=node-1', '--metrics-port=0']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.lines).toEqual([expect.stringMatching(/^metallb-ts agent: cannot reach the API server https:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/)]);
  });

  test('a membership key shorter than 16 bytes: one line, exit 1', async () => {
    const short = join(cluster.api.dir, 'short-key');
    await writeFile(short, 'tooshort\n');
    const r = await runAgent([
      `--kubeconfig=${cluster.api.kubeconfigPath}`,
      '--node-name=node-1',
      `--memberlist-key-file=${short}`,
      '--memberlist-bind-address=127.0.0.11',
      '--metrics-port=0',
    ]);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([expect.stringMatching(/the membership key in .*short-key is 8 bytes; it needs at least 16/)]);
  });
});

describe('without gossip (liveness from Node readiness)', () => {
  test('one node publishes the ServiceL2Status and nodeAssigned; it moves when that Node goes NotReady; SIGTERM exits 0', async () => {
    const list = await startAgents(NAMES);
    const { name, ip } = await service();
    const owner = await statusNode(name);
    const [status] = await statusesOf(name);
    expect(status?.metadata.labels).toEqual({ 'metallb.io/node': owner, 'metallb.io/service-name': name, 'metallb.io/service-namespace': 'shop' });
    expect(status?.status).toEqual({ node: owner, serviceName: name, serviceNamespace: 'shop', interfaces: [{ name: 'mlb-e2e-none' }] });
    // How an operator finds the announcing node.
    const table = await kubectl(cluster.api, ['get', 'servicel2status', '-A']);
    expect(table.stdout).toMatch(/NAMESPACE\s+NAME\s+ALLOCATED NODE\s+SERVICE NAME\s+SERVICE NAMESPACE\s+AGE/);
    expect(table.stdout).toMatch(new RegExp(`${NAMESPACE}\\s+shop\\.${name}\\.${owner}\\s+${owner}\\s+${name}\\s+shop\\s`));
    const event = await eventually(
      async () =>
        (await kube.list(RESOURCES.events, { namespace: 'shop' })).items.find(
          (e) => (e as { reason?: string }).reason === 'nodeAssigned' && (e as { involvedObject?: { name?: string } }).involvedObject?.name === name,
        ),
      5000,
      'the nodeAssigned event',
    );
    expect((event as { message?: string }).message).toBe(`announcing from node "${owner}" with protocol "layer2"`);
    // Only the owner says it announces the IP.
    const announced = await Promise.all(
      list.map(async (a) => (await a.metrics()).includes(`metallb_speaker_announced{protocol="layer2",service="shop/${name}",node="${a.node}",ip="${ip}"} 1`)),
    );
    expect(list.filter((_, i) => announced[i]).map((a) => a.node)).toEqual([owner]);

    await setReady(owner, false);
    const next = await statusNode(name, (n) => n !== owner);
    expect(next).not.toBe(owner);

    const codes = await Promise.all(list.map((a) => a.stop()));
    expect(codes).toEqual([0, 0, 0]);
    for (const a of list) expect(a.output).toMatch(/ stopped\n/);
  }, 60_000);
});

describe('with gossip', () => {
  test('SIGKILL the owner: another node takes over within seconds, no Node changing', async () => {
    const list = await startAgents(NAMES, { gossip: true });
    const { name } = await service();
    const owner = await statusNode(name);
    const victim = list.find((a) => a.node === owner) as AgentProcess;
    const metrics = await list.find((a) => a !== victim)!.metrics();
    expect(metrics).toMatch(/^metallb_agent_membership_enabled_bool 1$/m);
    expect(metrics).toMatch(/^metallb_agent_alive_nodes 3$/m);
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    const next = await statusNode(name, (n) => n !== owner, 10_000);
    const tookMs = Date.now() - killedAt;
    process.stderr.write(`gossip failover: ${owner} killed, ${next} published its status after ${tookMs} ms\n`);
    expect(tookMs).toBeLessThan(5000);
    const after = await list.find((a) => a.node === next)!.metrics();
    expect(after).toMatch(/^metallb_agent_alive_nodes 2$/m);
  }, 60_000);
});

describe('configuration and faults', () => {
  test('a bad configuration landing past admission keeps the last good one, reported by every agent', async () => {
    const list = await startAgents(NAMES, { gossip: true });
    const { name } = await service();
    const owner = await statusNode(name);
    await cluster.api.store.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'broken', namespace: NAMESPACE },
      spec: { addresses: ['203.0.113.0/33'] },
    });
    try {
      for (const a of list) {
        const state = await eventually(async () => {
          const s = await kube.get(RESOURCES.configurationStates, `agent-${a.node}`, NAMESPACE);
          return (s?.status as { result?: string } | undefined)?.result === 'Invalid' ? s : undefined;
        }, 5000);
        expect((state.status as { errors: string[] }).errors.join('\n')).toMatch(/broken.*203\.0\.113\.0\/33/);
        const m = await a.metrics();
        expect(m).toMatch(/^metallb_k8s_client_config_stale_bool 1$/m);
        expect(m).toMatch(/^metallb_k8s_client_config_loaded_bool 1$/m);
      }
      // Still announced, and a new Service (the controller allocates from its last good one) too.
      expect(await statusNode(name)).toBe(owner);
      const later = await service();
      await statusNode(later.name);
    } finally {
      await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'broken', NAMESPACE);
    }
    await eventually(async () => ((await kube.get(RESOURCES.configurationStates, 'agent-node-1', NAMESPACE))?.status as { result?: string } | undefined)?.result === 'Valid', 5000);
  }, 60_000);

  test('API faults (watches closed, history compacted, 500s) take nothing away', async () => {
    await startAgents(NAMES, { gossip: true });
    const { name } = await service();
    const owner = await statusNode(name);
    const before = (await kube.list(SERVICE_L2_STATUSES, { namespace: NAMESPACE })).items.map((o) => o.metadata.uid).sort();
    cluster.api.resetRequestCounts();
    cluster.api.closeWatches();
    cluster.api.forceWatchExpiry();
    const lists = cluster.api.faults.inject({ verb: 'list', count: 10, fault: { status: 500 } });
    const watches = cluster.api.faults.inject({ verb: 'watch', count: 10, fault: { status: 503 } });
    try {
      await lists.hit(3);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      lists.remove();
      watches.remove();
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(cluster.api.requests.count({ verb: 'delete', resource: 'servicel2statuses' })).toBe(0);
    expect((await kube.list(SERVICE_L2_STATUSES, { namespace: NAMESPACE })).items.map((o) => o.metadata.uid).sort()).toEqual(before);
    expect(await statusNode(name)).toBe(owner);
    // The watches came back: a new Service is published.
    const later = await service();
    await statusNode(later.name);
  }, 60_000);
});
