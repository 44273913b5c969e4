/**
 * Who advertises over BGP: one row per rule. Expected prefixes are written by hand
 * (203.0.113.7 masked to /24 is 203.0.113.0/24), not computed by the code under test.
 */
import { parseAllDocuments } from 'yaml';
import { emptyConfig, parseConfig, type BGPAdvertisement, type BGPPeer, type Config, type Pool } from '../config/index.js';
import { parseIP, type IP } from '../ip/index.js';
import {
  announceAllBGP,
  announceBGP,
  announceLayer2,
  bgpRoutes,
  communityText,
  EXCLUDE_LABEL,
  prepareBGP,
  prepareLayer2,
  routeChanges,
  routesTo,
  type Alive,
  type AnnounceNode,
  type AnnounceService,
  type BGPIP,
  type BGPOptions,
} from './index.js';
import { shuffled } from '../seeded.js';
import { bgpAdvertisement, labels, node, pool, ready, svc } from './testing.js';

const V4 = '203.0.113.7';
const V4B = '203.0.113.9';
const V6 = '2001:db8:1::7';

function address(text: string): IP {
  const r = parseIP(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

const ad = bgpAdvertisement;

/** ASN 64500 on our side: a peer in 64500 is iBGP, any other ASN eBGP. */
const peer = (name: string, peerAddress: string, fields: Partial<BGPPeer> = {}): BGPPeer => ({
  name,
  origin: { kind: 'BGPPeer', namespace: 'metallb-system', name },
  myASN: 64500,
  peerASN: 64500,
  peerAddress: address(peerAddress),
  peerPort: 179,
  holdTime: 90,
  keepaliveTime: 30,
  connectTime: 120,
  nodeSelectors: [],
  ebgpMultiHop: false,
  enableGracefulRestart: false,
  ...fields,
});

const POOLS = [pool('public', ['203.0.113.0/24', '2001:db8:1::/64']), pool('other', ['198.51.100.0/24'])];
const IBGP = peer('tor-i', '192.0.2.1');
const EBGP = peer('tor-e', '192.0.2.2', { peerASN: 64501 });
const V6PEER = peer('tor-6', '2001:db8::1', { peerASN: 64501 });
const config = (ads: BGPAdvertisement[] = [ad('all')], peers: BGPPeer[] = [IBGP], pools: Pool[] = POOLS): Config => ({ ...emptyConfig(), pools, peers, bgpAdvertisements: ads });

const NODES = [node('node-a', { zone: 'z1' }), node('node-b', { zone: 'z1' }), node('node-c', { zone: 'z2' })];
const ALL = new Set(NODES.map((n) => n.name));
const swap = (replacement: AnnounceNode): AnnounceNode[] => NODES.map((n) => (n.name === replacement.name ? replacement : n));

interface Case {
  config?: Config;
  nodes?: AnnounceNode[];
  alive?: Alive;
  options?: BGPOptions;
  service: AnnounceService;
}

function decide(c: Case): BGPIP[] {
  return [...announceBGP(prepareBGP(c.config ?? config(), c.nodes ?? NODES, c.alive ?? ALL, c.options), c.service).ips];
}

/**
 * One line per (IP, group of nodes sending alike, peer), `IP node,node > peer: prefix[+lp N][+community]...`,
 * or `IP (reason)`; then one line per ruled-out node, `  node: reasons [peer: reasons; ...]`.
 */
function brief(ips: BGPIP[]): string[] {
  return ips.flatMap((ip) => [
    ...(ip.reason ? [`${ip.ip} (${ip.reason})`] : []),
    ...ip.speakers.flatMap((s) =>
      s.peers.map(
        (p) =>
          `${ip.ip} ${s.nodes.join(',')} > ${p.peer}: ${p.routes.map((r) => [r.prefix, ...(r.localPref !== undefined ? [`lp ${r.localPref}`] : []), ...r.communityText].join('+')).join(', ')}`,
      ),
    ),
    ...ip.ineligible.map((v) => `  ${v.node}: ${v.reasons.join(' ')}${v.peers.length ? ` [${v.peers.map((p) => `${p.peer}: ${p.reasons.join(' ')}`).join('; ')}]` : ''}`),
  ]);
}

describe('BGP speakers', () => {
  const rows: [string, Case, string[]][] = [
    ['Cluster: every node, the endpoint may be elsewhere', { service: svc('s', [V4]) }, [`${V4} node-a,node-b,node-c > tor-i: ${V4}/32`]],
    ['Cluster: an endpoint without a node is enough', { service: svc('s', [V4], { endpoints: [ready()] }) }, [`${V4} node-a,node-b,node-c > tor-i: ${V4}/32`]],
    [
      'Cluster without a usable endpoint: nobody, every node for want of one',
      { service: svc('s', [V4], { endpoints: [{ nodeName: 'node-a', ready: false, serving: true, terminating: true }] }) },
      [`${V4} (no-ready-endpoint)`, '  node-a: no-endpoint', '  node-b: no-endpoint', '  node-c: no-endpoint'],
    ],
    [
      'Local: only nodes with a usable endpoint (serving and not terminating counts)',
      {
        service: svc('s', [V4], {
          trafficPolicy: 'Local',
          endpoints: [
            ready('node-a'),
            { nodeName: 'node-b', ready: false, serving: true, terminating: false },
            { nodeName: 'node-c', ready: false, serving: true, terminating: true },
          ],
        }),
      },
      [`${V4} node-a,node-b > tor-i: ${V4}/32`, '  node-c: no-endpoint'],
    ],
    [
      'Local: endpoints without a node place nothing',
      { service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready()] }) },
      [`${V4} (no-eligible-node)`, '  node-a: no-endpoint', '  node-b: no-endpoint', '  node-c: no-endpoint'],
    ],
    [
      'Local: an endpoint on a node ruled out does not help, and both reasons show',
      { alive: new Set(['node-b', 'node-c']), service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a'), ready('node-c')] }) },
      [`${V4} node-c > tor-i: ${V4}/32`, '  node-a: not-alive', '  node-b: no-endpoint'],
    ],
    [
      'the advertisement nodeSelectors pick the nodes',
      { config: config([ad('z2', { nodeSelectors: [labels({ zone: 'z2' })] })]), service: svc('s', [V4]) },
      [`${V4} node-c > tor-i: ${V4}/32`, '  node-a: not-selected', '  node-b: not-selected'],
    ],
    [
      'several advertisements: the union of their nodes, each node with its own routes',
      {
        config: config([ad('z1', { nodeSelectors: [labels({ zone: 'z1' })], aggregationLength: 24 }), ad('z2', { nodeSelectors: [labels({ zone: 'z2' })] })]),
        service: svc('s', [V4]),
      },
      [`${V4} node-a,node-b > tor-i: 203.0.113.0/24`, `${V4} node-c > tor-i: ${V4}/32`],
    ],
    [
      'the peer nodeSelectors decide which nodes have a session with it',
      { config: config([ad('all')], [IBGP, peer('tor-z2', '192.0.2.3', { nodeSelectors: [labels({ zone: 'z2' })] })]), service: svc('s', [V4]) },
      [`${V4} node-a,node-b > tor-i: ${V4}/32`, `${V4} node-c > tor-i: ${V4}/32`, `${V4} node-c > tor-z2: ${V4}/32`],
    ],
    [
      'a node no peer selects has no-peer, with each peer and why',
      { config: config([ad('all')], [peer('tor-z2', '192.0.2.3', { nodeSelectors: [labels({ zone: 'z2' })] })]), service: svc('s', [V4]) },
      [`${V4} node-c > tor-z2: ${V4}/32`, '  node-a: no-peer [tor-z2: not-selected]', '  node-b: no-peer [tor-z2: not-selected]'],
    ],
    [
      'no peer at all: no-peer for every node',
      { config: config([ad('all')], []), service: svc('s', [V4]) },
      [`${V4} (no-peer)`, '  node-a: no-peer', '  node-b: no-peer', '  node-c: no-peer'],
    ],
    [
      'the advertisement peers list: only those peers',
      { config: config([ad('only-e', { peers: ['tor-e'] })], [IBGP, EBGP]), nodes: [NODES[0]!], service: svc('s', [V4]) },
      [`${V4} node-a > tor-e: ${V4}/32`],
    ],
    [
      'a peers list naming no peer of the node: no-peer, not-listed',
      { config: config([ad('typo', { peers: ['tor-x'] })], [IBGP]), nodes: [NODES[0]!], service: svc('s', [V4]) },
      [`${V4} (no-peer)`, '  node-a: no-peer [tor-i: not-listed]'],
    ],
    [
      'LOCAL_PREF goes to iBGP peers only',
      { config: config([ad('pref', { localPref: 150 })], [IBGP, EBGP]), nodes: [NODES[0]!], service: svc('s', [V4]) },
      [`${V4} node-a > tor-e: ${V4}/32`, `${V4} node-a > tor-i: ${V4}/32+lp 150`],
    ],
    [
      'communities go to every peer, standard and large, in MetalLB order',
      {
        config: config(
          [
            ad('tagged', {
              communities: [
                { kind: 'large', global: 64500, local1: 1, local2: 2 },
                { kind: 'standard', asn: 65535, value: 65282 },
                { kind: 'standard', asn: 64500, value: 100 },
              ],
            }),
          ],
          [IBGP, EBGP],
        ),
        nodes: [NODES[0]!],
        service: svc('s', [V4]),
      },
      [`${V4} node-a > tor-e: ${V4}/32+64500:1:2+64500:100+65535:65282`, `${V4} node-a > tor-i: ${V4}/32+64500:1:2+64500:100+65535:65282`],
    ],
    [
      'aggregation lengths: IPv4 and IPv6 masked and written as CIDRs',
      {
        config: config([ad('agg', { aggregationLength: 24, aggregationLengthV6: 64 })], [IBGP, V6PEER]),
        nodes: [NODES[0]!],
        service: svc('s', [V4, '2001:DB8:1:0::7']),
      },
      [`${V4} node-a > tor-i: 203.0.113.0/24`, `${V6} node-a > tor-6: 2001:db8:1::/64`],
    ],
    [
      'two advertisements, two aggregation lengths: one route each (as MetalLB)',
      {
        config: config([ad('host', { communities: [{ kind: 'standard', asn: 64500, value: 1 }] }), ad('agg', { aggregationLength: 24, localPref: 50 })], [IBGP]),
        nodes: [NODES[0]!],
        service: svc('s', [V4]),
      },
      [`${V4} node-a > tor-i: 203.0.113.0/24+lp 50, ${V4}/32+64500:1`],
    ],
    [
      'two advertisements, one prefix: one route, the communities of both',
      {
        config: config([
          ad('x', { communities: [{ kind: 'standard', asn: 64500, value: 2 }] }),
          ad('y', { communities: [{ kind: 'standard', asn: 64500, value: 1 }], localPref: 120 }),
        ]),
        nodes: [NODES[0]!],
        service: svc('s', [V4]),
      },
      [`${V4} node-a > tor-i: ${V4}/32+lp 120+64500:1+64500:2`],
    ],
    [
      'advertisements with their own peers: each peer gets its own attributes',
      {
        config: config(
          [ad('to-i', { peers: ['tor-i'], localPref: 200 }), ad('to-e', { peers: ['tor-e'], communities: [{ kind: 'standard', asn: 64501, value: 7 }] })],
          [IBGP, EBGP],
        ),
        nodes: [NODES[0]!],
        service: svc('s', [V4]),
      },
      [`${V4} node-a > tor-e: ${V4}/32+64501:7`, `${V4} node-a > tor-i: ${V4}/32+lp 200`],
    ],
    [
      'excluded, NetworkUnavailable and not-alive nodes do not advertise',
      {
        nodes: [node('node-a', { [EXCLUDE_LABEL]: '' }), node('node-b', {}, true), node('node-c'), node('node-d')],
        alive: new Set(['node-a', 'node-b', 'node-c']),
        service: svc('s', [V4]),
      },
      [`${V4} node-c > tor-i: ${V4}/32`, '  node-a: excluded', '  node-b: network-unavailable', '  node-d: not-alive'],
    ],
    [
      'unless told to ignore the exclusion label (--ignore-exclude-lb)',
      { nodes: swap(node('node-c', { [EXCLUDE_LABEL]: 'true' })), options: { ignoreExcludeLabel: true }, service: svc('s', [V4]) },
      [`${V4} node-a,node-b,node-c > tor-i: ${V4}/32`],
    ],
    [
      'every reason of a node, in order',
      {
        config: config([ad('z1', { nodeSelectors: [labels({ zone: 'z1' })] })]),
        nodes: swap(node('node-c', { zone: 'z2', [EXCLUDE_LABEL]: '' }, true)),
        alive: new Set(['node-a', 'node-b']),
        service: svc('s', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a')] }),
      },
      [`${V4} node-a > tor-i: ${V4}/32`, '  node-b: no-endpoint', '  node-c: not-selected not-alive network-unavailable excluded no-endpoint'],
    ],
    ['nobody alive', { alive: () => false, service: svc('s', [V4]) }, [`${V4} (no-eligible-node)`, '  node-a: not-alive', '  node-b: not-alive', '  node-c: not-alive']],
    ['an IP in no pool', { service: svc('s', ['192.0.2.77']) }, ['192.0.2.77 (no-pool)']],
    ['not an address at all', { service: svc('s', ['pending']) }, ['pending (no-pool)']],
    [
      'a pool no BGPAdvertisement selects',
      { config: config([ad('public', { ipAddressPools: ['public'] })]), service: svc('s', ['198.51.100.1']) },
      ['198.51.100.1 (no-advertisement)', '  node-a: not-selected', '  node-b: not-selected', '  node-c: not-selected'],
    ],
    [
      'ipAddressPoolSelectors select by the pool labels',
      {
        config: config(
          [ad('sel', { ipAddressPoolSelectors: [labels({ tier: 'front' })] })],
          [IBGP],
          [pool('public', ['203.0.113.0/24'], { tier: 'front' }), pool('other', ['198.51.100.0/24'])],
        ),
        nodes: [NODES[0]!],
        service: svc('s', [V4, '198.51.100.1']),
      },
      [`${V4} node-a > tor-i: ${V4}/32`, '198.51.100.1 (no-advertisement)', '  node-a: not-selected'],
    ],
    [
      'dual-stack: each family to the peers of its family',
      { config: config([ad('all')], [IBGP, V6PEER]), nodes: [NODES[0]!], service: svc('s', [V4, V6]) },
      [`${V4} node-a > tor-i: ${V4}/32`, `${V6} node-a > tor-6: ${V6}/128`],
    ],
    [
      'dual-stack with IPv4 peers only: the IPv6 address has no peer',
      { config: config([ad('all')], [IBGP]), nodes: [NODES[0]!], service: svc('s', [V4, V6]) },
      [`${V4} node-a > tor-i: ${V4}/32`, `${V6} (no-peer)`, '  node-a: no-peer [tor-i: other-family]'],
    ],
    ['no IPs, nothing to say', { service: svc('s', []) }, []],
  ];

  it.each(rows)('%s', (_name, c, expected) => {
    expect(brief(decide(c))).toEqual(expected);
  });
});

describe('the answer in full', () => {
  it('names the pool, the advertisements, and the peers each speaker skips', () => {
    const ctx = prepareBGP(
      config(
        [ad('b-z1', { nodeSelectors: [labels({ zone: 'z1' })], peers: ['tor-i'] }), ad('a-all', { peers: ['tor-e'], localPref: 10 })],
        [IBGP, EBGP, V6PEER, peer('tor-z2', '192.0.2.3', { nodeSelectors: [labels({ zone: 'z2' })] })],
      ),
      NODES,
      ALL,
    );
    const [ip] = announceBGP(ctx, svc('s', [V4])).ips;
    const route = { prefix: `${V4}/32`, communities: [], communityText: [] };
    expect(ip).toEqual({
      ip: V4,
      pool: 'public',
      advertisements: ['a-all', 'b-z1'],
      nodes: ['node-a', 'node-b', 'node-c'],
      speakers: [
        {
          nodes: ['node-a', 'node-b'],
          advertisements: ['a-all', 'b-z1'],
          peers: [
            { peer: 'tor-e', ibgp: false, routes: [{ ...route, advertisements: ['a-all'] }] },
            { peer: 'tor-i', ibgp: true, routes: [{ ...route, advertisements: ['b-z1'] }] },
          ],
          skipped: [
            { peer: 'tor-6', reasons: ['other-family', 'not-listed'] },
            { peer: 'tor-z2', reasons: ['not-selected', 'not-listed'] },
          ],
        },
        {
          nodes: ['node-c'],
          advertisements: ['a-all'],
          peers: [{ peer: 'tor-e', ibgp: false, routes: [{ ...route, advertisements: ['a-all'] }] }],
          skipped: [
            { peer: 'tor-6', reasons: ['other-family', 'not-listed'] },
            { peer: 'tor-i', reasons: ['not-listed'] },
            { peer: 'tor-z2', reasons: ['not-listed'] },
          ],
        },
      ],
      ineligible: [],
      reason: undefined,
    });
  });

  it('communities print as routers print them', () => {
    expect(communityText({ kind: 'standard', asn: 65535, value: 65281 })).toBe('65535:65281');
    expect(communityText({ kind: 'large', global: 4200000000, local1: 0, local2: 7 })).toBe('4200000000:0:7');
  });
});

describe('configuration from metallb.io objects', () => {
  const yaml = `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: public}
spec:
  addresses: [203.0.113.0/24]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2}
spec:
  ipAddressPools: [public]
  nodeSelectors: [{matchLabels: {zone: z1}}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp}
spec:
  ipAddressPools: [public]
  aggregationLength: 28
  localPref: 100
  communities: [no-advertise, large:64500:3:4]
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: aliases}
spec:
  communities:
  - {name: no-advertise, value: "65535:65282"}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor}
spec:
  myASN: 64500
  peerASN: 64500
  peerAddress: 192.0.2.1
`;
  const resources = parseAllDocuments(yaml).map((d) => d.toJS() as unknown);
  const { config: parsed, errors, pending } = parseConfig({ namespace: 'metallb-system', resources });

  it('a pool selected by an L2Advertisement and a BGPAdvertisement is announced both ways', () => {
    expect([errors, pending]).toEqual([[], []]);
    const service = svc('s', [V4]);
    const l2 = announceLayer2(prepareLayer2(parsed, NODES, ALL), service).ips[0]!;
    // sha256("node-a#203.0.113.7") = 8118..., sha256("node-b#203.0.113.7") = fdf2... (sha256sum): node-a answers ARP.
    expect([l2.owner, l2.advertisements]).toEqual(['node-a', ['l2']]);
    expect(brief(decide({ config: parsed, service }))).toEqual([`${V4} node-a,node-b,node-c > tor: 203.0.113.0/28+lp 100+64500:3:4+65535:65282`]);
  });
});

describe('route tables', () => {
  const ads = [ad('host', { peers: ['tor-i'] }), ad('agg', { peers: ['tor-e'], aggregationLength: 24, communities: [{ kind: 'standard', asn: 64501, value: 1 }] })];
  const ctx = prepareBGP(config(ads, [IBGP, EBGP]), NODES, ALL);
  const services = [
    svc('web', [V4], { trafficPolicy: 'Local', endpoints: [ready('node-a')] }),
    svc('api', [V4B], { trafficPolicy: 'Local', endpoints: [ready('node-a'), ready('node-b')] }),
    svc('idle', ['203.0.113.20'], { endpoints: [] }),
  ];
  const before = announceAllBGP(ctx, services);
  const line = (r: { node: string; peer: string; prefix: string; services: readonly string[] }): string => `${r.node} > ${r.peer}: ${r.prefix} ${r.services.join(',')}`;

  it('one route per node, peer and prefix; Services in one aggregate share it', () => {
    expect(bgpRoutes(before).map(line)).toEqual([
      'node-a > tor-e: 203.0.113.0/24 default/api,default/web',
      'node-a > tor-i: 203.0.113.7/32 default/web',
      'node-a > tor-i: 203.0.113.9/32 default/api',
      'node-b > tor-e: 203.0.113.0/24 default/api',
      'node-b > tor-i: 203.0.113.9/32 default/api',
    ]);
  });

  it('what node N sends to peer P', () => {
    expect(routesTo('node-a', 'tor-e', before)).toEqual([
      {
        node: 'node-a',
        peer: 'tor-e',
        prefix: '203.0.113.0/24',
        communities: [{ kind: 'standard', asn: 64501, value: 1 }],
        communityText: ['64501:1'],
        advertisements: ['agg'],
        services: ['default/api', 'default/web'],
      },
    ]);
    expect(routesTo('node-b', 'tor-i', before).map(line)).toEqual(['node-b > tor-i: 203.0.113.9/32 default/api']);
    expect(routesTo('node-c', 'tor-i', before)).toEqual([]);
    expect(routesTo('node-z', 'tor-x', before)).toEqual([]);
  });

  it('one node, or one peer: the table filtered', () => {
    const all = bgpRoutes(before);
    expect(bgpRoutes(before, { node: 'node-b' })).toEqual(all.filter((r) => r.node === 'node-b'));
    expect(bgpRoutes(before, { peer: 'tor-i' })).toEqual(all.filter((r) => r.peer === 'tor-i'));
    expect(bgpRoutes(before, { node: 'node-c' })).toEqual([]);
  });

  it('one prefix from advertisements with different communities, over two Services: one route with all of them', () => {
    const c = prepareBGP(
      config([
        ad('a', { aggregationLength: 24, communities: [{ kind: 'standard', asn: 64500, value: 2 }] }),
        ad('b', { aggregationLength: 24, nodeSelectors: [labels({ zone: 'z1' })] }),
      ]),
      [NODES[0]!],
      ALL,
    );
    const rows = bgpRoutes(announceAllBGP(c, [svc('x', [V4B]), svc('y', [V4])]));
    expect(rows).toEqual([
      {
        node: 'node-a',
        peer: 'tor-i',
        prefix: '203.0.113.0/24',
        communities: [{ kind: 'standard', asn: 64500, value: 2 }],
        communityText: ['64500:2'],
        advertisements: ['a', 'b'],
        services: ['default/x', 'default/y'],
      },
    ]);
  });

  it('routes in address order, IPv4 before IPv6, shorter first', () => {
    const c = prepareBGP(config([ad('host'), ad('agg', { aggregationLength: 24, aggregationLengthV6: 64 })], [IBGP, V6PEER]), [NODES[0]!], ALL);
    const answers = announceAllBGP(c, [svc('b', ['203.0.113.10', V6]), svc('a', ['203.0.113.9'])]);
    expect(bgpRoutes(answers).map((r) => `${r.peer} ${r.prefix}`)).toEqual([
      'tor-6 2001:db8:1::/64',
      'tor-6 2001:db8:1::7/128',
      'tor-i 203.0.113.0/24',
      'tor-i 203.0.113.9/32',
      'tor-i 203.0.113.10/32',
    ]);
  });

  it('if node-a went away: its routes are withdrawn, and the prefixes only it sent are lost', () => {
    const after = announceAllBGP(ctx.withoutNodes(['node-a']), services);
    const changes = routeChanges(bgpRoutes(before), bgpRoutes(after));
    expect(changes.withdrawn.map(line)).toEqual([
      'node-a > tor-e: 203.0.113.0/24 default/api,default/web',
      'node-a > tor-i: 203.0.113.7/32 default/web',
      'node-a > tor-i: 203.0.113.9/32 default/api',
    ]);
    expect(changes.added).toEqual([]);
    // node-b still sends the /24 for api alone: the route stays, with fewer Services behind it.
    expect(changes.changed).toEqual([]);
    expect(changes.lost).toEqual([{ peer: 'tor-i', prefix: '203.0.113.7/32', services: ['default/web'] }]);
    expect(ctx.nodeReasons('node-a')).toEqual([]);
    expect(ctx.withoutNodes(['node-a']).nodeReasons('node-a')).toEqual(['not-alive']);
  });

  it('a change of attributes is a changed route, not a withdrawal', () => {
    const tagged = prepareBGP(config([ads[0]!, { ...ads[1]!, communities: [{ kind: 'standard', asn: 64501, value: 2 }] }], [IBGP, EBGP]), NODES, ALL);
    const changes = routeChanges(bgpRoutes(before), bgpRoutes(announceAllBGP(tagged, services)));
    expect([changes.withdrawn, changes.added, changes.lost]).toEqual([[], [], []]);
    expect(changes.changed.map((c) => `${line(c.after)} ${c.before.communityText.join()} -> ${c.after.communityText.join()}`)).toEqual([
      'node-a > tor-e: 203.0.113.0/24 default/api,default/web 64501:1 -> 64501:2',
      'node-b > tor-e: 203.0.113.0/24 default/api 64501:1 -> 64501:2',
    ]);
  });
});

describe('determinism', () => {
  const nodes = Array.from({ length: 9 }, (_, i) => node(`node-${i}`, { zone: `z${i % 3}`, ...(i === 4 ? { [EXCLUDE_LABEL]: '' } : {}) }, i === 7));
  const ads = [
    ad('z0', { nodeSelectors: [labels({ zone: 'z0' })], localPref: 100, communities: [{ kind: 'standard', asn: 1, value: 2 }] }),
    ad('z1', { nodeSelectors: [labels({ zone: 'z1' })], aggregationLength: 24, peers: ['tor-e'] }),
    ad('all', { aggregationLengthV6: 64, communities: [{ kind: 'large', global: 1, local1: 2, local2: 3 }] }),
  ];
  const peers = [IBGP, EBGP, V6PEER, peer('tor-z2', '192.0.2.3', { nodeSelectors: [labels({ zone: 'z2' })] })];
  const endpoints = nodes.map((n, i) => ({ nodeName: n.name, ready: i % 2 === 0, serving: i % 3 === 0, terminating: i % 4 === 0 }));
  const services = [svc('dual', [V4, V6], { trafficPolicy: 'Local', endpoints }), svc('cluster', [V4B, '203.0.113.200'], { endpoints }), svc('none', ['198.51.100.1'])];
  const alive = new Set(nodes.filter((_, i) => i !== 2).map((n) => n.name));
  const baseline = announceAllBGP(prepareBGP(config(ads, peers), nodes, alive), services);

  it.each([1, 2, 3, 4, 5])('the same answers whatever the input order (seed %i)', (seed) => {
    const ctx = prepareBGP(config(shuffled(ads, seed), shuffled(peers, seed + 1)), shuffled(nodes, seed + 2), new Set(shuffled([...alive], seed + 3)));
    const reordered = shuffled(services, seed + 4).map((s) => ({ ...s, endpoints: shuffled(s.endpoints, seed + 5) }));
    const answers = announceAllBGP(ctx, reordered);
    expect(answers.sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual([...baseline].sort((a, b) => (a.name < b.name ? -1 : 1)));
    expect(bgpRoutes(answers)).toEqual(bgpRoutes(baseline));
  });

  it('the baseline says something (the comparison above is not vacuous)', () => {
    expect(bgpRoutes(baseline).length).toBeGreaterThan(10);
  });
});
