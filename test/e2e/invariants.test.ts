/**
 * The invariant checker itself, on hand-built Services and IPClaims: it passes a consistent
 * cluster (single, shared, dual-stack, pending, another class), catches each kind of violation
 * with a message naming the Service, the IP and what is wrong, and reads the API server double's
 * store (assertInvariants, waitForInvariants).
 */
import { startApiServer, type ApiServer, type KubeObject } from '../apiserver/index.js';
import { assertInvariants, checkInvariants, formatViolations, waitForInvariants, type ClaimLike, type ServiceLike, type Violation } from './invariants.js';
import { manifestObjects } from './support.js';

function svc(
  ref: string,
  o: { ips?: string; pool?: string; status?: string[]; shareKey?: string; oldShareKey?: string; cls?: string; annotations?: Record<string, string> } = {},
): ServiceLike {
  const [namespace, name] = ref.split('/');
  const annotations: Record<string, string> = { ...(o.annotations ?? {}) };
  if (o.ips !== undefined) annotations['metallb.io/assigned-ips'] = o.ips;
  if (o.pool !== undefined) annotations['metallb.io/ip-allocated-from-pool'] = o.pool;
  if (o.shareKey !== undefined) annotations['metallb.io/allow-shared-ip'] = o.shareKey;
  if (o.oldShareKey !== undefined) annotations['metallb.universe.tf/allow-shared-ip'] = o.oldShareKey;
  return {
    metadata: { namespace, name, annotations },
    spec: { type: 'LoadBalancer', ...(o.cls ? { loadBalancerClass: o.cls } : {}) },
    status: { loadBalancer: { ingress: (o.status ?? []).map((ip) => ({ ip })) } },
  };
}

/** A Service settled on `ips` (annotation and status) from `pool`. */
const settled = (ref: string, ips: string[], pool = 'p', extra: Parameters<typeof svc>[1] = {}) => svc(ref, { ips: ips.join(','), pool, status: ips, ...extra });

function claim(ip: string, holders: string[], o: { pool?: string; sharingKey?: string; name?: string } = {}): ClaimLike {
  const name = o.name ?? (ip.includes(':') ? (ip.startsWith(':') ? '0' : '') + ip.replaceAll(':', '-') + (ip.endsWith(':') ? '0' : '') : ip);
  return {
    metadata: { name },
    spec: {
      ip,
      pool: o.pool ?? 'p',
      ...(o.sharingKey ? { sharingKey: o.sharingKey } : {}),
      holders: holders.map((h) => {
        const [namespace, n] = h.split('/');
        return { namespace: namespace ?? '', name: n ?? '' };
      }),
    },
  };
}

/** The violations, as `[n] service ip` strings (problems checked separately). */
const brief = (vs: Violation[]) => vs.map((v) => `[${v.invariant}] ${v.service ?? '-'} ${v.ip ?? '-'}`);

describe('checkInvariants: a consistent cluster', () => {
  it('passes single, dual-stack, shared (either annotation spelling), pending, unannotated and foreign-class Services', () => {
    const services = [
      settled('a/one', ['192.0.2.1']),
      settled('a/dual', ['192.0.2.2', '2001:db8::2']),
      settled('a/dns-tcp', ['192.0.2.3'], 'p', { shareKey: 'dns' }),
      settled('b/dns-udp', ['192.0.2.3'], 'p', { oldShareKey: 'dns' }),
      svc('a/pending'),
      svc('a/other-class', { status: ['198.51.100.9'], cls: 'example.com/other' }),
    ];
    const claims = [
      claim('192.0.2.1', ['a/one']),
      claim('192.0.2.2', ['a/dual']),
      claim('2001:db8::2', ['a/dual']),
      claim('192.0.2.3', ['a/dns-tcp', 'b/dns-udp'], { sharingKey: 'dns' }),
    ];
    expect(checkInvariants(services, claims)).toEqual([]);
    // A claim whose Service is not created yet (admission claims first) is no violation either.
    expect(checkInvariants(services, [...claims, claim('192.0.2.9', ['a/not-yet'])])).toEqual([]);
  });

  it('compares IPs by value: IPv6 text forms that differ are the same address', () => {
    const s = svc('a/v6', { ips: '2001:db8:0:0::a', pool: 'p', status: ['2001:DB8::A'] });
    expect(checkInvariants([s], [claim('2001:db8::a', ['a/v6'])])).toEqual([]);
  });

  it('checks Services of our own loadBalancerClass when one is given', () => {
    const s = svc('a/ours', { status: ['198.51.100.9'], cls: 'example.com/ours' });
    expect(checkInvariants([s], [])).toEqual([]);
    expect(brief(checkInvariants([s], [], { loadBalancerClass: 'example.com/ours', inFlight: true }))).toEqual(['[1] a/ours 198.51.100.9']);
  });
});

describe('checkInvariants: each violation', () => {
  it('1: an IP shown with no claim, in the annotation or in status only', () => {
    const vs = checkInvariants([settled('a/web', ['192.0.2.1']), svc('a/status-only', { status: ['192.0.2.7'] })], [], { inFlight: true });
    expect(brief(vs)).toEqual(['[1] a/web 192.0.2.1', '[1] a/status-only 192.0.2.7']);
    expect(vs[0]?.problem).toMatch(/shown in annotation and status, but no IPClaim exists/);
    expect(vs[1]?.problem).toMatch(/shown in status, but no IPClaim/);
  });

  it('1: a claim that does not list the Service showing its IP', () => {
    const vs = checkInvariants([settled('a/web', ['192.0.2.1'])], [claim('192.0.2.1', ['a/someone-else'])]);
    expect(brief(vs)).toContain('[1] a/web 192.0.2.1');
    expect(vs.find((v) => v.invariant === 1)?.problem).toMatch(/does not list the Service \(holders: a\/someone-else\)/);
  });

  it('1: a malformed IP in the annotation', () => {
    const vs = checkInvariants([svc('a/web', { ips: 'not-an-ip', pool: 'p', status: [] })], [], { inFlight: true });
    expect(vs).toEqual([expect.objectContaining({ invariant: 1, service: 'a/web', ip: 'not-an-ip', problem: expect.stringMatching(/not an IP/) })]);
  });

  it('2: one IP shown by two Services with no key, one key, or different keys', () => {
    const cases: [Parameters<typeof svc>[1], Parameters<typeof svc>[1], RegExp][] = [
      [{}, {}, /a\/x: no key; b\/y: no key/],
      [{ shareKey: 'k' }, {}, /a\/x: "k"; b\/y: no key/],
      [{ shareKey: 'k' }, { shareKey: 'j' }, /a\/x: "k"; b\/y: "j"/],
      [{ shareKey: 'k' }, { shareKey: 'j', oldShareKey: 'k' }, /b\/y: conflicting keys "j" .* and "k"/],
      [{ shareKey: '' }, { shareKey: '' }, /no key.*no key/],
    ];
    for (const [x, y, message] of cases) {
      const vs = checkInvariants([settled('a/x', ['192.0.2.5'], 'p', x), settled('b/y', ['192.0.2.5'], 'p', y)], [claim('192.0.2.5', ['a/x', 'b/y'], { sharingKey: 'k' })]);
      expect(brief(vs)).toEqual(['[2] a/x, b/y 192.0.2.5']);
      expect(vs[0]?.problem).toMatch(/shown by 2 Services without one common allow-shared-ip key/);
      expect(vs[0]?.problem).toMatch(message);
    }
  });

  it('2: a shared IP whose claim does not list every sharer, or carries another key', () => {
    const services = [settled('a/x', ['192.0.2.5'], 'p', { shareKey: 'k' }), settled('b/y', ['192.0.2.5'], 'p', { shareKey: 'k' })];
    const missing = checkInvariants(services, [claim('192.0.2.5', ['a/x'], { sharingKey: 'k' })]);
    expect(missing.filter((v) => v.invariant === 2)).toEqual([expect.objectContaining({ ip: '192.0.2.5', problem: 'shared, but the IPClaim does not list b/y' })]);
    const wrongKey = checkInvariants(services, [claim('192.0.2.5', ['a/x', 'b/y'], { sharingKey: 'other' })]);
    expect(wrongKey).toEqual([expect.objectContaining({ invariant: 2, problem: 'shared under key "k", but the IPClaim\'s sharingKey is "other"' })]);
  });

  it('3: annotation and status disagree (skipped in flight); the pool annotation names another pool or is missing (checked in flight too)', () => {
    const disagree = svc('a/web', { ips: '192.0.2.1', pool: 'p', status: [] });
    const claims = [claim('192.0.2.1', ['a/web'])];
    const vs = checkInvariants([disagree], claims);
    expect(vs).toEqual([expect.objectContaining({ invariant: 3, service: 'a/web', problem: 'annotation metallb.io/assigned-ips shows [192.0.2.1], status shows []' })]);
    expect(checkInvariants([disagree], claims, { inFlight: true })).toEqual([]);
    // Status ahead of the annotation, e.g. after someone edited the annotation.
    const ahead = checkInvariants([svc('a/web', { ips: '192.0.2.1', pool: 'p', status: ['192.0.2.2'] })], [...claims, claim('192.0.2.2', ['a/web'])]);
    expect(ahead).toEqual([expect.objectContaining({ invariant: 3, service: 'a/web', problem: 'annotation metallb.io/assigned-ips shows [192.0.2.1], status shows [192.0.2.2]' })]);

    const wrongPool = checkInvariants([settled('a/web', ['192.0.2.1'], 'q')], claims, { inFlight: true });
    expect(wrongPool).toEqual([
      expect.objectContaining({ invariant: 3, service: 'a/web', ip: '192.0.2.1', problem: 'metallb.io/ip-allocated-from-pool says "q", the IPClaim says pool "p"' }),
    ]);
    const noPool = checkInvariants([svc('a/web', { ips: '192.0.2.1', status: ['192.0.2.1'] })], claims, { inFlight: true });
    expect(noPool).toEqual([expect.objectContaining({ invariant: 3, problem: expect.stringMatching(/no metallb.io\/ip-allocated-from-pool annotation/) })]);
    const poolOnly = checkInvariants([svc('a/web', { pool: 'p' })], []);
    expect(poolOnly).toEqual([expect.objectContaining({ invariant: 3, problem: 'metallb.io/ip-allocated-from-pool says "p" but no IP is assigned' })]);
  });

  it('3: a claim listing an existing Service that shows another IP (once settled)', () => {
    const services = [settled('a/web', ['192.0.2.1'])];
    const claims = [claim('192.0.2.1', ['a/web']), claim('192.0.2.9', ['a/web'])];
    expect(checkInvariants(services, claims)).toEqual([
      expect.objectContaining({ invariant: 3, service: 'a/web', ip: '192.0.2.9', problem: 'the IPClaim lists the Service, which shows [192.0.2.1] instead' }),
    ]);
    expect(checkInvariants(services, claims, { inFlight: true })).toEqual([]);
  });

  it('4: a holder listed twice; two claims for one IP; a claim not named after its IP', () => {
    const twice = checkInvariants([settled('a/web', ['192.0.2.1'])], [claim('192.0.2.1', ['a/web', 'a/web'])]);
    expect(twice).toEqual([expect.objectContaining({ invariant: 4, service: 'a/web', claim: '192.0.2.1', problem: 'IPClaim 192.0.2.1 lists holder a/web 2 times' })]);
    const two = checkInvariants([], [claim('2001:db8::1', ['a/x']), claim('2001:db8:0::1', ['a/y'], { name: '2001-db8--1' })], { inFlight: true });
    expect(brief(two)).toEqual(['[4] - 2001:db8::1']);
    expect(two[0]?.problem).toBe('two IPClaims for 2001:db8::1: 2001-db8--1 and 2001-db8--1');
    const misnamed = checkInvariants([], [claim('192.0.2.1', ['a/x'], { name: '192.0.2.2' })], { inFlight: true });
    expect(misnamed).toEqual([expect.objectContaining({ invariant: 4, problem: 'IPClaim 192.0.2.2 is for 192.0.2.1, whose claim name is 192.0.2.1' })]);
  });

  it('lists every violation in one message, each with its Service, IP and what is wrong', () => {
    const vs = checkInvariants([settled('a/orphan', ['192.0.2.1']), settled('a/x', ['192.0.2.5']), settled('b/y', ['192.0.2.5'])], [claim('192.0.2.5', ['a/x', 'b/y', 'b/y'])]);
    const text = formatViolations(vs);
    expect(text.split('\n')[0]).toBe(`${vs.length} invariant violations:`);
    expect(vs.length).toBe(3);
    expect(text).toContain('[1] a/orphan 192.0.2.1: shown in annotation and status, but no IPClaim exists for it');
    expect(text).toContain('[2] a/x, b/y 192.0.2.5: shown by 2 Services without one common allow-shared-ip key (a/x: no key; b/y: no key)');
    expect(text).toContain('[4] b/y 192.0.2.5: IPClaim 192.0.2.5 lists holder b/y 2 times');
  });
});

describe('against the API server double', () => {
  let api: ApiServer;
  beforeAll(async () => {
    api = await startApiServer();
    for (const o of manifestObjects()) await api.store.create(o);
    await api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  });
  afterAll(async () => {
    await api?.stop();
  });

  async function service(name: string, ip: string | undefined): Promise<void> {
    const created = await api.store.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'shop', ...(ip ? { annotations: { 'metallb.io/assigned-ips': ip, 'metallb.io/ip-allocated-from-pool': 'p' } } : {}) },
      spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }] },
    } as KubeObject);
    if (ip) await api.store.updateStatus({ ...created, status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } } as KubeObject);
  }
  const ipClaim = (ip: string, holder: string) =>
    api.store.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPClaim',
      metadata: { name: ip },
      spec: { ip, pool: 'p', family: 'IPv4', holders: [{ namespace: 'shop', name: holder }] },
    } as KubeObject);

  it('reads Services of every namespace and every IPClaim from the store', async () => {
    await ipClaim('192.0.2.1', 'web');
    await service('web', '192.0.2.1');
    await service('pending', undefined);
    expect(() => assertInvariants(api)).not.toThrow();
    await service('orphan', '192.0.2.2');
    expect(() => assertInvariants(api)).toThrow('1 invariant violation:\n  [1] shop/orphan 192.0.2.2: shown in annotation and status, but no IPClaim exists for it');
  });

  it('waitForInvariants waits for the fix, and fails with the last violations when none comes', async () => {
    const waiting = waitForInvariants(api, { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await ipClaim('192.0.2.2', 'orphan');
    await expect(waiting).resolves.toBeUndefined();
    await service('orphan-2', '192.0.2.3');
    await expect(waitForInvariants(api, { timeoutMs: 200 })).rejects.toThrow(/still after 200 ms: 1 invariant violation:\n {2}\[1\] shop\/orphan-2 192\.0\.2\.3/);
  });
});
