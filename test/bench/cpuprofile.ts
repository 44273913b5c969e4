/**
 * Summarises a V8 CPU profile (`.cpuprofile`, from the admission bench's BENCH_CPU_PROF or
 * `node --cpu-prof`): where the time went, by function (self and inclusive) and by file.
 *
 *   node dist/test/bench/cpuprofile.js FILE [--top 30] [--focus TEXT]
 *
 * `--focus TEXT` shows, for the functions whose name or place contains TEXT, which of their
 * callers' paths the time came through (the heaviest call paths ending there).
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const args = process.argv.slice(2);
const file = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
if (!file) {
  process.stderr.write('usage: node dist/test/bench/cpuprofile.js FILE [--top N] [--focus TEXT]\n');
  process.exit(2);
}
const top = Number(opt('top') ?? 30);
const focus = opt('focus');

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per node from the samples (the deltas), else from hit counts spread over the duration.
const selfUs = new Map<number, number>();
if (profile.samples && profile.timeDeltas) {
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
} else {
  const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const each = (profile.endTime - profile.startTime) / Math.max(1, hits);
  for (const n of profile.nodes) selfUs.set(n.id, (n.hitCount ?? 0) * each);
}
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
const idleUs = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((a, n) => a + (selfUs.get(n.id) ?? 0), 0);

const short = (url: string) => url.replace(/^file:\/\/.*?\/(dist\/)?(?=(webhook|kube|core|test|node_modules)\/)/, '').replace(/^node:/, 'node:');
const place = (n: Node) => (n.callFrame.url ? `${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : '');
const label = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${place(n)}`.trim();

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const files = new Map<string, number>();
for (const n of profile.nodes) {
  const t = selfUs.get(n.id) ?? 0;
  if (t === 0) continue;
  self.set(label(n), (self.get(label(n)) ?? 0) + t);
  const f = n.callFrame.url ? short(n.callFrame.url).replace(/\/[^/]+$/, (m) => m) : n.callFrame.functionName;
  files.set(f, (files.get(f) ?? 0) + t);
  // Inclusive: every distinct function on the path from the root, once per sample.
  const seen = new Set<string>();
  for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
    const k = label(byId.get(id) as Node);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + t);
  }
}

const busy = totalUs - idleUs;
const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
const msText = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const print = (title: string, m: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`  ${msText(v)} ${pct(v)}  ${k}\n`);
};
process.stdout.write(`${file}: ${(totalUs / 1000).toFixed(0)} ms profiled, ${(busy / 1000).toFixed(0)} ms busy (percentages of busy time)\n`);
print('self time by function', self);
print('inclusive time by function', new Map([...inclusive].filter(([k]) => !/^\((root|program|idle)\)/.test(k))));
print('self time by file', files);

if (focus) {
  const paths = new Map<string, number>();
  for (const n of profile.nodes) {
    const t = selfUs.get(n.id) ?? 0;
    if (t === 0) continue;
    const chain: Node[] = [];
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) chain.push(byId.get(id) as Node);
    const at = chain.findIndex((x) => label(x).includes(focus));
    if (at < 0) continue;
    const key = chain
      .slice(at, at + 6)
      .map(label)
      .join(' < ');
    paths.set(key, (paths.get(key) ?? 0) + t);
  }
  print(`heaviest paths through "${focus}" (the function, then its callers)`, paths);
}
