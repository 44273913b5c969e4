/**
 * Pool usage as `kubectl metallb pools` shows it: every pool of the configuration the components
 * run on (metallb.io objects and the legacy ConfigMap alike), counted by core's allocator (so a
 * /24 that avoids buggy IPs has 254 addresses, as the controller counts), and who holds what.
 */
import { selectorMatches, type LabelSelector, type Pool } from '../config/index.js';
import type { Family } from '../ip/index.js';
import { advertisementsOf, type Analysis } from './analyze.js';
import { formatCount, formatPercent, percentOf } from './count.js';

/** One address held, and by whom. */
export interface HeldAddress {
  ip: string;
  /** `namespace/name` of every holder, sorted; a reservation shows as `namespace/name (reserved)`. */
  holders: string[];
  sharingKey?: string;
}

/** Counts of one family, as decimal strings (exact, IPv6 included) and as text for people. */
export interface FamilyUsage {
  size: string;
  used: string;
  free: string;
}

/** One pool, as `pools` prints it. Field names are stable (-o json|yaml). */
export interface PoolRow {
  name: string;
  /** `IPAddressPool` or `ConfigMap` (the legacy metallb-system/config). */
  source: 'IPAddressPool' | 'ConfigMap';
  ranges: string[];
  /** `layer2`, `bgp`: the protocols whose advertisements select the pool (empty: not announced). */
  protocols: ('layer2' | 'bgp')[];
  l2Advertisements: string[];
  bgpAdvertisements: string[];
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  /** Who may use the pool, in words: `all`, `shop, web`, `ns selector team=a`, ... */
  serves: string;
  /** serviceAllocation.priority, when set. */
  priority?: number;
  /** Exact counts as decimal strings. */
  size: string;
  used: string;
  free: string;
  /** used / size, percent, two decimals. */
  percentUsed: number;
  /** For people: `254`, `2^64`, `~2^64`. */
  display: { size: string; used: string; free: string; percentUsed: string };
  families: Partial<Record<Family, FamilyUsage>>;
  /** Every held address (only when asked for: `pools -v`). */
  addresses?: HeldAddress[];
}

export interface PoolOptions {
  /** Only this pool. */
  name?: string;
  /** Only pools a Service of this namespace may use (serviceAllocation). */
  namespace?: string;
  /** List the held addresses and their holders. */
  verbose?: boolean;
}

/** Every pool (or the one asked for), sorted by name. */
export function poolRows(a: Analysis, options: PoolOptions = {}): PoolRow[] {
  const pools = a.config.pools.filter((p) => (options.name === undefined || p.name === options.name) && (options.namespace === undefined || serves(a, p, options.namespace)));
  return pools.map((p) => poolRow(a, p, options.verbose ?? false)).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

/** The pool names, for "did you mean". */
export function poolNames(a: Analysis): string[] {
  return a.config.pools.map((p) => p.name).sort();
}

function serves(a: Analysis, pool: Pool, namespace: string): boolean {
  const sa = pool.serviceAllocation;
  if (!sa || (sa.namespaces.length === 0 && sa.namespaceSelectors.length === 0)) return true;
  const labels = a.namespaceLabels.get(namespace) ?? {};
  return sa.namespaces.includes(namespace) || sa.namespaceSelectors.some((s) => selectorMatches(s, labels));
}

function poolRow(a: Analysis, pool: Pool, verbose: boolean): PoolRow {
  const usage = a.allocator.usage(pool.name);
  const ads = advertisementsOf(a.config, pool);
  const size = usage?.size ?? 0n;
  const used = usage?.used ?? 0n;
  const free = usage?.free ?? 0n;
  const families: Partial<Record<Family, FamilyUsage>> = {};
  for (const f of ['IPv4', 'IPv6'] as const) {
    if (!pool.ranges.some((r) => r.family === f)) continue;
    const u = usage?.families[f];
    families[f] = { size: String(u?.size ?? 0n), used: String(u?.used ?? 0n), free: String(u?.free ?? 0n) };
  }
  const sa = pool.serviceAllocation;
  const row: PoolRow = {
    name: pool.name,
    source: pool.origin.kind === 'ConfigMap' ? 'ConfigMap' : 'IPAddressPool',
    ranges: pool.ranges.map((r) => r.text),
    protocols: [...(ads.layer2.length > 0 ? (['layer2'] as const) : []), ...(ads.bgp.length > 0 ? (['bgp'] as const) : [])],
    l2Advertisements: [...ads.layer2],
    bgpAdvertisements: [...ads.bgp],
    autoAssign: pool.autoAssign,
    avoidBuggyIPs: pool.avoidBuggyIPs,
    serves: servesText(pool),
    ...(sa?.priority !== undefined && sa.priority > 0 ? { priority: sa.priority } : {}),
    size: String(size),
    used: String(used),
    free: String(free),
    percentUsed: percentOf(used, size),
    display: { size: formatCount(size), used: formatCount(used), free: formatCount(free), percentUsed: formatPercent(used, size) },
    families,
  };
  if (verbose) {
    row.addresses = a.claims
      .filter((c) => a.poolFor(c.ip) === pool.name)
      .map((c) => ({
        ip: c.address,
        holders: c.holders.map((h) => (h.reservation ? `${h.namespace}/${h.name} (reserved)` : `${h.namespace}/${h.name}`)).sort(),
        ...(c.sharingKey ? { sharingKey: c.sharingKey } : {}),
      }));
  }
  return row;
}

function servesText(pool: Pool): string {
  const sa = pool.serviceAllocation;
  if (!sa) return 'all';
  const parts: string[] = [];
  if (sa.namespaces.length > 0) parts.push(sa.namespaces.join(', '));
  for (const s of sa.namespaceSelectors) parts.push(`namespaces ${selectorText(s)}`);
  for (const s of sa.serviceSelectors) parts.push(`services ${selectorText(s)}`);
  return parts.length > 0 ? parts.join('; ') : 'all';
}

/** A selector as kubectl writes one: `a=b,c in (d,e),!f`. */
export function selectorText(s: LabelSelector): string {
  const parts = Object.entries(s.matchLabels).map(([k, v]) => `${k}=${v}`);
  for (const e of s.matchExpressions) {
    if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${e.values.join(',')})`);
  }
  return parts.join(',') || '(everything)';
}
