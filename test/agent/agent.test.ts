/**
 * The agent in-process against the API server double, with a recording speaker: which node
 * announces what, the ServiceL2Status objects and nodeAssigned events it publishes, liveness
 * from Node readiness or the gossip, the last good configuration, and API faults that must take
 * nothing away.
 */
import { RESOURCES } from '../../kube/client.js';
import { LAST_GOOD_CONFIG_MAP } from '../../kube/config.js';
import { FaultyKube } from '../../kube/testing.js';
import { LABEL_NODE, LABEL_SERVICE_NAME, LABEL_SERVICE_NAMESPACE, SERVICE_L2_STATUSES } from '../../agent/status.js';
import { eventually } from '../apiserver/testing.js';
import {
  CONFIG,
  configure,
  endpoints,
  FakeMembership,
  lbService,
  metricValue,
  namespace,
  NODES,
  NS,
  PODS,
  putNode,
  startAgent,
  startCluster,
  statusesOf,
  statusOn,
  type Cluster,
  type TestAgent,
} from './support.js';

let c: Cluster;
const running: TestAgent[] = [];

beforeAll(async () => {
  c = await startCluster();
  for (const n of ['node-a', 'node-b', 'node-c']) await putNode(c, n);
  await configure(c);
}, 30_000);

afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop()));
});

afterAll(async () => {
  await c?.stop();
});

/** One agent that alone is alive (its gossip knows only itself), so it announces everything. */
const alone = (): Parameters<typeof startAgent>[2] => ({ membership: new FakeMembership(['node-a']) });

async function agents(names: string[], options: Parameters<typeof startAgent>[2] = {}): Promise<TestAgent[]> {
  const started = await Promise.all(names.map((n) => startAgent(c, n, options)));
  running.push(...started);
  return started;
}

/** Waits until exactly one of the agents announces `ip`; returns its node name. */
async function ownerOf(list: TestAgent[], names: string[], ip: string, timeoutMs = 10_000): Promise<string> {
  return eventually(
    () => {
      const owners = names.filter((_, i) => list[i]?.speaker.current.has(ip));
      return owners.length === 1 ? owners[0] : undefined;
    },
    timeoutMs,
    `one agent announcing ${ip}`,
  );
}

const events = async (ns: string, reason: string) =>
  (await c.kube.list(RESOURCES.events, { namespace: ns })).items.filter((e) => (e as { reason?: string }).reason === reason) as unknown as {
    message: string;
    involvedObject: { name: string };
    source?: { component?: string };
  }[];

describe('announcing', () => {
  it('one node announces each IP, publishes its ServiceL2Status and the nodeAssigned event', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    const list = await agents(names);
    const ns = await namespace(c);
    await lbService(c, ns, 'web', ['203.0.113.10']);
    const owner = await ownerOf(list, names, '203.0.113.10');
    const status = await statusOn(c, ns, 'web', owner);
    expect(status.metadata.labels).toEqual({ [LABEL_NODE]: owner, [LABEL_SERVICE_NAME]: 'web', [LABEL_SERVICE_NAMESPACE]: ns });
    expect(status.metadata.name).toBe(`${ns}.web.${owner}`);
    expect(status.status).toEqual({ node: owner, serviceName: 'web', serviceNamespace: ns });
    const pod = await c.kube.get(PODS, `agent-${owner}`, NS);
    expect(status.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: `agent-${owner}`, uid: pod?.metadata.uid, controller: true }]);
    const ev = await eventually(async () => (await events(ns, 'nodeAssigned')).at(0), 5000, 'the nodeAssigned event');
    expect(ev.message).toBe(`announcing from node "${owner}" with protocol "layer2"`);
    expect(ev.involvedObject.name).toBe('web');
    expect(ev.source?.component).toBe('metallb-agent');
    // Every agent agrees: the others announce nothing.
    for (const [i, a] of list.entries()) expect(a.speaker.ips).toEqual(names[i] === owner ? ['203.0.113.10'] : []);
    expect(await metricValue(list[names.indexOf(owner)]!.metrics, 'metallb_speaker_announced', { ip: '203.0.113.10', node: owner, protocol: 'layer2', service: `${ns}/web` })).toBe(
      1,
    );
  });

  it('a dual-stack Service lands on one node, with one status', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    await c.kube.patch(CONFIG.pools, 'lan', NS, { spec: { addresses: ['203.0.113.0/24', '2001:db8:5::/120'] } });
    try {
      const list = await agents(names);
      const ns = await namespace(c);
      await lbService(c, ns, 'dual', ['203.0.113.20', '2001:db8:5::20']);
      const owner = await ownerOf(list, names, '203.0.113.20');
      await ownerOf(list, names, '2001:db8:5::20').then((o) => expect(o).toBe(owner));
      await statusOn(c, ns, 'dual', owner);
    } finally {
      await c.kube.patch(CONFIG.pools, 'lan', NS, { spec: { addresses: ['203.0.113.0/24'] } });
    }
  });

  it('Local policy: the node with the ready endpoint; none without endpoints; the status follows', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    const list = await agents(names);
    const ns = await namespace(c);
    await lbService(c, ns, 'local', ['203.0.113.30'], { policy: 'Local', endpointsOn: ['node-b'] });
    expect(await ownerOf(list, names, '203.0.113.30')).toBe('node-b');
    await statusOn(c, ns, 'local', 'node-b');
    await endpoints(c, ns, 'local', ['node-c']);
    expect(await eventually(() => (list[2]?.speaker.current.has('203.0.113.30') && !list[1]?.speaker.current.has('203.0.113.30') ? 'c' : undefined), 5000)).toBe('c');
    await statusOn(c, ns, 'local', 'node-c');
    // The last endpoint goes: nobody answers, no status is left.
    await endpoints(c, ns, 'local', []);
    await eventually(() => list.every((a) => !a.speaker.current.has('203.0.113.30')), 5000, 'nobody announcing');
    await eventually(async () => (await statusesOf(c, ns, 'local')).length === 0, 5000, 'the status removed');
  });

  it('a deleted Service, or one of another class, is not announced', async () => {
    const names = ['node-a', 'node-b'];
    const list = await agents(names);
    const ns = await namespace(c);
    await lbService(c, ns, 'gone', ['203.0.113.40']);
    await lbService(c, ns, 'theirs', ['203.0.113.41'], { class: 'example.com/other' });
    const owner = await ownerOf(list, names, '203.0.113.40');
    await statusOn(c, ns, 'gone', owner);
    await c.kube.delete(RESOURCES.services, 'gone', ns);
    await eventually(() => list.every((a) => !a.speaker.current.has('203.0.113.40')), 5000, 'nobody announcing');
    expect(list.some((a) => a.speaker.current.has('203.0.113.41'))).toBe(false);
    await eventually(async () => (await statusesOf(c, ns, 'gone')).length === 0, 5000, 'the status removed');
    expect(await statusesOf(c, ns, 'theirs')).toEqual([]);
  });
});

describe('liveness', () => {
  it('without gossip, the owner moving when its Node goes NotReady; the new owner replaces its status', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    const list = await agents(names);
    const ns = await namespace(c);
    await lbService(c, ns, 'move', ['203.0.113.50']);
    const first = await ownerOf(list, names, '203.0.113.50');
    await statusOn(c, ns, 'move', first);
    await putNode(c, first, { ready: false });
    try {
      const second = await eventually(() => {
        const o = names.filter((n, i) => n !== first && list[i]?.speaker.current.has('203.0.113.50'));
        return o.length === 1 && !list[names.indexOf(first)]?.speaker.current.has('203.0.113.50') ? o[0] : undefined;
      }, 5000);
      const events0 = (await events(ns, 'nodeAssigned')).length;
      await statusOn(c, ns, 'move', second as string);
      expect(events0).toBeGreaterThanOrEqual(1);
      await eventually(async () => (await events(ns, 'nodeAssigned')).some((e) => e.message.includes(`"${second as string}"`)), 5000, 'nodeAssigned from the new owner');
    } finally {
      await putNode(c, first, { ready: true });
    }
    // Ready again: the order puts it first again.
    await eventually(() => names.every((n, i) => list[i]?.speaker.current.has('203.0.113.50') === (n === first)), 5000, `${first} announcing again, alone`);
    await statusOn(c, ns, 'move', first);
  });

  it('the old owner killed (no cleanup): the new owner deletes its leftover status', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    const list = await agents(names);
    const ns = await namespace(c);
    await lbService(c, ns, 'killed', ['203.0.113.51']);
    const first = await ownerOf(list, names, '203.0.113.51');
    await statusOn(c, ns, 'killed', first);
    // The agent stops (its status stays, as after a crash) and its Node goes NotReady.
    const victim = list[names.indexOf(first)] as TestAgent;
    await victim.stop();
    expect(await statusesOf(c, ns, 'killed')).toHaveLength(1);
    await putNode(c, first, { ready: false });
    try {
      const rest = names.filter((n) => n !== first);
      const second = await eventually(() => rest.find((n) => list[names.indexOf(n)]?.speaker.current.has('203.0.113.51')), 5000);
      await statusOn(c, ns, 'killed', second);
    } finally {
      await putNode(c, first, { ready: true });
    }
  });

  it('with gossip, liveness is the gossip: a NotReady node alive in it keeps its IPs; a Ready one gone from it loses them', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    const gossip = names.map(() => new FakeMembership(names));
    const list = await Promise.all(names.map((n, i) => startAgent(c, n, { membership: gossip[i] })));
    running.push(...list);
    // Every Node is a seed, at its address, for the membership to join through.
    expect(gossip[0]?.seeds.map((s) => s.name).sort()).toEqual(expect.arrayContaining(names));
    const ns = await namespace(c);
    await lbService(c, ns, 'gossip', ['203.0.113.60']);
    const first = await ownerOf(list, names, '203.0.113.60');
    await putNode(c, first, { ready: false });
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(await ownerOf(list, names, '203.0.113.60')).toBe(first);
      // The gossip loses the owner (its Node still Ready): the next one takes over.
      await putNode(c, first, { ready: true });
      for (const g of gossip) g.set(names.filter((n) => n !== first));
      const second = await eventually(() => {
        const o = names.filter((n, i) => n !== first && list[i]?.speaker.current.has('203.0.113.60'));
        return o.length === 1 ? o[0] : undefined;
      }, 5000);
      await statusOn(c, ns, 'gossip', second as string);
    } finally {
      await putNode(c, first, { ready: true });
    }
    for (const a of list) await a.stop();
    expect(gossip.every((g) => g.left)).toBe(true);
  });
});

describe('cost', () => {
  it('a Service event recomputes that Service only; a Node heartbeat nothing; a label change everything', async () => {
    const [a] = await agents(['node-a'], alone());
    const ns = await namespace(c);
    const count = (scope: string) => metricValue(a!.metrics, 'metallb_agent_recompute_duration_seconds', { scope });
    await lbService(c, ns, 'cheap', ['203.0.113.70']);
    await eventually(() => a!.speaker.current.has('203.0.113.70'), 5000);
    await a!.agent.announcer.idle();
    const allBefore = (await count('all')) ?? 0;
    await endpoints(c, ns, 'cheap', ['node-b']);
    await c.kube.patch(RESOURCES.services, 'cheap', ns, { metadata: { labels: { touched: 'yes' } } });
    await new Promise((r) => setTimeout(r, 100));
    await a!.agent.announcer.idle();
    expect((await count('all')) ?? 0).toBe(allBefore);
    // A heartbeat: only the condition's time changes.
    await c.kube.patch(
      NODES,
      'node-c',
      undefined,
      {
        status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: new Date(Date.now() + 1000).toISOString() }] },
      },
      { subresource: 'status' },
    );
    await new Promise((r) => setTimeout(r, 100));
    await a!.agent.announcer.idle();
    expect((await count('all')) ?? 0).toBe(allBefore);
    await putNode(c, 'node-c', { labels: { zone: 'z1' } });
    await eventually(async () => ((await count('all')) ?? 0) > allBefore, 5000, 'a full recompute after a label change');
  });
});

describe('cost of liveness changes', () => {
  it('a node dying recomputes only its Services; one coming back, everything', async () => {
    const names = ['node-a', 'node-b', 'node-c'];
    const gossip = new FakeMembership(names);
    const [a] = await agents(['node-a'], { membership: gossip });
    const count = (scope: string) => metricValue(a!.metrics, 'metallb_agent_recompute_duration_seconds', { scope }).then((v) => v ?? 0);
    const ns = await namespace(c);
    const ips = ['203.0.113.110', '203.0.113.111', '203.0.113.112', '203.0.113.113', '203.0.113.114', '203.0.113.115'];
    for (const [i, ip] of ips.entries()) await lbService(c, ns, `s${i}`, [ip]);
    await eventually(() => ips.every((ip) => a!.agent.announcer.result(`${ns}/s${ips.indexOf(ip)}`)?.ips[0]?.owner), 5000, 'every Service decided');
    await a!.agent.announcer.idle();
    const [all0, live0] = [await count('all'), await count('liveness')];
    gossip.set(['node-a', 'node-c']);
    await eventually(() => ips.every((_, i) => a!.agent.announcer.result(`${ns}/s${i}`)?.ips[0]?.owner !== 'node-b'), 5000, 'node-b owning nothing');
    await a!.agent.announcer.idle();
    expect([await count('all'), await count('liveness')]).toEqual([all0, live0 + 1]);
    // What the partial pass found is what a full one finds.
    const owners = () => ips.map((_, i) => a!.agent.announcer.result(`${ns}/s${i}`)?.ips[0]?.owner);
    const partial = owners();
    a!.agent.announcer.allChanged();
    await a!.agent.announcer.idle();
    expect(owners()).toEqual(partial);
    expect(a!.speaker.ips.filter((ip) => ips.includes(ip))).toEqual(ips.filter((_, i) => partial[i] === 'node-a').sort());
    gossip.set(names);
    await eventually(async () => (await count('all')) === all0 + 2, 5000, 'a full pass when node-b comes back');
  });
});

describe('configuration', () => {
  it('an invalid configuration keeps the last good one, reported in the ConfigurationState and metrics', async () => {
    const [a] = await agents(['node-a'], alone());
    const ns = await namespace(c);
    await lbService(c, ns, 'kept', ['203.0.113.80']);
    await eventually(() => a!.speaker.current.has('203.0.113.80'), 5000);
    // Written past admission (no webhook here): an overlapping second pool makes the whole configuration invalid.
    await c.kube.create(CONFIG.pools, {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'overlap', namespace: NS },
      spec: { addresses: ['203.0.113.0/25'] },
    });
    try {
      const state = await eventually(async () => {
        const s = await c.kube.get(RESOURCES.configurationStates, 'agent-node-a', NS);
        return (s?.status as { result?: string } | undefined)?.result === 'Invalid' ? s : undefined;
      }, 5000);
      expect(state.metadata.labels).toEqual({ 'metallb.io/component-type': 'agent', 'metallb.io/node-name': 'node-a' });
      expect((state.status as { errors: string[] }).errors.join(' ')).toMatch(/overlap/);
      expect(await metricValue(a!.metrics, 'metallb_k8s_client_config_stale_bool')).toBe(1);
      expect(a!.speaker.ips).toContain('203.0.113.80');
      // A restart under the invalid configuration starts from the recorded last good one.
      const good = await c.kube.list(CONFIG.pools, { namespace: NS });
      const l2 = await c.kube.list(CONFIG.l2, { namespace: NS });
      await c.kube.create(RESOURCES.configMaps, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: LAST_GOOD_CONFIG_MAP, namespace: NS },
        data: {
          objects: JSON.stringify({
            resources: [
              ...good.items.filter((p) => p.metadata.name === 'lan').map((p) => ({ ...p, kind: 'IPAddressPool', apiVersion: 'metallb.io/v1beta1' })),
              ...l2.items.map((p) => ({ ...p, kind: 'L2Advertisement', apiVersion: 'metallb.io/v1beta1' })),
            ],
          }),
        },
      });
      await a!.stop();
      running.splice(running.indexOf(a!), 1);
      const [b] = await agents(['node-a'], alone());
      expect(b!.speaker.ips).toContain('203.0.113.80');
      expect(await metricValue(b!.metrics, 'metallb_k8s_client_config_loaded_bool')).toBe(0);
    } finally {
      await c.kube.delete(CONFIG.pools, 'overlap', NS);
      await c.kube.delete(RESOURCES.configMaps, LAST_GOOD_CONFIG_MAP, NS);
    }
    const valid = await eventually(async () => {
      const s = await c.kube.get(RESOURCES.configurationStates, 'agent-node-a', NS);
      return (s?.status as { result?: string } | undefined)?.result === 'Valid' ? s : undefined;
    }, 5000);
    expect(valid.status).toMatchObject({ errors: [] });
  });
});

describe('API faults take nothing away', () => {
  it('watches closed, expired and failing, status writes failing: announcements and statuses stay, writes are retried', async () => {
    const faulty = new FaultyKube(c.newKube());
    const a = await startAgent(c, 'node-a', { kube: faulty, ...alone() });
    running.push(a);
    const ns = await namespace(c);
    await lbService(c, ns, 'sturdy', ['203.0.113.90']);
    await eventually(() => a.speaker.current.has('203.0.113.90'), 5000);
    await statusOn(c, ns, 'sturdy', 'node-a');
    const from = a.speaker.history.length;

    // Watches closed by the server, then history compacted and every watch ended with 410 (relist).
    c.api.closeWatches();
    c.api.forceWatchExpiry();
    // Lists and watches failing with 500 for a while.
    c.api.faults.inject({ verb: 'list', count: 5, fault: { status: 500 } });
    c.api.faults.inject({ verb: 'watch', count: 5, fault: { status: 500 } });
    // A new Service while its status create fails twice.
    c.api.faults.inject({ verb: 'create', resource: 'servicel2statuses', count: 2, fault: { status: 500 } });
    await lbService(c, ns, 'later', ['203.0.113.91']);
    await eventually(() => a.speaker.current.has('203.0.113.91'), 10_000, 'the new Service announced after the faults');
    await statusOn(c, ns, 'later', 'node-a');
    expect(a.speaker.current.has('203.0.113.90')).toBe(true);
    expect(await statusesOf(c, ns, 'sturdy')).toHaveLength(1);
    // Nothing was withdrawn on the way: every set the speaker got had the first IP.
    expect(a.speaker.history.length).toBeGreaterThan(from);
    expect(a.speaker.history.slice(from).filter((ips) => !ips.includes('203.0.113.90'))).toEqual([]);
    c.api.faults.clear();
  });

  it('a status deleted by someone else is put back', async () => {
    const [a] = await agents(['node-a'], alone());
    const ns = await namespace(c);
    await lbService(c, ns, 'healed', ['203.0.113.92']);
    await eventually(() => a!.speaker.current.has('203.0.113.92'), 5000);
    const s = await statusOn(c, ns, 'healed', 'node-a');
    await c.kube.delete(SERVICE_L2_STATUSES, s.metadata.name ?? '', NS);
    await eventually(async () => (await statusesOf(c, ns, 'healed')).some((o) => o.metadata.uid !== s.metadata.uid), 5000, 'the status recreated');
  });
});
