/**
 * Admission and assignment under load: N LoadBalancer Services created through the real
 * client-node, C in flight at a time, against the API server double (HTTPS) calling our
 * admission webhooks (HTTPS) while the leader's reconcile loop writes their status.
 *
 * Reported:
 * - webhook handler time per call (mutating and validating), from the server's
 *   `observeAdmission` hook, and the whole HTTPS request at the webhook server (body read,
 *   parse, handler, response);
 * - create-call latency seen by the client (the double, both webhooks, the write);
 * - time from the create call's return to `status.loadBalancer.ingress` (seen on a watch);
 * - throughput (creates/s);
 * - a baseline: the same creates with the webhook configurations deleted, of another
 *   `loadBalancerClass` so that the reconcile loop leaves them alone too: the added cost of
 *   the webhooks is the difference.
 *
 * Three event loops, as in a cluster: the double runs in a worker thread, the controller
 * (certificate, webhook server, ledger, reconcile loop, leader election: the wiring of
 * webhook/main.ts) in another, the client in the main thread. This file is all three; the
 * worker's role is in workerData.
 *
 * The bench exits 1, without figures, if any Service ends without an IP, an IP is held twice,
 * an IP moved after admission, or the webhook did not answer a create (so it cannot quietly
 * measure a broken system). Run with `npm run bench`, or alone:
 * `npm run build && node dist/test/bench/admission.js [N] [C]` (default 500 Services, 50 in
 * flight; `BENCH_VERBOSE=1` prints progress).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, Watch, type V1Service } from '@kubernetes/client-node';
import { parse } from 'yaml';

const N = Number(process.argv[2] ?? 500);
const CONCURRENCY = Number(process.argv[3] ?? 50);
const WARMUP = 50;
const NAMESPACE = 'metallb-system';
const WEBHOOK_SERVICE = 'metallb-webhook-service';
const MUTATING = 'metallb-mutating';
const VALIDATING = 'metallb-validating';
/** RFC 2544's benchmarking range: room for every Service of every phase. */
// IPv6 Services from a documentation /64: room for every Service of the run, with no address
// outside the documentation ranges (the double's IPv6 ClusterIP range is 2001:db8:1::/112).
const POOL = '2001:db8::/64';
const FAMILY = { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' };
const STATUS_TIMEOUT_MS = 20_000;

const manifests = fileURLToPath(new URL('../../../manifests/', import.meta.url));
const readYaml = (path: string): Record<string, unknown> => parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

type Role = { role: 'apiserver' } | { role: 'controller'; kubeconfigPath: string };
type Message =
  | { op: 'ready'; kubeconfigPath?: string; port?: number }
  | { op: 'route'; port: number }
  | { op: 'routed' }
  | { op: 'samples' }
  | { op: 'samples-result'; handler: Record<string, number[]>; request: Record<string, number[]>; verdicts: Record<string, number> }
  | { op: 'stop' }
  | { op: 'stopped' };

// ---------------------------------------------------------------------------------------------
// Worker: the API server double.

async function apiServerWorker(port: MessagePortLike): Promise<void> {
  const { startApiServer } = await import('../apiserver/index.js');
  // The Services are IPv6: their ClusterIPs come from the double's IPv6 /112.
  const api = await startApiServer();
  await api.store.create(readYaml(join(manifests, 'namespace.yaml')) as never);
  const crdDir = join(manifests, 'crds');
  for (const f of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) await api.store.create(readYaml(join(crdDir, f)) as never);
  await api.settle();
  port.on('message', (m: Message) => {
    if (m.op === 'route') {
      api.routeService(NAMESPACE, WEBHOOK_SERVICE, 443, { host: '127.0.0.1', port: m.port });
      port.postMessage({ op: 'routed' } satisfies Message);
    } else if (m.op === 'stop') {
      void api.stop().then(() => port.postMessage({ op: 'stopped' } satisfies Message));
    }
  });
  port.postMessage({ op: 'ready', kubeconfigPath: api.kubeconfigPath } satisfies Message);
}

// ---------------------------------------------------------------------------------------------
// Worker: the controller, wired as webhook/main.ts wires it.

async function controllerWorker(port: MessagePortLike, kubeconfigPath: string): Promise<void> {
  const { CertManager, KubeCertStore, systemClock } = await import('../../webhook/certs.js');
  const { Ledger } = await import('../../webhook/claims.js');
  const { ConfigAdmission } = await import('../../webhook/config-admission.js');
  const { Controller } = await import('../../webhook/controller.js');
  const { ClientKube } = await import('../../kube/client.js');
  const { LeaderElector } = await import('../../kube/leader.js');
  const { Metrics } = await import('../../webhook/metrics.js');
  const { NamespaceLabels } = await import('../../webhook/namespaces.js');
  const { startWebhookServer } = await import('../../webhook/server.js');
  const { ServiceAdmission } = await import('../../webhook/services.js');

  const errors: string[] = [];
  const log = (line: string) => {
    if (errors.length < 20) errors.push(line);
  };
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const kube = new ClientKube(kc);
  const metrics = new Metrics();
  const identity = 'bench-controller';

  const certs = new CertManager({
    store: new KubeCertStore(kc.makeApiClient(CoreV1Api), kc.makeApiClient(AdmissionregistrationV1Api), NAMESPACE, 'metallb-webhook-cert'),
    clock: systemClock,
    service: WEBHOOK_SERVICE,
    namespace: NAMESPACE,
    mutatingWebhookConfiguration: MUTATING,
    validatingWebhookConfiguration: VALIDATING,
    log,
  });
  const certificate = await certs.sync();
  const ledger = new Ledger(kube, [], { log });
  const namespaceLabels = new NamespaceLabels(kube, { log });
  await Promise.all([ledger.start(), namespaceLabels.start()]);
  const controller = new Controller({ kube, ledger, namespace: NAMESPACE, namespaceLabels, metrics, instance: identity, log });
  await controller.start();
  const services = new ServiceAdmission({ ledger, namespaces: namespaceLabels, metrics });
  const config = new ConfigAdmission({ kube, ledger, namespace: NAMESPACE });

  const handlerSamples: Record<string, number[]> = {};
  const requestSamples: Record<string, number[]> = {};
  const verdicts: Record<string, number> = {};
  const server = await startWebhookServer({
    certificate,
    handlers: { mutateServices: services.mutate, validateServices: services.validate, validateConfig: config.validate },
    registry: metrics.registry,
    observeAdmission: (h, s, a) => {
      metrics.observeAdmission(h, s, a);
      (handlerSamples[h] ??= []).push(s * 1000);
      verdicts[`${h} allowed=${String(a)}`] = (verdicts[`${h} allowed=${String(a)}`] ?? 0) + 1;
    },
    host: '127.0.0.1',
    log,
  });
  // The whole HTTPS request at the server: first byte of the request handed to express to the
  // response's last byte handed to the socket.
  server.server.prependListener('request', (req: { url?: string }, res: { once(e: 'finish', l: () => void): void }) => {
    const started = performance.now();
    const path = req.url?.split('?')[0] ?? '';
    res.once('finish', () => (requestSamples[path] ??= []).push(performance.now() - started));
  });

  let leading!: () => void;
  const led = new Promise<void>((r) => (leading = r));
  const elector = new LeaderElector({
    kube,
    namespace: NAMESPACE,
    name: 'metallb-controller',
    identity,
    onStartedLeading: () => {
      controller.setLeading(true);
      leading();
    },
    onStoppedLeading: () => controller.setLeading(false),
    log,
  });
  elector.start();
  await led;

  port.on('message', (m: Message) => {
    if (m.op === 'samples') {
      port.postMessage({ op: 'samples-result', handler: { ...handlerSamples }, request: { ...requestSamples }, verdicts: { ...verdicts } } satisfies Message);
      for (const k of Object.keys(handlerSamples)) delete handlerSamples[k];
      for (const k of Object.keys(requestSamples)) delete requestSamples[k];
      for (const k of Object.keys(verdicts)) delete verdicts[k];
    } else if (m.op === 'stop') {
      void (async () => {
        await elector.stop(true);
        await controller.stop();
        ledger.stop();
        namespaceLabels.stop();
        certs.stop();
        await server.close();
        kube.close();
        if (errors.length > 0) process.stderr.write(`controller log (first ${errors.length} lines):\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
        port.postMessage({ op: 'stopped' } satisfies Message);
      })();
    }
  });
  port.postMessage({ op: 'ready', port: server.port } satisfies Message);
}

// ---------------------------------------------------------------------------------------------
// Main thread: the client, the measurements, the checks.

interface MessagePortLike {
  on(event: 'message', l: (m: Message) => void): void;
  postMessage(m: Message): void;
}

/** A worker with request/response over its messages. */
class Thread {
  private readonly worker: Worker;
  private readonly waiting: { op: Message['op']; resolve: (m: Message) => void }[] = [];
  private failed: Error | undefined;

  constructor(role: Role) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: role });
    this.worker.on('message', (m: Message) => {
      const i = this.waiting.findIndex((w) => w.op === m.op);
      if (i >= 0) this.waiting.splice(i, 1)[0]?.resolve(m);
    });
    this.worker.on('error', (e) => {
      this.failed = e;
      process.stderr.write(`bench: ${role.role} thread failed: ${e.stack ?? e.message}\n`);
      process.exit(1);
    });
  }

  next<T extends Message['op']>(op: T): Promise<Extract<Message, { op: T }>> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve) => this.waiting.push({ op, resolve: resolve as (m: Message) => void }));
  }

  ask<T extends Message['op']>(m: Message, reply: T): Promise<Extract<Message, { op: T }>> {
    const p = this.next(reply);
    this.worker.postMessage(m);
    return p;
  }

  async stop(): Promise<void> {
    await this.ask({ op: 'stop' }, 'stopped');
    await this.worker.terminate();
  }
}

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
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
}

const ms = (v: number) => (Number.isNaN(v) ? '-' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));

/** Runs task(i) for i < n with at most `concurrency` in flight. */
async function inFlight(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const runner = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, runner));
}

const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

interface Phase {
  name: string;
  namespace: string;
  /** Services of our class (else another load-balancer's: no webhook, no IP expected). */
  ours: boolean;
  /** By creation index. */
  createMs: number[];
  /** create-call return -> first watch event with an ingress IP (negative: status came first). */
  statusMs: number[];
  wallMs: number;
  /** IPs on the objects the create calls returned, by Service name. */
  admittedIP: Map<string, string | undefined>;
}

interface StatusWatch {
  /** performance.now() at which `namespace/name` was first seen with an ingress IP. */
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
        if (!seen.has(key) && obj.status?.loadBalancer?.ingress?.some((i) => i.ip)) seen.set(key, performance.now());
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

async function runPhase(name: string, namespace: string, n: number, core: CoreV1Api, watch: StatusWatch, loadBalancerClass?: string): Promise<Phase> {
  await core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } } });
  const phase: Phase = { name, namespace, ours: !loadBalancerClass, createMs: [], statusMs: [], wallMs: 0, admittedIP: new Map() };
  const returned = new Map<string, number>();
  const started = performance.now();
  await inFlight(n, CONCURRENCY, async (i) => {
    const svcName = `svc-${i}`;
    const body: V1Service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: svcName, namespace },
      spec: {
        type: 'LoadBalancer',
        ...FAMILY,
        selector: { app: svcName },
        ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
        ...(loadBalancerClass ? { loadBalancerClass } : {}),
      },
    };
    const t0 = performance.now();
    const created = await core.createNamespacedService({ namespace, body });
    const t1 = performance.now();
    phase.createMs[i] = t1 - t0;
    returned.set(svcName, t1);
    phase.admittedIP.set(svcName, created.metadata?.annotations?.['metallb.io/assigned-ips']);
  });
  phase.wallMs = performance.now() - started;
  progress(`${name}: ${n} created in ${phase.wallMs.toFixed(0)} ms`);
  if (phase.ours) {
    const deadline = performance.now() + STATUS_TIMEOUT_MS;
    while (performance.now() < deadline && [...returned.keys()].some((s) => !watch.seen.has(`${namespace}/${s}`))) await sleep(20);
    for (const [s, t1] of returned) {
      const seenAt = watch.seen.get(`${namespace}/${s}`);
      if (seenAt !== undefined) phase.statusMs.push(seenAt - t1);
    }
  }
  return phase;
}

/** Every LoadBalancer Service has an IP, from the pool, no IP twice, none moved since admission. */
async function check(core: CoreV1Api, phases: readonly Phase[]): Promise<string[]> {
  const problems: string[] = [];
  const list = await core.listServiceForAllNamespaces({});
  const holder = new Map<string, string>();
  const expected = new Set(phases.flatMap((p) => [...p.admittedIP.keys()].map((s) => `${p.namespace}/${s}`)));
  for (const svc of list.items) {
    if (svc.spec?.type !== 'LoadBalancer') continue;
    const key = `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;
    expected.delete(key);
    if (svc.spec.loadBalancerClass) continue;
    const ips = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).filter((ip): ip is string => !!ip);
    if (ips.length === 0) problems.push(`${key} has no IP in status.loadBalancer.ingress`);
    for (const ip of ips) {
      const other = holder.get(ip);
      if (other) problems.push(`${ip} is held by ${other} and ${key}`);
      holder.set(ip, key);
      if (!ip.startsWith('2001:db8::')) problems.push(`${key} has ${ip}, outside the pool ${POOL}`);
    }
    const annotated = svc.metadata?.annotations?.['metallb.io/assigned-ips'];
    if (ips.length > 0 && annotated !== ips.join(',')) problems.push(`${key}: annotation ${String(annotated)} disagrees with status ${ips.join(',')}`);
  }
  for (const key of expected) problems.push(`${key} was created but is not listed`);
  for (const p of phases) {
    for (const [s, ip] of p.admittedIP) {
      const svc = list.items.find((x) => x.metadata?.namespace === p.namespace && x.metadata.name === s);
      const now = (svc?.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(',');
      if (ip !== undefined && ip !== now) problems.push(`${p.namespace}/${s} was admitted with ${ip} and now has ${now}`);
    }
  }
  return problems;
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
}

const progress = (what: string) => {
  if (process.env.BENCH_VERBOSE) process.stderr.write(`${(performance.now() / 1000).toFixed(1)}s ${what}\n`);
};

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const t0 = performance.now();
  const apiThread = new Thread({ role: 'apiserver' });
  const { kubeconfigPath } = await apiThread.next('ready');
  if (!kubeconfigPath) throw new Error('the API server thread sent no kubeconfig');
  progress('API server up');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);

  // Webhook configurations first: the controller writes its CA into them when it starts.
  await admission.createMutatingWebhookConfiguration({ body: readYaml(join(manifests, 'webhooks', 'mutating.yaml')) });
  await admission.createValidatingWebhookConfiguration({ body: readYaml(join(manifests, 'webhooks', 'validating.yaml')) });
  const controllerThread = new Thread({ role: 'controller', kubeconfigPath });
  const { port } = await controllerThread.next('ready');
  if (!port) throw new Error('the controller thread sent no port');
  await apiThread.ask({ op: 'route', port }, 'routed');
  progress('controller leads, webhook routed');

  // The pool goes through the configuration webhook (failurePolicy Fail).
  await custom.createNamespacedCustomObject({
    group: 'metallb.io',
    version: 'v1beta1',
    namespace: NAMESPACE,
    plural: 'ipaddresspools',
    body: { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'bench', namespace: NAMESPACE }, spec: { addresses: [POOL] } },
  });
  progress('pool created');
  // Until the controller follows the pool: a probe Service admitted with an IP.
  await core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench-probe' } } });
  for (let i = 0; ; i++) {
    const probe = await core.createNamespacedService({
      namespace: 'bench-probe',
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name: `probe-${i}` }, spec: { type: 'LoadBalancer', ...FAMILY, ports: [{ port: 80 }] } },
    });
    if (probe.metadata?.annotations?.['metallb.io/assigned-ips']) break;
    if (i > 100) throw new Error('the controller never loaded the pool: probe Services are admitted without an IP');
    await sleep(50);
  }

  progress('probe admitted with an IP');
  const watch = await watchStatus(kc);
  const warmup = await runPhase('warm-up', 'bench-warmup', WARMUP, core, watch);
  progress('warm-up done');
  await controllerThread.ask({ op: 'samples' }, 'samples-result'); // drop the warm-up's samples

  // Baseline: the same creates with our webhook configurations deleted, of another
  // load-balancer class so that the reconcile loop leaves them alone too: what the double and
  // the client cost without us. Then the baseline's Services go, so that both phases start
  // from the same store (the double's Service create costs more as Services accumulate).
  const mutating = await admission.readMutatingWebhookConfiguration({ name: MUTATING });
  const validating = await admission.readValidatingWebhookConfiguration({ name: VALIDATING });
  await admission.deleteMutatingWebhookConfiguration({ name: MUTATING });
  await admission.deleteValidatingWebhookConfiguration({ name: VALIDATING });
  const baseline = await runPhase('baseline: no webhooks', 'bench-baseline', N, core, watch, 'example.com/not-metallb');
  const baselineSamples = await controllerThread.ask({ op: 'samples' }, 'samples-result');
  await core.deleteCollectionNamespacedService({ namespace: 'bench-baseline' });
  for (let i = 0; (await core.listNamespacedService({ namespace: 'bench-baseline' })).items.length > 0; i++) {
    if (i > 200) throw new Error('the baseline Services were not deleted');
    await sleep(50);
  }
  // Our webhook configurations back, as the controller left them (with its caBundle).
  const again = (o: { metadata?: { name?: string; labels?: Record<string, string> } }) => ({ ...o, metadata: { name: o.metadata?.name, labels: o.metadata?.labels } });
  await admission.createMutatingWebhookConfiguration({ body: again(mutating) });
  await admission.createValidatingWebhookConfiguration({ body: again(validating) });
  progress('baseline done');

  const hooked = await runPhase('with webhooks', 'bench', N, core, watch);
  const samples = await controllerThread.ask({ op: 'samples' }, 'samples-result');
  progress('webhook phase done');
  watch.stop();

  const problems = await check(core, [warmup, hooked]);
  const notAdmitted = [...hooked.admittedIP].filter(([, ip]) => !ip).map(([s]) => s);
  if (notAdmitted.length > 0)
    problems.push(
      `${notAdmitted.length} Services of the webhook phase came back from create without an IP (webhook skipped or failed open): ${notAdmitted.slice(0, 5).join(', ')}`,
    );
  if (hooked.statusMs.length < N) problems.push(`${N - hooked.statusMs.length} Services of the webhook phase got no status within ${STATUS_TIMEOUT_MS} ms on the watch`);
  const mutateCalls = samples.handler.mutateServices?.length ?? 0;
  if (mutateCalls < N) problems.push(`the mutating webhook answered ${mutateCalls} calls for ${N} creates`);
  const bad = Object.entries(samples.verdicts).filter(([k]) => !k.endsWith('allowed=true'));
  if (bad.length > 0) problems.push(`webhook verdicts other than allowed: ${bad.map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  if ((baselineSamples.handler.mutateServices?.length ?? 0) > 0) problems.push('the webhook was called during the baseline');

  await controllerThread.stop();
  await apiThread.stop();
  const load1 = os.loadavg();

  if (problems.length > 0) {
    process.stderr.write(`admission bench: FAILED, the system under test is broken (${problems.length} problems):\n`);
    for (const p of problems.slice(0, 30)) process.stderr.write(`  ${p}\n`);
    process.exit(1);
  }

  const w = [46, 6, 8, 8, 8, 8];
  const out: string[] = [];
  const line = (label: string, s: Stats) => out.push(row([label, String(s.n), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max)], w));
  out.push('');
  out.push(`Admission bench: ${N} LoadBalancer Services, ${CONCURRENCY} creates in flight, client-node -> API server double (HTTPS) -> webhooks (HTTPS)`);
  out.push(
    `node ${process.version}, ${os.cpus().length} CPUs, load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start, ${load1.map((l) => l.toFixed(2)).join(' ')} at end`,
  );
  out.push('');
  out.push(row(['milliseconds', 'n', 'p50', 'p90', 'p99', 'max'], w));
  out.push('-'.repeat(w.reduce((a, b) => a + b + 2, -2)));
  out.push('with webhooks');
  line('  webhook handler, mutate (observeAdmission)', stats(samples.handler.mutateServices ?? []));
  line('  webhook handler, validate', stats(samples.handler.validateServices ?? []));
  line('  webhook HTTPS request, /mutate/services', stats(samples.request['/mutate/services'] ?? []));
  line('  webhook HTTPS request, /validate/services', stats(samples.request['/validate/services'] ?? []));
  line('  create call (client)', stats(hooked.createMs));
  const fifth = Math.floor(N / 5);
  line(`    first ${fifth} creates`, stats(hooked.createMs.slice(0, fifth)));
  line(`    last ${fifth} creates`, stats(hooked.createMs.slice(N - fifth)));
  line('  create return -> status.ingress (watch)', stats(hooked.statusMs));
  out.push(`baseline: webhook configurations deleted, Services of another loadBalancerClass`);
  line('  create call (client)', stats(baseline.createMs));
  line(`    first ${fifth} creates`, stats(baseline.createMs.slice(0, fifth)));
  line(`    last ${fifth} creates`, stats(baseline.createMs.slice(N - fifth)));
  out.push('');
  const early = hooked.statusMs.filter((v) => v < 0).length;
  const mainRate = (N / hooked.wallMs) * 1000;
  const baseRate = (N / baseline.wallMs) * 1000;
  const m = stats(hooked.createMs);
  const b = stats(baseline.createMs);
  out.push(
    `throughput: ${mainRate.toFixed(0)} creates/s with webhooks, ${baseRate.toFixed(0)} creates/s baseline (${(hooked.wallMs / 1000).toFixed(2)} s and ${(baseline.wallMs / 1000).toFixed(2)} s for ${N})`,
  );
  out.push(`webhooks add ${ms(m.p50 - b.p50)} ms at p50 and ${ms(m.p99 - b.p99)} ms at p99 to a create`);
  out.push(`every Service admitted with its IP (${N}/${N}); ${early} statuses arrived on the watch before their create call returned (negative times)`);
  out.push(`checked: ${WARMUP + N} Services, each with one IP from ${POOL}, no IP twice, none moved since admission; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  process.stdout.write(`${out.join('\n')}\n`);
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`admission bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
} else {
  const role = workerData as Role;
  const port = parentPort as unknown as MessagePortLike;
  const run = role.role === 'apiserver' ? apiServerWorker(port) : controllerWorker(port, role.kubeconfigPath);
  run.catch((e: unknown) => {
    // Rethrown outside the promise so the main thread's 'error' handler sees it.
    setImmediate(() => {
      throw e;
    });
  });
}
