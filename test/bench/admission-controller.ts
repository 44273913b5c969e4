/**
 * One controller of the admission bench, in a process of its own (forked by admission.ts), wired
 * as webhook/main.ts wires it: serving certificate, the admission webhooks main.ts serves
 * (Services, configuration, external IPs, IPClaims), claims ledger, namespace labels, reconcile
 * loop, leader election. It authenticates as the controller's ServiceAccount (the kubeconfig the
 * API server thread wrote), as in a cluster, so the IPClaim webhook (failurePolicy Fail) lets its
 * claim writes through.
 *
 * A process rather than a worker thread so that `process.cpuUsage()` and `memoryUsage()` are the
 * controller's alone (in a worker they are the whole bench's), and so that a restart is a real
 * one: a new process that knows nothing but what it reads from the API.
 *
 * Every API call of the controller's own client goes through a wrapper that counts it by verb,
 * resource and namespace, times it, and (BENCH_TRACE=1) records which code made it.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { AdmissionregistrationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { CertManager, KubeCertStore, systemClock } from '../../webhook/certs.js';
import { Ledger } from '../../webhook/claims.js';
import { ConfigAdmission } from '../../webhook/config-admission.js';
import { Controller } from '../../webhook/controller.js';
import { ClientKube, RESOURCES } from '../../kube/client.js';
import { LeaderElector } from '../../kube/leader.js';
import { Metrics } from '../../webhook/metrics.js';
import { NamespaceLabels } from '../../webhook/namespaces.js';
import { startWebhookServer } from '../../webhook/server.js';
import { ServiceAdmission } from '../../webhook/services.js';
import { ExternalIPAdmission } from '../../webhook/external-ips.js';
import { CONTROLLER_SERVICE_ACCOUNT, IPClaimAdmission, serviceAccountUser } from '../../webhook/ipclaims-admission.js';
import type { AdmissionHandler } from '../../webhook/review.js';
import {
  CONTROLLER_AGENT,
  epochMs,
  LEASE,
  MUTATING,
  NAMESPACE,
  VALIDATING,
  StampedKubeConfig,
  WEBHOOK_SERVICE,
  type CallStats,
  type ControllerConfig,
  type ControllerStats,
  type FromController,
  type ToController,
} from './admission-protocol.js';

/** Counts, times and (optionally) attributes every call of a KubeApi. */
class CallRecorder {
  readonly calls = new Map<string, CallStats>();
  /** Calls in flight, and when the last one started or ended (lease renewals left out). */
  inflight = 0;
  lastCallAt = epochMs();

  constructor(private readonly trace: boolean) {}

  reset(): void {
    this.calls.clear();
  }

  wrap<T extends object>(kube: T): T {
    const verbs: Record<string, string> = { get: 'get', list: 'list', create: 'create', replace: 'update', patch: 'patch', delete: 'delete', watch: 'watch' };
    return new Proxy(kube, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        const verb = typeof prop === 'string' ? verbs[prop] : undefined;
        if (typeof value !== 'function' || !verb) return value;
        return (...args: unknown[]) => this.call(verb, args, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      },
    });
  }

  private call(verb: string, args: unknown[], run: () => Promise<unknown>): Promise<unknown> {
    const r = args[0] as { plural?: string };
    let sub = '';
    let namespace: string;
    // (r, name, namespace, ...) for get/delete/patch; (r, obj, options) for create/replace; (r, options) for list/watch.
    if (verb === 'get' || verb === 'delete' || verb === 'patch') {
      namespace = typeof args[2] === 'string' ? args[2] : '';
      if (verb === 'patch') sub = (args[4] as { subresource?: string } | undefined)?.subresource ?? '';
    } else if (verb === 'create' || verb === 'update') {
      const obj = args[1] as { metadata?: { namespace?: string }; spec?: { holders?: { namespace?: string }[] } } | undefined;
      // A claim is cluster-scoped: it is about its (first) holder's namespace.
      namespace = obj?.metadata?.namespace ?? obj?.spec?.holders?.[0]?.namespace ?? '';
      sub = (args[2] as { subresource?: string } | undefined)?.subresource ?? '';
    } else {
      namespace = (args[1] as { namespace?: string } | undefined)?.namespace ?? '';
    }
    const what = `${verb} ${r?.plural ?? '?'}${sub ? `/${sub}` : ''}`;
    let s = this.calls.get(what);
    if (!s) this.calls.set(what, (s = { what, count: 0, latencies: [], byNamespace: {}, callers: {} }));
    s.count++;
    s.byNamespace[namespace] = (s.byNamespace[namespace] ?? 0) + 1;
    if (this.trace) {
      const caller = callerOf(new Error().stack ?? '');
      s.callers[caller] = (s.callers[caller] ?? 0) + 1;
    }
    const stats = s;
    const started = performance.now();
    // Leader election renews every few seconds whatever happens: not activity.
    const activity = r?.plural !== 'leases';
    if (activity) {
      this.inflight++;
      this.lastCallAt = epochMs();
    }
    const done = () => {
      if (activity) {
        this.inflight--;
        this.lastCallAt = epochMs();
      }
      stats.latencies.push(performance.now() - started);
    };
    const p = run();
    p.then(done, done);
    return p;
  }
}

/** The first frames of a stack that are the controller's own code (not the client, not this file). */
function callerOf(stack: string): string {
  const frames = stack
    .split('\n')
    .slice(1)
    .map((l) => l.trim().replace(/^at /, ''))
    .filter((l) => /\/(webhook|kube)\//.test(l) && !/kube\/client\.[jt]s/.test(l) && !/bench\//.test(l));
  return (
    frames
      .slice(0, 3)
      .map((f) => f.replace(/\(?file:\/\/\/?[^)]*\/((webhook|kube)\/[^):]+:\d+):\d+\)?/, '($1)').replace(/^async /, ''))
      .join(' < ') || '(unknown)'
  );
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.BENCH_CONTROLLER ?? '') as ControllerConfig;
  const send = (m: FromController) => process.send?.(m);
  const logLines: string[] = [];
  const log = (line: string) => {
    if (logLines.length < 40) logLines.push(line);
    if (process.env.BENCH_VERBOSE) process.stderr.write(`[${config.identity}] ${line}\n`);
  };
  const { identity } = config;
  const kc = new StampedKubeConfig(`${CONTROLLER_AGENT}/${identity}`);
  kc.loadFromFile(config.kubeconfigPath);
  const recorder = new CallRecorder(config.trace);
  const client = new ClientKube(kc);
  const kube = recorder.wrap(client);
  const metrics = new Metrics();

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
  const controller = new Controller({ kube, ledger, namespace: NAMESPACE, namespaceLabels, metrics, instance: identity, log });
  // As webhook/main.ts: the family the API server gives a Service that sets none.
  let defaultFamily: 'IPv4' | 'IPv6' = 'IPv4';
  try {
    const api = await kube.get(RESOURCES.services, 'kubernetes', 'default');
    if (((api?.spec as { ipFamilies?: unknown[] } | undefined)?.ipFamilies ?? [])[0] === 'IPv6') defaultFamily = 'IPv6';
  } catch (e) {
    log(`reading default/kubernetes: ${String(e)}`);
  }
  const services = new ServiceAdmission({ ledger, namespaces: namespaceLabels, metrics, defaultFamily: () => defaultFamily });
  const configAdmission = new ConfigAdmission({ kube, ledger, namespace: NAMESPACE });
  const externalIPs = new ExternalIPAdmission({ ledger, namespaces: namespaceLabels });
  const ipClaims = new IPClaimAdmission({ controllerUser: serviceAccountUser(NAMESPACE, CONTROLLER_SERVICE_ACCOUNT) });

  let ready = false;
  const whenReady =
    (handler: AdmissionHandler): AdmissionHandler =>
    (request) =>
      ready ? handler(request) : Promise.reject(new Error('not ready: still loading the claims and the configuration'));
  const handlerSamples: Record<string, number[]> = {};
  const requestSamples: Record<string, number[]> = {};
  const verdicts: Record<string, number> = {};
  const webhook = await startWebhookServer({
    certificate,
    handlers: {
      mutateServices: whenReady(services.mutate),
      validateServices: whenReady(services.validate),
      validateConfig: whenReady(configAdmission.validate),
      validateExternalIPs: whenReady(externalIPs.validate),
      validateIPClaims: ipClaims.validate,
    },
    ready: () => ready,
    registry: metrics.registry,
    observeAdmission: (h, s, a) => {
      metrics.observeAdmission(h, s, a);
      (handlerSamples[h] ??= []).push(s * 1000);
      verdicts[`${h} allowed=${String(a)}`] = (verdicts[`${h} allowed=${String(a)}`] ?? 0) + 1;
    },
    host: '127.0.0.1',
    port: 0,
    log,
  });
  certs.onChange((c) => webhook.setCertificate(c));
  // The whole HTTPS request at the server: the request handed to express to the response's last byte handed to the socket.
  webhook.server.prependListener('request', (req: { url?: string }, res: { once(e: 'finish', l: () => void): void }) => {
    const started = performance.now();
    const path = req.url?.split('?')[0] ?? '';
    res.once('finish', () => (requestSamples[path] ??= []).push(performance.now() - started));
  });

  await Promise.all([ledger.start(), namespaceLabels.start()]);
  await controller.start();
  ready = true;
  send({ op: 'ready', port: webhook.port, at: epochMs() });

  let ledAt: number | undefined;
  const elector = new LeaderElector({
    kube,
    namespace: NAMESPACE,
    name: LEASE,
    identity,
    leaseDurationMs: config.leaseDurationMs,
    renewMs: config.renewMs,
    onStartedLeading: () => {
      ledAt = epochMs();
      controller.setLeading(true);
      send({ op: 'leading', at: ledAt });
    },
    onStoppedLeading: () => {
      controller.setLeading(false);
      send({ op: 'stopped-leading', at: epochMs() });
    },
    log,
  });
  elector.start();

  // Event loop utilisation over the last second, sampled every 250 ms.
  const eluRing: ReturnType<typeof performance.eventLoopUtilization>[] = [performance.eventLoopUtilization()];
  const eluTimer = setInterval(() => {
    eluRing.push(performance.eventLoopUtilization());
    if (eluRing.length > 5) eluRing.shift();
  }, 250);
  const elu = () => {
    const first = eluRing[0];
    return first ? performance.eventLoopUtilization(performance.eventLoopUtilization(), first).utilization : 0;
  };

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  const memory = () => {
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
  };

  let session: Session | undefined;
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session?.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));

  process.on('message', (m: ToController) => {
    void (async () => {
      switch (m.op) {
        case 'stats': {
          const cpu = process.cpuUsage();
          const stats: ControllerStats = {
            identity,
            pid: process.pid,
            cpu: { user: cpu.user, system: cpu.system },
            memory: memory(),
            elu: elu(),
            loopDelay: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
            leading: elector.leading,
            ...(ledAt !== undefined && { ledAt }),
            inflight: recorder.inflight,
            lastCallAt: recorder.lastCallAt,
            calls: [...recorder.calls.values()],
            handler: { ...handlerSamples },
            request: { ...requestSamples },
            verdicts: { ...verdicts },
            log: [...logLines],
          };
          if (m.reset) {
            recorder.reset();
            loopDelay.reset();
            for (const o of [handlerSamples, requestSamples, verdicts]) for (const k of Object.keys(o)) delete o[k];
          }
          send({ op: 'stats', stats });
          break;
        }
        case 'probe':
          send({ op: 'probe', elu: elu(), inflight: recorder.inflight, lastCallAt: recorder.lastCallAt });
          break;
        case 'gc': {
          const gc = (globalThis as { gc?: () => void }).gc;
          gc?.();
          send({ op: 'gc', memory: memory() });
          break;
        }
        case 'profile-start':
          session = new Session();
          session.connect();
          await post('Profiler.enable');
          await post('Profiler.setSamplingInterval', { interval: 1000 });
          await post('Profiler.start');
          send({ op: 'profile-started' });
          break;
        case 'profile-stop': {
          const { profile } = await post<{ profile: unknown }>('Profiler.stop');
          const path = join(config.profileDir ?? '.', `${m.name}.cpuprofile`);
          writeFileSync(path, JSON.stringify(profile));
          session?.disconnect();
          session = undefined;
          send({ op: 'profile-stopped', path });
          break;
        }
        case 'stop':
          // As webhook/main.ts on SIGTERM: admissions in flight, then the loop's pass, then the lease.
          ready = false;
          clearInterval(eluTimer);
          certs.stop();
          await webhook.close();
          await controller.stop();
          await elector.stop(true);
          ledger.stop();
          namespaceLabels.stop();
          client.close();
          send({ op: 'stopped' });
          setTimeout(() => process.exit(0), 200);
          break;
      }
    })().catch((e: unknown) => send({ op: 'failed', error: e instanceof Error ? (e.stack ?? e.message) : String(e) }));
  });
  // The bench went away: so do we.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());
}

process.on('unhandledRejection', (e) => process.stderr.write(`controller: unhandled rejection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));
main().catch((e: unknown) => {
  process.send?.({ op: 'failed', error: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies FromController);
  process.stderr.write(`controller: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
