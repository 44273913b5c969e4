/**
 * The string writer draws exactly what ink draws, byte for byte, with and without colour: the
 * long lists go through the writer, a screenful through ink, and nobody must see a difference.
 */
import { seededRandom } from '../../core/seeded.js';
import type { ServiceRow } from '../../core/diagnose/index.js';
import { drawServices, servicesBlocks } from './lists.js';
import { tableWidth, writeBlocks, type Block, type Cell, type Column, type Segment, type Tone } from './blocks.js';

// ink's colours come from chalk, which decides on loading whether it may colour: force it, then load.
process.env.FORCE_COLOR = '1';
const { draw } = await import('./render.js');
const { Blocks } = await import('./table.js');

/** The blocks as ink draws them for a command: as wide as their widest line, so that nothing wraps. */
function drawWithInk(blocks: readonly Block[], color: boolean): string {
  let width = 60;
  for (const b of blocks) width = Math.max(width, b.kind === 'table' ? tableWidth(b.columns, b.rows, b.indent) : [...b.segments.map((s) => s.text).join('')].length);
  return draw(<Blocks blocks={blocks} color={color} />, width);
}

const random = seededRandom(20261202);
const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const int = (n: number) => Math.floor(random() * n);
const TONES: (Tone | undefined)[] = [undefined, undefined, 'ok', 'warn', 'bad', 'dim'];
const word = () => pick(['', 'web', 'default', '203.0.113.7', '2001:db8::1', '<pending>', 'a b', 'layer2+bgp', 'x'.repeat(int(30)), 'node-1 (status: none)']);
const cell = (): Cell => (random() < 0.5 ? word() : { text: word(), tone: pick(TONES) });
const segment = (): Segment => ({ text: word() + pick(['', ' ', ': ']), tone: pick(TONES), ...(random() < 0.2 && { bold: true }) });

function blocks(): Block[] {
  const out: Block[] = [];
  for (let b = 0, n = 1 + int(4); b < n; b++) {
    const gap = b > 0 && random() < 0.4;
    if (random() < 0.5) {
      const columns: Column[] = Array.from({ length: 1 + int(6) }, () => ({
        header: pick(['NAME', 'IP', '', 'USED%', 'LAST ERROR']),
        ...(random() < 0.3 && { align: 'right' as const }),
      }));
      const rows = Array.from({ length: int(6) }, () => columns.map(cell));
      out.push({ kind: 'table', columns, rows, ...(random() < 0.3 && { indent: int(4) }), ...(gap && { gap }) });
    } else out.push({ kind: 'line', segments: Array.from({ length: 1 + int(4) }, segment), ...(gap && { gap }) });
  }
  return out;
}

describe('writeBlocks', () => {
  it.each([false, true])('draws 300 seeded lists as ink does (colour: %s)', (color) => {
    for (let i = 0; i < 300; i++) {
      const b = blocks();
      expect([i, writeBlocks(b, color)]).toEqual([i, drawWithInk(b, color)]);
    }
  });

  it('puts text from the cluster on one line, without its escape sequences', () => {
    const hostile: Block[] = [
      { kind: 'line', segments: [{ text: 'a\x1b[2Jb\r\nc\u009b' }] },
      { kind: 'table', columns: [{ header: 'X\tY' }], rows: [['\x07bell']] },
    ];
    expect(writeBlocks(hostile, false)).toBe('a [2Jb c\nX Y\n bell');
    expect(drawWithInk(hostile, false)).toBe(writeBlocks(hostile, false));
  });

  it('pads by characters, not UTF-16 units: a letter outside the BMP counts once', () => {
    // U+1D4B3 (two UTF-16 units, one column), then e with an acute accent.
    const b: Block[] = [
      {
        kind: 'table',
        columns: [{ header: 'A' }, { header: 'B' }],
        rows: [
          ['\u{1d4b3}\u{1d4b3}', 'x'],
          ['\u00e9', 'y'],
        ],
      },
    ];
    expect(writeBlocks(b, false)).toBe('A    B\n\u{1d4b3}\u{1d4b3}   x\n\u00e9    y');
    expect(writeBlocks(b, false)).toBe(drawWithInk(b, false));
  });

  it('colours with the codes ink uses, and only when told', () => {
    const b: Block[] = [{ kind: 'table', columns: [{ header: 'NAME' }, { header: 'STATUS' }], rows: [['web', { text: 'ok', tone: 'ok' }]] }];
    expect(writeBlocks(b, true)).toBe('\x1b[1mNAME   STATUS\x1b[22m\nweb \x1b[32m   ok\x1b[39m');
    expect(writeBlocks(b, false)).toBe('NAME   STATUS\nweb    ok');
  });

  it('a long list of Services, drawn by the writer, is what ink draws', () => {
    const services = Array.from({ length: 150 }, (_, i): ServiceRow => ({
      namespace: `ns-${i % 7}`,
      name: `svc-${i}`,
      ips: i % 13 === 0 ? [] : [`203.0.113.${i % 250}`],
      pool: i % 13 === 0 ? null : 'demo',
      protocols: ['layer2'],
      announcingNodes: i % 5 === 0 ? [] : [`node-${i % 3}`],
      statusNodes: [`node-${i % 3}`],
      advertisingNodes: [],
      bgpPeers: [],
      sharingKey: i % 4 === 0 ? 'key' : null,
      sharedWith: [],
      trafficPolicy: 'Cluster',
      status: i % 13 === 0 ? 'pending' : i % 5 === 0 ? 'not announced' : 'ok',
      reason: 'the pool is full',
      fix: i % 13 === 0 ? 'add addresses to pool demo' : null,
    }));
    for (const color of [false, true]) {
      const b = servicesBlocks({ services, namespace: null });
      expect(drawServices({ services, namespace: null, color })).toBe(drawWithInk(b, color));
    }
  });
});
