/**
 * Layer 2: which node answers ARP / NDP for each Service IP.
 *
 * `prepareLayer2` does once what depends only on the configuration, the nodes and who is alive
 * (which nodes each pool's L2Advertisements let announce, with their weights and interfaces);
 * `announceLayer2` then decides one Service in time proportional to the nodes, so an agent pays
 * for one Service per Service or EndpointSlice event and redoes everything only when the
 * configuration, the nodes or the membership change. Every agent, and `kubectl metallb`,
 * computes the same answer from the same inputs, whatever order they come in.
 */
import * as crypto from 'node:crypto';
import { selectedPools, selectorMatches, type Config, type L2Advertisement } from '../config/index.js';
import { formatIP, parseIP, type IP } from '../ip/index.js';
import { PoolSpans } from './spans.js';
import {
  endpointUsable,
  serviceKey,
  type AnnounceNode,
  type AnnounceService,
  type Layer2Candidate,
  type Layer2IP,
  type Layer2Service,
  type NodeAnnouncement,
  type NodeReason,
  type NodeVerdict,
} from './model.js';

/** Nodes with this label never announce (Kubernetes' well-known label; MetalLB honours it too). */
export const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** Which nodes are alive: a set of names, or a test on a name. */
export type Alive = ReadonlySet<string> | ((node: string) => boolean);

/** The Services holding an IP (the IP as written in the Services' `ips`), for sharing. */
export type SharingLookup = (ip: string) => Iterable<AnnounceService> | undefined;

export interface Layer2Options {
  /** Announce from nodes labelled EXCLUDE_LABEL too (MetalLB's speaker flag --ignore-exclude-lb). */
  ignoreExcludeLabel?: boolean;
  /**
   * The context this one replaces. The hash order of the nodes for an address depends only on
   * the node names, so when those are unchanged (a membership, label or configuration change)
   * the new context reuses the orders already computed instead of hashing every node again;
   * when a few nodes came or went, it carries the orders over and hashes only the newcomers.
   */
  previous?: Layer2Context;
}

/** sha256(node + "#" + anchor) in hex; lower announces first among equal weights (MetalLB's order). */
export function layer2Hash(node: string, anchor: string): string {
  return sha256hex(`${node}#${anchor}`);
}

// crypto.hash (one call, no Hash object) is 2-3x faster; Node before 20.12 lacks it.
const sha256hex: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text).digest('hex');

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** An address read once: its value (pool lookup, anchor order) and canonical text (hash, keys). */
interface Address {
  ip: IP;
  text: string;
}

/** A node's position among the context's nodes sorted by name. */
type Order = Uint16Array | Uint32Array;

/**
 * A bounded cache of what was used lately, with no bookkeeping on a hit: entries go into
 * `young`; when it holds `half` entries it becomes `old` and the previous old generation is
 * dropped. A hit in `old` moves the entry back into `young`.
 */
class Recent<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  constructor(private readonly half: number) {}

  get(key: K): V | undefined {
    const value = this.young.get(key);
    if (value !== undefined) return value;
    const aged = this.old.get(key);
    if (aged !== undefined) this.set(key, aged);
    return aged;
  }

  set(key: K, value: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}

/** Node positions packed under a hash prefix in one double: 40 bits of hash, 13 of position. */
const PACK = 8192;

/**
 * The positions of `names` (sorted) ordered by sha256(name + "#" + anchor), lowest first (hex
 * order is byte order). The hashes are compared by their first `prefixDigits` hex digits as
 * numbers (a typed-array sort, no comparator), and only nodes whose prefixes are equal by the
 * whole hash. Exported for tests, which shorten the prefix to force that path.
 */
export function hashOrder(names: readonly string[], anchor: string, prefixDigits = 10): Order {
  const n = names.length;
  const order: Order = n < 65536 ? new Uint16Array(n) : new Uint32Array(n);
  const hashes = names.map((name) => layer2Hash(name, anchor));
  const byWholeHash = (a: number, b: number): number => compareText(hashes[a]!, hashes[b]!) || a - b;
  if (n > PACK) {
    order.set(Array.from(names, (_, i) => i).sort(byWholeHash));
    return order;
  }
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = parseInt(hashes[i]!.slice(0, prefixDigits), 16) * PACK + i;
  keys.sort();
  for (let i = 0; i < n; i++) order[i] = keys[i]! % PACK;
  // Equal prefixes (at 100 nodes, about one address in 10^8 has a pair): by the whole hash.
  for (let i = 1; i < n; i++) {
    const prefix = Math.floor(keys[i]! / PACK);
    if (prefix !== Math.floor(keys[i - 1]! / PACK)) continue;
    let end = i + 1;
    while (end < n && Math.floor(keys[end]! / PACK) === prefix) end++;
    order.set(Array.from(order.subarray(i - 1, end)).sort(byWholeHash), i - 1);
    i = end - 1;
  }
  return order;
}

/**
 * Hash orders of the nodes per anchor address, for one list of node names. When the names
 * changed by a few nodes, an order the previous list had is carried over: nodes that left are
 * dropped and each node that came is placed by binary search, hashing about log2(n) nodes
 * instead of all of them.
 */
class Orders {
  readonly memo: Recent<string, Order>;
  private readonly carried: { memo: Recent<string, Order>; to: Int32Array; added: readonly number[] } | undefined;

  constructor(
    readonly names: readonly string[],
    previous?: Orders,
  ) {
    // Each generation holds up to 32 MiB of orders: 16k addresses at 1,000 nodes, 127k at 100.
    // All the addresses in use must fit in one, or every full recomputation hashes again.
    this.memo = new Recent(Math.max(4096, Math.floor((32 << 20) / (names.length * 2 + 64))));
    if (previous && previous.names.length > 0) {
      const position = new Map(names.map((name, i) => [name, i]));
      const before = new Set(previous.names);
      const added = names.flatMap((name, i) => (before.has(name) ? [] : [i]));
      if (added.length * 2 * Math.log2(names.length + 1) < names.length) {
        this.carried = { memo: previous.memo, to: Int32Array.from(previous.names, (name) => position.get(name) ?? -1), added };
      }
    }
  }

  of(anchor: string): Order {
    const known = this.memo.get(anchor);
    if (known) return known;
    const order = this.carry(anchor) ?? hashOrder(this.names, anchor);
    this.memo.set(anchor, order);
    return order;
  }

  private carry(anchor: string): Order | undefined {
    const carried = this.carried;
    const before = carried?.memo.get(anchor);
    if (!carried || !before) return undefined;
    const positions: number[] = [];
    for (const old of before) {
      const now = carried.to[old]!;
      if (now >= 0) positions.push(now);
    }
    const hashes = new Map<number, string>();
    const hashOf = (at: number): string => {
      let h = hashes.get(at);
      if (h === undefined) {
        h = layer2Hash(this.names[at]!, anchor);
        hashes.set(at, h);
      }
      return h;
    };
    for (const at of carried.added) {
      let lo = 0;
      let hi = positions.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const other = positions[mid]!;
        if ((compareText(hashOf(other), hashOf(at)) || other - at) < 0) lo = mid + 1;
        else hi = mid;
      }
      positions.splice(lo, 0, at);
    }
    return this.names.length < 65536 ? Uint16Array.from(positions) : Uint32Array.from(positions);
  }
}

/** What one pool's L2Advertisements allow, per node. */
interface PoolPlan {
  name: string;
  advertisements: readonly string[];
  /** Per node position: the node as a candidate, or undefined when it is ruled out for this pool. */
  candidates: readonly (Layer2Candidate | undefined)[];
  /** Per node position: why it is ruled out for this pool, if it is. */
  verdicts: readonly (NodeVerdict | undefined)[];
  /** The ruled-out nodes, by name. */
  ineligible: readonly NodeVerdict[];
  /** Some candidate has a weight: candidates need sorting by it. */
  weighted: boolean;
}

/** One L2Advertisement read against the nodes, per node position. */
interface AdvertisementPlan {
  name: string;
  selects: readonly boolean[];
  weights: readonly number[];
  interfaces: readonly string[];
}

/**
 * Everything about layer 2 that does not depend on one Service. Build it with prepareLayer2;
 * it never changes afterwards (its caches of hashes and parsed addresses aside, which do not
 * change any answer).
 */
export class Layer2Context {
  /** Known nodes by name, sorted. */
  readonly nodeNames: readonly string[];
  private readonly position: ReadonlyMap<string, number>;
  /** Reasons that hold for every pool (not alive, network unavailable, excluded), per position. */
  private readonly nodeReasonsAt: readonly (readonly NodeReason[])[];
  /** Per position: the verdict of an otherwise eligible node without a local endpoint. */
  private readonly noEndpoint: readonly NodeVerdict[];
  private readonly spans: PoolSpans<PoolPlan>;
  /** @internal shared with the next context while the node names stay the same. */
  readonly orders: Orders;
  /** @internal parsed addresses; shared with every later context. */
  readonly addresses: Recent<string, Address | null>;

  /** @internal use prepareLayer2. */
  constructor(config: Config, nodes: readonly AnnounceNode[], alive: Alive, options: Layer2Options) {
    const byName = new Map<string, AnnounceNode>();
    for (const n of nodes) if (!byName.has(n.name)) byName.set(n.name, n);
    const names = [...byName.keys()].sort(compareText);
    this.nodeNames = names;
    this.position = new Map(names.map((name, i) => [name, i]));
    const isAlive = typeof alive === 'function' ? alive : (name: string): boolean => alive.has(name);
    this.nodeReasonsAt = names.map((name) => {
      const node = byName.get(name)!;
      const reasons: NodeReason[] = [];
      if (!isAlive(name)) reasons.push('not-alive');
      if (node.networkUnavailable) reasons.push('network-unavailable');
      if (!options.ignoreExcludeLabel && Object.prototype.hasOwnProperty.call(node.labels, EXCLUDE_LABEL)) reasons.push('excluded');
      return reasons;
    });
    this.noEndpoint = names.map((node) => ({ node, reasons: ['no-endpoint'] }));

    const prev = options.previous;
    this.orders = prev && sameNames(prev.orders.names, names) ? prev.orders : new Orders(names, prev?.orders);
    this.addresses = prev?.addresses ?? new Recent(32768);

    const ads = config.l2Advertisements.map((ad) => this.readAdvertisement(ad, byName));
    const poolsOf = config.l2Advertisements.map((ad) => new Set(selectedPools(ad, config.pools).map((p) => p.name)));
    this.spans = new PoolSpans(config.pools, (pool) =>
      this.planPool(
        pool.name,
        ads.filter((_, i) => poolsOf[i]!.has(pool.name)),
      ),
    );
  }

  /** Why a node may announce no IP at all (empty: it may, where an advertisement selects it); undefined for an unknown node. */
  nodeReasons(node: string): readonly NodeReason[] | undefined {
    const at = this.position.get(node);
    return at === undefined ? undefined : this.nodeReasonsAt[at];
  }

  /** @internal */
  positionOf(node: string): number | undefined {
    return this.position.get(node);
  }

  /** @internal the verdict of an eligible node without a local endpoint. */
  withoutEndpoint(at: number): NodeVerdict {
    return this.noEndpoint[at]!;
  }

  /** @internal the address read once, or null when it is not one. */
  address(text: string): Address | null {
    const known = this.addresses.get(text);
    if (known !== undefined) return known;
    const parsed = parseIP(text);
    const value = parsed.ok ? { ip: parsed.value, text: formatIP(parsed.value) } : null;
    this.addresses.set(text, value);
    return value;
  }

  /** @internal the pool holding an address, as MetalLB's speaker finds it (pools never overlap). */
  planFor(ip: IP): PoolPlan | undefined {
    return this.spans.find(ip);
  }

  private readAdvertisement(ad: L2Advertisement, byName: ReadonlyMap<string, AnnounceNode>): AdvertisementPlan {
    const selects: boolean[] = [];
    const weights: number[] = [];
    for (const name of this.nodeNames) {
      const labels = byName.get(name)!.labels;
      selects.push(ad.nodeSelectors.length === 0 || ad.nodeSelectors.some((s) => selectorMatches(s, labels)));
      let weight = 0;
      for (const p of ad.preferredNodeSelectors) if (selectorMatches(p.preference, labels)) weight += p.weight;
      weights.push(weight);
    }
    return { name: ad.name, selects, weights, interfaces: ad.interfaces };
  }

  private planPool(name: string, ads: readonly AdvertisementPlan[]): PoolPlan {
    const candidates: (Layer2Candidate | undefined)[] = [];
    const verdicts: (NodeVerdict | undefined)[] = [];
    const ineligible: NodeVerdict[] = [];
    let weighted = false;
    this.nodeNames.forEach((node, i) => {
      const base = this.nodeReasonsAt[i]!;
      const selecting = ads.filter((ad) => ad.selects[i]);
      if (selecting.length === 0 || base.length > 0) {
        const verdict = { node, reasons: selecting.length === 0 ? ['not-selected' as const, ...base] : base };
        verdicts.push(verdict);
        ineligible.push(verdict);
        candidates.push(undefined);
        return;
      }
      const weight = Math.max(...selecting.map((ad) => ad.weights[i]!));
      // Any advertisement without an interface list lets the node answer everywhere (MetalLB's AllInterfaces).
      const everywhere = selecting.some((ad) => ad.interfaces.length === 0);
      const interfaces = everywhere ? [] : [...new Set(selecting.flatMap((ad) => ad.interfaces))].sort(compareText);
      if (weight !== 0) weighted = true;
      candidates.push({ node, weight, interfaces });
      verdicts.push(undefined);
    });
    return { name, advertisements: ads.map((ad) => ad.name).sort(compareText), candidates, verdicts, ineligible, weighted };
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

/**
 * What does not depend on one Service: per pool, which nodes its L2Advertisements let announce
 * (nodeSelectors, union over advertisements), which of those are alive, without
 * NetworkUnavailable and not labelled EXCLUDE_LABEL, their weights and interfaces. Call it
 * again when the configuration, the nodes (names, labels, NetworkUnavailable) or `alive`
 * change, passing the context it replaces.
 */
export function prepareLayer2(config: Config, nodes: readonly AnnounceNode[], alive: Alive, options: Layer2Options = {}): Layer2Context {
  return new Layer2Context(config, nodes, alive, options);
}

/**
 * The Services linked to `service` by shared addresses, directly or through others, `service`
 * first. When one of them changes, all of their answers may change: recompute each.
 */
export function sharingGroup(service: AnnounceService, sharing?: SharingLookup): AnnounceService[] {
  if (!sharing || !sharesAny(service, sharing)) return [service];
  // The lookup may still hold an older version of `service`: the one given wins.
  const group = new Map<string, AnnounceService>([[serviceKey(service), service]]);
  const seen = new Set<string>();
  const queue = [service];
  for (let s = queue.pop(); s !== undefined; s = queue.pop()) {
    for (const ip of s.ips) {
      if (seen.has(ip)) continue;
      seen.add(ip);
      for (const other of sharing(ip) ?? []) {
        const key = serviceKey(other);
        if (group.has(key)) continue;
        group.set(key, other);
        queue.push(other);
      }
    }
  }
  return [...group.values()];
}

/** Whether another Service holds one of the addresses (most Services share none: no allocation then). */
function sharesAny(service: AnnounceService, sharing: SharingLookup): boolean {
  for (const ip of service.ips) {
    for (const other of sharing(ip) ?? []) {
      if (other.name !== service.name || other.namespace !== service.namespace) return true;
    }
  }
  return false;
}

const NOBODY: readonly string[] = Object.freeze([]);
const NOTHING: readonly never[] = Object.freeze([]);

/**
 * Who announces each IP of one Service, with the ordered candidates and why every other node
 * may not. `sharing` finds the other Services holding an address (ServicesByIP.withIP); without
 * it the Service is taken to share nothing.
 *
 * Per IP: the nodes are those an L2Advertisement of the IP's pool selects, alive, without
 * NetworkUnavailable, not excluded; under externalTrafficPolicy Local only those hosting a
 * usable endpoint (ready, or serving and not terminating) of a Service holding the IP. They are
 * ordered by weight, then by sha256(node + "#" + anchor) where the anchor is the lowest address
 * of the sharing group, so all of a group's addresses (both families of a dual-stack Service,
 * and every Service sharing them) follow one order, and Services sharing an address always agree
 * on its owner. The Service itself is announced only while it has a usable endpoint somewhere.
 */
export function announceLayer2(ctx: Layer2Context, service: AnnounceService, sharing?: SharingLookup): Layer2Service {
  const group = sharingGroup(service, sharing);
  const own = service.ips.map((text) => ctx.address(text));
  const addresses = group.length === 1 ? [own] : group.map((s) => (s === service ? own : s.ips.map((text) => ctx.address(text))));
  let anchor: Address | undefined;
  for (const list of addresses) {
    for (const a of list) if (a && (anchor === undefined || lower(a.ip, anchor.ip))) anchor = a;
  }
  const usable = service.endpoints.some(endpointUsable);
  const ips: Layer2IP[] = [];
  own.forEach((a, k) => {
    const ip = a?.text ?? service.ips[k]!;
    let holders: readonly AnnounceService[] = [service];
    let sharedWith = NOBODY;
    if (a && group.length > 1) {
      holders = group.filter((_, g) => addresses[g]!.some((x) => x?.text === ip));
      sharedWith = holders
        .filter((s) => s !== service)
        .map(serviceKey)
        .sort(compareText);
    }
    const plan = a ? ctx.planFor(a.ip) : undefined;
    const pool = plan?.name;
    const advertisements = plan?.advertisements ?? NOBODY;
    const anchorText = anchor?.text ?? ip;
    if (!a || !plan || !anchor) {
      ips.push({ ip, pool, advertisements, anchor: anchorText, candidates: NOTHING, ineligible: NOTHING, sharedWith, owner: undefined, reason: 'no-pool' });
      return;
    }
    if (plan.advertisements.length === 0) {
      ips.push({ ip, pool, advertisements, anchor: anchorText, candidates: NOTHING, ineligible: plan.ineligible, sharedWith, owner: undefined, reason: 'no-advertisement' });
      return;
    }
    const { candidates, ineligible } = rank(ctx, plan, anchorText, holders);
    const owner = usable ? candidates[0]?.node : undefined;
    if (owner !== undefined) ips.push({ ip, pool, advertisements, anchor: anchorText, candidates, ineligible, sharedWith, owner, reason: undefined });
    else
      ips.push({ ip, pool, advertisements, anchor: anchorText, candidates, ineligible, sharedWith, owner: undefined, reason: usable ? 'no-eligible-node' : 'no-ready-endpoint' });
  });
  return { namespace: service.namespace, name: service.name, ips };
}

/** IPv4 before IPv6, then by value. */
function lower(a: IP, b: IP): boolean {
  if (a.family !== b.family) return a.family === 'IPv4';
  return a.value < b.value;
}

/**
 * The candidates for an address held by `holders`, best first, and the nodes ruled out. The
 * holders that can take traffic decide the policy (all of them when none can): one of them
 * under Cluster makes every eligible node a candidate; under Local only the nodes hosting one
 * of their usable endpoints are. Sharing requires one policy, so mixing is a transient state.
 */
function rank(ctx: Layer2Context, plan: PoolPlan, anchor: string, holders: readonly AnnounceService[]): { candidates: Layer2Candidate[]; ineligible: readonly NodeVerdict[] } {
  let serving = holders;
  if (holders.length > 1) {
    const some = holders.filter((s) => s.endpoints.some(endpointUsable));
    if (some.length > 0) serving = some;
  }
  let local: Set<number> | undefined;
  if (!serving.some((s) => s.trafficPolicy === 'Cluster')) {
    local = new Set();
    for (const s of serving) {
      for (const e of s.endpoints) {
        if (e.nodeName === undefined || !endpointUsable(e)) continue;
        const at = ctx.positionOf(e.nodeName);
        if (at !== undefined) local.add(at);
      }
    }
  }
  const candidates: Layer2Candidate[] = [];
  for (const at of ctx.orders.of(anchor)) {
    const c = plan.candidates[at];
    if (c && (local === undefined || local.has(at))) candidates.push(c);
  }
  // Stable: equal weights keep the hash order.
  if (plan.weighted && candidates.length > 1) candidates.sort((a, b) => b.weight - a.weight);
  if (local === undefined) return { candidates, ineligible: plan.ineligible };
  const ineligible: NodeVerdict[] = [];
  for (let at = 0; at < ctx.nodeNames.length; at++) {
    const verdict = plan.verdicts[at];
    if (verdict) ineligible.push(verdict);
    else if (!local.has(at)) ineligible.push(ctx.withoutEndpoint(at));
  }
  return { candidates, ineligible };
}

/** Every Service at once, sharing worked out among them (for `kubectl metallb` and full recomputes). */
export function announceAll(ctx: Layer2Context, services: Iterable<AnnounceService>): Layer2Service[] {
  const list = [...services];
  const lookup = sharingLookup(ctx, list);
  return list.map((s) => announceLayer2(ctx, s, lookup));
}

/** Which of `services` hold each address, for announceLayer2 on any one of them. */
export function sharingLookup(ctx: Layer2Context, services: Iterable<AnnounceService>): SharingLookup {
  // Keyed by canonical text, so that addresses written differently still meet.
  const holders = new Map<string, AnnounceService[]>();
  for (const s of services) {
    for (const ip of s.ips) {
      const key = ctx.address(ip)?.text ?? ip;
      const known = holders.get(key);
      if (known) known.push(s);
      else holders.set(key, [s]);
    }
  }
  return (ip: string): AnnounceService[] | undefined => holders.get(ctx.address(ip)?.text ?? ip);
}

/**
 * What `node` answers for, from the answers for every Service: each IP it owns for at least
 * one Service, its interfaces, and those Services. Sorted by IP text.
 */
export function announcedBy(node: string, services: Iterable<Layer2Service>): NodeAnnouncement[] {
  const byIP = new Map<string, { ip: string; interfaces: readonly string[]; services: string[] }>();
  for (const s of services) {
    for (const ip of s.ips) {
      if (ip.owner !== node) continue;
      let entry = byIP.get(ip.ip);
      if (!entry) {
        entry = { ip: ip.ip, interfaces: ip.candidates[0]!.interfaces, services: [] };
        byIP.set(ip.ip, entry);
      }
      entry.services.push(serviceKey(s));
    }
  }
  return [...byIP.values()].map((e) => ({ ...e, services: e.services.sort(compareText) })).sort((a, b) => compareText(a.ip, b.ip));
}

/**
 * Services by the addresses they hold, kept current as Services come and go; its `withIP` is
 * the SharingLookup an agent passes to announceLayer2. Addresses are keyed as written in
 * `ips` (kube.ts writes canonical text).
 */
export class ServicesByIP {
  private readonly byKey = new Map<string, AnnounceService>();
  private readonly byIP = new Map<string, Map<string, AnnounceService>>();

  /** Add or replace a Service (by namespace/name); returns the version it replaced. */
  set(service: AnnounceService): AnnounceService | undefined {
    const key = serviceKey(service);
    const old = this.remove(key);
    this.byKey.set(key, service);
    for (const ip of service.ips) {
      let holders = this.byIP.get(ip);
      if (!holders) {
        holders = new Map();
        this.byIP.set(ip, holders);
      }
      holders.set(key, service);
    }
    return old;
  }

  /** Remove a Service; returns it, if it was there. */
  delete(namespace: string, name: string): AnnounceService | undefined {
    return this.remove(serviceKey({ namespace, name }));
  }

  get(namespace: string, name: string): AnnounceService | undefined {
    return this.byKey.get(serviceKey({ namespace, name }));
  }

  /** The Services holding `ip`. */
  readonly withIP = (ip: string): Iterable<AnnounceService> | undefined => this.byIP.get(ip)?.values();

  values(): IterableIterator<AnnounceService> {
    return this.byKey.values();
  }

  get size(): number {
    return this.byKey.size;
  }

  private remove(key: string): AnnounceService | undefined {
    const old = this.byKey.get(key);
    if (!old) return undefined;
    this.byKey.delete(key);
    for (const ip of old.ips) {
      const holders = this.byIP.get(ip);
      holders?.delete(key);
      if (holders?.size === 0) this.byIP.delete(ip);
    }
    return old;
  }
}
