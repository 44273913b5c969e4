/**
 * The views (pools, services, peers, simulate drain, explain) as data: a column of blocks, each a
 * kubectl-style table or a line of styled pieces. Two renderers read it and draw the same bytes:
 * ink (table.tsx's Blocks component) and `writeBlocks` here, plain string building, which the
 * commands use. ink lays a frame out character by character (a cell object per character of
 * every line), about 0.4 ms a row, and loading it costs about 100 ms: a thousand Services took
 * half a second to draw, more than the cluster reads. blocks.test.tsx holds the two renderers
 * equal, with and without colour.
 *
 * No ink import here.
 */

/** Colours a cell may ask for (used only when the view is told to colour). */
export type Tone = 'ok' | 'warn' | 'bad' | 'dim';

/** One cell: text, or text with a tone. */
export type Cell = string | { text: string; tone?: Tone | undefined };

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/** A piece of a line, in a tone and/or bold (both ignored without colour). */
export interface Segment {
  text: string;
  tone?: Tone | undefined;
  bold?: boolean;
}

/** `gap`: a blank line before the block (ink's marginTop of 1). */
export type Block =
  { kind: 'table'; columns: readonly Column[]; rows: readonly (readonly Cell[])[]; indent?: number; gap?: boolean } | { kind: 'line'; segments: readonly Segment[]; gap?: boolean };

/**
 * Text from the cluster, made safe for one line of a terminal: event messages, BGP errors and
 * the like are written by other programs, and may hold line breaks or escape sequences that
 * would redraw the user's screen. Control characters become spaces (a run of them, one space).
 * Both renderers apply it to every piece of text they draw.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g;
export const oneLine = (text: string): string => text.replace(CONTROL, ' ');

/** ink's colour names for the tones. */
export const TONE_COLOR: Record<Tone, string | undefined> = { ok: 'green', warn: 'yellow', bad: 'red', dim: undefined };

export const textOf = (c: Cell): string => oneLine(typeof c === 'string' ? c : c.text);
const toneOf = (c: Cell): Tone | undefined => (typeof c === 'string' ? undefined : c.tone);
const HIGH_SURROGATE = /[\ud800-\udbff]/g;
/** Characters (code points) in a text: its UTF-16 length less one for each surrogate pair. */
const length = (text: string): number => {
  let n = text.length;
  HIGH_SURROGATE.lastIndex = 0;
  while (HIGH_SURROGATE.exec(text) !== null) n--;
  return n;
};

/** Each cell's text, made one line, once: a table of 1,000 rows has 8,000 of them. */
const cellTexts = (rows: readonly (readonly Cell[])[], n: number): string[][] => rows.map((r) => Array.from({ length: n }, (_, i) => textOf(r[i] ?? '')));

function columnWidths(columns: readonly Column[], texts: readonly (readonly string[])[]): number[] {
  return columns.map((c, i) => {
    let w = c.header.length;
    for (const r of texts) w = Math.max(w, length(r[i]!));
    return w;
  });
}

/** The width of a table's widest line, for drawing it without wrapping. */
export function tableWidth(columns: readonly Column[], rows: readonly (readonly Cell[])[], indent = 0): number {
  return indent + columnWidths(columns, cellTexts(rows, columns.length)).reduce((a, b) => a + b, 0) + 3 * Math.max(0, columns.length - 1);
}

/**
 * A table's lines as segments: upper-case headers (bold with colour), columns three spaces
 * apart, numbers right-aligned, the last column not padded. Without colour a row is one piece
 * (ink draws one piece of text faster than ten); with colour each cell carries the separator
 * before it and its tone.
 */
export function tableSegments(columns: readonly Column[], rows: readonly (readonly Cell[])[], color: boolean, indent = 0): Segment[][] {
  const texts = cellTexts(rows, columns.length);
  const widths = columnWidths(columns, texts);
  const last = columns.length - 1;
  const lead = ' '.repeat(indent);
  const shown = (text: string, i: number): string => {
    if (i === last && columns[i]?.align !== 'right') return text;
    const fill = ' '.repeat(Math.max(0, (widths[i] ?? 0) - length(text)));
    return columns[i]?.align === 'right' ? fill + text : text + fill;
  };
  const header: Segment = {
    text:
      lead +
      columns
        .map((c, i) => shown(c.header, i))
        .join('   ')
        .trimEnd(),
    bold: true,
  };
  const body = texts.map((row, r): Segment[] => {
    if (!color)
      return [
        {
          text:
            lead +
            row
              .map((text, i) => shown(text, i))
              .join('   ')
              .trimEnd(),
        },
      ];
    return [{ text: lead }, ...row.map((text, i): Segment => ({ text: (i > 0 ? '   ' : '') + shown(text, i), tone: toneOf(rows[r]![i] ?? '') }))];
  });
  return [[header], ...body];
}

/** `[#####.....]` for a share of 0..100, toned by how full it is. */
export function usageBar(percent: number, width = 10): Cell {
  const filled = Math.min(width, Math.round((percent / 100) * width));
  const shown = percent > 0 && filled === 0 ? 1 : filled;
  return { text: `[${'#'.repeat(shown)}${'.'.repeat(width - shown)}]`, tone: percent >= 90 ? 'bad' : percent >= 75 ? 'warn' : 'ok' };
}

// SGR codes as ink (chalk) writes them: each style opened before its text and closed after.
type Style = 'bold' | 'dim' | 'green' | 'yellow' | 'red';
const OPEN: Record<Style, string> = { bold: '\x1b[1m', dim: '\x1b[2m', green: '\x1b[32m', yellow: '\x1b[33m', red: '\x1b[31m' };
const CLOSE: Record<Style, string> = { bold: '\x1b[22m', dim: '\x1b[22m', green: '\x1b[39m', yellow: '\x1b[39m', red: '\x1b[39m' };

function stylesOf(s: Segment, color: boolean): Style[] {
  if (!color) return [];
  const styles: Style[] = [];
  if (s.bold) styles.push('bold');
  if (s.tone === 'dim') styles.push('dim');
  else if (s.tone !== undefined) styles.push(TONE_COLOR[s.tone] as Style);
  return styles;
}

/**
 * The codes from one style to the next, as ink writes them (it re-encodes every character's
 * style, @alcalzone/ansi-tokenize): styles ended in reverse order, each end code once; a colour
 * replaced by another is not ended; then the new styles opened.
 */
function transition(from: readonly Style[], to: readonly Style[]): string {
  const ended = from.filter((st) => (st === 'bold' || st === 'dim' ? !to.includes(st) : !to.some((n) => CLOSE[n] === CLOSE[st])));
  const codes = [...ended.reverse().map((st) => CLOSE[st]), ...to.filter((st) => !from.includes(st)).map((st) => OPEN[st])];
  return [...new Set(codes)].join('');
}

/** One line of segments as text. */
function writeLine(segments: readonly Segment[], color: boolean): string {
  if (!color) {
    let plain = '';
    for (const s of segments) plain += oneLine(s.text);
    return plain.trimEnd();
  }
  let out = '';
  let open: Style[] = [];
  for (const s of segments) {
    if (s.text === '') continue;
    const styles = stylesOf(s, color);
    out += transition(open, styles) + oneLine(s.text);
    open = styles;
  }
  return (out + transition(open, [])).trimEnd();
}

/** The blocks as text, as ink would draw them (lines end trimmed, no final newline). */
export function writeBlocks(blocks: readonly Block[], color: boolean): string {
  const lines: string[] = [];
  for (const b of blocks) {
    if (b.gap) lines.push('');
    const rows = b.kind === 'line' ? [b.segments] : tableSegments(b.columns, b.rows, color, b.indent);
    // ink gives a line of no text at all no height: it is not drawn.
    for (const row of rows) if (row.some((s) => s.text !== '')) lines.push(writeLine(row, color));
  }
  return lines.join('\n');
}
