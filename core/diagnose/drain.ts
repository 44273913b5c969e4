/**
 * `kubectl metallb simulate drain NODE` as data: what would move if the node went away, computed
 * with core/announce (the node out of the live set, its endpoints gone with its pods), changing
 * nothing.
 */
import { announceAll, announceAllBGP, bgpRoutes, prepareLayer2, serviceKey } from '../announce/index.js';
import { analyze, type Analysis } from './analyze.js';
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

export function simulateDrain(a: Analysis, node: string): DrainReport {
  const known = a.nodes.some((n) => n.name === node);
  const alive = new Set([...a.alive].filter((n) => n !== node));
  const ctx = prepareLayer2(a.config, a.nodes, alive, { previous: a.layer2Context });
  const services = a.services.map((s) => ({ ...s.announce, endpoints: s.announce.endpoints.filter((e) => e.nodeName !== node) }));
  const after = new Map(announceAll(ctx, services).map((x) => [serviceKey(x), x]));
  const moves: DrainMove[] = [];
  const unannounced: string[] = [];

  // BGP: the node's sessions go with it; the other nodes keep sending what they send.
  const bgpAfter = new Map(a.bgp.size === 0 ? [] : announceAllBGP(a.bgpContext.withoutNodes([node]), services).map((x) => [serviceKey(x), x] as const));
  const sent = bgpRoutes(a.bgp.values(), { node });
  // Who still sends those prefixes: the tables of the Services whose routes carry one of them
  // (an aggregate also carries its neighbours'), not every node's whole table.
  const prefixes = new Set(sent.map((r) => r.prefix));
  const carrying = [...bgpAfter.values()].filter((b) => b.ips.some((ip) => ip.speakers.some((g) => g.peers.some((p) => p.routes.some((r) => prefixes.has(r.prefix))))));
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
  for (const s of a.services) {
    const before = a.layer2.get(s.key);
    const now = after.get(s.key);
    if (!before || !now) continue;
    before.ips.forEach((ip, i) => {
      const next = now.ips[i];
      if (ip.owner !== node || !next) return;
      const view = { ...s, announce: services.find((x) => x.namespace === s.namespace && x.name === s.name) ?? s.announce };
      moves.push({ service: s.key, ip: ip.ip, to: next.owner ?? null, reason: next.owner ? null : noOwnerText(a, view, next) });
    });
  }

  // Everything else follows from looking at the cluster without the node: its Node, the pods it
  // ran, and what its agent and speaker published gone. A Service ok now and not announced
  // then is one the drain would take dark.
  const snap = a.snapshot;
  const named = (o: unknown, path: 'metadata' | 'status', key: string): unknown => ((o as Record<string, Record<string, unknown> | undefined>)[path] ?? {})[key];
  const without = analyze({
    ...snap,
    nodes: snap.nodes.filter((n) => named(n, 'metadata', 'name') !== node),
    endpointSlices: snap.endpointSlices.map((sl) => {
      const endpoints = (sl as { endpoints?: unknown }).endpoints;
      return Array.isArray(endpoints) ? { ...(sl as object), endpoints: endpoints.filter((e) => (e as { nodeName?: unknown }).nodeName !== node) } : sl;
    }),
    l2Statuses: snap.l2Statuses.filter((o) => named(o, 'status', 'node') !== node),
    ...(snap.bgpSessions ? { bgpSessions: snap.bgpSessions.filter((o) => named(o, 'status', 'node') !== node) } : {}),
  });
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
