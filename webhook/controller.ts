/**
 * The reconcile loop. Every replica follows the configuration (ConfigFollower, so its admission
 * handlers allocate from the current pools) and mirrors the claims (Ledger); only the leader
 * writes. The stored Service is the truth (the KEP-1880 pattern):
 *
 * - a reservation the stored Service carries (taken at admission) is adopted if it was made for
 *   that Service, and the addresses the Service no longer shows are let go;
 * - what the Service shows is kept while its request and the pools allow it; otherwise (admitted
 *   while the webhook was unreachable, revoked by a configuration change, a claim lost) it is
 *   allocated afresh, keeping each address still allowed, and annotations and
 *   `status.loadBalancer.ingress` ([{ip, ipMode: VIP}]) are written against the version judged;
 * - holder UIDs are bound; claims of Services deleted, turned away from us, or never stored are
 *   released by the ClaimReaper; pool usage goes to metrics and IPAddressPool status
 *   (PoolStatusWriter); events (IPAllocated, AllocationFailed, ClearAssignment,
 *   DeprecatedAnnotation) go through the shared EventRecorder, once per change.
 *
 * Nothing is judged before a valid configuration has been applied, so a restart under an
 * invalid one takes nothing away.
 *
 * Work is per Service: a Service watch event, a claim change or a namespace's labels changing
 * marks the Services concerned dirty; `concurrency` workers drain them (never two on one
 * Service), changes before bulk passes (taking the lead, a configuration change, the periodic
 * resync). A Service in agreement costs no API call; one that fails is retried with exponential
 * backoff.
 */
import { isDeepStrictEqual } from 'node:util';
import { serviceKey, serviceToRequest } from '../core/allocator/index.js';
import { formatIP, type IP } from '../core/ip/index.js';
import { claimName } from '../core/allocator/claim-name.js';
import { isReservationKey, type Ledger, type LedgerResult } from './claims.js';
import { isKubeError, olderThan, Reflector, RESOURCES, type KubeApi, type KubeObject } from '../kube/client.js';
import { systemClock, type Clock } from '../kube/clock.js';
import { EventRecorder } from '../kube/events.js';
import { ConfigFollower } from './config-follower.js';
import { NamespaceLabels } from './namespaces.js';
import { PoolStatusWriter } from './pool-status.js';
import { ClaimReaper, reservationKeyOf } from './reaper.js';
import { ASSIGNMENT, isOurs, parseIPs } from './services.js';

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
  /** Services reconciled at once (default 16). */
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

/** The reconcile loop; `start` in every replica, `setLeading` from the leader election. */
export class Controller {
  private readonly services = new Map<string, Service>();
  /** Namespace labels (serviceAllocation.namespaceSelectors), from a watch. */
  private readonly namespaceLabels: NamespaceLabels;
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
  private reapTimer: NodeJS.Timeout | undefined;
  private reapSoonTimer: NodeJS.Timeout | undefined;
  private reaping: Promise<void> | undefined;
  private reapAgain = false;
  private idleWaiters: (() => void)[] = [];
  /** The configuration, followed in every replica. */
  private readonly config: ConfigFollower;
  /** Pool usage: metrics everywhere, IPAddressPool status from the leader. */
  private readonly pools: PoolStatusWriter;
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
    this.pools = new PoolStatusWriter({
      kube: options.kube,
      ledger: options.ledger,
      namespace: options.namespace,
      ...(options.metrics && { metrics: options.metrics }),
      leading: () => this.leading && !this.stopped,
      ...(options.poolStatusMs !== undefined && { everyMs: options.poolStatusMs }),
      log: this.log,
    });
    this.config = new ConfigFollower({
      kube: options.kube,
      ledger: options.ledger,
      namespace: options.namespace,
      clock: this.clock,
      recorder: this.recorder,
      ...(options.metrics && { metrics: options.metrics }),
      leading: () => this.leading && !this.stopped,
      onApplied: (revoked) => {
        for (const r of revoked) this.revokedWhy.set(r.service, r.failure.message);
        this.enqueueAll();
        this.pools.schedule();
      },
      onPools: (items, changed) => {
        if (items) this.pools.sync(items);
        else if (changed) this.pools.observe(changed.obj.metadata.name ?? '', changed.obj.status, changed.type === 'DELETED');
      },
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
          return svc && { ...(svc.metadata.uid ? { uid: svc.metadata.uid } : {}), ours: isOurs(svc, options.loadBalancerClass) };
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
    const { kube, ledger } = this.options;
    await this.config.start();
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
          if (this.leading) this.reaper.deleted(k);
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
      this.pools.schedule();
    });
    const resync = () => {
      this.resyncTimer = setTimeout(() => {
        this.enqueueAll();
        this.pools.schedule();
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
    this.pools.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.reflectors) r.stop();
    if (!this.options.namespaceLabels) this.namespaceLabels.stop();
    for (const t of [this.resyncTimer, this.reapTimer, this.reapSoonTimer, ...this.timers]) if (t) clearTimeout(t);
    this.queue.clear();
    this.urgent.clear();
    await Promise.all([this.config.stop(), this.pools.stop(), this.idle()]);
  }

  /** Resolves when no worker or reap pass is running. */
  private idle(): Promise<void> {
    if (this.active.size === 0 && !this.reaping) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private checkIdle(): void {
    if (this.active.size > 0 || this.reaping) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Called by leader election. */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) {
      void this.config.onLeading();
      this.syncStartedAt = this.clock.monotonic();
      this.options.metrics?.setSynced?.(false);
      this.enqueueAll();
      this.pools.schedule();
    } else {
      this.queue.clear();
      this.urgent.clear();
      this.dirtyAgain.clear();
      this.reaper.reset();
      this.syncStartedAt = undefined;
      this.options.metrics?.setSynced?.(false);
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
    const limit = this.options.concurrency ?? 16;
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
    // Each Service in a macrotask of its own: a pass over thousands of Services in agreement
    // (no I/O, only promise continuations) would otherwise hold the event loop for seconds and
    // starve the admission webhook this process also serves (seen: 4 s at 10,000 Services).
    await new Promise<void>((resolve) => setImmediate(resolve));
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
    if (!isOurs(svc, loadBalancerClass)) {
      this.waiting.delete(key);
      this.revokedWhy.delete(key);
      if (ledger.claimsOf(key).length > 0) await ledger.release(key);
      if (svc.metadata.annotations?.[ASSIGNMENT.ips] !== undefined) await this.clear(svc, 'the Service is no longer of type LoadBalancer handled by MetalLB');
      return;
    }
    if (!this.config.configApplied) return; // no valid configuration yet: nothing is judged, nothing moves
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
    const read = serviceToRequest(svc, labels);
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
    // Admission may have run on another replica a moment ago: before judging, read the claims
    // of shown addresses that our mirror does not know as this Service's (or its reservation's).
    const own = [key, ...(typeof reservation === 'string' && isReservationKey(reservation) ? [serviceKey(ns, reservation)] : [])];
    const known = (ip: IP) => own.some((k) => (ledger.heldBy(k)?.ips ?? []).some((x) => x.family === ip.family && x.value === ip.value));
    for (const ip of annotated) if (!known(ip)) await ledger.refresh(claimName(ip));
    if (reservation && this.mayAdopt(svc, reservation, annotated)) {
      await ledger.adopt(ns, reservation, { name, ...(uid ? { uid } : {}) }, annotated, read.request);
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
      // The claims are the truth; the mirror may still show one of these addresses taken by an
      // allocation in flight here (it will meet 409 and let go) or by a holder whose claims it
      // has not caught up with. Never move a Service for that: rebuild, and wait if needed.
      if (ledger.remirror(annotated).length > 0) {
        this.enqueueLater(key, 200);
        return;
      }
    } else if (heldBefore.length === 0) {
      // No claim behind an assignment the Service shows in both annotation and status (a claim
      // deleted by hand): take the same IPs again if they are free, so the IP does not move. The
      // second call keeps them and records the Service's own request in the claims.
      shown = shownIPs(svc);
      if (shown && (await ledger.allocate({ ...read.request, requestedIPs: shown })).ok) result = await ledger.allocate(read.request);
    }
    const mirrorBefore = heldBefore.map((ip) => `${formatIP(ip)}:${ledger.allocator.holders(ip).join('+') || 'free'}`).join(' ');
    // Whatever is still allowed of what the Service had is kept, per address and family (a
    // revoked IPv4 address of a dual-stack pair does not take the IPv6 one with it).
    result ??= await ledger.allocate(read.request, { prefer: heldBefore.length > 0 ? heldBefore : annotated, recordRequest: false });
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
        const written = (await this.options.kube.patch(RESOURCES.services, name, ns, { status: { loadBalancer: { ingress } } }, { subresource: 'status' })) as Service;
        // Cache what we wrote: a reconcile triggered before the watch delivers it (the claim's
        // event) would otherwise write the same status again.
        const cached = this.services.get(key);
        if (cached && cached.metadata.uid === written.metadata?.uid && olderThan(cached.metadata.resourceVersion, written.metadata?.resourceVersion)) {
          this.services.set(key, written);
          this.indexReservation(key, written);
        }
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
      this.log(
        `${key} moves from ${was.join(',')} to ${ips.join(',')}: ${why} (showed ${annotated.map(formatIP).join(',') || 'nothing'}, reservation ${String(reservation ?? 'none')}, mirror ${mirrorBefore})`,
      );
      await this.event(svc, 'Warning', 'ClearAssignment', `current IP [${was.map((i) => `"${i}"`).join(', ')}] not allowed: ${why}; assigning another`);
    }
    // The claims record the Service's UID and its request as stored (a create's claims were made
    // before either was final), and the Service is told once per change (a restart or a resync
    // of a Service in agreement writes nothing). Both after the status, and at once: the
    // address is the Service's from the claim already, these only record it.
    await Promise.all([
      ledger.confirm(key, uid, read.request),
      wrote || result.changed ? this.once(svc, key, 'Normal', 'IPAllocated', `Assigned IP [${ips.map((i) => `"${i}"`).join(', ')}] from pool "${result.pool}"`) : undefined,
    ]);
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
