/**
 * The agent's copy of the cluster state it decides from: LoadBalancer Services of ours,
 * EndpointSlices (by the Service they belong to) and Nodes, each kept by a reflector
 * (kube/reflector.ts: list, then watch from the last resourceVersion; a failed watch resumes,
 * only 410 relists).
 *
 * Every change is reported at the granularity it matters: a Service or one of its
 * EndpointSlices changing concerns that Service alone; a Node changing what the decision reads
 * (labels, conditions, addresses; not its heartbeats) concerns every Service. A relist reports
 * only what differs from the copy it replaces.
 */
import { Reflector, RESOURCES, type KubeApi, type KubeObject, type Resource } from '../kube/client.js';
import { describeError, silentLogger, type Logger } from './log.js';

export const ENDPOINT_SLICES: Resource = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true };
export const NODES: Resource = { group: '', version: 'v1', plural: 'nodes', namespaced: false };

/** The label naming an EndpointSlice's Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** What changed: one Service (itself or its endpoints), or the nodes (which every Service depends on). */
export type ClusterChange = { kind: 'service'; key: string } | { kind: 'nodes' };

/**
 * Whether a Service is a LoadBalancer of ours: as the controller judges it (webhook/services.ts
 * isOurs), so the agent announces exactly what the controller assigns. With a class configured,
 * Services without one are ours too.
 */
export function isOurService(svc: KubeObject | undefined, loadBalancerClass?: string): boolean {
  const spec = svc?.spec as { type?: unknown; loadBalancerClass?: unknown } | undefined;
  if (spec?.type !== 'LoadBalancer') return false;
  const cls = spec.loadBalancerClass;
  return !cls || cls === loadBalancerClass;
}

const keyOf = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

/** What of a Node the decision reads: labels, conditions' status, addresses; never heartbeat times. */
export function nodeFingerprint(n: KubeObject): string {
  const status = (n.status ?? {}) as { conditions?: { type?: unknown; status?: unknown }[]; addresses?: unknown };
  const conditions = (Array.isArray(status.conditions) ? status.conditions : []).map((c) => [c?.type, c?.status]);
  return JSON.stringify([n.metadata.labels ?? {}, conditions, status.addresses ?? [], n.metadata.deletionTimestamp ?? null]);
}

/** Drops what no decision reads and costs memory at scale. */
function slim(o: KubeObject): KubeObject {
  if (!('managedFields' in o.metadata)) return o;
  const { managedFields: _m, ...metadata } = o.metadata;
  return { ...o, metadata };
}

export interface ClusterWatchOptions {
  kube: KubeApi;
  onChange: (change: ClusterChange) => void;
  loadBalancerClass?: string;
  log?: Logger;
}

export class ClusterWatch {
  /** Our LoadBalancer Services, by namespace/name. */
  readonly services = new Map<string, KubeObject>();
  /** EndpointSlices by their Service's namespace/name, then by slice name. */
  readonly slices = new Map<string, Map<string, KubeObject>>();
  /** Nodes by name. */
  readonly nodes = new Map<string, KubeObject>();
  private readonly nodePrints = new Map<string, string>();
  private readonly reflectors: Reflector[];
  private readonly log: Logger;

  constructor(private readonly options: ClusterWatchOptions) {
    this.log = options.log ?? silentLogger;
    const onError = (what: string) => (e: unknown) => this.log.debug(`watching ${what}: ${describeError(e)}`);
    this.reflectors = [
      new Reflector(options.kube, RESOURCES.services, { onSync: (items) => this.syncServices(items), onEvent: (t, o) => this.service(t, o), onError: onError('services') }),
      new Reflector(options.kube, ENDPOINT_SLICES, { onSync: (items) => this.syncSlices(items), onEvent: (t, o) => this.slice(t, o), onError: onError('endpointslices') }),
      new Reflector(options.kube, NODES, { onSync: (items) => this.syncNodes(items), onEvent: (t, o) => this.node(t, o), onError: onError('nodes') }),
    ];
  }

  /** Starts the watches; resolves once each has listed. */
  async start(): Promise<void> {
    await Promise.all(this.reflectors.map((r) => r.start()));
  }

  stop(): void {
    for (const r of this.reflectors) r.stop();
  }

  /** The EndpointSlices of a Service. */
  slicesOf(key: string): KubeObject[] {
    return [...(this.slices.get(key)?.values() ?? [])];
  }

  /** Watch statistics per kind (errors, relists), for metrics. */
  stats(): { resource: string; errors: number; relists: number; watching: boolean }[] {
    return this.reflectors.map((r, i) => {
      const s = r.stats();
      return { resource: ['services', 'endpointslices', 'nodes'][i] as string, errors: s.errors, relists: s.relists, watching: s.watching };
    });
  }

  private emit(change: ClusterChange): void {
    try {
      this.options.onChange(change);
    } catch (e) {
      this.log.error(`handling a change (a bug): ${describeError(e)}`);
    }
  }

  private ours(o: KubeObject): boolean {
    return isOurService(o, this.options.loadBalancerClass);
  }

  private service(type: 'ADDED' | 'MODIFIED' | 'DELETED', o: KubeObject): void {
    const key = keyOf(o);
    const had = this.services.has(key);
    if (type !== 'DELETED' && this.ours(o)) this.services.set(key, slim(o));
    else if (had) this.services.delete(key);
    else return; // never ours: nothing to recompute
    this.emit({ kind: 'service', key });
  }

  private syncServices(items: KubeObject[]): void {
    const before = new Map(this.services);
    this.services.clear();
    for (const o of items) if (this.ours(o)) this.services.set(keyOf(o), slim(o));
    for (const key of new Set([...before.keys(), ...this.services.keys()]))
      if (before.get(key)?.metadata.resourceVersion !== this.services.get(key)?.metadata.resourceVersion) this.emit({ kind: 'service', key });
  }

  private sliceKey(o: KubeObject): string | undefined {
    const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
    return svc ? `${o.metadata.namespace ?? ''}/${svc}` : undefined;
  }

  private slice(type: 'ADDED' | 'MODIFIED' | 'DELETED', o: KubeObject): void {
    const key = this.sliceKey(o);
    const name = o.metadata.name ?? '';
    if (!key) return;
    let byName = this.slices.get(key);
    if (type === 'DELETED') {
      if (!byName?.delete(name)) return;
      if (byName.size === 0) this.slices.delete(key);
    } else {
      if (!byName) this.slices.set(key, (byName = new Map()));
      byName.set(name, slim(o));
    }
    // Endpoints of Services that are no LoadBalancer of ours are kept (a Service may become one) but decide nothing.
    if (this.services.has(key)) this.emit({ kind: 'service', key });
  }

  private syncSlices(items: KubeObject[]): void {
    const before = new Map([...this.slices].map(([k, m]) => [k, new Map(m)]));
    this.slices.clear();
    for (const o of items) {
      const key = this.sliceKey(o);
      if (!key) continue;
      let byName = this.slices.get(key);
      if (!byName) this.slices.set(key, (byName = new Map()));
      byName.set(o.metadata.name ?? '', slim(o));
    }
    const versions = (m: Map<string, KubeObject> | undefined) => JSON.stringify([...(m ?? new Map<string, KubeObject>())].map(([n, s]) => [n, s.metadata.resourceVersion]).sort());
    for (const key of new Set([...before.keys(), ...this.slices.keys()]))
      if (this.services.has(key) && versions(before.get(key)) !== versions(this.slices.get(key))) this.emit({ kind: 'service', key });
  }

  private node(type: 'ADDED' | 'MODIFIED' | 'DELETED', o: KubeObject): void {
    const name = o.metadata.name ?? '';
    if (type === 'DELETED') {
      this.nodes.delete(name);
      if (!this.nodePrints.delete(name)) return;
      this.emit({ kind: 'nodes' });
      return;
    }
    this.nodes.set(name, slim(o));
    const print = nodeFingerprint(o);
    if (this.nodePrints.get(name) === print) return; // a heartbeat
    this.nodePrints.set(name, print);
    this.emit({ kind: 'nodes' });
  }

  private syncNodes(items: KubeObject[]): void {
    const before = new Map(this.nodePrints);
    this.nodes.clear();
    this.nodePrints.clear();
    for (const o of items) {
      const name = o.metadata.name ?? '';
      this.nodes.set(name, slim(o));
      this.nodePrints.set(name, nodeFingerprint(o));
    }
    const changed = before.size !== this.nodePrints.size || [...this.nodePrints].some(([n, p]) => before.get(n) !== p);
    if (changed || before.size === 0) this.emit({ kind: 'nodes' });
  }
}
