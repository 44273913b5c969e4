/**
 * ink components for the list model of blocks.ts: a kubectl-style table, a styled line, a
 * column of blocks. They draw what they are given, colour only when told.
 */
import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import { oneLine, tableSegments, TONE_COLOR, type Block, type Cell, type Column, type Segment, type Tone } from './blocks.js';

export { tableWidth, usageBar, type Cell, type Column, type Tone } from './blocks.js';

/** A piece of text in a tone (plain when `color` is false). */
export function Toned({ tone, color, children }: { tone?: Tone | undefined; color: boolean; children: ReactNode }) {
  if (!color || !tone) return <Text>{children}</Text>;
  return tone === 'dim' ? <Text dimColor>{children}</Text> : <Text color={TONE_COLOR[tone]}>{children}</Text>;
}

/** One line of segments. */
function Line({ segments, color }: { segments: readonly Segment[]; color: boolean }) {
  return (
    <Text>
      {segments.map((s, i) => (
        <Text key={i} bold={color && s.bold === true}>
          <Toned color={color} tone={s.tone}>
            {oneLine(s.text)}
          </Toned>
        </Text>
      ))}
    </Text>
  );
}

export function Table({ columns, rows, color, indent = 0 }: { columns: readonly Column[]; rows: readonly (readonly Cell[])[]; color: boolean; indent?: number }) {
  return (
    <Box flexDirection="column">
      {tableSegments(columns, rows, color, indent).map((line, i) => (
        <Line key={i} segments={line} color={color} />
      ))}
    </Box>
  );
}

/** A column of blocks (blocks.ts), as writeBlocks writes them. */
export function Blocks({ blocks, color }: { blocks: readonly Block[]; color: boolean }) {
  return (
    <Box flexDirection="column">
      {blocks.map((b, i) => (
        <Box key={i} flexDirection="column" marginTop={b.gap ? 1 : 0}>
          {b.kind === 'table' ? <Table columns={b.columns} rows={b.rows} color={color} indent={b.indent ?? 0} /> : <Line segments={b.segments} color={color} />}
        </Box>
      ))}
    </Box>
  );
}
