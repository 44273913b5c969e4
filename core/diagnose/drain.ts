/**
 * `kubectl metallb simulate drain NODE` as data: what would move if the node went away, computed
 * with core/announce (the node out of the live set, its endpoints gone with its pods), changing
 * nothing.
 */
import { announceAll, announceAllBGP, bgpRoutes, prepareLayer2, serviceKey } from '../announce/index.js';
import type { Analysis } from './analyze.js';
import { noOwnerText } from './services.js';

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
  /** Services that would be announced by no node at all afterwards. */
  unannounced: string[];
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
  const still = new Map<string, Set<string>>();
  for (const r of bgpRoutes(bgpAfter.values())) {
    const key = `${r.peer} ${r.prefix}`;
    (still.get(key) ?? still.set(key, new Set()).get(key)!).add(r.node);
  }
  const withdrawn: DrainWithdrawal[] = bgpRoutes(a.bgp.values(), { node }).map((r) => ({
    prefix: r.prefix,
    peer: r.peer,
    services: [...r.services],
    stillFrom: [...(still.get(`${r.peer} ${r.prefix}`) ?? [])].sort(),
  }));
  for (const s of a.services) {
    const before = a.layer2.get(s.key);
    const now = after.get(s.key);
    if (!before || !now) continue;
    let lost = false;
    before.ips.forEach((ip, i) => {
      const next = now.ips[i];
      if (ip.owner !== node || !next) return;
      const view = { ...s, announce: services.find((x) => x.namespace === s.namespace && x.name === s.name) ?? s.announce };
      moves.push({ service: s.key, ip: ip.ip, to: next.owner ?? null, reason: next.owner ? null : noOwnerText(a, view, next) });
      if (!next.owner) lost = true;
    });
    const bgpBefore = a.bgp.get(s.key);
    const bgpNow = bgpAfter.get(s.key);
    const advertisedBefore = bgpBefore?.ips.some((ip) => ip.nodes.length > 0) ?? false;
    const advertisedAfter = bgpNow?.ips.some((ip) => ip.nodes.length > 0) ?? false;
    const nodeAdvertised = bgpBefore?.ips.some((ip) => ip.nodes.includes(node)) ?? false;
    const announcedAfter = now.ips.some((ip) => ip.owner) || advertisedAfter;
    if ((lost || (nodeAdvertised && advertisedBefore && !advertisedAfter)) && !announcedAfter) unannounced.push(s.key);
  }
  return { node, known, moves, withdrawn, unannounced };
}
