/**
 * `kubectl metallb simulate drain NODE` as data: what would move if the node went away, computed
 * by analysing the cluster again without it (its endpoints gone with its pods), changing nothing.
 */
import { bgpRoutes } from '../announce/index.js';
import { analyze, isMap, mapAt, textAt, type Analysis } from './analyze.js';
import type { Snapshot } from './model.js';
import { judge, noOwnerText } from './services.js';

/** One layer-2 address the node announces now, and where it would go. */
export interface DrainMove {
  service: string;
  ip: string;
  /** The node that would answer instead, or null (see `reason`). */
  to: string | null;
  reason: string | null;
}

/** One BGP route the node sends now, withdrawn when it goes. */
export interface DrainWithdrawal {
  prefix: string;
  peer: string;
  /** The Services whose addresses the prefix covers. */
  services: string[];
  /** The nodes still sending it to that peer afterwards (ECMP shrinks), or empty: the peer loses it. */
  stillFrom: string[];
}

export interface DrainReport {
  node: string;
  /** Whether the cluster has such a Node. */
  known: boolean;
  moves: DrainMove[];
  /** Every BGP route the node sends, and who still sends it afterwards. */
  withdrawn: DrainWithdrawal[];
  /**
   * Services announced now that nothing would announce afterwards: their IP's owner or their
   * only advertising nodes go, their only ready pods run there, or the node held their only
   * established BGP session.
   */
  unannounced: string[];
  /** Why, for each of those, as `explain` would say it afterwards. */
  why: { service: string; reason: string }[];
}

/** The snapshot without the node: its Node, the endpoints of the pods it ran, and what its agent and speaker published. */
function withoutNode(snap: Snapshot, node: string): Snapshot {
  const on = (o: unknown, path: 'metadata' | 'status', key: string) => textAt(mapAt(o, path), key) === node;
  return {
    ...snap,
    nodes: snap.nodes.filter((n) => !on(n, 'metadata', 'name')),
    endpointSlices: snap.endpointSlices.map((sl) =>
      isMap(sl) && Array.isArray(sl.endpoints) ? { ...sl, endpoints: sl.endpoints.filter((e) => !(isMap(e) && e.nodeName === node)) } : sl,
    ),
    l2Statuses: snap.l2Statuses.filter((o) => !on(o, 'status', 'node')),
    ...(snap.bgpSessions ? { bgpSessions: snap.bgpSessions.filter((o) => !on(o, 'status', 'node')) } : {}),
  };
}

/**
 * What draining `node` would change: the cluster analysed again without it (and with the nodes
 * the agents already count down still down), compared with now.
 */
export function simulateDrain(a: Analysis, node: string): DrainReport {
  const known = a.nodes.some((n) => n.name === node);
  const without = analyze(withoutNode(a.snapshot, node), { down: a.agentsDown });

  // Layer 2: each address the node answers for now, and who would answer instead.
  const moves: DrainMove[] = [];
  for (const s of a.services) {
    const later = without.byKey.get(s.key);
    const now = without.layer2.get(s.key);
    if (!later || !now) continue;
    (a.layer2.get(s.key)?.ips ?? []).forEach((ip, i) => {
      const next = now.ips[i];
      if (ip.owner !== node || !next) return;
      moves.push({ service: s.key, ip: ip.ip, to: next.owner ?? null, reason: next.owner ? null : noOwnerText(without, later, next) });
    });
  }

  // BGP: every route the node sends, and who still sends it. Read from the Services whose routes
  // carry one of those prefixes (an aggregate also carries its neighbours'), not from every
  // node's whole table.
  const sent = bgpRoutes(a.bgp.values(), { node });
  const prefixes = new Set(sent.map((r) => r.prefix));
  const carrying = [...without.bgp.values()].filter((b) => b.ips.some((ip) => ip.speakers.some((g) => g.peers.some((p) => p.routes.some((r) => prefixes.has(r.prefix))))));
  const still = new Map<string, Set<string>>();
  for (const r of bgpRoutes(carrying)) {
    const key = `${r.peer} ${r.prefix}`;
    (still.get(key) ?? still.set(key, new Set()).get(key)!).add(r.node);
  }
  const withdrawn: DrainWithdrawal[] = sent.map((r) => ({
    prefix: r.prefix,
    peer: r.peer,
    services: [...r.services],
    stillFrom: [...(still.get(`${r.peer} ${r.prefix}`) ?? [])].sort(),
  }));

  // A Service ok now and not announced then is one the drain would take dark.
  const unannounced: string[] = [];
  const why: DrainReport['why'] = [];
  for (const s of a.services) {
    const later = without.byKey.get(s.key);
    if (!later || judge(a, s).state !== 'ok') continue;
    const then = judge(without, later);
    if (then.state !== 'not announced') continue;
    unannounced.push(s.key);
    why.push({ service: s.key, reason: then.reason });
  }
  return { node, known, moves, withdrawn, unannounced, why };
}
