/**
 * The claims ledger against the API server double: replicas racing for addresses through the
 * API server never hand one IP to two Services that may not share it, and leak nothing.
 */
import { newRequest, serviceKey } from '../../core/allocator/index.js';
import { formatIP } from '../../core/ip/index.js';
import { Ledger, type IPClaim } from '../../webhook/claims.js';
import { RESOURCES, type KubeApi } from '../../kube/client.js';
import { pools, startCluster, type Cluster } from './support.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster.stop();
});

async function claimsNow(): Promise<IPClaim[]> {
  return (await cluster.kube.list(RESOURCES.ipClaims)).items as IPClaim[];
}

async function clearClaims(): Promise<void> {
  for (const c of await claimsNow()) await cluster.kube.delete(RESOURCES.ipClaims, c.metadata.name as string);
}

/** Ledgers a test started: stopped after it even when it fails, so no watch outlives it. */
const started = new Set<Ledger>();
function ledger(...args: ConstructorParameters<typeof Ledger>): Ledger {
  const l = new Ledger(...args);
  started.add(l);
  return l;
}

describe('Ledger', () => {
  afterEach(async () => {
    for (const l of started) l.stop();
    started.clear();
    await clearClaims();
  });

  it('two replicas allocating 200 Services at once from a /24: no IP twice, none leaked', async () => {
    const p = pools({ small: { addresses: ['192.0.2.0/24'] } });
    const a = ledger(cluster.newKube(), p);
    const b = ledger(cluster.newKube(), p);
    await Promise.all([a.start(), b.start()]);
    const services = Array.from({ length: 200 }, (_, i) => newRequest({ namespace: 'ns', name: `svc-${i}`, ports: [{ port: 80, protocol: 'TCP' }] }));
    const results = await Promise.all(services.map((req, i) => (i % 2 === 0 ? a : b).allocate(req)));
    const ips = results.map((r) => {
      if (!r.ok) throw new Error(r.failure.message);
      return formatIP(r.ips[0] as never);
    });
    expect(new Set(ips).size).toBe(200);
    const claims = await claimsNow();
    expect(claims).toHaveLength(200);
    const byIP = new Map(claims.map((c) => [c.spec.ip, c.spec.holders.map((h) => serviceKey(h.namespace, h.name))]));
    results.forEach((r, i) => {
      if (r.ok) expect(byIP.get(formatIP(r.ips[0] as never))).toEqual([`ns/svc-${i}`]);
    });
    // Release half through the other replica: their claims go, nothing else does.
    await Promise.all(services.slice(0, 100).map((req, i) => (i % 2 === 0 ? b : a).release(serviceKey(req.namespace, req.name))));
    expect(await claimsNow()).toHaveLength(100);
    a.stop();
    b.stop();
  }, 30_000);

  it('races for one shared IP join it; incompatible ones are refused', async () => {
    const p = pools({ one: { addresses: ['198.51.100.7/32'] } });
    const a = ledger(cluster.newKube(), p);
    const b = ledger(cluster.newKube(), p);
    await Promise.all([a.start(), b.start()]);
    const req = (name: string, port: number, sharingKey?: string) =>
      newRequest({ namespace: 'ns', name, ports: [{ port, protocol: 'TCP' }], ...(sharingKey ? { sharingKey } : {}) });
    const results = await Promise.all([a.allocate(req('dns-tcp', 53, 'dns')), b.allocate(req('dns-udp', 54, 'dns')), a.allocate(req('web', 80))]);
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    const [claim] = await claimsNow();
    expect(claim?.spec.holders.map((h) => h.name).sort()).toEqual(['dns-tcp', 'dns-udp']);
    // kubectl's HOLDERS column shows both.
    expect(claim?.spec.holderNames?.split(',').sort()).toEqual(['ns/dns-tcp', 'ns/dns-udp']);
    // Same port under the same key: refused, even through the other replica.
    const clash = await b.allocate(req('dns-again', 53, 'dns'));
    expect(clash.ok).toBe(false);
    await a.release('ns/dns-tcp');
    await b.release('ns/dns-udp');
    expect(await claimsNow()).toHaveLength(0);
    a.stop();
    b.stop();
  });

  it('dry run claims nothing; a restarted replica keeps every IP', async () => {
    const p = pools({ pool: { addresses: ['203.0.113.0/28'] } });
    const a = ledger(cluster.newKube(), p);
    await a.start();
    const dry = await a.allocate(newRequest({ namespace: 'ns', name: 'dry' }), { dryRun: true });
    // The answer a real allocation would get (the pool's first address), and nothing written or kept.
    expect(dry.ok && { pool: dry.pool, ips: dry.ips.map(formatIP) }).toEqual({ pool: 'pool', ips: ['203.0.113.0'] });
    expect(await claimsNow()).toHaveLength(0);
    expect(a.heldBy('ns/dry')).toBeUndefined();
    const first = await a.allocate(newRequest({ namespace: 'ns', name: 'x' }));
    const second = await a.allocate(newRequest({ namespace: 'ns', name: 'y' }));
    expect(first.ok && first.ips.map(formatIP)).toEqual(['203.0.113.0']);
    expect(second.ok && second.ips.map(formatIP)).toEqual(['203.0.113.1']);
    a.stop();
    const restarted = ledger(cluster.newKube(), p);
    await restarted.start();
    const again = await restarted.allocate(newRequest({ namespace: 'ns', name: 'y' }));
    expect(again.ok && { changed: again.changed, ips: again.ips.map(formatIP) }).toEqual({ changed: false, ips: ['203.0.113.1'] });
    const third = await restarted.allocate(newRequest({ namespace: 'ns', name: 'z' }));
    expect(third.ok && third.ips.map(formatIP)).toEqual(['203.0.113.2']);
    restarted.stop();
  });

  it('dual-stack takes one claim per family', async () => {
    const p = pools({ dual: { addresses: ['192.0.2.10/31', '2001:db8::/126'] } });
    const a = ledger(cluster.newKube(), p);
    await a.start();
    const r = await a.allocate(newRequest({ namespace: 'ns', name: 'dual', familyPolicy: 'RequireDualStack', families: ['IPv6', 'IPv4'] }));
    expect(r.ok).toBe(true);
    expect((await claimsNow()).map((c) => c.metadata.name).sort()).toEqual(['192.0.2.10', '2001-db8--0']);
    a.stop();
  });
  it('allocations of different Services overlap: no lock is held across the claim create', async () => {
    const p = pools({ slow: { addresses: ['192.0.2.0/27'] } });
    const inner = cluster.newKube();
    let inFlight = 0;
    let most = 0;
    // Every claim create takes 150 ms in the API server.
    const slow: KubeApi = Object.assign(Object.create(inner) as KubeApi, {
      create: async (...args: Parameters<KubeApi['create']>) => {
        inFlight++;
        most = Math.max(most, inFlight);
        try {
          await new Promise((r) => setTimeout(r, 150));
          return await inner.create(...args);
        } finally {
          inFlight--;
        }
      },
    });
    const a = ledger(slow, p);
    const b = ledger(cluster.newKube(), p);
    await Promise.all([a.start(), b.start()]);
    const t0 = Date.now();
    const reqs = Array.from({ length: 10 }, (_, i) => newRequest({ namespace: 'ns', name: `slow-${i}` }));
    // The other replica takes two of the addresses a will try first: a loses those races (409) meanwhile.
    const [results] = await Promise.all([
      Promise.all(reqs.map((r) => a.allocate(r))),
      b.allocate(newRequest({ namespace: 'ns', name: 'other-0' })),
      b.allocate(newRequest({ namespace: 'ns', name: 'other-1' })),
    ]);
    const elapsed = Date.now() - t0;
    expect(most).toBeGreaterThanOrEqual(5);
    // Serialized, ten creates would take 1.5 s at least.
    expect(elapsed).toBeLessThan(1000);
    const ips = results.map((r) => (r.ok ? formatIP(r.ips[0] as never) : r.failure.message));
    expect(new Set(ips).size).toBe(10);
    const claims = await claimsNow();
    expect(claims).toHaveLength(12);
    expect(new Set(claims.map((c) => c.spec.ip)).size).toBe(12);
    // The mirror agrees with the API server: every Service holds exactly its claim.
    for (const [i, r] of results.entries()) expect(r.ok && a.heldBy(`ns/slow-${i}`)?.ips.map(formatIP)).toEqual(r.ok && r.ips.map(formatIP));
    expect(a.allocator.usage('slow')?.used).toBe(12n);
    // Allocating again is free: no API call.
    most = 0;
    const again = await Promise.all(reqs.map((r) => a.allocate(r)));
    expect(again.every((r) => r.ok && !r.changed)).toBe(true);
    expect(most).toBe(0);
    a.stop();
    b.stop();
  });
});
