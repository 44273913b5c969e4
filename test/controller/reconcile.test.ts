/**
 * Reconcile-loop duties against the API server double with real client-node, everything written
 * straight into the store (no admission webhook): revoke and re-assign on a configuration
 * change, reaping claims whose Service never came, release on a type change or delete, repair of
 * claims/annotations/status disagreements (claims win; a lost claim is taken again on the same
 * IP), and the deprecated-annotation warning.
 */
import { CoreV1Api, type CoreV1Event, type V1Service } from '@kubernetes/client-node';
import { formatIP } from '../../core/ip/index.js';
import type { IPClaim } from '../../webhook/claims.js';
import { RESOURCES } from '../../kube/client.js';
import { ASSIGNMENT } from '../../webhook/services.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';
import { LeadingReplica, sleep, startCluster, type Cluster } from './support.js';

const GRACE_MS = 2500;

let cluster: Cluster;
let core: CoreV1Api;

const pool = (name: string, spec: Record<string, unknown>) =>
  cluster.api.store.create({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace: 'metallb-system' }, spec } as never);

beforeAll(async () => {
  cluster = await startCluster();
  core = kubeConfigFor(cluster.api).makeApiClient(CoreV1Api);
  await cluster.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } } as never).catch(() => undefined);
  await cluster.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shrink' } } as never);
  await pool('main', { addresses: ['192.0.2.0/27'] });
});
afterAll(async () => {
  await cluster.stop();
});

/** One leading controller with its ledger. */
type Replica = LeadingReplica;

let replica: Replica;

/** Waits until the controller runs with these pools. */
const configured = (names: string[]) =>
  eventually(() => names.every((n) => replica.ledger.currentPools().some((p) => p.name === n)) || undefined, 3000, `pools ${names.join(', ')} loaded`);

beforeEach(async () => {
  replica = await new LeadingReplica(cluster, { reservationGraceMs: GRACE_MS }).start();
});
afterEach(async () => {
  await replica.stop();
});

const lb = (name: string, annotations: Record<string, string> = {}): V1Service => ({
  metadata: { name, annotations },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80 }] },
});

const read = (name: string, namespace = 'default') => core.readNamespacedService({ name, namespace });

async function ingressOf(name: string, namespace = 'default'): Promise<string | undefined> {
  return (await read(name, namespace)).status?.loadBalancer?.ingress?.[0]?.ip;
}

async function events(name: string, namespace = 'default'): Promise<CoreV1Event[]> {
  return (await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
}

const claimOf = async (ip: string) => (await cluster.kube.get(RESOURCES.ipClaims, ip)) as IPClaim | undefined;
const gone = (ip: string) => async () => (await claimOf(ip)) === undefined || undefined;

/** Calls of the replica's ledger.allocate (the loop calls it once or twice per reconcile of a valid Service), with their answers. */
function allocations(r: Replica): { calls: { name: string; result?: string }[]; stop: () => void } {
  const calls: { name: string; result?: string }[] = [];
  const allocate = r.ledger.allocate.bind(r.ledger);
  r.ledger.allocate = async (...args) => {
    const call: { name: string; result?: string } = { name: args[0].name };
    calls.push(call);
    const out = await allocate(...args);
    call.result = out.ok ? out.ips.map(formatIP).join(',') : out.failure.code;
    return out;
  };
  return { calls, stop: () => void Reflect.deleteProperty(r.ledger, 'allocate') };
}

/** Makes `change`, then waits until the loop has reconciled `name` after it; the ledger's last answer for it. */
async function reconciledAfter(name: string, change: () => Promise<unknown>): Promise<string> {
  const { calls, stop } = allocations(replica);
  try {
    await change();
    const call = await eventually(() => calls.filter((c) => c.name === name && c.result !== undefined).at(-1), 3000, `${name} reconciled after the change`);
    return call.result as string;
  } finally {
    stop();
  }
}

/** Resolves once the reaper has looked at this holder in two passes that started after now (it reads the holder's claims each time it looks). */
async function reapPass(holder: string): Promise<void> {
  let looks = 0;
  const claimsOf = replica.ledger.claimsOf.bind(replica.ledger);
  replica.ledger.claimsOf = (key: string) => (key === holder && looks++, claimsOf(key));
  try {
    await eventually(() => looks >= 2 || undefined, 3000, `the reaper looking at ${holder}`);
  } finally {
    Reflect.deleteProperty(replica.ledger, 'claimsOf');
  }
}

/** A claim written by hand (or by an admission the API server gave up on). */
function handClaim(ip: string, holder: string): Promise<unknown> {
  return cluster.kube.create(RESOURCES.ipClaims, {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPClaim',
    metadata: { name: ip },
    spec: { ip, pool: 'main', family: 'IPv4', holders: [{ namespace: 'default', name: holder }] },
  });
}

describe('configuration changes', () => {
  it('a forced shrink revokes the IPs outside the pool, re-assigns them from another pool and keeps the others', async () => {
    await pool('alpha', { addresses: ['203.0.113.0/29'], serviceAllocation: { priority: 1, namespaces: ['shrink'] } });
    await pool('gone', { addresses: ['198.51.100.0/30'], autoAssign: false });
    await configured(['alpha', 'gone']);
    const names = ['s-1', 's-2', 's-3'];
    for (const n of names) await core.createNamespacedService({ namespace: 'shrink', body: lb(n) });
    await core.createNamespacedService({ namespace: 'shrink', body: lb('pinned', { 'metallb.io/address-pool': 'gone' }) });
    const before = await eventually(
      async () => {
        const ips = await Promise.all(names.map((n) => ingressOf(n, 'shrink')));
        return ips.every((ip) => ip?.startsWith('203.0.113.')) ? (ips as string[]) : undefined;
      },
      3000,
      'assigned from alpha',
    );
    const pinned = await eventually(() => ingressOf('pinned', 'shrink'), 3000, 'pinned assigned');
    expect(pinned).toMatch(/^198\.51\.100\./);
    const [keep, ...moved] = before as [string, ...string[]];

    // Shrink alpha to the first Service's IP, forced (no admission here either: straight into the store).
    await cluster.api.store.patch('metallb.io/v1beta1', 'IPAddressPool', 'alpha', 'metallb-system', {
      metadata: { annotations: { 'metallb.io/force': 'true' } },
      spec: { addresses: [`${keep}/32`] },
    });
    const after = await eventually(
      async () => {
        const ips = await Promise.all(names.map((n) => ingressOf(n, 'shrink')));
        return ips.slice(1).every((ip) => ip?.startsWith('192.0.2.')) ? ips : undefined;
      },
      3000,
      'revoked Services re-assigned from main',
    );
    expect(after[0]).toBe(keep);
    for (const [i, n] of names.slice(1).entries()) {
      const svc = await read(n, 'shrink');
      expect(svc.metadata?.annotations?.[ASSIGNMENT.ips]).toBe(after[i + 1]);
      expect(svc.metadata?.annotations?.[ASSIGNMENT.pool]).toBe('main');
      expect(svc.status?.loadBalancer?.ingress).toEqual([{ ip: after[i + 1], ipMode: 'VIP' }]);
      expect(await claimOf(moved[i] as string)).toBeUndefined();
      expect((await claimOf(after[i + 1] as string))?.spec.holders.map((h) => h.name)).toEqual([n]);
      const evs = await eventually(
        async () => {
          const e = await events(n, 'shrink');
          return e.some((x) => x.reason === 'ClearAssignment') && e.some((x) => x.reason === 'IPAllocated' && x.message?.includes('"main"')) ? e : undefined;
        },
        3000,
        `events of ${n}`,
      );
      const clear = evs.find((x) => x.reason === 'ClearAssignment');
      expect(clear?.type).toBe('Warning');
      expect(clear?.message).toContain(moved[i]);
    }
    // The kept Service was left alone.
    expect((await read('s-1', 'shrink')).metadata?.annotations?.[ASSIGNMENT.ips]).toBe(keep);
    expect((await events('s-1', 'shrink')).map((e) => e.reason)).not.toContain('ClearAssignment');

    // A pool removed (forced) under a Service that names it: nothing else may serve it, so it is cleared.
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'gone', 'metallb-system');
    await eventually(
      async () => {
        const svc = await read('pinned', 'shrink');
        return (svc.status?.loadBalancer?.ingress ?? []).length === 0 && svc.metadata?.annotations?.[ASSIGNMENT.ips] === undefined ? svc : undefined;
      },
      3000,
      'pinned cleared',
    );
    const svc = await read('pinned', 'shrink');
    expect(svc.metadata?.annotations?.[ASSIGNMENT.pool]).toBeUndefined();
    expect(svc.metadata?.annotations?.['metallb.io/address-pool']).toBe('gone'); // the user's request stays
    await eventually(gone(pinned as string), 3000, 'pinned claim released');
    const evs = await eventually(
      async () => {
        const e = await events('pinned', 'shrink');
        return e.some((x) => x.reason === 'ClearAssignment') && e.some((x) => x.reason === 'AllocationFailed') ? e : undefined;
      },
      3000,
      'pinned events',
    );
    expect(evs.find((x) => x.reason === 'ClearAssignment')?.message).toMatch(/gone/);
  });
});

describe('claims whose Service never came', () => {
  it('reservations and never-created holders are reaped after the grace period, and the IP is given out again', async () => {
    const t0 = Date.now();
    await handClaim('192.0.2.30', 'web*abcde');
    await handClaim('192.0.2.29', 'never-came');
    // A Service waiting for one of those IPs.
    await core.createNamespacedService({ namespace: 'default', body: lb('waiting', { 'metallb.io/loadBalancerIPs': '192.0.2.29' }) });
    await eventually(async () => (await events('waiting')).some((e) => e.reason === 'AllocationFailed') || undefined, 3000, 'waiting fails first');
    // Within the grace period (creationTimestamp has second resolution: stay a second clear of it) both stay.
    await sleep(Math.max(0, GRACE_MS - 1500 - (Date.now() - t0)));
    await reapPass('default/web*abcde'); // the reaper has looked at them, still within the grace period
    await reapPass('default/never-came');
    expect((await claimOf('192.0.2.30'))?.spec.holders.map((h) => h.name)).toEqual(['web*abcde']);
    expect((await claimOf('192.0.2.29'))?.spec.holders.map((h) => h.name)).toEqual(['never-came']);
    expect(await ingressOf('waiting')).toBeUndefined();
    await eventually(gone('192.0.2.30'), GRACE_MS + 3000, 'reservation reaped');
    // The waiting Service may take the address back at once: wait for the holder to change.
    await eventually(async () => !(await claimOf('192.0.2.29'))?.spec.holders.some((h) => h.name === 'never-came') || undefined, 3000, 'never-created holder reaped');
    // Freed: the waiting Service gets its IP without another change, and a new one can take the other.
    expect(await eventually(() => ingressOf('waiting'), 3000, 'waiting assigned')).toBe('192.0.2.29');
    await core.createNamespacedService({ namespace: 'default', body: lb('taker', { 'metallb.io/loadBalancerIPs': '192.0.2.30' }) });
    expect(await eventually(() => ingressOf('taker'), 3000, 'taker assigned')).toBe('192.0.2.30');
    for (const n of ['waiting', 'taker']) await core.deleteNamespacedService({ name: n, namespace: 'default' });
  }, 15_000);
});

describe('release', () => {
  it('a type change to ClusterIP through the store releases the claim, strips the annotations, clears status', async () => {
    await core.createNamespacedService({ namespace: 'default', body: lb('to-cluster') });
    const ip = await eventually(() => ingressOf('to-cluster'), 3000, 'assigned');
    await cluster.api.store.patch('v1', 'Service', 'to-cluster', 'default', { spec: { type: 'ClusterIP' } });
    await eventually(gone(ip), 3000, 'claim released');
    const svc = await eventually(
      async () => {
        const s = await read('to-cluster');
        return s.metadata?.annotations?.[ASSIGNMENT.ips] === undefined && (s.status?.loadBalancer?.ingress ?? []).length === 0 ? s : undefined;
      },
      3000,
      'annotations and status cleared',
    );
    expect(svc.metadata?.annotations?.[ASSIGNMENT.pool]).toBeUndefined();
    const clear = await eventually(async () => (await events('to-cluster')).find((e) => e.reason === 'ClearAssignment'), 3000, 'ClearAssignment');
    expect(clear.message).toMatch(/no longer of type LoadBalancer/);
    expect(replica.ledger.heldBy('default/to-cluster')).toBeUndefined();
    await core.deleteNamespacedService({ name: 'to-cluster', namespace: 'default' });
  });

  it('deleting a Service frees its claim at once (not after the grace) and a Service waiting for the IP gets it', async () => {
    await core.createNamespacedService({ namespace: 'default', body: lb('doomed') });
    const ip = (await eventually(() => ingressOf('doomed'), 3000, 'assigned')) as string;
    expect((await claimOf(ip))?.spec.holders.map((h) => h.name)).toEqual(['doomed']);
    await core.createNamespacedService({ namespace: 'default', body: lb('heir', { 'metallb.io/loadBalancerIPs': ip }) });
    await eventually(async () => (await events('heir')).some((e) => e.reason === 'AllocationFailed') || undefined, 3000, 'heir waits');
    await core.deleteNamespacedService({ name: 'doomed', namespace: 'default' });
    // Sooner than the grace (GRACE_MS) a Service that was never stored would wait.
    expect(await eventually(() => ingressOf('heir'), GRACE_MS - 500, 'heir assigned')).toBe(ip);
    expect((await claimOf(ip))?.spec.holders.map((h) => h.name)).toEqual(['heir']);
    await core.deleteNamespacedService({ name: 'heir', namespace: 'default' });
    await eventually(gone(ip), 3000, 'heir released');
  });
});

describe('repair', () => {
  it('claims win over edited annotations and status; a claim deleted by hand is taken again on the same IP', async () => {
    await core.createNamespacedService({ namespace: 'default', body: lb('low') });
    const low = await eventually(() => ingressOf('low'), 3000, 'low assigned');
    await core.createNamespacedService({ namespace: 'default', body: lb('repair-me') });
    const ip = (await eventually(() => ingressOf('repair-me'), 3000, 'assigned')) as string;
    const other = '192.0.2.28';

    // Someone writes another IP into the assignment annotation.
    await cluster.api.store.patch('v1', 'Service', 'repair-me', 'default', { metadata: { annotations: { [ASSIGNMENT.ips]: other } } });
    await eventually(async () => (await read('repair-me')).metadata?.annotations?.[ASSIGNMENT.ips] === ip || undefined, 3000, 'annotation restored');
    expect(await claimOf(other)).toBeUndefined();
    expect(await ingressOf('repair-me')).toBe(ip);

    // ... or a wrong status.
    await cluster.kube.patch(RESOURCES.services, 'repair-me', 'default', { status: { loadBalancer: { ingress: [{ ip: other }] } } }, { subresource: 'status' });
    await eventually(
      async () => {
        const ingress = (await read('repair-me')).status?.loadBalancer?.ingress;
        return JSON.stringify(ingress) === JSON.stringify([{ ip, ipMode: 'VIP' }]) || undefined;
      },
      3000,
      'status restored',
    );
    expect(await claimOf(other)).toBeUndefined();

    // A lower address frees up, then the claim is deleted by hand: the Service keeps its IP anyway.
    await core.deleteNamespacedService({ name: 'low', namespace: 'default' });
    await eventually(gone(low as string), 3000, 'low released');
    await cluster.kube.delete(RESOURCES.ipClaims, ip);
    const claim = await eventually(claimOf.bind(null, ip), 3000, 'claim re-made');
    expect(claim.spec.holders.map((h) => h.name)).toEqual(['repair-me']);
    // Reconciled once more after that (a label change): it still decides for the same IP.
    expect(await reconciledAfter('repair-me', () => cluster.api.store.patch('v1', 'Service', 'repair-me', 'default', { metadata: { labels: { touched: 'yes' } } }))).toBe(ip);
    expect(await claimOf(low as string)).toBeUndefined();
    const svc = await read('repair-me');
    expect(svc.metadata?.annotations?.[ASSIGNMENT.ips]).toBe(ip);
    expect(svc.status?.loadBalancer?.ingress?.[0]?.ip).toBe(ip);
    await core.deleteNamespacedService({ name: 'repair-me', namespace: 'default' });
    await eventually(gone(ip), 3000, 'released');
  });
});

describe('steady state', () => {
  it('a Service whose claims, annotations and status agree is not reconciled over and over', async () => {
    await core.createNamespacedService({ namespace: 'default', body: lb('quiet') });
    await eventually(() => ingressOf('quiet'), 3000, 'assigned');
    // Other Services reconciled after it (each time, the loop has drained what came before): the
    // first lets the reconciles of quiet's own writes finish; during the second, quiet costs nothing.
    await reconciledAfter('marker-1', () => core.createNamespacedService({ namespace: 'default', body: lb('marker-1') }));
    const { calls, stop } = allocations(replica);
    try {
      await core.createNamespacedService({ namespace: 'default', body: lb('marker-2') });
      await eventually(() => ingressOf('marker-2'), 3000, 'marker-2 assigned');
      expect(calls.some((c) => c.name === 'marker-2')).toBe(true);
      expect(calls.filter((c) => c.name === 'quiet')).toEqual([]);
    } finally {
      stop();
    }
    for (const n of ['quiet', 'marker-1', 'marker-2']) await core.deleteNamespacedService({ name: n, namespace: 'default' });
  });
});

describe('events', () => {
  it('a deprecated annotation is warned about once', async () => {
    await core.createNamespacedService({ namespace: 'default', body: lb('old-style', { 'metallb.universe.tf/address-pool': 'main' }) });
    expect(await eventually(() => ingressOf('old-style'), 3000, 'assigned')).toMatch(/^192\.0\.2\./);
    const warning = await eventually(async () => (await events('old-style')).find((e) => e.reason === 'DeprecatedAnnotation'), 3000, 'warning');
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain('metallb.universe.tf/address-pool');
    expect(warning.message).toContain('metallb.io/address-pool');
    // More reconciles (a Service change, a configuration change) say nothing again.
    await reconciledAfter('old-style', () => cluster.api.store.patch('v1', 'Service', 'old-style', 'default', { metadata: { labels: { touched: 'yes' } } }));
    await reconciledAfter('old-style', async () => {
      await pool('extra', { addresses: ['198.51.100.64/30'], autoAssign: false });
      await configured(['extra']);
    });
    expect((await events('old-style')).filter((e) => e.reason === 'DeprecatedAnnotation')).toHaveLength(1);
    await core.deleteNamespacedService({ name: 'old-style', namespace: 'default' });
  });
});
