/**
 * BGP: which nodes advertise each Service IP, to which peers, with which route attributes.
 *
 * BGP has no single owner: every eligible node advertises (the routers spread traffic over
 * them, ECMP), so nothing here is hashed or ordered by preference. `prepareBGP` reads the
 * configuration against the nodes once (per pool and family: which nodes its BGPAdvertisements
 * select, which peers each of those nodes sends to, and the route attributes per peer);
 * `announceBGP` then decides one Service in time proportional to the nodes. The answer carries
 * its reasons as data, for the agent and for `kubectl metallb explain` alike.
 */
import { selectedPools, selectorMatches, type BGPAdvertisement, type BGPPeer, type Community, type Config } from '../config/index.js';
import { formatIP, networkOf, parseIP, type Family, type IP } from '../ip/index.js';
import { EXCLUDE_LABEL, type Alive } from './layer2.js';
import { PoolSpans } from './spans.js';
import { endpointUsable, serviceKey, type AnnounceNode, type AnnounceService, type NodeReason, type NoOwnerReason } from './model.js';

/** Why a node does not advertise an IP: layer 2's reasons (read for BGPAdvertisements), or it has no peer to send it to. */
export type BGPNodeReason =
  | NodeReason
  /**
   * Every BGPAdvertisement selecting the pool and the node is otherwise fine, but no BGPPeer
   * would receive the route from it: see the verdict's `peers`.
   */
  | 'no-peer';

/** Why a node does not send an IP's routes to one BGPPeer. */
export type BGPPeerReason =
  /** The peer's nodeSelectors do not select the node: the node has no session with it. */
  | 'not-selected'
  /** The peer's address is of the other family (a session carries its own family's routes; dualStackAddressFamily is not supported). */
  | 'other-family'
  /** Every BGPAdvertisement selecting the pool and the node lists `peers`, and none names this one. */
  | 'not-listed';

/** One peer that does not receive an IP's routes from a node, and every reason why (in the order of BGPPeerReason). */
export interface BGPPeerVerdict {
  peer: string;
  reasons: readonly BGPPeerReason[];
}

/** One node that does not advertise an IP, and every reason why (in the order of BGPNodeReason). */
export interface BGPNodeVerdict {
  node: string;
  reasons: readonly BGPNodeReason[];
  /** With `no-peer`: every BGPPeer of the configuration, by name, and why it gets nothing; otherwise empty. */
  peers: readonly BGPPeerVerdict[];
}

/** One route a node sends to one peer. */
export interface BGPRoute {
  /** The IP masked to the advertisement's aggregation length, as canonical CIDR text (203.0.113.0/24). */
  prefix: string;
  /** LOCAL_PREF, toward iBGP peers only (same ASN on both ends); absent toward eBGP peers or when no advertisement sets it. */
  localPref?: number;
  /** Communities to attach, without duplicates, in MetalLB's order (a standard community counts as the large one `asn:value:0:0`). */
  communities: readonly Community[];
  /** The same, as routers print them: "asn:value" (RFC 1997), "global:local1:local2" (RFC 8092). */
  communityText: readonly string[];
  /** The BGPAdvertisements this route comes from, by name (several when they make the same prefix). */
  advertisements: readonly string[];
}

/** The routes for one IP that a node sends to one peer. */
export interface BGPPeerRoutes {
  peer: string;
  /** The peer's ASN equals ours: LOCAL_PREF goes with the routes. */
  ibgp: boolean;
  /** One per distinct prefix, shortest prefix length first. */
  routes: readonly BGPRoute[];
}

/**
 * Nodes advertising an IP alike: each of them sends these routes to these peers (one session
 * per node and peer; the router spreads traffic over them). Nodes that the same advertisements
 * and peers select land in one group, so a Service costs as much on 1,000 such nodes as on 3.
 */
export interface BGPSpeakerGroup {
  /** By name. */
  nodes: readonly string[];
  /** The BGPAdvertisements selecting the IP's pool and these nodes, by name. */
  advertisements: readonly string[];
  /** The peers each node sends the IP's routes to, by name. */
  peers: readonly BGPPeerRoutes[];
  /** The configuration's other peers, by name, and why they get nothing from these nodes for this IP. */
  skipped: readonly BGPPeerVerdict[];
}

/** Why no node advertises an IP for a Service. */
export type BGPNoRouteReason =
  | NoOwnerReason
  /** Some node would advertise but has no peer to send the routes to: see `ineligible`. */
  | 'no-peer';

/** Who advertises one IP of a Service over BGP, and why the others do not. */
export interface BGPIP {
  /** The address, in canonical text (as written when it is not an address). */
  ip: string;
  /** The pool the configuration puts the address in. */
  pool: string | undefined;
  /** The BGPAdvertisements selecting that pool, by name. */
  advertisements: readonly string[];
  /** Every node advertising the IP, by name. */
  nodes: readonly string[];
  /** What they send, grouped by nodes sending alike; groups in the order of their first node. */
  speakers: readonly BGPSpeakerGroup[];
  /** Every other known node, by name, with all its reasons. */
  ineligible: readonly BGPNodeVerdict[];
  /** Why nobody advertises the IP; undefined exactly when `nodes` is not empty. */
  reason: BGPNoRouteReason | undefined;
}

/** Who advertises each IP of one Service over BGP. */
export interface BGPService {
  namespace: string;
  name: string;
  /** In the order of the Service's `ips`. */
  ips: readonly BGPIP[];
}

/** One route in a node's table toward one peer, over every Service: what the peer receives. */
export interface BGPAdvertised {
  node: string;
  peer: string;
  prefix: string;
  localPref?: number;
  communities: readonly Community[];
  communityText: readonly string[];
  advertisements: readonly string[];
  /** The Services whose IPs the prefix covers (`namespace/name`, sorted). */
  services: readonly string[];
}

/** What changes on the wire between two route tables (from bgpRoutes). */
export interface BGPRouteChanges {
  /** Routes a node no longer sends to a peer. */
  withdrawn: readonly BGPAdvertised[];
  /** Routes a node starts sending to a peer. */
  added: readonly BGPAdvertised[];
  /** Routes sent before and after with other attributes (LOCAL_PREF, communities): an UPDATE replaces them. */
  changed: readonly { before: BGPAdvertised; after: BGPAdvertised }[];
  /** Prefixes a peer no longer receives from any node: traffic to them stops at that router. */
  lost: readonly { peer: string; prefix: string; services: readonly string[] }[];
}

export interface BGPOptions {
  /** Advertise from nodes labelled EXCLUDE_LABEL too (MetalLB's speaker flag --ignore-exclude-lb). */
  ignoreExcludeLabel?: boolean;
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const NOBODY: readonly string[] = Object.freeze([]);
const NOTHING: readonly never[] = Object.freeze([]);

/** The order of BGPNodeReason, for merging reasons found at different times. */
const NODE_REASON_ORDER: readonly BGPNodeReason[] = ['not-selected', 'not-alive', 'network-unavailable', 'excluded', 'no-endpoint', 'no-peer'];

/** A BGPPeer read once against the nodes. */
interface PeerRead {
  name: string;
  family: Family;
  ibgp: boolean;
  /** Per node position: the peer's nodeSelectors select the node (it has a session with it). */
  selects: readonly boolean[];
}

/** A BGPAdvertisement read once against the nodes. */
interface AdvertisementRead {
  ad: BGPAdvertisement;
  selects: readonly boolean[];
}

/** A route's attributes for any IP of one pool and family: the prefix is the IP masked to `length`. */
interface RouteTemplate {
  length: number;
  localPref: number | undefined;
  communities: readonly Community[];
  communityText: readonly string[];
  advertisements: readonly string[];
}

/** What an eligible node sends for any IP of one pool and family. Nodes configured alike share one. */
interface Layout {
  advertisements: readonly string[];
  peers: readonly { peer: string; ibgp: boolean; routes: readonly RouteTemplate[] }[];
  skipped: readonly BGPPeerVerdict[];
}

/** One pool's BGP for one family, per node position. */
interface FamilyPlan {
  pool: string;
  advertisements: readonly string[];
  /** Per position: what the node sends, or undefined when the configuration or the node rules it out. */
  layouts: readonly (Layout | undefined)[];
  /** Per position: why the node is ruled out, if it is. */
  verdicts: readonly (BGPNodeVerdict | undefined)[];
  /** Per position: the verdict when, in addition, the node has no usable endpoint for the Service. */
  withoutEndpoint: readonly BGPNodeVerdict[];
  /** The ruled-out nodes, by name. */
  ineligible: readonly BGPNodeVerdict[];
  /** The nodes not ruled out, by name: the speakers under Cluster. */
  eligible: readonly string[];
  /** Those nodes grouped by layout, in the order of their first node. */
  groups: readonly { layout: Layout; nodes: readonly string[] }[];
}

/**
 * Everything about BGP that does not depend on one Service. Build it with prepareBGP; it never
 * changes afterwards.
 */
export class BGPContext {
  /** Known nodes by name, sorted. */
  readonly nodeNames: readonly string[];
  private readonly position: ReadonlyMap<string, number>;
  private readonly nodeReasonsAt: readonly (readonly NodeReason[])[];
  private readonly spans: PoolSpans<{ IPv4?: FamilyPlan; IPv6?: FamilyPlan }>;
  private readonly isAlive: (node: string) => boolean;

  /** @internal use prepareBGP. */
  constructor(
    private readonly config: Config,
    private readonly nodes: readonly AnnounceNode[],
    alive: Alive,
    private readonly options: BGPOptions,
  ) {
    const byName = new Map<string, AnnounceNode>();
    for (const n of nodes) if (!byName.has(n.name)) byName.set(n.name, n);
    const names = [...byName.keys()].sort(compareText);
    const labelsAt = names.map((name) => byName.get(name)!.labels);
    this.nodeNames = names;
    this.position = new Map(names.map((name, i) => [name, i]));
    this.isAlive = typeof alive === 'function' ? alive : (name: string): boolean => alive.has(name);
    this.nodeReasonsAt = names.map((name, i) => {
      const reasons: NodeReason[] = [];
      if (!this.isAlive(name)) reasons.push('not-alive');
      if (byName.get(name)!.networkUnavailable) reasons.push('network-unavailable');
      if (!options.ignoreExcludeLabel && Object.prototype.hasOwnProperty.call(labelsAt[i], EXCLUDE_LABEL)) reasons.push('excluded');
      return reasons;
    });

    const selects = (selectors: BGPAdvertisement['nodeSelectors']): boolean[] =>
      labelsAt.map((labels) => selectors.length === 0 || selectors.some((s) => selectorMatches(s, labels)));
    const peers: PeerRead[] = [...config.peers]
      .sort((a, b) => compareText(a.name, b.name))
      .map((p: BGPPeer) => ({ name: p.name, family: p.peerAddress.family, ibgp: p.myASN === p.peerASN, selects: selects(p.nodeSelectors) }));
    const ads: AdvertisementRead[] = config.bgpAdvertisements.map((ad) => ({ ad, selects: selects(ad.nodeSelectors) }));
    const poolsOf = config.bgpAdvertisements.map((ad) => new Set(selectedPools(ad, config.pools).map((p) => p.name)));

    this.spans = new PoolSpans(config.pools, (pool) => {
      const mine = ads.filter((_, i) => poolsOf[i]!.has(pool.name)).sort((a, b) => compareText(a.ad.name, b.ad.name));
      const plans: { IPv4?: FamilyPlan; IPv6?: FamilyPlan } = {};
      for (const family of ['IPv4', 'IPv6'] as const) {
        if (pool.ranges.some((r) => r.family === family)) plans[family] = this.planFamily(pool.name, family, mine, peers);
      }
      return plans;
    });
  }

  /** Why a node advertises no IP at all (empty: it may, where an advertisement selects it and it has a peer); undefined for an unknown node. */
  nodeReasons(node: string): readonly NodeReason[] | undefined {
    const at = this.position.get(node);
    return at === undefined ? undefined : this.nodeReasonsAt[at];
  }

  /**
   * The same configuration and nodes with `nodes` no longer alive: what the routers would see
   * once those nodes' sessions are down. Compare `bgpRoutes` of the answers of both (with
   * routeChanges) to see what would be withdrawn. Under Local, remove the endpoints on those
   * nodes from the Services too if their pods would go with them.
   */
  withoutNodes(nodes: Iterable<string>): BGPContext {
    const gone = new Set(nodes);
    return new BGPContext(this.config, this.nodes, (name) => !gone.has(name) && this.isAlive(name), this.options);
  }

  /** @internal the pool plan covering an address, as MetalLB's speaker finds the pool (pools never overlap). */
  planFor(ip: IP): FamilyPlan | undefined {
    return this.spans.find(ip)?.[ip.family];
  }

  /** @internal the node positions hosting a usable endpoint of the Service. */
  localNodes(service: AnnounceService): Set<number> {
    const local = new Set<number>();
    for (const e of service.endpoints) {
      if (e.nodeName === undefined || !endpointUsable(e)) continue;
      const at = this.position.get(e.nodeName);
      if (at !== undefined) local.add(at);
    }
    return local;
  }

  private planFamily(pool: string, family: Family, ads: readonly AdvertisementRead[], peers: readonly PeerRead[]): FamilyPlan {
    const templates = new Map<string, RouteTemplate>();
    const layouts = new Map<string, Layout>();
    const layoutAt: (Layout | undefined)[] = [];
    const verdicts: (BGPNodeVerdict | undefined)[] = [];
    const withoutEndpoint: BGPNodeVerdict[] = [];
    const ineligible: BGPNodeVerdict[] = [];
    const groups = new Map<Layout, string[]>();
    this.nodeNames.forEach((node, i) => {
      const selecting = ads.filter((a) => a.selects[i]);
      const reasons: BGPNodeReason[] = selecting.length === 0 ? ['not-selected', ...this.nodeReasonsAt[i]!] : [...this.nodeReasonsAt[i]!];
      let layout: Layout | undefined;
      let peerVerdicts: readonly BGPPeerVerdict[] = NOTHING;
      if (selecting.length > 0) {
        const sending: Layout['peers'][number][] = [];
        const skipped: BGPPeerVerdict[] = [];
        for (const peer of peers) {
          const why: BGPPeerReason[] = [];
          if (!peer.selects[i]) why.push('not-selected');
          if (peer.family !== family) why.push('other-family');
          const giving = selecting.filter((a) => a.ad.peers.length === 0 || a.ad.peers.includes(peer.name));
          if (giving.length === 0) why.push('not-listed');
          if (why.length > 0) skipped.push({ peer: peer.name, reasons: why });
          else sending.push({ peer: peer.name, ibgp: peer.ibgp, routes: routeTemplates(family, peer.ibgp, giving, templates) });
        }
        if (sending.length === 0) {
          reasons.push('no-peer');
          peerVerdicts = skipped;
        } else {
          const names = selecting.map((a) => a.ad.name);
          layout = intern(layouts, { advertisements: names, peers: sending, skipped });
        }
      }
      if (reasons.length === 0 && layout) {
        const group = groups.get(layout);
        if (group) group.push(node);
        else groups.set(layout, [node]);
        layoutAt.push(layout);
        verdicts.push(undefined);
        withoutEndpoint.push({ node, reasons: ['no-endpoint'], peers: NOTHING });
        return;
      }
      const verdict = { node, reasons, peers: peerVerdicts };
      layoutAt.push(undefined);
      verdicts.push(verdict);
      ineligible.push(verdict);
      withoutEndpoint.push({ node, reasons: withReason(reasons, 'no-endpoint'), peers: peerVerdicts });
    });
    return {
      pool,
      advertisements: ads.map((a) => a.ad.name),
      layouts: layoutAt,
      verdicts,
      withoutEndpoint,
      ineligible,
      eligible: [...groups.values()].flat().sort(compareText),
      groups: [...groups].map(([layout, nodes]) => ({ layout, nodes })),
    };
  }
}

/**
 * The routes one node sends one peer for any IP of a pool and family, from the advertisements
 * `giving` them: one per aggregation length, since advertisements with the same length make the
 * same prefix. Those are merged as MetalLB's sessions merge them (native `Set`, FRR's route
 * maps): the communities of all, and one LOCAL_PREF (the configuration parser refuses
 * advertisements that would give one prefix two, so taking the highest only matters for a
 * Config built by hand).
 */
function routeTemplates(family: Family, ibgp: boolean, giving: readonly AdvertisementRead[], interned: Map<string, RouteTemplate>): RouteTemplate[] {
  const byLength = new Map<number, BGPAdvertisement[]>();
  for (const { ad } of giving) {
    const length = family === 'IPv4' ? ad.aggregationLength : ad.aggregationLengthV6;
    const list = byLength.get(length);
    if (list) list.push(ad);
    else byLength.set(length, [ad]);
  }
  return [...byLength]
    .sort(([a], [b]) => a - b)
    .map(([length, ads]) => {
      let localPref: number | undefined;
      if (ibgp) for (const ad of ads) if (ad.localPref !== undefined && (localPref === undefined || ad.localPref > localPref)) localPref = ad.localPref;
      const communities = mergeCommunities(ads.map((ad) => ad.communities));
      const template = { length, localPref, communities, communityText: communities.map(communityText), advertisements: ads.map((ad) => ad.name) };
      return intern(interned, template);
    });
}

/** One object per distinct value, so that per-IP work can be shared by identity. */
function intern<T>(known: Map<string, T>, value: T): T {
  const key = JSON.stringify(value);
  const found = known.get(key);
  if (found) return found;
  known.set(key, value);
  return value;
}

/** `reasons` with `reason` added in its place, unless it is there already. */
function withReason(reasons: readonly BGPNodeReason[], reason: BGPNodeReason): BGPNodeReason[] {
  if (reasons.includes(reason)) return [...reasons];
  return [...reasons, reason].sort((a, b) => NODE_REASON_ORDER.indexOf(a) - NODE_REASON_ORDER.indexOf(b));
}

/** A community as routers and MetalLB print it: "asn:value", or "global:local1:local2" for a large one. */
export function communityText(c: Community): string {
  return c.kind === 'standard' ? `${c.asn}:${c.value}` : `${c.global}:${c.local1}:${c.local2}`;
}

/** MetalLB's community order: a standard community compares as the large community (asn:value):0:0. */
function communityKey(c: Community): [number, number, number, number] {
  return c.kind === 'standard' ? [c.asn * 65536 + c.value, 0, 0, 0] : [c.global, c.local1, c.local2, 1];
}

function compareCommunities(a: Community, b: Community): number {
  const ka = communityKey(a);
  const kb = communityKey(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
  return 0;
}

/** The union of community lists, without duplicates, in MetalLB's order. */
function mergeCommunities(lists: Iterable<readonly Community[]>): Community[] {
  const byText = new Map<string, Community>();
  for (const list of lists) for (const c of list) if (!byText.has(`${c.kind}:${communityText(c)}`)) byText.set(`${c.kind}:${communityText(c)}`, c);
  return [...byText.values()].sort(compareCommunities);
}

/**
 * What does not depend on one Service: per pool and family, which nodes its BGPAdvertisements
 * select (nodeSelectors, union over advertisements), which of those are alive, without
 * NetworkUnavailable and not labelled EXCLUDE_LABEL, and the peers and route attributes of
 * each. Call it again when the configuration, the nodes (names, labels, NetworkUnavailable) or
 * `alive` change.
 */
export function prepareBGP(config: Config, nodes: readonly AnnounceNode[], alive: Alive, options: BGPOptions = {}): BGPContext {
  return new BGPContext(config, nodes, alive, options);
}

/**
 * Who advertises each IP of one Service over BGP, to which peers, with which routes, and why
 * every other node does not.
 *
 * Per IP: its pool is found by address; the nodes are those a BGPAdvertisement of the pool
 * selects, alive, without NetworkUnavailable, not excluded, with at least one peer to send to;
 * the Service needs a usable endpoint (ready, or serving and not terminating) anywhere under
 * externalTrafficPolicy Cluster, on the node itself under Local. Each such node sends, to each
 * BGPPeer selecting it (of the IP's family, and named by the advertisement when it names
 * peers), one route per advertisement, merged per prefix.
 */
export function announceBGP(ctx: BGPContext, service: AnnounceService): BGPService {
  const usable = service.endpoints.some(endpointUsable);
  let local: Set<number> | undefined;
  const ips = service.ips.map((text): BGPIP => {
    const parsed = parseIP(text);
    const plan = parsed.ok ? ctx.planFor(parsed.value) : undefined;
    if (!parsed.ok || !plan) {
      return { ip: parsed.ok ? formatIP(parsed.value) : text, pool: undefined, advertisements: NOBODY, nodes: NOBODY, speakers: NOTHING, ineligible: NOTHING, reason: 'no-pool' };
    }
    const address = parsed.value;
    const common = { ip: formatIP(address), pool: plan.pool, advertisements: plan.advertisements };
    if (plan.advertisements.length === 0) return { ...common, nodes: NOBODY, speakers: NOTHING, ineligible: plan.ineligible, reason: 'no-advertisement' };
    if (!usable) return { ...common, nodes: NOBODY, speakers: NOTHING, ineligible: plan.withoutEndpoint, reason: 'no-ready-endpoint' };

    let nodes = plan.eligible;
    let groups = plan.groups;
    let ineligible = plan.ineligible;
    if (service.trafficPolicy === 'Local') {
      local ??= ctx.localNodes(service);
      const here = new Map<Layout, string[]>();
      const out: BGPNodeVerdict[] = [];
      plan.layouts.forEach((layout, at) => {
        const hosting = local!.has(at);
        if (!layout || !hosting) {
          out.push(hosting ? plan.verdicts[at]! : plan.withoutEndpoint[at]!);
          return;
        }
        const group = here.get(layout);
        if (group) group.push(ctx.nodeNames[at]!);
        else here.set(layout, [ctx.nodeNames[at]!]);
      });
      groups = [...here].map(([layout, names]) => ({ layout, nodes: names }));
      nodes = groups.length === 1 ? groups[0]!.nodes : groups.flatMap((g) => g.nodes).sort(compareText);
      ineligible = out;
    }
    if (nodes.length === 0) {
      // Someone ruled out for want of a peer alone: the peers are what the operator should look at.
      const peerless = ineligible.some((v) => v.reasons.length === 1 && v.reasons[0] === 'no-peer');
      return { ...common, nodes, speakers: NOTHING, ineligible, reason: peerless ? 'no-peer' : 'no-eligible-node' };
    }

    // The same template gives the same route for this IP, whichever nodes and peers share it.
    const prefixes = new Map<number, string>();
    const routes = new Map<RouteTemplate, BGPRoute>();
    const routeOf = (t: RouteTemplate): BGPRoute => {
      let route = routes.get(t);
      if (!route) {
        let prefix = prefixes.get(t.length);
        if (prefix === undefined) {
          prefix = networkOf(address, t.length).text;
          prefixes.set(t.length, prefix);
        }
        route = { prefix, communities: t.communities, communityText: t.communityText, advertisements: t.advertisements };
        if (t.localPref !== undefined) route.localPref = t.localPref;
        routes.set(t, route);
      }
      return route;
    };
    const speakers = groups.map(({ layout, nodes: names }): BGPSpeakerGroup => ({
      nodes: names,
      advertisements: layout.advertisements,
      peers: layout.peers.map((p) => ({ peer: p.peer, ibgp: p.ibgp, routes: p.routes.map(routeOf) })),
      skipped: layout.skipped,
    }));
    return { ...common, nodes, speakers, ineligible, reason: undefined };
  });
  return { namespace: service.namespace, name: service.name, ips };
}

/** Every Service at once (for `kubectl metallb` and full recomputes). */
export function announceAllBGP(ctx: BGPContext, services: Iterable<AnnounceService>): BGPService[] {
  return Array.from(services, (s) => announceBGP(ctx, s));
}

/** Which routes bgpRoutes gathers: those from one node, or to one peer, or both. */
export interface BGPRouteFilter {
  node?: string;
  peer?: string;
}

/** The routes one node sends one peer, as gathered: route k came with Service services[k]. */
interface Gathered {
  routes: BGPRoute[];
  services: string[];
}

/**
 * Every route each node sends to each peer, over the answers for many Services: one entry per
 * (node, peer, prefix), sorted by node, peer, then prefix in address order (IPv4 first, shorter
 * first). Services whose IPs fall in one aggregated prefix give one route, carrying the
 * communities of all (as MetalLB's sessions merge them). `filter` keeps one node's or one
 * peer's routes: the agent on node N asks for `{ node: N }`.
 */
export function bgpRoutes(answers: Iterable<BGPService>, filter: BGPRouteFilter = {}): BGPAdvertised[] {
  const { node: onlyNode, peer: onlyPeer } = filter;
  const table = new Map<string, Map<string, Gathered>>();
  const rank = new Map<string, number>();
  for (const s of answers) {
    const key = serviceKey(s);
    for (const ip of s.ips) {
      for (const group of ip.speakers) {
        const nodes = onlyNode === undefined ? group.nodes : includesSorted(group.nodes, onlyNode) ? [onlyNode] : NOBODY;
        if (nodes.length === 0) continue;
        for (const p of group.peers) {
          if (onlyPeer !== undefined && p.peer !== onlyPeer) continue;
          for (const r of p.routes) rank.set(r.prefix, 0);
          for (const node of nodes) {
            let byPeer = table.get(node);
            if (!byPeer) {
              byPeer = new Map();
              table.set(node, byPeer);
            }
            let gathered = byPeer.get(p.peer);
            if (!gathered) {
              gathered = { routes: [], services: [] };
              byPeer.set(p.peer, gathered);
            }
            for (const r of p.routes) {
              gathered.routes.push(r);
              gathered.services.push(key);
            }
          }
        }
      }
    }
  }
  // Every node sends much the same prefixes: sort them once, then each node's list by number.
  [...rank.keys()].sort(prefixOrder()).forEach((prefix, i) => rank.set(prefix, i));
  const out: BGPAdvertised[] = [];
  for (const node of [...table.keys()].sort(compareText)) {
    const byPeer = table.get(node)!;
    for (const peer of [...byPeer.keys()].sort(compareText)) {
      const { routes, services } = byPeer.get(peer)!;
      // rank * n + position is an exact double (both stay far below 2^26) and sorts without a comparator.
      const n = routes.length;
      const keys = new Float64Array(n);
      for (let k = 0; k < n; k++) keys[k] = rank.get(routes[k]!.prefix)! * n + k;
      keys.sort();
      for (let i = 0; i < n;) {
        const prefixRank = Math.floor(keys[i]! / n);
        let j = i + 1;
        while (j < n && Math.floor(keys[j]! / n) === prefixRank) j++;
        const same = j === i + 1 ? [keys[i]! % n] : Array.from(keys.subarray(i, j), (key) => key % n);
        const merged = same.map((k) => routes[k]!);
        out.push(
          mergeRoutes(
            node,
            peer,
            merged,
            same.map((k) => services[k]!),
          ),
        );
        i = j;
      }
    }
  }
  return out;
}

/**
 * One route from the routes a node sends a peer for one prefix (one per Service IP and
 * advertisement set): the communities and advertisements of all, the highest LOCAL_PREF.
 */
function mergeRoutes(node: string, peer: string, routes: readonly BGPRoute[], services: readonly string[]): BGPAdvertised {
  const first = routes[0]!;
  let { localPref, communities, communityText: texts, advertisements } = first;
  if (routes.length > 1) {
    // Routes made from one template share its lists, so identity settles the common case.
    const lists = new Set<readonly Community[]>();
    const names = new Set<string>();
    for (const r of routes) {
      lists.add(r.communities);
      for (const a of r.advertisements) names.add(a);
      if (r.localPref !== undefined && (localPref === undefined || r.localPref > localPref)) localPref = r.localPref;
    }
    if (lists.size > 1) {
      communities = mergeCommunities(lists);
      texts = communities.map(communityText);
    }
    if (names.size > advertisements.length) advertisements = [...names].sort(compareText);
    services = [...new Set(services)].sort(compareText);
  }
  const route: BGPAdvertised = { node, peer, prefix: first.prefix, communities, communityText: texts, advertisements, services };
  if (localPref !== undefined) route.localPref = localPref;
  return route;
}

/** Whether `sorted` (by compareText) holds `name`. */
function includesSorted(sorted: readonly string[], name: string): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compareText(sorted[mid]!, name);
    if (c === 0) return true;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** What `node` sends to `peer` over the answers for many Services: bgpRoutes for that pair. */
export function routesTo(node: string, peer: string, answers: Iterable<BGPService>): BGPAdvertised[] {
  return bgpRoutes(answers, { node, peer });
}

/** Prefixes in address order (IPv4 first), then shorter first; each prefix read once. */
function prefixOrder(): (a: string, b: string) => number {
  const keys = new Map<string, [number, bigint, number]>();
  const keyOf = (prefix: string): [number, bigint, number] => {
    let k = keys.get(prefix);
    if (!k) {
      const slash = prefix.lastIndexOf('/');
      const ip = parseIP(prefix.slice(0, slash));
      k = [ip.ok && ip.value.family === 'IPv6' ? 1 : 0, ip.ok ? ip.value.value : 0n, Number(prefix.slice(slash + 1))];
      keys.set(prefix, k);
    }
    return k;
  };
  return (a, b) => {
    const [fa, va, la] = keyOf(a);
    const [fb, vb, lb] = keyOf(b);
    return fa - fb || (va < vb ? -1 : va > vb ? 1 : 0) || la - lb;
  };
}

/**
 * What changes between two route tables (bgpRoutes), e.g. before and after a node goes away:
 *
 *     const after = announceAllBGP(ctx.withoutNodes(['node-a']), services);
 *     routeChanges(bgpRoutes(before), bgpRoutes(after))
 *
 * `withdrawn`, `added` and `changed` keep the tables' order; `lost` is by peer, then prefix.
 */
export function routeChanges(before: readonly BGPAdvertised[], after: readonly BGPAdvertised[]): BGPRouteChanges {
  const id = (r: BGPAdvertised): string => `${r.node}\n${r.peer}\n${r.prefix}`;
  const reach = (r: BGPAdvertised): string => `${r.peer}\n${r.prefix}`;
  const now = new Map(after.map((r) => [id(r), r]));
  const then = new Set(before.map(id));
  const reachable = new Set(after.map(reach));
  const withdrawn: BGPAdvertised[] = [];
  const changed: { before: BGPAdvertised; after: BGPAdvertised }[] = [];
  const lost = new Map<string, { peer: string; prefix: string; services: Set<string> }>();
  const comparePrefixes = prefixOrder();
  for (const r of before) {
    const next = now.get(id(r));
    if (next === undefined) {
      withdrawn.push(r);
      if (!reachable.has(reach(r))) {
        let entry = lost.get(reach(r));
        if (!entry) {
          entry = { peer: r.peer, prefix: r.prefix, services: new Set() };
          lost.set(reach(r), entry);
        }
        for (const s of r.services) entry.services.add(s);
      }
    } else if (next.localPref !== r.localPref || next.communityText.join(' ') !== r.communityText.join(' ')) {
      changed.push({ before: r, after: next });
    }
  }
  return {
    withdrawn,
    added: after.filter((r) => !then.has(id(r))),
    changed,
    lost: [...lost.values()]
      .sort((a, b) => compareText(a.peer, b.peer) || comparePrefixes(a.prefix, b.prefix))
      .map((e) => ({ peer: e.peer, prefix: e.prefix, services: [...e.services].sort(compareText) })),
  };
}
