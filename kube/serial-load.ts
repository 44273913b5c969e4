/**
 * Loads that never overlap, coalesce, and retry: a change during a load makes one more load
 * after it (an older read can never land after a newer one), and a load that fails is tried
 * again with backoff. What the configuration followers of the controller and the agent share.
 */
import { systemTimers, type Timers } from './queue.js';
import { Backoff } from './reflector.js';

export interface SerialLoadOptions {
  load: () => Promise<void>;
  /** A load threw: report it (what was loaded before stays). It is tried again after a backoff. */
  failed: (e: unknown) => void | Promise<void>;
  /** How long `request()` waits for further changes to come together (default 50 ms). */
  debounceMs?: number;
  timers?: Timers;
}

export class SerialLoad {
  private loading: Promise<void> | undefined;
  private dirty = false;
  private timer: unknown;
  private stopped = false;
  /** Between loads that failed: exponential from 200 ms to 30 s, with jitter. */
  private readonly backoff = new Backoff();
  private readonly timers: Timers;

  constructor(private readonly options: SerialLoadOptions) {
    this.timers = options.timers ?? systemTimers;
  }

  /** Loads soon (coalescing changes that come together). */
  request(delayMs = this.options.debounceMs ?? 50): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.loading || this.timer !== undefined) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, delayMs);
  }

  /** Runs loads until no change is pending. */
  reload(): Promise<void> {
    if (this.loading) {
      this.dirty = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.dirty = false;
        try {
          await this.options.load();
          this.backoff.reset();
        } catch (e) {
          await this.options.failed(e);
          const delay = this.backoff.next();
          if (!this.stopped) {
            this.timer = this.timers.setTimeout(() => {
              this.timer = undefined;
              this.request(0);
            }, delay);
          }
          break;
        }
      } while (this.dirty && !this.stopped);
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** No more loads; resolves when the one running (if any) ends. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    return this.loading ?? Promise.resolve();
  }
}
