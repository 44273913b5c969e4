/**
 * Namespace labels (serviceAllocation.namespaceSelectors), kept from a watch on namespaces, so
 * that neither an admission call nor a reconcile costs an API round trip to read them. One
 * instance per process, shared by the Service admission handlers and the reconcile loop.
 *
 * A namespace the watch has not delivered yet (created a moment ago) is read with one GET
 * (concurrent reads of it share that GET); the answer is kept unless the watch has meanwhile
 * delivered something as new or newer. Until the first list has landed (or while it keeps
 * failing) nothing read by GET is kept: every read goes to the API server, so labels are never
 * served from a cache that nothing keeps up to date.
 */
import { olderThan, Reflector, RESOURCES, type KubeApi, type KubeObject } from '../kube/client.js';

/** What the admission handlers need: a namespace's labels. */
export interface NamespaceLabelReader {
  labels(namespace: string): Promise<Record<string, string>>;
}

interface Entry {
  labels: Record<string, string>;
  resourceVersion?: string;
}

function sameLabels(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

function entryOf(n: KubeObject): Entry {
  return { labels: n.metadata.labels ?? {}, ...(n.metadata.resourceVersion ? { resourceVersion: n.metadata.resourceVersion } : {}) };
}

export class NamespaceLabels implements NamespaceLabelReader {
  private readonly cache = new Map<string, Entry>();
  private readonly reading = new Map<string, Promise<Record<string, string>>>();
  private readonly listeners: ((namespace: string | undefined) => void)[] = [];
  private readonly reflector: Reflector;
  private synced = false;
  private stopped = false;
  private starting: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly kube: KubeApi,
    private readonly options: { log?: (line: string) => void; retryMs?: number } = {},
  ) {
    this.reflector = new Reflector(kube, RESOURCES.namespaces, {
      onSync: (items) => {
        this.cache.clear();
        for (const n of items) this.cache.set(n.metadata.name ?? '', entryOf(n));
        this.synced = true;
        this.emit(undefined);
      },
      onEvent: (type, n) => {
        const name = n.metadata.name ?? '';
        const before = this.cache.get(name);
        if (type === 'DELETED') {
          this.cache.delete(name);
        } else {
          // A GET may have been answered with a newer version than the watch has reached.
          if (before && olderThan(n.metadata.resourceVersion, before.resourceVersion)) return;
          this.cache.set(name, entryOf(n));
        }
        if (!sameLabels(before?.labels, this.cache.get(name)?.labels)) this.emit(name);
      },
      onError: (e) => this.log(`namespaces watch: ${String(e)}`),
    });
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  /**
   * Lists and starts watching; resolves once the first list has landed, or (when it failed) at
   * once, with retries in the background. Idempotent: a second call shares the first.
   */
  start(): Promise<void> {
    this.starting ??= this.attempt();
    return this.starting;
  }

  private async attempt(): Promise<void> {
    try {
      await this.reflector.start();
    } catch (e) {
      if (this.stopped) return;
      this.log(`watching namespaces: ${String(e)}; retrying`);
      this.retry = setTimeout(() => void this.attempt(), this.options.retryMs ?? 1000);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.reflector.stop();
  }

  /** Called with a namespace whose labels changed, or undefined when all may have (a relist). */
  onChange(listener: (namespace: string | undefined) => void): void {
    this.listeners.push(listener);
  }

  private emit(namespace: string | undefined): void {
    for (const l of this.listeners) l(namespace);
  }

  /** The namespace's labels: from the watch, else one GET ({} for a namespace that does not exist). */
  labels(namespace: string): Promise<Record<string, string>> {
    const cached = this.cache.get(namespace);
    if (cached) return Promise.resolve(cached.labels);
    let read = this.reading.get(namespace);
    if (!read) {
      read = this.read(namespace).finally(() => this.reading.delete(namespace));
      this.reading.set(namespace, read);
    }
    return read;
  }

  private async read(namespace: string): Promise<Record<string, string>> {
    const n = await this.kube.get(RESOURCES.namespaces, namespace);
    if (!n) return {};
    const entry = entryOf(n);
    const now = this.cache.get(namespace);
    if (now && !olderThan(now.resourceVersion, entry.resourceVersion)) return now.labels; // the watch got there first
    if (this.synced && !this.stopped) this.cache.set(namespace, entry);
    return entry.labels;
  }
}
