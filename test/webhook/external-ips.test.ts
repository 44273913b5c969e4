/**
 * The spec.externalIPs handler (CVE-2020-8554) on its own: a real Allocator as the ledger's
 * mirror, pools through the real parser, namespace labels from a map.
 */
import { Allocator, newRequest } from '../../core/allocator/index.js';
import { parseConfig, type Pool } from '../../core/config/index.js';
import { parseIP } from '../../core/ip/index.js';
import { ExternalIPAdmission, type ExternalIPLedger } from '../../webhook/external-ips.js';
import type { AdmissionRequest } from '../../webhook/review.js';

function poolsOf(specs: Record<string, Record<string, unknown>>): Pool[] {
  const resources = Object.entries(specs).map(([name, spec]) => ({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name, namespace: 'metallb-system' },
    spec,
  }));
  const { config, errors } = parseConfig({ resources });
  if (errors.length > 0) throw new Error(JSON.stringify(errors));
  return config.pools;
}

const POOLS = poolsOf({
  // Only namespace team-a (by name) or namespaces labelled tier=gold.
  'team-a': { addresses: ['192.0.2.0/28'], serviceAllocation: { namespaces: ['team-a'], namespaceSelectors: [{ matchLabels: { tier: 'gold' } }] } },
  // Only Services labelled exposed=yes.
  labelled: { addresses: ['192.0.2.16/28'], serviceAllocation: { serviceSelectors: [{ matchLabels: { exposed: 'yes' } }] } },
  // Everyone; not auto-assigned, which does not matter here.
  shared: { addresses: ['198.51.100.0/28', '2001:db8::/120'], autoAssign: false },
  // Everyone, avoiding .0/.255: those still belong to it.
  buggy: { addresses: ['203.0.113.0/24'], avoidBuggyIPs: true },
});

const NAMESPACE_LABELS: Record<string, Record<string, string>> = { 'team-a': {}, 'team-b': {}, gold: { tier: 'gold' } };

interface Setup {
  handler: ExternalIPAdmission;
  allocator: Allocator;
  refreshed: string[];
}

function setup(options: { onRefresh?: (name: string, allocator: Allocator) => void } = {}): Setup {
  const allocator = new Allocator(POOLS);
  const refreshed: string[] = [];
  const ledger: ExternalIPLedger = {
    allocator,
    currentPools: () => POOLS,
    refresh: (name) => {
      refreshed.push(name);
      options.onRefresh?.(name, allocator);
      return Promise.resolve();
    },
  };
  const handler = new ExternalIPAdmission({ ledger, namespaces: { labels: (ns) => Promise.resolve(NAMESPACE_LABELS[ns] ?? {}) } });
  return { handler, allocator, refreshed };
}

/** Makes `namespace/name` hold `ip` as its load-balancer IP. */
function hold(allocator: Allocator, namespace: string, name: string, ip: string, extra: Partial<Parameters<typeof newRequest>[0]> = {}): void {
  const parsed = parseIP(ip);
  if (!parsed.ok) throw new Error(parsed.error);
  const r = allocator.assign(newRequest({ namespace, name, requestedIPs: [parsed.value], ...extra }));
  if (!r.ok) throw new Error(r.failure.message);
}

function service(namespace: string, name: string, externalIPs: unknown, extra: { labels?: Record<string, string>; type?: string } = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: { type: extra.type ?? 'ClusterIP', ports: [{ port: 80 }], ...(externalIPs === undefined ? {} : { externalIPs }) },
  };
}

function review(object: Record<string, unknown>, options: { operation?: 'CREATE' | 'UPDATE' | 'DELETE'; oldObject?: Record<string, unknown> } = {}): AdmissionRequest {
  const meta = object.metadata as { name?: string; namespace: string };
  return {
    uid: 'u',
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
    name: meta.name ?? '',
    namespace: meta.namespace,
    operation: options.operation ?? 'CREATE',
    userInfo: { username: 'alice' },
    object,
    ...(options.oldObject ? { oldObject: options.oldObject } : {}),
    dryRun: false,
  };
}

describe('ExternalIPAdmission', () => {
  test.each<[string, string, string[], Record<string, string> | undefined]>([
    ['an address outside every pool', 'team-b', ['10.1.2.3'], undefined],
    ['an address of a pool the namespace is listed in', 'team-a', ['192.0.2.5'], undefined],
    ['an address of a pool whose namespaceSelector matches', 'gold', ['192.0.2.5'], undefined],
    ['an address of a pool whose serviceSelector matches the Service', 'team-b', ['192.0.2.20'], { exposed: 'yes' }],
    ['a free address of a pool open to everyone, both families', 'team-b', ['198.51.100.3', '2001:db8::3'], undefined],
    ['a free .0 of a pool that avoids it', 'team-b', ['203.0.113.0'], undefined],
  ])('allows %s', async (_name, namespace, ips, labels) => {
    const { handler } = setup();
    expect(await handler.validate(review(service(namespace, 'web', ips, labels ? { labels } : {})))).toEqual({ allowed: true });
  });

  test('refuses an address of a pool the namespace may not use, naming the pool, the namespace and why', async () => {
    const { handler } = setup();
    const v = await handler.validate(review(service('team-b', 'sneaky', ['10.0.0.1', '192.0.2.5'])));
    expect(v).toEqual({
      allowed: false,
      code: 403,
      message:
        'spec.externalIPs[1] 192.0.2.5 is in a MetalLB pool team-b/sneaky may not use: pool "team-a" serves only namespaces team-a and namespaces matching its namespaceSelectors, ' +
        'not namespace "team-b" of team-b/sneaky; an external IP receives all traffic for its address, so one inside a MetalLB pool must be free and from a pool the namespace may use (CVE-2020-8554)',
    });
  });

  test("refuses an address of a pool whose serviceSelectors do not match the Service (the allocator's rule)", async () => {
    const { handler } = setup();
    const v = await handler.validate(review(service('team-b', 'web', ['192.0.2.20'])));
    expect(v).toMatchObject({ allowed: false, code: 403 });
    expect(v.message).toContain(
      'spec.externalIPs[0] 192.0.2.20 is in a MetalLB pool team-b/web may not use: pool "labelled" serves only Services matching its serviceSelectors and team-b/web\'s labels do not match;',
    );
  });

  test("refuses another Service's load-balancer IP, even in a pool the namespace may use", async () => {
    const { handler, allocator } = setup();
    hold(allocator, 'shop', 'web', '198.51.100.7');
    const v = await handler.validate(review(service('team-b', 'sneaky', ['198.51.100.7'])));
    expect(v).toEqual({
      allowed: false,
      code: 403,
      message:
        'spec.externalIPs[0] 198.51.100.7 is the load-balancer IP of shop/web (pool "shared"); an external IP receives all traffic for its address, so one inside a MetalLB pool must be free and from a pool the namespace may use (CVE-2020-8554)',
    });
  });

  test('refuses an IPv6 load-balancer IP written in another spelling', async () => {
    const { handler, allocator } = setup();
    hold(allocator, 'shop', 'web', '2001:db8::7');
    const v = await handler.validate(review(service('team-b', 'sneaky', ['2001:0db8:0:0::7'])));
    expect(v.message).toContain('spec.externalIPs[0] 2001:db8::7 is the load-balancer IP of shop/web');
  });

  test('names every holder of a shared IP, and a tentative reservation by its Service', async () => {
    const { handler, allocator } = setup();
    hold(allocator, 'shop', 'a', '198.51.100.8', { sharingKey: 'k', ports: [{ port: 80, protocol: 'TCP' }] });
    hold(allocator, 'shop', 'b*tok1', '198.51.100.8', { sharingKey: 'k', ports: [{ port: 81, protocol: 'TCP' }] });
    const v = await handler.validate(review(service('team-b', 'sneaky', ['198.51.100.8'])));
    expect(v.message).toContain('is the load-balancer IP of shop/a, shop/b (pool "shared")');
  });

  test('allows a Service its own load-balancer IP as an external IP, shared or not', async () => {
    const { handler, allocator } = setup();
    hold(allocator, 'shop', 'web', '198.51.100.9', { sharingKey: 'k', ports: [{ port: 80, protocol: 'TCP' }] });
    hold(allocator, 'shop', 'api', '198.51.100.9', { sharingKey: 'k', ports: [{ port: 81, protocol: 'TCP' }] });
    const v = await handler.validate(review(service('shop', 'web', ['198.51.100.9'], { type: 'LoadBalancer' })));
    expect(v).toEqual({ allowed: true });
  });

  test('reads a free address back from the API server once, and refuses it when another replica just took it', async () => {
    const { handler, refreshed } = setup({ onRefresh: (_name, allocator) => hold(allocator, 'shop', 'fresh', '198.51.100.10') });
    const v = await handler.validate(review(service('team-b', 'sneaky', ['198.51.100.10'])));
    expect(refreshed).toEqual(['198.51.100.10']);
    expect(v.message).toContain('is the load-balancer IP of shop/fresh');
  });

  test('on UPDATE checks only the addresses the update adds', async () => {
    const { handler } = setup();
    const old = service('team-b', 'legacy', ['192.0.2.5']);
    // Grandfathered (admitted before the pool existed): a label change, or a finalizer removal, goes through.
    const relabelled = { ...old, metadata: { ...(old.metadata as object), labels: { x: 'y' } } };
    expect(await handler.validate(review(relabelled, { operation: 'UPDATE', oldObject: old }))).toEqual({ allowed: true });
    // Adding another one of the forbidden pool is refused.
    const more = service('team-b', 'legacy', ['192.0.2.5', '192.0.2.6']);
    const v = await handler.validate(review(more, { operation: 'UPDATE', oldObject: old }));
    expect(v.message).toMatch(/^spec.externalIPs\[1\] 192.0.2.6 is in a MetalLB pool team-b\/legacy may not use/);
  });

  test.each<[string, unknown, string]>([
    ['not a list', '192.0.2.5', 'spec.externalIPs must be a list of IP addresses, got "192.0.2.5"'],
    ['an entry that is not an IP', ['192.0.2.5/32'], 'spec.externalIPs[0]: "192.0.2.5/32" is not an IP address'],
    ['an entry that is a number', [3221225989], 'spec.externalIPs[0]: 3221225989 is not an IP address'],
  ])('refuses externalIPs %s with HTTP-like 400 and one line', async (_name, externalIPs, message) => {
    const { handler } = setup();
    expect(await handler.validate(review(service('team-a', 'web', externalIPs)))).toEqual({ allowed: false, code: 400, message });
  });

  test('has nothing to say about Services without external IPs, or about DELETE', async () => {
    const { handler } = setup();
    expect(await handler.validate(review(service('team-b', 'web', undefined)))).toEqual({ allowed: true });
    expect(await handler.validate(review(service('team-b', 'web', [])))).toEqual({ allowed: true });
    const del = { ...review(service('team-b', 'web', ['192.0.2.5'])), operation: 'DELETE' as const };
    expect(await handler.validate(del)).toEqual({ allowed: true });
  });

  test('a Service created with generateName is named by its prefix', async () => {
    const { handler } = setup();
    const svc = service('team-b', '', ['192.0.2.5']);
    (svc.metadata as Record<string, unknown>).generateName = 'web-';
    delete (svc.metadata as Record<string, unknown>).name;
    const v = await handler.validate(review(svc));
    expect(v.message).toContain('is in a MetalLB pool team-b/web-<generated> may not use');
  });
});
