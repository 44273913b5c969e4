/**
 * Every rule, one row each: [name, input, source, path, message]. An input must produce an
 * error at exactly that source and path whose message contains the text; nothing throws.
 */
import { parseAllDocuments } from 'yaml';
import { formatConfigError, parseConfig, type ConfigError, type ConfigInput } from './index.js';

const CMS = 'ConfigMap metallb-system/config';

const cm = (text: string): ConfigInput => ({ configMap: { namespace: 'metallb-system', name: 'config', text }, resources: [] });

function crds(text: string): unknown[] {
  return parseAllDocuments(text).flatMap((d) => (Array.isArray(d) ? [] : [d.toJS() as unknown]));
}
const crd = (text: string, secrets?: ConfigInput['secrets']): ConfigInput => ({ resources: crds(text), ...(secrets ? { secrets } : {}) });

/** A ConfigMap with one good bgp pool, plus `extra` YAML. */
const pool = (extra = ''): string => `
address-pools:
- name: p
  protocol: bgp
  addresses: [10.0.0.0/24]
${extra}`;

/** A ConfigMap peer with the given extra lines. */
const peer = (lines: string): string => `
peers:
- peer-address: 10.0.0.1
  peer-asn: 100
  my-asn: 42
${lines
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;

const ipPool = (name: string, addresses: string[], ns = 'metallb-system'): string => `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ${name}, namespace: ${ns}}
spec:
  addresses: ${JSON.stringify(addresses)}
`;

const bgpPeer = (spec: string, name = 'tor'): string => `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: ${name}, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
${spec
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;

const bgpAdv = (spec: string, name = 'adv'): string => `
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: ${name}, namespace: metallb-system}
spec:
${spec
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;

const bfd = (spec: string, name = 'b'): string => `
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: ${name}, namespace: metallb-system}
spec: ${spec}
`;

const docs = (...parts: string[]): string => parts.join('\n---\n');

type Row = [string, ConfigInput, string, string, string];

const configMapRows: Row[] = [
  ['YAML syntax error, with its line', cm('address-pools:\n- name: a\n   protocol: bgp\n  - x: [\n'), CMS, '', 'invalid YAML at line'],
  ['duplicate YAML key', cm('peers: []\npeers: []\n'), CMS, '', 'invalid YAML at line 2'],
  ['top level not a map', cm('- a\n- b\n'), CMS, '', 'must be a map, got a list'],
  ['unknown top-level key', cm('address-pool: []\n'), CMS, '', 'unknown field "address-pool"'],
  ['peers is a map', cm('peers: {peer-address: 10.0.0.1}\n'), CMS, 'peers', 'must be a list, got a map'],
  ['unknown pool field', cm('address-pools:\n- name: a\n  protocol: bgp\n  cidrs: [10.0.0.0/24]\n  cidr: [10.0.0.0/24]\n'), CMS, 'address-pools[0]', 'unknown field "cidrs"'],
  ['camelCase in the ConfigMap', cm(peer('peerPort: 1179')), CMS, 'peers[0]', 'unknown field "peerPort" (did you mean "peer-port"?)'],
  ['invalid CIDR', cm('address-pools:\n- name: a\n  protocol: bgp\n  cidr: [10.0.0.0/33]\n'), CMS, 'address-pools[0].cidr[0]', '"10.0.0.0/33" is not a CIDR'],
  [
    'range start after end',
    cm('address-pools:\n- name: a\n  protocol: layer2\n  addresses: [10.0.0.9-10.0.0.1]\n'),
    CMS,
    'address-pools[0].addresses[0]',
    'range start is after its end',
  ],
  [
    'garbage address',
    cm('address-pools:\n- name: a\n  protocol: layer2\n  addresses: [everything]\n'),
    CMS,
    'address-pools[0].addresses[0]',
    '"everything" is not a CIDR or an address range',
  ],
  ['address is a number', cm('address-pools:\n- name: a\n  protocol: layer2\n  addresses: [10]\n'), CMS, 'address-pools[0].addresses[0]', '"10" is not a CIDR'],
  ['pool with no addresses', cm('address-pools:\n- name: empty\n  protocol: bgp\n'), CMS, 'address-pools[0]', 'pool "empty" has no addresses'],
  ['pool with an empty list', cm('address-pools:\n- name: empty\n  protocol: bgp\n  addresses: []\n'), CMS, 'address-pools[0]', 'has no addresses'],
  ['pool without a name', cm('address-pools:\n- protocol: bgp\n  addresses: [10.0.0.0/24]\n'), CMS, 'address-pools[0]', 'missing required field "name"'],
  ['pool without a protocol', cm('address-pools:\n- name: a\n  addresses: [10.0.0.0/24]\n'), CMS, 'address-pools[0]', 'missing required field "protocol"'],
  ['unknown protocol', cm('address-pools:\n- name: a\n  protocol: arp\n  addresses: [10.0.0.0/24]\n'), CMS, 'address-pools[0].protocol', 'unknown protocol "arp"'],
  [
    'auto-assign not a boolean',
    cm('address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24]\n  auto-assign: maybe\n'),
    CMS,
    'address-pools[0].auto-assign',
    'must be true or false, got "maybe"',
  ],
  [
    'overlap across pools',
    cm('address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24]\n- name: b\n  protocol: bgp\n  addresses: [10.0.0.128/25]\n'),
    CMS,
    'address-pools[1].addresses[0]',
    '"10.0.0.128/25" overlaps "10.0.0.0/24" of pool "a" (ConfigMap metallb-system/config at address-pools[0].addresses[0])',
  ],
  [
    'overlap of a range and a CIDR within one pool',
    cm('address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24, 10.0.0.250-10.0.1.5]\n'),
    CMS,
    'address-pools[0].addresses[1]',
    'overlaps "10.0.0.0/24" in the same pool',
  ],
  [
    'overlap between cidr and addresses of one pool',
    cm('address-pools:\n- name: a\n  protocol: bgp\n  cidr: [2001:db8::/64]\n  addresses: [2001:db8::5-2001:db8::9]\n'),
    CMS,
    'address-pools[0].addresses[0]',
    'in the same pool',
  ],
  [
    'duplicate pool name',
    cm('address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24]\n- name: a\n  protocol: bgp\n  addresses: [10.1.0.0/24]\n'),
    CMS,
    'address-pools[1].name',
    'duplicate pool name "a": already defined by ConfigMap metallb-system/config at address-pools[0].name',
  ],
  [
    'unknown community alias',
    cm(pool('  bgp-advertisements:\n  - communities: [vpn-only]')),
    CMS,
    'address-pools[0].bgp-advertisements[0].communities[0]',
    'unknown community alias "vpn-only" (no aliases are defined',
  ],
  [
    'malformed community "1234"',
    cm(pool('  bgp-advertisements:\n  - communities: ["1234"]')),
    CMS,
    'address-pools[0].bgp-advertisements[0].communities[0]',
    '"1234" is not a community',
  ],
  [
    'malformed community "70000:1"',
    cm(pool('  bgp-advertisements:\n  - communities: ["70000:1"]')),
    CMS,
    'address-pools[0].bgp-advertisements[0].communities[0]',
    '"70000:1" is not a community',
  ],
  [
    'malformed community "large:1:2"',
    cm(pool('  bgp-advertisements:\n  - communities: ["large:1:2"]')),
    CMS,
    'address-pools[0].bgp-advertisements[0].communities[0]',
    '"large:1:2" is not a community',
  ],
  ['malformed alias value', cm('communities:\n  bad: "1234"\n'), CMS, 'communities.bad', '"1234" is not a community'],
  ['alias value a number', cm('bgp-communities:\n  bad: 1234\n'), CMS, 'bgp-communities.bad', '"1234" is not a community'],
  [
    'alias in both spellings',
    cm('communities:\n  vpn-only: "1234:1"\nbgp-communities:\n  vpn-only: "1234:2"\n'),
    CMS,
    'bgp-communities.vpn-only',
    'duplicate community alias "vpn-only": already defined by ConfigMap metallb-system/config at communities.vpn-only',
  ],
  ['my-asn 0', cm('peers:\n- peer-address: 10.0.0.1\n  peer-asn: 100\n  my-asn: 0\n'), CMS, 'peers[0].my-asn', 'must be a whole number from 1 to 4294967295, got 0'],
  ['peer-asn too large', cm('peers:\n- peer-address: 10.0.0.1\n  peer-asn: 4294967296\n  my-asn: 1\n'), CMS, 'peers[0].peer-asn', 'got 4294967296'],
  ['peer-asn missing', cm('peers:\n- peer-address: 10.0.0.1\n  my-asn: 1\n'), CMS, 'peers[0]', 'missing required field "peer-asn"'],
  ['peer-asn a string', cm('peers:\n- peer-address: 10.0.0.1\n  peer-asn: "100"\n  my-asn: 1\n'), CMS, 'peers[0].peer-asn', 'got "100"'],
  ['hold time 2s', cm(peer('hold-time: 2s')), CMS, 'peers[0].hold-time', 'invalid hold time "2s": must be 0 or at least 3s'],
  ['hold time as a number below 3', cm(peer('hold-time: 1')), CMS, 'peers[0].hold-time', 'must be 0 or at least 3s'],
  ['hold time garbage', cm(peer('hold-time: ten seconds')), CMS, 'peers[0].hold-time', '"ten seconds" is not a duration'],
  ['hold time negative', cm(peer('hold-time: -5s')), CMS, 'peers[0].hold-time', 'negative'],
  ['hold time too long for BGP', cm(peer('hold-time: 20h')), CMS, 'peers[0].hold-time', 'at most 65535s'],
  ['keepalive not below hold', cm(peer('hold-time: 30s\nkeepalive-time: 30s')), CMS, 'peers[0].keepalive-time', 'keepalive time 30s must be lower than the hold time 30s'],
  ['keepalive above the default hold', cm(peer('keepalive-time: 2m')), CMS, 'peers[0].keepalive-time', 'must be lower than the hold time 1m30s'],
  ['keepalive with hold 0', cm(peer('hold-time: 0s\nkeepalive-time: 10s')), CMS, 'peers[0].keepalive-time', 'must be 0 when the hold time is 0'],
  ['peer address not an IP', cm('peers:\n- peer-address: router.example\n  peer-asn: 100\n  my-asn: 42\n'), CMS, 'peers[0].peer-address', '"router.example" is not an IP address'],
  ['source address not an IP', cm(peer('source-address: 10.0.0.300')), CMS, 'peers[0].source-address', '"10.0.0.300" is not an IP address'],
  ['source address of the other family', cm(peer('source-address: 2001:db8::1')), CMS, 'peers[0].source-address', 'is IPv6 but the peer address 10.0.0.1 is IPv4'],
  ['router id not an IP', cm(peer('router-id: me')), CMS, 'peers[0].router-id', '"me" is not an IP address'],
  ['router id IPv6', cm(peer('router-id: 2001:db8::1')), CMS, 'peers[0].router-id', 'must be an IPv4 address'],
  ['peer port 0', cm(peer('peer-port: 0')), CMS, 'peers[0].peer-port', 'from 1 to 65535, got 0'],
  ['peer port 70000', cm(peer('peer-port: 70000')), CMS, 'peers[0].peer-port', 'from 1 to 65535, got 70000'],
  ['unknown BFD profile', cm(peer('bfd-profile: fast')), CMS, 'peers[0].bfd-profile', 'unknown BFD profile "fast" (no BFD profiles are defined)'],
  ['ebgp multihop on iBGP', cm('peers:\n- peer-address: 10.0.0.1\n  peer-asn: 42\n  my-asn: 42\n  ebgp-multihop: true\n'), CMS, 'peers[0].ebgp-multihop', 'iBGP session'],
  ['password with a line break', cm(peer('password: "a\\nb"')), CMS, 'peers[0].password', 'line breaks'],
  [
    'duplicate peer',
    cm('peers:\n- peer-address: 10.0.0.1\n  peer-asn: 100\n  my-asn: 42\n- peer-address: 10.0.0.1\n  peer-asn: 200\n  my-asn: 42\n'),
    CMS,
    'peers[1].peer-address',
    'BGP peer "peer2" has the same address 10.0.0.1 as peer "peer1" (ConfigMap metallb-system/config at peers[0]) and both can run on one node',
  ],
  [
    'selector bad operator',
    cm(peer('node-selectors:\n- match-expressions:\n  - {key: zone, operator: Equals, values: [a]}')),
    CMS,
    'peers[0].node-selectors[0].match-expressions[0].operator',
    'unknown operator "Equals"',
  ],
  [
    'selector In without values',
    cm(peer('node-selectors:\n- match-expressions:\n  - {key: zone, operator: In}')),
    CMS,
    'peers[0].node-selectors[0].match-expressions[0]',
    'operator In needs at least one value',
  ],
  [
    'selector NotIn with empty values',
    cm(peer('node-selectors:\n- match-expressions:\n  - {key: zone, operator: NotIn, values: []}')),
    CMS,
    'peers[0].node-selectors[0].match-expressions[0]',
    'operator NotIn needs at least one value',
  ],
  [
    'selector Exists with values',
    cm(peer('node-selectors:\n- match-expressions:\n  - {key: zone, operator: Exists, values: [a]}')),
    CMS,
    'peers[0].node-selectors[0].match-expressions[0].values',
    'takes no values',
  ],
  ['selector bad label key', cm(peer('node-selectors:\n- match-labels:\n    "bad key": x')), CMS, 'peers[0].node-selectors[0].match-labels.bad key', 'not a valid label key'],
  [
    'selector camelCase in ConfigMap',
    cm(peer('node-selectors:\n- matchLabels: {a: b}')),
    CMS,
    'peers[0].node-selectors[0]',
    'unknown field "matchLabels" (did you mean "match-labels"?)',
  ],
  [
    'aggregation length shorter than the CIDR',
    cm('address-pools:\n- name: p\n  protocol: bgp\n  addresses: [10.0.0.0/26]\n  bgp-advertisements:\n  - aggregation-length: 24\n'),
    CMS,
    'address-pools[0].bgp-advertisements[0].aggregation-length',
    'invalid aggregation length 24 for pool "p" with CIDR 10.0.0.0/26',
  ],
  [
    'aggregation length shorter than a range block',
    cm('address-pools:\n- name: p\n  protocol: bgp\n  addresses: [10.0.0.10-10.0.0.20]\n  bgp-advertisements:\n  - aggregation-length: 29\n'),
    CMS,
    'address-pools[0].bgp-advertisements[0].aggregation-length',
    'range 10.0.0.10-10.0.0.20 (its largest CIDR block is a /30)',
  ],
  [
    'IPv6 aggregation length shorter than the CIDR',
    cm('address-pools:\n- name: p\n  protocol: bgp\n  addresses: [2001:db8::/120]\n  bgp-advertisements:\n  - aggregation-length-v6: 112\n'),
    CMS,
    'address-pools[0].bgp-advertisements[0].aggregation-length-v6',
    'invalid IPv6 aggregation length 112 for pool "p" with CIDR 2001:db8::/120',
  ],
  [
    'aggregation length over 32',
    cm(pool('  bgp-advertisements:\n  - aggregation-length: 33')),
    CMS,
    'address-pools[0].bgp-advertisements[0].aggregation-length',
    'from 0 to 32, got 33',
  ],
  [
    'aggregation length v6 over 128',
    cm(pool('  bgp-advertisements:\n  - aggregation-length-v6: 129')),
    CMS,
    'address-pools[0].bgp-advertisements[0].aggregation-length-v6',
    'from 0 to 128, got 129',
  ],
  ['localpref negative', cm(pool('  bgp-advertisements:\n  - localpref: -1')), CMS, 'address-pools[0].bgp-advertisements[0].localpref', 'got -1'],
  [
    'localpref on a layer2 pool',
    cm('address-pools:\n- name: l2\n  protocol: layer2\n  addresses: [10.0.0.0/24]\n  bgp-advertisements:\n  - localpref: 100\n'),
    CMS,
    'address-pools[0].bgp-advertisements',
    'pool "l2" is a layer2 pool and cannot have bgp-advertisements',
  ],
  [
    'unknown bgp-advertisement field',
    cm(pool('  bgp-advertisements:\n  - local-pref: 100')),
    CMS,
    'address-pools[0].bgp-advertisements[0]',
    'unknown field "local-pref" (did you mean "localpref"?)',
  ],
  ['BFD receive interval too low', cm('bfd-profiles:\n- name: b\n  receive-interval: 5\n'), CMS, 'bfd-profiles[0].receive-interval', 'from 10 to 60000, got 5'],
  ['BFD profile without a name', cm('bfd-profiles:\n- receive-interval: 50\n'), CMS, 'bfd-profiles[0]', 'missing required field "name"'],
  [
    'duplicate BFD profile',
    cm('bfd-profiles:\n- name: b\n- name: b\n'),
    CMS,
    'bfd-profiles[1].name',
    'duplicate BFD profile name "b": already defined by ConfigMap metallb-system/config at bfd-profiles[0].name',
  ],
];

const S = {
  pool: 'IPAddressPool metallb-system/p',
  adv: 'BGPAdvertisement metallb-system/adv',
  peer: 'BGPPeer metallb-system/tor',
  bfd: 'BFDProfile metallb-system/b',
};

const crdRows: Row[] = [
  ['a resource that is not an object', { resources: ['apiVersion: metallb.io/v1beta1'] }, 'resources[0]', '', 'must be a metallb.io object'],
  ['null resource', { resources: [null] }, 'resources[0]', '', 'got null'],
  ['unknown kind', crd('apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata: {name: p}\nspec: {}\n'), 'AddressPool metallb-system/p', 'kind', 'unknown kind "AddressPool"'],
  ['missing kind', crd('apiVersion: metallb.io/v1beta1\nmetadata: {name: p}\n'), 'object metallb-system/p', 'kind', 'missing or not a string'],
  [
    'wrong apiVersion',
    crd('apiVersion: metallb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/24]}\n'),
    S.pool,
    'apiVersion',
    'must have apiVersion metallb.io/v1beta1, got "metallb.io/v1alpha1"',
  ],
  ['v1beta2 is for BGPPeer only', crd(ipPool('p', ['10.0.0.0/24']).replace('v1beta1', 'v1beta2')), S.pool, 'apiVersion', 'must have apiVersion metallb.io/v1beta1'],
  [
    'missing metadata.name',
    crd('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {namespace: metallb-system}\nspec: {addresses: [10.0.0.0/24]}\n'),
    'IPAddressPool (resources[0])',
    'metadata',
    'missing required field "name"',
  ],
  ['missing metadata', crd('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nspec: {addresses: [10.0.0.0/24]}\n'), 'IPAddressPool (resources[0])', '', 'missing metadata'],
  [
    'metadata.name not a string',
    crd('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: [p]}\n'),
    'IPAddressPool (resources[0])',
    'metadata.name',
    'must be a string, got a list',
  ],
  ['unknown top-level field', crd(ipPool('p', ['10.0.0.0/24']) + 'specs: {}\n'), S.pool, '', 'unknown field "specs"'],
  ['spec is a list', crd('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: [10.0.0.0/24]\n'), S.pool, 'spec', 'must be a map, got a list'],
  [
    'bad label on a pool',
    crd(ipPool('p', ['10.0.0.0/24']).replace('namespace: metallb-system}', 'namespace: metallb-system, labels: {tier: "a b"}}')),
    S.pool,
    'metadata.labels.tier',
    'not a valid label value',
  ],
  ['invalid CIDR in a pool', crd(ipPool('p', ['10.0.0.0/24', '10.1.0.0/33'])), S.pool, 'spec.addresses[1]', '"10.1.0.0/33" is not a CIDR'],
  ['range start after end in a pool', crd(ipPool('p', ['fc00::9-fc00::1'])), S.pool, 'spec.addresses[0]', 'range start is after its end'],
  ['range mixing families', crd(ipPool('p', ['10.0.0.1-fc00::1'])), S.pool, 'spec.addresses[0]', 'mixes IPv4 and IPv6'],
  ['pool with no addresses', crd(ipPool('p', [])), S.pool, 'spec.addresses', 'pool "p" has no addresses'],
  ['pool without a spec', crd('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\n'), S.pool, 'spec.addresses', 'has no addresses'],
  [
    'addresses is a string',
    crd('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: 10.0.0.0/24}\n'),
    S.pool,
    'spec.addresses',
    'must be a list, got "10.0.0.0/24"',
  ],
  ['autoAssign a string', crd(ipPool('p', ['10.0.0.0/24']) + '  autoAssign: "false"\n'), S.pool, 'spec.autoAssign', 'must be true or false, got "false"'],
  ['YAML 1.1 booleans are ConfigMap-only', crd(ipPool('p', ['10.0.0.0/24']) + '  autoAssign: no\n'), S.pool, 'spec.autoAssign', 'must be true or false, got "no"'],
  [
    'overlap across CRD pools',
    crd(docs(ipPool('a', ['10.0.0.0/16']), ipPool('b', ['10.0.5.7-10.0.5.9']))),
    'IPAddressPool metallb-system/b',
    'spec.addresses[0]',
    '"10.0.5.7-10.0.5.9" overlaps "10.0.0.0/16" of pool "a" (IPAddressPool metallb-system/a at spec.addresses[0])',
  ],
  ['IPv6 overlap within a pool', crd(ipPool('p', ['fc00::/64', 'fc00::1/128'])), S.pool, 'spec.addresses[1]', 'in the same pool'],
  [
    'duplicate pool name in two namespaces',
    crd(docs(ipPool('p', ['10.0.0.0/24']), ipPool('p', ['10.1.0.0/24'], 'other'))),
    'IPAddressPool other/p',
    'metadata.name',
    'duplicate pool name "p": already defined by IPAddressPool metallb-system/p at metadata.name',
  ],
  [
    'serviceAllocation bad namespace selector operator',
    crd(ipPool('p', ['10.0.0.0/24']) + '  serviceAllocation:\n    namespaceSelectors:\n    - matchExpressions: [{key: team, operator: Has}]\n'),
    S.pool,
    'spec.serviceAllocation.namespaceSelectors[0].matchExpressions[0].operator',
    'unknown operator "Has"',
  ],
  [
    'serviceAllocation service selector In without values',
    crd(ipPool('p', ['10.0.0.0/24']) + '  serviceAllocation:\n    serviceSelectors:\n    - matchExpressions: [{key: app, operator: In}]\n'),
    S.pool,
    'spec.serviceAllocation.serviceSelectors[0].matchExpressions[0]',
    'operator In needs at least one value',
  ],
  [
    'serviceAllocation selectors not a list',
    crd(ipPool('p', ['10.0.0.0/24']) + '  serviceAllocation:\n    serviceSelectors: {matchLabels: {app: x}}\n'),
    S.pool,
    'spec.serviceAllocation.serviceSelectors',
    'must be a list of label selectors, got a map',
  ],
  [
    'serviceAllocation selector matchLabels a list',
    crd(ipPool('p', ['10.0.0.0/24']) + '  serviceAllocation:\n    namespaceSelectors:\n    - matchLabels: [a]\n'),
    S.pool,
    'spec.serviceAllocation.namespaceSelectors[0].matchLabels',
    'must be a map, got a list',
  ],
  [
    'serviceAllocation priority a string',
    crd(ipPool('p', ['10.0.0.0/24']) + '  serviceAllocation:\n    priority: high\n'),
    S.pool,
    'spec.serviceAllocation.priority',
    'got "high"',
  ],
  [
    'serviceAllocation bad namespace',
    crd(ipPool('p', ['10.0.0.0/24']) + '  serviceAllocation:\n    namespaces: [Team_A]\n'),
    S.pool,
    'spec.serviceAllocation.namespaces[0]',
    'not a namespace name',
  ],
  [
    'serviceAllocation unknown field',
    crd(ipPool('p', ['10.0.0.0/24']) + '  serviceAllocation:\n    namespace: [a]\n'),
    S.pool,
    'spec.serviceAllocation',
    'unknown field "namespace" (did you mean "namespaces"?)',
  ],
  [
    'L2Advertisement unsupported field',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {serviceSelectors: [{matchLabels: {a: b}}]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.serviceSelectors',
    'is not supported yet: metallb-ts advertises every Service of the pools it covers',
  ],
  [
    'L2Advertisement node selectors a map',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {nodeSelectors: {matchLabels: {a: b}}}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.nodeSelectors',
    'must be a list of label selectors',
  ],
  [
    'L2Advertisement bad interface',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {interfaces: ["eth 0"]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.interfaces[0]',
    'not an interface name',
  ],
  [
    'L2Advertisement preferred weight 0',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: [{weight: 0, preference: {matchLabels: {a: b}}}]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors[0].weight',
    'must be a whole number from 1 to 100, got 0',
  ],
  [
    'L2Advertisement preferred weight 101',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: [{weight: 101, preference: {}}]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors[0].weight',
    'must be a whole number from 1 to 100, got 101',
  ],
  [
    'L2Advertisement preferred weight 1.5',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: [{weight: 1.5, preference: {}}]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors[0].weight',
    'not a whole number',
  ],
  [
    'L2Advertisement preferred without weight',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: [{preference: {matchLabels: {a: b}}}]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors[0]',
    'missing required field "weight"',
  ],
  [
    'L2Advertisement preferred without preference',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: [{weight: 10}]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors[0]',
    'missing required field "preference"',
  ],
  [
    'L2Advertisement preferred bad operator',
    crd(
      'apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: [{weight: 10, preference: {matchExpressions: [{key: a, operator: Like}]}}]}\n',
    ),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors[0].preference.matchExpressions[0].operator',
    'unknown operator "Like"',
  ],
  [
    'L2Advertisement preferred unknown field',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: [{weight: 10, preference: {}, nodeSelector: {}}]}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors[0]',
    'unknown field "nodeSelector"',
  ],
  [
    'L2Advertisement preferred a map',
    crd('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {preferredNodeSelectors: {weight: 10}}\n'),
    'L2Advertisement metallb-system/l2',
    'spec.preferredNodeSelectors',
    'must be a list of {weight, preference}',
  ],
  [
    'duplicate L2Advertisement name',
    crd(
      docs(
        'apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\n',
        'apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: x}\n',
      ),
    ),
    'L2Advertisement x/l2',
    'metadata.name',
    'duplicate L2Advertisement name "l2"',
  ],
  ['BGPAdvertisement naming a pool twice', crd(docs(ipPool('p', ['10.0.0.0/24']), bgpAdv('ipAddressPools: [p, p]'))), S.adv, 'spec.ipAddressPools', 'duplicate pool "p"'],
  [
    'aggregation length shorter than a CRD pool',
    crd(docs(ipPool('p', ['10.0.0.0/26']), bgpAdv('ipAddressPools: [p]\naggregationLength: 24'))),
    S.adv,
    'spec.aggregationLength',
    'invalid aggregation length 24 for pool "p" with CIDR 10.0.0.0/26',
  ],
  [
    'aggregation checked against pools chosen by selector',
    crd(
      docs(
        ipPool('p', ['10.0.0.0/26']).replace('namespace: metallb-system}', 'namespace: metallb-system, labels: {t: x}}'),
        bgpAdv('ipAddressPoolSelectors: [{matchLabels: {t: x}}]\naggregationLength: 25'),
      ),
    ),
    S.adv,
    'spec.aggregationLength',
    'invalid aggregation length 25 for pool "p"',
  ],
  [
    'aggregation checked against every pool when none is named',
    crd(docs(ipPool('p', ['10.0.0.0/28']), bgpAdv('aggregationLength: 27'))),
    S.adv,
    'spec.aggregationLength',
    'invalid aggregation length 27 for pool "p"',
  ],
  ['aggregationLengthV6 129', crd(bgpAdv('aggregationLengthV6: 129')), S.adv, 'spec.aggregationLengthV6', 'from 0 to 128, got 129'],
  ['aggregationLength a string', crd(bgpAdv('aggregationLength: "24"')), S.adv, 'spec.aggregationLength', 'got "24"'],
  ['localPref a string', crd(bgpAdv('localPref: high')), S.adv, 'spec.localPref', 'got "high"'],
  ['malformed large community', crd(bgpAdv('communities: ["large:1:2"]')), S.adv, 'spec.communities[0]', '"large:1:2" is not a community: a large community has three parts'],
  ['large community part too big', crd(bgpAdv('communities: ["large:1:2:4294967296"]')), S.adv, 'spec.communities[0]', 'is not a community'],
  ['communities a string', crd(bgpAdv('communities: "65535:1"')), S.adv, 'spec.communities', 'must be a list'],
  ['duplicate community in one advertisement', crd(bgpAdv('communities: ["1:1", "1:1"]')), S.adv, 'spec.communities', 'duplicate community "1:1"'],
  ['BGPAdvertisement unknown field', crd(bgpAdv('aggregation-length: 24')), S.adv, 'spec', 'unknown field "aggregation-length" (did you mean "aggregationLength"?)'],
  [
    'BGPAdvertisement bad node selector',
    crd(bgpAdv('nodeSelectors: [{matchExpressions: [{key: a, operator: in, values: [b]}]}]')),
    S.adv,
    'spec.nodeSelectors[0].matchExpressions[0].operator',
    'unknown operator "in"',
  ],
  ['myASN 0', crd(bgpPeer('').replace('myASN: 64500', 'myASN: 0')), S.peer, 'spec.myASN', 'from 1 to 4294967295, got 0'],
  ['peerASN too big', crd(bgpPeer('').replace('peerASN: 64501', 'peerASN: 4294967296')), S.peer, 'spec.peerASN', 'got 4294967296'],
  ['peerASN a string', crd(bgpPeer('').replace('peerASN: 64501', 'peerASN: "64501"')), S.peer, 'spec.peerASN', 'got "64501"'],
  ['myASN missing', crd(bgpPeer('').replace('myASN: 64500', '')), S.peer, 'spec', 'missing required field "myASN"'],
  ['peerAddress not an IP', crd(bgpPeer('').replace('peerAddress: 10.0.0.1', 'peerAddress: 10.0.0.0/24')), S.peer, 'spec.peerAddress', '"10.0.0.0/24" is not an IP address'],
  ['sourceAddress not an IP', crd(bgpPeer('sourceAddress: eth0')), S.peer, 'spec.sourceAddress', '"eth0" is not an IP address'],
  ['routerID IPv6', crd(bgpPeer('routerID: "fc00::1"')), S.peer, 'spec.routerID', 'must be an IPv4 address'],
  ['peerPort 65536', crd(bgpPeer('peerPort: 65536')), S.peer, 'spec.peerPort', 'from 1 to 65535, got 65536'],
  ['holdTime as a number', crd(bgpPeer('holdTime: 90')), S.peer, 'spec.holdTime', 'must be a duration like "90s", got 90'],
  ['holdTime 1s', crd(bgpPeer('holdTime: 1s')), S.peer, 'spec.holdTime', 'invalid hold time "1s": must be 0 or at least 3s'],
  ['holdTime 500ms', crd(bgpPeer('holdTime: 500ms')), S.peer, 'spec.holdTime', 'must be 0 or at least 3s'],
  ['keepaliveTime equal to holdTime', crd(bgpPeer('holdTime: 90s\nkeepaliveTime: 90s')), S.peer, 'spec.keepaliveTime', 'must be lower than the hold time 1m30s'],
  ['keepaliveTime 0 with a hold time', crd(bgpPeer('holdTime: 9s\nkeepaliveTime: 0s')), S.peer, 'spec.keepaliveTime', 'at least 1s'],
  ['connectTime 0s', crd(bgpPeer('connectTime: 0s')), S.peer, 'spec.connectTime', 'from 1s to 65535s'],
  ['connectTime fractional', crd(bgpPeer('connectTime: 1500ms')), S.peer, 'spec.connectTime', 'whole number of seconds'],
  ['connectTime garbage', crd(bgpPeer('connectTime: soon')), S.peer, 'spec.connectTime', '"soon" is not a duration'],
  [
    'password and passwordSecret',
    crd(bgpPeer('password: x\npasswordSecret: {name: s}'), { 'metallb-system/s': { password: 'eA==' } }),
    S.peer,
    'spec',
    'set either password or passwordSecret, not both',
  ],
  [
    'Secret without a password key',
    crd(bgpPeer('passwordSecret: {name: s, namespace: other}'), { 'other/s': { username: 'eA==' } }),
    S.peer,
    'spec.passwordSecret',
    'Secret other/s: has no key "password"',
  ],
  ['Secret with bad base64', crd(bgpPeer('passwordSecret: {name: s}'), { 'metallb-system/s': { password: 'not base64!' } }), S.peer, 'spec.passwordSecret', 'not valid base64'],
  ['passwordSecret without a name', crd(bgpPeer('passwordSecret: {namespace: x}')), S.peer, 'spec.passwordSecret', 'missing required field "name"'],
  ['unsupported BGPPeer field', crd(bgpPeer('vrf: red')), S.peer, 'spec.vrf', 'is not supported yet: metallb-ts brings it with the BGP speaker release, 0.3'],
  [
    'BGPPeer nodeSelectors In without values',
    crd(bgpPeer('nodeSelectors: [{matchExpressions: [{key: zone, operator: NotIn}]}]')),
    S.peer,
    'spec.nodeSelectors[0].matchExpressions[0]',
    'operator NotIn needs at least one value',
  ],
  ['ebgpMultiHop a string', crd(bgpPeer('ebgpMultiHop: "yes"')), S.peer, 'spec.ebgpMultiHop', 'must be true or false'],
  [
    'duplicate CRD peer',
    crd(docs(bgpPeer(''), bgpPeer('holdTime: 30s', 'tor-b'))),
    'BGPPeer metallb-system/tor-b',
    'spec.peerAddress',
    'BGP peer "tor-b" has the same address 10.0.0.1 as peer "tor"',
  ],
  ['duplicate BGPPeer name', crd(docs(bgpPeer(''), bgpPeer('peerPort: 1179'))), S.peer, 'metadata.name', 'duplicate BGP peer name "tor"'],
  ['BFD receiveInterval 9', crd(bfd('{receiveInterval: 9}')), S.bfd, 'spec.receiveInterval', 'from 10 to 60000, got 9'],
  ['BFD transmitInterval 60001', crd(bfd('{transmitInterval: 60001}')), S.bfd, 'spec.transmitInterval', 'from 10 to 60000, got 60001'],
  ['BFD detectMultiplier 1', crd(bfd('{detectMultiplier: 1}')), S.bfd, 'spec.detectMultiplier', 'from 2 to 255, got 1'],
  ['BFD detectMultiplier 256', crd(bfd('{detectMultiplier: 256}')), S.bfd, 'spec.detectMultiplier', 'from 2 to 255, got 256'],
  ['BFD echoInterval 9', crd(bfd('{echoInterval: 9}')), S.bfd, 'spec.echoInterval', 'from 10 to 60000, got 9'],
  ['BFD minimumTtl 0', crd(bfd('{minimumTtl: 0}')), S.bfd, 'spec.minimumTtl', 'from 1 to 254, got 0'],
  ['BFD minimumTtl 255', crd(bfd('{minimumTtl: 255}')), S.bfd, 'spec.minimumTtl', 'from 1 to 254, got 255'],
  ['BFD fractional interval', crd(bfd('{receiveInterval: 10.5}')), S.bfd, 'spec.receiveInterval', 'not a whole number'],
  ['BFD echoMode a string', crd(bfd('{echoMode: "true"}')), S.bfd, 'spec.echoMode', 'must be true or false'],
  ['duplicate BFD profile', crd(docs(bfd('{}'), bfd('{}').replace('metallb-system}', 'other}'))), 'BFDProfile other/b', 'metadata.name', 'duplicate BFD profile name "b"'],
  [
    'Community malformed value',
    crd('apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c}\nspec:\n  communities:\n  - {name: x, value: "70000:1"}\n'),
    'Community metallb-system/c',
    'spec.communities[0].value',
    '"70000:1" is not a community',
  ],
  [
    'Community entry without a value',
    crd('apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c}\nspec:\n  communities:\n  - {name: x}\n'),
    'Community metallb-system/c',
    'spec.communities[0]',
    'missing required field "value"',
  ],
  [
    'community alias defined in two Community objects',
    crd(
      docs(
        'apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c1}\nspec:\n  communities:\n  - {name: x, value: "1:1"}\n',
        'apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c2}\nspec:\n  communities:\n  - {name: x, value: "1:2"}\n',
      ),
    ),
    'Community metallb-system/c2',
    'spec.communities[0].name',
    'duplicate community alias "x": already defined by Community metallb-system/c1 at spec.communities[0].name',
  ],
];

const mixedRows: Row[] = [
  [
    'overlap between a ConfigMap pool and a CRD pool',
    { configMap: cm(pool()).configMap!, resources: crds(ipPool('q', ['10.0.0.128/25'])) },
    'IPAddressPool metallb-system/q',
    'spec.addresses[0]',
    'overlaps "10.0.0.0/24" of pool "p" (ConfigMap metallb-system/config at address-pools[0].addresses[0])',
  ],
  [
    'duplicate BFD profile across sources',
    { configMap: cm('bfd-profiles:\n- name: b\n').configMap!, resources: crds(bfd('{}')) },
    S.bfd,
    'metadata.name',
    'duplicate BFD profile name "b": already defined by ConfigMap metallb-system/config at bfd-profiles[0].name',
  ],
  [
    'duplicate community alias across sources',
    {
      configMap: cm('communities:\n  x: "1:1"\n').configMap!,
      resources: crds('apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c}\nspec:\n  communities:\n  - {name: x, value: "1:1"}\n'),
    },
    'Community metallb-system/c',
    'spec.communities[0].name',
    'duplicate community alias "x": already defined by ConfigMap metallb-system/config at communities.x',
  ],
  [
    'generated advertisement names collide with a CRD of that name',
    { configMap: cm(pool()).configMap!, resources: crds(bgpAdv('ipAddressPools: [p]', 'bgpadvertisement1')) },
    'BGPAdvertisement metallb-system/bgpadvertisement1',
    'metadata.name',
    'duplicate BGPAdvertisement name "bgpadvertisement1": already defined by ConfigMap metallb-system/config at address-pools[0]',
  ],
];

describe.each([
  ['ConfigMap', configMapRows],
  ['CRDs', crdRows],
  ['both sources', mixedRows],
])('%s', (_group, rows) => {
  it.each(rows)('%s', (_name, input, source, path, message) => {
    const { errors } = parseConfig(input);
    const hit = errors.find((e) => e.source === source && e.path === path && e.message.includes(message));
    if (!hit) {
      throw new Error(`no error at ${source}: ${path}: ...${message}...; got:\n${errors.map(formatConfigError).join('\n') || '(no errors)'}`);
    }
  });
});

describe('reporting', () => {
  it('returns every error at once, across objects and sources', () => {
    const input: ConfigInput = {
      configMap: cm(
        'address-pools:\n- name: a\n  protocol: bgp\n  cidr: [10.0.0.0/33]\n- name: b\n  protocol: layer3\n  addresses: [10.1.0.0/24]\npeers:\n- peer-address: x\n  peer-asn: 0\n  my-asn: 1\n',
      ).configMap!,
      resources: crds(docs(ipPool('c', ['10.1.0.0/25']), bgpPeer('holdTime: 1s'), bfd('{detectMultiplier: 1}'))),
    };
    const errors = parseConfig(input).errors.map(formatConfigError);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining('ConfigMap metallb-system/config: address-pools[0].cidr[0]: "10.0.0.0/33" is not a CIDR'),
        expect.stringContaining('ConfigMap metallb-system/config: address-pools[1].protocol: unknown protocol "layer3"'),
        expect.stringContaining('ConfigMap metallb-system/config: peers[0].peer-asn:'),
        expect.stringContaining('ConfigMap metallb-system/config: peers[0].peer-address: "x" is not an IP address'),
        expect.stringContaining('IPAddressPool metallb-system/c: spec.addresses[0]: "10.1.0.0/25" overlaps "10.1.0.0/24" of pool "b"'),
        expect.stringContaining('BGPPeer metallb-system/tor: spec.holdTime:'),
        expect.stringContaining('BFDProfile metallb-system/b: spec.detectMultiplier:'),
      ]),
    );
    expect(errors).toHaveLength(7);
  });

  it('formatConfigError leaves out an empty path', () => {
    const e: ConfigError = { source: 'ConfigMap metallb-system/config', path: '', message: 'invalid YAML at line 1, column 1: x' };
    expect(formatConfigError(e)).toBe('ConfigMap metallb-system/config: invalid YAML at line 1, column 1: x');
    expect(formatConfigError({ ...e, path: 'peers[0]' })).toBe('ConfigMap metallb-system/config: peers[0]: invalid YAML at line 1, column 1: x');
  });

  it('objects with errors stay out of the Config; the valid ones are kept', () => {
    const { config, errors } = parseConfig(crd(docs(ipPool('good', ['10.0.0.0/24']), ipPool('bad', ['10.1.0.0/33', '10.2.0.0/24']))));
    expect(errors).toHaveLength(1);
    expect(config.pools.map((p) => p.name)).toEqual(['good']);
  });

  it('a bad pool does not also make its advertisements "unknown pool"', () => {
    const { errors } = parseConfig(crd(docs(ipPool('p', ['10.0.0.0/33']), bgpAdv('ipAddressPools: [p]'))));
    expect(errors.map(formatConfigError)).toEqual(['IPAddressPool metallb-system/p: spec.addresses[0]: "10.0.0.0/33" is not a CIDR: prefix length 33 is longer than 32']);
  });

  it('a malformed alias is reported once, where it is defined', () => {
    const { errors } = parseConfig(cm(pool('  bgp-advertisements:\n  - communities: [x]\ncommunities:\n  x: "1:99999"')));
    expect(errors.map((e) => e.path)).toEqual(['communities.x']);
  });

  it('a Secret that appears resolves the pending password', () => {
    const input = crd(bgpPeer('passwordSecret: {name: s}'));
    expect(parseConfig(input).pending.map((p) => p.path)).toEqual(['spec.passwordSecret']);
    const resolved = parseConfig({ ...input, secrets: { 'metallb-system/s': { password: Buffer.from('hunter2').toString('base64') } } });
    expect(resolved.pending).toEqual([]);
    expect(resolved.errors).toEqual([]);
    expect(resolved.config.peers[0]?.password).toBe('hunter2');
  });

  it('ranges that merely touch do not overlap', () => {
    const { errors } = parseConfig(crd(docs(ipPool('a', ['10.0.0.0/25', '10.0.0.128-10.0.0.200']), ipPool('b', ['10.0.0.201-10.0.0.255']))));
    expect(errors).toEqual([]);
  });

  it('the same addresses in IPv4 and IPv6 numbering do not overlap', () => {
    const { errors } = parseConfig(crd(docs(ipPool('a', ['10.0.0.0/24']), ipPool('b', ['::a00:0/120']))));
    expect(errors).toEqual([]);
  });

  it('an aggregation length equal to the pool prefix is fine, for ranges too', () => {
    const { errors } = parseConfig(
      crd(docs(ipPool('p', ['10.0.0.0/26', '10.0.1.10-10.0.1.20', 'fc00::/120']), bgpAdv('ipAddressPools: [p]\naggregationLength: 30\naggregationLengthV6: 120'))),
    );
    expect(errors.map(formatConfigError)).toEqual([]);
  });
});

describe('addresses no Service can use', () => {
  // [entry, the message]: refused in an IPAddressPool (at spec.addresses[1], after a good entry) and in the ConfigMap.
  const rows: [string, string][] = [
    ['0.0.0.0/32', '"0.0.0.0/32" in pool "prod" is "this network" (RFC 1122) (0.0.0.0/8); it is valid only as a source address, never as a destination'],
    ['0.0.0.0-0.0.0.10', '"0.0.0.0-0.0.0.10" in pool "prod" is "this network" (RFC 1122) (0.0.0.0/8)'],
    ['127.0.0.1/32', '"127.0.0.1/32" in pool "prod" is loopback (127.0.0.0/8); traffic to it never leaves the host that sends it'],
    ['127.0.0.0/8', '"127.0.0.0/8" in pool "prod" is loopback (127.0.0.0/8)'],
    ['255.255.255.255/32', '"255.255.255.255/32" in pool "prod" is the limited broadcast address (255.255.255.255); a Service IP must be a unicast address'],
    ['224.0.0.0/24', '"224.0.0.0/24" in pool "prod" is multicast (224.0.0.0/4); a Service IP must be a unicast address'],
    ['224.0.0.0/4', '"224.0.0.0/4" in pool "prod" is multicast (224.0.0.0/4)'],
    ['239.255.255.250/32', 'is multicast (224.0.0.0/4)'],
    ['169.254.0.0/16', '"169.254.0.0/16" in pool "prod" is link-local (169.254.0.0/16); it is not routed beyond one link'],
    ['169.254.169.254/32', 'is link-local (169.254.0.0/16)'],
    ['::/128', '"::/128" in pool "prod" is the unspecified address (::); it means "no address"'],
    ['::1/128', '"::1/128" in pool "prod" is loopback (::1)'],
    ['::1-::2', '"::1-::2" in pool "prod" includes ::1, which is loopback (::1)'],
    ['ff00::/8', '"ff00::/8" in pool "prod" is multicast (ff00::/8); a Service IP must be a unicast address'],
    ['ff02::1/128', 'is multicast (ff00::/8)'],
    ['fe80::/10', '"fe80::/10" in pool "prod" is link-local (fe80::/10)'],
    ['fe80::1-fe80::9', 'is link-local (fe80::/10)'],
    ['::ffff:127.0.0.1/128', 'is IPv4-mapped (::ffff:0:0/96); it is an IPv4 address in IPv6 notation'],
    // Ranges that merely overlap a reserved block name the part inside it.
    ['223.255.255.0/24', 'no error: the last unicast /24 below multicast'],
    ['223.255.255.0-224.0.0.10', '"223.255.255.0-224.0.0.10" in pool "prod" includes 224.0.0.0-224.0.0.10, which is multicast (224.0.0.0/4)'],
    ['169.254.255.0-169.255.0.255', 'includes 169.254.255.0/24, which is link-local (169.254.0.0/16)'],
    ['126.0.0.0/7', '"126.0.0.0/7" in pool "prod" includes 127.0.0.0/8, which is loopback (127.0.0.0/8)'],
    [
      '0.0.0.0/0',
      '"0.0.0.0/0" in pool "prod" includes addresses no Service can use: 0.0.0.0/8 ("this network" (RFC 1122)), 127.0.0.0/8 (loopback), 169.254.0.0/16 (link-local), ' +
        '224.0.0.0/4 (multicast), 255.255.255.255 (the limited broadcast address); a pool may hold only routable unicast addresses',
    ],
    [
      '::/0',
      '"::/0" in pool "prod" includes addresses no Service can use: :: (the unspecified address), ::1 (loopback), ::ffff:0:0/96 (IPv4-mapped), fe80::/10 (link-local), ff00::/8 (multicast)',
    ],
    ['fec0::-ff00::5', '"fec0::-ff00::5" in pool "prod" includes ff00::-ff00::5, which is multicast (ff00::/8)'],
  ];
  const refused = rows.filter(([, m]) => !m.startsWith('no error'));

  it.each(refused)('an IPAddressPool with %s is refused', (entry, message) => {
    const { config, errors } = parseConfig(crd(ipPool('prod', ['203.0.113.0/24', entry])));
    expect(errors).toEqual([{ source: 'IPAddressPool metallb-system/prod', path: 'spec.addresses[1]', resource: 0, message: expect.stringContaining(message) }]);
    expect(config.pools).toEqual([]);
  });

  it.each(refused)('a ConfigMap pool with %s is refused', (entry, message) => {
    const { errors } = parseConfig(cm(`address-pools:\n- name: prod\n  protocol: layer2\n  addresses: [203.0.113.0/24, "${entry}"]\n`));
    expect(errors).toEqual([{ source: CMS, path: 'address-pools[0].addresses[1]', message: expect.stringContaining(message) }]);
  });

  it('a refused entry is not also reported as overlapping other pools', () => {
    const { errors } = parseConfig(crd(docs(ipPool('a', ['10.0.0.0/24']), ipPool('all', ['0.0.0.0/0']))));
    expect(errors.map(formatConfigError)).toEqual([
      expect.stringMatching(/^IPAddressPool metallb-system\/all: spec.addresses\[0\]: "0.0.0.0\/0" in pool "all" includes addresses/),
    ]);
  });

  it.each([
    ['documentation ranges', ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32']],
    ['private and CGNAT ranges', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']],
    ['neighbours of reserved blocks', ['1.0.0.0/8', '126.0.0.0/8', '128.0.0.0/16', '169.253.0.0/16', '169.255.0.0/16', '223.255.255.0/24', '240.0.0.0-255.255.255.254']],
    ['IPv6 neighbours of reserved blocks', ['::2-::ffff', '2000::/3', 'fe00::/9', 'fec0::/10']],
  ])('%s stay usable', (_what, addresses) => {
    const { config, errors } = parseConfig(crd(ipPool('ok', addresses)));
    expect(errors.map(formatConfigError)).toEqual([]);
    expect(config.pools[0]?.ranges).toHaveLength(addresses.length);
  });
});

describe('label keys that are JavaScript builtins', () => {
  it('"__proto__" is reported as a bad label key, not silently dropped', () => {
    const { errors } = parseConfig({
      resources: [JSON.parse('{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"p","labels":{"__proto__":"x"}},"spec":{"addresses":["10.0.0.0/24"]}}')],
    });
    expect(errors.map(formatConfigError)).toEqual([expect.stringContaining('metadata.labels.__proto__: "__proto__" is not a valid label key')]);
  });
});
