/**
 * The held addresses of one pool and family, kept as sorted disjoint runs so that the lowest
 * free address is found in O(log n) whatever the pool's size: never by walking addresses.
 */

/** Consecutive held addresses `first..last` (inclusive). */
export interface Run {
  first: bigint;
  last: bigint;
}

/** Where a run sits: chunk index and index inside the chunk. */
interface Position {
  c: number;
  i: number;
}

// Runs live in chunks of bounded length (CHUNK to 2 * CHUNK) rather than one array: inserting
// into or deleting from a single array of 50k runs moves the whole tail on every merge or split.
// Chunks keep every splice short; the chunk list itself changes only when a chunk splits or folds.
// 64 measured best across 1k-100k runs (512 made each splice cost more than the search).
const CHUNK = 64;

/** True for the low byte .0 or .255 (see isBuggyIP in core/ip). */
function buggyValue(v: bigint): boolean {
  const low = v & 0xffn;
  return low === 0n || low === 0xffn;
}

/**
 * A set of held addresses (as bigint values of one family), stored as sorted disjoint runs.
 *
 * With `skipBuggy`, addresses ending in .0/.255 are never held and never offered, and two runs
 * separated only by such addresses are merged into one. That keeps the invariant the lookup
 * relies on: every offerable address inside a run is held, and the address after a run (once
 * past any .255/.0) is free. Without the merge, a pool filled across many /24s would leave one
 * run per /24 and the search for a free address would hop over all of them.
 */
export class RunSet {
  private readonly chunks: Run[][] = [];
  private held = 0;

  constructor(private readonly skipBuggy: boolean) {}

  /** How many addresses are held. */
  get count(): number {
    return this.held;
  }

  /** How many runs the held addresses form (a measure of fragmentation). */
  get runCount(): number {
    let n = 0;
    for (const chunk of this.chunks) n += chunk.length;
    return n;
  }

  /** Every run in ascending order (copies). */
  runs(): Run[] {
    return this.chunks.flatMap((chunk) => chunk.map((r) => ({ first: r.first, last: r.last })));
  }

  /** True when `v` is held. */
  has(v: bigint): boolean {
    const pos = this.floor(v);
    if (!pos) return false;
    const run = this.at(pos);
    return run.last >= v && !(this.skipBuggy && buggyValue(v));
  }

  /** The lowest address >= `from` that is neither held nor skipped (the caller bounds it). */
  firstFreeFrom(from: bigint): bigint {
    let v = this.skipUp(from);
    const pos = this.floor(v);
    if (pos) {
      const run = this.at(pos);
      if (run.last >= v) v = this.skipUp(run.last + 1n);
    }
    return v;
  }

  /** Mark `v` held. It must be free and, with skipBuggy, not end in .0/.255. */
  add(v: bigint): void {
    const pos = this.floor(v);
    const left = pos ? this.at(pos) : undefined;
    if (left && left.last >= v) throw new Error(`bug: address ${v} is already held`);
    const rightPos = pos ? this.next(pos) : this.chunks.length > 0 ? { c: 0, i: 0 } : undefined;
    const right = rightPos ? this.at(rightPos) : undefined;
    const joinLeft = left !== undefined && this.adjacent(left.last, v);
    const joinRight = right !== undefined && this.adjacent(v, right.first);
    if (left && right && rightPos && joinLeft && joinRight) {
      left.last = right.last;
      this.removeAt(rightPos);
    } else if (left && joinLeft) {
      left.last = v;
    } else if (right && joinRight) {
      right.first = v;
    } else {
      this.insertAt(pos ? { c: pos.c, i: pos.i + 1 } : { c: 0, i: 0 }, { first: v, last: v });
    }
    this.held++;
  }

  /** Mark `v` free. It must be held. */
  delete(v: bigint): void {
    const pos = this.floor(v);
    const run = pos ? this.at(pos) : undefined;
    if (!pos || !run || run.last < v) throw new Error(`bug: address ${v} is not held`);
    if (run.first === v && run.last === v) {
      this.removeAt(pos);
    } else if (run.first === v) {
      run.first = this.skipUp(v + 1n);
    } else if (run.last === v) {
      run.last = this.skipDown(v - 1n);
    } else {
      const tail = { first: this.skipUp(v + 1n), last: run.last };
      run.last = this.skipDown(v - 1n);
      this.insertAt({ c: pos.c, i: pos.i + 1 }, tail);
    }
    this.held--;
  }

  /** Two held addresses a < b belong to one run when nothing offerable lies between them. */
  private adjacent(a: bigint, b: bigint): boolean {
    if (b === a + 1n) return true;
    if (!this.skipBuggy || b - a > 3n) return false;
    for (let v = a + 1n; v < b; v++) if (!buggyValue(v)) return false;
    return true;
  }

  private skipUp(v: bigint): bigint {
    if (!this.skipBuggy) return v;
    const low = v & 0xffn;
    return low === 0xffn ? v + 2n : low === 0n ? v + 1n : v;
  }

  private skipDown(v: bigint): bigint {
    if (!this.skipBuggy) return v;
    const low = v & 0xffn;
    return low === 0n ? v - 2n : low === 0xffn ? v - 1n : v;
  }

  private at(pos: Position): Run {
    const run = this.chunks[pos.c]?.[pos.i];
    if (!run) throw new Error(`bug: no run at ${pos.c}/${pos.i}`);
    return run;
  }

  /** The run with the greatest start <= v. */
  private floor(v: bigint): Position | undefined {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    let c = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const head = chunks[mid]?.[0];
      if (head && head.first <= v) {
        c = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    const chunk = chunks[c];
    if (!chunk) return undefined;
    lo = 0;
    hi = chunk.length - 1;
    let i = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const run = chunk[mid];
      if (run && run.first <= v) {
        i = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return { c, i };
  }

  private next(pos: Position): Position | undefined {
    const chunk = this.chunks[pos.c];
    if (chunk && pos.i + 1 < chunk.length) return { c: pos.c, i: pos.i + 1 };
    return pos.c + 1 < this.chunks.length ? { c: pos.c + 1, i: 0 } : undefined;
  }

  private insertAt(pos: Position, run: Run): void {
    const chunk = this.chunks[pos.c];
    if (!chunk) {
      this.chunks.push([run]);
      return;
    }
    chunk.splice(pos.i, 0, run);
    if (chunk.length > 2 * CHUNK) this.chunks.splice(pos.c + 1, 0, chunk.splice(CHUNK));
  }

  private removeAt(pos: Position): void {
    const chunk = this.chunks[pos.c];
    if (!chunk) return;
    chunk.splice(pos.i, 1);
    if (chunk.length === 0) {
      this.chunks.splice(pos.c, 1);
      return;
    }
    // Fold a small chunk into its neighbour so that sparse release patterns cannot leave
    // thousands of one-run chunks behind.
    const nextChunk = this.chunks[pos.c + 1];
    if (chunk.length < CHUNK / 4 && nextChunk && chunk.length + nextChunk.length <= 2 * CHUNK) {
      chunk.push(...nextChunk);
      this.chunks.splice(pos.c + 1, 1);
    }
  }
}
