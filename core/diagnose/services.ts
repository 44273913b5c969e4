/**
 * Every LoadBalancer Service in one row, and the one-word state with its reason, decided with
 * core's allocator (what the controller would do) and core/announce (who announces).
 */
import type { BGPIP, Layer2IP, Layer2Service } from '../announce/index.js';
import { parseIP } from '../ip/index.js';
import { advertisementsOf, type Analysis, type LBService } from './analyze.js';
import type { ServiceState } from './model.js';

/** A Service's state in one word, the reason in one line, and what to do about it. */
export interface Judgement {
  state: ServiceState;
  /** One line: why (for `ok`: where it is announced from). */
  reason: string;
  /** The next step, when something is wrong and the user can fix it. */
  fix?: string;
}

/** One row of `kubectl metallb services`. Field names are stable (-o json|yaml). */
export interface ServiceRow {
  namespace: string;
  name: string;
  /** Assigned addresses (status.loadBalancer.ingress). */
  ips: string[];
  pool: string | null;
  /** `layer2`, `bgp`: how the pool is announced. */
  protocols: ('layer2' | 'bgp')[];
  /** The nodes announcing it over layer 2, as core/announce computes (one per IP, deduplicated). */
  announcingNodes: string[];
  /** The nodes whose ServiceL2Status says they announce it. */
  statusNodes: string[];
  /** The nodes advertising it over BGP, as core/announce computes (every eligible node: ECMP). */
  advertisingNodes: string[];
  /** The BGPPeers they advertise it to. */
  bgpPeers: string[];
  sharingKey: string | null;
  /** Other Services on the same addresses. */
  sharedWith: string[];
  trafficPolicy: 'Cluster' | 'Local';
  status: ServiceState;
  reason: string;
  /** What to do, when something is wrong. */
  fix: string | null;
}

export interface ServiceRowOptions {
  /** Only Services of this namespace (undefined: all). */
  namespace?: string;
}

/** Every LoadBalancer Service of ours, sorted by namespace and name. */
export function serviceRows(a: Analysis, options: ServiceRowOptions = {}): ServiceRow[] {
  return a.services.filter((s) => options.namespace === undefined || s.namespace === options.namespace).map((s) => serviceRow(a, s));
}

/** The distinct layer-2 owners of a Service's IPs, in IP order (loops: this runs twice a row of a long list). */
function layer2Owners(l2: Layer2Service | undefined): string[] {
  const owners: string[] = [];
  for (const ip of l2?.ips ?? []) if (ip.owner && !owners.includes(ip.owner)) owners.push(ip.owner);
  return owners;
}

export function serviceRow(a: Analysis, s: LBService): ServiceRow {
  const pool = poolOf(a, s);
  const poolObject = pool ? a.config.pools.find((p) => p.name === pool) : undefined;
  const ads = poolObject ? advertisementsOf(a.config, poolObject) : { layer2: [], bgp: [] };
  const l2 = a.layer2.get(s.key);
  const l2ips = l2?.ips ?? [];
  const sharedWith = distinctSorted(l2ips.length === 1 ? l2ips[0]!.sharedWith : l2ips.flatMap((ip) => ip.sharedWith));
  const judgement = judge(a, s, { pool });
  const protocols: ServiceRow['protocols'] = [];
  if (ads.layer2.length > 0) protocols.push('layer2');
  if (ads.bgp.length > 0) protocols.push('bgp');
  const bgpPeers: string[] = [];
  for (const c of bgpSessionsOf(a, s)) if (!bgpPeers.includes(c.peer)) bgpPeers.push(c.peer);
  return {
    namespace: s.namespace,
    name: s.name,
    ips: s.ingress,
    pool: pool ?? null,
    protocols,
    announcingNodes: layer2Owners(l2),
    statusNodes: a.announcedBy.get(s.key) ?? [],
    advertisingNodes: advertisingNodes(a, s),
    bgpPeers: bgpPeers.sort(),
    sharingKey: (s.request.ok ? s.request.request.sharingKey : undefined) ?? null,
    sharedWith,
    trafficPolicy: s.announce.trafficPolicy,
    status: judgement.state,
    reason: judgement.reason,
    fix: judgement.fix ?? null,
  };
}

/** The pool of the Service's addresses: found by address, as the agents do; else the one the controller recorded. */
export function poolOf(a: Analysis, s: LBService): string | undefined {
  for (const text of s.ingress) {
    const ip = parseIP(text);
    const pool = ip.ok ? a.poolFor(ip.value) : undefined;
    if (pool) return pool;
  }
  const held = a.allocator.allocation(s.key);
  if (held) return held.pool;
  if (s.ingress.length > 0) {
    for (const l2 of a.layer2.get(s.key)?.ips ?? []) if (l2.pool) return l2.pool;
  }
  return s.annotated.pool;
}

/**
 * The state word of a Service and why, with the fix when there is one. `known.pool`: poolOf's
 * answer, when the caller has it already.
 */
export function judge(a: Analysis, s: LBService, known?: { pool: string | undefined }): Judgement {
  if (!s.request.ok) return { state: 'config error', ...splitFix(s.request.failure.message) };
  if (a.configSource === 'none') {
    return {
      state: 'config error',
      reason: 'the configuration is invalid and no last good one is recorded, so the controller assigns nothing',
      fix: 'fix the configuration (kubectl metallb config check)',
    };
  }
  if (s.ingress.length === 0) return pending(a, s);

  const l2 = a.layer2.get(s.key);
  const pool = known ? known.pool : poolOf(a, s);
  const poolObject = pool ? a.config.pools.find((p) => p.name === pool) : undefined;
  if (!poolObject) {
    return {
      state: 'not announced',
      reason: `${s.ingress.join(', ')} ${s.ingress.length > 1 ? 'are' : 'is'} in no address pool of the configuration, so no node announces it`,
      fix: 'the controller revokes such an address: check that it runs, or request an address from a pool (kubectl metallb pools)',
    };
  }
  const ads = advertisementsOf(a.config, poolObject);
  if (ads.layer2.length === 0 && ads.bgp.length === 0) {
    return {
      state: 'not announced',
      reason: `no L2Advertisement or BGPAdvertisement selects pool "${pool}"`,
      fix: `create an L2Advertisement (or a BGPAdvertisement) selecting pool ${pool}`,
    };
  }
  const owners = layer2Owners(l2);
  const layer2Text = owners.length > 0 ? `announced by ${owners.join(', ')} over layer 2` : undefined;
  const bgp = ads.bgp.length > 0 ? bgpJudgement(a, s) : undefined;
  if (ads.layer2.length > 0) {
    const missing = (l2?.ips ?? []).filter((ip) => !ip.owner);
    if (missing.length > 0 && (!bgp || bgp.state !== 'ok')) {
      const first = missing[0]!;
      return { state: 'not announced', reason: noOwnerText(a, s, first), ...fixFor(s, first) };
    }
  }
  if (bgp && bgp.state !== 'ok') {
    if (!layer2Text) return bgp;
    const bgpText = bgp.reason.startsWith('advertised over BGP') ? bgp.reason : `over BGP: ${bgp.reason}`;
    return { state: 'ok', reason: `${s.ingress.join(', ')} from pool ${pool}, ${layer2Text}; ${bgpText}` };
  }
  const how = layer2Text !== undefined && bgp !== undefined ? `${layer2Text}; ${bgp.reason}` : (layer2Text ?? bgp?.reason ?? 'announced');
  return { state: 'ok', reason: `${s.ingress.join(', ')} from pool ${pool}, ${how}` };
}

/** The nodes core/announce has advertise the Service over BGP, sorted. */
export function advertisingNodes(a: Analysis, s: LBService): string[] {
  const ips = a.bgp.get(s.key)?.ips ?? [];
  return distinctSorted(ips.length === 1 ? ips[0]!.nodes : ips.flatMap((ip) => ip.nodes));
}

/** Distinct and sorted; a list of one IP's names is distinct already (the common case, without a Set). */
function distinctSorted(names: readonly string[]): string[] {
  if (names.length < 2) return [...names];
  const sorted = [...names].sort();
  return sorted.filter((n, i) => i === 0 || n !== sorted[i - 1]);
}

/** One node x peer session that carries a route of the Service, with the state its speaker published. */
export interface BGPCarrier {
  node: string;
  peer: string;
  /** As the speaker published it (Established, Active, ...), or `unknown`. */
  state: string;
  lastError: string | null;
}

/** Every session that carries one of the Service's routes. */
export function bgpSessionsOf(a: Analysis, s: LBService): BGPCarrier[] {
  const ips = a.bgp.get(s.key)?.ips;
  if (!ips || ips.length === 0) return [];
  const out = new Map<string, BGPCarrier>();
  for (const ip of ips) {
    for (const group of ip.speakers) {
      for (const node of group.nodes) {
        for (const p of group.peers) {
          const row = a.sessions.get(`${node} ${p.peer}`);
          out.set(`${node} ${p.peer}`, { node, peer: p.peer, state: row?.state ?? 'unknown', lastError: row?.lastError ?? null });
        }
      }
    }
  }
  return [...out.values()].sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : x.peer < y.peer ? -1 : x.peer > y.peer ? 1 : 0));
}

/** Whether the Service is advertised over BGP, and by whom; `ok` unless no route can reach a router. */
function bgpJudgement(a: Analysis, s: LBService): Judgement {
  const ips = a.bgp.get(s.key)?.ips ?? [];
  const silent = ips.filter((ip) => ip.nodes.length === 0);
  if (ips.length === 0 || silent.length === ips.length) {
    const first = silent[0];
    return first ? { state: 'not announced', reason: bgpNoRouteText(a, s, first), ...bgpFix(s, first) } : { state: 'not announced', reason: 'no node advertises it over BGP' };
  }
  const nodes = advertisingNodes(a, s);
  const carriers = bgpSessionsOf(a, s);
  const peers = [...new Set(carriers.map((c) => c.peer))].sort();
  const up = carriers.filter((c) => c.state === 'Established');
  const known = carriers.filter((c) => c.state !== 'unknown');
  const what = `advertised over BGP by ${nodes.join(', ')} to ${peers.join(', ')}`;
  if (known.length > 0 && up.length === 0) {
    const shown = known.slice(0, 3).map((c) => `${c.node} to ${c.peer}: ${c.state}${c.lastError ? ` (${c.lastError})` : ''}`);
    return {
      state: 'not announced',
      reason: `${what}, but no such BGP session is established (${shown.join('; ')}${known.length > 3 ? `; ${known.length - 3} more` : ''})`,
      fix: 'see kubectl metallb peers: check the router side, the peer address and ASNs, and the last error',
    };
  }
  const sessions = known.length === 0 ? 'no session state published yet' : `${up.length} of ${carriers.length} sessions established`;
  const partial = silent.length > 0 ? `; ${silent.map((ip) => `${ip.ip}: ${bgpNoRouteText(a, s, ip)}`).join('; ')}` : '';
  return { state: 'ok', reason: `${what} (${sessions})${partial}` };
}

const BGP_NODE_WORDS: Record<string, string> = {
  'not-selected': 'not selected by the BGPAdvertisement',
  'no-peer': 'no BGPPeer for it',
};
const BGP_PEER_WORDS: Record<string, string> = {
  'not-selected': "the BGPPeer's nodeSelectors leave the node out",
  'other-family': 'the peer is of the other address family',
  'not-listed': "not in the BGPAdvertisement's peers",
};

/** A BGP node verdict's reason in words. */
export function bgpNodeReasonWords(reason: string): string {
  return BGP_NODE_WORDS[reason] ?? reasonWords(reason);
}

/**
 * Why no node may announce (layer 2) or advertise (BGP) `ip`: each ruled-out node with its
 * reasons; under Local, only the nodes with a ready endpoint, the only ones that could.
 */
function noNodeText(
  s: LBService,
  ip: string,
  verdicts: readonly { node: string; reasons: readonly string[] }[],
  verb: 'announce' | 'advertise',
  words: (reason: string) => string,
): string {
  const text = (list: typeof verdicts) => (list.length === 0 ? 'no nodes' : list.map((v) => `${v.node}: ${v.reasons.map(words).join(', ')}`).join('; '));
  if (s.announce.trafficPolicy === 'Local') {
    const withEndpoints = endpointNodes(s);
    return withEndpoints.length === 0
      ? 'externalTrafficPolicy Local and no ready endpoint on a known node'
      : `externalTrafficPolicy Local: the nodes with a ready endpoint (${withEndpoints.join(', ')}) may not ${verb} ${ip} (${text(verdicts.filter((v) => withEndpoints.includes(v.node)))})`;
  }
  return `no node may ${verb} ${ip} (${text(verdicts)})`;
}

/** A BGP peer verdict's reason in words. */
export function bgpPeerReasonWords(reason: string): string {
  return BGP_PEER_WORDS[reason] ?? reason;
}

/** Why no node advertises `ip` over BGP, in one line. */
export function bgpNoRouteText(a: Analysis, s: LBService, ip: BGPIP): string {
  switch (ip.reason) {
    case 'no-pool':
      return `${ip.ip} is in no address pool of the configuration`;
    case 'no-advertisement':
      return `no BGPAdvertisement selects pool "${ip.pool ?? ''}"`;
    case 'no-ready-endpoint':
      return `no ready endpoint on any node: no node advertises ${ip.ip}`;
    case 'no-peer': {
      const peers = [...new Map(ip.ineligible.flatMap((v) => v.peers).map((p) => [p.peer, p])).values()];
      const why = peers.map((p) => `${p.peer}: ${p.reasons.map((r) => BGP_PEER_WORDS[r] ?? r).join(', ')}`).join('; ');
      return `no BGPPeer would receive ${ip.ip} from the nodes that may advertise it${why ? ` (${why})` : ' (no BGPPeer configured)'}`;
    }
    default:
      return noNodeText(s, ip.ip, ip.ineligible, 'advertise', bgpNodeReasonWords);
  }
}

/** The next step for a Service no node advertises. */
export function bgpFix(s: LBService, ip: BGPIP): { fix?: string } {
  switch (ip.reason) {
    case 'no-advertisement':
      return { fix: `create a BGPAdvertisement selecting pool ${ip.pool ?? ''}` };
    case 'no-ready-endpoint':
      return { fix: `make the Service's pods ready (kubectl -n ${s.namespace} get endpointslices -l kubernetes.io/service-name=${s.name})` };
    case 'no-peer':
      return { fix: "add a BGPPeer for those nodes (its nodeSelectors), or name one in the BGPAdvertisement's peers" };
    case 'no-eligible-node':
      return s.announce.trafficPolicy === 'Local'
        ? { fix: 'run a ready pod on a node that may advertise (selected, Ready, with a BGPPeer), or set externalTrafficPolicy Cluster' }
        : { fix: 'make a node eligible: Ready, selected by the BGPAdvertisement nodeSelectors, with a BGPPeer, not labelled exclude-from-external-load-balancers' };
    default:
      return {};
  }
}

function pending(a: Analysis, s: LBService): Judgement {
  if (!s.request.ok) throw new Error('unreachable');
  const held = a.allocator.allocation(s.key);
  if (held) {
    const ips = held.ips.map((ip) => a.claims.find((c) => c.ip.family === ip.family && c.ip.value === ip.value)?.address ?? '').filter(Boolean);
    return {
      state: 'pending',
      reason: `its claims hold ${ips.join(', ')} from pool ${held.pool}, but its status shows no address yet`,
      fix: 'the controller writes the status: check that it runs (kubectl -n metallb-system get pods)',
    };
  }
  const answer = a.allocator.assign(s.request.request, { dryRun: true });
  if (!answer.ok) return { state: 'pending', ...splitFix(answer.failure.message) };
  return {
    state: 'pending',
    reason: `nothing holds it back: the controller would assign it an address from pool ${answer.pool} now`,
    fix: 'check that the controller runs (kubectl -n metallb-system get pods) and read its events (kubectl metallb explain svc)',
  };
}

/** The allocator's messages end with the fix after the last "; ": the reason is what comes before. */
function splitFix(message: string): { reason: string; fix?: string } {
  const at = message.lastIndexOf('; ');
  return at > 0 ? { reason: message.slice(0, at), fix: message.slice(at + 2) } : { reason: message };
}

/** Why no node announces `ip`, in one line. */
export function noOwnerText(a: Analysis, s: LBService, ip: Layer2IP): string {
  switch (ip.reason) {
    case 'no-pool':
      return `${ip.ip} is in no address pool of the configuration`;
    case 'no-advertisement':
      return `no L2Advertisement selects pool "${ip.pool ?? ''}"`;
    case 'no-ready-endpoint':
      return `no ready endpoint on any node: nothing would answer ${ip.ip}`;
    case 'no-eligible-node':
    default:
      return noNodeText(s, ip.ip, ip.ineligible, 'announce', reasonWords);
  }
}

function fixFor(s: LBService, ip: Layer2IP): { fix?: string } {
  switch (ip.reason) {
    case 'no-advertisement':
      return { fix: `create an L2Advertisement selecting pool ${ip.pool ?? ''}` };
    case 'no-ready-endpoint':
      return { fix: `make the Service's pods ready (kubectl -n ${s.namespace} get endpointslices -l kubernetes.io/service-name=${s.name})` };
    case 'no-eligible-node':
      return s.announce.trafficPolicy === 'Local'
        ? { fix: 'run a ready pod on a node that may announce (selected, Ready, not excluded), or set externalTrafficPolicy Cluster' }
        : { fix: 'make a node eligible: Ready, selected by the L2Advertisement nodeSelectors, not labelled exclude-from-external-load-balancers' };
    default:
      return {};
  }
}

/** The nodes hosting a ready (or serving, not terminating) endpoint of the Service, sorted. */
export function endpointNodes(s: LBService): string[] {
  return [...new Set(s.announce.endpoints.filter((e) => e.nodeName && (e.ready || (e.serving && !e.terminating))).map((e) => e.nodeName as string))].sort();
}

const REASON_WORDS: Record<string, string> = {
  'not-selected': 'not selected by the L2Advertisement',
  'not-alive': 'not Ready',
  'network-unavailable': 'NetworkUnavailable',
  excluded: 'labelled exclude-from-external-load-balancers',
  'no-endpoint': 'no ready endpoint',
};

/** A node reason in words. */
export function reasonWords(reason: string): string {
  return REASON_WORDS[reason] ?? reason;
}
