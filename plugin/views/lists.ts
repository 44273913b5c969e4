/**
 * The list views, `kubectl metallb pools | services | peers | simulate drain`, as blocks
 * (blocks.ts), drawn by the string writer that the views tests hold equal to ink's drawing of
 * the same blocks. No ink import here.
 */
import type { DrainReport, PeerRow, PoolRow, ServiceRow } from '../../core/diagnose/index.js';
import { usageBar, writeBlocks, type Block, type Cell, type Column, type Tone } from './blocks.js';

/** `5s`, `3m`, `2h`, `4d` since `then`. */
export function age(then: string | null, now: string): string {
  if (!then) return '?';
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(then)) / 1000));
  if (!Number.isFinite(s)) return '?';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

const line = (text: string, extra: { tone?: Tone | undefined; bold?: boolean; gap?: boolean } = {}): Block => ({
  kind: 'line',
  segments: [{ text, tone: extra.tone, ...(extra.bold && { bold: true }) }],
  ...(extra.gap && { gap: true }),
});

// ---- pools ----

export interface PoolsViewProps {
  pools: readonly PoolRow[];
  verbose: boolean;
  /** Draw the usage bar (a terminal). */
  bar: boolean;
  color: boolean;
}

const HOLDER_COLUMNS: Column[] = [{ header: 'IP' }, { header: 'SHARING KEY' }, { header: 'HELD BY' }];

/** One row per pool; with -v, every held address and its holders. */
export function poolsBlocks({ pools, verbose, bar }: Omit<PoolsViewProps, 'color'>): Block[] {
  if (pools.length === 0) return [line('No address pools are configured.')];
  const columns: Column[] = [
    { header: 'NAME' },
    { header: 'SOURCE' },
    { header: 'PROTOCOL' },
    { header: 'AUTO-ASSIGN' },
    { header: 'SERVES' },
    { header: 'SIZE', align: 'right' },
    { header: 'USED', align: 'right' },
    { header: 'FREE', align: 'right' },
    { header: 'USED%', align: 'right' },
    ...(bar ? [{ header: '' }] : []),
    { header: 'RANGES' },
  ];
  const rows = pools.map((p): Cell[] => [
    p.name,
    p.source,
    p.protocols.length > 0 ? p.protocols.join('+') : { text: 'none', tone: 'warn' },
    p.autoAssign ? 'yes' : 'no',
    p.serves,
    p.display.size,
    p.display.used,
    p.display.free,
    { text: p.display.percentUsed, tone: p.percentUsed >= 100 ? 'bad' : p.percentUsed >= 90 ? 'warn' : undefined },
    ...(bar ? [usageBar(p.percentUsed)] : []),
    p.ranges.join(', '),
  ]);
  const blocks: Block[] = [{ kind: 'table', columns, rows }];
  if (verbose) {
    for (const p of pools) {
      blocks.push(line(`${p.name}: ${p.display.used} of ${p.display.size} addresses in use`, { bold: true, gap: true }));
      const held = p.addresses ?? [];
      if (held.length === 0) blocks.push(line(' no address is held'));
      else blocks.push({ kind: 'table', indent: 2, columns: HOLDER_COLUMNS, rows: held.map((a) => [a.ip, a.sharingKey ?? '-', a.holders.join(', ')]) });
    }
  }
  return blocks;
}

export const drawPools = (props: PoolsViewProps): string => writeBlocks(poolsBlocks(props), props.color);

// ---- services ----

export interface ServicesViewProps {
  services: readonly ServiceRow[];
  /** The namespace listed (no NAMESPACE column then), or null for all. */
  namespace: string | null;
  color: boolean;
}

const SERVICE_TONE: Record<ServiceRow['status'], Tone> = { ok: 'ok', pending: 'warn', 'not announced': 'bad', 'config error': 'bad' };

/** A list of nodes that fits a column: the names, or how many when there are more than three. */
const nodeList = (nodes: readonly string[]): string => (nodes.length > 3 ? `${nodes.length} nodes` : nodes.join(','));

/**
 * The announcing node (layer 2), and what ServiceL2Status says when that differs; the nodes
 * advertising it over BGP.
 */
function nodeCell(s: ServiceRow): Cell {
  const bgp = s.protocols.includes('bgp') ? nodeList(s.advertisingNodes) : '';
  const computed = s.announcingNodes.join(',');
  const published = s.statusNodes.join(',');
  if (!s.protocols.includes('layer2') && published === '') return bgp || '-';
  const both = (l2: string) => (bgp ? `${l2}; bgp ${bgp}` : l2);
  if (computed === published) return both(computed || '-');
  return { text: both(`${computed || '-'} (status: ${published || 'none'})`), tone: 'warn' };
}

/** One row per LoadBalancer Service, then why each one that is not ok is not. */
export function servicesBlocks({ services, namespace }: Omit<ServicesViewProps, 'color'>): Block[] {
  if (services.length === 0) return [line(`No LoadBalancer Services found${namespace !== null ? ` in namespace ${namespace}` : ''}.`)];
  const columns: Column[] = [
    ...(namespace === null ? [{ header: 'NAMESPACE' }] : []),
    { header: 'NAME' },
    { header: 'IPS' },
    { header: 'POOL' },
    { header: 'PROTOCOL' },
    { header: 'NODE' },
    { header: 'SHARING' },
    { header: 'STATUS' },
  ];
  const rows = services.map((s): Cell[] => [
    ...(namespace === null ? [s.namespace] : []),
    s.name,
    s.ips.length > 0 ? s.ips.join(',') : '<pending>',
    s.pool ?? '-',
    s.protocols.length > 0 ? s.protocols.join('+') : '-',
    nodeCell(s),
    s.sharingKey ?? '-',
    { text: s.status, tone: SERVICE_TONE[s.status] },
  ]);
  const troubled = services.filter((s) => s.status !== 'ok');
  return [{ kind: 'table', columns, rows }, ...troubled.map((s, i) => line(`${s.namespace}/${s.name}: ${s.status}: ${s.reason}${s.fix ? `; ${s.fix}` : ''}`, { gap: i === 0 }))];
}

export const drawServices = (props: ServicesViewProps): string => writeBlocks(servicesBlocks(props), props.color);

// ---- peers ----

export interface PeersViewProps {
  sessions: readonly PeerRow[];
  established: number;
  total: number;
  now: string;
  color: boolean;
}

const PEER_COLUMNS: Column[] = [
  { header: 'NODE' },
  { header: 'PEER' },
  { header: 'ADDRESS' },
  { header: 'ASN', align: 'right' },
  { header: 'STATE' },
  { header: 'SENT', align: 'right' },
  { header: 'RECEIVED', align: 'right' },
  { header: 'HOLD', align: 'right' },
  { header: 'BFD' },
  { header: 'LAST ERROR' },
];

function stateCell(s: PeerRow, now: string): Cell {
  const since = s.since ? ` ${s.state === 'Established' ? 'for' : 'since'} ${age(s.since, now)}` : '';
  if (s.state === 'Established') return { text: `Established${since}`, tone: 'ok' };
  if (s.state === 'unknown') return { text: 'unknown (no status published)', tone: 'warn' };
  return { text: `${s.state}${since}`, tone: 'bad' };
}

const count = (n: number | null) => (n === null ? '-' : String(n));

/** One row per node x peer session, and how many are established. */
export function peersBlocks({ sessions, established, total, now }: Omit<PeersViewProps, 'color'>): Block[] {
  if (total === 0) return [line('No BGP sessions: no BGPPeer is configured for these nodes.')];
  const rows = sessions.map((s): Cell[] => [
    s.node,
    s.peer ?? { text: '(not configured)', tone: 'warn' },
    s.address,
    count(s.asn),
    stateCell(s, now),
    count(s.prefixesSent),
    count(s.prefixesReceived),
    s.holdTime === null ? '-' : `${s.holdTime}s`,
    s.bfd ?? '-',
    s.lastError ?? '-',
  ]);
  return [
    { kind: 'table', columns: PEER_COLUMNS, rows },
    line(`${established} of ${total} session${total === 1 ? '' : 's'} established`, { tone: established === total ? 'ok' : 'warn', gap: true }),
  ];
}

export const drawPeers = (props: PeersViewProps): string => writeBlocks(peersBlocks(props), props.color);

// ---- simulate drain ----

const DRAIN_COLUMNS: Column[] = [{ header: 'SERVICE' }, { header: 'IP' }, { header: 'MOVES TO' }];
const WITHDRAWN_COLUMNS: Column[] = [{ header: 'PREFIX' }, { header: 'PEER' }, { header: 'SERVICES' }, { header: 'STILL FROM' }];

/** Each layer-2 address the node answers for and where it would go; each BGP route it sends and who still sends it. */
export function drainBlocks({ report }: { report: DrainReport }): Block[] {
  const n = report.moves.length;
  const w = report.withdrawn.length;
  if (n === 0 && w === 0 && report.unannounced.length === 0)
    return [line(`${report.node} announces no layer-2 address, advertises no BGP route and runs no Service's last ready pod: draining it moves nothing.`)];
  return [
    ...(n > 0
      ? [
          line(`If ${report.node} went away (${n} address${n === 1 ? '' : 'es'}):`),
          {
            kind: 'table' as const,
            columns: DRAIN_COLUMNS,
            rows: report.moves.map((m): Cell[] => [m.service, m.ip, m.to ? m.to : { text: `nobody: ${m.reason ?? ''}`, tone: 'bad' }]),
          },
        ]
      : []),
    ...(w > 0
      ? [
          line(`BGP routes ${report.node} would withdraw (${w}):`, { gap: n > 0 }),
          {
            kind: 'table' as const,
            columns: WITHDRAWN_COLUMNS,
            rows: report.withdrawn.map((r): Cell[] => [
              r.prefix,
              r.peer,
              r.services.join(','),
              r.stillFrom.length > 0 ? nodeList(r.stillFrom) : { text: 'nobody: the peer loses the route', tone: 'bad' },
            ]),
          },
        ]
      : []),
    ...(report.unannounced.length > 0
      ? [line(`left unannounced: ${report.unannounced.join(', ')}`, { tone: 'bad', gap: n > 0 || w > 0 }), ...report.why.map((x) => line(`  ${x.service}: ${x.reason}`))]
      : []),
  ];
}

export const drawDrain = (props: { report: DrainReport; color: boolean }): string => writeBlocks(drainBlocks(props), props.color);
