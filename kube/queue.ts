/**
 * A per-key rate-limited work queue, as client-go's `workqueue.RateLimitingInterface`:
 *
 * - `add(key)` is deduplicated: a key waits in the queue at most once; a key added while a
 *   worker processes it is queued again when that worker is done, so no key is ever processed
 *   by two workers at once and no change is missed;
 * - `addAfter(key, ms)` adds it later (the earliest of several pending delays wins);
 * - `addRateLimited(key)` adds it after the key's own exponential backoff (5 ms doubling to
 *   5 min, as client-go's ItemExponentialFailureRateLimiter); `forget(key)` resets it after a
 *   success and `numRequeues(key)` reads it;
 * - `run(concurrency, handler)` starts workers: a handler that resolves forgets the key's
 *   failures, one that rejects re-adds it rate-limited;
 * - `shutDown()` refuses new keys, drops the queued ones (or, with `drain`, lets workers finish
 *   them), cancels delayed ones and resolves when the work in flight has ended.
 *
 * Pure apart from timers: time comes from the Clock and timers from the Timers passed in, so
 * tests drive both (kube/testing.ts has a FakeClock that is both). Nothing is kept per key once
 * the key is neither queued, processed, delayed nor failing: `forget` prunes the backoff.
 */
import { systemClock, type Clock } from './clock.js';

/** Timers, passed in so that tests may drive them (FakeClock in kube/testing.ts). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** How long a key waits before it is retried. */
export interface RateLimiter<K> {
  /** The delay before the next try of `key` (and counts one more failure). */
  when(key: K): number;
  /** Forgets the key's failures. */
  forget(key: K): void;
  /** How many times the key failed since it was last forgotten. */
  numRequeues(key: K): number;
  /** How many keys it keeps state for. */
  readonly size: number;
}

/** base * 2^failures, capped, per key (client-go's ItemExponentialFailureRateLimiter). */
export class ItemExponentialFailureRateLimiter<K> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();

  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 300_000,
  ) {}

  when(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity long after it passes the cap; min() handles both.
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }

  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  get size(): number {
    return this.failures.size;
  }
}

export interface WorkQueueOptions<K> {
  clock?: Clock;
  timers?: Timers;
  /** Default: ItemExponentialFailureRateLimiter(5 ms, 5 min). */
  rateLimiter?: RateLimiter<K>;
  /** Called with each handler rejection (before the key is re-added rate-limited). */
  onError?: (key: K, error: unknown) => void;
}

/** What the queue holds now (for metrics and tests). */
export interface WorkQueueSizes {
  /** Waiting for a worker. */
  queued: number;
  /** With a worker. */
  processing: number;
  /** Waiting for a delay (addAfter, addRateLimited). */
  delayed: number;
  /** Keys with a failure count. */
  failing: number;
}

export class WorkQueue<K extends NonNullable<unknown> = string> {
  /** FIFO of keys ready for a worker (a Set keeps insertion order). */
  private readonly queue = new Set<K>();
  /** Keys that need processing: the queued ones, and processed ones added again meanwhile. */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly delayed = new Map<K, { at: number; handle: unknown }>();
  private readonly getters: ((key: K | undefined) => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private drainedWaiters: (() => void)[] = [];
  private shuttingDown = false;
  private draining = false;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly limiter: RateLimiter<K>;

  constructor(private readonly options: WorkQueueOptions<K> = {}) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.limiter = options.rateLimiter ?? new ItemExponentialFailureRateLimiter<K>();
  }

  /** Marks `key` for processing (no-op when it is already queued, or after shutDown). */
  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // queued again by done()
    this.queue.add(key);
    this.dispatch();
  }

  /** Adds `key` after `ms` (at once when ms <= 0); a key already delayed keeps the earlier time. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.monotonic() + ms;
    const pending = this.delayed.get(key);
    if (pending) {
      if (pending.at <= at) return;
      this.timers.clearTimeout(pending.handle);
    }
    const handle = this.timers.setTimeout(() => {
      if (this.delayed.get(key)?.handle !== handle) return;
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /** Adds `key` after its backoff, and counts one more failure of it. */
  addRateLimited(key: K): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets the key's backoff (after a success, or when giving up on it). */
  forget(key: K): void {
    this.limiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.limiter.numRequeues(key);
  }

  /** Keys waiting for a worker. */
  len(): number {
    return this.queue.size;
  }

  sizes(): WorkQueueSizes {
    return { queued: this.queue.size, processing: this.processing.size, delayed: this.delayed.size, failing: this.limiter.size };
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * The next key, marked as being processed (call `done(key)` after); waits for one.
   * Undefined once the queue shuts down (and, draining, once it is empty).
   */
  get(): Promise<K | undefined> {
    const key = this.pop();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Ends the processing of `key`; queues it again if it was added meanwhile. */
  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      if (this.shuttingDown && !this.draining) this.dirty.delete(key);
      else {
        this.queue.add(key);
        this.dispatch();
      }
    }
    if (this.shuttingDown) this.dispatch();
    this.checkIdle();
  }

  /**
   * Runs `concurrency` workers until shutDown: each takes a key, awaits `handler(key)`, then
   * forgets the key's failures (resolved) or re-adds it rate-limited (rejected). Resolves when
   * every worker has stopped.
   */
  async run(concurrency: number, handler: (key: K) => Promise<void>): Promise<void> {
    const worker = async () => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          await handler(key);
          this.forget(key);
        } catch (e) {
          try {
            this.options.onError?.(key, e);
          } catch {
            // a throwing error handler must not kill the worker
          }
          this.addRateLimited(key);
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  }

  /**
   * Refuses new keys and cancels delayed ones; queued keys are dropped, or with `drain`
   * processed first. Resolves when no key is being processed (and, draining, none is queued).
   */
  shutDown(options: { drain?: boolean } = {}): Promise<void> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      this.draining = options.drain ?? false;
      for (const { handle } of this.delayed.values()) this.timers.clearTimeout(handle);
      this.delayed.clear();
      if (!this.draining) {
        for (const k of this.queue) this.dirty.delete(k);
        this.queue.clear();
      }
      this.dispatch();
    }
    return new Promise((resolve) => {
      this.drainedWaiters.push(resolve);
      this.checkIdle();
    });
  }

  /** Resolves when nothing is queued or being processed (delayed keys do not count). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.checkIdle();
    });
  }

  private pop(): K | undefined {
    const next = this.queue.values().next();
    if (next.done) return undefined;
    const key = next.value;
    this.queue.delete(key);
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  /** Hands queued keys to waiting workers; after shutDown, releases the workers with nothing left. */
  private dispatch(): void {
    while (this.getters.length > 0) {
      const key = this.pop();
      if (key === undefined) break;
      this.getters.shift()?.(key);
    }
    if (this.shuttingDown && this.queue.size === 0) for (const g of this.getters.splice(0)) g(undefined);
  }

  private checkIdle(): void {
    if (this.queue.size > 0 || this.processing.size > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
    if (this.shuttingDown) for (const w of this.drainedWaiters.splice(0)) w();
  }
}
