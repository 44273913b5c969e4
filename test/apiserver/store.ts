/**
 * The in-memory object store: the double's etcd. Objects are JSON, keyed per storage resource
 * by `namespace/name`; every write takes the next value of one global revision counter, which
 * becomes the object's `metadata.resourceVersion`, as etcd's revision does in a cluster.
 *
 * A bounded history of changes backs watches from a past resourceVersion, consistent
 * paginated lists (a `continue` token reads the state as of the first page) and `410 Gone`
 * when a client asks for something older than the history reaches.
 */
import { expired } from './errors.js';
import { clone, type KubeObject } from './object.js';

/** The kind of a change, as watch events name it. */
export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One committed write. */
export interface Change {
  type: ChangeType;
  /** The storage resource, e.g. `services` or `leases.coordination.k8s.io`. */
  resource: string;
  /** The revision of this write. */
  rv: number;
  /** The object after the write; for DELETED, its last state stamped with the deletion's revision. */
  object: KubeObject;
  /** The object before the write (MODIFIED, DELETED). */
  oldObject?: KubeObject;
}

/** Why a conditional write did not happen. */
export type WriteFailure = 'exists' | 'missing' | 'conflict';

/** Result of a conditional write. */
export type WriteResult = { ok: true; object: KubeObject } | { ok: false; why: WriteFailure };

/** Options of the store. */
export interface StoreOptions {
  /** How many changes to keep for watch replay and consistent lists (default 10,000). */
  historyLimit?: number;
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** Sorts like etcd's key order: by namespace, then name. */
function byKey(a: [string, KubeObject], b: [string, KubeObject]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** The double's etcd; see the file comment. */
export class ObjectStore {
  private revision = 1;
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private history: Change[] = [];
  /** Revisions up to this one may not be asked for any more (set by compaction). */
  private compactedThrough = 0;
  private readonly listeners = new Set<(c: Change) => void>();
  private readonly compactionListeners = new Set<() => void>();
  private readonly historyLimit: number;

  constructor(options: StoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? 10_000;
  }

  /** The latest revision: what a list returns as its resourceVersion. */
  get resourceVersion(): number {
    return this.revision;
  }

  /** The oldest revision whose state can still be reconstructed and watched from. */
  get oldestRevision(): number {
    const first = this.history[0];
    const fromHistory = first ? first.rv - 1 : this.revision;
    return Math.max(this.compactedThrough, fromHistory);
  }

  private table(resource: string): Map<string, KubeObject> {
    let t = this.data.get(resource);
    if (!t) {
      t = new Map();
      this.data.set(resource, t);
    }
    return t;
  }

  /** A copy of the object, or undefined. */
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.data.get(resource)?.get(keyOf(namespace, name));
    return o && clone(o);
  }

  /**
   * The current objects themselves, in no order, for read-only scans (e.g. which ClusterIPs are
   * taken) that would otherwise copy every object on every write. Never mutate what it yields.
   */
  *peek(resource: string): Iterable<Readonly<KubeObject>> {
    yield* this.data.get(resource)?.values() ?? [];
  }

  /** Copies of the current objects, in key order, optionally within one namespace. */
  list(resource: string, namespace?: string): KubeObject[] {
    return this.listShared(resource, namespace).map((o) => clone(o));
  }

  /**
   * The current objects themselves, in key order, optionally within one namespace: for a LIST
   * the server serializes at once, as kube-apiserver serves lists from its watch cache without
   * copying them (a copy of 1,000 Services took about 10 ms). Writes replace stored objects,
   * never change them, so what this returns stays as it was; never mutate it.
   */
  listShared(resource: string, namespace?: string): KubeObject[] {
    const t = this.data.get(resource);
    if (!t) return [];
    return [...t.entries()]
      .filter(([, o]) => namespace === undefined || (o.metadata.namespace ?? '') === namespace)
      .sort(byKey)
      .map(([, o]) => o);
  }

  /** Every storage resource that holds at least one object. */
  resources(): string[] {
    return [...this.data.entries()].filter(([, t]) => t.size > 0).map(([r]) => r);
  }

  /**
   * The objects as they were at revision `rv`, rebuilt by undoing later changes; 410 Expired
   * when the history no longer reaches that far back.
   */
  listAt(resource: string, namespace: string | undefined, rv: number): KubeObject[] {
    if (rv >= this.revision) return this.list(resource, namespace);
    if (rv < this.oldestRevision) {
      throw expired(`too old resource version: ${rv} (${this.oldestRevision})`);
    }
    const state = new Map(this.data.get(resource) ?? []);
    for (let i = this.history.length - 1; i >= 0; i--) {
      const c = this.history[i] as Change;
      if (c.rv <= rv) break;
      if (c.resource !== resource) continue;
      const key = keyOf(c.object.metadata.namespace, c.object.metadata.name ?? '');
      if (c.type === 'ADDED') state.delete(key);
      else if (c.oldObject) state.set(key, c.oldObject);
    }
    return [...state.entries()]
      .filter(([, o]) => namespace === undefined || (o.metadata.namespace ?? '') === namespace)
      .sort(byKey)
      .map(([, o]) => clone(o));
  }

  /** The changes after revision `rv`, oldest first, or 'gone' when the history does not reach. */
  changesSince(rv: number): Change[] | 'gone' {
    if (rv < this.oldestRevision) return 'gone';
    const start = this.history.findIndex((c) => c.rv > rv);
    return start < 0 ? [] : this.history.slice(start);
  }

  /** Stores a new object; fails with 'exists' when the key is taken. */
  create(resource: string, obj: KubeObject): WriteResult {
    const t = this.table(resource);
    const key = keyOf(obj.metadata.namespace, obj.metadata.name ?? '');
    if (t.has(key)) return { ok: false, why: 'exists' };
    const stored = this.stamp(obj);
    t.set(key, stored);
    this.commit({ type: 'ADDED', resource, rv: this.revision, object: stored });
    return { ok: true, object: clone(stored) };
  }

  /**
   * Replaces an object if its stored resourceVersion is `expectedRv` (compare-and-swap, as the
   * apiserver's GuaranteedUpdate does against etcd).
   */
  update(resource: string, obj: KubeObject, expectedRv: string): WriteResult {
    const t = this.table(resource);
    const key = keyOf(obj.metadata.namespace, obj.metadata.name ?? '');
    const old = t.get(key);
    if (!old) return { ok: false, why: 'missing' };
    if (old.metadata.resourceVersion !== expectedRv) return { ok: false, why: 'conflict' };
    const stored = this.stamp(obj);
    t.set(key, stored);
    this.commit({ type: 'MODIFIED', resource, rv: this.revision, object: stored, oldObject: old });
    return { ok: true, object: clone(stored) };
  }

  /** Removes an object (optionally only at `expectedRv`); returns its last state. */
  remove(resource: string, namespace: string | undefined, name: string, expectedRv?: string): WriteResult {
    const t = this.table(resource);
    const key = keyOf(namespace, name);
    const old = t.get(key);
    if (!old) return { ok: false, why: 'missing' };
    if (expectedRv !== undefined && old.metadata.resourceVersion !== expectedRv) return { ok: false, why: 'conflict' };
    t.delete(key);
    // A DELETED event carries the object's last state at the deletion's revision, as etcd3 watch does.
    const last = this.stamp(old);
    this.commit({ type: 'DELETED', resource, rv: this.revision, object: last, oldObject: old });
    return { ok: true, object: clone(last) };
  }

  /** Calls `listener` synchronously after every committed write; returns an unsubscribe. */
  subscribe(listener: (c: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` when compaction invalidates older revisions; returns an unsubscribe. */
  onCompaction(listener: () => void): () => void {
    this.compactionListeners.add(listener);
    return () => this.compactionListeners.delete(listener);
  }

  /**
   * Forgets the history: every revision before the current one becomes too old, as after an
   * etcd compaction. Open watches are told through onCompaction listeners (and end with 410),
   * unless `endWatches` is false: kube-apiserver's watch cache keeps its open watches going
   * through a compaction.
   */
  compact(options: { endWatches?: boolean } = {}): void {
    this.compactedThrough = this.revision;
    this.history = [];
    if (options.endWatches === false) return;
    for (const l of [...this.compactionListeners]) l();
  }

  private stamp(obj: KubeObject): KubeObject {
    this.revision++;
    const stored = clone(obj);
    stored.metadata.resourceVersion = String(this.revision);
    return stored;
  }

  private commit(change: Change): void {
    this.history.push(change);
    if (this.history.length > this.historyLimit) this.history.splice(0, this.history.length - this.historyLimit);
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch {
        // A failing listener (a closed watch stream) must not undo or block a committed write.
      }
    }
  }
}
