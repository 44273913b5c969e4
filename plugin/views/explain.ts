/**
 * `kubectl metallb explain svc NAME`: the verdict in one line, the fix, then the evidence by
 * section, as blocks (blocks.ts): drawn by the string writer, which blocks.test.tsx holds equal
 * to ink's drawing of the same blocks. No ink import here.
 */
import type { Explanation, ServiceState } from '../../core/diagnose/index.js';
import { writeBlocks, type Block, type Segment, type Tone } from './blocks.js';
import { age } from './lists.js';

export interface ExplainViewProps {
  explanation: Explanation & { configuration: { source: string; errors: string[] } };
  /** The time the cluster was read (ISO), for the age of events. */
  now: string;
  color: boolean;
}

export { age };

const TONE: Record<ServiceState, Tone> = { ok: 'ok', pending: 'warn', 'not announced': 'bad', 'config error': 'bad' };

// Both renderers put text from the cluster on one line (blocks.ts's oneLine).
const text = (t: string, tone?: Tone): Segment => ({ text: t, tone });

/** A section: its title (bold, after a blank line), then its lines two spaces in. */
function section(title: string, body: (Segment[] | Block)[]): Block[] {
  return [
    { kind: 'line', segments: [{ text: title, bold: true }], gap: true },
    ...body.map((b): Block => (Array.isArray(b) ? { kind: 'line', segments: [{ text: '  ' }, ...b] } : b)),
  ];
}

const list = (xs: readonly string[], none: string): string => (xs.length > 0 ? xs.join(', ') : none);

export function explainBlocks({ explanation: e, now }: Omit<ExplainViewProps, 'color'>): Block[] {
  const r = e.request;
  const blocks: Block[] = [{ kind: 'line', segments: [{ text: `${e.namespace}/${e.name}: `, bold: true }, text(e.verdict, TONE[e.status])] }];
  if (e.fix) blocks.push({ kind: 'line', segments: [text(`fix: ${e.fix}`)] });

  blocks.push(
    ...section('Request', [
      [text(`addresses: ${r.requestedIPs.length > 0 ? r.requestedIPs.map((x) => `${x.value} (${x.from})`).join(', ') : 'none: the pool chooses'}`)],
      [text(`pool: ${r.pool ? `${r.pool.value} (${r.pool.from})` : 'any pool that auto-assigns'}`)],
      [text(`sharing key: ${r.sharingKey ? `${r.sharingKey.value} (${r.sharingKey.from})` : 'none: shares its IP with nobody'}`)],
      [text(`families: ${r.ipFamilyPolicy}${r.ipFamilies.length > 0 ? ` ${r.ipFamilies.join(', ')}` : ''}`)],
      ...(r.problem ? [[text(`cannot be read: ${r.problem}`, 'bad')]] : []),
    ]),
  );

  if (e.pools.length > 0) {
    blocks.push(
      ...section('Pools (in the order auto-assignment tries them)', [
        {
          kind: 'table',
          indent: 2,
          columns: [{ header: 'POOL' }, { header: 'FIT' }, { header: 'WHY' }],
          rows: e.pools.map((p) => [p.pool, { text: p.verdict, tone: p.verdict === 'no' ? 'dim' : 'ok' }, p.reason]),
        },
      ]),
    );
  }

  if (e.sharing) {
    blocks.push(
      ...section('Sharing', [
        [text(`key: ${e.sharing.key}`)],
        [text(`Services with the same key: ${list(e.sharing.partners, 'none')}`)],
        [text(`on the same IP: ${list(e.sharing.sameIP, 'none')}`)],
      ]),
    );
  }

  const t = e.traffic;
  blocks.push(
    ...section('Traffic', [
      [
        text(
          `externalTrafficPolicy ${t.policy}: ${t.policy === 'Local' ? 'only nodes with a ready endpoint may announce' : 'any eligible node may announce, kube-proxy forwards'}`,
        ),
      ],
      [
        text(
          `ready endpoints: ${t.readyEndpoints}${t.readyNodes.length > 0 ? ` on ${t.readyNodes.join(', ')}` : ''}${t.endpointsWithoutNode > 0 ? ` (${t.endpointsWithoutNode} without a node)` : ''}`,
        ),
      ],
    ]),
  );

  if (e.layer2.length > 0) {
    blocks.push(
      ...section('Layer 2 (core/announce)', [
        ...e.layer2.flatMap((l) => [
          [text(`${l.ip}: ${l.owner ? `announced by ${l.owner}${l.next ? `, next ${l.next}` : ', no other candidate'}` : `not announced: ${l.reason ?? ''}`}`)],
          [text(`  pool ${l.pool ?? '-'}, advertisements ${list(l.advertisements, 'none')}`)],
          ...(l.candidates.length > 0 ? [[text(`  candidates, best first: ${l.candidates.join(', ')}`)]] : []),
          ...l.ineligible.map((v) => [text(`  ${v.node}: ${v.reasons.join(', ')}`)]),
        ]),
        [text(`ServiceL2Status: ${list(e.statusNodes, 'none published')}`)],
      ]),
    );
  }

  if (e.bgpRoutes.length > 0 || e.bgp.length > 0) {
    const sessions = e.bgpSessions.map((c) => `${c.node} to ${c.peer}: ${c.state}${c.lastError ? ` (${c.lastError})` : ''}`);
    blocks.push(
      ...section('BGP (core/announce)', [
        ...e.bgpRoutes.flatMap((b) => [
          [text(`${b.ip}: ${b.nodes.length > 0 ? `advertised by ${b.nodes.join(', ')}` : `not advertised: ${b.reason ?? ''}`}`)],
          ...b.routes.map((r) => [
            text(
              `  ${r.prefix} to ${r.peer}${r.localPref !== null ? `, local-pref ${r.localPref}` : ''}${r.communities.length > 0 ? `, communities ${r.communities.join(' ')}` : ''}` +
                ` from ${r.nodes.join(', ')}`,
            ),
          ]),
          ...b.ineligible.map((v) => [text(`  ${v.node}: ${v.reasons.join(', ')}`)]),
        ]),
        ...(sessions.length > 0
          ? [[text(`sessions: ${sessions.join('; ')}`, e.bgpSessions.some((c) => c.state !== 'Established' && c.state !== 'unknown') ? 'warn' : undefined)]]
          : []),
        ...e.bgp.map((b) => [
          text(
            `${b.advertisement}: aggregation /${b.aggregationLength} (IPv6 /${b.aggregationLengthV6})${b.localPref !== null ? `, local-pref ${b.localPref}` : ''}` +
              `${b.communities.length > 0 ? `, communities ${b.communities.join(' ')}` : ''}, peers ${list(b.peers, 'none')}`,
          ),
        ]),
      ]),
    );
  }

  const c = e.configuration;
  if (c.errors.length > 0) {
    const n = `${c.errors.length} error(s)`;
    blocks.push(
      ...section('Configuration', [
        [
          text(
            c.source === 'last-good'
              ? `the current configuration is invalid (${n}); MetalLB keeps running on the last good one, which this uses`
              : `the current configuration is invalid (${n}) and no last good one is recorded`,
            'warn',
          ),
        ],
        ...c.errors.map((x) => [text(x)]),
      ]),
    );
  }

  if (e.disagreements.length > 0)
    blocks.push(
      ...section(
        'The cluster shows otherwise',
        e.disagreements.map((d) => [text(d, 'warn')]),
      ),
    );

  blocks.push(
    ...section('Events', [
      e.events.length === 0
        ? [text('none')]
        : {
            kind: 'table',
            indent: 2,
            columns: [{ header: 'TYPE' }, { header: 'REASON' }, { header: 'AGE', align: 'right' }, { header: 'COUNT', align: 'right' }, { header: 'MESSAGE' }],
            rows: e.events.map((v) => [{ text: v.type, tone: v.type === 'Warning' ? 'warn' : undefined }, v.reason, age(v.lastSeen, now), String(v.count), v.message]),
          },
    ]),
  );
  return blocks;
}

/** The view as text. */
export const drawExplain = (props: ExplainViewProps): string => writeBlocks(explainBlocks(props), props.color);
