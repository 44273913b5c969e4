/** `kubectl metallb services`: one row per LoadBalancer Service, then why each one that is not ok is not. */
import { Box, Text } from 'ink';
import { draw, widest } from './render.js';
import type { ServiceRow } from '../../core/diagnose/index.js';
import { Table, tableWidth, type Cell, type Column, type Tone } from './table.js';

export interface ServicesViewProps {
  services: readonly ServiceRow[];
  /** The namespace listed (no NAMESPACE column then), or null for all. */
  namespace: string | null;
  color: boolean;
}

const TONE: Record<ServiceRow['status'], Tone> = { ok: 'ok', pending: 'warn', 'not announced': 'bad', 'config error': 'bad' };

/** The announcing node(s), and what ServiceL2Status says when that differs. */
function nodeCell(s: ServiceRow): Cell {
  const computed = s.announcingNodes.join(',');
  const published = s.statusNodes.join(',');
  if (computed === published || (!s.protocols.includes('layer2') && published === '')) return computed || (s.protocols.includes('bgp') ? '(bgp)' : '-');
  return { text: `${computed || '-'} (status: ${published || 'none'})`, tone: 'warn' };
}

/** The Services table: its columns and rows. */
function serviceTable({ services, namespace }: Pick<ServicesViewProps, 'services' | 'namespace'>): { columns: Column[]; rows: Cell[][] } {
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
    { text: s.status, tone: TONE[s.status] },
  ]);
  return { columns, rows };
}

/** The line under the table for a Service that is not ok. */
const reasonLine = (s: ServiceRow) => `${s.namespace}/${s.name}: ${s.status}: ${s.reason}${s.fix ? `; ${s.fix}` : ''}`;

export function ServicesView({ services, namespace, color }: ServicesViewProps) {
  if (services.length === 0) return <Text>No LoadBalancer Services found{namespace !== null ? ` in namespace ${namespace}` : ''}.</Text>;
  const { columns, rows } = serviceTable({ services, namespace });
  const troubled = services.filter((s) => s.status !== 'ok');
  return (
    <Box flexDirection="column">
      <Table columns={columns} rows={rows} color={color} />
      {troubled.length > 0 && (
        <Box flexDirection="column" marginTop={1}>
          {troubled.map((s) => (
            <Text key={`${s.namespace}/${s.name}`}>{reasonLine(s)}</Text>
          ))}
        </Box>
      )}
    </Box>
  );
}

/** The view as text. */
export function drawServices(props: ServicesViewProps): string {
  const { columns, rows } = serviceTable(props);
  const width = Math.max(tableWidth(columns, rows), widest(props.services.filter((s) => s.status !== 'ok').map(reasonLine)), 60);
  return draw(<ServicesView {...props} />, width);
}
