/**
 * A kubectl-style table: upper-case headers, columns three spaces apart, numbers right-aligned,
 * colour only when told. Draws what it is given.
 */
import { Box, Text } from 'ink';
import type { ReactNode } from 'react';

/** Colours a cell may ask for (used only when the view is told to colour). */
export type Tone = 'ok' | 'warn' | 'bad' | 'dim';

/** One cell: text, or text with a tone. */
export type Cell = string | { text: string; tone?: Tone };

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

const COLORS: Record<Tone, string | undefined> = { ok: 'green', warn: 'yellow', bad: 'red', dim: undefined };

const textOf = (c: Cell): string => (typeof c === 'string' ? c : c.text);

/** A piece of text in a tone (plain when `color` is false). */
export function Toned({ tone, color, children }: { tone?: Tone | undefined; color: boolean; children: ReactNode }) {
  if (!color || !tone) return <Text>{children}</Text>;
  return tone === 'dim' ? <Text dimColor>{children}</Text> : <Text color={COLORS[tone]}>{children}</Text>;
}

/** The width of a Table's widest line, for drawing it without wrapping. */
export function tableWidth(columns: readonly Column[], rows: readonly (readonly Cell[])[], indent = 0): number {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => [...textOf(r[i] ?? '')].length)));
  return indent + widths.reduce((a, b) => a + b, 0) + 3 * Math.max(0, columns.length - 1);
}

export function Table({ columns, rows, color, indent = 0 }: { columns: readonly Column[]; rows: readonly (readonly Cell[])[]; color: boolean; indent?: number }) {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => [...textOf(r[i] ?? '')].length)));
  const pad = (text: string, i: number) => {
    const width = widths[i] ?? 0;
    const fill = ' '.repeat(Math.max(0, width - [...text].length));
    return columns[i]?.align === 'right' ? fill + text : text + fill;
  };
  const last = columns.length - 1;
  const lead = ' '.repeat(indent);
  return (
    <Box flexDirection="column">
      <Text bold={color}>
        {lead}
        {columns
          .map((c, i) => (i === last && c.align !== 'right' ? c.header : pad(c.header, i)))
          .join('   ')
          .trimEnd()}
      </Text>
      {rows.map((row, r) =>
        // Without colour a row is one piece of text: a thousand rows lay out in a tenth of the time.
        !color ? (
          <Text key={r}>
            {lead}
            {row
              .map((cell, i) => (i === last && columns[i]?.align !== 'right' ? textOf(cell) : pad(textOf(cell), i)))
              .join('   ')
              .trimEnd()}
          </Text>
        ) : (
          <Text key={r}>
            {lead}
            {row.map((cell, i) => {
              const text = textOf(cell);
              const shown = i === last && columns[i]?.align !== 'right' ? text : pad(text, i);
              return (
                <Toned key={i} color={color} tone={typeof cell === 'string' ? undefined : cell.tone}>
                  {i > 0 ? '   ' : ''}
                  {shown}
                </Toned>
              );
            })}
          </Text>
        ),
      )}
    </Box>
  );
}

/** `[#####.....]` for a share of 0..100, toned by how full it is. */
export function usageBar(percent: number, width = 10): Cell {
  const filled = Math.min(width, Math.round((percent / 100) * width));
  const shown = percent > 0 && filled === 0 ? 1 : filled;
  return { text: `[${'#'.repeat(shown)}${'.'.repeat(width - shown)}]`, tone: percent >= 90 ? 'bad' : percent >= 75 ? 'warn' : 'ok' };
}
