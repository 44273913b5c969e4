/**
 * Layer-2 benchmarks on the lab (root): the whole system of test/lab/cluster.ts (a bridge LAN,
 * three node namespaces each running the real agent, a real controller, the API server double in
 * this process) measured from the client namespace with tcpdump, ip neigh and arping.
 *
 * 1. Failover, BENCH_RUNS times each (default 10): the owner of a Service IP is SIGKILLed, or its
 *    network goes silent (its bridge port down). Measured from that moment (Date.now(), the
 *    clock tcpdump's -tt timestamps use) to (a) the first gratuitous ARP for the IP from another
 *    MAC in the client's capture and (b) the client's neighbour entry (filled by a ping before)
 *    pointing at the new MAC, polled every ~15 ms. After each run the agent is restarted (or the
 *    node reconnected), and the next run waits until every agent counts three live nodes, one
 *    node answers, and 2 s more. Target: median under 1 s (MetalLB: ~3 s with memberlist, 40 s+
 *    without).
 * 2. Endpoint ready -> first answer: a Local-policy Service without endpoints (nobody answers);
 *    its EndpointSlice gets a ready endpoint on one node at t0 while the client arpings it every
 *    20 ms; measured to that node's first gratuitous ARP and to its first ARP reply to the client.
 * 3. Scale: BENCH_SERVICES (default 10,000) layer-2 Services written straight into the double's
 *    store as the controller would have left them (annotations, status.loadBalancer.ingress, an
 *    EndpointSlice with a ready endpoint on every node), in a pool of their own ('bench':
 *    BENCH_SERVICES_IPV4 (default and at most 100) IPv4 ones from 198.18.0.0/24, the rest IPv6 from
 *    2001:db8:200::/112, cluster IPs being scarce in IPv4). The controller is stopped first: it
 *    has nothing to do for Services already assigned, and would only add work to the double
 *    (which shares this process). Measured: each agent's CPU time (/proc/PID/stat) and RSS at
 *    idle before, over the sync, and idle after; the time until every IP was announced on the
 *    wire (its first gratuitous ARP / unsolicited neighbour advertisement in the client's
 *    capture) and until every ServiceL2Status exists; then a failover at that scale: the node
 *    owning most IPs is SIGKILLed, measured to the first announcement of one of its IPs by
 *    another node and to the last of them.
 *
 * It prints figures and asserts nothing. Without root it prints one line and exits 0.
 *
 *   npm run build && node dist/test/bench/failover.js
 *   BENCH_RUNS=3 BENCH_PARTS=failover,endpoint,scale BENCH_SERVICES=2000 BENCH_JSON=out.json node dist/test/bench/failover.js
 *   BENCH_VERBOSE=1   progress on stderr
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import type { KubeObject } from '../../kube/client.js';
import { NAMESPACE } from '../e2e/support.js';
import { ENDPOINT_SLICES, LabCluster } from '../lab/cluster.js';
import { labUnavailable, type Lab, type LabHost } from '../lab/lab.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const PARTS = new Set((process.env.BENCH_PARTS ?? 'failover,endpoint,scale').split(',').map((s) => s.trim()));
const N = Number(process.env.BENCH_SERVICES ?? 10_000);
const N4 = Math.min(Number(process.env.BENCH_SERVICES_IPV4 ?? 100), N, 100);
const SETTLE_MS = 2000;
const TARGET_MS = 1000;
const SYNC_TIMEOUT_MS = Number(process.env.BENCH_SYNC_TIMEOUT_MS ?? 600_000);
const POOLS = { group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true } as const;
const BENCH_NS = 'bench';

const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));
const started = Date.now();
const progress = (what: string) => {
  if (process.env.BENCH_VERBOSE) process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}\n`);
};

// ---------------------------------------------------------------------------------------------
// The client's capture: ARP and neighbour advertisements, with tcpdump's kernel timestamps.

interface Frame {
  /** Epoch seconds (tcpdump -tt). */
  t: number;
  src: string;
  /** garp: a gratuitous ARP (request with sender = target, or a broadcast reply); reply: an ARP reply to someone; una: an unsolicited NA (to all nodes); na: a solicited one. */
  kind: 'garp' | 'reply' | 'request' | 'una' | 'na';
  ip: string;
}

const MAC = '[0-9a-f]{2}(?::[0-9a-f]{2}){5}';
const HEAD = new RegExp(`^(\\d+\\.\\d+) (${MAC}) > (${MAC}|\\S+), `);

export function parseFrame(line: string): Frame | undefined {
  const h = HEAD.exec(line);
  if (!h) return undefined;
  const t = Number(h[1]);
  const src = h[2]!;
  const dst = h[3]!;
  let m: RegExpExecArray | null;
  if ((m = /Request who-has (\S+)(?: \(\S+\))? tell (\S+?),/.exec(line))) return { t, src, kind: m[1] === m[2] ? 'garp' : 'request', ip: m[1]! };
  if ((m = /Reply (\S+) is-at /.exec(line))) return { t, src, kind: dst === 'ff:ff:ff:ff:ff:ff' ? 'garp' : 'reply', ip: m[1]! };
  if ((m = /: (\S+) > (\S+): ICMP6, neighbor advertisement, tgt is (\S+?),/.exec(line))) return { t, src, kind: m[2] === 'ff02::1' ? 'una' : 'na', ip: m[3]! };
  return undefined;
}

class Capture {
  frames: Frame[] = [];
  /** Record frames in `frames` (off during the scale sync, where only `firstAnnounce` counts). */
  keep = true;
  /** Per IP, the first gratuitous ARP / unsolicited NA since the last reset, and from whom. */
  firstAnnounce = new Map<string, { t: number; src: string }>();
  announcements = 0;
  private err = '';
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();
  readonly ready: Promise<void>;

  constructor(lab: Lab, host: LabHost) {
    this.child = lab.spawn(host, 'tcpdump', ['-l', '-n', '-e', '-tt', '-i', 'eth0', 'arp or (icmp6 and ip6[40] == 136)']);
    this.ready = new Promise((resolve, reject) => {
      this.child.stderr!.on('data', (c: Buffer) => {
        this.err += c.toString('utf8');
        if (/listening on/.test(this.err)) resolve();
      });
      this.child.on('exit', () => reject(new Error(`tcpdump exited: ${this.err.trim()}`)));
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const f = parseFrame(line);
      if (!f) return;
      if (f.kind === 'garp' || f.kind === 'una') {
        this.announcements++;
        if (!this.firstAnnounce.has(f.ip)) this.firstAnnounce.set(f.ip, { t: f.t, src: f.src });
      }
      if (this.keep) this.frames.push(f);
      for (const w of [...this.waiters]) w();
    });
  }

  /** Stops tcpdump; resolves with the packets it says the kernel dropped (NaN if it does not say). */
  stop(): Promise<number> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve(NaN);
      this.child.once('exit', () => resolve(Number(/(\d+) packets? dropped by kernel/.exec(this.err)?.[1])));
      this.child.kill('SIGINT');
      setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
    });
  }

  reset(): void {
    this.frames = [];
    this.firstAnnounce = new Map();
    this.announcements = 0;
  }

  /** The first frame `ok` accepts (looking at those already captured too), or undefined after timeoutMs. */
  waitFor(ok: (f: Frame) => boolean, timeoutMs: number): Promise<Frame | undefined> {
    return new Promise((resolve) => {
      let seen = 0;
      const check = () => {
        for (; seen < this.frames.length; seen++) {
          const f = this.frames[seen]!;
          if (ok(f)) return finish(f);
        }
      };
      const finish = (f: Frame | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(f);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves when `ok` holds (checked on every frame and every 100 ms), or after timeoutMs. */
  until(ok: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (ok()) finish(true);
      };
      const finish = (v: boolean) => {
        clearTimeout(timer);
        clearInterval(interval);
        this.waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => finish(ok()), timeoutMs);
      const interval = setInterval(check, 100);
      this.waiters.add(check);
      check();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Figures.

interface Stats {
  n: number;
  median: number;
  max: number;
  min: number;
}

function stats(values: readonly number[]): Stats {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const median = s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { n: s.length, median, max: s[s.length - 1] ?? NaN, min: s[0] ?? NaN };
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : '-');
const mib = (kb: number) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(1)} MiB` : '-');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

// ---------------------------------------------------------------------------------------------
// The agents' processes.

const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** CPU seconds (user + system) of a process, NaN when gone. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const s = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return NaN;
  }
}

/** VmRSS and VmHWM (peak) in kB. */
function memory(pid: number | undefined): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
    return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]), hwm: Number(/VmHWM:\s+(\d+)/.exec(s)?.[1]) };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** A metric's value from Prometheus text (the first sample, or the sum of those matching `labels`). */
function metric(text: string, name: string, labels = ''): number {
  let sum = NaN;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (labels && !line.includes(labels)) continue;
    sum = (Number.isNaN(sum) ? 0 : sum) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------

let lc: LabCluster | undefined;
let capture: Capture;

function liveAgents() {
  return [...lc!.agents.values()].filter((a) => a.alive);
}

/** Every live agent counts `n` live nodes (its gossip view). */
async function membershipSettled(n: number, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const counts = await Promise.all(
      liveAgents().map((a) =>
        a
          .metrics()
          .then((t) => metric(t, 'metallb_agent_alive_nodes'))
          .catch(() => NaN),
      ),
    );
    if (counts.length === n && counts.every((c) => c === n)) return true;
    await sleep(200);
  }
  return false;
}

/** Waits until exactly one node answers ARP for `ip` twice in a row; returns it. */
async function oneOwner(ip: string, timeoutMs = 60_000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  while (Date.now() < deadline) {
    const o = await lc!.owner(ip).catch(() => 'two');
    if (o !== undefined && o !== 'two' && o === last) return o;
    last = o;
    await sleep(100);
  }
  return undefined;
}

/** Back to normal: all agents up and agreeing on three live nodes, one owner, then SETTLE_MS. */
async function settle(ip: string): Promise<string> {
  if (!(await membershipSettled(lc!.lab.nodes.length))) progress('warning: membership did not settle within 60 s');
  const owner = await oneOwner(ip);
  if (!owner) throw new Error(`nobody (or several nodes) kept answering for ${ip}`);
  await sleep(SETTLE_MS);
  return (await oneOwner(ip)) ?? owner;
}

interface FailoverRun {
  from: string;
  to: string | undefined;
  garpMs: number;
  neighbourMs: number;
}

async function failoverRun(kind: 'kill' | 'silent', ip: string): Promise<FailoverRun> {
  const lab = lc!.lab;
  const from = await settle(ip);
  const host = lab.host(from);
  for (let i = 0; i < 5 && (await lab.neighbour(ip)) !== host.mac; i++) {
    await lab.flushNeighbour(ip);
    await lab.exec(lab.client, 'ping', ['-c', '1', '-W', '2', ip]).catch(() => null);
  }
  const t0 = Date.now();
  if (kind === 'kill') lc!.agents.get(from)!.kill('SIGKILL');
  else await lab.setConnected(host, false);
  const garp = capture.waitFor((f) => f.t * 1000 >= t0 && f.kind === 'garp' && f.ip === ip && f.src !== host.mac, 30_000);
  let neighbourMs = NaN;
  let mac: string | undefined;
  while (Date.now() - t0 < 30_000) {
    mac = await lab.neighbour(ip);
    if (mac !== undefined && mac !== host.mac) {
      neighbourMs = Date.now() - t0;
      break;
    }
    await sleep(10);
  }
  const g = await garp;
  const run: FailoverRun = { from, to: lc!.nodeOfMac(mac) ?? lc!.nodeOfMac(g?.src), garpMs: g ? g.t * 1000 - t0 : NaN, neighbourMs };
  if (kind === 'kill') {
    await lc!.agents.get(from)!.exited;
    await lc!.startAgent(from);
  } else await lab.setConnected(host, true);
  progress(`${kind}: ${from} -> ${String(run.to)}: gratuitous ARP ${ms(run.garpMs)} ms, neighbour ${ms(run.neighbourMs)} ms`);
  return run;
}

async function partFailover(figures: Record<string, unknown>): Promise<string[]> {
  const [ip] = await lc!.createService('bench-failover');
  const out: string[] = [];
  const rows = [['failover (ms from the event)', 'runs', 'gratuitous ARP median', 'max', 'neighbour entry median', 'max', 'target: median < 1 s']];
  for (const kind of ['kill', 'silent'] as const) {
    const runs: FailoverRun[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await failoverRun(kind, ip!));
    const garp = stats(runs.map((r) => r.garpMs));
    const neigh = stats(runs.map((r) => r.neighbourMs));
    const met = garp.median < TARGET_MS && neigh.median < TARGET_MS;
    rows.push([
      kind === 'kill' ? 'owner agent SIGKILLed' : 'owner node silent (port down)',
      String(runs.length),
      ms(garp.median),
      ms(garp.max),
      ms(neigh.median),
      ms(neigh.max),
      met ? 'met' : 'NOT MET',
    ]);
    const missed = runs.filter((r) => !Number.isFinite(r.garpMs) || !Number.isFinite(r.neighbourMs)).length;
    if (missed) out.push(`  ${kind}: ${missed} of ${runs.length} runs saw no change within 30 s (left out of the figures)`);
    figures[kind] = { runs, garp, neighbour: neigh, targetMet: met };
  }
  await lc!.kube.delete({ group: '', version: 'v1', plural: 'services', namespaced: true }, 'bench-failover', 'default');
  return [table(rows), ...out, '  MetalLB for context: ~3 s with memberlist, 40 s or more without.'];
}

/** The EndpointSlice of `service` with one ready endpoint on each of `nodes`; resolves with the time of the write call. */
async function writeEndpoints(service: string, nodes: string[]): Promise<number> {
  const name = `${service}-lab`;
  const existing = await lc!.kube.get(ENDPOINT_SLICES, name, 'default');
  const slice: KubeObject = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service }, ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}) },
    addressType: 'IPv4',
    endpoints: nodes.map((node, i) => ({ addresses: [`192.0.2.${10 + i}`], conditions: { ready: true, serving: true, terminating: false }, nodeName: node })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
  const t0 = Date.now();
  if (existing) await lc!.kube.replace(ENDPOINT_SLICES, slice);
  else await lc!.kube.create(ENDPOINT_SLICES, slice);
  return t0;
}

async function partEndpoint(figures: Record<string, unknown>): Promise<string[]> {
  const lab = lc!.lab;
  const [ip] = await lc!.createService('bench-ep', { local: true, endpointsOn: [] });
  const runs: { node: string; garpMs: number; replyMs: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const node = lab.nodes[i % lab.nodes.length]!;
    const deadline = Date.now() + 15_000;
    while ((await lc!.arping(ip!, 1)).length > 0 && Date.now() < deadline) await sleep(100);
    await sleep(500);
    // The client asks every 20 ms (Habets' arping: -W is the interval).
    const arping = lab.spawn(lab.client, 'arping', ['-i', 'eth0', '-W', '0.02', '-c', '1000', ip!]);
    await sleep(200);
    const t0 = await writeEndpoints('bench-ep', [node.name]);
    const garp = capture.waitFor((f) => f.t * 1000 >= t0 && f.kind === 'garp' && f.ip === ip && f.src === node.mac, 15_000);
    const reply = capture.waitFor((f) => f.t * 1000 >= t0 && f.kind === 'reply' && f.ip === ip && f.src === node.mac, 15_000);
    const [g, r] = await Promise.all([garp, reply]);
    arping.kill('SIGKILL');
    runs.push({ node: node.name, garpMs: g ? g.t * 1000 - t0 : NaN, replyMs: r ? r.t * 1000 - t0 : NaN });
    progress(`endpoint on ${node.name}: gratuitous ARP ${ms(runs.at(-1)!.garpMs)} ms, reply ${ms(runs.at(-1)!.replyMs)} ms`);
    await writeEndpoints('bench-ep', []);
  }
  await lc!.kube.delete({ group: '', version: 'v1', plural: 'services', namespaced: true }, 'bench-ep', 'default');
  const garp = stats(runs.map((r) => r.garpMs));
  const reply = stats(runs.map((r) => r.replyMs));
  figures.endpoint = { runs, garp, reply };
  return [
    table([
      ['endpoint ready -> (ms from the EndpointSlice write)', 'runs', 'median', 'max'],
      ["the node's first gratuitous ARP", String(garp.n), ms(garp.median), ms(garp.max)],
      ['its first ARP reply to the client (asking every 20 ms)', String(reply.n), ms(reply.median), ms(reply.max)],
    ]),
  ];
}

// ---------------------------------------------------------------------------------------------
// Scale.

interface Sample {
  cpu: number[];
  rss: number[];
  hwm: number[];
}

function sample(nodes: string[]): Sample {
  const pids = nodes.map((n) => lc!.agents.get(n)?.child.pid);
  return { cpu: pids.map(cpuSeconds), rss: pids.map((p) => memory(p).rss), hwm: pids.map((p) => memory(p).hwm) };
}

function ipOf(i: number): string {
  if (i < N4) return `198.18.0.${i + 1}`;
  const j = i - N4 + 1;
  return `2001:db8:200::${j.toString(16)}`;
}

async function partScale(figures: Record<string, unknown>): Promise<string[]> {
  const lab = lc!.lab;
  const api = lc!.cluster.api;
  const store = api.store;
  const nodes = lab.nodes.map((n) => n.name);
  const out: string[] = [];
  await lc!.kube.create(POOLS, {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name: 'bench', namespace: NAMESPACE },
    spec: { addresses: ['198.18.0.0/24', '2001:db8:200::/112'], autoAssign: false },
  });
  for (const r of lc!.cluster.replicas) {
    r.kill('SIGTERM');
    await r.exited;
  }
  await store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: BENCH_NS } });
  await sleep(3000);
  // Idle, as good as empty.
  const idleWindow = 10;
  const i0 = sample(nodes);
  await sleep(idleWindow * 1000);
  const i1 = sample(nodes);
  progress('idle sampled; writing Services');

  capture.keep = false;
  capture.reset();
  const ownCpu0 = process.cpuUsage();
  const t0 = Date.now();
  const s0 = sample(nodes);
  for (let i = 0; i < N; i++) {
    const name = `lb-${i}`;
    const ip = ipOf(i);
    const family = i < N4 ? 'IPv4' : 'IPv6';
    await store.create({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-lab`, namespace: BENCH_NS, labels: { 'kubernetes.io/service-name': name } },
      addressType: family,
      endpoints: nodes.map((node, k) => ({
        addresses: [family === 'IPv4' ? `10.244.${k}.${(i % 250) + 1}` : `fd00:244:${k}::${(i + 1).toString(16)}`],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: node,
      })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    const svc = await store.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: BENCH_NS, annotations: { 'metallb.io/ip-allocated-from-pool': 'bench', 'metallb.io/assigned-ips': ip } },
      spec: {
        type: 'LoadBalancer',
        allocateLoadBalancerNodePorts: false,
        selector: { app: name },
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
        ipFamilies: [family],
        ipFamilyPolicy: 'SingleStack',
      },
    });
    await store.updateStatus({ ...svc, status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } });
    if (i % 50 === 49) await yieldLoop();
  }
  const written = Date.now();
  progress(`${N} Services written in ${written - t0} ms`);

  const statusCount = () =>
    store
      .list('metallb.io/v1beta1', 'ServiceL2Status', { namespace: NAMESPACE })
      .filter((o) => (o.status as { serviceNamespace?: string } | undefined)?.serviceNamespace === BENCH_NS).length;
  const benchIPs = new Set(Array.from({ length: N }, (_, i) => ipOf(i)));
  const announcedIPs = () => [...capture.firstAnnounce.keys()].filter((ip) => benchIPs.has(ip)).length;
  let wireAt = NaN;
  let statusAt = NaN;
  let peakSync: Sample = s0;
  while (Date.now() - t0 < SYNC_TIMEOUT_MS) {
    if (Number.isNaN(wireAt) && announcedIPs() >= N) wireAt = Date.now();
    if (Number.isNaN(statusAt) && statusCount() >= N) statusAt = Date.now();
    const s = sample(nodes);
    peakSync = { ...s, rss: s.rss.map((v, k) => Math.max(v, peakSync.rss[k] ?? 0)) };
    if (!Number.isNaN(wireAt) && !Number.isNaN(statusAt)) break;
    await sleep(500);
  }
  const s1 = sample(nodes);
  const ownCpu = process.cpuUsage(ownCpu0);
  const lastAnnounce = Math.max(...[...capture.firstAnnounce.entries()].filter(([ip]) => benchIPs.has(ip)).map(([, v]) => v.t * 1000));
  progress(`synced: wire ${ms(wireAt - t0)} ms, statuses ${ms(statusAt - t0)} ms`);
  const metricsText = await Promise.all(
    nodes.map((n) =>
      lc!.agents
        .get(n)!
        .metrics()
        .catch(() => ''),
    ),
  );
  const announcedServices = metricsText.map((t) => metric(t, 'metallb_agent_announced_services', 'protocol="layer2"'));
  const statusWrites = metricsText.map((t) => metric(t, 'metallb_agent_status_writes_total'));
  // Settled: the gratuitous schedule (0..4 s) and the status writes are over.
  await sleep(10_000);
  const a0 = sample(nodes);
  await sleep(idleWindow * 1000);
  const a1 = sample(nodes);
  const ownerOf = new Map<string, string>();
  for (const o of store.list('metallb.io/v1beta1', 'ServiceL2Status', { namespace: NAMESPACE })) {
    const st = o.status as { serviceNamespace?: string; serviceName?: string; node?: string } | undefined;
    if (st?.serviceNamespace === BENCH_NS && st.serviceName && st.node) ownerOf.set(ipOf(Number(st.serviceName.slice(3))), st.node);
  }
  const share = nodes.map((n) => [...ownerOf.values()].filter((o) => o === n).length);

  const pct = (a: Sample, b: Sample, k: number, secs: number) => `${((100 * ((b.cpu[k] ?? NaN) - (a.cpu[k] ?? NaN))) / secs).toFixed(1)}%`;
  const syncSecs = (Math.max(wireAt, statusAt, written) - t0) / 1000;
  const rows = [
    ['agent', 'IPs owned', 'idle CPU (before)', 'RSS before', 'CPU s over the sync', 'peak RSS (sync)', `idle CPU at ${N}`, `RSS at ${N}`, 'announced', 'status writes'],
  ];
  for (const [k, n] of nodes.entries())
    rows.push([
      n,
      String(share[k]),
      pct(i0, i1, k, idleWindow),
      mib(i1.rss[k]!),
      ((s1.cpu[k] ?? NaN) - (s0.cpu[k] ?? NaN)).toFixed(1),
      mib(Math.max(peakSync.rss[k]!, s1.hwm[k]!)),
      pct(a0, a1, k, idleWindow),
      mib(a1.rss[k]!),
      String(announcedServices[k]),
      String(statusWrites[k]),
    ]);
  out.push(table(rows));
  out.push(
    `  ${N} Services (${N4} IPv4, ${N - N4} IPv6) written into the double in ${((written - t0) / 1000).toFixed(1)} s; every IP announced on the wire after ${ms(wireAt - t0)} ms (last first announcement ${ms(lastAnnounce - t0)} ms),`,
    `  every ServiceL2Status there after ${ms(statusAt - t0)} ms; the double (this process) used ${((ownCpu.user + ownCpu.system) / 1e6).toFixed(1)} CPU s meanwhile; sync window ${syncSecs.toFixed(1)} s.`,
  );
  figures.scale = {
    services: N,
    ipv4: N4,
    writtenMs: written - t0,
    wireMs: wireAt - t0,
    statusMs: statusAt - t0,
    doubleCpuS: (ownCpu.user + ownCpu.system) / 1e6,
    agents: nodes.map((n, k) => ({
      node: n,
      owned: share[k],
      idleCpuBefore: ((i1.cpu[k] ?? NaN) - (i0.cpu[k] ?? NaN)) / idleWindow,
      rssBeforeKb: i1.rss[k],
      syncCpuS: (s1.cpu[k] ?? NaN) - (s0.cpu[k] ?? NaN),
      peakRssKb: Math.max(peakSync.rss[k]!, s1.hwm[k]!),
      idleCpuAfter: ((a1.cpu[k] ?? NaN) - (a0.cpu[k] ?? NaN)) / idleWindow,
      rssAfterKb: a1.rss[k],
      announcedServices: announcedServices[k],
      statusWrites: statusWrites[k],
    })),
  };

  // Failover at scale: the node owning most IPs dies.
  const victimIdx = share.indexOf(Math.max(...share));
  const victim = nodes[victimIdx]!;
  const victimMac = lab.host(victim).mac;
  const theirs = new Set([...ownerOf].filter(([, n]) => n === victim).map(([ip]) => ip));
  await membershipSettled(nodes.length);
  capture.reset();
  const survivors = nodes.filter((n) => n !== victim);
  const survivorMetrics = () =>
    Promise.all(
      survivors.map((n) =>
        lc!.agents
          .get(n)!
          .metrics()
          .catch(() => ''),
      ),
    );
  const m0 = await survivorMetrics();
  const f0 = sample(survivors);
  const k0 = Date.now();
  lc!.agents.get(victim)!.kill('SIGKILL');
  const takenOver = () => [...capture.firstAnnounce].filter(([ip, v]) => theirs.has(ip) && v.src !== victimMac && v.t * 1000 >= k0);
  await capture.until(() => takenOver().length > 0, 60_000);
  const first = Math.min(...takenOver().map(([, v]) => v.t * 1000));
  const firstV4 = Math.min(
    ...takenOver()
      .filter(([ip]) => !ip.includes(':'))
      .map(([, v]) => v.t * 1000),
  );
  await capture.until(() => takenOver().length >= theirs.size, 60_000);
  const taken = takenOver();
  const last = Math.max(...taken.map(([, v]) => v.t * 1000));
  const victimStatuses = () =>
    store
      .list('metallb.io/v1beta1', 'ServiceL2Status', { namespace: NAMESPACE })
      .filter((o) => (o.status as { serviceNamespace?: string; node?: string } | undefined)?.serviceNamespace === BENCH_NS && (o.status as { node?: string }).node === victim)
      .length;
  let left = NaN;
  const allMoved = await (async () => {
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      left = victimStatuses();
      if (left === 0) return Date.now();
      await sleep(250);
    }
    return NaN;
  })();
  const f1 = sample(survivors);
  const m1 = await survivorMetrics();
  const delta = (name: string, labels = '') => survivors.map((_, k) => metric(m1[k]!, name, labels) - (metric(m0[k]!, name, labels) || 0));
  const passMs = delta('metallb_agent_recompute_duration_seconds_sum', 'scope="liveness"').map((v) => v * 1000);
  const gratuitous = delta('metallb_layer2_gratuitous_sent');
  const writes = delta('metallb_agent_status_writes_total');
  const writeErrors = delta('metallb_agent_status_writes_total', 'result="error"');
  const warnings = survivors.flatMap((n) =>
    lc!.agents
      .get(n)!
      .output.split('\n')
      .filter((l) => /ServiceL2Status of .*retrying/.test(l)),
  );
  const announcedAfter = survivors.map((_, k) => metric(m1[k]!, 'metallb_agent_announced_services', 'protocol="layer2"'));
  progress(`failover at scale: first ${ms(first - k0)} ms, last ${ms(last - k0)} ms`);
  out.push(
    '',
    table([
      [`failover at ${N}: ${victim} (owner of ${theirs.size} IPs) SIGKILLed`, 'ms'],
      ['first announcement of one of its IPs by another node', ms(first - k0)],
      ['first gratuitous ARP (IPv4) of one of them', ms(firstV4 - k0)],
      [`last of its IPs announced by another node (${taken.length} of ${theirs.size} seen)`, ms(last - k0)],
      [`its ServiceL2Status objects all gone (replaced by the new owners')`, ms(allMoved - k0)],
    ]),
    ...(Number.isNaN(allMoved) ? [`  ${left} of its ServiceL2Status objects were still there after 180 s`] : []),
    ...(warnings.length > 0 ? [`  ${warnings.length} failed ServiceL2Status writes logged by the survivors, e.g. ${warnings[0]!.trim()}`] : []),
    table([
      ['survivor', 'CPU s', 'liveness recompute ms', 'gratuitous frames sent', 'status writes (failed)', 'announced after'],
      ...survivors.map((n, k) => [
        n,
        ((f1.cpu[k] ?? NaN) - (f0.cpu[k] ?? NaN)).toFixed(1),
        ms(passMs[k]!),
        String(gratuitous[k]),
        `${writes[k]} (${writeErrors[k] || 0})`,
        String(announcedAfter[k]),
      ]),
    ]),
  );
  figures.scaleFailover = {
    victim,
    owned: theirs.size,
    firstMs: first - k0,
    firstIPv4Ms: firstV4 - k0,
    lastMs: last - k0,
    seen: taken.length,
    statusMovedMs: allMoved - k0,
    statusLeft: left,
    survivors: survivors.map((n, k) => ({
      node: n,
      cpuS: (f1.cpu[k] ?? NaN) - (f0.cpu[k] ?? NaN),
      livenessRecomputeMs: passMs[k],
      gratuitous: gratuitous[k],
      statusWrites: writes[k],
      statusWriteErrors: writeErrors[k],
      announced: announcedAfter[k],
    })),
  };
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const why = await labUnavailable();
  if (why) {
    process.stdout.write(`failover bench: skipped, ${why}\n`);
    return;
  }
  for (const tool of ['tcpdump', 'arping']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      process.stdout.write(`failover bench: skipped, it needs ${tool}\n`);
      return;
    }
  }
  const stopAndExit = (code: number) => {
    void (lc?.stop() ?? Promise.resolve()).finally(() => process.exit(code));
  };
  process.once('SIGINT', () => stopAndExit(130));
  process.once('SIGTERM', () => stopAndExit(143));
  const figures: Record<string, unknown> = { runs: RUNS, load: { start: os.loadavg() } };
  // Each part prints as soon as it is done.
  const print = (lines: string[]) => process.stdout.write(`${lines.join('\n')}\n\n`);
  print([`layer 2 on the lab (${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)} at the start)`]);
  try {
    progress('starting the lab');
    lc = await LabCluster.start();
    capture = new Capture(lc.lab, lc.lab.client);
    await capture.ready;
    await membershipSettled(lc.lab.nodes.length);
    if (PARTS.has('failover')) print(await partFailover(figures));
    if (PARTS.has('endpoint')) print(await partEndpoint(figures));
    if (PARTS.has('scale')) print(await partScale(figures));
    const dropped = await capture.stop();
    figures.captureDropped = dropped;
    if (dropped > 0) print([`(the client's tcpdump says the kernel dropped ${dropped} packets: announcements missing from the figures above were sent but not seen)`]);
  } finally {
    await lc?.stop();
  }
  (figures.load as Record<string, unknown>).end = os.loadavg();
  print([`load average ${os.loadavg()[0]!.toFixed(1)} at the end`]);
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(figures, null, 2));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`failover bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
