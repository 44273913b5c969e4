/** `kubectl metallb simulate drain NODE`: each layer-2 address the node answers for, and where it would go. */
import { Box, Text } from 'ink';
import { draw, widest } from './render.js';
import type { DrainReport } from '../../core/diagnose/index.js';
import { Table, tableWidth, type Cell, type Column } from './table.js';

const COLUMNS: Column[] = [{ header: 'SERVICE' }, { header: 'IP' }, { header: 'MOVES TO' }];
const moveRows = (report: DrainReport): Cell[][] => report.moves.map((m) => [m.service, m.ip, m.to ? m.to : { text: `nobody: ${m.reason ?? ''}`, tone: 'bad' }]);

export function DrainView({ report, color }: { report: DrainReport; color: boolean }) {
  if (report.moves.length === 0) return <Text>{report.node} announces no layer-2 address: draining it moves nothing.</Text>;
  return (
    <Box flexDirection="column">
      <Text>
        If {report.node} went away ({report.moves.length} address{report.moves.length === 1 ? '' : 'es'}):
      </Text>
      <Table color={color} columns={COLUMNS} rows={moveRows(report)} />
      {report.unannounced.length > 0 && (
        <Box marginTop={1}>
          <Text color={color ? 'red' : undefined}>left unannounced: {report.unannounced.join(', ')}</Text>
        </Box>
      )}
    </Box>
  );
}

/** The view as text. */
export function drawDrain(props: { report: DrainReport; color: boolean }): string {
  const width = Math.max(tableWidth(COLUMNS, moveRows(props.report)), 40 + props.report.node.length, widest([`left unannounced: ${props.report.unannounced.join(', ')}`]));
  return draw(<DrainView {...props} />, width);
}
