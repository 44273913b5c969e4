import type { Pool, ServiceAllocation } from '../config/types.js';
import { formatIP, parseIP, parseRange, type IP } from '../ip/index.js';
import { Allocator, type Assignment } from './allocator.js';
import { newRequest, type FailureCode, type Request } from './request.js';

// ---- builders ----

function ip(text: string): IP {
  const p = parseIP(text);
  if (!p.ok) throw new Error(p.error);
  return p.value;
}

function pool(name: string, ranges: string[], extra: Partial<Pool> = {}): Pool {
  return {
    name,
    origin: { kind: 'IPAddressPool', namespace: 'metallb-system', name },
    labels: {},
    ranges: ranges.map((r) => {
      const p = parseRange(r);
      if (!p.ok) throw new Error(p.error);
      return p.value;
    }),
    autoAssign: true,
    avoidBuggyIPs: false,
    ...extra,
  };
}

function alloc(sa: Partial<ServiceAllocation>): ServiceAllocation {
  return { namespaces: [], namespaceSelectors: [], serviceSelectors: [], ...sa };
}

/** A request for `ns/name`, with `ips` as the requested addresses. */
function req(service: string, extra: Partial<Omit<Request, 'requestedIPs'>> & { ips?: string[] } = {}): Request {
  const [namespace = '', name = ''] = service.split('/');
  const { ips, ...rest } = extra;
  return newRequest({ namespace, name, ...rest, ...(ips && { requestedIPs: ips.map(ip) }) });
}

const tcp = (...ports: number[]) => ports.map((port) => ({ port, protocol: 'TCP' }));

// ---- scenario runner: pools, then steps each with its expected outcome ----

type Step =
  | { assign: Request; ips?: string[]; pool?: string; changed?: boolean; code?: FailureCode; message?: RegExp; dryRun?: boolean }
  | { release: string }
  | { holders: string; are: string[] }
  | { fill: number; prefix: string; with?: Partial<Request> };

interface Scenario {
  name: string;
  pools: Pool[];
  steps: Step[];
}

function describeOutcome(a: Assignment): string {
  return a.ok ? `${a.pool}: ${a.ips.map(formatIP).join(', ')}` : `${a.failure.code}: ${a.failure.message}`;
}

function run(s: Scenario): Allocator {
  const a = new Allocator(s.pools);
  for (const step of s.steps) {
    if ('release' in step) {
      a.release(step.release);
    } else if ('holders' in step) {
      expect(a.holders(ip(step.holders))).toEqual(step.are);
    } else if ('fill' in step) {
      for (let i = 0; i < step.fill; i++) {
        const out = a.assign(req(`fill/${step.prefix}${i}`, step.with));
        if (!out.ok) throw new Error(`fill ${i}: ${describeOutcome(out)}`);
      }
    } else {
      const out = a.assign(step.assign, { dryRun: step.dryRun ?? false });
      const who = `${step.assign.namespace}/${step.assign.name}`;
      if (step.code) {
        expect({ who, outcome: describeOutcome(out) }).toEqual({ who, outcome: expect.stringMatching(new RegExp(`^${step.code}: `)) });
        if (!out.ok) {
          if (step.message) expect(out.failure.message).toMatch(step.message);
          expect(out.failure.message).not.toContain('\n');
        }
      } else {
        const got = out.ok ? { pool: out.pool, ips: out.ips.map(formatIP) } : describeOutcome(out);
        expect({ who, got }).toEqual({ who, got: { pool: step.pool ?? expect.any(String), ips: step.ips } });
        if (step.changed !== undefined && out.ok) expect(out.changed).toBe(step.changed);
      }
    }
  }
  return a;
}

// ---- the MetalLB documentation examples ----

const cheapExpensive = () => [pool('cheap', ['192.168.144.0/20']), pool('expensive', ['42.176.25.64/30'], { autoAssign: false })];
const productionSandbox = () => [pool('production', ['42.176.25.64/30']), pool('sandbox', ['192.168.144.0/20'])];

const docs: Scenario[] = [
  {
    name: 'cheap/expensive: auto-assign never takes the expensive pool',
    pools: cheapExpensive(),
    steps: [
      { assign: req('default/a'), ips: ['192.168.144.0'], pool: 'cheap' },
      { assign: req('default/b'), ips: ['192.168.144.1'], pool: 'cheap' },
    ],
  },
  {
    name: 'cheap/expensive: with cheap exhausted, auto-assign still does not take expensive',
    pools: [pool('cheap', ['192.168.144.0/31']), pool('expensive', ['42.176.25.64/30'], { autoAssign: false })],
    steps: [
      { fill: 2, prefix: 's' },
      { assign: req('default/c'), code: 'pool-full', message: /^pool "cheap" is full: 2\/2 addresses in use; / },
    ],
  },
  {
    name: 'cheap/expensive: naming the expensive pool works',
    pools: cheapExpensive(),
    steps: [{ assign: req('default/a', { pool: 'expensive' }), ips: ['42.176.25.64'], pool: 'expensive' }],
  },
  {
    name: 'cheap/expensive: requesting 42.176.25.65 works',
    pools: cheapExpensive(),
    steps: [{ assign: req('default/a', { ips: ['42.176.25.65'] }), ips: ['42.176.25.65'], pool: 'expensive' }],
  },
  {
    name: 'production/sandbox: the sandbox pool by annotation gives 192.168.144.0',
    pools: productionSandbox(),
    steps: [{ assign: req('dev/app', { pool: 'sandbox' }), ips: ['192.168.144.0'], pool: 'sandbox' }],
  },
  {
    name: 'production/sandbox: spec.loadBalancerIP in production is honoured',
    pools: productionSandbox(),
    steps: [{ assign: req('prod/web', { ips: ['42.176.25.66'] }), ips: ['42.176.25.66'], pool: 'production' }],
  },
  {
    name: 'production/sandbox: an IP outside every pool fails',
    pools: productionSandbox(),
    steps: [{ assign: req('prod/web', { ips: ['10.1.2.3'] }), code: 'ip-not-in-any-pool', message: /^10.1.2.3 is not in any address pool/ }],
  },
  {
    name: 'production/sandbox: an IP in use fails naming the holder',
    pools: productionSandbox(),
    steps: [
      { assign: req('prod/web', { ips: ['42.176.25.66'] }), ips: ['42.176.25.66'] },
      { assign: req('prod/api', { ips: ['42.176.25.66'] }), code: 'ip-in-use', message: /^42.176.25.66 is already in use by prod\/web; / },
    ],
  },
  {
    name: 'production/sandbox: production is full after its 4 addresses',
    pools: productionSandbox(),
    steps: [
      { fill: 4, prefix: 'p', with: { pool: 'production' } },
      { assign: req('prod/fifth', { pool: 'production' }), code: 'pool-full', message: /^pool "production" is full: 4\/4 addresses in use; / },
    ],
  },
];

// ---- rules ----

const pools: Scenario[] = [
  {
    name: 'lowest free address first, and a freed address is reused first',
    pools: [pool('p', ['10.0.0.0/8'])],
    steps: [{ fill: 3, prefix: 's' }, { release: 'fill/s1' }, { assign: req('x/a'), ips: ['10.0.0.1'] }, { assign: req('x/b'), ips: ['10.0.0.3'] }],
  },
  {
    name: 'ranges are used in address order across CIDRs and a-b ranges',
    pools: [pool('p', ['192.0.2.10-192.0.2.11', '192.0.2.4/31'])],
    steps: [
      { fill: 3, prefix: 's' },
      { holders: '192.0.2.4', are: ['fill/s0'] },
      { holders: '192.0.2.10', are: ['fill/s2'] },
      { assign: req('x/a'), ips: ['192.0.2.11'] },
    ],
  },
  {
    name: 'avoid-buggy-ips on a /24: starts at .1, skips .255 and the next /24s .0',
    pools: [pool('p', ['192.168.0.0/23'], { avoidBuggyIPs: true })],
    steps: [
      { assign: req('x/first'), ips: ['192.168.0.1'] },
      { fill: 253, prefix: 's' },
      { holders: '192.168.0.254', are: ['fill/s252'] },
      { assign: req('x/next'), ips: ['192.168.1.1'] },
      { release: 'fill/s252' },
      { assign: req('x/back'), ips: ['192.168.0.254'] },
      { assign: req('x/after'), ips: ['192.168.1.2'] },
    ],
  },
  {
    name: 'avoid-buggy-ips: requesting a .255 or .0 address fails and says why',
    pools: [pool('p', ['192.168.1.0/24'], { avoidBuggyIPs: true })],
    steps: [
      { assign: req('x/a', { ips: ['192.168.1.255'] }), code: 'ip-not-in-any-pool', message: /is in pool "p", which avoids addresses ending in .0 and .255/ },
      { assign: req('x/b', { ips: ['192.168.1.0'] }), code: 'ip-not-in-any-pool' },
    ],
  },
  {
    name: 'without avoid-buggy-ips, .0 is a normal address',
    pools: [pool('p', ['192.168.1.0/24'])],
    steps: [{ assign: req('x/a'), ips: ['192.168.1.0'] }],
  },
  {
    name: 'avoid-buggy-ips does not apply to IPv6',
    pools: [pool('p', ['2001:db8::/64'], { avoidBuggyIPs: true })],
    steps: [{ assign: req('x/a', { families: ['IPv6'] }), ips: ['2001:db8::'] }],
  },
  {
    name: 'an IPv6 /64 pool allocates from its start and honours requests anywhere in it',
    pools: [pool('v6', ['2001:db8::/64'])],
    steps: [
      { assign: req('x/a', { families: ['IPv6'] }), ips: ['2001:db8::'] },
      { assign: req('x/b', { families: ['IPv6'] }), ips: ['2001:db8::1'] },
      { assign: req('x/c', { ips: ['2001:db8::ffff:ffff:ffff:fffe'] }), ips: ['2001:db8::ffff:ffff:ffff:fffe'] },
    ],
  },
  {
    name: 'the whole IPv6 space (::/0) is one pool like any other',
    pools: [pool('all', ['::/0'])],
    steps: [
      { assign: req('x/a', { ips: ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'] }), ips: ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'] },
      { assign: req('x/b', { families: ['IPv6'] }), ips: ['::'] },
    ],
  },
  {
    name: 'unknown pool',
    pools: [pool('a', ['192.0.2.0/24'])],
    steps: [
      { assign: req('x/a', { pool: 'nope' }), code: 'unknown-pool', message: /^pool "nope" does not exist \(known pools: a\); fix the metallb.io\/address-pool annotation$/ },
    ],
  },
  {
    name: 'requested IP outside the pool named by the annotation',
    pools: [pool('a', ['192.0.2.0/24']), pool('b', ['198.51.100.0/24'])],
    steps: [
      { assign: req('x/a', { pool: 'a', ips: ['198.51.100.7'] }), code: 'ip-pool-mismatch', message: /198.51.100.7 is in pool "b", not in pool "a"/ },
      { assign: req('x/b', { pool: 'b', ips: ['198.51.100.7'] }), ips: ['198.51.100.7'], pool: 'b' },
      { assign: req('x/c', { pool: 'zzz', ips: ['198.51.100.8'] }), code: 'unknown-pool' },
    ],
  },
  {
    name: 'no pools configured',
    pools: [],
    steps: [{ assign: req('x/a'), code: 'no-pool-for-family', message: /no address pools are configured/ }],
  },
  {
    name: 'no pool may auto-assign: the message lists each pool and why',
    pools: [pool('exp', ['192.0.2.0/24'], { autoAssign: false }), pool('tenant', ['198.51.100.0/24'], { serviceAllocation: alloc({ namespaces: ['t'] }) })],
    steps: [{ assign: req('x/a'), code: 'no-pool-for-family', message: /\("tenant": pool-not-allowed, "exp": pool-not-auto-assign\)/ }],
  },
  {
    name: 'full across several pools lists each',
    pools: [pool('a', ['192.0.2.0/32']), pool('b', ['192.0.2.1/32'])],
    steps: [
      { fill: 2, prefix: 's' },
      { assign: req('x/a'), code: 'pool-full', message: /every pool x\/a may use is full \(pool "a" is full: 1\/1 addresses in use; pool "b" is full: 1\/1 addresses in use\)/ },
    ],
  },
];

const families: Scenario[] = (() => {
  const v4 = pool('a-v4', ['192.0.2.0/24']);
  const dual = pool('b-dual', ['198.51.100.0/24', '2001:db8::/64']);
  const v6 = pool('c-v6', ['2001:db8:1::/64']);
  return [
    {
      name: 'SingleStack without ipFamilies is IPv4',
      pools: [v6, v4],
      steps: [{ assign: req('x/a'), ips: ['192.0.2.0'], pool: 'a-v4' }],
    },
    {
      name: 'SingleStack takes the first family of ipFamilies',
      pools: [v4, dual, v6],
      steps: [{ assign: req('x/a', { families: ['IPv6', 'IPv4'] }), ips: ['2001:db8::'], pool: 'b-dual' }],
    },
    {
      name: 'RequireDualStack: both families from the same pool',
      pools: [v4, dual, v6],
      steps: [{ assign: req('x/a', { familyPolicy: 'RequireDualStack', families: ['IPv4', 'IPv6'] }), ips: ['198.51.100.0', '2001:db8::'], pool: 'b-dual' }],
    },
    {
      name: 'RequireDualStack: IPv6 primary lists IPv6 first',
      pools: [dual],
      steps: [{ assign: req('x/a', { familyPolicy: 'RequireDualStack', families: ['IPv6', 'IPv4'] }), ips: ['2001:db8::', '198.51.100.0'] }],
    },
    {
      name: 'RequireDualStack: single-family pools are not combined',
      pools: [v4, v6],
      steps: [{ assign: req('x/a', { familyPolicy: 'RequireDualStack' }), code: 'no-pool-for-family', message: /needs both an IPv4 and an IPv6 address/ }],
    },
    {
      name: 'RequireDualStack: a dual pool out of IPv6 is full, naming the family',
      pools: [pool('d', ['198.51.100.0/24', '2001:db8::/127'])],
      steps: [
        { fill: 2, prefix: 's', with: { familyPolicy: 'RequireDualStack' } },
        { assign: req('x/a', { familyPolicy: 'RequireDualStack' }), code: 'pool-full', message: /^pool "d" is full: 2\/2 IPv6 addresses in use;/ },
      ],
    },
    {
      name: 'PreferDualStack: a pool giving both wins over an earlier single-family pool',
      pools: [v4, dual],
      steps: [{ assign: req('x/a', { familyPolicy: 'PreferDualStack', families: ['IPv4', 'IPv6'] }), ips: ['198.51.100.0', '2001:db8::'], pool: 'b-dual' }],
    },
    {
      name: 'PreferDualStack: no pool gives both, take the primary family',
      pools: [v6, v4],
      steps: [{ assign: req('x/a', { familyPolicy: 'PreferDualStack' }), ips: ['192.0.2.0'], pool: 'a-v4' }],
    },
    {
      name: 'PreferDualStack: no pool gives the primary, take the other family',
      pools: [v4],
      steps: [{ assign: req('x/a', { familyPolicy: 'PreferDualStack', families: ['IPv6', 'IPv4'] }), ips: ['192.0.2.0'] }],
    },
    {
      name: 'SingleStack IPv6 with only IPv4 pools',
      pools: [v4],
      steps: [{ assign: req('x/a', { families: ['IPv6'] }), code: 'no-pool-for-family', message: /needs an IPv6 address but no pool it may auto-assign from has IPv6 addresses/ }],
    },
    {
      name: 'named pool without the family',
      pools: [v4],
      steps: [{ assign: req('x/a', { families: ['IPv6'], pool: 'a-v4' }), code: 'no-pool-for-family', message: /pool "a-v4" has no IPv6 addresses/ }],
    },
    {
      name: 'requested IP of the wrong family',
      pools: [v4, v6],
      steps: [{ assign: req('x/a', { families: ['IPv4'], ips: ['2001:db8:1::5'] }), code: 'family-mismatch', message: /is SingleStack IPv4 but 2001:db8:1::5 is IPv6/ }],
    },
    {
      name: 'requested IPv6 with ipFamilies not yet defaulted: the request decides',
      pools: [v4, v6],
      steps: [{ assign: req('x/a', { ips: ['2001:db8:1::5'] }), ips: ['2001:db8:1::5'], pool: 'c-v6' }],
    },
    {
      name: 'SingleStack requesting two addresses',
      pools: [dual],
      steps: [{ assign: req('x/a', { ips: ['198.51.100.5', '2001:db8::5'] }), code: 'family-mismatch', message: /is SingleStack but asks for/ }],
    },
    {
      name: 'RequireDualStack requesting one address',
      pools: [dual],
      steps: [
        { assign: req('x/a', { familyPolicy: 'RequireDualStack', ips: ['198.51.100.5'] }), code: 'family-mismatch', message: /RequireDualStack but asks only for 198.51.100.5/ },
      ],
    },
    {
      name: 'two requested addresses of one family',
      pools: [dual],
      steps: [{ assign: req('x/a', { familyPolicy: 'RequireDualStack', ips: ['198.51.100.5', '198.51.100.6'] }), code: 'family-mismatch', message: /are both IPv4/ }],
    },
    {
      name: 'RequireDualStack requesting a pair from one pool',
      pools: [dual],
      steps: [{ assign: req('x/a', { familyPolicy: 'RequireDualStack', ips: ['2001:db8::9', '198.51.100.9'] }), ips: ['2001:db8::9', '198.51.100.9'], pool: 'b-dual' }],
    },
    {
      name: 'a requested pair spanning two pools',
      pools: [v4, v6],
      steps: [
        {
          assign: req('x/a', { familyPolicy: 'RequireDualStack', ips: ['192.0.2.9', '2001:db8:1::9'] }),
          code: 'ip-pool-mismatch',
          message: /a dual-stack pair must come from one pool/,
        },
      ],
    },
    {
      name: 'PreferDualStack requesting one address gets exactly that',
      pools: [dual],
      steps: [{ assign: req('x/a', { familyPolicy: 'PreferDualStack', ips: ['198.51.100.9'] }), ips: ['198.51.100.9'] }],
    },
  ];
})();

const sharing: Scenario[] = (() => {
  const p = () => [pool('p', ['192.0.2.0/24'])];
  const k = (service: string, key: string | undefined, ports: number[], extra: Partial<Request> & { ips?: string[] } = {}) =>
    req(service, { ...(key !== undefined && { sharingKey: key }), ports: tcp(...ports), ...extra });
  return [
    {
      name: 'compatible Services share: same key, different ports',
      pools: p(),
      steps: [
        { assign: k('x/dns-tcp', 'dns', [53]), ips: ['192.0.2.0'] },
        { assign: k('x/web', 'dns', [80]), ips: ['192.0.2.0'] },
        { holders: '192.0.2.0', are: ['x/dns-tcp', 'x/web'] },
      ],
    },
    {
      name: 'same port number, different protocol, shares',
      pools: p(),
      steps: [
        { assign: req('x/tcp', { sharingKey: 'dns', ports: [{ port: 53, protocol: 'TCP' }] }), ips: ['192.0.2.0'] },
        { assign: req('x/udp', { sharingKey: 'dns', ports: [{ port: 53, protocol: 'UDP' }] }), ips: ['192.0.2.0'] },
      ],
    },
    {
      name: 'port conflict on a requested shared IP names the holder and port',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80]), ips: ['192.0.2.0'] },
        { assign: k('x/b', 'k', [80, 443], { ips: ['192.0.2.0'] }), code: 'port-conflict', message: /^port TCP\/80 on 192.0.2.0 is already used by x\/a; / },
      ],
    },
    {
      name: 'port conflict on auto-assign: takes another address',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80]), ips: ['192.0.2.0'] },
        { assign: k('x/b', 'k', [80]), ips: ['192.0.2.1'] },
      ],
    },
    {
      name: 'sharing key mismatch on a requested IP',
      pools: p(),
      steps: [
        { assign: k('x/a', 'one', [80]), ips: ['192.0.2.0'] },
        { assign: k('x/b', 'two', [443], { ips: ['192.0.2.0'] }), code: 'sharing-key-mismatch', message: /shared by x\/a under key "one", not "two"/ },
        { assign: k('x/c', 'two', [443]), ips: ['192.0.2.1'] },
      ],
    },
    {
      name: 'a requester without a key cannot join a shared IP, nor a keyed one an unshared IP',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80]), ips: ['192.0.2.0'] },
        { assign: k('x/b', undefined, [443], { ips: ['192.0.2.0'] }), code: 'ip-in-use', message: /in use by x\/a/ },
        { assign: k('x/c', undefined, [80]), ips: ['192.0.2.1'] },
        { assign: k('x/d', 'k', [443], { ips: ['192.0.2.1'] }), code: 'ip-in-use', message: /in use by x\/c/ },
      ],
    },
    {
      name: 'Local policy with different selectors does not share',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80], { trafficPolicy: 'Local', selector: { app: 'a' } }), ips: ['192.0.2.0'] },
        {
          assign: k('x/b', 'k', [443], { trafficPolicy: 'Local', selector: { app: 'b' }, ips: ['192.0.2.0'] }),
          code: 'sharing-key-mismatch',
          message: /x\/a selects \{app=a\} and x\/b selects \{app=b\}; .*same selector/,
        },
        { assign: k('x/c', 'k', [443], { trafficPolicy: 'Local', selector: { app: 'b' } }), ips: ['192.0.2.1'] },
      ],
    },
    {
      name: 'Local policy with the same selector shares',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80], { trafficPolicy: 'Local', selector: { app: 'a', tier: 'x' } }), ips: ['192.0.2.0'] },
        { assign: k('x/b', 'k', [443], { trafficPolicy: 'Local', selector: { tier: 'x', app: 'a' } }), ips: ['192.0.2.0'] },
      ],
    },
    {
      name: 'Local without a selector shares with Local with an empty one',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80], { trafficPolicy: 'Local', selector: undefined as unknown as Request['selector'] }), ips: ['192.0.2.0'] },
        { assign: k('x/b', 'k', [443], { trafficPolicy: 'Local', selector: {} }), ips: ['192.0.2.0'] },
      ],
    },
    {
      name: 'Cluster and Local without a selector do not share (MetalLB would)',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80]), ips: ['192.0.2.0'] },
        { assign: k('x/b', 'k', [443], { trafficPolicy: 'Local', ips: ['192.0.2.0'] }), code: 'sharing-key-mismatch', message: /externalTrafficPolicy Cluster and x\/b has Local/ },
        { assign: k('x/b', 'k', [443], { trafficPolicy: 'Local' }), ips: ['192.0.2.1'] },
      ],
    },
    {
      name: 'different externalTrafficPolicy does not share',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80]), ips: ['192.0.2.0'] },
        {
          assign: k('x/b', 'k', [443], { trafficPolicy: 'Local', ips: ['192.0.2.0'] }),
          code: 'sharing-key-mismatch',
          message: /x\/a has externalTrafficPolicy Cluster and x\/b has Local/,
        },
      ],
    },
    {
      name: 'auto-assign with a key prefers the IP its key already holds over a lower free one',
      pools: p(),
      steps: [
        { assign: k('x/filler', undefined, []), ips: ['192.0.2.0'] },
        { assign: k('x/a', 'k', [80]), ips: ['192.0.2.1'] },
        { release: 'x/filler' },
        { assign: k('x/b', 'k', [443]), ips: ['192.0.2.1'] },
      ],
    },
    {
      name: 'auto-assign with a key prefers its shared IP even in a lower-ranked pool',
      pools: [pool('a', ['192.0.2.0/24']), pool('b', ['198.51.100.0/24'])],
      steps: [
        { assign: k('x/first', 'k', [80], { pool: 'b' }), ips: ['198.51.100.0'], pool: 'b' },
        { assign: k('x/second', 'k', [443]), ips: ['198.51.100.0'], pool: 'b' },
        { assign: k('x/other', 'other', [443]), ips: ['192.0.2.0'], pool: 'a' },
      ],
    },
    {
      name: 'releasing the last holder frees the shared IP',
      pools: p(),
      steps: [
        { assign: k('x/a', 'k', [80]), ips: ['192.0.2.0'] },
        { assign: k('x/b', 'k', [443]), ips: ['192.0.2.0'] },
        { release: 'x/a' },
        { holders: '192.0.2.0', are: ['x/b'] },
        { assign: k('x/c', undefined, [], { ips: ['192.0.2.0'] }), code: 'ip-in-use', message: /in use by x\/b/ },
        { release: 'x/b' },
        { holders: '192.0.2.0', are: [] },
        { assign: k('x/c', undefined, [], { ips: ['192.0.2.0'] }), ips: ['192.0.2.0'] },
      ],
    },
    {
      name: 'dual-stack Services share both addresses',
      pools: [pool('d', ['198.51.100.0/24', '2001:db8::/64'])],
      steps: [
        { assign: k('x/a', 'k', [80], { familyPolicy: 'RequireDualStack' }), ips: ['198.51.100.0', '2001:db8::'] },
        { assign: k('x/b', 'k', [443], { familyPolicy: 'RequireDualStack' }), ips: ['198.51.100.0', '2001:db8::'] },
      ],
    },
    {
      name: 'the sole holder may change its own sharing key',
      pools: p(),
      steps: [
        { assign: k('x/a', 'one', [80]), ips: ['192.0.2.0'] },
        { assign: k('x/a', 'two', [80]), ips: ['192.0.2.0'], changed: false },
      ],
    },
  ];
})();

const serviceAllocation: Scenario[] = (() => {
  const team = (name: string, priority: number | undefined, range: string) =>
    pool(name, [range], { serviceAllocation: alloc({ namespaces: ['team'], ...(priority !== undefined && { priority }) }) });
  const ordered = () => [
    pool('a-open', ['10.0.0.0/32']),
    team('b-low', 20, '10.0.1.0/32'),
    team('c-high', 10, '10.0.2.0/32'),
    team('d-nopri', undefined, '10.0.3.0/32'),
    team('e-zero', 0, '10.0.4.0/32'),
  ];
  return [
    {
      name: 'selected pools first by priority, unprioritised (or 0) after, pools without serviceAllocation last',
      pools: ordered(),
      steps: [
        { assign: req('team/1'), pool: 'c-high', ips: ['10.0.2.0'] },
        { assign: req('team/2'), pool: 'b-low', ips: ['10.0.1.0'] },
        { assign: req('team/3'), pool: 'd-nopri', ips: ['10.0.3.0'] },
        { assign: req('team/4'), pool: 'e-zero', ips: ['10.0.4.0'] },
        { assign: req('team/5'), pool: 'a-open', ips: ['10.0.0.0'] },
      ],
    },
    {
      name: 'pools whose serviceAllocation does not match are unusable: auto, by name, by IP',
      pools: ordered(),
      steps: [
        { assign: req('other/1'), pool: 'a-open', ips: ['10.0.0.0'] },
        { assign: req('other/2'), code: 'pool-full', message: /^pool "a-open" is full/ },
        { assign: req('other/3', { pool: 'c-high' }), code: 'pool-not-allowed', message: /pool "c-high" serves only namespaces team, not namespace "other" of other\/3/ },
        { assign: req('other/4', { ips: ['10.0.2.0'] }), code: 'pool-not-allowed' },
        { assign: req('team/4', { ips: ['10.0.2.0'] }), ips: ['10.0.2.0'], pool: 'c-high' },
      ],
    },
    {
      name: 'namespaceSelectors match the namespace labels',
      pools: [pool('sel', ['10.0.0.0/24'], { serviceAllocation: alloc({ namespaceSelectors: [{ matchLabels: { tenant: 'x' }, matchExpressions: [] }] }) })],
      steps: [
        { assign: req('ns1/a', { namespaceLabels: { tenant: 'x' } }), ips: ['10.0.0.0'] },
        { assign: req('ns2/a', { namespaceLabels: { tenant: 'y' }, pool: 'sel' }), code: 'pool-not-allowed', message: /namespaces matching its namespaceSelectors/ },
      ],
    },
    {
      name: 'namespaces and namespaceSelectors are alternatives',
      pools: [
        pool('sel', ['10.0.0.0/24'], {
          serviceAllocation: alloc({ namespaces: ['listed'], namespaceSelectors: [{ matchLabels: { tenant: 'x' }, matchExpressions: [] }] }),
        }),
      ],
      steps: [
        { assign: req('listed/a'), ips: ['10.0.0.0'] },
        { assign: req('labelled/a', { namespaceLabels: { tenant: 'x' } }), ips: ['10.0.0.1'] },
      ],
    },
    {
      name: 'serviceSelectors match the Service labels, and combine with namespaces',
      pools: [
        pool('web', ['10.0.0.0/24'], {
          serviceAllocation: alloc({ namespaces: ['shop'], serviceSelectors: [{ matchLabels: {}, matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] }] }),
        }),
      ],
      steps: [
        { assign: req('shop/a', { labels: { app: 'web' } }), ips: ['10.0.0.0'] },
        { assign: req('shop/b', { labels: { app: 'db' }, pool: 'web' }), code: 'pool-not-allowed', message: /serves only Services matching its serviceSelectors/ },
        { assign: req('else/c', { labels: { app: 'web' }, pool: 'web' }), code: 'pool-not-allowed' },
      ],
    },
    {
      name: 'a matching pool with autoAssign false is not auto-assigned, but can be named',
      pools: [pool('open', ['10.0.0.0/24']), pool('mine', ['10.1.0.0/24'], { autoAssign: false, serviceAllocation: alloc({ namespaces: ['team'], priority: 1 }) })],
      steps: [
        { assign: req('team/a'), pool: 'open', ips: ['10.0.0.0'] },
        { assign: req('team/b', { pool: 'mine' }), pool: 'mine', ips: ['10.1.0.0'] },
      ],
    },
    {
      name: 'a serviceAllocation with only a priority admits everyone and ranks first',
      pools: [pool('a', ['10.0.0.0/24']), pool('z', ['10.1.0.0/24'], { serviceAllocation: alloc({ priority: 5 }) })],
      steps: [{ assign: req('any/a'), pool: 'z', ips: ['10.1.0.0'] }],
    },
  ];
})();

const idempotence: Scenario[] = [
  {
    name: 'assigning again returns the same IPs, unchanged, even with a lower address free',
    pools: [pool('p', ['192.0.2.0/24'])],
    steps: [
      { assign: req('x/filler'), ips: ['192.0.2.0'] },
      { assign: req('x/a'), ips: ['192.0.2.1'], changed: true },
      { release: 'x/filler' },
      { assign: req('x/a'), ips: ['192.0.2.1'], changed: false },
    ],
  },
  {
    name: 'a new requested IP moves the Service and frees the old one',
    pools: [pool('p', ['192.0.2.0/24'])],
    steps: [
      { assign: req('x/a'), ips: ['192.0.2.0'] },
      { assign: req('x/a', { ips: ['192.0.2.9'] }), ips: ['192.0.2.9'], changed: true },
      { holders: '192.0.2.0', are: [] },
    ],
  },
  {
    name: 'a failing change leaves the Service with what it held',
    pools: [pool('p', ['192.0.2.0/24'])],
    steps: [
      { assign: req('x/other', { ips: ['192.0.2.9'] }), ips: ['192.0.2.9'] },
      { assign: req('x/a'), ips: ['192.0.2.0'] },
      { assign: req('x/a', { ips: ['192.0.2.9'] }), code: 'ip-in-use' },
      { holders: '192.0.2.0', are: ['x/a'] },
      { assign: req('x/a'), ips: ['192.0.2.0'], changed: false },
    ],
  },
  {
    name: 'a new pool annotation moves the Service to that pool',
    pools: [pool('a', ['192.0.2.0/24']), pool('b', ['198.51.100.0/24'])],
    steps: [
      { assign: req('x/a'), ips: ['192.0.2.0'], pool: 'a' },
      { assign: req('x/a', { pool: 'b' }), ips: ['198.51.100.0'], pool: 'b', changed: true },
    ],
  },
  {
    name: 'ports that now collide with a co-holder move the Service to another address',
    pools: [pool('p', ['192.0.2.0/24'])],
    steps: [
      { assign: req('x/a', { sharingKey: 'k', ports: tcp(80) }), ips: ['192.0.2.0'] },
      { assign: req('x/b', { sharingKey: 'k', ports: tcp(443) }), ips: ['192.0.2.0'] },
      { assign: req('x/b', { sharingKey: 'k', ports: tcp(80) }), ips: ['192.0.2.1'], changed: true },
    ],
  },
  {
    name: 'dry-run answers without changing anything',
    pools: [pool('p', ['192.0.2.0/24'])],
    steps: [
      { assign: req('x/a'), ips: ['192.0.2.0'], dryRun: true },
      { holders: '192.0.2.0', are: [] },
      { assign: req('x/b'), ips: ['192.0.2.0'] },
      { assign: req('x/b', { ips: ['192.0.2.7'] }), ips: ['192.0.2.7'], dryRun: true },
      { holders: '192.0.2.0', are: ['x/b'] },
    ],
  },
];

describe('Allocator', () => {
  describe('MetalLB documentation examples', () => test.each(docs)('$name', (s) => void run(s)));
  describe('pools and addresses', () => test.each(pools)('$name', (s) => void run(s)));
  describe('families', () => test.each(families)('$name', (s) => void run(s)));
  describe('sharing', () => test.each(sharing)('$name', (s) => void run(s)));
  describe('serviceAllocation', () => test.each(serviceAllocation)('$name', (s) => void run(s)));
  describe('idempotence', () => test.each(idempotence)('$name', (s) => void run(s)));

  test('PreferDualStack holding one IP gains the other family when its pool gets one', () => {
    const a = new Allocator([pool('p', ['192.0.2.0/24'])]);
    const r = req('x/a', { familyPolicy: 'PreferDualStack' });
    expect(describeOutcome(a.assign(r))).toBe('p: 192.0.2.0');
    expect(a.setPools([pool('p', ['192.0.2.0/24', '2001:db8::/64'])])).toEqual([]);
    const again = a.assign(r);
    expect(describeOutcome(again)).toBe('p: 192.0.2.0, 2001:db8::');
    expect(again.ok && again.changed).toBe(true);
  });

  test('held addresses are told apart across pages, families and IPv6 pools at the same offset', () => {
    // 2001:db8:1::, 2001:db8:2:: and 2001:db8:3:0:4:: share their low bits: same page key.
    const a = new Allocator([pool('v4', ['10.0.0.0/24']), pool('a', ['2001:db8:1::/64']), pool('b', ['2001:db8:2::/64']), pool('c', ['2001:db8:3:0:4::/126'])]);
    const v6 = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${i.toString(16)}`);
    for (const [i, text] of [...v6('2001:db8:1::', 20), ...v6('2001:db8:2::', 20), '2001:db8:3:0:4::1', '10.0.0.17'].entries()) {
      const out = a.assign(req(`x/s${i}`, { ips: [text], sharingKey: 'k', ports: tcp(80) }));
      expect(describeOutcome(out)).toMatch(/^(v4|a|b|c): /);
    }
    expect(a.holders(ip('2001:db8:1::11'))).toEqual(['x/s17']);
    expect(a.holders(ip('2001:db8:2::11'))).toEqual(['x/s37']);
    expect(a.holders(ip('2001:db8:3:0:4::1'))).toEqual(['x/s40']);
    expect(a.holders(ip('10.0.0.17'))).toEqual(['x/s41']);
    expect(a.holders(ip('2001:db8:4::11'))).toEqual([]);
    // A second holder on a shared address, then releases page by page.
    expect(a.assign(req('y/t', { ips: ['2001:db8:2::11'], sharingKey: 'k', ports: tcp(81) })).ok).toBe(true);
    expect(a.holders(ip('2001:db8:2::11'))).toEqual(['x/s37', 'y/t']);
    for (let i = 0; i < 20; i++) a.release(`x/s${i}`);
    expect(a.holders(ip('2001:db8:1::11'))).toEqual([]);
    expect(a.holders(ip('2001:db8:2::11'))).toEqual(['x/s37', 'y/t']);
    expect(a.holders(ip('2001:db8:3:0:4::1'))).toEqual(['x/s40']);
    a.release('x/s37');
    expect(a.holders(ip('2001:db8:2::11'))).toEqual(['y/t']);
    expect(a.assign(req('z/u', { ips: ['2001:db8:1::11'] })).ok).toBe(true);
    expect(a.assign(req('z/v', { ips: ['2001:db8:2::11'] })).ok).toBe(false);
    expect(a.usage('a')?.used).toBe(1n);
    expect(a.usage('b')?.used).toBe(20n);
  });

  describe('usage', () => {
    test.each([
      { name: 'an IPv4 /8', pools: [pool('p', ['10.0.0.0/8'])], size: 1n << 24n },
      { name: 'a /24 avoiding buggy IPs', pools: [pool('p', ['192.168.1.0/24'], { avoidBuggyIPs: true })], size: 254n },
      { name: 'a /16 avoiding buggy IPs', pools: [pool('p', ['10.1.0.0/16'], { avoidBuggyIPs: true })], size: 65536n - 512n },
      { name: 'a /30 not on a /24 edge, avoiding buggy IPs', pools: [pool('p', ['42.176.25.64/30'], { avoidBuggyIPs: true })], size: 4n },
      { name: 'a range crossing a /24 edge, avoiding buggy IPs', pools: [pool('p', ['192.168.0.250-192.168.1.5'], { avoidBuggyIPs: true })], size: 10n },
      { name: 'an IPv6 /64', pools: [pool('p', ['2001:db8::/64'])], size: 1n << 64n },
      { name: 'IPv4 and IPv6 together', pools: [pool('p', ['192.0.2.0/30', '2001:db8::/126'])], size: 8n },
    ])('size of $name', ({ pools, size }) => {
      const a = new Allocator(pools);
      expect(a.usage('p')).toMatchObject({ size, used: 0n, free: size });
    });

    test('counts a shared IP once, per family, and frees on release', () => {
      const a = new Allocator([pool('p', ['192.0.2.0/30', '2001:db8::/126'])]);
      a.assign(req('x/a', { sharingKey: 'k', ports: tcp(80), familyPolicy: 'RequireDualStack' }));
      a.assign(req('x/b', { sharingKey: 'k', ports: tcp(81), familyPolicy: 'RequireDualStack' }));
      a.assign(req('x/c'));
      expect(a.usage('p')).toEqual({
        size: 8n,
        used: 3n,
        free: 5n,
        families: { IPv4: { size: 4n, used: 2n, free: 2n }, IPv6: { size: 4n, used: 1n, free: 3n } },
      });
      a.release('x/a');
      a.release('x/b');
      expect(a.usage('p')?.used).toBe(1n);
      expect(a.usage('nope')).toBeUndefined();
    });
  });

  test('claims, claim, poolFor and candidates report the state', () => {
    const a = new Allocator([pool('open', ['192.0.2.0/24']), pool('exp', ['198.51.100.0/24'], { autoAssign: false })]);
    a.assign(req('x/b'));
    a.assign(req('x/a', { pool: 'exp' }));
    expect(a.allocations().map((c) => c.service)).toEqual(['x/a', 'x/b']);
    expect(a.allocation('x/a')).toMatchObject({ pool: 'exp', ips: [ip('198.51.100.0')] });
    expect(a.poolFor(ip('198.51.100.77'))).toBe('exp');
    expect(a.poolFor(ip('203.0.113.1'))).toBeUndefined();
    expect(a.candidates(req('x/c'))).toEqual([
      { pool: 'open', usable: true },
      { pool: 'exp', usable: false, reason: { code: 'pool-not-auto-assign', message: expect.stringContaining('autoAssign false') } },
    ]);
    expect(a.release('x/a')?.ips).toEqual([ip('198.51.100.0')]);
    expect(a.release('x/a')).toBeUndefined();
  });

  describe('restore after a restart', () => {
    test('restored Services keep their IPs and new ones go around them', () => {
      const a = new Allocator([pool('p', ['192.0.2.0/24'])]);
      const refused = a.restore([
        { request: req('x/old1'), ips: [ip('192.0.2.0')] },
        { request: req('x/old2'), ips: [ip('192.0.2.2')], pool: 'p' },
        { request: req('x/s1', { sharingKey: 'k', ports: tcp(80) }), ips: [ip('192.0.2.5')] },
        { request: req('x/s2', { sharingKey: 'k', ports: tcp(443) }), ips: [ip('192.0.2.5')] },
      ]);
      expect(refused).toEqual([]);
      expect(describeOutcome(a.assign(req('x/new1')))).toBe('p: 192.0.2.1');
      expect(describeOutcome(a.assign(req('x/new2')))).toBe('p: 192.0.2.3');
      expect(describeOutcome(a.assign(req('x/old1')))).toBe('p: 192.0.2.0');
      expect(a.holders(ip('192.0.2.5'))).toEqual(['x/s1', 'x/s2']);
    });

    test.each([
      { name: 'an IP in no pool', held: [{ request: req('x/a'), ips: [ip('203.0.113.1')] }], code: 'ip-not-in-any-pool' },
      {
        name: 'two Services on one IP without sharing: the second is refused',
        held: [
          { request: req('x/a'), ips: [ip('192.0.2.1')] },
          { request: req('x/b'), ips: [ip('192.0.2.1')] },
        ],
        code: 'ip-in-use',
      },
      { name: 'a Service now requesting another IP', held: [{ request: req('x/a', { ips: ['192.0.2.2'] }), ips: [ip('192.0.2.1')] }], code: 'requested-ip-changed' },
      { name: 'a pool no longer allowed', held: [{ request: req('other/a'), ips: [ip('198.51.100.1')] }], code: 'pool-not-allowed' },
    ])('refuses $name', ({ held, code }) => {
      const a = new Allocator([pool('p', ['192.0.2.0/24']), pool('t', ['198.51.100.0/24'], { serviceAllocation: alloc({ namespaces: ['t'] }) })]);
      const refused = a.restore(held);
      expect(refused).toHaveLength(1);
      expect(refused[0]?.failure.code).toBe(code);
      expect(refused[0]?.service).toBe(held[held.length - 1]?.request.namespace + '/' + held[held.length - 1]?.request.name);
    });
  });

  describe('setPools', () => {
    const base = () => [pool('a', ['192.0.2.0/24']), pool('b', ['198.51.100.0/24']), pool('c', ['203.0.113.0/24'], { autoAssign: false })];
    const start = () => {
      const a = new Allocator(base());
      a.assign(req('x/auto-a'));
      a.assign(req('x/named-b', { pool: 'b' }));
      a.assign(req('y/auto-b', { ips: ['198.51.100.9'] }));
      a.assign(req('x/named-c', { pool: 'c' }));
      return a;
    };

    test.each([
      { name: 'unchanged pools revoke nothing', pools: base(), revoked: [], pools2: { 'x/auto-a': 'a', 'x/named-b': 'b' } },
      {
        name: 'an IP no longer in any pool is revoked, the rest kept',
        pools: [pool('a', ['192.0.2.128/25']), pool('b', ['198.51.100.0/24']), pool('c', ['203.0.113.0/24'], { autoAssign: false })],
        revoked: [['x/auto-a', 'ip-not-in-any-pool']],
        pools2: { 'x/named-b': 'b' },
      },
      {
        name: 'a pool no longer allowed for the namespace revokes its Services there',
        pools: [
          pool('a', ['192.0.2.0/24']),
          pool('b', ['198.51.100.0/24'], { serviceAllocation: alloc({ namespaces: ['x'] }) }),
          pool('c', ['203.0.113.0/24'], { autoAssign: false }),
        ],
        revoked: [['y/auto-b', 'pool-not-allowed']],
        pools2: { 'x/named-b': 'b' },
      },
      {
        name: 'a renamed pool updates the pool name of auto-assigned Services',
        pools: [pool('a2', ['192.0.2.0/24']), pool('b', ['198.51.100.0/24']), pool('c', ['203.0.113.0/24'], { autoAssign: false })],
        revoked: [],
        pools2: { 'x/auto-a': 'a2' },
      },
      {
        name: 'a renamed pool revokes Services that name the old name',
        pools: [pool('a', ['192.0.2.0/24']), pool('b2', ['198.51.100.0/24']), pool('c', ['203.0.113.0/24'], { autoAssign: false })],
        revoked: [['x/named-b', 'unknown-pool']],
        pools2: { 'y/auto-b': 'b2' },
      },
      {
        name: 'an IP moved into a pool with autoAssign false, not named, is revoked',
        pools: [
          pool('a', ['192.0.2.128/25']),
          pool('z', ['192.0.2.0/25'], { autoAssign: false }),
          pool('b', ['198.51.100.0/24']),
          pool('c', ['203.0.113.0/24'], { autoAssign: false }),
        ],
        revoked: [['x/auto-a', 'pool-not-auto-assign']],
        pools2: {},
      },
      {
        name: 'turning autoAssign off on a pool keeps its Services',
        pools: [pool('a', ['192.0.2.0/24'], { autoAssign: false }), pool('b', ['198.51.100.0/24']), pool('c', ['203.0.113.0/24'], { autoAssign: false })],
        revoked: [],
        pools2: { 'x/auto-a': 'a' },
      },
      {
        name: 'turning avoidBuggyIPs on revokes holders of .0 addresses',
        pools: [
          pool('a', ['192.0.2.0/24'], { avoidBuggyIPs: true }),
          pool('b', ['198.51.100.0/24'], { avoidBuggyIPs: true }),
          pool('c', ['203.0.113.0/24'], { autoAssign: false }),
        ],
        revoked: [
          ['x/auto-a', 'ip-not-in-any-pool'],
          ['x/named-b', 'ip-not-in-any-pool'],
        ],
        pools2: { 'y/auto-b': 'b' },
      },
    ])('$name', ({ pools, revoked, pools2 }) => {
      const a = start();
      const out = a.setPools(pools);
      expect(out.map((r) => [r.service, r.failure.code])).toEqual(revoked);
      for (const r of out) {
        // Single-stack: the one address is lost, nothing kept.
        expect({ kept: r.kept, lost: r.lost }).toEqual({ kept: [], lost: r.ips });
        expect(a.allocation(r.service)).toBeUndefined();
        for (const x of r.ips) expect(a.holders(x)).toEqual([]);
        expect(r.failure.message).not.toContain('\n');
      }
      for (const [service, name] of Object.entries(pools2)) expect(a.allocation(service)?.pool).toBe(name);
      // The allocator keeps working on the new pools: the lowest free address is still right.
      const next = a.assign(req('z/new'));
      expect(next.ok).toBe(true);
    });

    test('usage follows the new pools', () => {
      const a = start();
      a.setPools([pool('a', ['192.0.2.0/25']), pool('b', ['198.51.100.0/24']), pool('c', ['203.0.113.0/24'], { autoAssign: false })]);
      expect(a.usage('a')).toMatchObject({ size: 128n, used: 1n });
      expect(a.usage('b')).toMatchObject({ used: 2n });
    });
  });

  describe('keeping what is still allowed when pools change', () => {
    const v4 = '198.51.100.0/24';
    const v6 = '2001:db8::/64';
    const dual = (service: string, extra: Partial<Request> & { ips?: string[] } = {}) => req(service, { familyPolicy: 'RequireDualStack', ...extra });
    const texts = (ips: readonly IP[] | undefined) => ips?.map(formatIP);

    test('dual-stack with its IPv4 range removed keeps its IPv6 address and gets only a new IPv4 one', () => {
      const a = new Allocator([pool('d', [v4, v6])]);
      expect(describeOutcome(a.assign(dual('x/a')))).toBe('d: 198.51.100.0, 2001:db8::');
      expect(describeOutcome(a.assign(dual('x/b')))).toBe('d: 198.51.100.1, 2001:db8::1');
      const revoked = a.setPools([pool('d', ['192.0.2.0/24', v6])]);
      expect(revoked.map((r) => ({ service: r.service, code: r.failure.code, kept: texts(r.kept), lost: texts(r.lost) }))).toEqual([
        { service: 'x/a', code: 'ip-not-in-any-pool', kept: ['2001:db8::'], lost: ['198.51.100.0'] },
        { service: 'x/b', code: 'ip-not-in-any-pool', kept: ['2001:db8::1'], lost: ['198.51.100.1'] },
      ]);
      // The kept addresses stay held meanwhile: a new Service goes around them.
      expect(a.holders(ip('2001:db8::1'))).toEqual(['x/b']);
      expect(a.holders(ip('198.51.100.1'))).toEqual([]);
      expect(describeOutcome(a.assign(req('y/new', { families: ['IPv6'] })))).toBe('d: 2001:db8::2');
      // Re-assigned in any order, each keeps its IPv6 address.
      const b = a.assign(dual('x/b'));
      expect(describeOutcome(b)).toBe('d: 192.0.2.0, 2001:db8::1');
      expect(b.ok && b.changed).toBe(true);
      expect(describeOutcome(a.assign(dual('x/a'), { prefer: revoked[0]?.kept ?? [] }))).toBe('d: 192.0.2.1, 2001:db8::');
      expect(a.assign(dual('x/a'))).toMatchObject({ ok: true, changed: false });
    });

    test('after a restart (nothing held), prefer keeps the still-allowed address', () => {
      const a = new Allocator([pool('d', ['192.0.2.0/24', v6])]);
      const out = a.assign(dual('x/b'), { prefer: [ip('198.51.100.1'), ip('2001:db8::1')] });
      expect(describeOutcome(out)).toBe('d: 192.0.2.0, 2001:db8::1');
    });

    test('PreferDualStack whose pool lost its IPv4 range keeps the IPv6 address alone', () => {
      const a = new Allocator([pool('d', [v4, v6])]);
      a.assign(req('x/f', { familyPolicy: 'PreferDualStack', ports: tcp(1) }));
      a.assign(req('x/p', { familyPolicy: 'PreferDualStack' }));
      expect(describeOutcome(a.assign(req('x/p', { familyPolicy: 'PreferDualStack' })))).toBe('d: 198.51.100.1, 2001:db8::1');
      const [, r] = a.setPools([pool('d', [v6])]);
      expect({ kept: texts(r?.kept), lost: texts(r?.lost) }).toEqual({ kept: ['2001:db8::1'], lost: ['198.51.100.1'] });
      expect(describeOutcome(a.assign(req('x/p', { familyPolicy: 'PreferDualStack' })))).toBe('d: 2001:db8::1');
    });

    test('the pair split across two pools keeps the primary family and fills the other from its pool', () => {
      const a = new Allocator([pool('d', [v4, v6]), pool('e', ['192.0.2.0/24', '2001:db8:1::/64'])]);
      expect(describeOutcome(a.assign(dual('x/a')))).toBe('d: 198.51.100.0, 2001:db8::');
      const [r] = a.setPools([pool('d', [v6]), pool('e', [v4, '2001:db8:1::/64'])]);
      expect({ code: r?.failure.code, kept: texts(r?.kept), lost: texts(r?.lost) }).toEqual({ code: 'ip-pool-mismatch', kept: ['198.51.100.0'], lost: ['2001:db8::'] });
      expect(describeOutcome(a.assign(dual('x/a')))).toBe('e: 198.51.100.0, 2001:db8:1::');
    });

    test('a shared IP is revoked for all its sharers; a shared IPv6 address stays shared', () => {
      const a = new Allocator([pool('d', [v4, v6])]);
      const s = (service: string, port: number, extra: Partial<Request> = {}) => req(service, { sharingKey: 'k', ports: tcp(port), ...extra });
      expect(describeOutcome(a.assign(s('x/one', 80)))).toBe('d: 198.51.100.0');
      expect(describeOutcome(a.assign(s('x/two', 443)))).toBe('d: 198.51.100.0');
      expect(describeOutcome(a.assign(s('x/d1', 80, { familyPolicy: 'RequireDualStack' })))).toBe('d: 198.51.100.1, 2001:db8::');
      expect(describeOutcome(a.assign(s('x/d2', 443, { familyPolicy: 'RequireDualStack' })))).toBe('d: 198.51.100.1, 2001:db8::');
      const revoked = a.setPools([pool('d', ['192.0.2.0/24', v6])]);
      expect(revoked.map((r) => [r.service, texts(r.kept), texts(r.lost)])).toEqual([
        ['x/d1', ['2001:db8::'], ['198.51.100.1']],
        ['x/d2', ['2001:db8::'], ['198.51.100.1']],
        ['x/one', [], ['198.51.100.0']],
        ['x/two', [], ['198.51.100.0']],
      ]);
      expect(a.holders(ip('198.51.100.0'))).toEqual([]);
      expect(a.allocation('x/one')).toBeUndefined();
      expect(a.holders(ip('2001:db8::'))).toEqual(['x/d1', 'x/d2']);
      // Both keep the shared IPv6 address and meet again on one new IPv4 address.
      expect(describeOutcome(a.assign(s('x/d1', 80, { familyPolicy: 'RequireDualStack' })))).toBe('d: 192.0.2.0, 2001:db8::');
      expect(describeOutcome(a.assign(s('x/d2', 443, { familyPolicy: 'RequireDualStack' })))).toBe('d: 192.0.2.0, 2001:db8::');
      expect(describeOutcome(a.assign(s('x/one', 80)))).toBe('d: 192.0.2.1');
    });

    test('a requested IP revoked is a failure, never a substitute', () => {
      const a = new Allocator([pool('d', [v4, v6])]);
      const single = req('x/r', { ips: ['198.51.100.7'] });
      const pair = dual('x/rr', { ips: ['198.51.100.8', '2001:db8::8'] });
      expect(a.assign(single).ok && a.assign(pair).ok).toBe(true);
      const revoked = a.setPools([pool('d', ['198.51.100.128/25', v6])]);
      expect(revoked.map((r) => [r.service, r.failure.code, texts(r.kept), texts(r.lost)])).toEqual([
        ['x/r', 'ip-not-in-any-pool', [], ['198.51.100.7']],
        ['x/rr', 'ip-not-in-any-pool', ['2001:db8::8'], ['198.51.100.8']],
      ]);
      expect(describeOutcome(a.assign(single, { prefer: [ip('198.51.100.7')] }))).toMatch(/^ip-not-in-any-pool: 198\.51\.100\.7 is not in any address pool/);
      expect(a.allocation('x/r')).toBeUndefined();
      expect(describeOutcome(a.assign(pair))).toMatch(/^ip-not-in-any-pool: 198\.51\.100\.8 /);
      // assign is atomic: the Service still holds the requested address that is allowed.
      expect(texts(a.allocation('x/rr')?.ips)).toEqual(['2001:db8::8']);
      // A requested IP still allowed is kept as requested, whatever prefer says.
      expect(describeOutcome(a.assign(req('x/r', { ips: ['198.51.100.200'] }), { prefer: [ip('198.51.100.129')] }))).toBe('d: 198.51.100.200');
    });

    test('prefer with an address now taken by someone else falls back to a new one', () => {
      const a = new Allocator([pool('d', [v4, v6])]);
      expect(describeOutcome(a.assign(req('y/taker', { ips: ['2001:db8::'] })))).toBe('d: 2001:db8::');
      expect(describeOutcome(a.assign(req('y/taker4', { ips: ['198.51.100.5'] })))).toBe('d: 198.51.100.5');
      // Dual-stack: the free IPv4 address is kept, the taken IPv6 one replaced.
      expect(describeOutcome(a.assign(dual('x/a'), { prefer: [ip('198.51.100.9'), ip('2001:db8::')] }))).toBe('d: 198.51.100.9, 2001:db8::1');
      // Single-stack: placed afresh.
      expect(describeOutcome(a.assign(req('x/s'), { prefer: [ip('198.51.100.5')] }))).toBe('d: 198.51.100.0');
    });

    test.each([
      { name: 'of the wrong family is ignored', prefer: ['2001:db8::9'], extra: { families: ['IPv4' as const] }, ips: ['198.51.100.0'] },
      // ipFamilies not set yet (admission): the held family is as good as any, as for held IPs.
      { name: 'of either family is kept when ipFamilies is unset', prefer: ['2001:db8::9'], extra: {}, ips: ['2001:db8::9'] },
      { name: 'outside the pool the Service names is ignored', prefer: ['198.51.100.9'], extra: { pool: 'e' }, ips: ['192.0.2.0'] },
      { name: 'in no pool is ignored', prefer: ['203.0.113.9'], extra: {}, ips: ['198.51.100.0'] },
      { name: 'shared under another key is ignored', prefer: ['198.51.100.77'], extra: { sharingKey: 'mine' }, ips: ['198.51.100.0'] },
      { name: 'usable is kept', prefer: ['192.0.2.9'], extra: {}, ips: ['192.0.2.9'] },
    ])('prefer: an address $name', ({ prefer, extra, ips }) => {
      const a = new Allocator([pool('d', [v4, v6]), pool('e', ['192.0.2.0/24'])]);
      a.assign(req('y/other', { ips: ['198.51.100.77'], sharingKey: 'theirs' }));
      const out = a.assign(req('x/a', extra), { prefer: prefer.map(ip) });
      expect(out.ok && out.ips.map(formatIP)).toEqual(ips);
    });

    test('a dry run with prefer changes nothing', () => {
      const a = new Allocator([pool('d', [v4, v6])]);
      expect(describeOutcome(a.assign(dual('x/a'), { prefer: [ip('2001:db8::9')], dryRun: true }))).toBe('d: 198.51.100.0, 2001:db8::9');
      expect(a.allocation('x/a')).toBeUndefined();
      expect(a.holders(ip('2001:db8::9'))).toEqual([]);
    });

    test('a Service whose request grew keeps its address and gains the other family from its pool', () => {
      const a = new Allocator([pool('v4only', ['192.0.2.0/24']), pool('d', [v4, v6], { autoAssign: false })]);
      expect(describeOutcome(a.assign(req('x/a', { pool: 'd' })))).toBe('d: 198.51.100.0');
      expect(describeOutcome(a.assign(dual('x/a', { pool: 'd' })))).toBe('d: 198.51.100.0, 2001:db8::');
    });
  });

  test('a /8 and a /64 allocate without walking addresses, even past a far-away held one', () => {
    // A pool that walked addresses would need a million steps per assign here.
    const a = new Allocator([pool('v4', ['10.0.0.0/8']), pool('v6', ['2001:db8::/64'])]);
    a.restore([{ request: req('x/far', { ips: ['10.16.0.0'] }), ips: [ip('10.16.0.0')] }]);
    for (let i = 0; i < 1000; i++) a.assign(req(`x/v4-${i}`));
    for (let i = 0; i < 1000; i++) a.assign(req(`x/v6-${i}`, { families: ['IPv6'] }));
    expect(a.allocation('x/v4-999')?.ips).toEqual([ip('10.0.3.231')]);
    expect(a.allocation('x/v6-999')?.ips).toEqual([ip('2001:db8::3e7')]);
    expect(a.usage('v6')?.free).toBe((1n << 64n) - 1000n);
  });
});
