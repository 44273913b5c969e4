/**
 * config convert: the objects it writes mean what the ConfigMap meant. Each case is converted,
 * the output parsed as metallb.io objects by the one parser, and the two Configs compared
 * (origins aside: that is where each came from).
 */
import { parseConfig, type Config } from '../../core/config/index.js';
import { BASIC_CONFIGMAP, CHEAP_EXPENSIVE, PRODUCTION_SANDBOX } from '../../test/fixtures/metallb-docs.js';
import { convertConfigMap } from './config-convert.js';

const RICH = `
peers:
- peer-address: 192.0.2.1
  peer-asn: 64501
  my-asn: 64500
  peer-port: 1179
  hold-time: 30s
  router-id: 192.0.2.100
  source-address: 192.0.2.10
  password: secret
  bfd-profile: fast
  ebgp-multihop: true
  node-selectors:
  - match-labels:
      rack: a
    match-expressions:
    - key: role
      operator: In
      values: [edge]
bfd-profiles:
- name: fast
  receive-interval: 100
  transmit-interval: 100
bgp-communities:
  no-export: 65535:65281
address-pools:
- name: lan
  protocol: layer2
  addresses:
  - 203.0.113.0/25
  - 203.0.113.200-203.0.113.210
  avoid-buggy-ips: true
- name: routed
  protocol: bgp
  auto-assign: false
  addresses:
  - 198.51.100.0/24
  - 2001:db8::/64
  bgp-advertisements:
  - aggregation-length: 24
    aggregation-length-v6: 64
    localpref: 100
    communities: [no-export, large:1:2:3]
  - {}
`;

/**
 * A Config without where each part came from, for comparing two sources: the origins, and a
 * ConfigMap pool's `protocol`, which objects express by their advertisements alone (compared).
 */
function comparable(c: Config): unknown {
  return JSON.parse(JSON.stringify(c, (k, v: unknown) => (k === 'origin' || k === 'protocol' ? undefined : typeof v === 'bigint' ? v.toString() : v)));
}

describe('config convert', () => {
  it.each([
    ['the basic ConfigMap manifest', BASIC_CONFIGMAP],
    ['auto-assign: false (config text alone)', CHEAP_EXPENSIVE],
    ['production/sandbox with a community alias', PRODUCTION_SANDBOX],
    ['every field the ConfigMap has', RICH],
  ])('%s converts to objects that parse to the same Config', (_, text) => {
    const converted = convertConfigMap(text);
    if (!converted.ok) throw new Error(converted.errors.join('\n'));
    const cmText = text.includes('kind: ConfigMap') ? (/config: \|\n([\s\S]*)$/.exec(text)?.[1] ?? '').replace(/^ {4}/gm, '') : text;
    const before = parseConfig({ configMap: { namespace: 'metallb-system', name: 'config', text: cmText }, resources: [], namespace: 'metallb-system' });
    const after = parseConfig({ resources: converted.objects, namespace: 'metallb-system' });
    expect(after.errors).toEqual([]);
    expect(after.pending).toEqual([]);
    expect(comparable(after.config)).toEqual(comparable(before.config));
    expect(converted.objects.length).toBeGreaterThan(0);
  });

  it('names objects as configmaptocrs does', () => {
    const converted = convertConfigMap(RICH);
    if (!converted.ok) throw new Error(converted.errors.join('\n'));
    expect(converted.objects.map((o) => `${o.kind as string}/${(o.metadata as { name: string }).name}`)).toEqual([
      'IPAddressPool/lan',
      'IPAddressPool/routed',
      'BFDProfile/fast',
      'Community/communities',
      'BGPPeer/peer1',
      'L2Advertisement/l2advertisement1',
      'BGPAdvertisement/bgpadvertisement1',
      'BGPAdvertisement/bgpadvertisement2',
    ]);
  });

  it.each([
    ['a bad ConfigMap', 'address-pools:\n- name: x\n  protocol: layer2\n  addresses: [203.0.113.0/33]\n', /address-pools\[0\]\.addresses\[0\]/],
    ['no ConfigMap at all', 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\n', /no ConfigMap with a key "config" found/],
  ])('%s is an error, not objects', (_, text, message) => {
    const converted = convertConfigMap(text);
    expect(converted.ok).toBe(false);
    if (!converted.ok) expect(converted.errors[0]).toMatch(message);
  });
});
