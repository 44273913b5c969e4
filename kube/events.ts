/**
 * Writes core/v1 Events about objects, as client-go's event recorder with its correlator's
 * deduplication: the first (object, type, reason, message) creates an Event; the same again
 * within `windowMs` of its last occurrence patches that Event's `count` and `lastTimestamp`
 * instead of creating another. What it remembers is an LRU of at most `maxEntries` (default
 * 4096) events, so memory is bounded however many objects come and go. An Event deleted
 * meanwhile (the API server's 1 h TTL) is created again. Recording never throws: failures are
 * logged, and the caller's work goes on.
 */
import { systemClock, type Clock } from './clock.js';
import { isKubeError, RESOURCES, type KubeApi, type KubeObject } from './client.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  /** `source.component` (default metallb-controller). */
  component?: string;
  /** `reportingComponent` (default metallb.io/controller). */
  reportingComponent?: string;
  /** `reportingInstance` (default: the component). */
  instance?: string;
  /** Namespace of events about cluster-scoped objects (default "default", as Kubernetes). */
  namespace?: string;
  clock?: Clock;
  log?: (line: string) => void;
  /** Events remembered for deduplication (default 4096). */
  maxEntries?: number;
  /** An identical event later than this after the previous one starts a new Event (default 10 min). */
  windowMs?: number;
}

interface Entry {
  name: string;
  namespace: string;
  count: number;
  /** clock.monotonic() of the last occurrence. */
  last: number;
}

/** RFC 3339 to the second, as the Event's Time fields. */
function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class EventRecorder {
  /** key -> the Event written for it; Map order is recency (oldest first). */
  private readonly cache = new Map<string, Entry>();
  /** key -> the tail of its chain of writes (identical events are written one after another). */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly clock: Clock;
  private readonly maxEntries: number;
  private readonly windowMs: number;
  private readonly component: string;

  constructor(
    private readonly kube: KubeApi,
    private readonly options: EventRecorderOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.maxEntries = Math.max(1, options.maxEntries ?? 4096);
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.component = options.component ?? 'metallb-controller';
  }

  /** Events remembered now. */
  get size(): number {
    return this.cache.size;
  }

  /** Records an event about `about`; resolves once written (or given up on). Never rejects. */
  event(about: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const md = about?.metadata ?? {};
    const ns = md.namespace ?? this.options.namespace ?? 'default';
    const who = md.uid ?? `${about?.apiVersion ?? ''}/${about?.kind ?? ''}/${ns}/${md.name ?? ''}`;
    const key = JSON.stringify([who, type, reason, message]);
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.write(key, ns, about, md, type, reason, message))
      .catch((e: unknown) => this.log(`event ${reason} on ${ns}/${md.name ?? ''}: ${String(e)}`));
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  /** Resolves when every event recorded so far has been written (or given up on). */
  async flush(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  private log(line: string): void {
    try {
      this.options.log?.(line);
    } catch {
      // nowhere left to report
    }
  }

  private remember(key: string, entry: Entry): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    while (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cache.delete(oldest.value);
    }
  }

  private async write(key: string, ns: string, about: KubeObject, md: KubeObject['metadata'], type: EventType, reason: string, message: string): Promise<void> {
    const now = this.clock.monotonic();
    const at = timestamp(this.clock.now());
    const seen = this.cache.get(key);
    if (seen && now - seen.last <= this.windowMs) {
      try {
        await this.kube.patch(RESOURCES.events, seen.name, seen.namespace, { count: seen.count + 1, lastTimestamp: at });
        this.remember(key, { ...seen, count: seen.count + 1, last: now });
        return;
      } catch (e) {
        // Gone (expired by its TTL, or deleted): write a new one. Anything else: report, and
        // keep the entry, so the next occurrence tries the patch again.
        if (!isKubeError(e, 404)) throw e;
        this.cache.delete(key);
      }
    }
    const created = await this.kube.create(RESOURCES.events, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${md.name ?? 'metallb'}.`, namespace: ns },
      involvedObject: {
        apiVersion: about.apiVersion ?? 'v1',
        kind: about.kind ?? 'Service',
        namespace: ns,
        name: md.name,
        ...(md.uid ? { uid: md.uid } : {}),
      },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: at,
      lastTimestamp: at,
      source: { component: this.component },
      reportingComponent: this.options.reportingComponent ?? 'metallb.io/controller',
      reportingInstance: this.options.instance ?? this.component,
    });
    if (created.metadata.name) this.remember(key, { name: created.metadata.name, namespace: ns, count: 1, last: now });
  }
}
