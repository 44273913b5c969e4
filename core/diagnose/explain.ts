/**
 * `kubectl metallb explain svc NAME` as data: the verdict in one line, then the evidence, each
 * piece computed with the function the controller or the agents use (the allocator's dry run,
 * core/announce), and every place where what the cluster shows differs from what they compute.
 */
import { ANNOTATIONS, serviceKey, type Request } from '../allocator/index.js';
import { formatCommunity, type Pool } from '../config/index.js';
import { formatIP } from '../ip/index.js';
import { advertisementsOf, canonicalIP, type Analysis, type LBService } from './analyze.js';
import type { ServiceState } from './model.js';
import { bgpNodeReasonWords, bgpNoRouteText, bgpPeerReasonWords, bgpSessionsOf, endpointNodes, judge, noOwnerText, poolOf, reasonWords } from './services.js';

/** Where a value of the request comes from: a spec field or an annotation (deprecated names flagged). */
export interface Sourced<T> {
  value: T;
  from: string;
  deprecated?: boolean;
}

/** How one pool relates to the Service. */
export interface PoolFit {
  pool: string;
  /** `assigned`: holds its IPs; `fits`: could give it an address now; `no`: cannot, see reason. */
  verdict: 'assigned' | 'fits' | 'no';
  reason: string;
}

export interface Layer2Evidence {
  ip: string;
  pool: string | null;
  advertisements: string[];
  /** The node core/announce computes, or null with `reason`. */
  owner: string | null;
  reason: string | null;
  /** The node that takes over if the owner goes. */
  next: string | null;
  /** Every node that may announce, best first. */
  candidates: string[];
  /** Every other node, with why not. */
  ineligible: { node: string; reasons: string[] }[];
}

export interface BGPEvidence {
  advertisement: string;
  aggregationLength: number;
  aggregationLengthV6: number;
  localPref: number | null;
  communities: string[];
  peers: string[];
}

/** One route of the Service toward one BGPPeer, from the nodes sending it alike. */
export interface BGPRouteEvidence {
  prefix: string;
  peer: string;
  nodes: string[];
  localPref: number | null;
  communities: string[];
  advertisements: string[];
}

/** Who advertises one IP over BGP (core/announce), to whom, or why nobody does. */
export interface BGPAnnounceEvidence {
  ip: string;
  pool: string | null;
  advertisements: string[];
  /** Every node advertising it (ECMP: each one draws a share of the traffic). */
  nodes: string[];
  /** Why no node advertises it, when none does. */
  reason: string | null;
  routes: BGPRouteEvidence[];
  /** Nodes that do not advertise it, with why not. */
  ineligible: { node: string; reasons: string[] }[];
}

/** A node x peer session carrying the Service's routes, as the node's speaker published it. */
export interface BGPSessionEvidence {
  node: string;
  peer: string;
  state: string;
  lastError: string | null;
}

export interface EventRow {
  type: string;
  reason: string;
  message: string;
  count: number;
  lastSeen: string | null;
}

/** Everything `explain` shows. Field names are stable (-o json|yaml). */
export interface Explanation {
  namespace: string;
  name: string;
  status: ServiceState;
  /** The verdict, one line. */
  verdict: string;
  /** The next step when something is wrong. */
  fix: string | null;
  ips: string[];
  pool: string | null;
  request: {
    requestedIPs: Sourced<string>[];
    pool: Sourced<string> | null;
    sharingKey: Sourced<string> | null;
    ipFamilyPolicy: string;
    ipFamilies: string[];
    /** The request cannot be read (malformed annotation): the message. */
    problem: string | null;
  };
  pools: PoolFit[];
  sharing: { key: string; partners: string[]; sameIP: string[] } | null;
  traffic: { policy: 'Cluster' | 'Local'; readyNodes: string[]; readyEndpoints: number; endpointsWithoutNode: number };
  layer2: Layer2Evidence[];
  bgp: BGPEvidence[];
  /** core/announce's BGP answer per IP (empty when no BGPAdvertisement selects the pool). */
  bgpRoutes: BGPAnnounceEvidence[];
  /** The sessions carrying those routes. */
  bgpSessions: BGPSessionEvidence[];
  /** ServiceL2Status objects: the nodes saying they announce it. */
  statusNodes: string[];
  configuration: { source: 'current' | 'last-good' | 'none'; errors: string[] };
  /** Where the cluster shows something else than what the controller / agents compute. */
  disagreements: string[];
  events: EventRow[];
}

/** Explain one Service, or undefined when it is not a LoadBalancer Service of ours in the snapshot. */
export function explainService(a: Analysis, namespace: string, name: string): Explanation | undefined {
  const s = a.byKey.get(serviceKey(namespace, name));
  if (!s) return undefined;
  const judgement = judge(a, s);
  const pool = poolOf(a, s) ?? null;
  const req = s.request.ok ? s.request.request : undefined;
  const l2 = a.layer2.get(s.key);
  const statusNodes = a.announcedBy.get(s.key) ?? [];
  const poolObject = pool ? a.config.pools.find((p) => p.name === pool) : undefined;

  const layer2: Layer2Evidence[] = (l2?.ips ?? []).map((ip) => ({
    ip: ip.ip,
    pool: ip.pool ?? null,
    advertisements: [...ip.advertisements],
    owner: ip.owner ?? null,
    reason: ip.owner ? null : noOwnerText(a, s, ip),
    next: (ip.owner ? ip.candidates[1]?.node : undefined) ?? null,
    candidates: ip.candidates.map((c) => c.node),
    ineligible: ip.ineligible.map((v) => ({
      node: v.node,
      reasons: v.reasons.map((r) => (r === 'not-alive' && a.agentsDown.has(v.node) ? 'Ready, but the agents count it down (its agent is out of the gossip)' : reasonWords(r))),
    })),
  }));

  const bgpRoutes: BGPAnnounceEvidence[] = (poolObject && advertisementsOf(a.config, poolObject).bgp.length > 0 ? (a.bgp.get(s.key)?.ips ?? []) : []).map((ip) => ({
    ip: ip.ip,
    pool: ip.pool ?? null,
    advertisements: [...ip.advertisements],
    nodes: [...ip.nodes],
    reason: ip.nodes.length > 0 ? null : bgpNoRouteText(a, s, ip),
    routes: ip.speakers.flatMap((g) =>
      g.peers.flatMap((p) =>
        p.routes.map((r) => ({
          prefix: r.prefix,
          peer: p.peer,
          nodes: [...g.nodes],
          localPref: r.localPref ?? null,
          communities: [...r.communityText],
          advertisements: [...r.advertisements],
        })),
      ),
    ),
    ineligible: ip.ineligible.map((v) => ({
      node: v.node,
      reasons: [...v.reasons.map(bgpNodeReasonWords), ...v.peers.map((p) => `${p.peer}: ${p.reasons.map(bgpPeerReasonWords).join(', ')}`)],
    })),
  }));
  const bgpSessions = bgpRoutes.length > 0 ? bgpSessionsOf(a, s) : [];

  return {
    namespace,
    name,
    status: judgement.state,
    verdict: verdictLine(judgement.state, judgement.reason, s, pool),
    fix: judgement.fix ?? null,
    ips: s.ingress,
    pool,
    request: requestEvidence(s),
    pools: req ? poolFits(a, s, req) : [],
    sharing: req?.sharingKey ? sharingEvidence(a, s, req.sharingKey) : null,
    traffic: {
      policy: s.announce.trafficPolicy,
      readyNodes: endpointNodes(s),
      readyEndpoints: s.announce.endpoints.filter((e) => e.ready || (e.serving && !e.terminating)).length,
      endpointsWithoutNode: s.announce.endpoints.filter((e) => !e.nodeName).length,
    },
    layer2,
    bgp: poolObject ? bgpEvidence(a, poolObject) : [],
    bgpRoutes,
    bgpSessions,
    statusNodes,
    configuration: { source: a.configSource, errors: a.configErrors },
    disagreements: disagreements(a, s, layer2, statusNodes, bgpSessions),
    events: eventRows(a, s),
  };
}

function verdictLine(state: ServiceState, reason: string, s: LBService, pool: string | null): string {
  switch (state) {
    case 'ok':
      return `assigned ${reason}`;
    case 'pending':
      return `pending: ${reason}`;
    case 'not announced':
      return `assigned ${s.ingress.join(', ')}${pool ? ` from pool ${pool}` : ''} but not announced: ${reason}`;
    case 'config error':
      return `config error: ${reason}`;
  }
}

function annotation(s: LBService, preferred: string): Sourced<string> | undefined {
  const annotations = (s.object.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations ?? {};
  const value = annotations[preferred];
  if (typeof value === 'string' && value.trim() !== '') return { value: value.trim(), from: `annotation ${preferred}` };
  const old = `metallb.universe.tf/${preferred.slice(preferred.indexOf('/') + 1)}`;
  const then = annotations[old];
  if (typeof then === 'string' && then.trim() !== '') return { value: then.trim(), from: `annotation ${old} (deprecated: use ${preferred})`, deprecated: true };
  return undefined;
}

function requestEvidence(s: LBService): Explanation['request'] {
  const spec = (s.object.spec ?? {}) as { loadBalancerIP?: unknown; ipFamilyPolicy?: unknown; ipFamilies?: unknown };
  const requestedIPs: Sourced<string>[] = [];
  const ipsAnnotation = annotation(s, ANNOTATIONS.loadBalancerIPs);
  if (ipsAnnotation) for (const part of ipsAnnotation.value.split(',')) requestedIPs.push({ ...ipsAnnotation, value: canonicalIP(part) ?? part.trim() });
  if (typeof spec.loadBalancerIP === 'string' && spec.loadBalancerIP.trim() !== '') {
    const ip = canonicalIP(spec.loadBalancerIP) ?? spec.loadBalancerIP.trim();
    if (!requestedIPs.some((r) => r.value === ip))
      requestedIPs.push({ value: ip, from: 'spec.loadBalancerIP (deprecated by Kubernetes: use annotation metallb.io/loadBalancerIPs)', deprecated: true });
  }
  return {
    requestedIPs,
    pool: annotation(s, ANNOTATIONS.addressPool) ?? null,
    sharingKey: annotation(s, ANNOTATIONS.allowSharedIP) ?? null,
    ipFamilyPolicy: typeof spec.ipFamilyPolicy === 'string' ? spec.ipFamilyPolicy : 'SingleStack',
    ipFamilies: Array.isArray(spec.ipFamilies) ? spec.ipFamilies.filter((f): f is string => typeof f === 'string') : [],
    problem: s.request.ok ? null : s.request.failure.message,
  };
}

/** Every pool, in the order auto-assignment tries them, and how it relates to the Service. */
function poolFits(a: Analysis, s: LBService, req: Request): PoolFit[] {
  const held = a.allocator.allocation(s.key);
  const order = a.allocator.candidates(req);
  const names = [...order.map((c) => c.pool), ...a.config.pools.map((p) => p.name).filter((n) => !order.some((c) => c.pool === n))];
  return names.map((pool): PoolFit => {
    if (held?.pool === pool) return { pool, verdict: 'assigned', reason: `holds ${held.ips.map(formatIP).join(', ')}` };
    const candidate = order.find((c) => c.pool === pool);
    const named = req.pool !== undefined;
    if (req.requestedIPs.length > 0) {
      const inPool = req.requestedIPs.filter((ip) => a.poolFor(ip) === pool);
      if (inPool.length === 0)
        return { pool, verdict: 'no', reason: `the requested ${req.requestedIPs.map(formatIP).join(', ')} ${req.requestedIPs.length > 1 ? 'are' : 'is'} not in it` };
    } else if (named && req.pool !== pool) {
      return { pool, verdict: 'no', reason: `the Service names pool ${req.pool}` };
    } else if (!named && candidate && !candidate.usable) {
      return { pool, verdict: 'no', reason: candidate.reason?.message ?? 'not usable' };
    }
    const trial = a.allocator.assign({ ...req, pool }, { dryRun: true });
    if (trial.ok) return { pool, verdict: 'fits', reason: `could give ${trial.ips.map(formatIP).join(', ')}` };
    return { pool, verdict: 'no', reason: trial.failure.message };
  });
}

function sharingEvidence(a: Analysis, s: LBService, key: string): Explanation['sharing'] {
  const partners = a.services.filter((o) => o !== s && o.request.ok && o.request.request.sharingKey === key).map((o) => o.key);
  const sameIP = [...new Set((a.layer2.get(s.key)?.ips ?? []).flatMap((ip) => ip.sharedWith))];
  for (const text of s.ingress) for (const h of a.claimByIP.get(text)?.holders ?? []) if (h.key !== s.key && !sameIP.includes(h.key)) sameIP.push(h.key);
  return { key, partners, sameIP: sameIP.sort() };
}

function bgpEvidence(a: Analysis, pool: Pool): BGPEvidence[] {
  const names = advertisementsOf(a.config, pool).bgp;
  return a.config.bgpAdvertisements
    .filter((ad) => names.includes(ad.name))
    .map((ad) => ({
      advertisement: ad.name,
      aggregationLength: ad.aggregationLength,
      aggregationLengthV6: ad.aggregationLengthV6,
      localPref: ad.localPref ?? null,
      communities: ad.communities.map(formatCommunity),
      peers: ad.peers.length > 0 ? ad.peers : a.config.peers.map((p) => p.name),
    }));
}

function disagreements(a: Analysis, s: LBService, layer2: readonly Layer2Evidence[], statusNodes: readonly string[], sessions: readonly BGPSessionEvidence[]): string[] {
  const out: string[] = [];
  for (const c of sessions) {
    if (c.state === 'Established' || c.state === 'unknown') continue;
    out.push(
      `the BGP session from ${c.node} to ${c.peer} is ${c.state}${c.lastError ? ` (${c.lastError})` : ''}: ${c.node} advertises it, but that router does not hear it (kubectl metallb peers --node ${c.node})`,
    );
  }
  const claimed = a.claims.filter((c) => c.holders.some((h) => h.key === s.key)).map((c) => c.address);
  const shown = [...s.ingress].sort();
  if (claimed.length > 0 && shown.length > 0 && claimed.sort().join(',') !== shown.join(',')) {
    out.push(`its status shows ${shown.join(', ')} but the IPClaims give it ${claimed.join(', ')}: the controller has not caught up (or is down)`);
  }
  if (shown.length > 0 && claimed.length === 0) {
    out.push(`its status shows ${shown.join(', ')} but no IPClaim records it: the controller repairs this when it runs (is it down?)`);
  }
  if (s.annotated.ips.length > 0 && shown.length > 0 && [...s.annotated.ips].sort().join(',') !== shown.join(',')) {
    out.push(`annotation metallb.io/assigned-ips says ${s.annotated.ips.join(', ')} but its status shows ${shown.join(', ')}`);
  }
  const skipped = layer2.flatMap((l) => (l.owner ? l.ineligible.filter((v) => a.agentsDown.has(v.node)).map((v) => v.node) : []));
  for (const n of [...new Set(skipped)].sort()) {
    out.push(
      `node ${n} is Ready but the agents count it down (its agent is stopped, or cut off from the others' gossip), so the next node in line announces: check the agent on ${n} (kubectl -n metallb-system get pods -o wide)`,
    );
  }
  const owners = [...new Set(layer2.flatMap((l) => (l.owner ? [l.owner] : [])))].sort();
  if (layer2.length > 0 && layer2.some((l) => l.advertisements.length > 0)) {
    const extra = statusNodes.filter((n) => !owners.includes(n));
    const missing = owners.filter((n) => !statusNodes.includes(n));
    for (const n of extra) {
      const down = !a.alive.has(n) ? ` (node ${n} is not Ready)` : '';
      out.push(
        owners.length > 0
          ? `ServiceL2Status says ${n} announces it${down}, but ${owners.join(', ')} should (core/announce): the agent on ${owners.join(', ')} has not taken over yet, or is down`
          : `ServiceL2Status says ${n} announces it${down}, but no node should: its status is stale`,
      );
    }
    for (const n of missing) {
      if (extra.length > 0) continue;
      out.push(`no ServiceL2Status from ${n}, which should announce it (core/announce): is the agent on ${n} running? (kubectl -n metallb-system get pods -o wide)`);
    }
  }
  return out;
}

type Fields = Record<string, unknown>;
const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

function eventRows(a: Analysis, s: LBService): EventRow[] {
  const rows: (EventRow & { at: string })[] = [];
  for (const e of a.snapshot.events ?? []) {
    if (!isMap(e)) continue;
    const about = isMap(e.involvedObject) ? e.involvedObject : isMap(e.regarding) ? e.regarding : {};
    if (about.kind !== 'Service' || about.name !== s.name || (about.namespace ?? (isMap(e.metadata) ? e.metadata.namespace : undefined)) !== s.namespace) continue;
    const series = isMap(e.series) ? e.series : {};
    const last = [e.lastTimestamp, series.lastObservedTime, e.eventTime, e.firstTimestamp, isMap(e.metadata) ? e.metadata.creationTimestamp : undefined].find(
      (t) => typeof t === 'string',
    ) as string | undefined;
    rows.push({
      type: typeof e.type === 'string' ? e.type : 'Normal',
      reason: typeof e.reason === 'string' ? e.reason : '',
      message: typeof e.message === 'string' ? e.message : typeof e.note === 'string' ? e.note : '',
      count: typeof e.count === 'number' ? e.count : typeof series.count === 'number' ? series.count : 1,
      lastSeen: last ?? null,
      at: last ?? '',
    });
  }
  return rows
    .sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0))
    .slice(-10)
    .map(({ at: _at, ...row }) => row);
}
