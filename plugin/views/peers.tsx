/** `kubectl metallb peers`: one row per node x peer session, and how many are established. */
import { Box, Text } from 'ink';
import { draw } from './render.js';
import type { PeerRow } from '../../core/diagnose/index.js';
import { age } from './explain.js';
import { Table, tableWidth, type Cell, type Column } from './table.js';

export interface PeersViewProps {
  sessions: readonly PeerRow[];
  established: number;
  total: number;
  now: string;
  color: boolean;
}

function stateCell(s: PeerRow, now: string): Cell {
  const since = s.since ? ` ${s.state === 'Established' ? 'for' : 'since'} ${age(s.since, now)}` : '';
  if (s.state === 'Established') return { text: `Established${since}`, tone: 'ok' };
  if (s.state === 'unknown') return { text: 'unknown (no status published)', tone: 'warn' };
  return { text: `${s.state}${since}`, tone: 'bad' };
}

const count = (n: number | null) => (n === null ? '-' : String(n));

const COLUMNS: Column[] = [
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

function sessionRows(sessions: readonly PeerRow[], now: string): Cell[][] {
  return sessions.map((s) => [
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
}

export function PeersView({ sessions, established, total, now, color }: PeersViewProps) {
  if (total === 0) return <Text>No BGP sessions: no BGPPeer is configured for these nodes.</Text>;
  return (
    <Box flexDirection="column">
      <Table color={color} columns={COLUMNS} rows={sessionRows(sessions, now)} />
      <Box marginTop={1}>
        <Text color={color ? (established === total ? 'green' : 'yellow') : undefined}>
          {established} of {total} session{total === 1 ? '' : 's'} established
        </Text>
      </Box>
    </Box>
  );
}

/** The view as text. */
export function drawPeers(props: PeersViewProps): string {
  return draw(<PeersView {...props} />, Math.max(tableWidth(COLUMNS, sessionRows(props.sessions, props.now)), 60));
}
