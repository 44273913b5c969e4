/**
 * Admission and assignment under load: N LoadBalancer Services created through the real
 * client-node, C in flight at a time, against the API server double (HTTPS) calling our
 * admission webhooks (HTTPS) while the leader's reconcile loop writes their status; then a
 * restart of the controller and a leader change over the Services so made.
 *
 * Three parts, as in a cluster: the double in a worker thread (admission-apiserver.ts), each
 * controller in a process of its own (admission-controller.ts: the wiring of webhook/main.ts,
 * authenticated as the controller's ServiceAccount, so that the IPClaim webhook lets its claim
 * writes through), and the client and referee here, in the main thread.
 *
 * Phases:
 * 1. warm-up (50 Services);
 * 2. baseline: N Services of another loadBalancerClass with our webhook configurations deleted,
 *    so the reconcile loop leaves them alone too: what the double and the client cost without
 *    us (BENCH_BASELINE=0 skips it); they are deleted again before the fill;
 * 3. fill: N Services of ours. Measured: the create call, create return -> status.ingress (seen
 *    on a watch), throughput, the webhook handler and HTTPS request times, the API requests each
 *    side made (the double's counters, by User-Agent: every request of a controller process
 *    carries `metallb-ts-bench-controller/<identity>`, every request of the client
 *    `metallb-ts-bench-client`), the controller's CPU time (process.cpuUsage() in its process,
 *    from just before the first create until it is idle after the last status) and memory;
 * 4. restart: the controller process is stopped (as on SIGTERM: the lease is released) and a
 *    new one started on the same claims; its writes are counted from its start until a few
 *    seconds after it has led and gone idle (target: none for Services that did not change);
 * 5. leader change: a third process starts as a standby, the leader is stopped, and the moment
 *    the standby is elected a few Services are created: election -> status (target: 2 s).
 *
 * The bench exits 1, without figures, if any invariant breaks: a Service without an IP, an IP
 * held twice, an IP that moved after admission (a Service admitted with X ends with Y), a create
 * the webhook did not answer (admitted without an IP because of failurePolicy Ignore), a
 * webhook verdict other than allowed, or any violation found by test/e2e/invariants.ts (claims
 * vs annotations vs status). Targets missed are reported, not fatal (BENCH_STRICT=1 makes them so).
 *
 * Run with `npm run bench` (2,000 Services), or alone:
 *   npm run build && node dist/test/bench/admission.js [N] [C]
 * e.g. `node dist/test/bench/admission.js 10000` (about 10 minutes on 2 busy cores). Environment:
 *   BENCH_FAMILY=IPv6|IPv4|mixed   the Services' family (default IPv6; mixed alternates, and
 *                                  reports each family's figures under the same load)
 *   BENCH_BASELINE=0               skip the baseline phase
 *   BENCH_TRACE=1                  record which controller code makes each API request (slower)
 *   BENCH_CPU_PROF=DIR             CPU profile of the controller during the fill, into DIR
 *                                  (summarise with node dist/test/bench/cpuprofile.js FILE)
 *   BENCH_JSON=FILE                every figure as JSON too
 *   BENCH_VERBOSE=1                progress on stderr
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, Watch, type KubeConfig, type V1Service } from '@kubernetes/client-node';
import type { RequestCountRow } from '../apiserver/index.js';
import {
  CLIENT_AGENT,
  CONTROLLER_AGENT,
  epochMs,
  MUTATING,
  NAMESPACE,
  POOL_RANGES,
  StampedKubeConfig,
  VALIDATING,
  type ControllerConfig,
  type ControllerStats,
  type Family,
  type FromApiServer,
  type FromController,
  type ToApiServer,
  type ToController,
} from './admission-protocol.js';

const N = Number(process.argv[2] ?? process.env.BENCH_N ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? process.env.BENCH_CONCURRENCY ?? 50);
const MODE = (process.env.BENCH_FAMILY ?? 'IPv6') as Family | 'mixed';
const BASELINE = process.env.BENCH_BASELINE !== '0';
const TRACE = process.env.BENCH_TRACE === '1';
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
const STRICT = process.env.BENCH_STRICT === '1';
const WARMUP = 50;
/** Services created the moment the standby is elected. */
const AFTER_ELECTION = 5;
/** How long the restarted controller is watched after it has gone idle. */
const RESTART_WINDOW_MS = 5000;
/** As webhook/main.ts's defaults. */
const LEASE_DURATION_MS = 4000;
const RENEW_MS = 2000;
const STATUS_TIMEOUT_MS = Math.max(30_000, N * 20);

const TARGET = { requestsPerCreate: 3, restartWritesPerService: 0, electionToStatusMs: 2000 };

if (!(Number.isInteger(N) && N >= 10) || !(Number.isInteger(CONCURRENCY) && CONCURRENCY >= 1) || !['IPv4', 'IPv6', 'mixed'].includes(MODE)) {
  process.stderr.write('usage: node dist/test/bench/admission.js [N >= 10] [C >= 1] (BENCH_FAMILY=IPv4|IPv6|mixed)\n');
  process.exit(2);
}

const familyOf = (i: number): Family => (MODE === 'mixed' ? (i % 2 === 0 ? 'IPv4' : 'IPv6') : MODE);
const FAMILIES: Family[] = MODE === 'mixed' ? ['IPv4', 'IPv6'] : [MODE];

const progress = (what: string) => {
  if (process.env.BENCH_VERBOSE) process.stderr.write(`${(performance.now() / 1000).toFixed(1)}s ${what}\n`);
};
const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

/** Everything started, stopped on the way out whatever happens. */
const children = new Set<ChildProcess>();
function fatal(what: string): never {
  process.stderr.write(`admission bench: ${what}\n`);
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// The API server thread and the controller processes.

class ApiServerThread {
  private readonly worker: Worker;
  private readonly waiting: { op: FromApiServer['op']; resolve: (m: FromApiServer) => void }[] = [];

  constructor() {
    this.worker = new Worker(new URL('./admission-apiserver.js', import.meta.url));
    this.worker.on('message', (m: FromApiServer) => {
      const i = this.waiting.findIndex((w) => w.op === m.op);
      if (i >= 0) this.waiting.splice(i, 1)[0]?.resolve(m);
    });
    this.worker.on('error', (e) => fatal(`API server thread failed: ${e.stack ?? e.message}`));
  }

  next<T extends FromApiServer['op']>(op: T): Promise<Extract<FromApiServer, { op: T }>> {
    return new Promise((resolve) => this.waiting.push({ op, resolve: resolve as (m: FromApiServer) => void }));
  }

  ask<T extends FromApiServer['op']>(m: ToApiServer, reply: T): Promise<Extract<FromApiServer, { op: T }>> {
    const p = this.next(reply);
    this.worker.postMessage(m);
    return p;
  }

  async stop(): Promise<void> {
    await this.ask({ op: 'stop' }, 'stopped');
    await this.worker.terminate();
  }
}

class ControllerProcess {
  readonly child: ChildProcess;
  private readonly waiting: { op: FromController['op']; resolve: (m: FromController) => void }[] = [];
  private stopping = false;
  readonly exited: Promise<void>;

  constructor(
    readonly identity: string,
    kubeconfigPath: string,
  ) {
    const config: ControllerConfig = {
      kubeconfigPath,
      identity,
      trace: TRACE,
      leaseDurationMs: LEASE_DURATION_MS,
      renewMs: RENEW_MS,
      ...(PROFILE_DIR && { profileDir: PROFILE_DIR }),
    };
    const execArgv = ['--expose-gc', ...(TRACE ? ['--enable-source-maps'] : [])];
    this.child = fork(fileURLToPath(new URL('./admission-controller.js', import.meta.url)), [], {
      env: { ...process.env, BENCH_CONTROLLER: JSON.stringify(config) },
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(this.child);
    this.child.on('message', (m: FromController) => {
      if (m.op === 'failed') fatal(`controller ${identity} failed: ${m.error}`);
      const i = this.waiting.findIndex((w) => w.op === m.op);
      if (i >= 0) this.waiting.splice(i, 1)[0]?.resolve(m);
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        children.delete(this.child);
        if (!this.stopping) fatal(`controller ${identity} exited (${String(code ?? signal)}) unasked`);
        resolve();
      }),
    );
  }

  next<T extends FromController['op']>(op: T): Promise<Extract<FromController, { op: T }>> {
    return new Promise((resolve) => this.waiting.push({ op, resolve: resolve as (m: FromController) => void }));
  }

  ask<T extends FromController['op']>(m: ToController, reply: T): Promise<Extract<FromController, { op: T }>> {
    const p = this.next(reply);
    this.child.send(m);
    return p;
  }

  async stats(reset = false): Promise<ControllerStats> {
    return (await this.ask({ op: 'stats', reset }, 'stats')).stats;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.ask({ op: 'stop' }, 'stopped');
    await this.exited;
  }
}

/**
 * Resolves once the controller is idle: no API call of its own (lease renewals aside) in flight
 * or for `quietMs`, and its event loop under 10% busy over the last second (not looked at while
 * profiling: the profiler's sampling keeps the loop looking busy; 3 s of quiet then).
 */
async function waitIdle(c: ControllerProcess, quietMs = PROFILE_DIR ? 3000 : 1500, maxMs = 180_000): Promise<{ lastCallAt: number; idleAt: number }> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const s = await c.ask({ op: 'probe' }, 'probe');
    if (s.inflight === 0 && epochMs() - s.lastCallAt >= quietMs && (s.elu < 0.1 || PROFILE_DIR)) return { lastCallAt: s.lastCallAt, idleAt: epochMs() };
    if (performance.now() > deadline) fatal(`controller ${c.identity} still busy after ${maxMs} ms (elu ${s.elu.toFixed(2)}, ${s.inflight} calls in flight)`);
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// Creating Services and seeing their status.

interface StatusWatch {
  /** epoch ms at which `namespace/name` was first seen with an ingress IP. */
  seen: Map<string, number>;
  stop(): void;
}

async function watchStatus(kc: KubeConfig): Promise<StatusWatch> {
  const seen = new Map<string, number>();
  let stopped = false;
  let abort: AbortController | undefined;
  const start = async (): Promise<void> => {
    abort = await new Watch(kc).watch(
      '/api/v1/services',
      { allowWatchBookmarks: true },
      (_type, obj: V1Service) => {
        const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
        if (!seen.has(key) && obj.status?.loadBalancer?.ingress?.some((i) => i.ip)) seen.set(key, epochMs());
      },
      () => {
        // Restarts from now: anything missed is caught by the final list (and counted as late).
        if (!stopped) void start();
      },
    );
  };
  await start();
  return {
    seen,
    stop() {
      stopped = true;
      abort?.abort();
    },
  };
}

interface Phase {
  name: string;
  namespace: string;
  /** Services of our class (else another load-balancer's: no webhook, no IP expected). */
  ours: boolean;
  n: number;
  family: Family[];
  /** By creation index. */
  createMs: number[];
  /** epoch ms at which each create call returned. */
  returnedAt: number[];
  /** create-call return -> first watch event with an ingress IP (negative: status came first); by index, NaN if never. */
  statusMs: number[];
  wallMs: number;
  /** IPs on the objects the create calls returned, by Service name. */
  admittedIP: Map<string, string | undefined>;
  errors: string[];
}

function serviceBody(name: string, namespace: string, family: Family, loadBalancerClass?: string): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: {
      type: 'LoadBalancer',
      ipFamilies: [family],
      ipFamilyPolicy: 'SingleStack',
      // No node ports: 10,000 LoadBalancer Services would exhaust 30000-32767.
      allocateLoadBalancerNodePorts: false,
      selector: { app: name },
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      ...(loadBalancerClass ? { loadBalancerClass } : {}),
    },
  };
}

/** Runs task(i) for i < n with at most `concurrency` in flight. */
async function inFlight(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const runner = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, runner));
}

async function runPhase(
  name: string,
  namespace: string,
  n: number,
  core: CoreV1Api,
  watch: StatusWatch,
  opts: { loadBalancerClass?: string; concurrency?: number } = {},
): Promise<Phase> {
  const phase: Phase = {
    name,
    namespace,
    ours: !opts.loadBalancerClass,
    n,
    family: Array.from({ length: n }, (_, i) => familyOf(i)),
    createMs: [],
    returnedAt: [],
    statusMs: [],
    wallMs: 0,
    admittedIP: new Map(),
    errors: [],
  };
  const started = performance.now();
  await inFlight(n, opts.concurrency ?? CONCURRENCY, async (i) => {
    const svcName = `svc-${i}`;
    const t0 = performance.now();
    try {
      const created = await core.createNamespacedService({ namespace, body: serviceBody(svcName, namespace, familyOf(i), opts.loadBalancerClass) });
      phase.admittedIP.set(svcName, created.metadata?.annotations?.['metallb.io/assigned-ips']);
    } catch (e) {
      phase.errors.push(`${namespace}/${svcName}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      phase.admittedIP.set(svcName, undefined);
    }
    phase.createMs[i] = performance.now() - t0;
    phase.returnedAt[i] = epochMs();
  });
  phase.wallMs = performance.now() - started;
  progress(`${name}: ${n} created in ${phase.wallMs.toFixed(0)} ms`);
  if (phase.ours) await collectStatus(phase, watch);
  return phase;
}

async function collectStatus(phase: Phase, watch: StatusWatch): Promise<void> {
  const deadline = performance.now() + STATUS_TIMEOUT_MS;
  const key = (i: number) => `${phase.namespace}/svc-${i}`;
  const missing = () => phase.returnedAt.some((_, i) => !watch.seen.has(key(i)));
  while (performance.now() < deadline && missing()) await sleep(20);
  phase.statusMs = phase.returnedAt.map((t, i) => (watch.seen.get(key(i)) ?? NaN) - t);
}

/** Every LoadBalancer Service of ours has an IP, from the pool, no IP twice, none moved since admission. */
async function check(core: CoreV1Api, phases: readonly Phase[]): Promise<string[]> {
  const problems: string[] = [];
  const list = await core.listServiceForAllNamespaces({});
  const byKey = new Map(list.items.map((s) => [`${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`, s]));
  const holder = new Map<string, string>();
  const ranges = { IPv4: '198.18.', IPv6: '2001:db8::' };
  for (const svc of list.items) {
    if (svc.spec?.type !== 'LoadBalancer' || svc.spec.loadBalancerClass) continue;
    const key = `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;
    const ips = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((ip): ip is string => !!ip);
    if (ips.length === 0) problems.push(`${key} has no IP in status.loadBalancer.ingress`);
    for (const ip of ips) {
      const other = holder.get(ip);
      if (other) problems.push(`${ip} is held by ${other} and ${key}`);
      holder.set(ip, key);
      const family: Family = ip.includes(':') ? 'IPv6' : 'IPv4';
      if (!ip.startsWith(ranges[family])) problems.push(`${key} has ${ip}, outside the pool's ${POOL_RANGES[family]}`);
      if (svc.spec.ipFamilies?.[0] !== family) problems.push(`${key} is ${String(svc.spec.ipFamilies?.[0])} but has ${ip}`);
    }
    const annotated = svc.metadata?.annotations?.['metallb.io/assigned-ips'];
    if (ips.length > 0 && annotated !== ips.join(',')) problems.push(`${key}: annotation ${String(annotated)} disagrees with status ${ips.join(',')}`);
  }
  for (const p of phases) {
    for (const e of p.errors) problems.push(`create failed: ${e}`);
    if (!p.ours) continue;
    for (const [s, ip] of p.admittedIP) {
      const svc = byKey.get(`${p.namespace}/${s}`);
      if (!svc) {
        problems.push(`${p.namespace}/${s} was created but is not listed`);
        continue;
      }
      if (!ip) problems.push(`${p.namespace}/${s} came back from create without an IP (the webhook skipped or failed open)`);
      const now = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(',');
      if (ip !== undefined && ip !== now) problems.push(`${p.namespace}/${s} was admitted with ${ip} and now has ${now}`);
    }
    const late = p.statusMs.filter((v) => Number.isNaN(v)).length;
    if (late > 0) problems.push(`${late} Services of the ${p.name} phase got no status within ${STATUS_TIMEOUT_MS} ms on the watch`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Figures.

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

interface Stats {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function stats(values: readonly number[]): Stats {
  const s = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
}

const ms = (v: number) => (Number.isNaN(v) ? '-' : Math.abs(v) < 10 ? v.toFixed(2) : Math.abs(v) < 100 ? v.toFixed(1) : v.toFixed(0));
const per = (v: number) => (v === 0 ? '0' : v < 0.01 ? v.toFixed(4) : v < 10 ? v.toFixed(3) : v.toFixed(1));
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
}

/** `verb resource[/sub]` -> count, for rows whose User-Agent starts with `agent`. */
function byRequest(rows: readonly RequestCountRow[], agent: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) {
    if (!r.userAgent.startsWith(agent)) continue;
    const what = r.path ?? `${r.resource}${r.subresource ? `/${r.subresource}` : ''}`;
    const key = `${r.verb} ${what}`;
    out.set(key, (out.get(key) ?? 0) + r.count);
  }
  return new Map([...out].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
}

const sum = (m: Map<string, number>, keep: (k: string) => boolean = () => true) => [...m].filter(([k]) => keep(k)).reduce((a, [, v]) => a + v, 0);
const isWrite = (k: string) => /^(create|update|patch|delete|deletecollection) /.test(k);
const isLease = (k: string) => / leases(\/|$)/.test(k);
/**
 * Requests paced by time, not by creates: the pools' usage status (written at most every 500 ms,
 * whatever the rate) and watches started again when their timeoutSeconds ran out.
 */
const isTimePaced = (k: string) => / ipaddresspools\/status$/.test(k) || /^watch /.test(k);
/** Writes that are about Services: their objects, their claims, their events. */
const isServiceWrite = (k: string) => isWrite(k) && / (services|services\/status|ipclaims|events)$/.test(k);

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const t0 = performance.now();
  const api = new ApiServerThread();
  const { kubeconfigPath, controllerKubeconfigPath } = await api.next('ready');
  progress('API server up');
  const kc = new StampedKubeConfig(CLIENT_AGENT);
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);

  const start = async (identity: string) => {
    const c = new ControllerProcess(identity, controllerKubeconfigPath);
    const ready = await c.next('ready');
    return { c, ready };
  };
  const { c: first, ready: firstReady } = await start('bench-controller-a');
  const firstLeads = first.next('leading');
  await api.ask({ op: 'route', port: firstReady.port }, 'routed');
  await firstLeads;
  progress('controller a leads, webhook routed');

  // The pool goes through the configuration webhook (failurePolicy Fail). Both families always,
  // so that IPv4 and IPv6 runs differ in nothing but the Services' family.
  await custom.createNamespacedCustomObject({
    group: 'metallb.io',
    version: 'v1beta1',
    namespace: NAMESPACE,
    plural: 'ipaddresspools',
    body: { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'bench', namespace: NAMESPACE }, spec: { addresses: [POOL_RANGES.IPv4, POOL_RANGES.IPv6] } },
  });
  const namespaces = ['bench-probe', 'bench-warmup', 'bench-baseline', 'bench', 'bench-failover'];
  for (const name of namespaces) await core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  // Until the controller follows the pool: a dry-run create admitted with an IP of each family.
  for (const family of FAMILIES) {
    for (let i = 0; ; i++) {
      const probe = await core.createNamespacedService({ namespace: 'bench-probe', dryRun: 'All', body: serviceBody('probe', 'bench-probe', family) });
      if (probe.metadata?.annotations?.['metallb.io/assigned-ips']) break;
      if (i > 200) fatal(`the controller never loaded the pool: ${family} probe Services are admitted without an IP`);
      await sleep(50);
    }
  }
  progress('probe admitted with an IP');

  const watch = await watchStatus(kc);
  const warmup = await runPhase('warm-up', 'bench-warmup', WARMUP, core, watch);
  progress('warm-up done');

  let baseline: Phase | undefined;
  let baselineCalls = 0;
  if (BASELINE) {
    // Our webhook configurations deleted, Services of another class: what the double and the
    // client cost without us. Then they go, so that both phases start from the same store.
    const mutating = await admission.readMutatingWebhookConfiguration({ name: MUTATING });
    const validating = await admission.readValidatingWebhookConfiguration({ name: VALIDATING });
    await admission.deleteMutatingWebhookConfiguration({ name: MUTATING });
    await admission.deleteValidatingWebhookConfiguration({ name: VALIDATING });
    await first.stats(true);
    baseline = await runPhase('baseline: no webhooks', 'bench-baseline', N, core, watch, { loadBalancerClass: 'example.com/not-metallb' });
    baselineCalls = (await first.stats(true)).handler.mutateServices?.length ?? 0;
    await core.deleteCollectionNamespacedService({ namespace: 'bench-baseline' });
    for (let i = 0; (await core.listNamespacedService({ namespace: 'bench-baseline' })).items.length > 0; i++) {
      if (i > 600) fatal('the baseline Services were not deleted');
      await sleep(100);
    }
    const again = (o: { metadata?: { name?: string; labels?: Record<string, string> } }) => ({ ...o, metadata: { name: o.metadata?.name, labels: o.metadata?.labels } });
    await admission.createMutatingWebhookConfiguration({ body: again(mutating) });
    await admission.createValidatingWebhookConfiguration({ body: again(validating) });
    progress('baseline done');
  }

  // ---- fill
  await waitIdle(first);
  await api.ask({ op: 'counts', reset: true }, 'counts');
  const before = await first.stats(true);
  const fillStarted = epochMs();
  if (PROFILE_DIR) await first.ask({ op: 'profile-start' }, 'profile-started');
  const fill = await runPhase('fill', 'bench', N, core, watch);
  progress('fill: every status seen (or timed out)');
  const idle = await waitIdle(first);
  const profiled = PROFILE_DIR ? (await first.ask({ op: 'profile-stop', name: `fill-${MODE}-${N}` }, 'profile-stopped')).path : undefined;
  const after = await first.stats(true);
  const fillEnded = epochMs();
  const fillCounts = await api.ask({ op: 'counts', reset: true }, 'counts');
  const fillIdleMs = idle.lastCallAt - Math.max(...fill.returnedAt);
  const memory = after.memory;
  const memoryAfterGc = (await first.ask({ op: 'gc' }, 'gc')).memory;
  progress('fill measured');

  // ---- restart: a new process on the same claims
  await first.stop();
  await api.ask({ op: 'counts', reset: true }, 'counts');
  const restartStarted = epochMs();
  const { c: second, ready: secondReady } = await start('bench-controller-b');
  const secondLeads = second.next('leading');
  await api.ask({ op: 'route', port: secondReady.port }, 'routed');
  const { at: secondLedAt } = await secondLeads;
  const secondIdle = await waitIdle(second);
  await sleep(RESTART_WINDOW_MS);
  const restartStats = await second.stats(true);
  const restartCounts = await api.ask({ op: 'counts', reset: true }, 'counts');
  progress('restart measured');

  // ---- leader change: a warm standby takes over; Services created the moment it is elected
  const { c: third, ready: thirdReady } = await start('bench-controller-c');
  await api.ask({ op: 'route', port: thirdReady.port }, 'routed');
  await third.stats(true);
  if (PROFILE_DIR) await third.ask({ op: 'profile-start' }, 'profile-started');
  const thirdLeads = third.next('leading');
  const stopAsked = epochMs();
  const secondStopped = second.stop();
  const { at: electedAt } = await thirdLeads;
  const failover = await runPhase('after the election', 'bench-failover', AFTER_ELECTION, core, watch, { concurrency: AFTER_ELECTION });
  await secondStopped;
  const electionToStatus = failover.returnedAt.map((_, i) => (watch.seen.get(`bench-failover/svc-${i}`) ?? NaN) - electedAt);
  const electionToCreate = Math.min(...failover.returnedAt.map((t, i) => t - (failover.createMs[i] ?? 0))) - electedAt;
  const thirdIdle = await waitIdle(third);
  const profiledChange = PROFILE_DIR ? (await third.ask({ op: 'profile-stop', name: `leader-change-${MODE}-${N}` }, 'profile-stopped')).path : undefined;
  await sleep(RESTART_WINDOW_MS);
  const changeStats = await third.stats(true);
  const changeCounts = await api.ask({ op: 'counts', reset: true }, 'counts');
  progress('leader change measured');
  watch.stop();

  // ---- the referee
  const problems = await check(core, [warmup, fill, failover, ...(baseline ? [baseline] : [])]);
  const invariants = await api.ask({ op: 'invariants' }, 'invariants');
  problems.push(...invariants.violations);
  const mutateCalls = after.handler.mutateServices?.length ?? 0;
  if (mutateCalls < N) problems.push(`the mutating webhook answered ${mutateCalls} calls for ${N} creates`);
  for (const [who, s] of [
    ['fill', after],
    ['restart', restartStats],
    ['leader change', changeStats],
  ] as const) {
    const bad = Object.entries(s.verdicts).filter(([k]) => !k.endsWith('allowed=true'));
    if (bad.length > 0) problems.push(`${who}: webhook verdicts other than allowed: ${bad.map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  }
  if (baselineCalls > 0) problems.push(`the webhook was called ${baselineCalls} times during the baseline`);
  const allLogs = [...after.log, ...restartStats.log, ...changeStats.log];

  await third.stop();
  await api.stop();
  const load1 = os.loadavg();

  if (problems.length > 0) {
    process.stderr.write(`admission bench: FAILED, the system under test is broken (${problems.length} problems):\n`);
    for (const p of problems.slice(0, 40)) process.stderr.write(`  ${p}\n`);
    if (allLogs.length > 0)
      process.stderr.write(
        `controller log (first lines):\n${allLogs
          .slice(0, 20)
          .map((l) => `  ${l}`)
          .join('\n')}\n`,
      );
    process.exit(1);
  }

  // ---- figures
  const total = WARMUP + N;
  const ctlFill = byRequest(fillCounts.rows, CONTROLLER_AGENT);
  const clientFill = byRequest(fillCounts.rows, CLIENT_AGENT);
  const otherFill = fillCounts.rows.filter((r) => !r.userAgent.startsWith(CONTROLLER_AGENT) && !r.userAgent.startsWith(CLIENT_AGENT)).reduce((a, r) => a + r.count, 0);
  const perCreate = sum(ctlFill) / N;
  const perCreateNoLease = sum(ctlFill, (k) => !isLease(k)) / N;
  const perCreateDriven = sum(ctlFill, (k) => !isLease(k) && !isTimePaced(k)) / N;
  const cpuUser = after.cpu.user - before.cpu.user;
  const cpuSystem = after.cpu.system - before.cpu.system;
  const restartCtl = byRequest(restartCounts.rows, CONTROLLER_AGENT);
  const restartServiceWrites = sum(restartCtl, isServiceWrite);
  const changeCtl = byRequest(changeCounts.rows, CONTROLLER_AGENT);
  // The new leader's writes about Services other than the ones created after the election (its own recorder knows the namespaces).
  const changeOtherWrites = changeStats.calls
    .filter((c) => isServiceWrite(c.what))
    .reduce((a, c) => a + Object.entries(c.byNamespace).reduce((b, [ns, n]) => b + (ns === 'bench-failover' ? 0 : n), 0), 0);
  const create = stats(fill.createMs);
  const status = stats(fill.statusMs);
  const e2s = stats(electionToStatus);
  const rate = (N / fill.wallMs) * 1000;

  const targets = [
    {
      what: `API requests per create by the controllers <= ${TARGET.requestsPerCreate} (lease renewals, the pool usage status and watch renewals, all paced by time, left out)`,
      value: `${per(perCreateDriven)} (${per(perCreateNoLease)} with the pool usage status and watch renewals)`,
      met: perCreateDriven <= TARGET.requestsPerCreate,
    },
    {
      what: 'writes per unchanged Service at a controller restart = 0',
      value: `${restartServiceWrites} writes / ${total} Services`,
      met: restartServiceWrites === TARGET.restartWritesPerService,
    },
    {
      what: `status of a Service created right after a leader change within ${TARGET.electionToStatusMs} ms of the election`,
      value: `max ${ms(e2s.max)} ms`,
      met: e2s.n === AFTER_ELECTION && e2s.max <= TARGET.electionToStatusMs,
    },
    {
      what: `create -> status p50 below the create call's p50 at ${CONCURRENCY} in flight`,
      value: `${ms(status.p50)} vs ${ms(create.p50)} ms`,
      met: status.p50 < create.p50,
    },
  ];

  const out: string[] = [];
  const w = [52, 6, 8, 8, 8, 8];
  const line = (label: string, s: Stats) => out.push(row([label, String(s.n), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max)], w));
  out.push('');
  out.push(
    `Admission bench: ${N} LoadBalancer Services (${MODE}), ${CONCURRENCY} creates in flight, client-node -> API server double (HTTPS) -> webhooks (HTTPS) -> controller process${TRACE ? ' [BENCH_TRACE: slower]' : ''}${PROFILE_DIR ? ' [profiled: CPU inflated]' : ''}`,
  );
  out.push(
    `node ${process.version}, ${os.cpus().length} CPUs, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start, ${load1.map((l) => l.toFixed(2)).join(' ')} at end`,
  );
  out.push('');
  out.push(row(['latency, ms', 'n', 'p50', 'p90', 'p99', 'max'], w));
  out.push('-'.repeat(w.reduce((a, b) => a + b + 2, -2)));
  out.push('fill (with webhooks)');
  line('  create call (client)', create);
  line('  create return -> status.ingress (watch)', status);
  if (MODE === 'mixed') {
    for (const f of FAMILIES) {
      line(`    ${f}: create call`, stats(fill.createMs.filter((_, i) => fill.family[i] === f)));
      line(`    ${f}: create return -> status`, stats(fill.statusMs.filter((_, i) => fill.family[i] === f)));
    }
  }
  const fifth = Math.floor(N / 5);
  line(`  create call, first ${fifth}`, stats(fill.createMs.slice(0, fifth)));
  line(`  create call, last ${fifth}`, stats(fill.createMs.slice(N - fifth)));
  line(`  create -> status, first ${fifth}`, stats(fill.statusMs.slice(0, fifth)));
  line(`  create -> status, last ${fifth}`, stats(fill.statusMs.slice(N - fifth)));
  line('  webhook handler, mutate (observeAdmission)', stats(after.handler.mutateServices ?? []));
  line('  webhook handler, validate', stats(after.handler.validateServices ?? []));
  line('  webhook HTTPS request, /mutate/services', stats(after.request['/mutate/services'] ?? []));
  line('  webhook HTTPS request, /validate/services', stats(after.request['/validate/services'] ?? []));
  out.push(row(['  controller event loop delay (10 ms resolution)', '', ms(after.loopDelay.p50), '', ms(after.loopDelay.p99), ms(after.loopDelay.max)], w));
  for (const c of [...after.calls].sort((a, b) => b.count - a.count)) line(`  controller API call: ${c.what}`, stats(c.latencies));
  if (baseline) {
    out.push('baseline: webhook configurations deleted, Services of another loadBalancerClass');
    line('  create call (client)', stats(baseline.createMs));
  }
  out.push('leader change');
  line('  election -> status.ingress of a Service created then', e2s);
  line('  its create call (client)', stats(failover.createMs));
  line('  its create return -> status.ingress', stats(failover.statusMs));
  line('  the new leader: webhook HTTPS request, /mutate/services', stats(changeStats.request['/mutate/services'] ?? []));
  line('  the new leader: webhook handler, mutate', stats(changeStats.handler.mutateServices ?? []));
  out.push(row(['  the new leader: event loop delay (10 ms resolution)', '', ms(changeStats.loopDelay.p50), '', ms(changeStats.loopDelay.p99), ms(changeStats.loopDelay.max)], w));
  out.push('');

  const w2 = [60, 10, 12];
  out.push(row(['API requests during the fill (the double counts, by sender)', 'requests', 'per create'], w2));
  out.push('-'.repeat(w2.reduce((a, b) => a + b + 2, -2)));
  out.push(`controllers (token of ${CONTROLLER_AGENT.replace('-bench-controller', '')} ServiceAccount)`);
  for (const [k, v] of ctlFill) out.push(row([`  ${k}`, String(v), per(v / N)], w2));
  out.push(row(['  all', String(sum(ctlFill)), per(perCreate)], w2));
  out.push(row(['  all but lease renewals', String(sum(ctlFill, (k) => !isLease(k))), per(perCreateNoLease)], w2));
  out.push(row(['  all but lease renewals, pool usage status and watch renewals', String(sum(ctlFill, (k) => !isLease(k) && !isTimePaced(k))), per(perCreateDriven)], w2));
  out.push(row(['  writes', String(sum(ctlFill, isWrite)), per(sum(ctlFill, isWrite) / N)], w2));
  out.push('client (admin token)');
  for (const [k, v] of clientFill) out.push(row([`  ${k}`, String(v), per(v / N)], w2));
  if (otherFill > 0) out.push(row(['  requests of neither (unattributed)', String(otherFill), per(otherFill / N)], w2));
  out.push('');

  out.push('controller process during the fill');
  out.push(
    `  CPU time: ${((cpuUser + cpuSystem) / 1e6).toFixed(2)} s (user ${(cpuUser / 1e6).toFixed(2)} s, system ${(cpuSystem / 1e6).toFixed(2)} s) = ${((cpuUser + cpuSystem) / N / 1000).toFixed(2)} ms per Service (admission + reconcile), over ${((fillEnded - fillStarted) / 1000).toFixed(1)} s`,
  );
  out.push(
    `  memory after the fill (${total} Services, ${total} claims): RSS ${mib(memory.rss)}, heapUsed ${mib(memory.heapUsed)}; after a full GC heapUsed ${mib(memoryAfterGc.heapUsed)}, RSS ${mib(memoryAfterGc.rss)}`,
  );
  out.push(`  its last API call ${(fillIdleMs / 1000).toFixed(1)} s after the last create returned`);
  out.push(
    `throughput: ${rate.toFixed(1)} creates/s with webhooks (${(fill.wallMs / 1000).toFixed(1)} s for ${N})${baseline ? `, ${((N / baseline.wallMs) * 1000).toFixed(1)} creates/s baseline` : ''}`,
  );
  if (baseline) {
    const b = stats(baseline.createMs);
    out.push(`webhooks add ${ms(create.p50 - b.p50)} ms at p50 and ${ms(create.p99 - b.p99)} ms at p99 to a create`);
  }
  out.push('');

  out.push(`restart: a new controller process on the same ${total} Services and claims`);
  out.push(
    `  elected ${((secondLedAt - restartStarted) / 1000).toFixed(1)} s after it was started; idle (no call for 1.5 s, event loop < 10% busy) ${((secondIdle.idleAt - secondLedAt) / 1000).toFixed(1)} s after the election, then watched ${RESTART_WINDOW_MS / 1000} s more`,
  );
  out.push(`  writes about Services (services, services/status, ipclaims, events): ${restartServiceWrites}`);
  out.push(`  every request: ${[...restartCtl].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(
    `leader change: a standby elected ${((electedAt - stopAsked) / 1000).toFixed(2)} s after the leader was asked to stop; first create sent ${ms(electionToCreate)} ms after the election`,
  );
  out.push(`  the new leader's writes about other Services: ${changeOtherWrites}; every request: ${[...changeCtl].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(`  idle ${((thirdIdle.idleAt - electedAt) / 1000).toFixed(1)} s after the election`);
  out.push('');
  out.push('targets');
  for (const t of targets) out.push(`  ${t.met ? 'met    ' : 'NOT MET'}  ${t.what}: ${t.value}`);
  out.push('');
  out.push(
    `checked: ${WARMUP + N + AFTER_ELECTION} Services of ours and ${invariants.claims} claims (test/e2e/invariants.ts), each Service with one IP of its family from the pool, none twice, none moved since admission, every create answered by the webhook; total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  if (profiledChange) out.push(`CPU profile of the new leader from the old one's stop until idle: ${profiledChange}`);
  if (profiled) out.push(`CPU profile of the controller during the fill: ${profiled} (node dist/test/bench/cpuprofile.js ${profiled})`);
  if (TRACE) {
    out.push('');
    out.push('which code made the controller API requests during the fill (BENCH_TRACE=1)');
    for (const c of [...after.calls].sort((a, b) => b.count - a.count)) {
      out.push(`  ${c.what}: ${c.count}`);
      for (const [caller, n] of Object.entries(c.callers)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6))
        out.push(`    ${String(n).padStart(7)}  ${caller}`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);

  if (process.env.BENCH_JSON) {
    const figures = {
      n: N,
      concurrency: CONCURRENCY,
      mode: MODE,
      load: { start: load0, end: load1 },
      create,
      status,
      perFamily: Object.fromEntries(
        FAMILIES.map((f) => [f, { create: stats(fill.createMs.filter((_, i) => fill.family[i] === f)), status: stats(fill.statusMs.filter((_, i) => fill.family[i] === f)) }]),
      ),
      baselineCreate: baseline ? stats(baseline.createMs) : undefined,
      throughput: rate,
      handler: Object.fromEntries(Object.entries(after.handler).map(([k, v]) => [k, stats(v)])),
      request: Object.fromEntries(Object.entries(after.request).map(([k, v]) => [k, stats(v)])),
      controllerCalls: after.calls.map((c) => ({ what: c.what, count: c.count, latency: stats(c.latencies), callers: c.callers })),
      requests: { controller: Object.fromEntries(ctlFill), client: Object.fromEntries(clientFill), unattributed: otherFill, perCreate, perCreateNoLease, perCreateDriven },
      cpu: { userUs: cpuUser, systemUs: cpuSystem, perServiceMs: (cpuUser + cpuSystem) / N / 1000 },
      memory: { afterFill: memory, afterGc: memoryAfterGc },
      loopDelay: after.loopDelay,
      restart: { serviceWrites: restartServiceWrites, requests: Object.fromEntries(restartCtl), idleAfterElectionMs: secondIdle.idleAt - secondLedAt },
      leaderChange: {
        electedAfterStopMs: electedAt - stopAsked,
        idleAfterElectionMs: thirdIdle.idleAt - electedAt,
        electionToStatus: e2s,
        createCall: stats(failover.createMs),
        webhookRequest: stats(changeStats.request['/mutate/services'] ?? []),
        webhookHandler: stats(changeStats.handler.mutateServices ?? []),
        loopDelay: changeStats.loopDelay,
        createToStatus: stats(failover.statusMs),
        otherWrites: changeOtherWrites,
        requests: Object.fromEntries(changeCtl),
      },
      targets,
    };
    writeFileSync(process.env.BENCH_JSON, JSON.stringify(figures, null, 2));
  }
  if (STRICT && targets.some((t) => !t.met)) process.exit(1);
}

main().then(
  () => process.exit(0),
  (e: unknown) => fatal(e instanceof Error ? (e.stack ?? e.message) : String(e)),
);
