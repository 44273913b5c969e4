/**
 * One pass over a Snapshot that every view shares: the configuration the components run on, the
 * claims mirrored into core's Allocator, every LoadBalancer Service read with core's adapters,
 * and the layer-2 owner of each of their IPs from core/announce.
 */
import { Allocator, serviceKey, serviceToRequest, type ServiceRequest } from '../allocator/index.js';
import {
  announceBGP,
  announceLayer2,
  nodeFromKube,
  prepareBGP,
  prepareLayer2,
  serviceFromKube,
  sharingLookup,
  sliceServiceKey,
  type AnnounceNode,
  type AnnounceService,
  type BGPContext,
  type BGPService,
  type Layer2Context,
  type Layer2Service,
} from '../announce/index.js';
import { emptyConfig, formatConfigError, selectedPools, type Config, type Pool } from '../config/index.js';
import { formatIP, parseIP, type IP } from '../ip/index.js';
import { mirrorClaims, readClaims, type Claim } from './claims.js';
import type { Snapshot } from './model.js';
import { peerRows, type PeerRow } from './peers.js';

/** Annotations the controller writes on a Service it assigned. */
export const ASSIGNED_POOL_ANNOTATION = 'metallb.io/ip-allocated-from-pool';
export const ASSIGNED_IPS_ANNOTATION = 'metallb.io/assigned-ips';

/** Where the configuration the components run on comes from. */
export type ConfigSource =
  /** The current configuration is valid: it is what runs. */
  | 'current'
  /** The current one is invalid: the components keep the last good one the controller recorded. */
  | 'last-good'
  /** Invalid, and no last good one recorded: a controller starting now would apply nothing. */
  | 'none';

/** A LoadBalancer Service of ours, read once. */
export interface LBService {
  key: string;
  namespace: string;
  name: string;
  object: Record<string, unknown>;
  /** What it asks the allocator for (or why that cannot be read). */
  request: ServiceRequest;
  /** status.loadBalancer.ingress addresses, canonical text. */
  ingress: string[];
  /** What the controller recorded on the object (annotations). */
  annotated: { ips: string[]; pool?: string };
  /** As core/announce reads it (IPs from status, endpoints from its EndpointSlices). */
  announce: AnnounceService;
}

export interface Analysis {
  snapshot: Snapshot;
  /** The configuration the components run on (see `configSource`). */
  config: Config;
  configSource: ConfigSource;
  /** Errors of the current configuration, one line each (empty when valid). */
  configErrors: string[];
  claims: Claim[];
  /** Claims by address text. */
  claimByIP: ReadonlyMap<string, Claim>;
  /**
   * Core's allocator holding what the claims hold. Mirrored on first use: a list of assigned
   * Services needs only `poolFor`, and mirroring 1,000 claims is a good part of a command's time.
   */
  readonly allocator: Allocator;
  /** The pool that serves an address (core's allocator over the pools, holding nothing). */
  poolFor(ip: IP): string | undefined;
  /** Sorted by namespace/name. */
  services: LBService[];
  byKey: ReadonlyMap<string, LBService>;
  nodes: AnnounceNode[];
  /**
   * The nodes counted alive: Ready, less `agentsDown` (the agents' gossip is not visible from
   * here; what they publish shows whom it counts out).
   */
  alive: ReadonlySet<string>;
  /**
   * Ready nodes the agents count down: a node ranked before the one a ServiceL2Status names for
   * one of its IPs is not alive in the agents' gossip (its agent stopped or cut off), or the
   * agents would have chosen it. Empty when every status agrees with the Node conditions.
   */
  agentsDown: ReadonlySet<string>;
  layer2Context: Layer2Context;
  /** core/announce's answer per Service key. */
  layer2: ReadonlyMap<string, Layer2Service>;
  bgpContext: BGPContext;
  /** core/announce's BGP answer per Service key: who advertises each IP to which peers, or why nobody. */
  bgp: ReadonlyMap<string, BGPService>;
  /**
   * Every node x BGPPeer session the configuration asks for, with what the speakers published
   * (BGPSessionState), keyed `node peerName`; `state` is `unknown` where nothing was published.
   */
  sessions: ReadonlyMap<string, PeerRow>;
  /** ServiceL2Status objects: the nodes that say they announce each Service (sorted). */
  announcedBy: ReadonlyMap<string, string[]>;
  namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

type Fields = Record<string, unknown>;
export const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
export const mapAt = (m: unknown, k: string): Fields => (isMap(m) && isMap(m[k]) ? m[k] : {});
export const textAt = (m: unknown, k: string): string | undefined => (isMap(m) && typeof m[k] === 'string' ? m[k] : undefined);

/** Canonical text of an address, or undefined when it is not one. */
export function canonicalIP(text: unknown): string | undefined {
  const p = parseIP(typeof text === 'string' ? text.trim() : text);
  return p.ok ? formatIP(p.value) : undefined;
}

/** Whether a Service is a LoadBalancer Service the controller answers to. */
export function isOurs(svc: unknown, loadBalancerClass?: string): boolean {
  const spec = mapAt(svc, 'spec');
  if (spec.type !== 'LoadBalancer') return false;
  const cls = textAt(spec, 'loadBalancerClass');
  return !cls || cls === loadBalancerClass;
}

/** Whether a Node's Ready condition is True. */
export function nodeReady(node: unknown): boolean {
  const conditions = mapAt(node, 'status').conditions;
  return Array.isArray(conditions) && conditions.some((c) => textAt(c, 'type') === 'Ready' && textAt(c, 'status') === 'True');
}

/** The configuration the components run on: the current one when valid, else the last good one recorded. */
export function effectiveConfig(snapshot: Snapshot): { config: Config; source: ConfigSource } {
  if (snapshot.config.errors.length === 0) return { config: snapshot.config.config, source: 'current' };
  if (snapshot.lastGood && snapshot.lastGood.errors.length === 0) return { config: snapshot.lastGood.config, source: 'last-good' };
  return { config: emptyConfig(), source: 'none' };
}

export interface AnalyzeOptions {
  /**
   * Nodes to count down from the start, whatever their Node says: what `simulate drain` learnt
   * from the cluster before (the agents' gossip counted them out), which the snapshot without
   * the drained node may no longer show.
   */
  down?: ReadonlySet<string>;
}

/**
 * core/announce's answers per Service key, each computed when first asked for (and kept);
 * iterating computes them all, in the Services' order.
 */
class LazyAnswers<T> implements ReadonlyMap<string, T> {
  private readonly byKey = new Map<string, LBService>();
  private readonly known = new Map<string, T>();

  constructor(
    services: readonly LBService[],
    private readonly answer: (s: LBService) => T,
  ) {
    for (const s of services) this.byKey.set(s.key, s);
  }

  get size(): number {
    return this.byKey.size;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  get(key: string): T | undefined {
    const known = this.known.get(key);
    if (known !== undefined) return known;
    const s = this.byKey.get(key);
    if (!s) return undefined;
    const value = this.answer(s);
    this.known.set(key, value);
    return value;
  }

  *entries(): MapIterator<[string, T]> {
    for (const key of this.byKey.keys()) yield [key, this.get(key)!];
  }

  *keys(): MapIterator<string> {
    yield* this.byKey.keys();
  }

  *values(): MapIterator<T> {
    for (const key of this.byKey.keys()) yield this.get(key)!;
  }

  [Symbol.iterator](): MapIterator<[string, T]> {
    return this.entries();
  }

  forEach(callback: (value: T, key: string, map: ReadonlyMap<string, T>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }
}

/** Analyse a snapshot once; every view reads the result. */
export function analyze(snapshot: Snapshot, options: AnalyzeOptions = {}): Analysis {
  const { config, source } = effectiveConfig(snapshot);
  const prepared = snapshot.preparedClaims;
  const usable = prepared !== undefined && prepared.objects === snapshot.claims && prepared.pools === config.pools ? prepared : undefined;
  const claims = usable?.claims ?? readClaims(snapshot.claims);
  let mirrored: Allocator | undefined = usable?.allocator;
  const pools = new Allocator(config.pools);
  const namespaceLabels = new Map(snapshot.namespaces.map((n) => [n.name, n.labels]));

  const slices = new Map<string, unknown[]>();
  for (const s of snapshot.endpointSlices) {
    const key = sliceServiceKey(s);
    if (!key) continue;
    const list = slices.get(key);
    if (list) list.push(s);
    else slices.set(key, [s]);
  }

  const services: LBService[] = [];
  for (const object of snapshot.services) {
    if (!isMap(object) || !isOurs(object, snapshot.loadBalancerClass)) continue;
    const meta = mapAt(object, 'metadata');
    const name = textAt(meta, 'name');
    if (!name) continue;
    const namespace = textAt(meta, 'namespace') || 'default';
    const key = serviceKey(namespace, name);
    const announce = serviceFromKube(object, slices.get(key) ?? []);
    if (!announce) continue;
    const annotations = mapAt(meta, 'annotations');
    const annotatedIPs = (textAt(annotations, ASSIGNED_IPS_ANNOTATION) ?? '')
      .split(',')
      .map(canonicalIP)
      .filter((x): x is string => x !== undefined);
    const pool = textAt(annotations, ASSIGNED_POOL_ANNOTATION);
    services.push({
      key,
      namespace,
      name,
      object,
      request: serviceToRequest(object, namespaceLabels.get(namespace) ?? {}),
      ingress: [...announce.ips],
      annotated: { ips: annotatedIPs, ...(pool ? { pool } : {}) },
      announce,
    });
  }
  services.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const nodes = snapshot.nodes.map(nodeFromKube).filter((n): n is AnnounceNode => n !== undefined);
  const ready = new Set(
    snapshot.nodes
      .filter(nodeReady)
      .flatMap((n) => textAt(mapAt(n, 'metadata'), 'name') ?? [])
      .filter((n) => !options.down?.has(n)),
  );
  // Answered on first ask: `explain` asks for one Service (and those with a ServiceL2Status);
  // a list asks for all. The Services sharing an address are found over all of them at once.
  const compute = (alive: ReadonlySet<string>) => {
    const context = prepareLayer2(config, nodes, alive);
    const lookup = sharingLookup(
      context,
      services.map((s) => s.announce),
    );
    const answers = new LazyAnswers(services, (s) => announceLayer2(context, s.announce, lookup));
    return { context, answers };
  };
  let { context: layer2Context, answers: layer2 } = compute(ready);

  const announcedBy = new Map<string, string[]>();
  for (const o of snapshot.l2Statuses) {
    const status = mapAt(o, 'status');
    const labels = mapAt(mapAt(o, 'metadata'), 'labels');
    const ns = textAt(status, 'serviceNamespace') ?? textAt(labels, 'metallb.io/service-namespace');
    const svc = textAt(status, 'serviceName') ?? textAt(labels, 'metallb.io/service-name');
    const node = textAt(status, 'node') ?? textAt(labels, 'metallb.io/node');
    if (!ns || !svc || !node) continue;
    const key = serviceKey(ns, svc);
    const list = announcedBy.get(key) ?? [];
    if (!list.includes(node)) list.push(node);
    announcedBy.set(key, list.sort());
  }

  // What the agents publish tells whom their gossip counts out: recompute without those nodes,
  // so that the owner and the next candidate shown are the ones the agents act on.
  // Only Services with a status can tell (the others name no node).
  const agentsDown = new Set<string>();
  for (const [key, statusNodes] of announcedBy) {
    const answer = layer2.get(key);
    if (!answer) continue;
    for (const ip of answer.ips) {
      if (!('owner' in ip)) continue;
      const order = ip.candidates.map((c) => c.node);
      const named = statusNodes.filter((n) => order.includes(n));
      if (named.length !== 1 || named[0] === ip.owner) continue;
      for (const n of order.slice(0, order.indexOf(named[0]!))) agentsDown.add(n);
    }
  }
  const alive = agentsDown.size > 0 ? new Set([...ready].filter((n) => !agentsDown.has(n))) : ready;
  if (agentsDown.size > 0) ({ context: layer2Context, answers: layer2 } = compute(alive));

  // BGP: every eligible node advertises (no single owner, no hashing). A node the agents count
  // down has lost its sessions too, so it is out here as well.
  const bgpContext = prepareBGP(config, nodes, alive);
  const bgp: ReadonlyMap<string, BGPService> = config.bgpAdvertisements.length === 0 ? new Map() : new LazyAnswers(services, (s) => announceBGP(bgpContext, s.announce));
  const sessions = new Map(
    config.peers.length === 0 && (snapshot.bgpSessions ?? []).length === 0
      ? []
      : peerRows(config, nodes, snapshot.bgpSessions ?? []).sessions.flatMap((r) => (r.peer ? [[`${r.node} ${r.peer}`, r] as const] : [])),
  );

  return {
    snapshot,
    config,
    configSource: source,
    configErrors: snapshot.config.errors.map(formatConfigError),
    claims,
    claimByIP: new Map(claims.map((c) => [c.address, c])),
    get allocator() {
      return (mirrored ??= mirrorClaims(config.pools, claims));
    },
    poolFor: (ip) => pools.poolFor(ip),
    services,
    byKey: new Map(services.map((s) => [s.key, s])),
    nodes,
    alive,
    agentsDown,
    layer2Context,
    layer2,
    bgpContext,
    bgp,
    sessions,
    announcedBy,
    namespaceLabels,
  };
}

/** Which advertisements select a pool, by kind; read-only (shared by every caller). */
export interface PoolAdvertisements {
  readonly layer2: readonly string[];
  readonly bgp: readonly string[];
}

/** advertisementsOf's answers per configuration and pool name: every row of a list asks again for the same few pools. */
const advertisementsCache = new WeakMap<Config, Map<string, PoolAdvertisements>>();

/** Which protocols announce a pool: the advertisements that select it, by kind. */
export function advertisementsOf(config: Config, pool: Pool): PoolAdvertisements {
  // Cached only for the configuration's own pool objects: another pool of the same name is asked afresh.
  const ours = config.pools.includes(pool);
  let byPool = advertisementsCache.get(config);
  if (!byPool) advertisementsCache.set(config, (byPool = new Map()));
  const known = ours ? byPool.get(pool.name) : undefined;
  if (known) return known;
  const selects = (ad: Parameters<typeof selectedPools>[0]) => selectedPools(ad, config.pools).some((p) => p.name === pool.name);
  const answer: PoolAdvertisements = Object.freeze({
    layer2: Object.freeze(config.l2Advertisements.filter(selects).map((a) => a.name)),
    bgp: Object.freeze(config.bgpAdvertisements.filter(selects).map((a) => a.name)),
  });
  if (ours) byPool.set(pool.name, answer);
  return answer;
}
