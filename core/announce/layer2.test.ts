/**
 * Who announces: one row per rule. The node orders below were computed by hand with
 * `printf '%s' 'node-x#IP' | sha256sum`, not by the code under test:
 *
 *   192.0.2.10    node-d, node-c, node-b, node-a
 *   192.0.2.11    node-d, node-a, node-c, node-b
 *   192.0.2.20    node-a, node-c, node-d, node-b
 *   2001:db8::10  node-b, node-a, node-c, node-d
 */
import { emptyConfig, parseConfig, type Config, type L2Advertisement, type Pool } from '../config/index.js';
import {
  announceAll,
  announcedBy,
  announceLayer2,
  EXCLUDE_LABEL,
  layer2Hash,
  prepareLayer2,
  ServicesByIP,
  sharingGroup,
  type Alive,
  type AnnounceNode,
  type AnnounceService,
  type Layer2IP,
  type Layer2Options,
} from './index.js';
import { hashOrder } from './layer2.js';
import { shuffled } from '../seeded.js';
import { labels, node, pool, ready, svc } from './testing.js';

const V4 = '192.0.2.10';
const V4B = '192.0.2.11';
const V4C = '192.0.2.20';
const V6 = '2001:db8::10';

const l2 = (name: string, fields: Partial<L2Advertisement> = {}): L2Advertisement => ({
  name,
  origin: { kind: 'L2Advertisement', namespace: 'metallb-system', name },
  ipAddressPools: [],
  ipAddressPoolSelectors: [],
  nodeSelectors: [],
  preferredNodeSelectors: [],
  interfaces: [],
  ...fields,
});

const POOLS = [pool('public', ['192.0.2.0/24', '2001:db8::/64']), pool('other', ['198.51.100.0/24'])];
const config = (ads: L2Advertisement[] = [l2('all')], pools: Pool[] = POOLS): Config => ({ ...emptyConfig(), pools, l2Advertisements: ads });

const NODES = ['node-a', 'node-b', 'node-c', 'node-d'].map((n) => node(n, { zone: n === 'node-a' || n === 'node-b' ? 'z1' : 'z2' }));
const ALL = new Set(NODES.map((n) => n.name));

interface Case {
  config?: Config;
  nodes?: AnnounceNode[];
  alive?: Alive;
  options?: Layer2Options;
  service: AnnounceService;
  others?: AnnounceService[];
}

/** The answers for `service`, with `others` as the other Services in the cluster. */
function decide(c: Case): Layer2IP[] {
  const ctx = prepareLayer2(c.config ?? config(), c.nodes ?? NODES, c.alive ?? ALL, c.options);
  const index = new ServicesByIP();
  for (const s of [...(c.others ?? []), c.service]) index.set(s);
  return [...announceLayer2(ctx, c.service, index.withIP).ips];
}

/** Owner (or reason) and candidate order of each IP, the part most rows check. */
const brief = (ips: Layer2IP[]): string[] => ips.map((ip) => `${ip.ip} ${ip.owner ?? `(${ip.reason})`} [${ip.candidates.map((c) => c.node).join(' ')}]`);

describe('layer 2 owner', () => {
  const rows: [string, Case, string[]][] = [
    ['ties go by sha256(node#ip), lowest first', { service: svc('s', [V4]) }, [`${V4} node-d [node-d node-c node-b node-a]`]],
    ['another IP, another order', { service: svc('s', [V4C]) }, [`${V4C} node-a [node-a node-c node-d node-b]`]],
    ['IPv6 alone', { service: svc('s', [V6]) }, [`${V6} node-b [node-b node-a node-c node-d]`]],
    ['Cluster: any eligible node, the endpoint may be elsewhere', { service: svc('s', [V4], { endpoints: [ready('node-a')] }) }, [`${V4} node-d [node-d node-c node-b node-a]`]],
    ['Cluster: an endpoint without a node is enough', { service: svc('s', [V4], { endpoints: [ready()] }) }, [`${V4} node-d [node-d node-c node-b node-a]`]],
    ['Cluster without endpoints: not announced', { service: svc('s', [V4], { endpoints: [] }) }, [`${V4} (no-ready-endpoint) [node-d node-c node-b node-a]`]],
    [
      'Cluster with only a not-ready endpoint: not announced',
      { service: svc('s', [V4], { endpoints: [{ nodeName: 'node-a', ready: false, serving: false, terminating: false }] }) },
      [`${V4} (no-ready-endpoint) [node-d node-c node-b node-a]`],
    ],
    [
      'Local: only nodes with a ready endpoint, in hash order',
      { service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a'), ready('node-b')] }) },
      [`${V4} node-b [node-b node-a]`],
    ],
    [
      'Local: serving and not terminating counts, terminating does not',
      {
        service: svc('s', [V4], {
          trafficPolicy: 'Local',
          endpoints: [
            { nodeName: 'node-a', ready: false, serving: true, terminating: false },
            { nodeName: 'node-d', ready: false, serving: true, terminating: true },
          ],
        }),
      },
      [`${V4} node-a [node-a]`],
    ],
    ['Local: endpoints only without a node: nowhere to announce', { service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready()] }) }, [`${V4} (no-eligible-node) []`]],
    ['Local without endpoints', { service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [] }) }, [`${V4} (no-ready-endpoint) []`]],
    [
      'Local: an endpoint on an unknown node does not place the IP',
      { service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-z')] }) },
      [`${V4} (no-eligible-node) []`],
    ],
    ['nodeSelectors limit the nodes', { config: config([l2('z2', { nodeSelectors: [labels({ zone: 'z2' })] })]), service: svc('s', [V4C]) }, [`${V4C} node-c [node-c node-d]`]],
    [
      'several selectors of one advertisement: any',
      { config: config([l2('some', { nodeSelectors: [labels({ zone: 'z2' }), labels({ zone: 'z1' })] })]), service: svc('s', [V4C]) },
      [`${V4C} node-a [node-a node-c node-d node-b]`],
    ],
    [
      'several advertisements of a pool: the union of their nodes',
      {
        config: config([
          l2('c', { nodeSelectors: [labels({ zone: 'z2' })] }),
          l2('b', { nodeSelectors: [{ matchLabels: {}, matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1'] }] }] }),
        ]),
        service: svc('s', [V4]),
      },
      [`${V4} node-d [node-d node-c node-b node-a]`],
    ],
    [
      'an advertisement of another pool adds nothing',
      { config: config([l2('z2', { nodeSelectors: [labels({ zone: 'z2' })] }), l2('elsewhere', { ipAddressPools: ['other'] })]), service: svc('s', [V4C]) },
      [`${V4C} node-c [node-c node-d]`],
    ],
    [
      'the exclusion label rules a node out',
      { nodes: NODES.map((n) => (n.name === 'node-d' ? node('node-d', { [EXCLUDE_LABEL]: '' }) : n)), service: svc('s', [V4]) },
      [`${V4} node-c [node-c node-b node-a]`],
    ],
    [
      'unless told to ignore it (--ignore-exclude-lb)',
      { nodes: NODES.map((n) => (n.name === 'node-d' ? node('node-d', { [EXCLUDE_LABEL]: 'true' }) : n)), options: { ignoreExcludeLabel: true }, service: svc('s', [V4]) },
      [`${V4} node-d [node-d node-c node-b node-a]`],
    ],
    [
      'NetworkUnavailable rules a node out',
      { nodes: NODES.map((n) => (n.name === 'node-d' ? node('node-d', {}, true) : n)), service: svc('s', [V4]) },
      [`${V4} node-c [node-c node-b node-a]`],
    ],
    ['a node dying: the next candidate takes over', { alive: new Set(['node-a', 'node-b', 'node-c']), service: svc('s', [V4]) }, [`${V4} node-c [node-c node-b node-a]`]],
    ['alive as a test on the name', { alive: (n) => n !== 'node-d' && n !== 'node-c', service: svc('s', [V4]) }, [`${V4} node-b [node-b node-a]`]],
    ['nobody alive', { alive: new Set(), service: svc('s', [V4]) }, [`${V4} (no-eligible-node) []`]],
    [
      'preferred nodes first, then the hash',
      { config: config([l2('pref', { preferredNodeSelectors: [{ weight: 50, preference: labels({ zone: 'z1' }) }] })]), service: svc('s', [V4]) },
      [`${V4} node-b [node-b node-a node-d node-c]`],
    ],
    [
      'weights of matching preferences add up',
      {
        config: config([
          l2('pref', {
            preferredNodeSelectors: [
              { weight: 50, preference: labels({ zone: 'z1' }) },
              { weight: 30, preference: labels({ rack: 'r1' }) },
              { weight: 60, preference: labels({ zone: 'z2' }) },
            ],
          }),
        ]),
        nodes: NODES.map((n) => (n.name === 'node-a' ? node('node-a', { zone: 'z1', rack: 'r1' }) : n)),
        service: svc('s', [V4]),
      },
      [`${V4} node-a [node-a node-d node-c node-b]`],
    ],
    [
      'across advertisements a node gets its strongest preference, not the sum',
      {
        config: config([
          l2('one', { preferredNodeSelectors: [{ weight: 40, preference: labels({ zone: 'z1' }) }] }),
          l2('two', { preferredNodeSelectors: [{ weight: 30, preference: labels({ zone: 'z1' }) }] }),
          l2('three', { nodeSelectors: [labels({ zone: 'z2' })], preferredNodeSelectors: [{ weight: 45, preference: labels({ zone: 'z2' }) }] }),
        ]),
        service: svc('s', [V4]),
      },
      [`${V4} node-d [node-d node-c node-b node-a]`],
    ],
    [
      'a preference of an advertisement that does not select the node does not count',
      {
        config: config([
          l2('z2', { nodeSelectors: [labels({ zone: 'z2' })], preferredNodeSelectors: [{ weight: 100, preference: labels({ zone: 'z1' }) }] }),
          l2('z1', { nodeSelectors: [labels({ zone: 'z1' })] }),
        ]),
        service: svc('s', [V4]),
      },
      [`${V4} node-d [node-d node-c node-b node-a]`],
    ],
    [
      'a preferred node that is dead is skipped',
      {
        config: config([l2('pref', { preferredNodeSelectors: [{ weight: 50, preference: labels({ zone: 'z1' }) }] })]),
        alive: new Set(['node-a', 'node-c', 'node-d']),
        service: svc('s', [V4]),
      },
      [`${V4} node-a [node-a node-d node-c]`],
    ],
    [
      'dual-stack: both families follow the IPv4 address, on one node',
      { service: svc('s', [V4, V6]) },
      [`${V4} node-d [node-d node-c node-b node-a]`, `${V6} node-d [node-d node-c node-b node-a]`],
    ],
    ['dual-stack listed IPv6 first: the same node', { service: svc('s', [V6, V4]) }, [`${V6} node-d [node-d node-c node-b node-a]`, `${V4} node-d [node-d node-c node-b node-a]`]],
    [
      'shared IP: a single-stack Service sharing the IPv6 of a dual-stack one agrees with it',
      { service: svc('v6only', [V6]), others: [svc('dual', [V4, V6])] },
      [`${V6} node-d [node-d node-c node-b node-a]`],
    ],
    [
      'shared through a chain: the lowest address of the whole group anchors',
      { service: svc('first', [V4B, V6]), others: [svc('second', [V4, V6])] },
      [`${V4B} node-d [node-d node-c node-b node-a]`, `${V6} node-d [node-d node-c node-b node-a]`],
    ],
    [
      'shared IP, Local, different endpoints: one owner among all their nodes',
      {
        service: svc('s1', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a')] }),
        others: [svc('s2', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-b')] })],
      },
      [`${V4} node-b [node-b node-a]`],
    ],
    [
      'shared IP, the other Service without endpoints adds no node',
      {
        service: svc('s1', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a')] }),
        others: [svc('s2', [V4], { trafficPolicy: 'Local', endpoints: [] })],
      },
      [`${V4} node-a [node-a]`],
    ],
    [
      'shared IP, this Service without endpoints: not announced for it, though the IP is',
      {
        service: svc('s1', [V4], { trafficPolicy: 'Local', endpoints: [] }),
        others: [svc('s2', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-c')] })],
      },
      [`${V4} (no-ready-endpoint) [node-c]`],
    ],
    ['an IP in no pool', { service: svc('s', ['203.0.113.1']) }, ['203.0.113.1 (no-pool) []']],
    [
      'a pool no L2Advertisement selects',
      { service: svc('s', ['198.51.100.1']), config: config([l2('public', { ipAddressPools: ['public'] })]) },
      ['198.51.100.1 (no-advertisement) []'],
    ],
    [
      'ipAddressPoolSelectors select by the pool labels',
      {
        config: config(
          [l2('sel', { ipAddressPoolSelectors: [labels({ tier: 'front' })] })],
          [pool('public', ['192.0.2.0/24'], { tier: 'front' }), pool('other', ['198.51.100.0/24'])],
        ),
        service: svc('s', [V4]),
        others: [svc('t', ['198.51.100.1'])],
      },
      [`${V4} node-d [node-d node-c node-b node-a]`],
    ],
    ['no IPs, nothing to say', { service: svc('s', []) }, []],
  ];

  it.each(rows)('%s', (_name, c, expected) => {
    expect(brief(decide(c))).toEqual(expected);
  });

  it('the hash is sha256 of node#ip in hex', () => {
    expect(layer2Hash('node-d', V4)).toMatch(/^1e377524e6a504eb[0-9a-f]{48}$/);
  });
});

describe('reasons', () => {
  it('every other node is listed, by name, with each reason that applies', () => {
    const nodes = [node('node-a', { zone: 'z1', [EXCLUDE_LABEL]: '' }), node('node-b', { zone: 'z1' }, true), node('node-c', { zone: 'z2' }), node('node-d', { zone: 'z2' })];
    const [ip] = decide({
      config: config([l2('z1', { nodeSelectors: [labels({ zone: 'z1' })] }), l2('d', { nodeSelectors: [labels({ zone: 'z2' })], interfaces: ['eth1'] })]),
      nodes,
      alive: new Set(['node-a', 'node-b', 'node-d']),
      service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a'), ready('node-c'), ready('node-d')] }),
    });
    expect(ip).toEqual({
      ip: V4,
      pool: 'public',
      advertisements: ['d', 'z1'],
      anchor: V4,
      owner: 'node-d',
      candidates: [{ node: 'node-d', weight: 0, interfaces: ['eth1'] }],
      ineligible: [
        { node: 'node-a', reasons: ['excluded'] },
        { node: 'node-b', reasons: ['network-unavailable'] },
        { node: 'node-c', reasons: ['not-alive'] },
      ],
      sharedWith: [],
    });
  });

  it('a node no advertisement selects is not-selected, with its other reasons', () => {
    const [ip] = decide({
      config: config([l2('z1', { nodeSelectors: [labels({ zone: 'z1' })] })]),
      alive: new Set(['node-a', 'node-b', 'node-c']),
      service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a')] }),
    });
    expect(ip!.ineligible).toEqual([
      { node: 'node-b', reasons: ['no-endpoint'] },
      { node: 'node-c', reasons: ['not-selected'] },
      { node: 'node-d', reasons: ['not-selected', 'not-alive'] },
    ]);
  });

  it('interfaces: the union over the advertisements selecting the node; one without a list means all', () => {
    const ads = [l2('a', { interfaces: ['eth1', 'eth0'] }), l2('b', { interfaces: ['eth2', 'eth0'] }), l2('z2', { nodeSelectors: [labels({ zone: 'z2' })] })];
    const [ip] = decide({ config: config(ads), service: svc('s', [V4]) });
    expect(ip!.candidates.map((c) => [c.node, c.interfaces])).toEqual([
      ['node-d', []],
      ['node-c', []],
      ['node-b', ['eth0', 'eth1', 'eth2']],
      ['node-a', ['eth0', 'eth1', 'eth2']],
    ]);
  });

  it('shared IPs name the other holders', () => {
    const [ip] = decide({ service: svc('b', [V4]), others: [svc('c', [V4]), svc('a', [V4, V6]), svc('unrelated', [V4B])] });
    expect(ip!.sharedWith).toEqual(['default/a', 'default/c']);
  });
});

describe('the legacy ConfigMap', () => {
  const text = `
address-pools:
- name: l2
  protocol: layer2
  addresses: [192.0.2.0/24]
- name: bgp
  protocol: bgp
  addresses: [198.51.100.0/24]
`;
  const { config: legacy, errors } = parseConfig({ configMap: { namespace: 'metallb-system', name: 'config', text }, resources: [] });

  it('a layer2 pool is announced from every node; a bgp pool is not announced at layer 2', () => {
    expect(errors).toEqual([]);
    expect(brief(decide({ config: legacy, service: svc('s', [V4]) }))).toEqual([`${V4} node-d [node-d node-c node-b node-a]`]);
    expect(brief(decide({ config: legacy, service: svc('s', ['198.51.100.1']) }))).toEqual(['198.51.100.1 (no-advertisement) []']);
  });
});

describe('determinism', () => {
  const nodes = Array.from({ length: 12 }, (_, i) => node(`node-${i}`, { zone: `z${i % 3}`, ...(i === 5 ? { [EXCLUDE_LABEL]: '' } : {}) }, i === 7));
  const ads = [
    l2('z0', { nodeSelectors: [labels({ zone: 'z0' })], interfaces: ['eth0'], preferredNodeSelectors: [{ weight: 10, preference: labels({ zone: 'z0' }) }] }),
    l2('z1', { nodeSelectors: [labels({ zone: 'z1' })], interfaces: ['eth1'] }),
    l2('z2', { nodeSelectors: [labels({ zone: 'z2' })], interfaces: ['eth0', 'eth2'] }),
  ];
  const endpoints = nodes.map((n, i) => ({ nodeName: n.name, ready: i % 2 === 0, serving: i % 3 === 0, terminating: i % 4 === 0 }));
  const services = [
    svc('dual', [V4, V6], { trafficPolicy: 'Local', endpoints }),
    svc('shared', [V6], { trafficPolicy: 'Local', endpoints: endpoints.slice(3) }),
    svc('cluster', [V4B, '192.0.2.12'], { endpoints }),
    svc('plain', [V4C], { endpoints: [ready()] }),
  ];
  const alive = new Set(nodes.filter((_, i) => i !== 2).map((n) => n.name));
  const baseline = announceAll(prepareLayer2(config(ads), nodes, alive), services);

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('the same answers whatever the input order (seed %i)', (seed) => {
    const ctx = prepareLayer2(config(shuffled(ads, seed)), shuffled(nodes, seed + 1), new Set(shuffled([...alive], seed + 2)));
    const reordered = shuffled(services, seed + 3).map((s) => ({ ...s, ips: shuffled(s.ips, seed + 4), endpoints: shuffled(s.endpoints, seed + 5) }));
    const answers = announceAll(ctx, reordered);
    for (const expected of baseline) {
      const got = answers.find((a) => a.name === expected.name)!;
      const byIP = (ips: readonly Layer2IP[]): Layer2IP[] => [...ips].sort((a, b) => (a.ip < b.ip ? -1 : 1));
      expect(byIP(got.ips)).toEqual(byIP(expected.ips));
    }
  });

  it('a context prepared from the previous one answers as a fresh one', () => {
    const first = prepareLayer2(config(ads), nodes, new Set(nodes.map((n) => n.name)));
    announceAll(first, services);
    const next = prepareLayer2(config(ads), nodes, alive, { previous: first });
    expect(announceAll(next, services)).toEqual(baseline);
    const fewer = nodes.slice(0, 9);
    const afterRemoval = prepareLayer2(config(ads), fewer, alive, { previous: next });
    expect(announceAll(afterRemoval, services)).toEqual(announceAll(prepareLayer2(config(ads), fewer, alive), services));
  });

  it('a node that comes or goes is placed in the carried hash orders as a fresh context places it', () => {
    // 60 nodes, 3 leave and 2 come: few enough that the orders are carried, not recomputed.
    const many = Array.from({ length: 60 }, (_, i) => node(`node-${i}`, { zone: `z${i % 3}` }));
    const live = new Set([...many.map((n) => n.name), 'node-new', 'node-0b']);
    const first = prepareLayer2(config(ads), many, live);
    announceAll(first, services);
    const changed = [...many.slice(3), node('node-new', { zone: 'z0' }), node('node-0b', { zone: 'z1' })];
    const next = prepareLayer2(config(ads), changed, live, { previous: first });
    expect(announceAll(next, services)).toEqual(announceAll(prepareLayer2(config(ads), changed, live), services));
  });

  it('hash orders: nodes whose hashes share a prefix are ordered by the whole hash', () => {
    const names = Array.from({ length: 200 }, (_, i) => `n${i}`).sort();
    for (const anchor of [V4, V6, V4B]) {
      const naive = names.map((_, i) => i).sort((a, b) => (layer2Hash(names[a]!, anchor) < layer2Hash(names[b]!, anchor) ? -1 : 1));
      // One hex digit: 200 nodes in 16 buckets, so every bucket is sorted by the whole hash.
      expect([...hashOrder(names, anchor, 1)]).toEqual(naive);
      expect([...hashOrder(names, anchor)]).toEqual(naive);
    }
  });

  it('addresses written differently are the same address', () => {
    const ctx = prepareLayer2(config(), NODES, ALL);
    const [ip] = announceAll(ctx, [svc('s', ['2001:DB8:0::10']), svc('t', [V6])])[0]!.ips;
    expect(ip).toMatchObject({ ip: V6, anchor: V6, owner: 'node-b', sharedWith: ['default/t'] });
  });
});

describe('what a node announces', () => {
  it('each IP it owns, with its interfaces and the Services behind it', () => {
    const ctx = prepareLayer2(config([l2('all', { interfaces: ['eth0'] })]), NODES, ALL);
    const answers = announceAll(ctx, [svc('dual', [V4, V6]), svc('shares-v6', [V6]), svc('other', [V4C]), svc('idle', [V4B], { endpoints: [] })]);
    expect(announcedBy('node-d', answers)).toEqual([
      { ip: V4, interfaces: ['eth0'], services: ['default/dual'] },
      { ip: V6, interfaces: ['eth0'], services: ['default/dual', 'default/shares-v6'] },
    ]);
    expect(announcedBy('node-a', answers)).toEqual([{ ip: V4C, interfaces: ['eth0'], services: ['default/other'] }]);
    expect(announcedBy('node-b', answers)).toEqual([]);
  });
});

describe('sharing groups and the index', () => {
  it('follows shared addresses through other Services, the given version of the Service winning', () => {
    const index = new ServicesByIP();
    const a = svc('a', [V4, V6]);
    const b = svc('b', [V6]);
    const c = svc('c', [V6, V4C]);
    const d = svc('d', [V4B]);
    for (const s of [a, b, c, d]) index.set(s);
    expect(sharingGroup(a, index.withIP).map((s) => s.name)).toEqual(['a', 'b', 'c']);
    expect(sharingGroup(d, index.withIP).map((s) => s.name)).toEqual(['d']);
    const moved = svc('a', [V4B]);
    expect(sharingGroup(moved, index.withIP).map((s) => s.name)).toEqual(['a', 'd']);
    expect(index.set(moved)).toBe(a);
    expect([...(index.withIP(V4) ?? [])]).toEqual([]);
    expect(index.delete('default', 'd')).toBe(d);
    expect(index.get('default', 'a')).toBe(moved);
    expect(index.size).toBe(3);
    expect(sharingGroup(b)).toEqual([b]);
  });
});
