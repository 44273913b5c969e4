/**
 * Test helpers for the Kubernetes plumbing:
 *
 * - `FaultyKube`: a KubeApi that delegates to a real one (a ClientKube bound to the API server
 *   double) and fails, hangs or delays the next N calls of a verb (and resource), and ends open
 *   watches on demand, with or without an error (e.g. a 410 KubeError);
 * - `FakeClock`: a Clock that is also the Timers of kube/queue.ts and kube/reflector.ts, moved
 *   by `advance(ms)`.
 */
import type { Clock } from './clock.js';
import {
  KubeError,
  type CallOptions,
  type KubeApi,
  type KubeObject,
  type ListOptions,
  type Resource,
  type WatchEventType,
  type WatchOptions,
  type WriteOptions,
} from './client.js';
import type { Timers } from './queue.js';

export type Verb = 'get' | 'list' | 'create' | 'replace' | 'patch' | 'delete' | 'watch';

/** What an injected fault does to a call. */
export type Fault =
  /** Rejects with a KubeError (reason defaults to the usual one for the code). */
  | { status: number; reason?: string; message?: string }
  /** Never answers, until releaseHung() (then fails or goes on). */
  | { hang: true }
  /** Answers (from the real API) after a delay. */
  | { delayMs: number }
  /** Rejects with this error (e.g. an ECONNRESET-like Error). */
  | { error: unknown };

export interface FaultSpec {
  verb: Verb;
  /** Resource plural; any resource when left out. */
  resource?: string;
  /** How many calls it hits (default 1; Infinity for all until clear()). */
  count?: number;
  fault: Fault;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** A KubeError as the API server would send it for this code. */
export function kubeError(code: number, reason?: string, message?: string): KubeError {
  return new KubeError(code, reason ?? REASONS[code] ?? 'Unknown', message ?? `injected HTTP ${code}`);
}

interface OpenWatch {
  resource: string;
  stop: () => void;
  onEnd: (error?: unknown) => void;
}

export class FaultyKube implements KubeApi {
  private faults: (FaultSpec & { left: number })[] = [];
  private readonly hung = new Set<(e: unknown) => void>();
  private readonly watches = new Set<OpenWatch>();
  /** Calls made, by `verb` and by `verb:plural`. */
  readonly calls = new Map<string, number>();

  constructor(readonly inner: KubeApi) {}

  /** Makes the next `count` calls of `verb` (on `resource`) fail, hang or wait. */
  inject(spec: FaultSpec): void {
    this.faults.push({ ...spec, left: spec.count ?? 1 });
  }

  /** Removes the faults not used up yet. */
  clear(): void {
    this.faults = [];
  }

  /** How many calls of `verb` (on `resource`) were made. */
  count(verb: Verb, resource?: string): number {
    return this.calls.get(resource === undefined ? verb : `${verb}:${resource}`) ?? 0;
  }

  /** Calls hanging now. */
  get hanging(): number {
    return this.hung.size;
  }

  /**
   * Ends every hanging call: with an error it rejects with it (a KubeTimeoutError is what the
   * client's deadline would give); without, the calls go on to the real API.
   */
  releaseHung(error?: unknown): void {
    for (const release of [...this.hung]) release(error);
    this.hung.clear();
  }

  /** Open watches (on `resource`). */
  openWatches(resource?: string): number {
    return [...this.watches].filter((w) => resource === undefined || w.resource === resource).length;
  }

  /**
   * Ends the open watches (on `resource`) as a server or a network would: the stream is
   * closed and the watcher's onEnd gets `error` (none: a normal end). Returns how many.
   */
  endWatches(options: { resource?: string; error?: unknown } = {}): number {
    const ending = [...this.watches].filter((w) => options.resource === undefined || w.resource === options.resource);
    for (const w of ending) {
      this.watches.delete(w);
      w.stop();
      w.onEnd(options.error);
    }
    return ending.length;
  }

  private async faulted<T>(verb: Verb, r: Resource, call: () => Promise<T>): Promise<T> {
    for (const key of [verb, `${verb}:${r.plural}`]) this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    const spec = this.faults.find((f) => f.verb === verb && (f.resource === undefined || f.resource === r.plural) && f.left > 0);
    if (spec) {
      spec.left--;
      this.faults = this.faults.filter((f) => f.left > 0);
      const fault = spec.fault;
      if ('status' in fault) throw kubeError(fault.status, fault.reason, fault.message);
      if ('error' in fault) throw fault.error;
      if ('hang' in fault) {
        await new Promise<void>((resolve, reject) => {
          const release = (e: unknown) => {
            this.hung.delete(release);
            if (e === undefined) resolve();
            else reject(e);
          };
          this.hung.add(release);
        });
      }
      if ('delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs));
    }
    return call();
  }

  get(r: Resource, name: string, namespace?: string, options?: CallOptions): Promise<KubeObject | undefined> {
    return this.faulted('get', r, () => this.inner.get(r, name, namespace, options));
  }

  list(r: Resource, options?: ListOptions & CallOptions): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    return this.faulted('list', r, () => this.inner.list(r, options));
  }

  create(r: Resource, obj: KubeObject, options?: WriteOptions & CallOptions): Promise<KubeObject> {
    return this.faulted('create', r, () => this.inner.create(r, obj, options));
  }

  replace(r: Resource, obj: KubeObject, options?: WriteOptions & CallOptions): Promise<KubeObject> {
    return this.faulted('replace', r, () => this.inner.replace(r, obj, options));
  }

  patch(r: Resource, name: string, namespace: string | undefined, patch: unknown, options?: WriteOptions & CallOptions & { json?: boolean }): Promise<KubeObject> {
    return this.faulted('patch', r, () => this.inner.patch(r, name, namespace, patch, options));
  }

  delete(r: Resource, name: string, namespace?: string, preconditions?: { uid?: string; resourceVersion?: string }, options?: CallOptions): Promise<boolean> {
    return this.faulted('delete', r, () => this.inner.delete(r, name, namespace, preconditions, options));
  }

  watch(r: Resource, options: WatchOptions, onEvent: (type: WatchEventType, obj: KubeObject) => void, onEnd: (error?: unknown) => void): Promise<() => void> {
    return this.faulted('watch', r, async () => {
      // The stream may end before inner.watch() has resolved: remember that, report it after.
      const state: { open?: OpenWatch; early?: { e?: unknown } } = {};
      const ended = (e?: unknown) => {
        if (!state.open) state.early ??= { e };
        else if (this.watches.delete(state.open)) onEnd(e);
      };
      const stop = await this.inner.watch(r, options, onEvent, ended);
      if (state.early) {
        onEnd(state.early.e);
        return stop;
      }
      const mine: OpenWatch = { resource: r.plural, stop, onEnd };
      state.open = mine;
      this.watches.add(mine);
      return () => {
        this.watches.delete(mine);
        stop();
      };
    });
  }
}

/**
 * A Clock and Timers that move only when told: `advance(ms)` runs the timers that fall due, in
 * order, letting promises settle after each (so async work a timer starts can schedule more).
 */
export class FakeClock implements Clock, Timers {
  private ms: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = new Date('2026-01-01T00:00:00Z')) {
    this.ms = start.getTime();
  }

  now(): Date {
    return new Date(this.ms);
  }

  monotonic(): number {
    return this.ms;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.ms + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Timers not fired nor cleared yet. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing what falls due. */
  async advance(ms: number): Promise<void> {
    const until = this.ms + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= until && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.ms = Math.max(this.ms, next[1].at);
      next[1].fn();
      await settle();
    }
    this.ms = until;
    await settle();
  }
}

/** Lets pending promise callbacks (and I/O callbacks already due) run. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
