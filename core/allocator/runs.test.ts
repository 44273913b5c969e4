import { RunSet } from './runs.js';
import { seededRandom } from '../seeded.js';

const buggy = (v: bigint) => (v & 0xffn) === 0n || (v & 0xffn) === 0xffn;

/** The answer by walking addresses: only for small test ranges. */
function naiveFirstFree(held: Set<bigint>, from: bigint, skipBuggy: boolean): bigint {
  let v = from;
  while (held.has(v) || (skipBuggy && buggy(v))) v++;
  return v;
}

const random = seededRandom;

describe('RunSet', () => {
  test.each([
    { name: 'sequential adds form one run', skipBuggy: false, add: [0n, 1n, 2n, 3n], runs: [[0n, 3n]] },
    { name: 'adds out of order merge both sides', skipBuggy: false, add: [5n, 3n, 4n], runs: [[3n, 5n]] },
    {
      name: 'gaps keep runs apart',
      skipBuggy: false,
      add: [1n, 3n],
      runs: [
        [1n, 1n],
        [3n, 3n],
      ],
    },
    { name: '.255/.0 gap merges when skipping', skipBuggy: true, add: [254n, 257n], runs: [[254n, 257n]] },
    {
      name: '.255/.0 gap stays when not skipping',
      skipBuggy: false,
      add: [254n, 257n],
      runs: [
        [254n, 254n],
        [257n, 257n],
      ],
    },
  ])('$name', ({ skipBuggy, add, runs }) => {
    const set = new RunSet(skipBuggy);
    for (const v of add) set.add(v);
    expect(set.runs().map((r) => [r.first, r.last])).toEqual(runs);
    expect(set.count).toBe(add.length);
  });

  test.each([
    { name: 'empty: from itself', skipBuggy: false, add: [], from: 10n, free: 10n },
    { name: 'after the run', skipBuggy: false, add: [10n, 11n, 12n], from: 10n, free: 13n },
    { name: 'skips .0 at the start', skipBuggy: true, add: [], from: 256n, free: 257n },
    { name: 'skips .255 and .0 after a run', skipBuggy: true, add: [253n, 254n], from: 253n, free: 257n },
    { name: 'hops a merged run across /24s', skipBuggy: true, add: [254n, 257n, 258n], from: 254n, free: 259n },
  ])('firstFreeFrom: $name', ({ skipBuggy, add, from, free }) => {
    const set = new RunSet(skipBuggy);
    for (const v of add) set.add(v);
    expect(set.firstFreeFrom(from)).toBe(free);
  });

  test.each([
    {
      name: 'delete in the middle splits',
      skipBuggy: false,
      add: [1n, 2n, 3n],
      del: 2n,
      runs: [
        [1n, 1n],
        [3n, 3n],
      ],
    },
    { name: 'delete at the start shrinks', skipBuggy: false, add: [1n, 2n, 3n], del: 1n, runs: [[2n, 3n]] },
    { name: 'delete at the end shrinks', skipBuggy: false, add: [1n, 2n, 3n], del: 3n, runs: [[1n, 2n]] },
    { name: 'delete a lone run', skipBuggy: false, add: [1n], del: 1n, runs: [] },
    {
      name: 'delete next to a buggy gap trims past it',
      skipBuggy: true,
      add: [254n, 257n, 258n],
      del: 257n,
      runs: [
        [254n, 254n],
        [258n, 258n],
      ],
    },
  ])('$name', ({ skipBuggy, add, del, runs }) => {
    const set = new RunSet(skipBuggy);
    for (const v of add) set.add(v);
    set.delete(del);
    expect(set.runs().map((r) => [r.first, r.last])).toEqual(runs);
  });

  test('adding a held address or deleting a free one is a bug, and says so', () => {
    const set = new RunSet(false);
    set.add(1n);
    expect(() => set.add(1n)).toThrow(/bug/);
    expect(() => set.delete(2n)).toThrow(/bug/);
  });

  test.each([
    { skipBuggy: false, seed: 1 },
    { skipBuggy: true, seed: 2 },
    { skipBuggy: true, seed: 3 },
  ])('agrees with a brute-force model over random adds and deletes (skipBuggy $skipBuggy, seed $seed)', ({ skipBuggy, seed }) => {
    const rnd = random(seed);
    const set = new RunSet(skipBuggy);
    const held = new Set<bigint>();
    // Enough operations to split chunks (> 1024 runs) and fold them back.
    const space = 6000;
    for (let step = 0; step < 20000; step++) {
      const v = BigInt(Math.floor(rnd() * space));
      if (skipBuggy && buggy(v)) continue;
      if (held.has(v)) {
        set.delete(v);
        held.delete(v);
      } else {
        set.add(v);
        held.add(v);
      }
      if (step % 97 === 0) {
        const from = BigInt(Math.floor(rnd() * space));
        expect(set.firstFreeFrom(from)).toBe(naiveFirstFree(held, from, skipBuggy));
        expect(set.has(from)).toBe(held.has(from));
      }
    }
    expect(set.count).toBe(held.size);
    const flat: bigint[] = [];
    for (const r of set.runs()) for (let v = r.first; v <= r.last; v++) if (!(skipBuggy && buggy(v))) flat.push(v);
    expect(flat).toEqual([...held].sort((a, b) => (a < b ? -1 : 1)));
  });
});
