/**
 * Seeded random junk into parseConfig: it must never throw, and whenever it reports no error
 * the Config must keep the promises the model makes (no overlaps, references resolve).
 */
import { parseAllDocuments } from 'yaml';
import { rangesOverlap } from '../ip/index.js';
import { reservedParts } from './reserved.js';
import { parseConfig, selectedPools, type ConfigInput, type ConfigResult } from './index.js';
import { seededRandom } from '../seeded.js';

const rng = seededRandom;

const CONFIGMAP = `
communities:
  vpn-only: 1234:1
bgp-communities:
  no-adv: 65535:65282
bfd-profiles:
- name: fast
  receive-interval: 100
peers:
- peer-address: 10.0.0.1
  peer-asn: 100
  my-asn: 42
  hold-time: 90s
  keepalive-time: 30s
  bfd-profile: fast
  node-selectors:
  - match-labels: {rack: "1"}
    match-expressions:
    - {key: zone, operator: In, values: [a, b]}
address-pools:
- name: production
  protocol: bgp
  cidr:
  - 42.176.25.64/30
- name: sandbox
  protocol: bgp
  addresses:
  - 192.168.144.0/20
  - 192.168.200.10-192.168.200.20
  bgp-advertisements:
  - communities: [vpn-only, "1:2"]
    aggregation-length: 30
    localpref: 100
- name: l2
  protocol: layer2
  auto-assign: false
  addresses: [fc00::/120]
`;

const CRDS = `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system, labels: {tier: public}}
spec:
  addresses: [192.168.10.0/24, 192.168.9.1-192.168.9.5, "fc00:f853:ccd:e799::/124"]
  serviceAllocation: {priority: 1, namespaces: [a], serviceSelectors: [{matchLabels: {app: x}}]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec: {ipAddressPoolSelectors: [{matchLabels: {tier: public}}], interfaces: [eth0]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 42, peerASN: 64501, peerAddress: 10.0.0.2, holdTime: 9s, bfdProfile: slow, passwordSecret: {name: pw}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: adv, namespace: metallb-system}
spec: {ipAddressPools: [first-pool], aggregationLength: 32, communities: [c1, "large:1:2:3"], peers: [tor]}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: slow, namespace: metallb-system}
spec: {receiveInterval: 1000, passiveMode: true}
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec: {communities: [{name: c1, value: "1234:5"}]}
`;

const baseResources = (): unknown[] => parseAllDocuments(CRDS).flatMap((d) => (Array.isArray(d) ? [] : [d.toJS() as unknown]));

const ATOMS: unknown[] = [
  null,
  undefined,
  true,
  false,
  0,
  -1,
  1.5,
  NaN,
  Infinity,
  2 ** 53,
  4294967296,
  '',
  ' ',
  'x',
  '10.0.0.1',
  '10.0.0.0/8',
  '10.0.0.0/33',
  '10.0.0.5-10.0.0.1',
  'fc00::/7',
  '::',
  '0.0.0.0/0',
  '224.0.0.0/4',
  'fe80::1-fe80::9',
  '1234:1',
  'large:1:2:3',
  'large:1:2',
  '90s',
  '-5s',
  '1h',
  'In',
  'Exists',
  'bgp',
  'layer2',
  '__proto__',
  'constructor',
  'metallb.io/v1beta1',
  'metallb.io/v1beta2',
  'IPAddressPool',
  'BGPPeer',
  'Community',
  'production',
  'first-pool',
  'fast',
];

const KEYS = [
  'name',
  'namespace',
  'spec',
  'metadata',
  'addresses',
  'cidr',
  'protocol',
  'peers',
  'address-pools',
  'communities',
  'matchLabels',
  'matchExpressions',
  'match-labels',
  'key',
  'operator',
  'values',
  'holdTime',
  'hold-time',
  'keepaliveTime',
  'peerASN',
  'myASN',
  'peerAddress',
  'ipAddressPools',
  'aggregationLength',
  'passwordSecret',
  'serviceAllocation',
  '__proto__',
  'constructor',
  'toString',
];

function junk(next: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const roll = next();
  if (depth > 4 || roll < 0.5) return pick(ATOMS);
  if (roll < 0.75) return Array.from({ length: Math.floor(next() * 4) }, () => junk(next, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 5); i > 0; i--) o[pick(KEYS)] = junk(next, depth + 1);
  return o;
}

/** Replace one random node of a JSON-like tree with junk. */
function mutate(value: unknown, next: () => number, depth = 0): unknown {
  if (next() < 0.2 || depth > 6) return junk(next);
  if (Array.isArray(value)) {
    if (value.length === 0) return [junk(next)];
    const copy = [...value];
    const i = Math.floor(next() * copy.length);
    copy[i] = mutate(copy[i], next, depth + 1);
    return copy;
  }
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    if (keys.length === 0 || next() < 0.1) {
      copy[KEYS[Math.floor(next() * KEYS.length)]!] = junk(next);
      return copy;
    }
    const k = keys[Math.floor(next() * keys.length)]!;
    if (next() < 0.1) delete copy[k];
    else copy[k] = mutate(copy[k], next, depth + 1);
    return copy;
  }
  return junk(next);
}

/** Character- and line-level damage to YAML text. */
function damage(text: string, next: () => number): string {
  let out = text;
  const edits = 1 + Math.floor(next() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(next() * out.length);
    const roll = next();
    if (roll < 0.3) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(next() * 10));
    else if (roll < 0.6) out = out.slice(0, at) + ' -:{}[]&*!|>#"\'\n\t0aZ%@'[Math.floor(next() * 22)]! + out.slice(at);
    else if (roll < 0.8) {
      const lines = out.split('\n');
      const a = Math.floor(next() * lines.length);
      const b = Math.floor(next() * lines.length);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      out = lines.join('\n');
    } else out = out.slice(0, at) + out.slice(Math.max(0, at - 20), at) + out.slice(at);
  }
  return out;
}

/** The guarantees a Config without errors makes to its readers. */
function checkInvariants(result: ConfigResult): void {
  if (result.errors.length > 0) return;
  const { config } = result;
  const ranges = config.pools.flatMap((p) => p.ranges);
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) expect(rangesOverlap(ranges[i]!, ranges[j]!)).toBe(false);
  }
  for (const r of ranges) expect(reservedParts(r)).toEqual([]);
  const poolNames = new Set(config.pools.map((p) => p.name));
  expect(poolNames.size).toBe(config.pools.length);
  // A pool named but not defined is a pending reference (it may be created next), never a silent one.
  const waitedFor = new Set(result.pending.map((p) => /^pool "(.*)" does not exist yet/.exec(p.message)?.[1]));
  for (const adv of [...config.l2Advertisements, ...config.bgpAdvertisements]) {
    for (const name of adv.ipAddressPools) expect(poolNames.has(name) || waitedFor.has(name)).toBe(true);
  }
  for (const adv of config.bgpAdvertisements) {
    for (const pool of selectedPools(adv, config.pools)) {
      for (const r of pool.ranges) {
        if (r.prefix !== undefined) expect(r.family === 'IPv4' ? adv.aggregationLength : adv.aggregationLengthV6).toBeGreaterThanOrEqual(r.prefix);
      }
    }
  }
  const profiles = new Set(config.bfdProfiles.map((b) => b.name));
  for (const p of config.peers) {
    if (p.bfdProfile !== undefined) expect(profiles.has(p.bfdProfile)).toBe(true);
    expect(p.myASN).toBeGreaterThanOrEqual(1);
    expect(p.holdTime === 0 || p.holdTime >= 3).toBe(true);
    if (p.holdTime > 0) expect(p.keepaliveTime).toBeLessThan(p.holdTime);
  }
}

function run(input: ConfigInput): ConfigResult {
  let result: ConfigResult | undefined;
  expect(() => {
    result = parseConfig(input);
  }).not.toThrow();
  expect(Array.isArray(result!.errors)).toBe(true);
  // A bug, not bad input, would surface as the parser's internal error.
  expect(result!.errors.filter((e) => e.source === 'metallb-ts')).toEqual([]);
  checkInvariants(result!);
  return result!;
}

const cm = (text: string): ConfigInput['configMap'] => ({ namespace: 'metallb-system', name: 'config', text });
const secrets = { 'metallb-system/pw': { password: 'aHVudGVyMg==' } };

describe('fuzz: parseConfig never throws', () => {
  it('the unmutated fixtures are valid', () => {
    const result = run({ configMap: cm(CONFIGMAP), resources: baseResources(), secrets });
    expect(result.errors).toEqual([]);
    expect(result.config.pools).toHaveLength(4);
  });

  it('damaged ConfigMap YAML', () => {
    const next = rng(1);
    let clean = 0;
    for (let i = 0; i < 1000; i++) {
      const result = run({ configMap: cm(damage(CONFIGMAP, next)), resources: [] });
      if (result.errors.length === 0) clean++;
    }
    // Some damage is harmless (inside a comment, a swapped list item): the invariants were checked on those.
    expect(clean).toBeGreaterThan(0);
  });

  it('mutated CRD objects', () => {
    const next = rng(2);
    for (let i = 0; i < 1000; i++) {
      const resources = baseResources().map((r) => (next() < 0.3 ? mutate(r, next) : r));
      run({ resources, secrets: next() < 0.5 ? secrets : (junk(next) as ConfigInput['secrets']) });
    }
  });

  it('mutated ConfigMap structure', () => {
    const next = rng(3);
    const base = parseAllDocuments(CONFIGMAP)[0]!.toJS() as unknown;
    for (let i = 0; i < 600; i++) {
      const text = JSON.stringify(mutate(base, next)) ?? 'null';
      run({ configMap: cm(text), resources: [] });
    }
  });

  it('pure junk in every slot', () => {
    const next = rng(4);
    for (let i = 0; i < 600; i++) {
      run({ resources: Array.from({ length: Math.floor(next() * 4) }, () => junk(next)) });
      run({ configMap: junk(next) as ConfigInput['configMap'], resources: junk(next) as unknown[] });
      run(junk(next) as ConfigInput);
    }
  });

  it('hostile shapes', () => {
    const cyclic: Record<string, unknown> = { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'c' } };
    cyclic.spec = cyclic;
    const throwing = Object.defineProperty({ apiVersion: 'metallb.io/v1beta1', kind: 'BGPPeer', metadata: { name: 't' } }, 'spec', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    const billionLaughs = `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n`;
    const inputs: unknown[] = [
      null,
      undefined,
      42,
      'text',
      [],
      {},
      { resources: 'x' },
      { resources: [cyclic] },
      { resources: [Object.create(null)] },
      { configMap: { namespace: 'metallb-system', name: 'config', text: billionLaughs }, resources: [] },
      { configMap: { namespace: 'metallb-system', name: 'config', text: '['.repeat(5000) }, resources: [] },
      { configMap: { namespace: 'metallb-system', name: 'config', text: 'a:\n'.repeat(2000) }, resources: [] },
      { configMap: { namespace: 'metallb-system', name: 'config', text: '---\na: 1\n---\nb: 2\n' }, resources: [] },
      { configMap: { namespace: 'metallb-system', name: 'config', text: '!!binary aGk=' }, resources: [] },
      { configMap: { text: 7 }, resources: [] },
    ];
    for (const input of inputs) expect(() => parseConfig(input as ConfigInput)).not.toThrow();
    // Even a getter that throws yields an error, not an exception.
    const result = parseConfig({ resources: [throwing] });
    expect(result.errors.length).toBeGreaterThan(0);
    expect(parseConfig({ configMap: { namespace: 'metallb-system', name: 'config', text: billionLaughs }, resources: [] }).errors[0]?.message).toMatch(
      /invalid YAML|unknown field/,
    );
  });
});
