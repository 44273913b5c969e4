/**
 * The configurations MetalLB's documentation shows must parse into the Config they describe.
 * The ConfigMap examples are the seed usage docs', verbatim (comments included).
 */
import { parse, parseAllDocuments } from 'yaml';
import { formatIP, type IP } from '../ip/index.js';
import { formatCommunity, formatConfigError, parseConfig, type ConfigInput, type ConfigResult } from './index.js';
import { BASIC_CONFIGMAP, CHEAP_EXPENSIVE, PRODUCTION_SANDBOX } from '../../test/fixtures/metallb-docs.js';

const CM = { namespace: 'metallb-system', name: 'config' };

/** The `config` key of a whole ConfigMap manifest, as the docs write it. */
function configOf(manifest: string): string {
  const cm = parse(manifest) as { data: { config: string } };
  return cm.data.config;
}

function crds(text: string): unknown[] {
  return parseAllDocuments(text).flatMap((d) => (Array.isArray(d) ? [] : [d.toJS() as unknown]));
}

function valid(input: ConfigInput): ConfigResult['config'] {
  const result = parseConfig(input);
  expect(result.errors.map(formatConfigError)).toEqual([]);
  expect(result.pending).toEqual([]);
  return result.config;
}

const ip = (a: IP | undefined): string | undefined => (a ? formatIP(a) : undefined);

describe('the seed usage docs (legacy ConfigMap)', () => {
  it('basic: one BGP router, one pool', () => {
    const config = valid({ configMap: { ...CM, text: configOf(BASIC_CONFIGMAP) }, resources: [] });
    expect(config.peers).toHaveLength(1);
    const peer = config.peers[0]!;
    expect(peer).toMatchObject({
      name: 'peer1',
      peerASN: 100,
      myASN: 42,
      peerPort: 179,
      holdTime: 90,
      keepaliveTime: 30,
      connectTime: 120,
      nodeSelectors: [],
      ebgpMultiHop: false,
      origin: { kind: 'ConfigMap', namespace: 'metallb-system', name: 'config', path: 'peers[0]' },
    });
    expect(ip(peer.peerAddress)).toBe('10.0.0.1');
    expect(peer.password).toBeUndefined();

    expect(config.pools).toHaveLength(1);
    const pool = config.pools[0]!;
    expect(pool).toMatchObject({ name: 'default', protocol: 'bgp', autoAssign: true, avoidBuggyIPs: false, labels: {} });
    expect(pool.ranges.map((r) => [r.text, r.prefix])).toEqual([['192.168.10.0/24', 24]]);
    expect(pool.origin).toEqual({ kind: 'ConfigMap', namespace: 'metallb-system', name: 'config', path: 'address-pools[0]' });

    // A bgp pool without bgp-advertisements is advertised with the defaults, as configmaptocrs does.
    expect(config.bgpAdvertisements).toEqual([
      {
        name: 'bgpadvertisement1',
        origin: { kind: 'ConfigMap', namespace: 'metallb-system', name: 'config', path: 'address-pools[0]' },
        aggregationLength: 32,
        aggregationLengthV6: 128,
        communities: [],
        ipAddressPools: ['default'],
        ipAddressPoolSelectors: [],
        nodeSelectors: [],
        peers: [],
      },
    ]);
    expect(config.l2Advertisements).toEqual([]);
  });

  it('cheap and expensive pools, auto-assign: false', () => {
    const config = valid({ configMap: { ...CM, text: CHEAP_EXPENSIVE }, resources: [] });
    expect(config.pools.map((p) => [p.name, p.autoAssign, p.ranges.map((r) => r.text)])).toEqual([
      ['cheap', true, ['192.168.144.0/20']],
      ['expensive', false, ['42.176.25.64/30']],
    ]);
    expect(config.bgpAdvertisements.map((a) => a.ipAddressPools)).toEqual([['cheap'], ['expensive']]);
  });

  it('production and sandbox, the sandbox tagged with the vpn-only community alias', () => {
    const config = valid({ configMap: { ...CM, text: PRODUCTION_SANDBOX }, resources: [] });
    expect(config.communities).toEqual({ 'vpn-only': { kind: 'standard', asn: 1234, value: 1 } });
    expect(config.pools.map((p) => p.name)).toEqual(['production', 'sandbox']);
    const [production, sandbox] = config.bgpAdvertisements;
    expect(production).toMatchObject({ ipAddressPools: ['production'], communities: [] });
    expect(sandbox).toMatchObject({
      name: 'bgpadvertisement2',
      ipAddressPools: ['sandbox'],
      aggregationLength: 32,
      communities: [{ kind: 'standard', asn: 1234, value: 1 }],
      origin: { kind: 'ConfigMap', path: 'address-pools[1].bgp-advertisements[0]' },
    });
  });

  it('layer2 pools get an L2Advertisement each; bgp-communities is the other spelling', () => {
    const text = `
bgp-communities:
  no-advertise: 65535:65282
communities:
  vpn-only: 1234:1
bfd-profiles:
- name: fast
  receive-interval: 100
  passive-mode: yes
address-pools:
- name: l2
  protocol: layer2
  addresses:
  - 192.168.1.240-192.168.1.250
  avoid-buggy-ips: true
- name: v6
  protocol: bgp
  addresses:
  - 2001:db8::/120
  bgp-advertisements:
  - aggregation-length-v6: 124
    localpref: 150
    communities: [no-advertise, "64512:7"]
peers:
- peer-address: 2001:db8::ffff
  peer-asn: 64512
  my-asn: 64512
  peer-port: 1179
  hold-time: 1m30s
  keepalive-time: 20s
  router-id: 10.1.1.1
  source-address: 2001:db8::1
  password: s3cret
  bfd-profile: fast
  node-selectors:
  - match-labels:
      rack: 1
    match-expressions:
    - key: kubernetes.io/hostname
      operator: NotIn
      values: [node3]
`;
    const config = valid({ configMap: { ...CM, text }, resources: [] });
    expect(config.communities).toEqual({
      'no-advertise': { kind: 'standard', asn: 65535, value: 65282 },
      'vpn-only': { kind: 'standard', asn: 1234, value: 1 },
    });
    expect(config.l2Advertisements).toEqual([
      {
        name: 'l2advertisement1',
        origin: { kind: 'ConfigMap', namespace: 'metallb-system', name: 'config', path: 'address-pools[0]' },
        ipAddressPools: ['l2'],
        ipAddressPoolSelectors: [],
        nodeSelectors: [],
        preferredNodeSelectors: [],
        interfaces: [],
      },
    ]);
    expect(config.pools[0]).toMatchObject({ protocol: 'layer2', avoidBuggyIPs: true });
    expect(config.bgpAdvertisements).toHaveLength(1);
    expect(config.bgpAdvertisements[0]).toMatchObject({ aggregationLength: 32, aggregationLengthV6: 124, localPref: 150, ipAddressPools: ['v6'] });
    expect(config.bgpAdvertisements[0]!.communities.map(formatCommunity)).toEqual(['65535:65282', '64512:7']);
    expect(config.bfdProfiles).toEqual([
      {
        name: 'fast',
        origin: { kind: 'ConfigMap', namespace: 'metallb-system', name: 'config', path: 'bfd-profiles[0]' },
        receiveInterval: 100,
        transmitInterval: 300,
        detectMultiplier: 3,
        echoInterval: 50,
        echoMode: false,
        passiveMode: true,
        minimumTtl: 254,
      },
    ]);
    const peer = config.peers[0]!;
    expect(peer).toMatchObject({ peerPort: 1179, holdTime: 90, keepaliveTime: 20, password: 's3cret', bfdProfile: 'fast' });
    expect([ip(peer.peerAddress), ip(peer.routerID), ip(peer.sourceAddress)]).toEqual(['2001:db8::ffff', '10.1.1.1', '2001:db8::1']);
    // go-yaml read `rack: 1` into the string map as "1"; so do we.
    expect(peer.nodeSelectors).toEqual([{ matchLabels: { rack: '1' }, matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'NotIn', values: ['node3'] }] }]);
  });

  it('an empty ConfigMap is an empty configuration', () => {
    expect(valid({ configMap: { ...CM, text: '' }, resources: [] })).toEqual({
      pools: [],
      peers: [],
      bfdProfiles: [],
      communities: {},
      l2Advertisements: [],
      bgpAdvertisements: [],
    });
    expect(valid({ configMap: { ...CM, text: '# nothing yet\n' }, resources: [] }).pools).toEqual([]);
  });
});

/** A full set of CRDs in the shape of the current MetalLB documentation. */
const FULL_CRDS = `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: first-pool
  namespace: metallb-system
  labels:
    tier: public
spec:
  addresses:
  - 192.168.10.0/24
  - 192.168.9.1-192.168.9.5
  - fc00:f853:0ccd:e799::/124
  serviceAllocation:
    priority: 50
    namespaces:
    - namespace-a
    namespaceSelectors:
    - matchLabels:
        foo: bar
    serviceSelectors:
    - matchExpressions:
      - {key: app, operator: In, values: [bar]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: bgp-pool
  namespace: metallb-system
spec:
  addresses:
  - 198.51.100.0/24
  autoAssign: false
  avoidBuggyIPs: true
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: example
  namespace: metallb-system
spec:
  ipAddressPoolSelectors:
  - matchLabels:
      tier: public
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: kind-worker
  preferredNodeSelectors:
  - weight: 50
    preference:
      matchExpressions:
      - key: topology.kubernetes.io/zone
        operator: In
        values: [a]
  interfaces:
  - eth0
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: sample
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
  holdTime: 9s
  connectTime: 5s
  bfdProfile: testbfdprofile
  passwordSecret:
    name: bgp-password
  enableGracefulRestart: true
---
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata:
  name: old-style
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64502
  peerAddress: 10.0.0.2
  keepaliveTime: 10s
  ebgpMultiHop: true
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: local
  namespace: metallb-system
spec:
  ipAddressPools:
  - bgp-pool
  aggregationLength: 32
  localPref: 100
  communities:
  - vpn-only
  - 65535:65282
  - large:64500:1:2
  peers:
  - sample
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: aggregated
  namespace: metallb-system
spec:
  ipAddressPools:
  - bgp-pool
  aggregationLength: 24
  aggregationLengthV6: 124
  nodeSelectors:
  - matchExpressions:
    - key: node-role.kubernetes.io/edge
      operator: Exists
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata:
  name: testbfdprofile
  namespace: metallb-system
spec:
  receiveInterval: 380
  transmitInterval: 270
  detectMultiplier: 37
  echoInterval: 62
  echoMode: true
  passiveMode: true
  minimumTtl: 10
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata:
  name: communities
  namespace: metallb-system
spec:
  communities:
  - name: vpn-only
    value: 1234:1
  - name: NO_ADVERTISE
    value: 65535:65282
`;

const SECRETS = { 'metallb-system/bgp-password': { password: Buffer.from('pässword').toString('base64') } };

describe('a full CRD set', () => {
  const config = valid({ resources: crds(FULL_CRDS), secrets: SECRETS });

  it('pools', () => {
    expect(config.pools.map((p) => p.name)).toEqual(['first-pool', 'bgp-pool']);
    const [first, bgp] = config.pools;
    expect(first!.ranges.map((r) => r.text)).toEqual(['192.168.10.0/24', '192.168.9.1-192.168.9.5', 'fc00:f853:0ccd:e799::/124']);
    expect(first!.labels).toEqual({ tier: 'public' });
    expect(first!.protocol).toBeUndefined();
    expect(first!.origin).toEqual({ kind: 'IPAddressPool', namespace: 'metallb-system', name: 'first-pool' });
    expect(first!.serviceAllocation).toEqual({
      priority: 50,
      namespaces: ['namespace-a'],
      namespaceSelectors: [{ matchLabels: { foo: 'bar' }, matchExpressions: [] }],
      serviceSelectors: [{ matchLabels: {}, matchExpressions: [{ key: 'app', operator: 'In', values: ['bar'] }] }],
    });
    expect(bgp).toMatchObject({ autoAssign: false, avoidBuggyIPs: true });
    expect(bgp!.serviceAllocation).toBeUndefined();
  });

  it('L2Advertisement', () => {
    expect(config.l2Advertisements).toEqual([
      {
        name: 'example',
        origin: { kind: 'L2Advertisement', namespace: 'metallb-system', name: 'example' },
        ipAddressPools: [],
        ipAddressPoolSelectors: [{ matchLabels: { tier: 'public' }, matchExpressions: [] }],
        nodeSelectors: [{ matchLabels: { 'kubernetes.io/hostname': 'kind-worker' }, matchExpressions: [] }],
        preferredNodeSelectors: [{ weight: 50, preference: { matchLabels: {}, matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }] } }],
        interfaces: ['eth0'],
      },
    ]);
  });

  it('BGPPeers, the password resolved from its Secret', () => {
    const [sample, old] = config.peers;
    expect(sample).toMatchObject({
      name: 'sample',
      myASN: 64500,
      peerASN: 64501,
      peerPort: 179,
      holdTime: 9,
      keepaliveTime: 3,
      connectTime: 5,
      bfdProfile: 'testbfdprofile',
      passwordSecret: { namespace: 'metallb-system', name: 'bgp-password' },
      password: 'pässword',
      enableGracefulRestart: true,
      ebgpMultiHop: false,
    });
    expect(ip(sample!.peerAddress)).toBe('10.0.0.1');
    // Only a keepalive: the hold time is three of them (MetalLB's BGPPeer rule).
    expect(old).toMatchObject({ name: 'old-style', holdTime: 30, keepaliveTime: 10, connectTime: 120, ebgpMultiHop: true });
  });

  it('BGPAdvertisements with aliases, standard and large communities', () => {
    const [local, aggregated] = config.bgpAdvertisements;
    expect(local).toMatchObject({ name: 'local', aggregationLength: 32, aggregationLengthV6: 128, localPref: 100, peers: ['sample'] });
    expect(local!.communities).toEqual([
      { kind: 'standard', asn: 1234, value: 1 },
      { kind: 'standard', asn: 65535, value: 65282 },
      { kind: 'large', global: 64500, local1: 1, local2: 2 },
    ]);
    expect(aggregated).toMatchObject({ aggregationLength: 24, aggregationLengthV6: 124 });
    expect(aggregated!.localPref).toBeUndefined();
    expect(aggregated!.nodeSelectors).toEqual([{ matchLabels: {}, matchExpressions: [{ key: 'node-role.kubernetes.io/edge', operator: 'Exists', values: [] }] }]);
  });

  it('BFDProfile and Community', () => {
    expect(config.bfdProfiles).toEqual([
      {
        name: 'testbfdprofile',
        origin: { kind: 'BFDProfile', namespace: 'metallb-system', name: 'testbfdprofile' },
        receiveInterval: 380,
        transmitInterval: 270,
        detectMultiplier: 37,
        echoInterval: 62,
        echoMode: true,
        passiveMode: true,
        minimumTtl: 10,
      },
    ]);
    expect(config.communities).toEqual({
      'vpn-only': { kind: 'standard', asn: 1234, value: 1 },
      NO_ADVERTISE: { kind: 'standard', asn: 65535, value: 65282 },
    });
  });

  it('a missing password Secret is pending, not an error, and the peer stays', () => {
    const result = parseConfig({ resources: crds(FULL_CRDS) });
    expect(result.errors).toEqual([]);
    expect(result.pending).toEqual([
      { source: 'BGPPeer metallb-system/sample', path: 'spec.passwordSecret', resource: 3, message: expect.stringContaining('metallb-system/bgp-password') },
    ]);
    expect(result.config.peers.find((p) => p.name === 'sample')?.password).toBeUndefined();
  });
});

describe('both sources together', () => {
  const configMap = {
    ...CM,
    text: `
communities:
  vpn-only: 1234:1
peers:
- peer-address: 10.0.0.1
  peer-asn: 100
  my-asn: 42
address-pools:
- name: legacy
  protocol: layer2
  cidr:
  - 192.168.20.0/24
`,
  };
  const resources = crds(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: modern, namespace: metallb-system}
spec:
  addresses: [192.168.30.0/24]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: modern-adv, namespace: metallb-system}
spec:
  ipAddressPools: [modern, legacy]
  communities: [vpn-only]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor2, namespace: metallb-system}
spec: {myASN: 42, peerASN: 100, peerAddress: 10.0.0.2}
`);

  it('merge into one Config: ConfigMap objects first, aliases shared across sources', () => {
    const config = valid({ configMap, resources });
    expect(config.pools.map((p) => [p.name, p.origin.kind])).toEqual([
      ['legacy', 'ConfigMap'],
      ['modern', 'IPAddressPool'],
    ]);
    expect(config.peers.map((p) => p.name)).toEqual(['peer1', 'tor2']);
    expect(config.l2Advertisements.map((a) => a.ipAddressPools)).toEqual([['legacy']]);
    // The CRD advertisement uses the ConfigMap's alias and may cover the ConfigMap's pool too.
    expect(config.bgpAdvertisements).toHaveLength(1);
    expect(config.bgpAdvertisements[0]).toMatchObject({ name: 'modern-adv', communities: [{ kind: 'standard', asn: 1234, value: 1 }] });
  });

  it('a name defined in both is an error naming both places', () => {
    const dup = crds(`
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: legacy, namespace: metallb-system}
spec:
  addresses: [10.9.0.0/24]
`);
    const result = parseConfig({ configMap, resources: dup });
    expect(result.errors.map(formatConfigError)).toEqual([
      'IPAddressPool metallb-system/legacy: metadata.name: duplicate pool name "legacy": already defined by ConfigMap metallb-system/config at address-pools[0].name',
    ]);
    // The first definition stands.
    expect(result.config.pools.map((p) => p.origin.kind)).toEqual(['ConfigMap']);
  });

  it('a peer defined in both (same address, both on every node) is a duplicate', () => {
    const dup = crds(`
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: same-tor, namespace: metallb-system}
spec: {myASN: 42, peerASN: 100, peerAddress: 10.0.0.1}
`);
    const result = parseConfig({ configMap, resources: dup });
    expect(result.errors.map(formatConfigError)).toEqual([
      'BGPPeer metallb-system/same-tor: spec.peerAddress: BGP peer "same-tor" has the same address 10.0.0.1 as peer "peer1" (ConfigMap metallb-system/config at peers[0]) ' +
        'and both can run on one node, which holds one session per neighbor address: merge them, or give them node selectors no node satisfies both',
    ]);
    expect(result.errors[0]?.related).toEqual({ source: 'ConfigMap metallb-system/config', path: 'peers[0].peer-address' });
  });
});
