/**
 * A Reflector keeps a local copy of a collection, with client-go's reflector semantics:
 *
 * - list, deliver the whole collection (`onSync`), then watch from the list's resourceVersion;
 *   every event (BOOKMARKs included) moves the last seen resourceVersion;
 * - a watch that ends, normally (the server's timeoutSeconds) or with a transient error (a
 *   broken connection, an idle timeout, a 5xx), is started again from the last seen
 *   resourceVersion: no relist;
 * - only 410 Gone/Expired (history compacted past our version), or no known version, relists,
 *   and a relist delivers the whole collection again through `onSync` (callers replace their
 *   cache);
 * - a failed list or watch start, an error-ended watch, and a watch that lasted less than
 *   `minWatchMs` (a server that closes at once) wait an exponential backoff with jitter
 *   (200 ms doubling to 30 s; back to 200 ms after a minute without failure) before the next
 *   try, and it never gives up: a watch closed a hundred times in a row costs a hundred cheap
 *   re-watches at a bounded rate, not a hundred lists;
 * - every error goes to `onError` and is counted in `stats()`.
 *
 * `start()` resolves after the first successful list (retrying meanwhile); `start({ wait:
 * false })` returns at once and `synced()` / `hasSynced()` tell when it has. `stop()` cancels
 * the backoff timer and the watch (its socket); nothing is left behind.
 *
 * Why not client-node's ListWatch/makeInformer: see docs/decisions.md, "Watches: our
 * reflector, not client-node's informer".
 */
import { systemClock, type Clock } from './clock.js';
import type { KubeApi, KubeObject, ListOptions, Resource, WatchEventType } from './client.js';
import { systemTimers, type Timers } from './queue.js';

export interface ReflectorHandlers {
  /** The whole collection, after every (re)list. */
  onSync: (items: KubeObject[]) => void;
  /** One change seen by the watch. */
  onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject) => void;
  /** Every error: failed lists and watch starts, watches ended by an error, handlers that threw. */
  onError?: (e: unknown) => void;
}

export interface BackoffOptions {
  /** First delay (default 200 ms). */
  initialMs?: number;
  /** Cap (default 30 s). */
  maxMs?: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Each delay is drawn from [(1 - jitter) * d, d] (default 0.5). */
  jitter?: number;
  /** A failure this long after the previous one starts again from initialMs (default 60 s). */
  resetAfterMs?: number;
}

/** Exponential backoff with jitter that resets after a healthy period (client-go's backoff manager). */
export class Backoff {
  private current: number;
  private lastFailure: number | undefined;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly resetAfterMs: number;

  constructor(
    options: BackoffOptions = {},
    private readonly clock: Clock = systemClock,
    private readonly random: () => number = Math.random,
  ) {
    this.initialMs = options.initialMs ?? 200;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
    this.resetAfterMs = options.resetAfterMs ?? 60_000;
    this.current = this.initialMs;
  }

  /** The delay to wait after one more failure. */
  next(): number {
    const now = this.clock.monotonic();
    if (this.lastFailure !== undefined && now - this.lastFailure >= this.resetAfterMs) this.current = this.initialMs;
    this.lastFailure = now;
    const base = Math.min(this.maxMs, this.current);
    this.current = Math.min(this.maxMs, this.current * this.factor);
    return base * (1 - this.jitter * this.random());
  }

  reset(): void {
    this.current = this.initialMs;
    this.lastFailure = undefined;
  }
}

export interface ReflectorOptions {
  backoff?: BackoffOptions;
  /** A watch that ends sooner than this, for whatever reason, is followed by a backoff (default 1000 ms). */
  minWatchMs?: number;
  /** Server-side timeout of each watch (default: the client's, random 5-10 min). */
  watchTimeoutSeconds?: number;
  clock?: Clock;
  timers?: Timers;
  random?: () => number;
}

/** Counters, for metrics and tests. */
export interface ReflectorStats {
  /** Lists attempted (the first included). */
  lists: number;
  listErrors: number;
  /** Successful lists after the first. */
  relists: number;
  /** Watches started (accepted by the server). */
  watches: number;
  /** Watch starts that failed, and watches that ended with an error. */
  watchErrors: number;
  /** Watch events received, BOOKMARKs included. */
  events: number;
  /** Every error reported through onError (handler errors included). */
  errors: number;
  lastError: unknown;
  lastErrorAt: Date | undefined;
  synced: boolean;
  /** The last resourceVersion seen (list, event or BOOKMARK). */
  resourceVersion: string;
  /** Whether a watch is open now. */
  watching: boolean;
}

/** The rejection of `start()`/`synced()` when stop() came before the first list. */
export class ReflectorStoppedError extends Error {
  constructor(what: string) {
    super(`reflector for ${what} stopped before its first list`);
    this.name = 'ReflectorStoppedError';
  }
}

/** Whether the error says our resourceVersion is too old (410 Gone / Expired). */
function isGone(e: unknown): boolean {
  const x = e as { code?: unknown; statusCode?: unknown } | undefined;
  return x?.code === 410 || x?.statusCode === 410;
}

export class Reflector {
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly backoff: Backoff;
  private readonly minWatchMs: number;
  private running = false;
  private stopped = false;
  private resourceVersion = '';
  private needList = true;
  private isSynced = false;
  private readonly syncedPromise: Promise<void>;
  private resolveSynced: () => void = () => {};
  private rejectSynced: (e: unknown) => void = () => {};
  private sleeping: { handle: unknown; wake: () => void } | undefined;
  private stopWatch: (() => void) | undefined;
  private endWatch: (() => void) | undefined;
  private generation = 0;
  private readonly counters = { lists: 0, listErrors: 0, relists: 0, watches: 0, watchErrors: 0, events: 0, errors: 0 };
  private lastError: unknown;
  private lastErrorAt: Date | undefined;

  constructor(
    private readonly kube: KubeApi,
    private readonly resource: Resource,
    private readonly handlers: ReflectorHandlers,
    private readonly listOptions: ListOptions = {},
    private readonly options: ReflectorOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.backoff = new Backoff(options.backoff, this.clock, options.random);
    this.minWatchMs = options.minWatchMs ?? 1000;
    this.syncedPromise = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // Nobody may be waiting for it (start({ wait: false })): a stop is no unhandled rejection.
    this.syncedPromise.catch(() => {});
  }

  private get what(): string {
    const g = this.resource.group ? `.${this.resource.group}` : '';
    return `${this.resource.plural}${g}${this.listOptions.namespace ? ` in ${this.listOptions.namespace}` : ''}`;
  }

  /**
   * Starts listing and watching (once; later calls share it). Resolves after the first
   * successful list has been delivered, retrying failures meanwhile; with `wait: false`
   * resolves at once. Rejects with ReflectorStoppedError when stopped before that.
   */
  start(options: { wait?: boolean } = {}): Promise<void> {
    if (!this.running && !this.stopped) {
      this.running = true;
      this.loop().catch((e: unknown) => this.report(e));
    }
    return options.wait === false ? Promise.resolve() : this.syncedPromise;
  }

  /** Resolves after the first successful list (rejects when stopped before). */
  synced(): Promise<void> {
    return this.syncedPromise;
  }

  hasSynced(): boolean {
    return this.isSynced;
  }

  stats(): ReflectorStats {
    return {
      ...this.counters,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      synced: this.isSynced,
      resourceVersion: this.resourceVersion,
      watching: this.stopWatch !== undefined,
    };
  }

  /** Stops for good: cancels the backoff timer and the open watch. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.sleeping) {
      this.timers.clearTimeout(this.sleeping.handle);
      this.sleeping.wake();
      this.sleeping = undefined;
    }
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.endWatch?.();
    if (!this.isSynced) this.rejectSynced(new ReflectorStoppedError(this.what));
  }

  private report(e: unknown): void {
    this.counters.errors++;
    this.lastError = e;
    this.lastErrorAt = this.clock.now();
    try {
      this.handlers.onError?.(e);
    } catch {
      // the error handler's own failure has nowhere left to go
    }
  }

  /** Runs a handler; what it throws is reported, and the reflector carries on. */
  private deliver(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.report(e);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) {
        resolve();
        return;
      }
      const handle = this.timers.setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, ms);
      this.sleeping = { handle, wake: resolve };
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.needList || this.resourceVersion === '') {
        let list: { items: KubeObject[]; resourceVersion: string };
        this.counters.lists++;
        try {
          list = await this.kube.list(this.resource, this.listOptions);
        } catch (e) {
          if (this.stopped) return;
          this.counters.listErrors++;
          this.report(e);
          await this.sleep(this.backoff.next());
          continue;
        }
        if (this.stopped) return;
        this.resourceVersion = list.resourceVersion;
        this.needList = false;
        if (this.isSynced) this.counters.relists++;
        this.deliver(() => this.handlers.onSync(list.items));
        if (!this.isSynced) {
          this.isSynced = true;
          this.resolveSynced();
        }
      }
      const outcome = await this.watchOnce();
      if (this.stopped) return;
      if (outcome.error !== undefined) {
        this.counters.watchErrors++;
        this.report(outcome.error);
        if (isGone(outcome.error)) this.needList = true;
      }
      if (outcome.error !== undefined || outcome.ms < this.minWatchMs) await this.sleep(this.backoff.next());
    }
  }

  /** One watch from the last seen resourceVersion, until it ends (or fails to start, or stop()). */
  private watchOnce(): Promise<{ error?: unknown; ms: number }> {
    const generation = ++this.generation;
    const startedAt = this.clock.monotonic();
    return new Promise((resolve) => {
      let settled = false;
      const settle = (error: unknown) => {
        if (settled) return;
        settled = true;
        if (this.generation === generation) {
          this.stopWatch = undefined;
          this.endWatch = undefined;
        }
        resolve({ ...(error === undefined || error === null ? {} : { error }), ms: this.clock.monotonic() - startedAt });
      };
      this.endWatch = () => settle(undefined);
      const onEvent = (type: WatchEventType, obj: KubeObject) => {
        if (settled || this.stopped || this.generation !== generation) return;
        this.counters.events++;
        const rv = obj?.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type !== 'BOOKMARK') this.deliver(() => this.handlers.onEvent(type, obj));
      };
      const options = {
        ...this.listOptions,
        resourceVersion: this.resourceVersion,
        ...(this.options.watchTimeoutSeconds !== undefined ? { timeoutSeconds: this.options.watchTimeoutSeconds } : {}),
      };
      let watch: Promise<() => void>;
      try {
        watch = this.kube.watch(this.resource, options, onEvent, (e) => settle(e ?? undefined));
      } catch (e) {
        watch = Promise.reject(e);
      }
      watch.then(
        (stop) => {
          this.counters.watches++;
          // Ended (or stopped) before it was even handed over: close it now.
          if (settled || this.stopped) stop();
          else this.stopWatch = stop;
        },
        (e: unknown) => settle(e ?? new Error(`watch of ${this.what} failed to start`)),
      );
    });
  }
}
