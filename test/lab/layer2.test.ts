/**
 * Layer 2 for real (root): three nodes on a bridge, each running the real agent in its network
 * namespace against the API server double with a real controller; a client namespace asks with
 * arping, ndisc6 and ping. What an operator sees: one node answers for a Service IP (the one its
 * ServiceL2Status names), traffic reaches it, Local policy moves the IP to a node with an
 * endpoint, no endpoint or no Service means no answer, and a dead or silent owner is replaced.
 *
 * Failover times here are asserted loosely (seconds) on this shared machine; `npm run bench`
 * measures them (test/bench/failover.ts).
 */
import { SERVICE_L2_STATUSES } from '../../agent/status.js';
import { RESOURCES } from '../../kube/client.js';
import { ingressIPs, NAMESPACE } from '../e2e/support.js';
import { LabCluster, POOL6 } from './cluster.js';

const POOLS = { group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true } as const;

let lc: LabCluster;

beforeAll(async () => {
  // Labs run one at a time on a machine (test/lab/lab.ts): this may wait for another file's first.
  lc = await LabCluster.start();
}, 720_000);

afterAll(async () => {
  await lc?.stop();
}, 60_000);

/** Polls until `probe` gives a value `ok` accepts, or returns the last value after timeoutMs. */
async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The node the Service's ServiceL2Status objects name (sorted, should be one). */
async function statusNodes(service: string): Promise<string[]> {
  const list = await lc.kube.list(SERVICE_L2_STATUSES, { namespace: NAMESPACE });
  return list.items
    .filter((o) => (o.status as { serviceName?: string } | undefined)?.serviceName === service)
    .map((o) => (o.status as { node?: string }).node ?? '')
    .sort();
}

async function deleteService(name: string): Promise<void> {
  await lc.kube.delete(RESOURCES.services, name, 'default');
}

it('one node answers ARP for a Service IP, the one its ServiceL2Status names, and traffic reaches it', async () => {
  const [ip] = await lc.createService('web');
  const owner = await until(
    () => lc.owner(ip!),
    (o) => o !== undefined,
    10_000,
  );
  expect(owner).toBeDefined();
  const macs = await lc.arping(ip!, 3);
  expect(new Set(macs)).toEqual(new Set([lc.lab.host(owner!).mac]));
  expect(
    await until(
      () => statusNodes('web'),
      (n) => n.length === 1 && n[0] === owner,
      10_000,
    ),
  ).toEqual([owner]);
  await lc.lab.exec(lc.lab.client, 'ping', ['-c', '2', '-W', '2', ip!]);
  expect(await lc.lab.neighbour(ip!)).toBe(lc.lab.host(owner!).mac);
  await deleteService('web');
  // A deleted Service is not answered any more.
  expect(
    await until(
      () => lc.arping(ip!, 1),
      (m) => m.length === 0,
      10_000,
    ),
  ).toEqual([]);
}, 60_000);

it('both families of a dual-stack Service are answered by one node (ARP and NDP), and ping -6 reaches it', async () => {
  const ips = await lc.createService('dual', { dualStack: true });
  const ip4 = ips.find((i) => !i.includes(':'))!;
  const ip6 = ips.find((i) => i.includes(':'))!;
  const owner4 = await until(
    () => lc.owner(ip4),
    (o) => o !== undefined,
    10_000,
  );
  const owner6 = await until(
    () => lc.owner(ip6),
    (o) => o !== undefined,
    10_000,
  );
  expect(owner4).toBeDefined();
  expect(owner6).toBe(owner4);
  await lc.lab.exec(lc.lab.client, 'ping', ['-6', '-c', '2', '-W', '2', ip6]);
  expect(await lc.lab.neighbour(ip6)).toBe(lc.lab.host(owner4!).mac);
  await deleteService('dual');
  expect(
    await until(
      () => lc.ndisc6(ip6),
      (m) => m === undefined,
      10_000,
    ),
  ).toBeUndefined();
}, 60_000);

it('Local policy: only a node with a ready endpoint answers; without endpoints nobody does', async () => {
  const [ip] = await lc.createService('local', { local: true, endpointsOn: ['node-2'] });
  expect(
    await until(
      () => lc.owner(ip!),
      (o) => o === 'node-2',
      10_000,
    ),
  ).toBe('node-2');
  await lc.setEndpoints('local', ['node-3']);
  expect(
    await until(
      () => lc.owner(ip!),
      (o) => o === 'node-3',
      10_000,
    ),
  ).toBe('node-3');
  await lc.setEndpoints('local', []);
  expect(
    await until(
      () => lc.arping(ip!, 1),
      (m) => m.length === 0,
      10_000,
    ),
  ).toEqual([]);
  await deleteService('local');
}, 60_000);

it('a killed owner is replaced: the new owner announces itself and the client follows without asking', async () => {
  const [ip] = await lc.createService('failover');
  const owner = (await until(
    () => lc.owner(ip!),
    (o) => o !== undefined,
    10_000,
  ))!;
  // arping leaves the client's neighbour table alone; a ping fills it, as real traffic would.
  await lc.lab.exec(lc.lab.client, 'ping', ['-c', '1', '-W', '2', ip!]);
  expect(await lc.lab.neighbour(ip!)).toBe(lc.lab.host(owner).mac);
  const t0 = Date.now();
  lc.agents.get(owner)!.kill('SIGKILL');
  // The client's neighbour entry changes by the new owner's gratuitous ARP alone (no arping here).
  const mac = await until(
    () => lc.lab.neighbour(ip!),
    (m) => m !== undefined && m !== lc.lab.host(owner).mac,
    15_000,
  );
  const took = Date.now() - t0;
  const next = lc.nodeOfMac(mac);
  expect(next).toBeDefined();
  expect(next).not.toBe(owner);
  process.stderr.write(`lab: SIGKILL of ${owner}'s agent -> client neighbour entry at ${String(next)} in ${took} ms\n`);
  expect(await lc.owner(ip!)).toBe(next);
  expect(
    await until(
      () => statusNodes('failover'),
      (n) => n.length === 1 && n[0] === next,
      10_000,
    ),
  ).toEqual([next]);
  await lc.startAgent(owner);
  await deleteService('failover');
}, 90_000);

it('an owner whose network goes silent is replaced, and takes nothing back twice when it returns', async () => {
  const [ip] = await lc.createService('silent');
  const owner = (await until(
    () => lc.owner(ip!),
    (o) => o !== undefined,
    10_000,
  ))!;
  const host = lc.lab.host(owner);
  await lc.lab.exec(lc.lab.client, 'ping', ['-c', '1', '-W', '2', ip!]);
  expect(await lc.lab.neighbour(ip!)).toBe(host.mac);
  await lc.lab.setConnected(host, false);
  try {
    const mac = await until(
      () => lc.lab.neighbour(ip!),
      (m) => m !== undefined && m !== host.mac,
      15_000,
    );
    expect(lc.nodeOfMac(mac)).toBeDefined();
    expect(lc.nodeOfMac(mac)).not.toBe(owner);
  } finally {
    await lc.lab.setConnected(host, true);
  }
  // Back on the LAN: after the gossip heals, exactly one node answers (owner() throws on two).
  const back = await until(
    () => lc.owner(ip!).catch(() => 'two'),
    (o) => o !== undefined && o !== 'two',
    15_000,
  );
  expect(back).not.toBe('two');
  await deleteService('silent');
}, 90_000);

it('a revoked IP stops being answered, and the one the Service gets instead is answered', async () => {
  const [ip] = await lc.createService('revoked');
  expect(
    await until(
      () => lc.owner(ip!),
      (o) => o !== undefined,
      10_000,
    ),
  ).toBeDefined();
  // The pool loses the Service's address (run last: the pool stays smaller).
  const keep = ip === '203.0.113.8' ? '203.0.113.0/29' : '203.0.113.8/29';
  // The webhook refuses to take an address in use unless told to (metallb.io/force).
  await lc.kube.patch(POOLS, 'demo', NAMESPACE, { metadata: { annotations: { 'metallb.io/force': 'true' } }, spec: { addresses: [keep, POOL6] } });
  const moved = await until(
    async () => ingressIPs((await lc.kube.get(RESOURCES.services, 'revoked', 'default')) as never)[0],
    (i) => i !== undefined && i !== ip,
    15_000,
  );
  expect(moved).not.toBe(ip);
  expect(
    await until(
      () => lc.arping(ip!, 1),
      (m) => m.length === 0,
      10_000,
    ),
  ).toEqual([]);
  expect(
    await until(
      () => lc.owner(moved!),
      (o) => o !== undefined,
      10_000,
    ),
  ).toBeDefined();
  await deleteService('revoked');
}, 60_000);
