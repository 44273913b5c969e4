/**
 * The agent's log: one line per message on stderr, `TIME LEVEL message`, newlines folded so a
 * message never spans lines. Lines other programs read (tests, `npm start`): `metrics listening
 * on HOST:PORT`, `ready`, `stopped`.
 */
import type { LogLevel } from './flags.js';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(line: string): void;
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

/** A logger that writes lines at `level` and above through `write` (default: stderr). */
export function makeLogger(level: LogLevel, write: (text: string) => void = (t) => process.stderr.write(t)): Logger {
  const at = (l: LogLevel) => (line: string) => {
    if (RANK[l] < RANK[level]) return;
    write(`${new Date().toISOString()} ${l} ${line.replace(/\s*\n\s*/g, ' ')}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** One line, whatever was thrown. */
export function describeError(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return describeError(e.errors[0]);
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const code = (e as { code?: unknown }).code;
  let text = e.message || e.name;
  if (typeof code === 'string' && !text.includes(code)) text = `${code}: ${text}`;
  if (cause !== undefined && cause !== e && !(cause instanceof Error && text.includes(cause.message))) text += ` (${describeError(cause)})`;
  return text.replace(/\s+/g, ' ').trim();
}
