/**
 * Go duration strings (`time.ParseDuration`), the way MetalLB writes BGP timers: "90s",
 * "1m30s", "300ms", "1.5h". Both configuration sources and the CRDs' metav1.Duration fields use
 * this syntax, so one parser serves all of them.
 */
import type { Parsed } from '../ip/index.js';

/** A non-negative span of time, checked once at the boundary. */
export interface Duration {
  readonly milliseconds: number;
  /** The same span in (possibly fractional) seconds. */
  readonly seconds: number;
  /** What the operator wrote, for messages. */
  readonly text: string;
}

/** Milliseconds per unit; Go accepts both spellings of micro. */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

// A number (digits with an optional fraction, at least one digit somewhere) followed by a unit.
const COMPONENT = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;

/** Beyond this the value loses integer precision in milliseconds; no BGP timer is that long. */
const MAX_MS = Number.MAX_SAFE_INTEGER;

/**
 * Parse a Go duration string. Negative durations are refused: every duration in this
 * configuration is a timer, and a negative timer is always a typo.
 */
export function parseDuration(text: unknown): Parsed<Duration> {
  if (typeof text !== 'string') return { ok: false, error: `${describe(text)} is not a duration (write e.g. "90s" or "1m30s")` };
  const bad = (why: string): Parsed<Duration> => ({ ok: false, error: `"${text}" is not a duration: ${why}` });
  let rest = text;
  if (rest.startsWith('-')) return bad('it is negative');
  if (rest.startsWith('+')) rest = rest.slice(1);
  if (rest === '0') return { ok: true, value: { milliseconds: 0, seconds: 0, text } };
  if (rest === '') return bad('write a number and a unit, e.g. "90s" or "1m30s"');
  let ms = 0;
  while (rest !== '') {
    const m = COMPONENT.exec(rest);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) {
      return bad('write numbers with units (ns, us, ms, s, m, h), e.g. "90s" or "1m30s"');
    }
    const whole = m[1] === '' ? 0 : Number(m[1]);
    const fraction = m[2] ? Number(`0.${m[2]}`) : 0;
    ms += (whole + fraction) * (UNIT_MS[m[3] ?? ''] ?? 0);
    rest = rest.slice(m[0].length);
  }
  if (!Number.isFinite(ms) || ms > MAX_MS) return bad('it is too long');
  return { ok: true, value: { milliseconds: ms, seconds: ms / 1000, text } };
}

/** Render whole seconds the way Go prints them ("1m30s"), for messages and status. */
export function formatSeconds(seconds: number): string {
  if (seconds === 0) return '0s';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return 'a map';
  return v === undefined ? 'nothing' : JSON.stringify(v);
}
