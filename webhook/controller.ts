/**
 * The reconcile loop. Every replica follows the configuration (so its admission handlers
 * allocate from the current pools) and mirrors the claims; only the leader writes:
 *
 * - assigns Services that have no claims (admitted while the webhook was unreachable) and
 *   records annotations and `status.loadBalancer.ingress` ([{ip, ipMode: VIP}]); claims win
 *   over whatever the annotations or status say;
 * - binds claims to Services (reservations made for generateName renamed to the real name,
 *   holder UIDs recorded), releases the claims of Services deleted, turned away from
 *   LoadBalancer, or never created (after `reservationGraceMs`);
 * - on a configuration change, re-checks every Service (revoked ones get new IPs or are
 *   cleared); on an invalid configuration keeps the last good one and reports it in the
 *   ConfigurationState `<namespace>/controller`, an event and a metric;
 * - emits events: IPAllocated, AllocationFailed, ClearAssignment, DeprecatedAnnotation.
 *
 * A restart never moves an IP: the ledger is restored from the claims before anything is
 * assigned, and an assignment that its claims still satisfy is kept.
 */
import { serviceKey, serviceToRequest } from '../core/allocator/index.js';
import { formatConfigError } from '../core/config/index.js';
import { formatIP } from '../core/ip/index.js';
import type { Ledger } from './claims.js';
import { CONFIG_MAP_NAME, parseObjects, readConfigObjects } from './config-admission.js';
import { CONFIG_KINDS, isKubeError, Reflector, RESOURCES, type KubeApi, type KubeObject } from './kube.js';
import { systemClock, type Clock } from './leader.js';
import { ASSIGNMENT, isOurs } from './services.js';

/** What the loop reports to metrics; the webhook's Metrics class satisfies it. */
export interface ControllerMetrics {
  setPoolUsage(pool: string, used: number, total: number): void;
  setConfigValid(valid: boolean): void;
  countAllocation(pool: string): void;
  countFailure(reason: string): void;
}

export interface ControllerOptions {
  kube: KubeApi;
  ledger: Ledger;
  /** Where the configuration, the ConfigurationState and the lease live. */
  namespace: string;
  loadBalancerClass?: string;
  metrics?: ControllerMetrics;
  clock?: Clock;
  /** How long a claim may wait for its Service to appear (default 30 s). */
  reservationGraceMs?: number;
  /** Full reconcile even without changes (default 30 s). */
  resyncMs?: number;
  /** Identity for events. */
  instance?: string;
  log?: (line: string) => void;
}

interface Service extends KubeObject {
  spec?: Record<string, unknown> & { type?: string; loadBalancerClass?: string };
  status?: { loadBalancer?: { ingress?: { ip?: string; ipMode?: string }[] } };
}

/** The reconcile loop; `start` in every replica, `setLeading` from the leader election. */
export class Controller {
  private readonly services = new Map<string, Service>();
  private readonly reflectors: Reflector[] = [];
  private leading = false;
  private running = false;
  private again = false;
  private scheduled: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private configTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private configValid: boolean | undefined;
  private configErrors: string[] = [];
  private lastValidAt: string | undefined;
  /** Last event reason+message per Service, so a steady state emits nothing. */
  private readonly lastEvent = new Map<string, string>();
  private readonly warnedDeprecated = new Set<string>();
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly options: ControllerOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? (() => {});
  }

  /** Loads the configuration and the Services and starts watching; resolves when loaded. */
  async start(): Promise<void> {
    const { kube, namespace, ledger } = this.options;
    await this.loadConfig();
    const configChanged = () => {
      if (this.configTimer) clearTimeout(this.configTimer);
      this.configTimer = setTimeout(() => void this.loadConfig().catch((e: unknown) => this.log(`config: ${String(e)}`)), 50);
    };
    for (const r of [RESOURCES.configMaps, ...Object.values(CONFIG_KINDS)]) {
      const ref = new Reflector(kube, r, { onSync: configChanged, onEvent: configChanged, onError: () => {} }, { namespace });
      this.reflectors.push(ref);
      await ref.start().catch((e: unknown) => this.log(`watching ${r.plural}: ${String(e)}`));
    }
    const services = new Reflector(kube, RESOURCES.services, {
      onSync: (items) => {
        this.services.clear();
        for (const s of items) this.services.set(serviceKey(s.metadata.namespace ?? '', s.metadata.name ?? ''), s as Service);
        this.schedule();
      },
      onEvent: (type, s) => {
        const k = serviceKey(s.metadata.namespace ?? '', s.metadata.name ?? '');
        if (type === 'DELETED') this.services.delete(k);
        else this.services.set(k, s as Service);
        this.schedule();
      },
      onError: (e) => this.log(`services watch: ${String(e)}`),
    });
    this.reflectors.push(services);
    await services.start();
    ledger.onChange(() => this.schedule());
    const resync = () => {
      this.resyncTimer = setTimeout(() => {
        this.schedule();
        resync();
      }, this.options.resyncMs ?? 30_000);
    };
    resync();
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.reflectors) r.stop();
    for (const t of [this.scheduled, this.resyncTimer, this.configTimer]) if (t) clearTimeout(t);
    return this.idle;
  }

  /** Called by leader election. */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) {
      void this.reportConfig();
      this.schedule(0);
    }
  }

  private schedule(delayMs = 10): void {
    if (this.stopped || !this.leading || this.scheduled) return;
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      void this.run();
    }, delayMs);
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    let done = () => {};
    this.idle = new Promise((r) => (done = r));
    try {
      do {
        this.again = false;
        await this.reconcile().catch((e: unknown) => {
          this.log(`reconcile: ${String(e)}`);
          this.again = false;
          this.schedule(500);
        });
      } while (this.again && this.leading && !this.stopped);
    } finally {
      this.running = false;
      done();
    }
  }

  // ---- configuration ----

  private async loadConfig(): Promise<void> {
    const result = parseObjects(await readConfigObjects(this.options.kube, this.options.namespace));
    if (result.errors.length > 0) {
      this.configErrors = result.errors.map(formatConfigError);
      if (this.configValid !== false) this.log(`configuration invalid, keeping the last good one: ${this.configErrors.join('; ')}`);
      this.configValid = false;
      this.options.metrics?.setConfigValid(false);
    } else {
      this.configValid = true;
      this.configErrors = [];
      this.lastValidAt = this.clock.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
      this.options.metrics?.setConfigValid(true);
      const revoked = this.options.ledger.setPools(result.config.pools);
      for (const r of revoked) this.log(`${r.service} loses ${r.ips.map(formatIP).join(', ')}: ${r.failure.message}`);
    }
    await this.reportConfig();
    this.schedule();
  }

  /** Leader only: the ConfigurationState and, when invalid, a Warning event on the ConfigMap. */
  private async reportConfig(): Promise<void> {
    if (!this.leading || this.configValid === undefined) return;
    const { kube, namespace } = this.options;
    const status = {
      result: this.configValid ? 'Valid' : 'Invalid',
      errors: this.configErrors,
      ...(this.lastValidAt ? { lastValidAt: this.lastValidAt } : {}),
    };
    try {
      const existing = await kube.get(RESOURCES.configurationStates, 'controller', namespace);
      if (!existing) {
        await kube.create(RESOURCES.configurationStates, {
          apiVersion: 'metallb.io/v1beta1',
          kind: 'ConfigurationState',
          metadata: { name: 'controller', namespace, labels: { 'metallb.io/component-type': 'controller' } },
        });
      }
      await kube.patch(RESOURCES.configurationStates, 'controller', namespace, { status }, { subresource: 'status' });
      if (!this.configValid) {
        const cm = await kube.get(RESOURCES.configMaps, CONFIG_MAP_NAME, namespace);
        const about = cm ?? { apiVersion: 'metallb.io/v1beta1', kind: 'ConfigurationState', metadata: { name: 'controller', namespace } };
        await this.event(about, 'Warning', 'ConfigInvalid', `configuration invalid, running on the last valid one: ${this.configErrors.join('; ')}`);
      }
    } catch (e) {
      this.log(`reporting configuration state: ${String(e)}`);
    }
  }

  // ---- reconcile ----

  private async reconcile(): Promise<void> {
    const { ledger, loadBalancerClass, kube } = this.options;
    const nsLabels = new Map<string, Record<string, string>>();
    const labelsOf = async (ns: string) => {
      let l = nsLabels.get(ns);
      if (!l) nsLabels.set(ns, (l = (await kube.get(RESOURCES.namespaces, ns))?.metadata.labels ?? {}));
      return l;
    };
    const reservations = new Map<string, Service>();
    for (const svc of [...this.services.values()]) {
      if (!this.leading || this.stopped) return;
      const key = serviceKey(svc.metadata.namespace ?? '', svc.metadata.name ?? '');
      const reservation = svc.metadata.annotations?.[ASSIGNMENT.reservation];
      if (reservation) reservations.set(serviceKey(svc.metadata.namespace ?? '', reservation), svc);
      if (!isOurs(svc as never, loadBalancerClass)) {
        if (ledger.claimsOf(key).length > 0) await ledger.release(key);
        if (svc.metadata.annotations?.[ASSIGNMENT.ips] !== undefined) await this.clear(svc, 'the Service is no longer of type LoadBalancer handled by MetalLB');
        continue;
      }
      await this.reconcileService(svc, key, await labelsOf(svc.metadata.namespace ?? ''));
    }
    // Claims whose holder is gone or never came.
    const now = this.clock.now().getTime();
    const grace = this.options.reservationGraceMs ?? 30_000;
    for (const claim of ledger.all()) {
      const age = now - Date.parse(claim.metadata.creationTimestamp ?? '') || 0;
      for (const h of claim.spec.holders) {
        const key = serviceKey(h.namespace, h.name);
        const svc = this.services.get(key);
        if (svc && (!h.uid || h.uid === svc.metadata.uid)) continue;
        if (h.name.includes('*')) {
          const owner = reservations.get(key);
          if (owner) {
            await ledger.bind(h, { name: owner.metadata.name ?? '', ...(owner.metadata.uid ? { uid: owner.metadata.uid } : {}) });
            continue;
          }
        }
        // A holder with a UID whose Service is gone (or was re-created) is released at once; one
        // never bound waits for its Service to be created.
        if ((h.uid && (!svc || svc.metadata.uid !== h.uid)) || age > grace) {
          this.log(`releasing ${key}'s claim on ${claim.spec.ip}: ${h.uid ? 'the Service is gone' : 'no such Service appeared'}`);
          await ledger.release(key);
        }
      }
    }
    this.reportUsage();
  }

  private reportUsage(): void {
    const m = this.options.metrics;
    if (!m) return;
    const names = new Set(this.options.ledger.allocator.claims().map((c) => c.pool));
    for (const name of names) {
      const u = this.options.ledger.allocator.usage(name);
      if (u) m.setPoolUsage(name, Number(u.used), Number(u.size));
    }
  }

  private async reconcileService(svc: Service, key: string, labels: Record<string, string>): Promise<void> {
    const { ledger } = this.options;
    const uid = svc.metadata.uid;
    for (const c of ledger.claimsOf(key)) {
      const h = c.spec.holders.find((x) => serviceKey(x.namespace, x.name) === key);
      if (h && uid && h.uid !== uid) await ledger.bind(h, { name: h.name, uid });
    }
    const read = serviceToRequest(svc as never, labels);
    if (read.deprecated.length > 0 && uid && !this.warnedDeprecated.has(uid)) {
      this.warnedDeprecated.add(uid);
      const names = read.deprecated.map((d) => `${d.used} (use ${d.preferred})`).join(', ');
      await this.event(svc, 'Warning', 'DeprecatedAnnotation', `deprecated annotations: ${names}`);
    }
    if (!read.ok) {
      await this.failed(svc, key, read.failure.code, read.failure.message);
      return;
    }
    const result = await ledger.allocate(read.request);
    if (!result.ok) {
      if (result.transient) {
        this.schedule(200);
        return;
      }
      await this.failed(svc, key, result.failure.code, result.failure.message);
      return;
    }
    const ips = result.ips.map(formatIP);
    const annotations = svc.metadata.annotations ?? {};
    const patch: Record<string, string | null> = {};
    if (annotations[ASSIGNMENT.pool] !== result.pool) patch[ASSIGNMENT.pool] = result.pool;
    if (annotations[ASSIGNMENT.ips] !== ips.join(',')) patch[ASSIGNMENT.ips] = ips.join(',');
    if (annotations[ASSIGNMENT.reservation] !== undefined) patch[ASSIGNMENT.reservation] = null;
    const ns = svc.metadata.namespace ?? '';
    const name = svc.metadata.name ?? '';
    try {
      if (Object.keys(patch).length > 0) await this.options.kube.patch(RESOURCES.services, name, ns, { metadata: { annotations: patch } });
      const ingress = ips.map((ip) => ({ ip, ipMode: 'VIP' }));
      const have = svc.status?.loadBalancer?.ingress ?? [];
      if (JSON.stringify(have.map((i) => ({ ip: i.ip, ipMode: i.ipMode }))) !== JSON.stringify(ingress)) {
        await this.options.kube.patch(RESOURCES.services, name, ns, { status: { loadBalancer: { ingress } } }, { subresource: 'status' });
      }
    } catch (e) {
      if (isKubeError(e, 404)) return; // deleted meanwhile: the watch will tell
      throw e;
    }
    if (result.changed) this.options.metrics?.countAllocation(result.pool);
    await this.once(svc, key, 'Normal', 'IPAllocated', `Assigned IP [${ips.map((i) => `"${i}"`).join(', ')}] from pool "${result.pool}"`);
  }

  private async failed(svc: Service, key: string, code: string, message: string): Promise<void> {
    this.options.metrics?.countFailure(code);
    if ((svc.status?.loadBalancer?.ingress ?? []).length > 0 || svc.metadata.annotations?.[ASSIGNMENT.ips] !== undefined) {
      await this.options.ledger.release(key);
      await this.clear(svc, message);
    }
    await this.once(svc, key, 'Warning', 'AllocationFailed', `Failed to allocate IP for "${key}": ${message}`);
  }

  /** Removes our annotations and the ingress status. */
  private async clear(svc: Service, why: string): Promise<void> {
    const ns = svc.metadata.namespace ?? '';
    const name = svc.metadata.name ?? '';
    try {
      await this.options.kube.patch(RESOURCES.services, name, ns, {
        metadata: { annotations: { [ASSIGNMENT.pool]: null, [ASSIGNMENT.ips]: null, [ASSIGNMENT.reservation]: null } },
      });
      if ((svc.status?.loadBalancer?.ingress ?? []).length > 0) {
        await this.options.kube.patch(RESOURCES.services, name, ns, { status: { loadBalancer: { ingress: null } } }, { subresource: 'status' });
      }
    } catch (e) {
      if (!isKubeError(e, 404)) throw e;
    }
    await this.event(svc, 'Warning', 'ClearAssignment', `current IP not allowed: ${why}`);
  }

  private async once(svc: Service, key: string, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const tag = `${svc.metadata.uid ?? ''}|${reason}|${message}`;
    if (this.lastEvent.get(key) === tag) return;
    this.lastEvent.set(key, tag);
    await this.event(svc, type, reason, message);
  }

  private async event(about: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = this.clock.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const ns = about.metadata.namespace ?? this.options.namespace;
    try {
      await this.options.kube.create(RESOURCES.events, {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${about.metadata.name ?? 'metallb'}.`, namespace: ns },
        involvedObject: {
          apiVersion: about.apiVersion ?? 'v1',
          kind: about.kind ?? 'Service',
          namespace: ns,
          name: about.metadata.name,
          ...(about.metadata.uid ? { uid: about.metadata.uid } : {}),
        },
        reason,
        message,
        type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: 'metallb-controller' },
        reportingComponent: 'metallb.io/controller',
        reportingInstance: this.options.instance ?? 'metallb-controller',
      });
    } catch (e) {
      this.log(`event ${reason} on ${ns}/${about.metadata.name ?? ''}: ${String(e)}`);
    }
  }
}
