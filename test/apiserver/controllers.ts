/**
 * The controllers a cluster runs that change what the API shows, reduced to what tests can
 * observe:
 * - CRDs: a new CRD is served at once and marked NamesAccepted/Established; deleting one
 *   deletes its objects, then the CRD.
 * - namespaces: deleting a namespace deletes everything in it, then the namespace.
 * - garbage collection: objects whose owners are all gone are deleted (background); dangling
 *   owner references beside a live owner are removed; the `orphan` and `foregroundDeletion`
 *   finalizers are honoured. As in Kubernetes, a cluster-scoped object cannot be owned by a
 *   namespaced one: such a reference never resolves, the dependent stays, and a Warning event
 *   `OwnerRefInvalidNamespace` says so.
 * Work runs in the background after the change that calls for it, like the real controllers;
 * `settle()` lets a test wait for it.
 */
import { randomUUID } from 'node:crypto';
import type { UserInfo } from './admission.js';
import { establishedStatus, isEstablished, typesFromCrd, CRD_CLEANUP_FINALIZER } from './crds.js';
import { ApiError } from './errors.js';
import { isObject, parseApiVersion, timestamp, type KubeObject, type OwnerReference } from './object.js';
import type { ResourceRegistry, ResourceType } from './resources.js';
import type { Rest } from './rest.js';
import type { Change, ObjectStore } from './store.js';

const CRDS = 'customresourcedefinitions.apiextensions.k8s.io';

/** The identity the controllers act as (admission webhooks see it). */
export const CONTROLLER_USER: UserInfo = {
  username: 'system:serviceaccount:kube-system:generic-garbage-collector',
  groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
};

/** Options of the controllers. */
export interface ControllerOptions {
  store: ObjectStore;
  registry: ResourceRegistry;
  rest: Rest;
  now?: () => Date;
}

/** See the file comment. */
export class Controllers {
  private readonly store: ObjectStore;
  private readonly registry: ResourceRegistry;
  private readonly rest: Rest;
  private readonly now: () => Date;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private stopped = false;
  private readonly warned = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  /**
   * The objects the garbage collector looks at: those with owner references or being deleted,
   * kept up to date from the change feed. A pass used to list every stored object, and ran after
   * every delete: moving 10,000 ServiceL2Status objects took minutes.
   */
  private readonly gcCandidates = new Map<string, { storage: string; namespace: string | undefined; name: string }>();

  constructor(options: ControllerOptions) {
    this.store = options.store;
    this.registry = options.registry;
    this.rest = options.rest;
    this.now = options.now ?? ((): Date => new Date());
  }

  /** Serves the CRDs already stored and starts reacting to changes. */
  start(): void {
    for (const crd of this.store.list(CRDS)) this.serveCrd(crd);
    for (const { type, obj } of this.everything()) this.track(type.storage, obj, false);
    this.unsubscribe = this.store.subscribe((c) => this.onChange(c));
    this.schedule(0);
  }

  /** Stops reacting; a pass in progress finishes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Resolves once no controller work is pending or running. */
  settle(): Promise<void> {
    if (!this.running && !this.timer) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onChange(c: Change): void {
    // Serving follows the CRD synchronously, so an object can be created right after its CRD.
    if (c.resource === CRDS) {
      if (c.type === 'DELETED') this.registry.removeCrd(c.object.metadata.name ?? '');
      else this.serveCrd(c.object);
    }
    this.track(c.resource, c.object, c.type === 'DELETED');
    const m = c.object.metadata;
    const relevant = c.type === 'DELETED' || c.resource === CRDS || c.resource === 'namespaces' || (m.ownerReferences?.length ?? 0) > 0 || m.deletionTimestamp !== undefined;
    if (relevant) this.schedule(0);
  }

  /** Keeps `gcCandidates` up to date with one object's latest state. */
  private track(storage: string, obj: KubeObject, deleted: boolean): void {
    const m = obj.metadata;
    const key = `${storage}/${m.namespace ?? ''}/${m.name ?? ''}`;
    if (!deleted && ((m.ownerReferences?.length ?? 0) > 0 || m.deletionTimestamp !== undefined))
      this.gcCandidates.set(key, { storage, namespace: m.namespace, name: m.name ?? '' });
    else this.gcCandidates.delete(key);
  }

  /** The objects with owner references or a deletion timestamp, as stored now, with their types. */
  private candidates(): { type: ResourceType; obj: KubeObject }[] {
    const types = new Map(this.registry.storageTypes().map((t) => [t.storage, t]));
    const out: { type: ResourceType; obj: KubeObject }[] = [];
    for (const c of this.gcCandidates.values()) {
      const type = types.get(c.storage);
      const obj = type && this.store.get(c.storage, c.namespace, c.name);
      if (type && obj) out.push({ type, obj });
    }
    return out;
  }

  private serveCrd(crd: KubeObject): void {
    this.registry.removeCrd(crd.metadata.name ?? '');
    for (const t of typesFromCrd(crd)) this.registry.add(t);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule(0);
        }
        if (!this.running && !this.timer) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }, delayMs);
  }

  private async pass(): Promise<void> {
    let failed = false;
    const attempt = async (work: () => Promise<void>): Promise<void> => {
      try {
        await work();
      } catch (e) {
        // A webhook may refuse a controller's delete; try again later, as controllers requeue.
        if (!(e instanceof ApiError)) throw e;
        failed = true;
      }
    };
    await attempt(() => this.crds());
    await attempt(() => this.namespaces());
    await attempt(() => this.garbage());
    if (failed && !this.stopped) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule(0);
      }, 500);
    }
  }

  private ctx(): Parameters<Rest['delete']>[4] {
    return { user: CONTROLLER_USER, dryRun: false, admission: true, warnings: [], fieldValidation: 'Ignore' };
  }

  /** Writes directly to storage, as the real controllers' status and finalizer updates do. */
  private removeFinalizer(storage: string, obj: KubeObject, finalizer: string): void {
    const finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    if (finalizers.length === 0 && obj.metadata.deletionTimestamp && !this.heldBySpec(obj, storage)) {
      this.store.remove(storage, obj.metadata.namespace, obj.metadata.name ?? '', obj.metadata.resourceVersion);
      return;
    }
    const next: KubeObject = { ...obj, metadata: { ...obj.metadata, finalizers } };
    if (finalizers.length === 0) delete next.metadata.finalizers;
    this.store.update(storage, next, obj.metadata.resourceVersion ?? '');
  }

  private heldBySpec(obj: KubeObject, storage: string): boolean {
    return storage === 'namespaces' && isObject(obj.spec) && Array.isArray(obj.spec.finalizers) && obj.spec.finalizers.length > 0;
  }

  private async crds(): Promise<void> {
    for (const crd of this.store.list(CRDS)) {
      const name = crd.metadata.name ?? '';
      if (!crd.metadata.deletionTimestamp) {
        if (!isEstablished(crd)) this.store.update(CRDS, { ...crd, status: establishedStatus(crd, timestamp(this.now())) }, crd.metadata.resourceVersion ?? '');
        continue;
      }
      if (!(crd.metadata.finalizers ?? []).includes(CRD_CLEANUP_FINALIZER)) continue;
      const storage = typesFromCrd(crd)[0]?.storage;
      const type = this.registry.storageTypes().find((t) => t.storage === storage);
      const remaining = storage ? this.store.list(storage) : [];
      if (type) {
        for (const o of remaining) if (!o.metadata.deletionTimestamp) await this.deleteQuietly(type, o);
      }
      if (!storage || this.store.list(storage).length === 0) {
        const latest = this.store.get(CRDS, undefined, name);
        if (latest) this.removeFinalizer(CRDS, latest, CRD_CLEANUP_FINALIZER);
      }
    }
  }

  private async deleteQuietly(type: ResourceType, o: KubeObject, propagationPolicy: 'Background' | 'Foreground' = 'Background'): Promise<void> {
    try {
      await this.rest.delete(type, o.metadata.namespace, o.metadata.name ?? '', { propagationPolicy }, this.ctx());
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
  }

  private async namespaces(): Promise<void> {
    for (const ns of this.store.list('namespaces')) {
      if (!ns.metadata.deletionTimestamp) continue;
      const name = ns.metadata.name ?? '';
      let left = 0;
      for (const t of this.registry.storageTypes().filter((x) => x.namespaced)) {
        for (const o of this.store.list(t.storage, name)) {
          left++;
          if (!o.metadata.deletionTimestamp) await this.deleteQuietly(t, o);
        }
      }
      if (left > 0) continue;
      const latest = this.store.get('namespaces', undefined, name);
      if (!latest) continue;
      const spec = isObject(latest.spec) ? latest.spec : {};
      const finalizers = Array.isArray(spec.finalizers) ? spec.finalizers.filter((f) => f !== 'kubernetes') : [];
      const next: KubeObject = { ...latest, spec: { ...spec, finalizers } };
      if ((latest.metadata.finalizers ?? []).length === 0 && finalizers.length === 0) {
        this.store.remove('namespaces', undefined, name, latest.metadata.resourceVersion);
      } else {
        this.store.update('namespaces', next, latest.metadata.resourceVersion ?? '');
      }
    }
  }

  /** Every stored object with its type. */
  private everything(): { type: ResourceType; obj: KubeObject }[] {
    const out: { type: ResourceType; obj: KubeObject }[] = [];
    for (const type of this.registry.storageTypes()) for (const obj of this.store.list(type.storage)) out.push({ type, obj });
    return out;
  }

  /** What an owner reference points at, from the dependent's point of view. */
  private owner(dependent: { type: ResourceType; obj: KubeObject }, ref: OwnerReference): 'alive' | 'gone' | 'deleting-foreground' | 'invalid' | 'unknown' {
    const ownerType = this.registry.byGroupKind(parseApiVersion(ref.apiVersion).group, ref.kind);
    if (!ownerType) return 'unknown';
    if (ownerType.namespaced && !dependent.type.namespaced) return 'invalid';
    const found = this.store.get(ownerType.storage, ownerType.namespaced ? dependent.obj.metadata.namespace : undefined, ref.name);
    if (!found || found.metadata.uid !== ref.uid) return 'gone';
    if (found.metadata.deletionTimestamp && (found.metadata.finalizers ?? []).includes('foregroundDeletion')) return 'deleting-foreground';
    return 'alive';
  }

  private async garbage(): Promise<void> {
    // Objects without owner references that are not being deleted play no part below.
    const all = this.candidates();
    for (const dep of all) {
      const refs = dep.obj.metadata.ownerReferences ?? [];
      if (refs.length === 0 || dep.obj.metadata.deletionTimestamp) continue;
      const states = refs.map((r) => ({ ref: r, state: this.owner(dep, r) }));
      for (const s of states.filter((x) => x.state === 'invalid')) this.warnInvalidOwner(dep, s.ref);
      const holding = states.filter((s) => s.state === 'alive' || s.state === 'invalid' || s.state === 'unknown');
      if (holding.length === 0) {
        const foreground = states.some((s) => s.state === 'deleting-foreground');
        await this.deleteQuietly(dep.type, dep.obj, foreground ? 'Foreground' : 'Background');
      } else if (holding.length < refs.length && !states.some((s) => s.state === 'deleting-foreground')) {
        const latest = this.store.get(dep.type.storage, dep.obj.metadata.namespace, dep.obj.metadata.name ?? '');
        if (!latest) continue;
        const keep = new Set(holding.map((s) => s.ref.uid));
        const next = { ...latest, metadata: { ...latest.metadata, ownerReferences: (latest.metadata.ownerReferences ?? []).filter((r) => keep.has(r.uid)) } };
        this.store.update(dep.type.storage, next, latest.metadata.resourceVersion ?? '');
      }
    }
    for (const owner of all) {
      const m = owner.obj.metadata;
      if (!m.deletionTimestamp) continue;
      const dependents = this.candidates().filter((d) => (d.obj.metadata.ownerReferences ?? []).some((r) => r.uid === m.uid));
      if ((m.finalizers ?? []).includes('orphan')) {
        for (const d of dependents) {
          const refs = (d.obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== m.uid);
          const next: KubeObject = { ...d.obj, metadata: { ...d.obj.metadata, ownerReferences: refs } };
          if (refs.length === 0) delete next.metadata.ownerReferences;
          this.store.update(d.type.storage, next, d.obj.metadata.resourceVersion ?? '');
        }
        const latest = this.store.get(owner.type.storage, m.namespace, m.name ?? '');
        if (latest) this.removeFinalizer(owner.type.storage, latest, 'orphan');
      } else if ((m.finalizers ?? []).includes('foregroundDeletion') && dependents.length === 0) {
        const latest = this.store.get(owner.type.storage, m.namespace, m.name ?? '');
        if (latest) this.removeFinalizer(owner.type.storage, latest, 'foregroundDeletion');
      }
    }
  }

  /** The garbage collector's event for an owner reference that can never resolve. */
  private warnInvalidOwner(dep: { type: ResourceType; obj: KubeObject }, ref: OwnerReference): void {
    const key = `${dep.obj.metadata.uid ?? ''}/${ref.uid}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    const now = timestamp(this.now());
    const namespace = dep.obj.metadata.namespace ?? 'default';
    const apiVersion = dep.type.group ? `${dep.type.group}/${dep.type.version}` : dep.type.version;
    this.store.create('events', {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${dep.obj.metadata.name ?? ''}.${Date.now().toString(16)}`, namespace, uid: randomUUID(), creationTimestamp: now },
      involvedObject: { apiVersion, kind: dep.type.kind, name: dep.obj.metadata.name, uid: dep.obj.metadata.uid, ...(dep.obj.metadata.namespace ? { namespace } : {}) },
      reason: 'OwnerRefInvalidNamespace',
      message: `ownerRef ${JSON.stringify(ref)} does not exist in namespace ${JSON.stringify(dep.obj.metadata.namespace ?? '')}`,
      source: { component: 'garbage-collector-controller' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      type: 'Warning',
    });
  }
}
