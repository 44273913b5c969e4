/**
 * Allocation cost per Service as the number of existing allocations grows, for an IPv4 /8 and an
 * IPv6 /64 pool. The allocator promises flat cost (no address walking, O(log n) lookups): the
 * 100k/1k ratio printed at the end is the figure to watch (target: at most 2x).
 *
 * Each (family, size) is measured in its own child process, so that its heap holds only its own
 * allocations (a 1k figure is not charged for marking another allocator's 100k), and the
 * children run in interleaved passes (1k, 10k, 100k, then again in rotated order): a burst of
 * load on a shared machine then slows every size alike instead of one. A child reports the
 * median of its rounds; the figure printed is the median over passes, with the best round.
 *
 * Wall clock on a loaded machine is noisy, and at 100k allocations it also pays for cache misses
 * the 1k case does not (the tables no longer fit in cache). With BENCH_INSTRUCTIONS=1 and
 * valgrind installed, each child is also run under callgrind, counting the instructions of the
 * measured rounds only (GC included: the child runs --single-threaded so GC work is on the
 * counted thread): a deterministic figure, immune to load. Run with `npm run bench`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { performance } from 'node:perf_hooks';
import type { Pool } from '../../core/config/types.js';
import type { Family } from '../../core/ip/index.js';
import { parseRange } from '../../core/ip/index.js';
import { Allocator, newRequest, type Request } from '../../core/allocator/index.js';
import { RunSet } from '../../core/allocator/runs.js';

v8.setFlagsFromString('--expose_gc');
const collect = vm.runInNewContext('gc') as () => void;

const SIZES = [1_000, 10_000, 100_000];
const MEASURED = 1_000;
const ROUNDS = 21;
/** Child processes per (family, size), interleaved. */
const PASSES = 3;
/** Rounds counted under callgrind (after 20 uncounted warm-up rounds). */
const COUNTED = 40;

interface Target {
  family: Family;
  cidr: string;
}

const TARGETS: Target[] = [
  { family: 'IPv4', cidr: '10.0.0.0/8' },
  { family: 'IPv6', cidr: '2001:db8::/64' },
];

function pool(name: string, cidr: string): Pool {
  const r = parseRange(cidr);
  if (!r.ok) throw new Error(r.error);
  return {
    name,
    origin: { kind: 'IPAddressPool', namespace: 'metallb-system', name },
    labels: {},
    ranges: [r.value],
    autoAssign: true,
    avoidBuggyIPs: false,
  };
}

function requests(prefix: string, n: number, family: Family): Request[] {
  const out: Request[] = [];
  for (let i = 0; i < n; i++) {
    out.push(newRequest({ namespace: 'bench', name: `${prefix}${i}`, families: [family], ports: [{ port: 80, protocol: 'TCP' }] }));
  }
  return out;
}

function assignAll(a: Allocator, reqs: readonly Request[]): void {
  for (const r of reqs) {
    const out = a.assign(r);
    if (!out.ok) throw new Error(`${r.name}: ${out.failure.message}`);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

interface Timing {
  median: number;
  best: number;
}

function timing(xs: readonly number[]): Timing {
  return { median: median(xs), best: Math.min(...xs) };
}

/** Microseconds per assign and per release over ROUNDS rounds of MEASURED new Services. */
function measure(a: Allocator, family: Family): { assign: Timing; release: Timing } {
  const reqs = requests('measured-', MEASURED, family);
  const keys = reqs.map((r) => `bench/${r.name}`);
  const assignTimes: number[] = [];
  const releaseTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    assignAll(a, reqs);
    const t1 = performance.now();
    for (const k of keys) a.release(k);
    const t2 = performance.now();
    assignTimes.push(((t1 - t0) * 1000) / MEASURED);
    releaseTimes.push(((t2 - t1) * 1000) / MEASURED);
  }
  return { assign: timing(assignTimes), release: timing(releaseTimes) };
}

/**
 * The lowest-free search alone, on a run set fragmented into `runs` runs (every other address
 * held): nanoseconds per find + add + delete at spread-out positions.
 */
function searchCost(runs: number): Timing {
  const set = new RunSet(false);
  for (let i = 0; i < runs; i++) set.add(BigInt(2 * i));
  const ops = 20_000;
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) {
      const v = set.firstFreeFrom(BigInt(2 * ((i * 7919) % runs)));
      set.add(v);
      set.delete(v);
    }
    times.push(((performance.now() - t0) * 1e6) / ops);
  }
  return timing(times);
}

const fmt = (n: number, width = 9, digits = 2) => n.toFixed(digits).padStart(width);
const count = (n: number) => n.toLocaleString('en-US').padStart(9);

/** What a child measured for one (family, size). */
interface ChildResult {
  assign: Timing;
  release: Timing;
  fill: number;
  notes: string[];
  frag?: Timing;
}

function target(family: string): Target {
  const t = TARGETS.find((x) => x.family === family);
  if (!t) throw new Error(`no target ${family}`);
  return t;
}

function filled(t: Target, n: number): Allocator {
  const a = new Allocator([pool('bench', t.cidr)]);
  assignAll(a, requests('svc-', n, t.family));
  return a;
}

/** Child, time mode: fill, measure, and at the largest size the 100k notes. Prints JSON. */
function childTime(t: Target, n: number): void {
  // Warm the JIT on a throwaway allocator so the figures are not paying for compilation.
  {
    const warm = filled(t, 20_000);
    measure(warm, t.family);
  }
  collect();
  const before = process.memoryUsage().heapUsed;
  const f0 = performance.now();
  const a = filled(t, n);
  const fill = ((performance.now() - f0) * 1000) / n;
  const notes: string[] = [];
  let frag: Timing | undefined;
  if (n === SIZES[SIZES.length - 1]) {
    // Memory: what the allocator holds per allocation, the Requests it keeps included.
    collect();
    const after = process.memoryUsage().heapUsed;
    notes.push(
      `  ${t.family}: heapUsed grew ${((after - before) / 1024 / 1024).toFixed(1)} MiB for ${n.toLocaleString('en-US')} allocations = ${Math.round((after - before) / n)} bytes per allocation`,
    );
  }
  const m = measure(a, t.family);
  if (n === SIZES[SIZES.length - 1]) {
    // Fragmentation: free every 10th address, then allocate into the holes.
    for (let i = 0; i < n; i += 10) a.release(`bench/svc-${i}`);
    const holes = measure(a, t.family);
    frag = holes.assign;
    notes.push(
      `  ${t.family}: after releasing every 10th of ${n.toLocaleString('en-US')}: ${holes.assign.median.toFixed(2)} µs/assign (best ${holes.assign.best.toFixed(2)}), ${holes.release.median.toFixed(2)} µs/release`,
    );

    // Restart and reconfiguration at this size.
    const held = a.allocations().map((c) => ({ request: c.request, ips: c.ips, pool: c.pool }));
    const r0 = performance.now();
    const restored = new Allocator([pool('bench', t.cidr)]);
    const refused = restored.restore(held);
    const r1 = performance.now();
    const revoked = restored.setPools([pool('bench-renamed', t.cidr)]);
    const r2 = performance.now();
    if (refused.length + revoked.length > 0) throw new Error('restore/setPools lost allocations');
    notes.push(
      `  ${t.family}: restore of ${held.length.toLocaleString('en-US')} allocations ${(r1 - r0).toFixed(0)} ms, setPools (pool renamed) over them ${(r2 - r1).toFixed(0)} ms`,
    );
  }
  const out: ChildResult = { assign: m.assign, release: m.release, fill, notes, ...(frag && { frag }) };
  console.log(JSON.stringify(out));
}

/**
 * Child, count mode (under callgrind): fill, 20 warm-up rounds, then COUNTED rounds inside one
 * Array.prototype.forEach, the only code callgrind counts (--toggle-collect=Builtins_ArrayForEach).
 */
function childCount(t: Target, n: number): void {
  const a = filled(t, n);
  const reqs = requests('measured-', MEASURED, t.family);
  const keys = reqs.map((r) => `bench/${r.name}`);
  const round = () => {
    assignAll(a, reqs);
    for (const k of keys) a.release(k);
  };
  for (let i = 0; i < 20; i++) round();
  Array.from({ length: COUNTED }).forEach(round);
}

const self = fileURLToPath(import.meta.url);

function runChild(t: Target, n: number): ChildResult {
  const out = execFileSync(process.execPath, [self, '--child', 'time', t.family, String(n)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out) as ChildResult;
}

/** Instructions per assign + release under callgrind, or undefined when valgrind is missing. */
function countChild(t: Target, n: number): number | undefined {
  const file = path.join(os.tmpdir(), `metallb-ts-bench-${process.pid}-${t.family}-${n}.callgrind`);
  const r = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--toggle-collect=Builtins_ArrayForEach',
      `--callgrind-out-file=${file}`,
      process.execPath,
      '--single-threaded',
      self,
      '--child',
      'count',
      t.family,
      String(n),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  if (r.error || r.status !== 0) return undefined;
  const text = fs.readFileSync(file, 'utf8');
  fs.rmSync(file, { force: true });
  const total = /^(?:summary|totals): (\d+)/m.exec(text)?.[1];
  return total === undefined ? undefined : Number(total) / (COUNTED * MEASURED);
}

function main(): void {
  console.log(
    `metallb-ts allocator bench: node ${process.version}, ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log();

  // Warm the JIT for the pool-creation figures.
  searchCost(1_000);
  for (let i = 0; i < 10_000; i++) new Allocator([pool('p', '10.0.0.0/8')]);

  console.log(`Pool creation (new Allocator with one pool), µs, median of ${ROUNDS} x 10,000:`);
  for (const cidr of ['42.176.25.64/30', '10.0.0.0/8', '2001:db8::/64']) {
    const p = pool('p', cidr);
    const times: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now();
      for (let i = 0; i < 10_000; i++) new Allocator([p]);
      times.push(((performance.now() - t0) * 1000) / 10_000);
    }
    console.log(`  ${cidr.padEnd(16)} ${fmt(median(times))} µs`);
  }
  console.log();

  // Interleaved passes: every pass runs each size once, in a rotated order.
  const results = new Map<string, ChildResult[]>();
  for (let pass = 0; pass < PASSES; pass++) {
    for (const t of TARGETS) {
      for (let k = 0; k < SIZES.length; k++) {
        const n = SIZES[(k + pass) % SIZES.length] ?? 0;
        const key = `${t.family}:${n}`;
        results.set(key, [...(results.get(key) ?? []), runChild(t, n)]);
      }
    }
  }
  const over = (xs: readonly ChildResult[], pick: (r: ChildResult) => Timing | undefined): Timing => {
    const ts = xs.map(pick).filter((x): x is Timing => x !== undefined);
    return { median: median(ts.map((x) => x.median)), best: Math.min(...ts.map((x) => x.best)) };
  };

  console.log(
    `Cost per Service, µs (${PASSES} interleaved passes x ${ROUNDS} rounds of ${MEASURED.toLocaleString('en-US')} new Services on top of the existing ones; release = those Services again):`,
  );
  console.log(`  family  pool            existing  assign median  assign best  release median  fill (avg)`);
  const perAssign = new Map<string, Timing>();
  const notes: string[] = [];
  for (const t of TARGETS) {
    for (const n of SIZES) {
      const rs = results.get(`${t.family}:${n}`) ?? [];
      const assign = over(rs, (r) => r.assign);
      const release = over(rs, (r) => r.release);
      perAssign.set(`${t.family}:${n}`, assign);
      if (n === SIZES[SIZES.length - 1]) {
        perAssign.set(
          `${t.family}:frag`,
          over(rs, (r) => r.frag),
        );
        notes.push(...(rs[0]?.notes ?? []));
      }
      console.log(
        `  ${t.family.padEnd(6)}  ${t.cidr.padEnd(14)} ${count(n)}  ${fmt(assign.median, 13)}  ${fmt(assign.best, 11)}  ${fmt(release.median, 14)}  ${fmt(median(rs.map((r) => r.fill)), 10)}`,
      );
    }
  }
  console.log();
  console.log('At 100k (first pass):');
  for (const line of notes) console.log(line);
  console.log();

  console.log('Lowest-free search alone (run set with every other address held), ns per find + add + delete:');
  const search = new Map<number, Timing>();
  for (const runs of SIZES) {
    const s = searchCost(runs);
    search.set(runs, s);
    console.log(`  ${count(runs)} runs  median ${fmt(s.median, 7, 0)}  best ${fmt(s.best, 7, 0)}`);
  }
  console.log();

  const counted = new Map<string, number>();
  if (process.env['BENCH_INSTRUCTIONS'] === '1') {
    console.log(`Instructions per assign + release under callgrind (${COUNTED} rounds of ${MEASURED.toLocaleString('en-US')}, GC included; deterministic):`);
    for (const t of TARGETS) {
      for (const n of SIZES) {
        const c = countChild(t, n);
        if (c === undefined) {
          console.log('  valgrind not available or failed; skipped');
          break;
        }
        counted.set(`${t.family}:${n}`, c);
        console.log(`  ${t.family.padEnd(6)} ${count(n)}  ${fmt(c, 9, 0)}`);
      }
    }
    console.log();
  } else {
    console.log('Instruction counts (deterministic, immune to load): run with BENCH_INSTRUCTIONS=1 (needs valgrind; takes minutes).');
    console.log();
  }

  console.log('Ratio 100k existing / 1k existing (target: at most 2.00x):');
  let flat = true;
  for (const t of TARGETS) {
    const small = perAssign.get(`${t.family}:1000`);
    const big = perAssign.get(`${t.family}:100000`);
    const frag = perAssign.get(`${t.family}:frag`);
    if (!small || !big || !frag) continue;
    const ratio = big.median / small.median;
    flat &&= ratio <= 2;
    const c1 = counted.get(`${t.family}:1000`);
    const c100 = counted.get(`${t.family}:100000`);
    const instr = c1 !== undefined && c100 !== undefined ? `; instructions ${(c100 / c1).toFixed(2)}x` : '';
    console.log(
      `  ${t.family} assign: median ${ratio.toFixed(2)}x, best ${(big.best / small.best).toFixed(2)}x; fragmented 100k / 1k: median ${(frag.median / small.median).toFixed(2)}x, best ${(frag.best / small.best).toFixed(2)}x${instr}`,
    );
  }
  const s1 = search.get(1_000);
  const s100 = search.get(100_000);
  if (s1 && s100) console.log(`  lowest-free search: median ${(s100.median / s1.median).toFixed(2)}x, best ${(s100.best / s1.best).toFixed(2)}x`);
  console.log(flat ? 'flat (median assign ratio <= 2x): yes' : 'flat (median assign ratio <= 2x): NO');
}

if (process.argv[2] === '--child') {
  const [, , , mode, family, size] = process.argv;
  const t = target(family ?? '');
  const n = Number(size);
  if (mode === 'count') childCount(t, n);
  else childTime(t, n);
} else {
  main();
}
