/**
 * The views by their rendered frames (ink-testing-library): each draws exactly what it is given,
 * colour only when told.
 */
import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import type { Explanation, PoolRow, ServiceRow } from '../../core/diagnose/index.js';
import { age, drawExplain, explainBlocks, type ExplainViewProps } from './explain.js';
import type { DrainReport } from '../../core/diagnose/index.js';
import { drainBlocks, drawPeers, drawPools, poolsBlocks, servicesBlocks, type PoolsViewProps, type ServicesViewProps } from './lists.js';
import { Blocks, usageBar } from './table.js';

// The list views are blocks; ink draws them through <Blocks>.
const PoolsView = (p: PoolsViewProps) => <Blocks blocks={poolsBlocks(p)} color={p.color} />;
const ServicesView = (p: ServicesViewProps) => <Blocks blocks={servicesBlocks(p)} color={p.color} />;
const DrainView = (p: { report: DrainReport; color: boolean }) => <Blocks blocks={drainBlocks(p)} color={p.color} />;
const ExplainView = (p: ExplainViewProps) => <Blocks blocks={explainBlocks(p)} color={p.color} />;

const pool = (name: string, percent: number, extra: Partial<PoolRow> = {}): PoolRow => ({
  name,
  source: 'IPAddressPool',
  ranges: ['203.0.113.0/24'],
  protocols: ['layer2'],
  l2Advertisements: ['all'],
  bgpAdvertisements: [],
  autoAssign: true,
  avoidBuggyIPs: true,
  serves: 'all',
  size: '254',
  used: '127',
  free: '127',
  percentUsed: percent,
  display: { size: '254', used: '127', free: '127', percentUsed: `${percent}%` },
  families: {},
  ...extra,
});

const frame = (node: Parameters<typeof render>[0]): string => {
  const { lastFrame, unmount } = render(node);
  const text = lastFrame() ?? '';
  unmount();
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
};

describe('PoolsView', () => {
  it('draws a kubectl-style table, numbers right-aligned', () => {
    const text = frame(
      <PoolsView
        pools={[pool('lan', 50), pool('v6', 0, { display: { size: '2^64', used: '0', free: '2^64', percentUsed: '0%' }, ranges: ['2001:db8::/64'] })]}
        verbose={false}
        bar={false}
        color={false}
      />,
    );
    expect(text).toBe(
      [
        'NAME   SOURCE          PROTOCOL   AUTO-ASSIGN   SERVES   SIZE   USED   FREE   USED%   RANGES',
        'lan    IPAddressPool   layer2     yes           all       254    127    127     50%   203.0.113.0/24',
        'v6     IPAddressPool   layer2     yes           all      2^64      0   2^64      0%   2001:db8::/64',
      ].join('\n'),
    );
  });

  it('adds a usage bar on a terminal, and the holders with -v (as drawn for the command: rows never wrap)', async () => {
    const text = drawPools({
      pools: [pool('lan', 50, { addresses: [{ ip: '203.0.113.2', holders: ['shop/a', 'shop/b'], sharingKey: 'k' }] })],
      verbose: true,
      bar: true,
      color: false,
    });
    expect(text.split('\n')[1]).toContain('50%   [#####.....]   203.0.113.0/24');
    expect(text).toContain('lan: 127 of 254 addresses in use');
    expect(text).toMatch(/^ {2}203\.0\.113\.2 {3}k {13}shop\/a, shop\/b$/m);
  });

  it('says when there is no pool', () => {
    expect(frame(<PoolsView pools={[]} verbose={false} bar={false} color={false} />)).toBe('No address pools are configured.');
  });

  it.each([
    [0, '[..........]'],
    [1, '[#.........]'],
    [50, '[#####.....]'],
    [100, '[##########]'],
  ])('usageBar(%d)', (p, text) => expect(usageBar(p)).toMatchObject({ text }));
});

const row = (name: string, status: ServiceRow['status'], extra: Partial<ServiceRow> = {}): ServiceRow => ({
  namespace: 'shop',
  name,
  ips: ['203.0.113.1'],
  pool: 'lan',
  protocols: ['layer2'],
  announcingNodes: ['node-1'],
  statusNodes: ['node-1'],
  advertisingNodes: [],
  bgpPeers: [],
  sharingKey: null,
  sharedWith: [],
  trafficPolicy: 'Cluster',
  status,
  reason: 'why',
  fix: null,
  ...extra,
});

describe('ServicesView', () => {
  it('draws one row per Service and the reasons of those not ok', () => {
    const text = frame(
      <ServicesView
        namespace="shop"
        color={false}
        services={[
          row('web', 'ok'),
          row('full', 'pending', { ips: [], pool: null, protocols: [], announcingNodes: [], statusNodes: [], reason: 'pool "small" is full', fix: 'add addresses' }),
          row('moved', 'ok', { statusNodes: ['node-2'] }),
        ]}
      />,
    );
    expect(text).toBe(
      [
        'NAME    IPS           POOL   PROTOCOL   NODE                      SHARING   STATUS',
        'web     203.0.113.1   lan    layer2     node-1                    -         ok',
        'full    <pending>     -      -          -                         -         pending',
        'moved   203.0.113.1   lan    layer2     node-1 (status: node-2)   -         ok',
        '',
        'shop/full: pending: pool "small" is full; add addresses',
      ].join('\n'),
    );
  });

  it('adds the NAMESPACE column across namespaces, and says when there is nothing', () => {
    expect(frame(<ServicesView namespace={null} color={false} services={[row('web', 'ok')]} />).split('\n')[0]).toMatch(/^NAMESPACE {3}NAME/);
    expect(frame(<ServicesView namespace="x" color={false} services={[]} />)).toBe('No LoadBalancer Services found in namespace x.');
  });
});

const explanation: Explanation & { configuration: { source: string; errors: string[] } } = {
  namespace: 'shop',
  name: 'web',
  status: 'ok',
  verdict: 'assigned 203.0.113.1 from pool lan, announced by node-2 over layer 2',
  fix: null,
  ips: ['203.0.113.1'],
  pool: 'lan',
  request: {
    requestedIPs: [],
    pool: { value: 'lan', from: 'annotation metallb.io/address-pool' },
    sharingKey: null,
    ipFamilyPolicy: 'SingleStack',
    ipFamilies: ['IPv4'],
    problem: null,
  },
  pools: [
    { pool: 'lan', verdict: 'assigned', reason: 'holds 203.0.113.1' },
    { pool: 'small', verdict: 'no', reason: 'the Service names pool lan' },
  ],
  sharing: null,
  traffic: { policy: 'Cluster', readyNodes: ['node-1'], readyEndpoints: 1, endpointsWithoutNode: 0 },
  layer2: [
    {
      ip: '203.0.113.1',
      pool: 'lan',
      advertisements: ['all'],
      owner: 'node-2',
      reason: null,
      next: 'node-1',
      candidates: ['node-2', 'node-1'],
      ineligible: [{ node: 'node-3', reasons: ['not Ready'] }],
    },
  ],
  bgp: [],
  bgpRoutes: [],
  bgpSessions: [],
  statusNodes: ['node-3'],
  configuration: { source: 'current', errors: [] },
  disagreements: ['ServiceL2Status says node-3 announces it, but node-2 should'],
  events: [{ type: 'Normal', reason: 'IPAllocated', message: 'Assigned IP', count: 1, lastSeen: '2025-01-01T00:00:00Z' }],
};

describe('ExplainView', () => {
  it('puts the verdict first, then the evidence by section', () => {
    const text = frame(<ExplainView explanation={explanation} now="2025-01-01T00:03:00Z" color={false} />);
    const lines = text.split('\n');
    expect(lines[0]).toBe('shop/web: assigned 203.0.113.1 from pool lan, announced by node-2 over layer 2');
    expect(text).toContain('Request\n  addresses: none: the pool chooses\n  pool: lan (annotation metallb.io/address-pool)');
    expect(text).toContain(
      'Pools (in the order auto-assignment tries them)\n  POOL    FIT        WHY\n  lan     assigned   holds 203.0.113.1\n  small   no         the Service names pool lan',
    );
    expect(text).toContain(
      'Layer 2 (core/announce)\n  203.0.113.1: announced by node-2, next node-1\n    pool lan, advertisements all\n    candidates, best first: node-2, node-1\n    node-3: not Ready',
    );
    expect(text).toContain('The cluster shows otherwise\n  ServiceL2Status says node-3 announces it, but node-2 should');
    expect(text).toContain('Events\n  TYPE     REASON        AGE   COUNT   MESSAGE\n  Normal   IPAllocated    3m       1   Assigned IP');
    expect(text).not.toContain('fix:');
  });

  it('names the fix under a verdict that is not ok, in colour only when told', () => {
    const pending = { ...explanation, status: 'pending' as const, verdict: 'pending: pool "small" is full', fix: 'add addresses', layer2: [], disagreements: [] };
    const plain = frame(<ExplainView explanation={pending} now="2025-01-01T00:00:00Z" color={false} />);
    expect(plain.split('\n').slice(0, 2)).toEqual(['shop/web: pending: pool "small" is full', 'fix: add addresses']);
    expect(plain).not.toContain('\u001b[');
  });

  it('draws for the command without ever breaking a text over lines', () => {
    const long = `a reason of ${'many words '.repeat(14)}end`;
    for (const [where, e] of [
      ['plain', explanation],
      ['a long verdict', { ...explanation, verdict: long }],
      ['a long pool reason', { ...explanation, pools: [{ pool: 'x'.repeat(60), verdict: 'no', reason: long }] }],
      ['a long fix', { ...explanation, status: 'pending', fix: long }],
    ] as [string, Explanation][]) {
      for (const color of [false, true]) {
        const text = stripVTControlCharacters(drawExplain({ explanation: e, now: '2025-01-01T00:03:00Z', color }));
        expect([where, color, text.includes(e.verdict), e.fix === null || text.includes(e.fix), text.includes(e.pools[0]!.reason)]).toEqual([where, color, true, true, true]);
      }
    }
  });

  it('shows text from the cluster on one line, with no escape sequence of its own', () => {
    const hostile = {
      ...explanation,
      events: [{ type: 'Warning', reason: 'Evil\x1b[2J', message: 'line one\nline two\x1b]0;title\x07', count: 1, lastSeen: '2025-01-01T00:00:00Z' }],
    };
    const text = drawExplain({ explanation: hostile, now: '2025-01-01T00:03:00Z', color: false });
    const controls = [...text].filter((ch) => ch !== '\n' && (ch < ' ' || (ch >= '\u007f' && ch <= '\u009f')));
    expect(controls).toEqual([]);
    expect(text.split('\n').at(-1)).toBe('  Warning   Evil [2J    3m       1   line one line two ]0;title');
  });

  it.each([
    ['2025-01-01T00:00:30Z', '30s'],
    ['2025-01-01T00:10:00Z', '10m'],
    ['2025-01-01T05:00:00Z', '5h'],
    ['2025-01-04T00:00:00Z', '3d'],
  ])('age at %s is %s', (now, text) => expect(age('2025-01-01T00:00:00Z', now)).toBe(text));
});

describe('DrainView', () => {
  it('lists each address with where it goes, and what nobody would announce', () => {
    const text = frame(
      <DrainView
        color={false}
        report={{
          node: 'node-2',
          known: true,
          moves: [
            { service: 'shop/web', ip: '203.0.113.1', to: 'node-1', reason: null },
            { service: 'shop/local', ip: '203.0.113.3', to: null, reason: 'no ready endpoint on any node' },
          ],
          withdrawn: [],
          unannounced: ['shop/local'],
          why: [{ service: 'shop/local', reason: 'no ready endpoint on any node: nothing would answer 203.0.113.3' }],
        }}
      />,
    );
    expect(text).toBe(
      [
        'If node-2 went away (2 addresses):',
        'SERVICE      IP            MOVES TO',
        'shop/web     203.0.113.1   node-1',
        'shop/local   203.0.113.3   nobody: no ready endpoint on any node',
        '',
        'left unannounced: shop/local',
        '  shop/local: no ready endpoint on any node: nothing would answer 203.0.113.3',
      ].join('\n'),
    );
  });
});

describe('PeersView', () => {
  it('one row per session, state with its age, then the summary (as drawn for the command: wider than the test terminal)', async () => {
    const base = {
      peer: 'tor',
      address: '192.0.2.254',
      asn: 64501,
      vrf: '',
      prefixesSent: null,
      prefixesReceived: null,
      holdTime: null,
      keepaliveTime: null,
      bfd: null,
      lastError: null,
    };
    const text = drawPeers({
      color: false,
      now: '2025-01-01T00:05:00Z',
      established: 1,
      total: 3,
      sessions: [
        { ...base, node: 'n1', state: 'Established', since: '2025-01-01T00:00:00Z', prefixesSent: 5, prefixesReceived: 0, holdTime: 90, bfd: 'up' },
        { ...base, node: 'n2', state: 'Active', since: '2025-01-01T00:04:30Z', lastError: 'refused' },
        { ...base, node: 'n3', state: 'unknown', since: null },
      ],
    });
    expect(text).toBe(
      [
        'NODE   PEER   ADDRESS         ASN   STATE                           SENT   RECEIVED   HOLD   BFD   LAST ERROR',
        'n1     tor    192.0.2.254   64501   Established for 5m                 5          0    90s   up    -',
        'n2     tor    192.0.2.254   64501   Active since 30s                   -          -      -   -     refused',
        'n3     tor    192.0.2.254   64501   unknown (no status published)      -          -      -   -     -',
        '',
        '1 of 3 sessions established',
      ].join('\n'),
    );
  });
});
