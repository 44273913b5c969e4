/**
 * Publishes MetalLB's ServiceL2Status objects: one per Service this node announces, in the
 * agents' namespace, removed when the node stops announcing it.
 *
 * - What should exist is handed in per Service (`set`): the interfaces, and which nodes
 *   announce some IP of the Service in this agent's view (a dual-stack or shared Service whose
 *   addresses land on two nodes has one object per node).
 * - What exists comes from a watch of every ServiceL2Status in the namespace, so an object
 *   someone deleted is put back, and the node taking a Service over deletes the object of the
 *   node it replaces (which may have died without cleaning up). A node that does not announce
 *   a Service deletes only its own object for it, as MetalLB's speaker.
 * - Writes go through a work queue per Service (never two at once on one Service), retried with
 *   backoff when they fail; a Service whose objects are right costs no API call.
 * - Nothing is written before the agent has computed what it announces once (`begin`):
 *   an agent starting up never deletes the objects it is about to confirm.
 *
 * Object name: `<service namespace>.<service name>.<node>` (a hash beyond 253 characters);
 * labels `metallb.io/node`, `metallb.io/service-name`, `metallb.io/service-namespace`
 * (MetalLB's); owner: the agent's Pod when known (MetalLB's speaker Pod is the owner of its
 * objects too: a Service in another namespace cannot be).
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { apiVersionOf, isKubeError, olderThan, Reflector, type KubeApi, type KubeObject, type Resource } from '../kube/client.js';
import { WorkQueue, type Timers } from '../kube/queue.js';
import type { Clock } from '../kube/clock.js';
import type { OwnerReference } from './config.js';
import { describeError, silentLogger, type Logger } from './log.js';

export const SERVICE_L2_STATUSES: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'servicel2statuses', namespaced: true };

/** MetalLB's labels on a ServiceL2Status. */
export const LABEL_NODE = 'metallb.io/node';
export const LABEL_SERVICE_NAME = 'metallb.io/service-name';
export const LABEL_SERVICE_NAMESPACE = 'metallb.io/service-namespace';

/** What this node should publish for one Service it announces. */
export interface L2Desired {
  /** Interfaces named by the L2Advertisement(s); empty: every suitable interface. */
  interfaces: readonly string[];
  /** The nodes announcing some IP of the Service, this one included, in this agent's view. */
  owners: ReadonlySet<string>;
}

/** The object name for (Service, node): readable when it fits, a hash otherwise. */
export function statusName(serviceNamespace: string, serviceName: string, node: string): string {
  const name = `${serviceNamespace}.${serviceName}.${node}`;
  if (name.length <= 253) return name;
  return `l2-${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/** The status this node writes for a Service. */
export function statusFor(serviceNamespace: string, serviceName: string, node: string, interfaces: readonly string[]): Record<string, unknown> {
  return {
    node,
    serviceName,
    serviceNamespace,
    ...(interfaces.length > 0 ? { interfaces: [...interfaces].sort().map((name) => ({ name })) } : {}),
  };
}

/** The Service key (namespace/name) an object is about, from its labels. */
function serviceOf(o: KubeObject): string | undefined {
  const ns = o.metadata.labels?.[LABEL_SERVICE_NAMESPACE];
  const name = o.metadata.labels?.[LABEL_SERVICE_NAME];
  return ns && name ? `${ns}/${name}` : undefined;
}

/** What the writer counts (the agent's Metrics satisfies it). */
export interface StatusMetrics {
  countStatusWrite(op: 'create' | 'update' | 'delete', ok: boolean): void;
}

export interface L2StatusWriterOptions {
  kube: KubeApi;
  namespace: string;
  nodeName: string;
  owner?: OwnerReference;
  /** Workers writing at once (default 4). */
  concurrency?: number;
  metrics?: StatusMetrics;
  clock?: Clock;
  timers?: Timers;
  log?: Logger;
}

export class L2StatusWriter {
  private readonly desired = new Map<string, L2Desired>();
  /** Service key -> object name -> the object, as last seen (watch or our own write). */
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly queue: WorkQueue<string>;
  private readonly reflector: Reflector;
  private readonly log: Logger;
  private started = false;
  private running: Promise<void> | undefined;

  constructor(private readonly options: L2StatusWriterOptions) {
    this.log = options.log ?? silentLogger;
    this.queue = new WorkQueue<string>({
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.timers ? { timers: options.timers } : {}),
      onError: (key, e) => this.log.warn(`ServiceL2Status of ${key}: ${describeError(e)}; retrying`),
    });
    this.reflector = new Reflector(
      options.kube,
      SERVICE_L2_STATUSES,
      {
        onSync: (items) => {
          const before = new Set(this.objects.keys());
          this.objects.clear();
          for (const o of items) this.remember(o);
          for (const key of new Set([...before, ...this.objects.keys()])) this.touch(key);
        },
        onEvent: (type, o) => {
          const key = serviceOf(o);
          if (!key) return; // not one of ours to judge
          if (type === 'DELETED') this.forget(key, o);
          else this.remember(o);
          this.touch(key);
        },
        onError: (e) => this.log.debug(`watching servicel2statuses: ${describeError(e)}`),
      },
      { namespace: options.namespace },
    );
  }

  /** Starts watching; resolves once the existing objects are known. */
  start(): Promise<void> {
    return this.reflector.start();
  }

  /** Starts writing: called once the agent knows everything it announces. */
  begin(): void {
    if (this.started) return;
    this.started = true;
    // Our own objects for Services we do not announce (left from before a restart) go too.
    for (const [key, byName] of this.objects) if ([...byName.values()].some((o) => this.isMine(o))) this.queue.add(key);
    for (const key of this.desired.keys()) this.queue.add(key);
    this.running = this.queue.run(this.options.concurrency ?? 4, (key) => this.reconcile(key));
  }

  /** What this node should publish for a Service (undefined: nothing, it does not announce it). */
  set(serviceKey: string, desired: L2Desired | undefined): void {
    const before = this.desired.get(serviceKey);
    if (desired === undefined) {
      if (!before) return;
      this.desired.delete(serviceKey);
    } else {
      if (before && sameDesired(before, desired)) return;
      this.desired.set(serviceKey, desired);
    }
    if (this.started) this.queue.add(serviceKey);
  }

  /** Services this node publishes a status for. */
  get size(): number {
    return this.desired.size;
  }

  /** Resolves when no write is queued or in flight (retries waiting on backoff do not count). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Stops watching and writing; the writes in flight finish. Objects stay (see agent/README.md). */
  async stop(): Promise<void> {
    this.reflector.stop();
    await this.queue.shutDown();
    await this.running;
  }

  private isMine(o: KubeObject): boolean {
    return o.metadata.labels?.[LABEL_NODE] === this.options.nodeName;
  }

  /** Queues a Service when an object about it concerns this node: its own, or one it may have to replace. */
  private touch(key: string): void {
    if (!this.started) return;
    if (this.desired.has(key) || [...(this.objects.get(key)?.values() ?? [])].some((o) => this.isMine(o))) this.queue.add(key);
  }

  private remember(o: KubeObject): void {
    const key = serviceOf(o);
    const name = o.metadata.name;
    if (!key || !name) return;
    let byName = this.objects.get(key);
    if (!byName) this.objects.set(key, (byName = new Map()));
    const cached = byName.get(name);
    // An event older than what our own write returned changes nothing.
    if (cached && cached.metadata.uid === o.metadata.uid && olderThan(o.metadata.resourceVersion, cached.metadata.resourceVersion)) return;
    byName.set(name, o);
  }

  private forget(key: string, o: KubeObject): void {
    const byName = this.objects.get(key);
    const name = o.metadata.name ?? '';
    const cached = byName?.get(name);
    if (!byName || !cached) return;
    if (o.metadata.uid && cached.metadata.uid && o.metadata.uid !== cached.metadata.uid) return; // a newer object of the same name
    byName.delete(name);
    if (byName.size === 0) this.objects.delete(key);
  }

  private async write<T>(op: 'create' | 'update' | 'delete', f: () => Promise<T>): Promise<T> {
    try {
      const r = await f();
      this.options.metrics?.countStatusWrite(op, true);
      return r;
    } catch (e) {
      this.options.metrics?.countStatusWrite(op, false);
      throw e;
    }
  }

  private async remove(key: string, o: KubeObject): Promise<void> {
    const { kube, namespace } = this.options;
    const name = o.metadata.name ?? '';
    await this.write('delete', () => kube.delete(SERVICE_L2_STATUSES, name, namespace, o.metadata.uid ? { uid: o.metadata.uid } : undefined)).catch((e: unknown) => {
      // Replaced meanwhile by an object of the same name (precondition failed): judged again on its event.
      if (!isKubeError(e, 409)) throw e;
    });
    this.forget(key, o);
    this.log.debug(`deleted ServiceL2Status ${name} (node ${o.metadata.labels?.[LABEL_NODE] ?? '?'})`);
  }

  private async reconcile(key: string): Promise<void> {
    const { kube, namespace, nodeName, owner } = this.options;
    const slash = key.indexOf('/');
    const [svcNamespace, svcName] = [key.slice(0, slash), key.slice(slash + 1)];
    const desired = this.desired.get(key);
    const all = [...(this.objects.get(key)?.values() ?? [])];
    const mine = all.filter((o) => this.isMine(o));
    if (!desired) {
      for (const o of mine) await this.remove(key, o);
      return;
    }
    const name = statusName(svcNamespace, svcName, nodeName);
    const keep = mine.find((o) => o.metadata.name === name) ?? mine[0];
    for (const o of mine) if (o !== keep) await this.remove(key, o);
    // The nodes this one replaces: their objects go (they may have died without cleaning up).
    for (const o of all) if (!this.isMine(o) && !desired.owners.has(o.metadata.labels?.[LABEL_NODE] ?? '')) await this.remove(key, o);

    const status = statusFor(svcNamespace, svcName, nodeName, desired.interfaces);
    const patchStatus = async (objName: string) => {
      const updated = await this.write('update', () =>
        kube.patch(SERVICE_L2_STATUSES, objName, namespace, { status: { ...status, interfaces: status.interfaces ?? null } }, { subresource: 'status' }),
      );
      this.remember(updated);
    };
    if (!keep) {
      const body: KubeObject = {
        apiVersion: apiVersionOf(SERVICE_L2_STATUSES),
        kind: 'ServiceL2Status',
        metadata: {
          name,
          namespace,
          labels: { [LABEL_NODE]: nodeName, [LABEL_SERVICE_NAME]: svcName, [LABEL_SERVICE_NAMESPACE]: svcNamespace },
          ...(owner ? { ownerReferences: [{ ...owner, controller: true }] } : {}),
        },
        status,
      };
      let created: KubeObject | undefined;
      try {
        created = await this.write('create', () => kube.create(SERVICE_L2_STATUSES, body));
        this.remember(created);
        this.log.debug(`created ServiceL2Status ${name}`);
      } catch (e) {
        // There already (our write whose event has not come yet, or an earlier run's): its status is set below.
        if (!isKubeError(e, 409)) throw e;
      }
      // The API server drops status on create when status is a subresource.
      if (!created || !isDeepStrictEqual(created.status, status)) await patchStatus(name);
      return;
    }
    if (!isDeepStrictEqual(keep.status ?? {}, status)) await patchStatus(keep.metadata.name ?? name);
  }
}

function sameDesired(a: L2Desired, b: L2Desired): boolean {
  if (a.interfaces.length !== b.interfaces.length || a.owners.size !== b.owners.size) return false;
  if (a.interfaces.some((i, n) => b.interfaces[n] !== i)) return false;
  for (const o of a.owners) if (!b.owners.has(o)) return false;
  return true;
}
