/** `kubectl metallb pools`: one row per pool; with -v, every held address and its holders. */
import { Box, Text } from 'ink';
import { draw } from './render.js';
import type { PoolRow } from '../../core/diagnose/index.js';
import { Table, tableWidth, usageBar, type Cell, type Column } from './table.js';

export interface PoolsViewProps {
  pools: readonly PoolRow[];
  verbose: boolean;
  /** Draw the usage bar (a terminal). */
  bar: boolean;
  color: boolean;
}

/** The pools table: its columns and rows. */
function poolTable({ pools, bar }: Pick<PoolsViewProps, 'pools' | 'bar'>): { columns: Column[]; rows: Cell[][] } {
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
  return { columns, rows };
}

const HOLDER_COLUMNS: Column[] = [{ header: 'IP' }, { header: 'SHARING KEY' }, { header: 'HELD BY' }];
const holderRows = (p: PoolRow): Cell[][] => (p.addresses ?? []).map((a) => [a.ip, a.sharingKey ?? '-', a.holders.join(', ')]);

export function PoolsView({ pools, verbose, bar, color }: PoolsViewProps) {
  if (pools.length === 0) return <Text>No address pools are configured.</Text>;
  const { columns, rows } = poolTable({ pools, bar });
  return (
    <Box flexDirection="column">
      <Table columns={columns} rows={rows} color={color} />
      {verbose &&
        pools.map((p) => (
          <Box key={p.name} flexDirection="column" marginTop={1}>
            <Text bold={color}>
              {p.name}: {p.display.used} of {p.display.size} addresses in use
            </Text>
            {(p.addresses ?? []).length === 0 ? <Text> no address is held</Text> : <Table indent={2} color={color} columns={HOLDER_COLUMNS} rows={holderRows(p)} />}
          </Box>
        ))}
    </Box>
  );
}

/** The view as text. */
export function drawPools(props: PoolsViewProps): string {
  const { columns, rows } = poolTable(props);
  const width = Math.max(tableWidth(columns, rows), ...(props.verbose ? props.pools.map((p) => 2 + tableWidth(HOLDER_COLUMNS, holderRows(p))) : []), 60);
  return draw(<PoolsView {...props} />, width);
}
