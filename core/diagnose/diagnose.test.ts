/**
 * core/diagnose, table-driven, from plain objects as the API returns them. Node orders for
 * 192.0.2.10 were computed by hand (`printf '%s' 'node-x#192.0.2.10' | sha256sum`, see
 * core/announce/layer2.test.ts): node-d, node-c, node-b, node-a.
 */
import { parseConfig } from '../config/index.js';
import { analyze, explainService, formatCount, formatPercent, peerRows, poolRows, serviceRows, simulateDrain, closest, type Snapshot } from './index.js';
import { HOLDER_REQUESTS_ANNOTATION, prepareClaims } from './claims.js';
import { seededRandom } from '../seeded.js';
import { bgpRoutes } from '../announce/index.js';

const NS = 'metallb-system';

const pool = (name: string, addresses: string[], spec: Record<string, unknown> = {}) => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { name, namespace: NS },
  spec: { addresses, ...spec },
});
const l2ad = (name: string, spec: Record<string, unknown> = {}) => ({ apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name, namespace: NS }, spec });

const node = (name: string, ready = true) => ({ metadata: { name, labels: {} }, status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } });
const NODES = ['node-a', 'node-b', 'node-c', 'node-d'].map((n) => node(n));

interface SvcOptions {
  ip?: string;
  annotations?: Record<string, string>;
  policy?: 'Cluster' | 'Local';
  loadBalancerIP?: string;
  port?: number;
}
const svc = (ns: string, name: string, o: SvcOptions = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns, annotations: o.annotations ?? {} },
  spec: {
    type: 'LoadBalancer',
    selector: { app: name },
    ports: [{ port: o.port ?? 80, protocol: 'TCP' }],
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    externalTrafficPolicy: o.policy ?? 'Cluster',
    ...(o.loadBalancerIP ? { loadBalancerIP: o.loadBalancerIP } : {}),
  },
  status: { loadBalancer: { ingress: o.ip ? [{ ip: o.ip }] : [] } },
});

const slice = (ns: string, service: string, nodes: { node: string; ready: boolean }[]) => ({
  metadata: { name: `${service}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
  endpoints: nodes.map((n) => ({ nodeName: n.node, conditions: { ready: n.ready } })),
});

/** A claim as the controller writes it, recording the holders' requests. */
const claim = (ip: string, poolName: string, holders: { ns: string; name: string; port?: number }[], sharingKey?: string) => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPClaim',
  metadata: {
    name: ip,
    annotations: {
      [HOLDER_REQUESTS_ANNOTATION]: JSON.stringify(
        Object.fromEntries(
          holders.map((h) => [
            `${h.ns}/${h.name}`,
            {
              namespace: h.ns,
              name: h.name,
              labels: {},
              namespaceLabels: {},
              families: ['IPv4'],
              familyPolicy: 'SingleStack',
              requestedIPs: [],
              ports: [{ port: h.port ?? 80, protocol: 'TCP' }],
              trafficPolicy: 'Cluster',
              selector: { app: h.name },
              ...(sharingKey ? { sharingKey } : {}),
            },
          ]),
        ),
      ),
    },
  },
  spec: { ip, pool: poolName, family: 'IPv4', holders: holders.map((h) => ({ namespace: h.ns, name: h.name })), ...(sharingKey ? { sharingKey } : {}) },
});

function snapshot(parts: Partial<Omit<Snapshot, 'config'>> & { resources?: unknown[]; configMap?: string }): Snapshot {
  const config = parseConfig({
    resources: parts.resources ?? [],
    namespace: NS,
    ...(parts.configMap ? { configMap: { namespace: NS, name: 'config', text: parts.configMap } } : {}),
  });
  return {
    config,
    services: parts.services ?? [],
    namespaces: parts.namespaces ?? [{ name: 'shop', labels: {} }],
    claims: parts.claims ?? [],
    endpointSlices: parts.endpointSlices ?? [],
    nodes: parts.nodes ?? NODES,
    l2Statuses: parts.l2Statuses ?? [],
    events: parts.events ?? [],
    bgpSessions: parts.bgpSessions ?? [],
  };
}

describe('counts', () => {
  it.each([
    [0n, '0'],
    [254n, '254'],
    [16777216n, '16777216'],
    [1n << 40n, '2^40'],
    [1n << 64n, '2^64'],
    [(1n << 64n) - 2n, '~2^63'],
  ])('formatCount(%s) = %s', (n, text) => expect(formatCount(n)).toBe(text));

  it.each([
    [0n, 10n, '0%'],
    [1n, 4n, '25%'],
    [1n, 3n, '33.33%'],
    [4n, 4n, '100%'],
    [1n, 1n << 64n, '<0.01%'],
    [9999n, 10000n, '99.99%'],
    [0n, 0n, '0%'],
  ])('formatPercent(%s, %s) = %s', (used, size, text) => expect(formatPercent(used, size)).toBe(text));
});

describe('pools', () => {
  const resources = [
    pool('lan', ['192.0.2.0/24'], { avoidBuggyIPs: true }),
    pool('v6', ['2001:db8::/64']),
    pool('manual', ['198.51.100.0/30'], { autoAssign: false, serviceAllocation: { namespaces: ['shop'] } }),
    l2ad('all'),
  ];
  const claims = [
    claim('192.0.2.1', 'lan', [{ ns: 'shop', name: 'a' }]),
    claim(
      '192.0.2.2',
      'lan',
      [
        { ns: 'shop', name: 'b' },
        { ns: 'shop', name: 'c', port: 81 },
      ],
      'k',
    ),
  ];

  it.each([
    ['lan', { size: '254', used: '2', free: '252', percentUsed: 0.78, source: 'IPAddressPool', protocols: ['layer2'], serves: 'all' }],
    ['v6', { size: String(1n << 64n), used: '0', display: expect.objectContaining({ size: '2^64', percentUsed: '0%' }) }],
    ['manual', { size: '4', autoAssign: false, serves: 'shop' }],
  ])('%s is counted with the allocator rules', (name, expected) => {
    const rows = poolRows(analyze(snapshot({ resources, claims })));
    expect(rows.map((r) => r.name)).toEqual(['lan', 'manual', 'v6']);
    expect(rows.find((r) => r.name === name)).toMatchObject(expected);
  });

  it('lists held addresses with every holder of a shared one (-v)', () => {
    const [lan] = poolRows(analyze(snapshot({ resources, claims })), { name: 'lan', verbose: true });
    expect(lan?.addresses).toEqual([
      { ip: '192.0.2.1', holders: ['shop/a'] },
      { ip: '192.0.2.2', holders: ['shop/b', 'shop/c'], sharingKey: 'k' },
    ]);
  });

  it('reads pools from the legacy ConfigMap alike', () => {
    const configMap = 'address-pools:\n- name: legacy\n  protocol: layer2\n  addresses:\n  - 203.0.113.0/24\n';
    const [row] = poolRows(analyze(snapshot({ configMap })));
    expect(row).toMatchObject({ name: 'legacy', source: 'ConfigMap', size: '256', protocols: ['layer2'] });
  });

  it('keeps to the last good configuration when the current one is invalid', () => {
    const bad = snapshot({ resources: [pool('broken', ['192.0.2.0/33'])] });
    const lastGood = parseConfig({ resources: [pool('good', ['192.0.2.0/28'])], namespace: NS });
    const a = analyze({ ...bad, lastGood });
    expect(a.configSource).toBe('last-good');
    expect(a.configErrors[0]).toMatch(/192\.0\.2\.0\/33/);
    expect(poolRows(a).map((r) => r.name)).toEqual(['good']);
  });
});

describe('services and explain', () => {
  const resources = [pool('lan', ['192.0.2.8/29']), pool('small', ['198.51.100.1/32']), l2ad('all')];
  const base = {
    resources,
    services: [
      svc('shop', 'web', { ip: '192.0.2.10' }),
      svc('shop', 'full', { annotations: { 'metallb.io/address-pool': 'small' } }),
      svc('shop', 'holder', { ip: '198.51.100.1' }),
      svc('shop', 'thief', { annotations: { 'metallb.io/loadBalancerIPs': '192.0.2.10' } }),
      svc('shop', 'local', { ip: '192.0.2.9', policy: 'Local' }),
      svc('shop', 'broken', { annotations: { 'metallb.io/loadBalancerIPs': 'nope' } }),
      svc('shop', 'old', { annotations: { 'metallb.universe.tf/address-pool': 'lan' } }),
      { metadata: { name: 'plain', namespace: 'shop' }, spec: { type: 'ClusterIP' } },
    ],
    claims: [
      claim('192.0.2.10', 'lan', [{ ns: 'shop', name: 'web' }]),
      claim('198.51.100.1', 'small', [{ ns: 'shop', name: 'holder' }]),
      claim('192.0.2.9', 'lan', [{ ns: 'shop', name: 'local' }]),
    ],
    endpointSlices: [slice('shop', 'web', [{ node: 'node-a', ready: true }]), slice('shop', 'local', [{ node: 'node-b', ready: false }])],
  };

  it.each([
    ['web', 'ok', /^192\.0\.2\.10 from pool lan, announced by node-d over layer 2$/],
    ['full', 'pending', /pool "small" is full: 1\/1/],
    ['thief', 'pending', /192\.0\.2\.10 is already in use by shop\/web/],
    ['local', 'not announced', /externalTrafficPolicy Local and no ready endpoint|no ready endpoint/],
    ['broken', 'config error', /metallb\.io\/loadBalancerIPs/],
    ['old', 'pending', /would assign it an address from pool lan/],
  ])('%s is %s', (name, status, reason) => {
    const rows = serviceRows(analyze(snapshot(base)));
    expect(rows.map((r) => r.name)).toEqual(['broken', 'full', 'holder', 'local', 'old', 'thief', 'web']);
    const row = rows.find((r) => r.name === name);
    expect(row?.status).toBe(status);
    expect(row?.reason).toMatch(reason);
  });

  it('judges every state without the IPClaims (the plugin reads them only for a Service that is not ok)', () => {
    const withClaims = serviceRows(analyze(snapshot(base)));
    const without = serviceRows(analyze(snapshot({ ...base, claims: [] })));
    expect(without.map((r) => [r.name, r.status])).toEqual(withClaims.map((r) => [r.name, r.status]));
    expect(without.filter((r) => r.status === 'ok')).toEqual(withClaims.filter((r) => r.status === 'ok'));
  });

  it('takes claims mirrored ahead only when made from these very claims and pools', () => {
    const s = snapshot(base);
    const expected = explainService(analyze(s), 'shop', 'thief');
    const prepared = prepareClaims(s.claims, s.config.config.pools);
    const used = analyze({ ...s, preparedClaims: prepared });
    expect(used.allocator).toBe(prepared.allocator);
    expect(explainService(used, 'shop', 'thief')).toEqual(expected);
    // Mirrored from other claims (an older read) or over other pools: not used, read afresh.
    const stale = prepareClaims([], s.config.config.pools);
    const fromOther = analyze({ ...s, preparedClaims: stale });
    expect(fromOther.allocator).not.toBe(stale.allocator);
    expect(explainService(fromOther, 'shop', 'thief')).toEqual(expected);
    const otherPools = prepareClaims(s.claims, [...s.config.config.pools]);
    expect(analyze({ ...s, preparedClaims: otherPools }).allocator).not.toBe(otherPools.allocator);
  });

  it('answers layer 2 and BGP per Service on demand, and the same when every answer is asked for', () => {
    const a = analyze(snapshot(base));
    const b = analyze(snapshot(base));
    const one = a.layer2.get('shop/web');
    expect(a.layer2.get('shop/web')).toBe(one);
    expect(a.layer2.get('shop/nobody')).toBeUndefined();
    expect([...b.layer2.keys()]).toEqual(['shop/broken', 'shop/full', 'shop/holder', 'shop/local', 'shop/old', 'shop/thief', 'shop/web']);
    expect(new Map(a.layer2)).toEqual(new Map(b.layer2.entries()));
    expect(a.layer2.size).toBe(7);
  });

  it('explains a healthy Service: verdict, pools, owner and next candidate', () => {
    const e = explainService(analyze(snapshot(base)), 'shop', 'web');
    expect(e?.verdict).toBe('assigned 192.0.2.10 from pool lan, announced by node-d over layer 2');
    expect(e?.pools).toEqual([
      { pool: 'lan', verdict: 'assigned', reason: 'holds 192.0.2.10' },
      { pool: 'small', verdict: 'no', reason: expect.stringMatching(/pool "small" is full/) },
    ]);
    expect(e?.layer2[0]).toMatchObject({ ip: '192.0.2.10', owner: 'node-d', next: 'node-c', candidates: ['node-d', 'node-c', 'node-b', 'node-a'] });
    expect(e?.disagreements).toEqual([expect.stringMatching(/no ServiceL2Status from node-d/)]);
  });

  it('says when ServiceL2Status names a node core/announce would not choose at all', () => {
    // node-a has no ready endpoint for a Local Service: not a candidate, so the status is stale.
    const l2Statuses = [{ metadata: { name: 'x' }, status: { node: 'node-c', serviceName: 'local', serviceNamespace: 'shop' } }];
    const e = explainService(analyze(snapshot({ ...base, l2Statuses })), 'shop', 'local');
    expect(e?.statusNodes).toEqual(['node-c']);
    expect(e?.disagreements).toEqual([expect.stringMatching(/ServiceL2Status says node-c announces it, but no node should: its status is stale/)]);
  });

  it('follows the agents when their ServiceL2Status names a later candidate: the nodes before it are out of their gossip (an agent killed, its Node still Ready)', () => {
    const l2Statuses = [{ metadata: { name: 'x' }, status: { node: 'node-c', serviceName: 'web', serviceNamespace: 'shop' } }];
    const a = analyze(snapshot({ ...base, l2Statuses }));
    expect([...a.agentsDown]).toEqual(['node-d']);
    const e = explainService(a, 'shop', 'web');
    expect(e?.verdict).toBe('assigned 192.0.2.10 from pool lan, announced by node-c over layer 2');
    expect(e?.layer2[0]).toMatchObject({ owner: 'node-c', next: 'node-b' });
    expect(e?.layer2[0]?.ineligible).toEqual([{ node: 'node-d', reasons: [expect.stringMatching(/^Ready, but the agents count it down/)] }]);
    expect(e?.disagreements).toEqual([expect.stringMatching(/^node node-d is Ready but the agents count it down/)]);
    // Without the status, node-d (first by the hash) is the owner and nobody is counted out.
    expect([...analyze(snapshot(base)).agentsDown]).toEqual([]);
  });

  it('simulate drain keeps counting out the nodes the agents count down, though the drained node published the evidence', () => {
    // node-c announces 192.0.2.10 because node-d's agent is out of the gossip; draining node-c
    // takes its ServiceL2Status away, and the address goes to node-b, not back to node-d.
    const l2Statuses = [{ metadata: { name: 'x' }, status: { node: 'node-c', serviceName: 'web', serviceNamespace: 'shop' } }];
    const a = analyze(snapshot({ ...base, endpointSlices: [slice('shop', 'web', [{ node: 'node-a', ready: true }])], l2Statuses }));
    expect(simulateDrain(a, 'node-c').moves).toEqual([{ service: 'shop/web', ip: '192.0.2.10', to: 'node-b', reason: null }]);
  });

  it('moves to the next candidate when the owner is not Ready', () => {
    const nodes = [node('node-a'), node('node-b'), node('node-c'), node('node-d', false)];
    const e = explainService(analyze(snapshot({ ...base, nodes })), 'shop', 'web');
    expect(e?.layer2[0]).toMatchObject({ owner: 'node-c', next: 'node-b' });
    expect(e?.layer2[0]?.ineligible).toEqual([{ node: 'node-d', reasons: ['not Ready'] }]);
  });

  it('flags deprecated annotation names and where each request field came from', () => {
    const e = explainService(analyze(snapshot(base)), 'shop', 'old');
    expect(e?.request.pool).toEqual({ value: 'lan', from: expect.stringMatching(/metallb\.universe\.tf\/address-pool \(deprecated/), deprecated: true });
    const thief = explainService(analyze(snapshot(base)), 'shop', 'thief');
    expect(thief?.request.requestedIPs).toEqual([{ value: '192.0.2.10', from: 'annotation metallb.io/loadBalancerIPs' }]);
    expect(thief?.pools.find((p) => p.pool === 'small')).toMatchObject({ verdict: 'no', reason: expect.stringMatching(/not in it/) });
    expect(thief?.fix).toMatch(/request another address/);
  });

  it('names the Local policy problem with the nodes that have endpoints', () => {
    const e = explainService(analyze(snapshot(base)), 'shop', 'local');
    expect(e?.traffic).toEqual({ policy: 'Local', readyNodes: [], readyEndpoints: 0, endpointsWithoutNode: 0 });
    expect(e?.fix).toMatch(/pods ready/);
  });

  it('shows sharing partners on one IP', () => {
    const services = [
      svc('shop', 'a', { ip: '192.0.2.10', annotations: { 'metallb.io/allow-shared-ip': 'k' } }),
      svc('shop', 'b', { ip: '192.0.2.10', port: 81, annotations: { 'metallb.io/allow-shared-ip': 'k' } }),
    ];
    const claims = [
      claim(
        '192.0.2.10',
        'lan',
        [
          { ns: 'shop', name: 'a' },
          { ns: 'shop', name: 'b', port: 81 },
        ],
        'k',
      ),
    ];
    const endpointSlices = [slice('shop', 'a', [{ node: 'node-a', ready: true }]), slice('shop', 'b', [{ node: 'node-b', ready: true }])];
    const a = analyze(snapshot({ resources, services, claims, endpointSlices }));
    expect(explainService(a, 'shop', 'a')?.sharing).toEqual({ key: 'k', partners: ['shop/b'], sameIP: ['shop/b'] });
    expect(serviceRows(a).map((r) => [r.name, r.sharedWith, r.announcingNodes])).toEqual([
      ['a', ['shop/b'], ['node-d']],
      ['b', ['shop/a'], ['node-d']],
    ]);
  });

  it('picks up events about the Service, latest last', () => {
    const ev = (reason: string, at: string) => ({
      involvedObject: { kind: 'Service', name: 'full', namespace: 'shop' },
      type: 'Warning',
      reason,
      message: reason,
      count: 1,
      lastTimestamp: at,
    });
    const events = [
      ev('B', '2025-01-02T00:00:00Z'),
      ev('A', '2025-01-01T00:00:00Z'),
      { ...ev('C', '2025-01-03T00:00:00Z'), involvedObject: { kind: 'Service', name: 'web', namespace: 'shop' } },
    ];
    expect(explainService(analyze(snapshot({ ...base, events })), 'shop', 'full')?.events.map((e) => e.reason)).toEqual(['A', 'B']);
  });
});

describe('simulate drain', () => {
  it('moves each address the node owns to its next candidate, and says what is left unannounced', () => {
    const resources = [pool('lan', ['192.0.2.8/29']), l2ad('all')];
    const services = [svc('shop', 'web', { ip: '192.0.2.10' }), svc('shop', 'local', { ip: '192.0.2.11', policy: 'Local' })];
    const endpointSlices = [slice('shop', 'web', [{ node: 'node-a', ready: true }]), slice('shop', 'local', [{ node: 'node-d', ready: true }])];
    const a = analyze(snapshot({ resources, services, endpointSlices }));
    const report = simulateDrain(a, 'node-d');
    expect(report.known).toBe(true);
    expect(report.moves).toEqual([
      { service: 'shop/local', ip: '192.0.2.11', to: null, reason: expect.stringMatching(/no ready endpoint/) },
      { service: 'shop/web', ip: '192.0.2.10', to: 'node-c', reason: null },
    ]);
    expect(report.unannounced).toEqual(['shop/local']);
    expect(simulateDrain(a, 'node-z').known).toBe(false);
  });
});

describe('closest', () => {
  it.each([
    ['wbe', ['web', 'api', 'db'], ['web']],
    ['pool', ['pools', 'peers', 'services'], ['pools']],
    ['explain', ['explain svc', 'pools'], ['explain svc']],
    ['zzzzzz', ['web'], []],
  ])('closest(%s)', (typed, names, expected) => expect(closest(typed, names)).toEqual(expected));
});

describe('peers', () => {
  const peer = (name: string, address: string, nodeSelectors?: unknown[]) => ({
    apiVersion: 'metallb.io/v1beta2',
    kind: 'BGPPeer',
    metadata: { name, namespace: NS },
    spec: { myASN: 64500, peerASN: 64501, peerAddress: address, ...(nodeSelectors ? { nodeSelectors } : {}) },
  });
  const session = (node: string, address: string, status: Record<string, unknown>) => ({
    metadata: { name: `${node}-x`, labels: {} },
    status: { node, peer: address, vrf: '', ...status },
  });
  const labelled = (name: string, labels: Record<string, string>) => ({ metadata: { name, labels }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });

  it.each([
    [
      'an established session with its counters',
      [
        session('node-a', '192.0.2.1', {
          bgpStatus: 'Established',
          lastTransitionTime: '2025-01-01T00:00:00Z',
          prefixesSent: 3,
          prefixesReceived: 0,
          holdTime: '90s',
          bfdStatus: 'up',
        }),
      ],
      { node: 'node-a', peer: 'tor', address: '192.0.2.1', asn: 64501, state: 'Established', prefixesSent: 3, prefixesReceived: 0, holdTime: 90, bfd: 'up', lastError: null },
    ],
    [
      'a session down with its error',
      [session('node-a', '192.0.2.1', { bgpStatus: 'Active', lastError: 'connection refused', bfdStatus: 'no BFD configured' })],
      { node: 'node-a', state: 'Active', lastError: 'connection refused', bfd: 'no BFD configured' },
    ],
    ['a session nobody published', [], { node: 'node-a', state: 'unknown', since: null, prefixesSent: null }],
  ])('%s', (_, sessions, expected) => {
    const s = snapshot({ resources: [peer('tor', '192.0.2.1', [{ matchLabels: { rack: 'a' } }])], nodes: [labelled('node-a', { rack: 'a' }), labelled('node-b', { rack: 'b' })] });
    const a = analyze(s);
    const report = peerRows(a.config, a.nodes, sessions);
    expect(report.sessions).toEqual([expect.objectContaining(expected)]);
    expect(report.total).toBe(1);
    expect(report.established).toBe(expected.state === 'Established' ? 1 : 0);
  });

  it('shows a published session the configuration no longer asks for, and filters by node', () => {
    const a = analyze(snapshot({ resources: [peer('tor', '192.0.2.1')], nodes: [labelled('node-a', {}), labelled('node-b', {})] }));
    const report = peerRows(a.config, a.nodes, [session('node-b', '192.0.2.9', { bgpStatus: 'Idle' })]);
    expect(report.sessions.map((r) => [r.node, r.address, r.peer, r.state])).toEqual([
      ['node-a', '192.0.2.1', 'tor', 'unknown'],
      ['node-b', '192.0.2.1', 'tor', 'unknown'],
      ['node-b', '192.0.2.9', null, 'Idle'],
    ]);
    expect(peerRows(a.config, a.nodes, [], { node: 'node-b' }).sessions.map((r) => r.node)).toEqual(['node-b']);
  });
});

describe('BGP in services, explain and simulate drain', () => {
  const bgpPeer = (name: string, address: string, spec: Record<string, unknown> = {}) => ({
    apiVersion: 'metallb.io/v1beta2',
    kind: 'BGPPeer',
    metadata: { name, namespace: NS },
    spec: { myASN: 64500, peerASN: 64501, peerAddress: address, ...spec },
  });
  const bgpAd = (name: string, spec: Record<string, unknown> = {}) => ({ apiVersion: 'metallb.io/v1beta1', kind: 'BGPAdvertisement', metadata: { name, namespace: NS }, spec });
  const session = (n: string, address: string, bgpStatus: string, lastError?: string) => ({
    metadata: { name: `${n}-${address}`, labels: {} },
    status: { node: n, peer: address, vrf: '', bgpStatus, ...(lastError ? { lastError } : {}) },
  });
  const racked = (name: string, rack: string) => ({ metadata: { name, labels: { rack } }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
  const nodes = [racked('node-a', 'a'), racked('node-b', 'a'), racked('node-c', 'b')];
  const resources = [
    pool('routed', ['203.0.113.0/24']),
    bgpAd('routed', { ipAddressPools: ['routed'], localPref: 100, communities: ['64500:7'], nodeSelectors: [{ matchLabels: { rack: 'a' } }] }),
    bgpPeer('tor-a', '198.51.100.1', { nodeSelectors: [{ matchLabels: { rack: 'a' } }] }),
    bgpPeer('tor-b', '198.51.100.2', { nodeSelectors: [{ matchLabels: { rack: 'b' } }] }),
  ];
  const base = {
    resources,
    nodes,
    services: [svc('shop', 'web', { ip: '203.0.113.7' }), svc('shop', 'local', { ip: '203.0.113.8', policy: 'Local' }), svc('shop', 'idle', { ip: '203.0.113.9' })],
    claims: [
      claim('203.0.113.7', 'routed', [{ ns: 'shop', name: 'web' }]),
      claim('203.0.113.8', 'routed', [{ ns: 'shop', name: 'local' }]),
      claim('203.0.113.9', 'routed', [{ ns: 'shop', name: 'idle' }]),
    ],
    endpointSlices: [
      slice('shop', 'web', [{ node: 'node-c', ready: true }]),
      slice('shop', 'local', [{ node: 'node-b', ready: true }]),
      slice('shop', 'idle', [{ node: 'node-a', ready: false }]),
    ],
  };

  it('lists the advertising nodes and peers of each Service, and its state from the sessions', () => {
    const up = { ...base, bgpSessions: [session('node-a', '198.51.100.1', 'Established'), session('node-b', '198.51.100.1', 'Established')] };
    const rows = serviceRows(analyze(snapshot(up)));
    const web = rows.find((r) => r.name === 'web')!;
    // Cluster policy: every node the advertisement selects (rack a), whatever node runs the pod.
    expect(web).toMatchObject({ protocols: ['bgp'], advertisingNodes: ['node-a', 'node-b'], bgpPeers: ['tor-a'], announcingNodes: [], status: 'ok' });
    expect(web.reason).toBe('203.0.113.7 from pool routed, advertised over BGP by node-a, node-b to tor-a (2 of 2 sessions established)');
    // Local policy: only the node with the ready endpoint.
    expect(rows.find((r) => r.name === 'local')).toMatchObject({ advertisingNodes: ['node-b'], status: 'ok' });
    const idle = rows.find((r) => r.name === 'idle')!;
    expect(idle).toMatchObject({ status: 'not announced', advertisingNodes: [] });
    expect(idle.reason).toMatch(/no ready endpoint on any node/);
  });

  it('a Service whose every session is down is not announced, with the router error', () => {
    const down = { ...base, bgpSessions: [session('node-a', '198.51.100.1', 'Active', 'connection refused'), session('node-b', '198.51.100.1', 'Idle')] };
    const a = analyze(snapshot(down));
    const web = serviceRows(a).find((r) => r.name === 'web')!;
    expect(web.status).toBe('not announced');
    expect(web.reason).toMatch(/no such BGP session is established \(node-a to tor-a: Active \(connection refused\); node-b to tor-a: Idle\)/);
    expect(web.fix).toMatch(/kubectl metallb peers/);
    const e = explainService(a, 'shop', 'web')!;
    expect(e.disagreements).toContain(
      'the BGP session from node-a to tor-a is Active (connection refused): node-a advertises it, but that router does not hear it (kubectl metallb peers --node node-a)',
    );
  });

  it('on layer 2 as well: ok from layer 2, and the BGP trouble said alongside', () => {
    const both = { ...base, resources: [...resources, l2ad('all')], bgpSessions: [session('node-a', '198.51.100.1', 'Active'), session('node-b', '198.51.100.1', 'Idle')] };
    const web = serviceRows(analyze(snapshot(both))).find((r) => r.name === 'web')!;
    expect(web).toMatchObject({ status: 'ok', protocols: ['layer2', 'bgp'], advertisingNodes: ['node-a', 'node-b'] });
    expect(web.reason).toMatch(
      /^203\.0\.113\.7 from pool routed, announced by node-\w over layer 2; advertised over BGP by node-a, node-b to tor-a, but no such BGP session is established \(/,
    );
    const noPeer = { ...both, resources: [pool('routed', ['203.0.113.0/24']), bgpAd('routed', { peers: ['nowhere'] }), bgpPeer('tor-a', '198.51.100.1'), l2ad('all')] };
    expect(serviceRows(analyze(snapshot(noPeer))).find((r) => r.name === 'web')?.reason).toMatch(/over layer 2; over BGP: no BGPPeer would receive/);
  });

  it('with no session state published, says so and does not call it down', () => {
    const web = serviceRows(analyze(snapshot(base))).find((r) => r.name === 'web')!;
    expect(web.status).toBe('ok');
    expect(web.reason).toMatch(/\(no session state published yet\)$/);
  });

  it('explains the routes: prefix, peer, attributes, the nodes sending them, and why the others do not', () => {
    const e = explainService(analyze(snapshot({ ...base, bgpSessions: [session('node-a', '198.51.100.1', 'Established')] })), 'shop', 'web')!;
    expect(e.bgpRoutes).toEqual([
      {
        ip: '203.0.113.7',
        pool: 'routed',
        advertisements: ['routed'],
        nodes: ['node-a', 'node-b'],
        reason: null,
        // eBGP (64500 -> 64501): no LOCAL_PREF on the wire.
        routes: [{ prefix: '203.0.113.7/32', peer: 'tor-a', nodes: ['node-a', 'node-b'], localPref: null, communities: ['64500:7'], advertisements: ['routed'] }],
        ineligible: [{ node: 'node-c', reasons: ['not selected by the BGPAdvertisement'] }],
      },
    ]);
    expect(e.bgpSessions).toEqual([
      { node: 'node-a', peer: 'tor-a', state: 'Established', lastError: null },
      { node: 'node-b', peer: 'tor-a', state: 'unknown', lastError: null },
    ]);
  });

  it('names the peer problem when no BGPPeer would receive the route', () => {
    const resources2 = [pool('routed', ['203.0.113.0/24']), bgpAd('routed', { peers: ['nowhere'] }), bgpPeer('tor-a', '198.51.100.1')];
    const web = serviceRows(analyze(snapshot({ ...base, resources: resources2 }))).find((r) => r.name === 'web')!;
    expect(web.status).toBe('not announced');
    expect(web.reason).toMatch(/no BGPPeer would receive 203\.0\.113\.7 .*tor-a: not in the BGPAdvertisement's peers/);
    expect(web.fix).toMatch(/BGPPeer/);
  });

  it('simulate drain lists the routes a node withdraws, who still sends them, and what nobody would', () => {
    const a = analyze(snapshot(base));
    const b = simulateDrain(a, 'node-b');
    expect(b.withdrawn).toEqual([
      { prefix: '203.0.113.7/32', peer: 'tor-a', services: ['shop/web'], stillFrom: ['node-a'] },
      { prefix: '203.0.113.8/32', peer: 'tor-a', services: ['shop/local'], stillFrom: [] },
    ]);
    // shop/local's only endpoint goes with node-b: nobody advertises it afterwards.
    expect(b.unannounced).toEqual(['shop/local']);
    // node-c neither announces nor advertises anything, but it runs shop/web's only ready pod:
    // draining it takes shop/web dark all the same.
    expect(simulateDrain(a, 'node-c')).toEqual({
      node: 'node-c',
      known: true,
      withdrawn: [],
      moves: [],
      unannounced: ['shop/web'],
      why: [{ service: 'shop/web', reason: 'no ready endpoint on any node: no node advertises 203.0.113.7' }],
    });
  });
});

describe('BGP and layer 2 together, on seeded random clusters', () => {
  // Whatever the configuration, the views agree with each other and with a drain computed again.
  const NAMES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e'];
  const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

  function cluster(seed: number) {
    const random = seededRandom(seed);
    const racks = ['r1', 'r2'];
    const nodes = NAMES.map((n) => ({
      metadata: { name: n, labels: { rack: pick(random, racks) } },
      status: { conditions: [{ type: 'Ready', status: random() < 0.85 ? 'True' : 'False' }] },
    }));
    const selector = () => (random() < 0.5 ? [] : [{ matchLabels: { rack: pick(random, racks) } }]);
    const resources: unknown[] = [pool('p', ['203.0.113.0/26'])];
    if (random() < 0.6) resources.push(l2ad('l2', { nodeSelectors: selector() }));
    if (random() < 0.8) {
      resources.push({
        apiVersion: 'metallb.io/v1beta1',
        kind: 'BGPAdvertisement',
        metadata: { name: 'bgp', namespace: NS },
        spec: { nodeSelectors: selector(), ...(random() < 0.3 ? { aggregationLength: 28 } : {}), ...(random() < 0.2 ? { peers: ['tor-1'] } : {}) },
      });
    }
    for (const [i, address] of ['198.51.100.1', '198.51.100.2'].entries()) {
      if (random() < 0.7)
        resources.push({
          apiVersion: 'metallb.io/v1beta2',
          kind: 'BGPPeer',
          metadata: { name: `tor-${i}`, namespace: NS },
          spec: { myASN: 64500, peerASN: 64501 + i, peerAddress: address, nodeSelectors: selector() },
        });
    }
    const services = [];
    const endpointSlices = [];
    for (let i = 0; i < 8; i++) {
      const name = `s${i}`;
      services.push(svc('shop', name, { ip: `203.0.113.${i + 1}`, policy: random() < 0.5 ? 'Local' : 'Cluster' }));
      endpointSlices.push(
        slice(
          'shop',
          name,
          NAMES.filter(() => random() < 0.3).map((n) => ({ node: n, ready: random() < 0.8 })),
        ),
      );
    }
    const bgpSessions = NAMES.flatMap((n) =>
      ['198.51.100.1', '198.51.100.2'].flatMap((address) =>
        random() < 0.5
          ? [{ metadata: { name: `${n}-${address}`, labels: {} }, status: { node: n, peer: address, vrf: '', bgpStatus: random() < 0.6 ? 'Established' : 'Active' } }]
          : [],
      ),
    );
    return snapshot({ resources, nodes, services, endpointSlices, bgpSessions });
  }

  it.each(Array.from({ length: 60 }, (_, i) => [i + 1]))('seed %i', (seed) => {
    const a = analyze(cluster(seed));
    expect(a.configSource).toBe('current');
    const rows = serviceRows(a);
    for (const r of rows) {
      // ok means somebody answers for it: an owner on layer 2, or a node advertising over BGP.
      if (r.status === 'ok') expect({ name: r.name, announced: r.announcingNodes.length + r.advertisingNodes.length > 0 }).toEqual({ name: r.name, announced: true });
      // explain tells the same story as the list.
      const e = explainService(a, 'shop', r.name)!;
      expect([e.status, e.bgpRoutes.flatMap((b) => b.nodes).sort()]).toEqual([r.status, [...r.advertisingNodes]]);
    }
    for (const n of NAMES) {
      const d = simulateDrain(a, n);
      for (const w of d.withdrawn) expect(w.stillFrom).not.toContain(n);
      // What drain calls unannounced is what a fresh look at the cluster without the node (and
      // the pods it ran) finds not announced.
      const base = cluster(seed);
      const without = analyze({
        ...base,
        nodes: base.nodes.filter((x) => (x as { metadata: { name: string } }).metadata.name !== n),
        endpointSlices: base.endpointSlices.map((sl) => {
          const o = sl as { endpoints: { nodeName?: string }[] };
          return { ...o, endpoints: o.endpoints.filter((e) => e.nodeName !== n) };
        }),
      });
      const afterRows = serviceRows(without);
      // Who still sends each withdrawn route is who sends it in that fresh look.
      const table = bgpRoutes(without.bgp.values());
      for (const w of d.withdrawn) {
        const senders = [...new Set(table.filter((r) => r.peer === w.peer && r.prefix === w.prefix).map((r) => r.node))].sort();
        expect({ node: n, route: `${w.peer} ${w.prefix}`, stillFrom: w.stillFrom }).toEqual({ node: n, route: `${w.peer} ${w.prefix}`, stillFrom: senders });
      }
      for (const key of d.unannounced) {
        const row = afterRows.find((r) => `${r.namespace}/${r.name}` === key);
        expect({ key, status: row?.status }).toEqual({ key, status: 'not announced' });
      }
      // And the other way: every Service announced now and not afterwards is named.
      const darkened = rows.filter((r) => r.status === 'ok' && afterRows.find((x) => x.name === r.name)?.status === 'not announced').map((r) => `${r.namespace}/${r.name}`);
      expect({ node: n, unannounced: [...d.unannounced].sort() }).toEqual({ node: n, unannounced: darkened.sort() });
    }
  });
});
