/**
 * The reconcile loop and leader election against the API server double with real client-node:
 * Services created with no webhook get their IP from the loop, status follows within a second,
 * the leader's death hands over within seconds, a restart keeps every IP, a bad configuration
 * keeps the last good one.
 */
import { CoreV1Api, CustomObjectsApi, type V1Service } from '@kubernetes/client-node';
import { formatIP } from '../../core/ip/index.js';
import { Ledger } from '../../webhook/claims.js';
import { Controller } from '../../webhook/controller.js';
import { RESOURCES, type ClientKube } from '../../kube/client.js';
import { Metrics } from '../../webhook/metrics.js';
import { LeaderElector } from '../../kube/leader.js';
import { ASSIGNMENT } from '../../webhook/services.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';
import { startCluster, type Cluster } from './support.js';

let cluster: Cluster;
let core: CoreV1Api;

beforeAll(async () => {
  cluster = await startCluster();
  core = kubeConfigFor(cluster.api).makeApiClient(CoreV1Api);
  await cluster.api.store.create({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name: 'main', namespace: 'metallb-system' },
    spec: { addresses: ['192.0.2.0/26'] },
  } as never);
});
afterAll(async () => {
  await cluster.stop();
});

const running = new Set<Replica>();
afterEach(async () => {
  for (const r of running) await r.stop();
});

/** One controller replica: its ledger, loop and elector. */
class Replica {
  readonly kube: ClientKube = cluster.newKube();
  readonly ledger = new Ledger(this.kube);
  readonly metrics = new Metrics();
  readonly controller = new Controller({ kube: this.kube, ledger: this.ledger, namespace: 'metallb-system', reservationGraceMs: 2000, metrics: this.metrics });
  readonly elector: LeaderElector;
  constructor(readonly identity: string) {
    this.elector = new LeaderElector({
      kube: this.kube,
      namespace: 'metallb-system',
      identity,
      leaseDurationMs: 2000,
      renewMs: 500,
      onStartedLeading: () => this.controller.setLeading(true),
      onStoppedLeading: () => this.controller.setLeading(false),
    });
  }
  async start(): Promise<this> {
    running.add(this);
    await this.ledger.start();
    await this.controller.start();
    this.elector.start();
    return this;
  }
  async stop(release = true): Promise<void> {
    if (!running.delete(this)) return;
    await this.elector.stop(release);
    await this.controller.stop();
    this.ledger.stop();
  }
}

const lb = (name: string, extra: Partial<V1Service['spec']> = {}): V1Service => ({
  metadata: { name },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80 }], ...extra },
});

async function ingressOf(name: string): Promise<string | undefined> {
  const s = await core.readNamespacedService({ name, namespace: 'default' });
  return s.status?.loadBalancer?.ingress?.[0]?.ip;
}

describe('reconcile loop', () => {
  it('assigns a Service created with no webhook, status within a second; releases on delete', async () => {
    const r = await new Replica('a').start();
    await eventually(() => r.elector.leading, 10_000, 'leadership');
    const t0 = Date.now();
    await core.createNamespacedService({ namespace: 'default', body: lb('plain') });
    const ip = await eventually(() => ingressOf('plain'), 3000, 'ingress');
    expect(Date.now() - t0).toBeLessThan(1000);
    const svc = await core.readNamespacedService({ name: 'plain', namespace: 'default' });
    expect(svc.metadata?.annotations?.[ASSIGNMENT.ips]).toBe(ip);
    expect(svc.status?.loadBalancer?.ingress?.[0]?.ipMode).toBe('VIP');
    const claim = await cluster.kube.get(RESOURCES.ipClaims, ip as string);
    // The claim names the Service; the UID is not worth a write per create (the reaper knows a
    // Service it saw deleted, so the claim still goes at once, below).
    expect((claim?.spec as { holders: unknown[] }).holders).toEqual([{ namespace: 'default', name: 'plain' }]);
    const events = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=plain' });
    expect(events.items.map((e) => e.reason)).toContain('IPAllocated');
    await core.deleteNamespacedService({ name: 'plain', namespace: 'default' });
    await eventually(async () => (await cluster.kube.get(RESOURCES.ipClaims, ip as string)) === undefined || undefined, 3000, 'claim released');
    await r.stop();
  });

  it('a restart keeps every IP; a second controller takes over when the leader dies', async () => {
    const a = await new Replica('a').start();
    await eventually(() => a.elector.leading, 10_000, 'a leads');
    const b = await new Replica('b').start();
    for (let i = 0; i < 5; i++) await core.createNamespacedService({ namespace: 'default', body: lb(`keep-${i}`) });
    const before = await eventually(
      async () => {
        const ips = await Promise.all([0, 1, 2, 3, 4].map((i) => ingressOf(`keep-${i}`)));
        return ips.every(Boolean) ? ips : undefined;
      },
      5000,
      'all assigned',
    );
    expect(b.elector.leading).toBe(false);
    // The leader dies without giving the lease up.
    const t0 = Date.now();
    await a.stop(false);
    await eventually(() => b.elector.leading, 8000, 'b takes over');
    expect(Date.now() - t0).toBeLessThan(6000);
    await core.createNamespacedService({ namespace: 'default', body: lb('after-takeover') });
    const fresh = await eventually(() => ingressOf('after-takeover'), 3000, 'new Service assigned by b');
    expect(before).not.toContain(fresh);
    // A full restart of the new leader: same IPs.
    await b.stop();
    const c = new Replica('c');
    // What c's loop decides for each Service (it reconciles every one on taking the lead).
    const decided = new Map<string, string | undefined>();
    const allocate = c.ledger.allocate.bind(c.ledger);
    c.ledger.allocate = async (...args) => {
      const result = await allocate(...args);
      decided.set(args[0].name, result.ok ? result.ips.map(formatIP).join(',') : result.failure.message);
      return result;
    };
    await c.start();
    await eventually(() => c.elector.leading, 8000, 'c leads');
    const keep = [0, 1, 2, 3, 4].map((i) => `keep-${i}`);
    await eventually(() => keep.every((n) => decided.has(n)), 5000, 'c to reconcile every Service');
    expect(keep.map((n) => decided.get(n))).toEqual(before);
    expect(await Promise.all(keep.map((n) => ingressOf(n)))).toEqual(before);
    await c.stop();
  }, 30_000);

  it('a bad configuration keeps the last good one and is reported', async () => {
    const r = await new Replica('a').start();
    await eventually(() => r.elector.leading, 10_000, 'leadership');
    await cluster.api.store.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'overlapping', namespace: 'metallb-system' },
      spec: { addresses: ['192.0.2.0/28'] },
    } as never);
    const state = await eventually(
      async () => {
        const s = (await cluster.kube.get(RESOURCES.configurationStates, 'controller', 'metallb-system'))?.status as { result?: string; errors?: string[] } | undefined;
        return s?.result === 'Invalid' ? s : undefined;
      },
      5000,
      'Invalid state',
    );
    expect(state.errors?.join()).toMatch(/overlap/);
    await core.createNamespacedService({ namespace: 'default', body: lb('during-bad') });
    expect(await eventually(() => ingressOf('during-bad'), 3000, 'assigned from the last good config')).toMatch(/^192\.0\.2\./);
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'overlapping', 'metallb-system');
    await eventually(
      async () => ((await cluster.kube.get(RESOURCES.configurationStates, 'controller', 'metallb-system'))?.status as { result?: string })?.result === 'Valid' || undefined,
      5000,
      'Valid again',
    );
    await r.stop();
  });
});

describe('IPAddressPool status', () => {
  it('the leader writes used and free into each pool, and metrics for every pool, empty ones too', async () => {
    const custom = kubeConfigFor(cluster.api).makeApiClient(CustomObjectsApi);
    await cluster.api.store.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'spare', namespace: 'metallb-system' },
      spec: { addresses: ['198.51.100.0/30', '2001:db8:1::/120'], autoAssign: false },
    } as never);
    const r = await new Replica('a').start();
    await eventually(() => r.elector.leading, 10_000, 'leadership');
    const statusOf = async (name: string) =>
      (
        (await custom.getNamespacedCustomObject({ group: 'metallb.io', version: 'v1beta1', namespace: 'metallb-system', plural: 'ipaddresspools', name })) as {
          status?: Record<string, unknown>;
        }
      ).status;
    // The spare pool holds 4 + 256 addresses, none used.
    expect(await eventually(async () => ((await statusOf('spare'))?.free === '260' ? statusOf('spare') : undefined), 3000, 'spare status')).toEqual({
      assignedIPv4: 0,
      assignedIPv6: 0,
      availableIPv4: 4,
      availableIPv6: 256,
      used: 0,
      free: '260',
    });
    const usedBefore = Number((await eventually(() => statusOf('main'), 3000, 'main status'))?.used);
    await core.createNamespacedService({ namespace: 'default', body: lb('counted-1') });
    await core.createNamespacedService({ namespace: 'default', body: lb('counted-2', { ipFamilyPolicy: 'SingleStack' }) });
    await core.createNamespacedService({
      namespace: 'default',
      body: { ...lb('from-spare'), metadata: { name: 'from-spare', annotations: { 'metallb.io/address-pool': 'spare' } } },
    });
    const main = await eventually(
      async () => {
        const s = await statusOf('main');
        return Number(s?.used) === usedBefore + 2 ? s : undefined;
      },
      3000,
      'main counts two more',
    );
    expect(main).toMatchObject({ assignedIPv4: usedBefore + 2, availableIPv4: 64 - usedBefore - 2, free: String(64 - usedBefore - 2) });
    await eventually(async () => ((await statusOf('spare'))?.used === 1 ? true : undefined), 3000, 'spare counts one');
    // kubectl get's printer columns read these fields.
    const text = await r.metrics.text();
    expect(text).toMatch(/^metallb_allocator_addresses_in_use_total\{pool="spare"\} 1$/m);
    expect(text).toMatch(/^metallb_allocator_addresses_total\{pool="spare"\} 260$/m);
    // The leader has reconciled every Service since it took the lead.
    expect(text).toMatch(/^metallb_controller_synced_bool 1$/m);
    expect(text).toMatch(new RegExp(`^metallb_allocator_addresses_in_use_total\\{pool="main"\\} ${usedBefore + 2}$`, 'm'));
    // Freed addresses are counted back, and a status write does not make the controller re-read the configuration in a loop.
    for (const n of ['counted-1', 'counted-2', 'from-spare']) await core.deleteNamespacedService({ name: n, namespace: 'default' });
    await eventually(async () => ((await statusOf('spare'))?.used === 0 && Number((await statusOf('main'))?.used) === usedBefore ? true : undefined), 5000, 'freed');
    const rv = (await custom.getNamespacedCustomObject({ group: 'metallb.io', version: 'v1beta1', namespace: 'metallb-system', plural: 'ipaddresspools', name: 'spare' })) as {
      metadata: { resourceVersion: string };
    };
    // A later configuration change, processed: the loop has seen its own status writes of spare
    // (the same watch, earlier) and written the new pool's status since.
    await cluster.api.store.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'marker', namespace: 'metallb-system' },
      spec: { addresses: ['198.51.100.128/30'], autoAssign: false },
    } as never);
    await eventually(async () => ((await statusOf('marker'))?.free === '4' ? true : undefined), 3000, 'the marker pool status');
    const later = (await custom.getNamespacedCustomObject({ group: 'metallb.io', version: 'v1beta1', namespace: 'metallb-system', plural: 'ipaddresspools', name: 'spare' })) as {
      metadata: { resourceVersion: string };
    };
    expect(later.metadata.resourceVersion).toBe(rv.metadata.resourceVersion);
    await r.stop();
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'spare', 'metallb-system');
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'marker', 'metallb-system');
  });
});
