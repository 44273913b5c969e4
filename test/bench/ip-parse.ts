/**
 * A candidate for core/ip's parseIP and formatIP without ip-num, checked against them and timed.
 *
 * The controller calls parseIP about 14 times and formatIP about 26 times per Service it admits
 * and reconciles (13 and 20 per unchanged Service on a resync or a new leader's first pass),
 * and ip-num's IPv6 path (validation by regular expressions, then the value built through binary
 * strings) costs several times its IPv4 path: that is most of what an IPv6 Service costs the
 * controller more than an IPv4 one (see the admission bench). This file is not used by the
 * product: it shows that a direct parser gives the same answers, and how much faster it is.
 *
 *   npm run build && node dist/test/bench/ip-parse.js
 *
 * Exits 1 if the candidate disagrees with core/ip on any input tried (edge cases, then random
 * addresses of both families in canonical and non-canonical forms).
 */
import { performance } from 'node:perf_hooks';
import { formatIP, parseIP, type IP, type Parsed } from '../../core/ip/index.js';

const bad = (text: string): Parsed<IP> => ({ ok: false, error: `"${text}" is not an IP address` });

/** Dotted quad to its value, or undefined (no leading zeros, no empty parts, 0-255 each). */
function ipv4Value(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3 || (p.length > 1 && p[0] === '0')) return undefined;
    let n = 0;
    for (let i = 0; i < p.length; i++) {
      const d = p.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return undefined;
      n = n * 10 + d;
    }
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

/** Appends the 16-bit groups of `text` (hex, 1-4 digits, colon-separated; '' is none); false if malformed. */
function groups(text: string, out: number[]): boolean {
  if (text === '') return true;
  for (const g of text.split(':')) {
    if (g.length === 0 || g.length > 4) return false;
    let n = 0;
    for (let i = 0; i < g.length; i++) {
      const c = g.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) return false;
      n = n * 16 + d;
    }
    out.push(n);
  }
  return true;
}

/** parseIP without ip-num. */
export function fastParseIP(text: unknown): Parsed<IP> {
  if (typeof text !== 'string') return { ok: false, error: `${JSON.stringify(text)} is not an IP address` };
  if (!text.includes(':')) {
    const v = ipv4Value(text);
    return v === undefined ? bad(text) : { ok: true, value: { family: 'IPv4', value: BigInt(v) } };
  }
  let s = text;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) > 0) {
    // An embedded IPv4 address in the last 32 bits (::ffff:192.0.2.1).
    const v = ipv4Value(s.slice(lastColon + 1));
    if (v === undefined) return bad(text);
    tail = [v >>> 16, v & 0xffff];
    s = s.slice(0, lastColon + 1) + (s[lastColon - 1] === ':' ? '' : '0');
    if (!s.endsWith('::')) {
      s = s.slice(0, -1);
      if (s.endsWith(':')) s = s.slice(0, -1);
    }
  }
  const head: number[] = [];
  const rest: number[] = [];
  const gap = s.indexOf('::');
  if (gap >= 0) {
    if (s.indexOf('::', gap + 1) >= 0) return bad(text);
    if (!groups(s.slice(0, gap), head) || !groups(s.slice(gap + 2), rest)) return bad(text);
    if (head.length + rest.length + tail.length > 7) return bad(text);
  } else {
    if (!groups(s, head) || head.length + tail.length !== 8) return bad(text);
  }
  const all = [...head, ...new Array<number>(8 - head.length - rest.length - tail.length).fill(0), ...rest, ...tail];
  let hex = '';
  for (const g of all) hex += g.toString(16).padStart(4, '0');
  return { ok: true, value: { family: 'IPv6', value: BigInt(`0x${hex}`) } };
}

/** formatIP without ip-num: dotted quad, or RFC 5952 (lower case, longest run of two or more zero groups as ::, the first on a tie). */
export function fastFormatIP(ip: IP): string {
  if (ip.family === 'IPv4') {
    const n = Number(ip.value);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const hex = ip.value.toString(16).padStart(32, '0');
  const g: number[] = [];
  for (let i = 0; i < 32; i += 4) g.push(parseInt(hex.slice(i, i + 4), 16));
  let at = -1;
  let len = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > len) {
      at = i;
      len = j - i;
    }
    i = j;
  }
  const t = g.map((x) => x.toString(16));
  return at < 0 ? t.join(':') : `${t.slice(0, at).join(':')}::${t.slice(at + len).join(':')}`;
}

function inputs(): string[] {
  const edge = [
    '2001:db8::1',
    '::',
    '::1',
    '1::',
    '2001:db8:0:0:1:0:0:1',
    '2001:0db8::0001',
    '2001:DB8::A',
    'fe80::1:2:3:4',
    '::ffff:192.0.2.1',
    '::1.2.3.4',
    '1:2:3:4:5:6:1.2.3.4',
    '1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7::',
    '::2:3:4:5:6:7:8',
    '1:0:0:0:0:0:0:8',
    '0:0:0:0:0:0:0:0',
    'abcd:ef01:2345:6789:abcd:ef01:2345:6789',
    '2001:db8::1:0:0:1',
    '1.2.3.4',
    '255.255.255.255',
    '0.0.0.0',
    '01.2.3.4',
    '256.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    ' 1.2.3.4',
    '1::2::3',
    ':1',
    '1:',
    ':::',
    'g::1',
    '12345::',
    '1:2:3:4:5:6:7:8:9',
    'fe80::1%eth0',
    '',
  ];
  const random: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const hex = Array.from({ length: 32 }, () => (Math.random() < 0.5 ? '0' : Math.floor(Math.random() * 16).toString(16))).join('');
    const v = BigInt(`0x${hex}`);
    const six = formatIP({ family: 'IPv6', value: v });
    random.push(six, six.toUpperCase(), formatIP({ family: 'IPv4', value: BigInt.asUintN(32, v) }));
    // Non-canonical: every group written in full.
    random.push(hex.replace(/(.{4})(?!$)/g, '$1:'));
  }
  return [...edge, ...random];
}

function time(f: () => void, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return ((performance.now() - t0) / n) * 1000;
}

function main(): void {
  let differences = 0;
  const all = inputs();
  for (const text of all) {
    const a = parseIP(text);
    const b = fastParseIP(text);
    const same = a.ok === b.ok && (!a.ok || (b.ok && a.value.family === b.value.family && a.value.value === b.value.value));
    if (!same) {
      if (++differences <= 10)
        process.stdout.write(`parse differs on ${JSON.stringify(text)}: core/ip ${JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
      continue;
    }
    if (a.ok && formatIP(a.value) !== fastFormatIP(a.value)) {
      if (++differences <= 10) process.stdout.write(`format differs on ${text}: core/ip ${formatIP(a.value)}, candidate ${fastFormatIP(a.value)}\n`);
    }
  }
  process.stdout.write(`${all.length} inputs, ${differences} differences between core/ip and the candidate\n\n`);
  process.stdout.write('µs per call (median of 5 x 20,000)    parseIP   formatIP\n');
  const n = 20_000;
  for (const text of ['203.0.113.77', '2001:db8::1a2b']) {
    const ip = (parseIP(text) as { ok: true; value: IP }).value;
    for (const [name, parse, format] of [
      ['core/ip (ip-num)', parseIP, formatIP],
      ['candidate', fastParseIP, fastFormatIP],
    ] as const) {
      const p: number[] = [];
      const f: number[] = [];
      for (let r = 0; r < 5; r++) {
        p.push(time(() => parse(text), n));
        f.push(time(() => format(ip), n));
      }
      const med = (v: number[]) => [...v].sort((x, y) => x - y)[2] as number;
      process.stdout.write(`  ${(ip.family + ' ' + name).padEnd(26)} ${med(p).toFixed(2).padStart(9)}  ${med(f).toFixed(2).padStart(9)}\n`);
    }
  }
  if (differences > 0) process.exit(1);
}

main();
