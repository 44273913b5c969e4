/**
 * Service allocation at scale: ClusterIPs and node ports come from an index of what stored
 * Services hold (kept from the store's change stream), not from a scan of every Service on each
 * write. The index must free what deletes of every kind free, and allocate exactly what a
 * full scan would (the lowest free value).
 */
import { jest } from '@jest/globals';
import { startApiServer, type ApiServer, type KubeObject } from './index.js';
import { canonicalIp } from './services.js';

const service = (name: string, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', ...metadata },
  spec: { type: 'NodePort', ports: [{ port: 80 }], ...spec },
});

/** What a full scan of storage says is held. */
function scan(api: ApiServer): { ips: Set<string>; ports: Set<number> } {
  const ips = new Set<string>();
  const ports = new Set<number>();
  for (const s of api.store.raw.peek('services')) {
    const spec = (s.spec ?? {}) as { clusterIPs?: string[]; ports?: { nodePort?: number }[]; healthCheckNodePort?: number };
    for (const ip of spec.clusterIPs ?? []) if (ip !== 'None') ips.add(canonicalIp(ip));
    for (const p of spec.ports ?? []) if (p.nodePort) ports.add(p.nodePort);
    if (spec.healthCheckNodePort) ports.add(spec.healthCheckNodePort);
  }
  return { ips, ports };
}

const ipOf = (s: KubeObject): string => (s.spec as { clusterIP: string }).clusterIP;
const portOf = (s: KubeObject): number => (s.spec as { ports: { nodePort: number }[] }).ports[0]?.nodePort as number;

describe('the Service allocation index', () => {
  let api: ApiServer;

  beforeEach(async () => {
    // Five free IPv4 addresses (.2-.6 of a /29: the kubernetes Service has .1) and four node
    // ports: ranges run out quickly.
    api = await startApiServer({ serviceNetwork: { ipv4Cidr: '198.51.100.0/29', nodePorts: [30000, 30003] } });
  });

  afterEach(async () => {
    await api.stop();
  });

  it('frees a ClusterIP and node port on delete, and hands out the lowest free one again', async () => {
    const made = [];
    for (let i = 0; i < 4; i++) made.push(await api.store.create(service(`s${i}`)));
    expect(made.map(ipOf)).toEqual(['198.51.100.2', '198.51.100.3', '198.51.100.4', '198.51.100.5']);
    expect(made.map(portOf)).toEqual([30000, 30001, 30002, 30003]);
    await expect(api.store.create(service('full'))).rejects.toMatchObject({ status: { code: 422, message: expect.stringContaining('range is full') } });
    await api.store.delete('v1', 'Service', 's1', 'default');
    await api.store.delete('v1', 'Service', 's2', 'default');
    const again = await api.store.create(service('again'));
    expect([ipOf(again), portOf(again)]).toEqual(['198.51.100.3', 30001]);
  });

  it('frees what garbage collection deletes', async () => {
    const owner = await api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner', namespace: 'default' } });
    const ownerRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid };
    for (let i = 0; i < 4; i++) await api.store.create(service(`owned${i}`, {}, { ownerReferences: [ownerRef] }));
    await expect(api.store.create(service('full'))).rejects.toMatchObject({ status: { code: 422 } });
    await api.store.delete('v1', 'ConfigMap', 'owner', 'default');
    await api.settle();
    expect(api.store.list('v1', 'Service', { namespace: 'default' }).map((s) => s.metadata.name)).not.toContain('owned0');
    const after = await api.store.create(service('after'));
    expect([ipOf(after), portOf(after)]).toEqual(['198.51.100.2', 30000]);
  });

  it('frees node ports a type change drops, and keeps what an update keeps', async () => {
    const a = await api.store.create(service('a', { type: 'LoadBalancer', externalTrafficPolicy: 'Local' }));
    const spec = a.spec as { ports: { nodePort: number }[]; healthCheckNodePort: number };
    expect([spec.ports[0]?.nodePort, spec.healthCheckNodePort]).toEqual([30000, 30001]);
    await api.store.patch('v1', 'Service', 'a', 'default', { spec: { type: 'ClusterIP', externalTrafficPolicy: null } });
    expect(scan(api).ports.size).toBe(0);
    const b = await api.store.create(service('b'));
    expect([ipOf(b), portOf(b)]).toEqual(['198.51.100.3', 30000]);
    // An update that keeps its allocations does not see them as taken by someone else.
    await api.store.patch('v1', 'Service', 'b', 'default', { metadata: { labels: { x: 'y' } } });
    expect(portOf(api.store.get('v1', 'Service', 'b', 'default') as KubeObject)).toBe(30000);
  });

  it('allocates what a full scan would, through any mix of creates, updates and deletes', async () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const live = new Set<string>();
    for (let step = 0; step < 200; step++) {
      const name = `r${random(8)}`;
      const before = scan(api);
      if (live.has(name) && random(3) === 0) {
        await api.store.patch('v1', 'Service', name, 'default', { spec: { type: random(2) ? 'ClusterIP' : 'NodePort' } });
      } else if (live.has(name)) {
        await api.store.delete('v1', 'Service', name, 'default');
        live.delete(name);
      } else {
        const lowestIp = ['1', '2', '3', '4', '5', '6'].map((d) => `198.51.100.${d}`).find((ip) => !before.ips.has(ip));
        const lowestPort = [30000, 30001, 30002, 30003].find((p) => !before.ports.has(p));
        try {
          const s = await api.store.create(service(name));
          live.add(name);
          expect([ipOf(s), portOf(s)]).toEqual([lowestIp, lowestPort]);
        } catch (e) {
          expect(lowestIp === undefined || lowestPort === undefined).toBe(true);
          expect(e).toMatchObject({ status: { code: 422 } });
        }
      }
    }
  });
});

describe('Service creates at scale', () => {
  it('never scan the stored Services (3,000 creates through the REST layer)', async () => {
    const api = await startApiServer({ serviceNetwork: { primaryFamily: 'IPv6', nodePorts: [30000, 34999] } });
    try {
      const peek = jest.spyOn(api.store.raw, 'peek');
      const list = jest.spyOn(api.store.raw, 'list');
      const N = 3000;
      const lap = 1000;
      const laps: number[] = [];
      let started = performance.now();
      for (let i = 0; i < N; i++) {
        await api.store.create(service(`svc-${i}`, { type: 'LoadBalancer', ports: [{ name: 'http', port: 80 }] }));
        if ((i + 1) % lap === 0) {
          laps.push(performance.now() - started);
          started = performance.now();
        }
      }
      const scans = [...peek.mock.calls, ...list.mock.calls].filter(([resource]) => resource === 'services');
      expect(scans).toEqual([]);
      const { ips, ports } = scan(api);
      expect(ips.size).toBe(N + 1); // and the kubernetes Service's
      expect(ports.size).toBe(N);
      // Timings depend on the machine, so they are printed, not asserted.
      process.stderr.write(`Service creates per second, per ${lap}: ${laps.map((ms) => Math.round((lap * 1000) / ms)).join(', ')}\n`);
    } finally {
      await api.stop();
    }
  });
});
