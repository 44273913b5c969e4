/**
 * What this node announces, kept current: the glue between the cluster's state and the layer-2
 * speaker, the ServiceL2Status writer, events and metrics. The decision itself is
 * core/announce's (the same function every agent and `kubectl metallb` call).
 *
 * Changes are debounced (default 20 ms) and cost what they touch:
 *
 * - a Service or one of its EndpointSlices changing recomputes that Service and the Services
 *   sharing an address with it (before or after the change), against the prepared context;
 * - nodes dying (the live set shrinking) prepares a new context and recomputes only the
 *   Services they owned, so a failover costs the dead node's share;
 * - the configuration, the nodes (labels, conditions, addresses) or a node coming back prepares
 *   a new context (core/announce reuses the hash orders while the node names stay) and
 *   recomputes every Service, yielding to the event loop every few hundred so probes, watches
 *   and gossip go on.
 *
 * Per Service, what changed for this node goes out: the speaker gets the whole set of IPs this
 * node owns (only when it changed), the status writer what to publish, and a Service this node
 * starts announcing gets MetalLB's `nodeAssigned` event.
 */
import { emptyConfig, type Config } from '../core/config/index.js';
import {
  announceLayer2,
  nodeFromKube,
  prepareLayer2,
  serviceFromKube,
  ServicesByIP,
  sharingGroup,
  serviceKey,
  type AnnounceNode,
  type AnnounceService,
  type Layer2Context,
  type Layer2Service,
} from '../core/announce/index.js';
import type { KubeObject } from '../kube/client.js';
import { systemClock, type Clock } from '../kube/clock.js';
import type { EventRecorder } from '../kube/events.js';
import { systemTimers, type Timers } from '../kube/queue.js';
import { describeError, silentLogger, type Logger } from './log.js';
import type { L2Desired } from './status.js';

/** The speaker as the announcer uses it (agent/layer2's Layer2Speaker). */
export interface Speaker {
  setAnnouncements(announcements: ReadonlyMap<string, { readonly interfaces: readonly string[] }>): void;
}

/** What the announcer reports to metrics (the agent's Metrics satisfies it). */
export interface AnnouncerMetrics {
  setAnnounced(protocol: 'layer2', service: string, node: string, ip: string, on: boolean): void;
  setAnnouncedServices(protocol: 'layer2', count: number): void;
  observeRecompute(scope: 'service' | 'liveness' | 'all', seconds: number): void;
  setAliveNodes(n: number): void;
}

export interface AnnouncerOptions {
  nodeName: string;
  /** Our LoadBalancer Services by namespace/name (agent/cluster.ts keeps them). */
  services: () => ReadonlyMap<string, KubeObject>;
  /** The EndpointSlices of a Service. */
  slicesOf: (serviceKey: string) => KubeObject[];
  nodes: () => Iterable<KubeObject>;
  /** The configuration in use (undefined: none yet, nothing is announced). */
  config: () => Config | undefined;
  /** The nodes counted alive. */
  alive: () => ReadonlySet<string>;
  speaker: Speaker;
  status?: { set(serviceKey: string, desired: L2Desired | undefined): void };
  recorder?: Pick<EventRecorder, 'event'>;
  metrics?: AnnouncerMetrics;
  /** Delay between a change and the recompute (default 20 ms). */
  debounceMs?: number;
  /** Services recomputed between two yields to the event loop in a full pass (default 256). */
  batch?: number;
  clock?: Clock;
  timers?: Timers;
  log?: Logger;
}

/** One IP this node answers for, and the Services it answers for. */
export interface OwnedIP {
  interfaces: readonly string[];
  services: Set<string>;
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export class Announcer {
  private ctx: Layer2Context | undefined;
  private readonly byIP = new ServicesByIP();
  /** Per Service: the IPs this node announces for it, with their interfaces. */
  private readonly mine = new Map<string, Map<string, readonly string[]>>();
  /** Per IP this node announces: interfaces and the Services. */
  private readonly owned = new Map<string, OwnedIP>();
  /** The last answer per Service (for tests and debugging). */
  private readonly results = new Map<string, Layer2Service>();
  private readonly dirty = new Set<string>();
  private all = false;
  private aliveDirty = false;
  /** The live set the context was prepared with. */
  private ctxAlive: ReadonlySet<string> = new Set();
  private timer: unknown;
  private flushing: Promise<void> | undefined;
  private speakerDirty = false;
  private stopped = false;
  private started = false;
  private passes = 0;
  /** The index of Services (byIP) has been filled from the cluster's copy once. */
  private indexed = false;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly log: Logger;

  constructor(private readonly options: AnnouncerOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.log = options.log ?? silentLogger;
  }

  /**
   * Starts deciding: until then changes are only noted (the agent first waits for its watches,
   * the configuration and the gossip, so it never decides from half a picture). Resolves once
   * the first full pass is done.
   */
  async start(): Promise<void> {
    this.started = true;
    this.allChanged();
    await this.idle();
  }

  /** A Service, or one of its EndpointSlices, changed (or went away). */
  serviceChanged(key: string): void {
    this.dirty.add(key);
    this.schedule();
  }

  /** The configuration or the nodes changed: every Service may have another owner. */
  allChanged(): void {
    this.all = true;
    this.schedule();
  }

  /**
   * The live set changed. When nodes only died, only the Services they owned can change hands
   * (removing other candidates never changes who is first), so only those are recomputed: a
   * failover costs the dead node's share of the Services, not all of them. A node coming back
   * may rank first anywhere: everything is recomputed.
   */
  aliveChanged(): void {
    this.aliveDirty = true;
    this.schedule();
  }

  /** The IPs this node announces now. */
  get announcements(): ReadonlyMap<string, OwnedIP> {
    return this.owned;
  }

  /** The last answer for a Service. */
  result(key: string): Layer2Service | undefined {
    return this.results.get(key);
  }

  /** Full passes done (the first one makes the agent ready). */
  get fullPasses(): number {
    return this.passes;
  }

  /** Recomputes what is pending now, without waiting for the debounce; resolves when done. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.flushing) await this.flushing;
    if (!this.started || this.stopped || (!this.all && !this.aliveDirty && this.dirty.size === 0)) return;
    this.flushing = this.run().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
    // Changes that came during the pass.
    if (!this.stopped && (this.all || this.aliveDirty || this.dirty.size > 0)) this.schedule();
  }

  /** Resolves once nothing is pending or running. */
  async idle(): Promise<void> {
    while (this.started && !this.stopped && (this.flushing || this.timer !== undefined || this.all || this.aliveDirty || this.dirty.size > 0)) await this.flush();
  }

  /** Stops recomputing (what is announced stays until the speaker is closed). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
  }

  /** Reports of what the last pass changed, made after the speaker has the new set (see apply). */
  private readonly after: (() => void)[] = [];

  private schedule(): void {
    if (!this.started || this.stopped || this.timer !== undefined || this.flushing) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch((e: unknown) => this.log.error(`recomputing the announcements (a bug): ${describeError(e)}`));
    }, this.options.debounceMs ?? 20);
  }

  private async run(): Promise<void> {
    const start = this.clock.monotonic();
    let full = this.all;
    const aliveOnly = !full && this.aliveDirty;
    this.all = false;
    this.aliveDirty = false;
    const keys = [...this.dirty];
    this.dirty.clear();
    let scope: 'all' | 'liveness' | 'service' = full ? 'all' : 'service';
    if (aliveOnly) {
      const alive = this.options.alive();
      const before = this.ctxAlive;
      if (!this.ctx || [...alive].some((n) => !before.has(n))) full = true;
      else {
        scope = 'liveness';
        const lost = new Set([...before].filter((n) => !alive.has(n)));
        this.ctx = this.prepare(alive);
        for (const [key, r] of this.results) if (r.ips.some((ip) => ip.owner !== undefined && lost.has(ip.owner))) keys.push(key);
      }
    }
    if (full) {
      scope = 'all';
      await this.recomputeAll(keys);
      this.passes++;
    } else {
      this.recomputeSome(keys);
    }
    if (this.speakerDirty) {
      this.speakerDirty = false;
      const map = new Map<string, { interfaces: readonly string[] }>();
      for (const [ip, o] of this.owned) map.set(ip, { interfaces: o.interfaces });
      try {
        this.options.speaker.setAnnouncements(map);
      } catch (e) {
        this.log.error(`handing the announcements to the speaker: ${describeError(e)}`);
      }
    }
    this.options.metrics?.setAnnouncedServices('layer2', this.mine.size);
    this.options.metrics?.observeRecompute(scope, (this.clock.monotonic() - start) / 1000);
    // Then the status, events, logs and metrics of what changed, yielding between batches.
    const work = this.after.splice(0);
    const batch = Math.max(1, this.options.batch ?? 256);
    for (let i = 0; i < work.length; i++) {
      try {
        work[i]!();
      } catch (e) {
        this.log.error(`reporting an announcement (a bug): ${describeError(e)}`);
      }
      if ((i + 1) % batch === 0) await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** The Service as core/announce reads it, or undefined when it is gone (or not ours any more). */
  private read(key: string): AnnounceService | undefined {
    const svc = this.options.services().get(key);
    return svc ? serviceFromKube(svc, this.options.slicesOf(key)) : undefined;
  }

  private prepare(alive: ReadonlySet<string> = this.options.alive()): Layer2Context {
    const nodes: AnnounceNode[] = [];
    for (const n of this.options.nodes()) {
      const node = nodeFromKube(n);
      if (node) nodes.push(node);
    }
    this.ctxAlive = alive;
    this.options.metrics?.setAliveNodes(nodes.filter((n) => alive.has(n.name)).length);
    return prepareLayer2(this.options.config() ?? emptyConfig(), nodes, alive, this.ctx ? { previous: this.ctx } : {});
  }

  /** Brings the index of Services up to date for the keys that changed (all of them the first time). */
  private reread(keys: Iterable<string>): void {
    for (const key of keys) {
      const now = this.read(key);
      if (now) this.byIP.set(now);
      else this.byIP.delete(...split(key));
    }
  }

  private async recomputeAll(keys: string[]): Promise<void> {
    this.ctx = this.prepare();
    // The Services themselves did not change (those that did are in `keys`): only the context did.
    if (!this.indexed) {
      this.indexed = true;
      this.reread(new Set([...this.options.services().keys(), ...this.results.keys()]));
    } else this.reread(keys);
    for (const key of [...this.mine.keys(), ...this.results.keys()]) if (!this.byIP.get(...split(key))) this.apply(key, undefined);
    const batch = Math.max(1, this.options.batch ?? 256);
    let n = 0;
    for (const s of [...this.byIP.values()]) {
      this.apply(serviceKey(s), s);
      if (++n % batch === 0) await new Promise<void>((r) => setImmediate(r));
      if (this.stopped) return;
    }
  }

  private recomputeSome(keys: string[]): void {
    if (!this.ctx) this.ctx = this.prepare();
    if (!this.indexed) {
      this.indexed = true;
      this.reread(this.options.services().keys());
    }
    const touched = new Set<string>();
    for (const key of keys) {
      // The Services sharing an address with it, before the change (they may lose a sharer)...
      const before = this.byIP.get(...split(key));
      if (before) for (const s of sharingGroup(before, this.byIP.withIP)) touched.add(serviceKey(s));
      const now = this.read(key);
      if (now) {
        this.byIP.set(now);
        // ...and after (they may gain one).
        for (const s of sharingGroup(now, this.byIP.withIP)) touched.add(serviceKey(s));
      } else {
        this.byIP.delete(...split(key));
      }
      touched.add(key);
    }
    for (const key of touched) this.apply(key, this.byIP.get(...split(key)));
  }

  /** Decides one Service and sends on what changed for this node. */
  private apply(key: string, service: AnnounceService | undefined): void {
    const { nodeName } = this.options;
    let result: Layer2Service | undefined;
    if (service && this.ctx) {
      try {
        result = announceLayer2(this.ctx, service, this.byIP.withIP);
      } catch (e) {
        this.log.error(`deciding who announces ${key} (a bug): ${describeError(e)}`);
      }
    }
    if (result) this.results.set(key, result);
    else this.results.delete(key);

    const before = this.mine.get(key);
    // Most Services, most of the time: another node announces them, as before.
    if (!before && !result?.ips.some((ip) => ip.owner === nodeName)) return;

    const next = new Map<string, readonly string[]>();
    const owners = new Set<string>();
    for (const ip of result?.ips ?? []) {
      if (ip.owner === undefined) continue;
      owners.add(ip.owner);
      if (ip.owner === nodeName) next.set(ip.ip, ip.candidates[0]?.interfaces ?? []);
    }
    const had = before ?? new Map<string, readonly string[]>();

    // The speaker's set: per IP, the Services this node answers it for.
    for (const [ip, interfaces] of had) {
      if (next.has(ip) && sameList(next.get(ip) as readonly string[], interfaces)) continue;
      const o = this.owned.get(ip);
      o?.services.delete(key);
      if (o && o.services.size === 0) this.owned.delete(ip);
      this.speakerDirty = true;
      if (!next.has(ip)) this.after.push(() => this.options.metrics?.setAnnounced('layer2', key, nodeName, ip, false));
    }
    for (const [ip, interfaces] of next) {
      if (had.has(ip) && sameList(had.get(ip) as readonly string[], interfaces)) continue;
      const o = this.owned.get(ip);
      if (o) {
        o.services.add(key);
        if (!sameList(o.interfaces, interfaces)) o.interfaces = interfaces;
      } else this.owned.set(ip, { interfaces, services: new Set([key]) });
      this.speakerDirty = true;
      this.after.push(() => this.options.metrics?.setAnnounced('layer2', key, nodeName, ip, true));
    }
    if (next.size > 0) this.mine.set(key, next);
    else this.mine.delete(key);

    // What follows tells the cluster (status, event, log): it waits until the speaker has the
    // new set, so that taking over a dead node's thousands of IPs is not held up by it.
    const interfaces = next.size > 0 ? [...new Set([...next.values()].flat())].sort() : [];
    this.after.push(() => this.options.status?.set(key, next.size > 0 ? { interfaces, owners } : undefined));
    if (had.size === 0 && next.size > 0) {
      this.after.push(() => {
        this.log.info(`announcing ${key} (${[...next.keys()].join(', ')}) from this node`);
        const svc = this.options.services().get(key);
        if (svc) void this.options.recorder?.event(svc, 'Normal', 'nodeAssigned', `announcing from node "${nodeName}" with protocol "layer2"`);
      });
    } else if (had.size > 0 && next.size === 0) {
      const why = result?.ips.map((ip) => (ip.owner ? `${ip.ip}: ${ip.owner}` : `${ip.ip}: ${ip.reason}`)).join(', ');
      this.after.push(() => this.log.info(`no longer announcing ${key}${why ? ` (${why})` : ' (gone)'}`));
    }
  }
}

function split(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
