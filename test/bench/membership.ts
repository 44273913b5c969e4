/**
 * Failure detection latency of the gossip membership, with real UDP sockets on loopback: N runs
 * of a fresh cluster of M agents (Membership instances in this process, one port each); each
 * run waits for convergence and a second of steady probing, kills one agent (socket closed, no
 * leave, as SIGKILL would) and measures until the first and until the last of the others stops
 * counting it alive; then a graceful leave of another. Prints median and max.
 *
 *   npm run build && node dist/test/bench/membership.js            # BENCH_RUNS=20 BENCH_NODES=5
 *
 * Everything shares one event loop here, so a busy machine shows up in the figures; the agents
 * of a real cluster each have their own.
 */
import { Membership, DEFAULT_TIMINGS } from '../../agent/membership/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const NODES = Number(process.env.BENCH_NODES ?? 5);
const key = Buffer.alloc(32, 0x42);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(done: () => boolean, limitMs: number): Promise<number> {
  const start = performance.now();
  while (!done()) {
    if (performance.now() - start > limitMs) return Infinity;
    await new Promise((r) => setImmediate(r));
  }
  return performance.now() - start;
}

async function run(index: number): Promise<{ first: number; all: number; leave: number }> {
  const names = Array.from({ length: NODES }, (_, i) => `node-${i}`);
  const members = names.map((nodeName) => new Membership({ nodeName, bindAddress: '127.0.0.1', port: 0, key }));
  await Promise.all(members.map((m) => m.start()));
  const seeds = members.map((m, i) => ({ name: names[i]!, address: '127.0.0.1', port: m.port }));
  for (const m of members) m.setSeeds(seeds);
  const converged = await until(() => members.every((m) => m.alive().size === NODES), 10_000);
  if (!Number.isFinite(converged)) throw new Error(`run ${index}: no convergence`);
  await sleep(1000 + Math.random() * 200);

  const victim = 1 + (index % (NODES - 1));
  const others = members.filter((_, i) => i !== victim);
  const killed = performance.now();
  await members[victim]!.stop({ leave: false });
  let first = Infinity;
  const all = await until(() => {
    const gone = others.filter((m) => !m.alive().has(names[victim]!)).length;
    if (gone > 0 && first === Infinity) first = performance.now() - killed;
    return gone === others.length;
  }, 10_000);

  const leaver = others[others.length - 1]!;
  const rest = others.slice(0, -1);
  const leaving = performance.now();
  await leaver.stop();
  const leaverName = leaver.members()[0]!.name;
  await until(() => rest.every((m) => !m.alive().has(leaverName)), 5000);
  const leave = performance.now() - leaving;
  await Promise.all(rest.map((m) => m.stop({ leave: false })));
  return { first, all: all === Infinity ? Infinity : performance.now() - killed, leave };
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median ${median.toFixed(0)} ms, max ${sorted[sorted.length - 1]!.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms`;
}

const t = DEFAULT_TIMINGS;
console.log(
  `membership detection: ${RUNS} runs of ${NODES} agents on 127.0.0.1; probe ${t.probeIntervalMs}/${t.probeTimeoutMs} ms, ${t.indirectChecks} indirect, suspicion ${t.suspicionMaxMs} -> ${t.suspicionMinMs} ms with ${t.suspicionConfirmations} confirmations, gossip ${t.gossipIntervalMs} ms`,
);
const results: { first: number; all: number; leave: number }[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = await run(i);
  results.push(r);
  console.log(`  run ${i + 1}: first ${r.first.toFixed(0)} ms, all ${r.all.toFixed(0)} ms, leave ${r.leave.toFixed(1)} ms`);
}
console.log(`kill, first agent to notice:  ${summary(results.map((r) => r.first))}`);
console.log(`kill, every agent noticed:    ${summary(results.map((r) => r.all))}`);
console.log(`graceful leave, all noticed:  ${summary(results.map((r) => r.leave))}`);
