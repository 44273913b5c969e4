/**
 * Which pool covers an address, as MetalLB's speaker finds it: every range of every pool, sorted
 * per family and searched by halves (validation guarantees pools never overlap). Layer 2 and BGP
 * each keep what they decided per pool (their plan) here.
 */
import type { Pool } from '../config/index.js';
import type { Family, IP } from '../ip/index.js';

interface Span<P> {
  first: bigint;
  last: bigint;
  plan: P;
}

export class PoolSpans<P> {
  private readonly spans: Record<Family, Span<P>[]> = { IPv4: [], IPv6: [] };

  /** `plan` is asked once per pool name (the first pool of a name wins, as everywhere in core). */
  constructor(pools: readonly Pool[], plan: (pool: Pool) => P) {
    const seen = new Set<string>();
    for (const pool of pools) {
      if (seen.has(pool.name)) continue;
      seen.add(pool.name);
      const p = plan(pool);
      for (const r of pool.ranges) this.spans[r.family].push({ first: r.first, last: r.last, plan: p });
    }
    for (const list of Object.values(this.spans)) list.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  }

  /** The plan of the pool covering `ip`, or undefined when no pool does. */
  find(ip: IP): P | undefined {
    const list = this.spans[ip.family];
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const span = list[mid]!;
      if (ip.value < span.first) hi = mid - 1;
      else if (ip.value > span.last) lo = mid + 1;
      else return span.plan;
    }
    return undefined;
  }
}
