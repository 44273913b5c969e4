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
 *
 * Work is per Service: a Service watch event, a claim change or a namespace's labels changing
 * marks the Services concerned dirty in a deduplicated queue, which `concurrency` workers drain
 * (never two on one Service); a configuration change, taking the lead and a periodic resync
 * mark every Service. A Service whose claims, annotations and status already agree costs no API
 * call. Claims whose holder is gone are reaped in a pass of their own (after claim changes and
 * Service deletions, and periodically for reservations past their grace). The leader also
 * writes each IPAddressPool's usage into its status (coalesced) and the per-pool metrics.
 */
import { isDeepStrictEqual } from 'node:util';
import { serviceKey, serviceToRequest } from '../core/allocator/index.js';
import { formatConfigError } from '../core/config/index.js';
import { formatIP, parseIP, type IP } from '../core/ip/index.js';
import { holderKey, isReservationKey, type Ledger, type LedgerResult } from './claims.js';
import { CONFIG_MAP_NAME, LAST_GOOD_CONFIG_MAP, parseObjects, readConfigObjects, type ConfigObjects } from './config-admission.js';
import { CONFIG_KINDS, isKubeError, olderThan, Reflector, RESOURCES, type KubeApi, type KubeObject, type Resource } from '../kube/client.js';
import { systemClock, type Clock } from '../kube/clock.js';
import { EventRecorder } from '../kube/events.js';
import { NamespaceLabels } from './namespaces.js';
import { ClaimReaper, reservationKeyOf } from './reaper.js';
import { ASSIGNMENT, isOurs } from './services.js';

/** What the loop reports to metrics; the webhook's Metrics class satisfies it. */
export interface ControllerMetrics {
  setPoolUsage(pool: string, used: number, total: number): void;
  removePool?(pool: string): void;
  setConfigValid(valid: boolean): void;
  setConfigStale?(stale: boolean): void;
  setConfigLoaded?(loaded: boolean): void;
  countUpdate?(ok: boolean): void;
  /** 1 once the leader has reconciled every Service after taking the lead. */
  setSynced?(synced: boolean): void;
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
  /** Every Service reconciled again even without changes (default 60 s). */
  resyncMs?: number;
  /** Services reconciled at once (default 8). */
  concurrency?: number;
  /** Period of the pass that reaps claims whose Service never came (default 5 s). */
  reapMs?: number;
  /** Minimum time between two status writes of one IPAddressPool (default 500 ms). */
  poolStatusMs?: number;
  /** Namespace labels shared with the admission handlers (default: a cache of its own, started and stopped with the loop). */
  namespaceLabels?: NamespaceLabels;
  /** Identity for events. */
  instance?: string;
  log?: (line: string) => void;
}

interface Service extends KubeObject {
  spec?: Record<string, unknown> & { type?: string; loadBalancerClass?: string };
  status?: { loadBalancer?: { ingress?: { ip?: string; ipMode?: string }[] } };
}

/** What the controller writes into an IPAddressPool's status (manifests/crds/metallb.io_ipaddresspools.yaml). */
interface PoolStatus {
  assignedIPv4: number;
  assignedIPv6: number;
  availableIPv4: number;
  availableIPv6: number;
  used: number;
  free: string;
}

/** Counts beyond this (IPv6) saturate: a JSON number from JavaScript is exact only up to 2^53 - 1. */
const MAX_COUNT = BigInt(Number.MAX_SAFE_INTEGER);

function sameStatus(have: unknown, want: PoolStatus): boolean {
  if (!have || typeof have !== 'object') return false;
  const h = have as Record<string, unknown>;
  return (Object.keys(want) as (keyof PoolStatus)[]).every((k) => h[k] === want[k]);
}

/** The IPs of an assigned-ips annotation (empty when absent or malformed). */
function parseIPs(text: unknown): IP[] {
  if (typeof text !== 'string' || !text) return [];
  const ips: IP[] = [];
  for (const t of text.split(',')) {
    const p = parseIP(t.trim());
    if (!p.ok) return [];
    ips.push(p.value);
  }
  return ips;
}

/**
 * The IPs a Service shows as its assignment when its annotation and its status agree (the
 * status is written by the controller alone, so a user cannot forge both).
 */
function shownIPs(svc: Service): IP[] | undefined {
  const ips = parseIPs(svc.metadata.annotations?.[ASSIGNMENT.ips]);
  if (ips.length === 0) return undefined;
  const status = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').sort();
  return isDeepStrictEqual(ips.map(formatIP).sort(), status) ? ips : undefined;
}

/** One line, whatever was thrown. */
function describeError(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
}

function keyOf(o: KubeObject): string {
  return serviceKey(o.metadata.namespace ?? '', o.metadata.name ?? '');
}

/** An object's content apart from its status and bookkeeping metadata. */
function content(o: KubeObject): string {
  const { metadata, status: _status, ...rest } = o;
  return JSON.stringify([metadata.labels ?? {}, metadata.annotations ?? {}, rest]);
}

/** The reconcile loop; `start` in every replica, `setLeading` from the leader election. */
export class Controller {
  private readonly services = new Map<string, Service>();
  /** Namespace labels (serviceAllocation.namespaceSelectors), from a watch. */
  private readonly namespaceLabels: NamespaceLabels;
  /** IPAddressPool name (in our namespace) -> its status as last seen or written. */
  private readonly poolObjects = new Map<string, unknown>();
  /** Pools whose metrics are reported, to remove the ones that go. */
  private readonly reportedPools = new Set<string>();
  /** Configuration objects' content (not status), to tell a real change from a status write. */
  private readonly configContent = new Map<string, string>();
  private readonly reflectors: Reflector[] = [];
  private leading = false;
  private stopped = false;
  /** Dirty Services in arrival order; a key is queued or active, never both. */
  private readonly queue = new Set<string>();
  /** Set when this replica takes the lead, until its first pass over every Service is done. */
  private syncStartedAt: number | undefined;
  /** Dirty Services marked by a change: drained before `queue`. */
  private readonly urgent = new Set<string>();
  /** Services a worker is on. */
  private readonly active = new Set<string>();
  /** Services marked dirty again while a worker was on them. */
  private readonly dirtyAgain = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private resyncTimer: NodeJS.Timeout | undefined;
  private configTimer: NodeJS.Timeout | undefined;
  private reapTimer: NodeJS.Timeout | undefined;
  private reapSoonTimer: NodeJS.Timeout | undefined;
  private reaping: Promise<void> | undefined;
  private reapAgain = false;
  private poolTimer: NodeJS.Timeout | undefined;
  private poolWriting: Promise<void> | undefined;
  private poolAgain = false;
  private lastPoolWrite = 0;
  private idleWaiters: (() => void)[] = [];
  private configValid: boolean | undefined;
  /** A valid configuration (current or recorded) has been applied: until then no Service is judged. */
  private configApplied = false;
  private configLoading: Promise<void> | undefined;
  private configDirty = false;
  private configReadFailures = 0;
  private configReadError: string | undefined;
  private lastGood: ConfigObjects | undefined;
  private recordedText: string | undefined;
  private configErrors: string[] = [];
  private lastValidAt: string | undefined;
  /** Last event reason+message per Service, so a steady state emits nothing. */
  private readonly lastEvent = new Map<string, string>();
  /** Services warned about deprecated annotations (key -> UID), pruned when the Service goes. */
  private readonly warnedDeprecated = new Map<string, string>();
  /** Why the last configuration change revoked a Service's IPs, until the Service is reconciled. */
  private readonly revokedWhy = new Map<string, string>();
  /** Services left without an IP by their last reconcile: tried again whenever a claim lets go. */
  private readonly waiting = new Set<string>();
  /** Consecutive failed reconciles per Service (backoff), pruned on success and deletion. */
  private readonly failures = new Map<string, number>();
  private readonly reaper: ClaimReaper;
  private readonly recorder: EventRecorder;
  /** Reservation key (`ns/name*token`) -> the stored Service carrying it, and back. */
  private readonly reservationOwners = new Map<string, string>();
  private readonly reservationOf = new Map<string, string>();
  private readonly clock: Clock;
  private readonly log: (line: string) => void;

  constructor(private readonly options: ControllerOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? (() => {});
    this.namespaceLabels = options.namespaceLabels ?? new NamespaceLabels(options.kube, { log: this.log });
    this.recorder = new EventRecorder(options.kube, {
      component: 'metallb-controller',
      reportingComponent: 'metallb.io/controller',
      instance: options.instance ?? 'metallb-controller',
      namespace: options.namespace,
      clock: this.clock,
      log: this.log,
    });
    this.reaper = new ClaimReaper({
      ledger: options.ledger,
      clock: this.clock,
      ...(options.reservationGraceMs !== undefined && { graceMs: options.reservationGraceMs }),
      log: this.log,
      view: {
        service: (key) => {
          const svc = this.services.get(key);
          return svc && { ...(svc.metadata.uid ? { uid: svc.metadata.uid } : {}), ours: isOurs(svc as never, options.loadBalancerClass) };
        },
        reservationOwner: (key) => this.reservationOwners.get(key),
        busy: (key) => this.urgent.has(key) || this.queue.has(key) || this.active.has(key),
        enqueue: (key) => this.enqueue(key),
      },
    });
  }

  /** Keeps the reservation index in step with the Service cache (the older Service wins a tie). */
  private indexReservation(key: string, svc: Service | undefined): void {
    const before = this.reservationOf.get(key);
    if (before !== undefined) {
      this.reservationOf.delete(key);
      if (this.reservationOwners.get(before) === key) this.reservationOwners.delete(before);
    }
    const r = svc ? reservationKeyOf(svc.metadata.namespace ?? '', svc.metadata.annotations?.[ASSIGNMENT.reservation]) : undefined;
    if (!r) return;
    this.reservationOf.set(key, r);
    if (!this.reservationOwners.has(r)) this.reservationOwners.set(r, key);
  }

  /** Loads the configuration and the Services and starts watching; resolves when loaded. */
  async start(): Promise<void> {
    const { kube, namespace, ledger } = this.options;
    await this.reloadConfig();
    const configChanged = () => this.requestConfigLoad();
    for (const r of [RESOURCES.configMaps, ...Object.values(CONFIG_KINDS)]) {
      const isPools = r === CONFIG_KINDS.IPAddressPool;
      const ref = new Reflector(
        kube,
        r,
        {
          onSync: (items) => {
            for (const k of [...this.configContent.keys()]) if (k.startsWith(`${r.plural}/`)) this.configContent.delete(k);
            for (const o of items) this.configContent.set(`${r.plural}/${o.metadata.name ?? ''}`, content(o));
            if (isPools) {
              this.poolObjects.clear();
              for (const o of items) this.poolObjects.set(o.metadata.name ?? '', o.status);
              this.schedulePoolStatus();
            }
            configChanged();
          },
          onEvent: (type, o) => {
            const key = `${r.plural}/${o.metadata.name ?? ''}`;
            if (isPools) {
              if (type === 'DELETED') this.poolObjects.delete(o.metadata.name ?? '');
              else this.poolObjects.set(o.metadata.name ?? '', o.status);
              this.schedulePoolStatus();
            }
            if (type === 'DELETED') {
              this.configContent.delete(key);
            } else {
              const c = content(o);
              // Our own pool status writes (and other status-only changes) are no configuration change.
              if (this.configContent.get(key) === c) return;
              this.configContent.set(key, c);
            }
            configChanged();
          },
          onError: () => {},
        },
        { namespace },
      );
      this.reflectors.push(ref);
      // Not awaited: a kind whose list keeps failing (its CRD not installed yet) is retried by the
      // reflector with backoff, and the configuration is read by list on every load anyway.
      void ref.start({ wait: false });
    }
    this.namespaceLabels.onChange((name) => {
      if (name === undefined) this.enqueueAll();
      else for (const [key, svc] of this.services) if (svc.metadata.namespace === name) this.enqueue(key);
    });
    await this.namespaceLabels.start();
    const services = new Reflector(kube, RESOURCES.services, {
      onSync: (items) => {
        this.services.clear();
        this.reservationOwners.clear();
        this.reservationOf.clear();
        for (const s of items) {
          this.services.set(keyOf(s), s as Service);
          this.indexReservation(keyOf(s), s as Service);
        }
        this.enqueueAll();
      },
      onEvent: (type, s) => {
        const k = keyOf(s);
        if (type === 'DELETED') {
          this.services.delete(k);
          this.lastEvent.delete(k);
          this.warnedDeprecated.delete(k);
          this.failures.delete(k);
          this.indexReservation(k, undefined);
          this.reapSoon([k]);
        } else {
          const cached = this.services.get(k);
          // Our own write's answer may already be cached; the watch can deliver an older version after it.
          if (cached && cached.metadata.uid === s.metadata.uid && olderThan(s.metadata.resourceVersion, cached.metadata.resourceVersion)) return;
          this.services.set(k, s as Service);
          this.indexReservation(k, s as Service);
        }
        this.enqueue(k);
      },
      onError: (e) => this.log(`services watch: ${String(e)}`),
    });
    this.reflectors.push(services);
    await services.start();
    ledger.onChange((holders) => {
      // A holder left without claims may have freed an address a waiting Service asked for.
      if ([...holders].some((h) => ledger.claimsOf(h).length === 0)) for (const k of this.waiting) this.enqueue(k);
      for (const h of holders) {
        // A reservation, or a holder whose Service is gone: the reaper's business.
        if (isReservationKey(h) || !this.services.has(h)) this.reapSoon([h]);
        else this.enqueue(h);
      }
      this.schedulePoolStatus();
    });
    const resync = () => {
      this.resyncTimer = setTimeout(() => {
        this.enqueueAll();
        this.schedulePoolStatus();
        resync();
      }, this.options.resyncMs ?? 60_000);
    };
    resync();
    const reap = () => {
      this.reapTimer = setTimeout(() => {
        if (this.reaper.hasWork()) this.reapSoon([], 0);
        reap();
      }, this.options.reapMs ?? 5_000);
    };
    reap();
    this.schedulePoolStatus();
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.reflectors) r.stop();
    if (!this.options.namespaceLabels) this.namespaceLabels.stop();
    for (const t of [this.resyncTimer, this.configTimer, this.reapTimer, this.reapSoonTimer, this.poolTimer, ...this.timers]) if (t) clearTimeout(t);
    this.queue.clear();
    this.urgent.clear();
    return this.idle();
  }

  /** Resolves when no worker, reap pass or status write is running. */
  private idle(): Promise<void> {
    if (this.active.size === 0 && !this.reaping && !this.poolWriting) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private checkIdle(): void {
    if (this.active.size > 0 || this.reaping || this.poolWriting) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Called by leader election. */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) {
      void this.reportConfig();
      this.syncStartedAt = this.clock.monotonic();
      this.options.metrics?.setSynced?.(false);
      this.enqueueAll();
      this.schedulePoolStatus();
    } else {
      this.queue.clear();
      this.urgent.clear();
      this.dirtyAgain.clear();
      this.reaper.reset();
    }
  }

  // ---- the work queue ----

  /**
   * Marks a Service dirty (leader only); a worker reconciles it soon. Changes (`urgent`) go
   * before the bulk passes (taking the lead, a resync, a configuration change), so a Service
   * created during a resync of thousands does not wait behind it.
   */
  private enqueue(key: string, urgent = true): void {
    if (!this.leading || this.stopped) return;
    if (this.active.has(key)) this.dirtyAgain.add(key);
    else if (urgent) {
      this.queue.delete(key);
      this.urgent.add(key);
    } else if (!this.urgent.has(key)) this.queue.add(key);
    this.pump();
  }

  private enqueueAll(): void {
    for (const key of this.services.keys()) this.enqueue(key, false);
    this.reapSoon();
  }

  private enqueueLater(key: string, delayMs: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.enqueue(key);
    }, delayMs);
    this.timers.add(t);
  }

  private pump(): void {
    const limit = this.options.concurrency ?? 8;
    while (this.active.size < limit && this.leading && !this.stopped) {
      const from = this.urgent.size > 0 ? this.urgent : this.queue;
      const next = from.values().next();
      if (next.done) return;
      const key = next.value;
      from.delete(key);
      this.active.add(key);
      void this.work(key);
    }
  }

  private async work(key: string): Promise<void> {
    try {
      await this.reconcileKey(key);
      this.failures.delete(key);
    } catch (e) {
      // Per-Service exponential backoff (client-go's item rate limiter): a Service that keeps
      // failing costs less and less, never a retry every 500 ms forever.
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min(300_000, 100 * 2 ** Math.min(n, 12)) * (0.75 + Math.random() / 4);
      this.log(`reconcile ${key} (attempt ${n}, next in ${Math.round(delay)} ms): ${describeError(e)}`);
      this.options.metrics?.countUpdate?.(false);
      this.enqueueLater(key, delay);
    } finally {
      this.active.delete(key);
      if (this.dirtyAgain.delete(key) && this.leading && !this.stopped) this.urgent.add(key);
      this.pump();
      this.checkIdle();
      if (this.syncStartedAt !== undefined && this.urgent.size === 0 && this.queue.size === 0 && this.active.size === 0) {
        this.log(`leader synced: ${this.services.size} Service(s) reconciled in ${Math.round(this.clock.monotonic() - this.syncStartedAt)} ms`);
        this.syncStartedAt = undefined;
        this.options.metrics?.setSynced?.(true);
      }
    }
  }

  // ---- configuration ----

  /**
   * Loads the configuration soon. Loads never overlap and the last one always reads after the
   * last change: a change during a load makes one more load after it (an older read can never
   * land after a newer one).
   */
  private requestConfigLoad(delayMs = 50): void {
    if (this.stopped) return;
    this.configDirty = true;
    if (this.configLoading || this.configTimer) return;
    this.configTimer = setTimeout(() => {
      this.configTimer = undefined;
      void this.reloadConfig();
    }, delayMs);
  }

  /** Runs loads until no change is pending. */
  private async reloadConfig(): Promise<void> {
    if (this.configLoading) {
      this.configDirty = true;
      return this.configLoading;
    }
    this.configLoading = (async () => {
      do {
        this.configDirty = false;
        try {
          await this.loadConfig();
          this.configReadFailures = 0;
        } catch (e) {
          // A read that failed (an API error other than "kind not installed") changes nothing:
          // the last good configuration stays, and the read is tried again with backoff.
          this.configReadFailures++;
          this.configReadError = `could not read the configuration: ${describeError(e)}`;
          this.log(`${this.configReadError}; keeping the last good one, retrying`);
          this.options.metrics?.setConfigStale?.(true);
          this.options.metrics?.countUpdate?.(false);
          await this.reportConfig();
          const backoff = Math.min(30_000, 200 * 2 ** Math.min(this.configReadFailures, 8)) * (0.5 + Math.random() / 2);
          if (!this.stopped) {
            this.configTimer = setTimeout(() => {
              this.configTimer = undefined;
              this.requestConfigLoad(0);
            }, backoff);
          }
          break;
        }
      } while (this.configDirty && !this.stopped);
    })().finally(() => {
      this.configLoading = undefined;
    });
    return this.configLoading;
  }

  private async loadConfig(): Promise<void> {
    const { kube, namespace } = this.options;
    const objects = await readConfigObjects(kube, namespace);
    this.configReadError = undefined;
    const result = parseObjects(objects);
    if (result.errors.length > 0) {
      this.configErrors = result.errors.map(formatConfigError);
      if (this.configValid !== false) this.log(`configuration invalid, keeping the last good one: ${this.configErrors.join('; ')}`);
      this.configValid = false;
      this.options.metrics?.setConfigValid(false);
      this.options.metrics?.setConfigStale?.(true);
      this.options.metrics?.countUpdate?.(false);
      // A process that never saw a good configuration (a restart while an invalid one is in
      // place) starts from the one the leader recorded, never from none: no IP is taken away.
      if (!this.configApplied) await this.applyRecorded();
    } else {
      this.configValid = true;
      this.configErrors = [];
      this.lastValidAt = this.clock
        .now()
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z');
      this.options.metrics?.setConfigValid(true);
      this.options.metrics?.setConfigStale?.(false);
      this.options.metrics?.setConfigLoaded?.(true);
      this.options.metrics?.countUpdate?.(true);
      this.apply(result.config.pools, 'the current configuration');
      this.lastGood = objects;
      await this.recordLastGood();
    }
    await this.reportConfig();
  }

  /** Applies pools: the ledger re-checks every claim, and Services that lost addresses are reconciled with the reason. */
  private apply(pools: Parameters<Ledger['setPools']>[0], source: string): void {
    const revoked = this.options.ledger.setPools(pools);
    if (!this.configApplied) this.log(`configuration applied from ${source}: ${pools.length} pool(s)`);
    this.configApplied = true;
    for (const r of revoked) {
      this.log(`${r.service} loses ${r.ips.map(formatIP).join(', ')}: ${r.failure.message}`);
      this.revokedWhy.set(r.service, r.failure.message);
    }
    this.enqueueAll();
    this.schedulePoolStatus();
  }

  /** Leader only: records the configuration just applied, so that a process starting while the current one is invalid can start from it. */
  private async recordLastGood(): Promise<void> {
    if (!this.leading || !this.lastGood) return;
    const text = JSON.stringify(this.lastGood);
    if (text === this.recordedText) return;
    const { kube, namespace } = this.options;
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: LAST_GOOD_CONFIG_MAP, namespace, labels: { 'app.kubernetes.io/managed-by': 'metallb-ts' } },
      data: { objects: text },
    };
    try {
      try {
        await kube.create(RESOURCES.configMaps, body);
      } catch (e) {
        if (!isKubeError(e, 409)) throw e;
        await kube.patch(RESOURCES.configMaps, LAST_GOOD_CONFIG_MAP, namespace, { data: body.data });
      }
      this.recordedText = text;
    } catch (e) {
      this.log(`recording the last good configuration: ${describeError(e)}`);
    }
  }

  /** Applies the configuration the leader last recorded, if there is one and it parses. */
  private async applyRecorded(): Promise<void> {
    const { kube, namespace } = this.options;
    let cm: KubeObject | undefined;
    try {
      cm = await kube.get(RESOURCES.configMaps, LAST_GOOD_CONFIG_MAP, namespace);
    } catch (e) {
      this.log(`reading the last good configuration: ${describeError(e)}`);
      return;
    }
    const text = (cm?.data as Record<string, unknown> | undefined)?.objects;
    if (typeof text !== 'string') {
      this.log('no last good configuration recorded: running with no pools until the configuration is fixed; no IP is revoked meanwhile');
      return;
    }
    try {
      const objects = JSON.parse(text) as ConfigObjects;
      const result = parseObjects(objects);
      if (result.errors.length > 0) throw new Error(result.errors.map(formatConfigError).join('; '));
      this.lastGood = objects;
      this.recordedText = text;
      this.apply(result.config.pools, `the last good configuration recorded in ${namespace}/${LAST_GOOD_CONFIG_MAP}`);
    } catch (e) {
      this.log(`the recorded last good configuration is unusable: ${describeError(e)}`);
    }
  }

  /** Leader only: the ConfigurationState and, when invalid, a Warning event on the ConfigMap. */
  private async reportConfig(): Promise<void> {
    if (!this.leading || (this.configValid === undefined && !this.configReadError)) return;
    const { kube, namespace } = this.options;
    const status = {
      result: this.configReadError ? 'Unreadable' : this.configValid ? 'Valid' : 'Invalid',
      errors: this.configReadError ? [this.configReadError, ...this.configErrors] : this.configErrors,
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
      if (this.configValid === false && !this.configReadError) {
        const cm = await kube.get(RESOURCES.configMaps, CONFIG_MAP_NAME, namespace);
        const about = cm ?? { apiVersion: 'metallb.io/v1beta1', kind: 'ConfigurationState', metadata: { name: 'controller', namespace } };
        await this.event(about, 'Warning', 'ConfigInvalid', `configuration invalid, running on the last valid one: ${this.configErrors.join('; ')}`);
      }
    } catch (e) {
      this.log(`reporting configuration state: ${String(e)}`);
    }
  }

  // ---- reconcile ----

  /** Brings one Service, its claims, annotations and status into agreement. */
  private async reconcileKey(key: string): Promise<void> {
    const { ledger, loadBalancerClass } = this.options;
    if (!this.leading || this.stopped) return;
    const svc = this.services.get(key);
    if (!svc) {
      this.waiting.delete(key);
      this.revokedWhy.delete(key);
      // Deleted (or not created yet): its claims are the reaper's business.
      if (ledger.claimsOf(key).length > 0) this.reapSoon([key]);
      return;
    }
    if (!isOurs(svc as never, loadBalancerClass)) {
      this.waiting.delete(key);
      this.revokedWhy.delete(key);
      if (ledger.claimsOf(key).length > 0) await ledger.release(key);
      if (svc.metadata.annotations?.[ASSIGNMENT.ips] !== undefined) await this.clear(svc, 'the Service is no longer of type LoadBalancer handled by MetalLB');
      return;
    }
    if (!this.configApplied) return; // no valid configuration yet: nothing is judged, nothing moves
    const ns = svc.metadata.namespace ?? '';
    await this.reconcileService(svc, key, await this.labelsOf(ns));
  }

  /** A namespace's labels, from the watch; read once when the watch has not seen it yet. */
  private labelsOf(ns: string): Promise<Record<string, string>> {
    return this.namespaceLabels.labels(ns);
  }

  /** Runs a reap pass soon (coalesced) over these holders (and the ones waiting); no keys: every holder. */
  private reapSoon(keys?: Iterable<string>, delayMs = 200): void {
    if (!this.leading || this.stopped) return;
    if (keys) this.reaper.note(keys);
    else this.reaper.sweep();
    if (this.reaping) {
      this.reapAgain = true;
      return;
    }
    if (this.reapSoonTimer) {
      if (delayMs > 0) return;
      clearTimeout(this.reapSoonTimer);
    }
    this.reapSoonTimer = setTimeout(() => {
      this.reapSoonTimer = undefined;
      this.reaping = (async () => {
        try {
          do {
            this.reapAgain = false;
            await this.reaper.pass(() => this.leading && !this.stopped);
          } while (this.reapAgain && this.leading && !this.stopped);
        } catch (e) {
          this.log(`reaping claims: ${String(e)}`);
        } finally {
          this.reaping = undefined;
          this.checkIdle();
        }
      })();
    }, delayMs);
  }

  // ---- pool usage: metrics and IPAddressPool status ----

  /** Writes pools' usage soon: at once after a quiet spell, at most every `poolStatusMs`. */
  private schedulePoolStatus(): void {
    if (this.stopped) return;
    if (this.poolWriting) {
      this.poolAgain = true;
      return;
    }
    if (this.poolTimer) return;
    const every = this.options.poolStatusMs ?? 500;
    // A little delay even so: a burst of claim changes is written once.
    const wait = Math.max(20, this.lastPoolWrite + every - Date.now());
    this.poolTimer = setTimeout(() => {
      this.poolTimer = undefined;
      this.lastPoolWrite = Date.now();
      this.poolWriting = this.writePoolUsage()
        .catch((e: unknown) => this.log(`pool status: ${String(e)}`))
        .finally(() => {
          this.poolWriting = undefined;
          this.checkIdle();
          if (this.poolAgain) {
            this.poolAgain = false;
            this.schedulePoolStatus();
          }
        });
    }, wait);
  }

  /** Metrics for every pool (empty ones too); the leader also writes each IPAddressPool's status. */
  private async writePoolUsage(): Promise<void> {
    const { ledger, metrics, kube, namespace } = this.options;
    const names = new Set(ledger.currentPools().map((p) => p.name));
    for (const name of this.reportedPools) {
      if (names.has(name)) continue;
      metrics?.removePool?.(name);
      this.reportedPools.delete(name);
    }
    const statuses = new Map<string, PoolStatus>();
    for (const name of names) {
      const u = ledger.allocator.usage(name);
      if (!u) continue;
      metrics?.setPoolUsage(name, Number(u.used), Number(u.size));
      this.reportedPools.add(name);
      statuses.set(name, {
        assignedIPv4: Number(u.families.IPv4.used),
        assignedIPv6: Number(u.families.IPv6.used),
        availableIPv4: Number(u.families.IPv4.free),
        availableIPv6: Number(u.families.IPv6.free > MAX_COUNT ? MAX_COUNT : u.families.IPv6.free),
        used: Number(u.used),
        free: u.free.toString(),
      });
    }
    if (!this.leading) return;
    for (const [name, status] of statuses) {
      if (this.stopped || !this.leading) return;
      if (!this.poolObjects.has(name)) continue; // from the ConfigMap: no object to write to
      if (sameStatus(this.poolObjects.get(name), status)) continue;
      try {
        const written = await kube.patch(CONFIG_KINDS.IPAddressPool as Resource, name, namespace, { status }, { subresource: 'status' });
        if (this.poolObjects.has(name)) this.poolObjects.set(name, written.status);
      } catch (e) {
        if (!isKubeError(e, 404)) throw e;
      }
    }
  }

  /**
   * Whether the stored Service may take over the reservation it carries: the reservation was
   * made for it (its name, or its generateName, before the `*`), its claims hold only addresses
   * the Service shows, and no older Service carries the same text. Anything else (a forged or
   * copied annotation, a reservation of an update that was not the last) gets nothing and expires.
   */
  private mayAdopt(svc: Service, reservation: string, shown: readonly IP[]): boolean {
    const star = reservation.indexOf('*');
    if (star <= 0 && !(star === 0 && svc.metadata.generateName === '')) return false;
    const prefix = reservation.slice(0, star);
    if (prefix !== svc.metadata.name && prefix !== svc.metadata.generateName) return false;
    const ns = svc.metadata.namespace ?? '';
    const held = this.options.ledger.heldBy(serviceKey(ns, reservation))?.ips ?? [];
    if (held.length === 0 || !held.every((ip) => shown.some((s) => s.family === ip.family && s.value === ip.value))) return false;
    for (const other of this.services.values()) {
      if (other === svc || other.metadata.namespace !== ns || other.metadata.annotations?.[ASSIGNMENT.reservation] !== reservation) continue;
      const a = other.metadata.creationTimestamp ?? '';
      const b = svc.metadata.creationTimestamp ?? '';
      if (a < b || (a === b && (other.metadata.name ?? '') < (svc.metadata.name ?? ''))) return false;
    }
    return true;
  }

  /**
   * The stored Service is the truth (the KEP-1880 pattern): a reservation it carries becomes its
   * own, addresses it no longer shows are let go, and what it shows is kept while its request
   * allows it. Only then is anything allocated afresh (admitted while the webhook was down,
   * revoked by a configuration change, or a claim lost).
   */
  private async reconcileService(svc: Service, key: string, labels: Record<string, string>): Promise<void> {
    const { ledger } = this.options;
    const uid = svc.metadata.uid;
    const ns = svc.metadata.namespace ?? '';
    const name = svc.metadata.name ?? '';
    for (const c of ledger.claimsOf(key)) {
      const h = c.spec.holders.find((x) => holderKey(x) === key);
      if (h && uid && h.uid !== uid) await ledger.bind(h, { name: h.name, uid });
    }
    const read = serviceToRequest(svc as never, labels);
    if (read.deprecated.length > 0 && uid && this.warnedDeprecated.get(key) !== uid) {
      this.warnedDeprecated.set(key, uid);
      const names = read.deprecated.map((d) => `${d.used} (use ${d.preferred})`).join(', ');
      await this.event(svc, 'Warning', 'DeprecatedAnnotation', `deprecated annotations: ${names}`);
    }
    const revoked = this.revokedWhy.get(key);
    this.revokedWhy.delete(key);
    if (!read.ok) {
      await this.failed(svc, key, read.failure.code, read.failure.message);
      return;
    }
    const annotated = parseIPs(svc.metadata.annotations?.[ASSIGNMENT.ips]);
    const reservation = svc.metadata.annotations?.[ASSIGNMENT.reservation];
    if (reservation && this.mayAdopt(svc, reservation, annotated)) {
      await ledger.adopt(ns, reservation, { name, ...(uid ? { uid } : {}) }, annotated);
    }
    const heldBefore = ledger.heldBy(key)?.ips ?? [];
    const isHeld = (ip: IP) => heldBefore.some((h) => h.family === ip.family && h.value === ip.value);
    let result: LedgerResult | undefined;
    let shown: IP[] | undefined;
    if (annotated.length > 0 && annotated.every(isHeld)) {
      // What the stored Service shows is claimed: keep exactly that (an accepted change's old
      // addresses are let go here, never at admission).
      if (heldBefore.length > annotated.length) await ledger.keepOnly(key, annotated);
      shown = annotated;
    } else if (heldBefore.length === 0) {
      // No claim behind an assignment the Service shows in both annotation and status (a claim
      // deleted by hand): take the same IPs again if they are free, so the IP does not move. The
      // second call keeps them and records the Service's own request in the claims.
      shown = shownIPs(svc);
      if (shown && (await ledger.allocate({ ...read.request, requestedIPs: shown })).ok) result = await ledger.allocate(read.request);
    }
    // Whatever is still allowed of what the Service had is kept, per address and family (a
    // revoked IPv4 address of a dual-stack pair does not take the IPv6 one with it).
    result ??= await ledger.allocate(read.request, { prefer: heldBefore.length > 0 ? heldBefore : annotated });
    if (!result.ok) {
      if (result.transient) {
        this.enqueueLater(key, 200);
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
    let wrote = false;
    try {
      if (Object.keys(patch).length > 0) {
        // Against the version judged: a change stored meanwhile is reconciled afresh (409).
        await this.options.kube.patch(RESOURCES.services, name, ns, { metadata: { annotations: patch, resourceVersion: svc.metadata.resourceVersion } });
        wrote = true;
      }
      const ingress = ips.map((ip) => ({ ip, ipMode: 'VIP' }));
      const have = svc.status?.loadBalancer?.ingress ?? [];
      if (
        !isDeepStrictEqual(
          have.map((i) => ({ ip: i.ip, ipMode: i.ipMode })),
          ingress,
        )
      ) {
        await this.options.kube.patch(RESOURCES.services, name, ns, { status: { loadBalancer: { ingress } } }, { subresource: 'status' });
        wrote = true;
      }
    } catch (e) {
      if (isKubeError(e, 404)) return; // deleted meanwhile: the watch will tell
      if (isKubeError(e, 409)) {
        this.enqueueLater(key, 50); // changed under us: judge the new version
        return;
      }
      throw e;
    }
    if (result.changed) this.options.metrics?.countAllocation(result.pool);
    this.waiting.delete(key);
    const was = heldBefore.length > 0 ? heldBefore.map(formatIP) : (shown?.map(formatIP) ?? []);
    if (was.some((ip) => !ips.includes(ip))) {
      const why = revoked ?? (heldBefore.length > 0 ? 'the Service asks for something else now' : 'the address was taken meanwhile');
      await this.event(svc, 'Warning', 'ClearAssignment', `current IP [${was.map((i) => `"${i}"`).join(', ')}] not allowed: ${why}; assigning another`);
    }
    // Told once per change: a restart or a resync of a Service in agreement writes nothing.
    if (wrote || result.changed) await this.once(svc, key, 'Normal', 'IPAllocated', `Assigned IP [${ips.map((i) => `"${i}"`).join(', ')}] from pool "${result.pool}"`);
  }

  private async failed(svc: Service, key: string, code: string, message: string): Promise<void> {
    this.options.metrics?.countFailure(code);
    this.waiting.add(key);
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

  /** Through the shared recorder: a repeat of the same event patches its count instead of writing a new one. */
  private event(about: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    return this.recorder.event(about, type, reason, message);
  }
}
