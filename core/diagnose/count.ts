/**
 * Address counts for people: exact wherever a person can read the number (every IPv4 count),
 * as a power of two for the huge IPv6 ranges ("2^64", "~2^80"), and percentages that never
 * round a used address down to nothing.
 */

/** Counts up to this are written out in full (2^40: beyond any IPv4 pool). */
const EXACT_BELOW = 1n << 40n;

/** `254`, `16777216`, `2^64`, `~2^64` (not a power of two: the nearest one below, rounded). */
export function formatCount(n: bigint): string {
  if (n < EXACT_BELOW) return n.toString();
  const bits = n.toString(2).length - 1;
  if (n === 1n << BigInt(bits)) return `2^${bits}`;
  return `~2^${bits}`;
}

/** used / size in percent, two decimals (0 for an empty pool). */
export function percentOf(used: bigint, size: bigint): number {
  if (size <= 0n) return 0;
  return Number((used * 10000n) / size) / 100;
}

/** `0%`, `<0.01%`, `25%`, `33.33%`, `100%`: a pool with one address used never reads 0%. */
export function formatPercent(used: bigint, size: bigint): string {
  if (size <= 0n || used === 0n) return '0%';
  const p = percentOf(used, size);
  if (p === 0) return '<0.01%';
  if (p >= 100 && used < size) return '99.99%';
  return `${Number.isInteger(p) ? p : p.toFixed(2).replace(/0$/, '')}%`;
}
