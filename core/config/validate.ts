/**
 * Merging the sources into one Config and the checks that span objects: duplicate names,
 * overlapping addresses, references (pools, BFD profiles, community aliases), duplicate peers,
 * aggregation lengths against the pools an advertisement covers.
 */
import { FAMILY_BITS, formatIP, type IPRange } from '../ip/index.js';
import { formatCommunity, parseCommunity, sameCommunity } from './community.js';
import { place, placeOf, type AliasDecl, type BGPAdvDecl, type BFDDecl, type Declarations, type Declared, type L2Decl, type PeerDecl, type PoolDecl } from './declarations.js';
import type { Report } from './read.js';
import { reservedProblem } from './reserved.js';
import { selectorKey, selectorListsOverlap, selectorMatches } from './selector.js';
import type { Community, Config, LabelSelector, Origin, Place, Pool } from './types.js';

/**
 * The pools an advertisement covers: those it names, those its selectors match, or every pool
 * when it does neither (MetalLB's rule).
 */
export function selectedPools<P extends Pick<Pool, 'name' | 'labels'>>(
  adv: { ipAddressPools: readonly string[]; ipAddressPoolSelectors: readonly LabelSelector[] },
  pools: readonly P[],
): P[] {
  if (adv.ipAddressPools.length === 0 && adv.ipAddressPoolSelectors.length === 0) return [...pools];
  return pools.filter((p) => adv.ipAddressPools.includes(p.name) || adv.ipAddressPoolSelectors.some((s) => selectorMatches(s, p.labels)));
}

/** Merge the sources (in order: the ConfigMap first) and check them against each other. */
export function merge(sources: readonly Declarations[], report: Report): Config {
  const all: Declarations = {
    pools: sources.flatMap((d) => d.pools),
    peers: sources.flatMap((d) => d.peers),
    bfdProfiles: sources.flatMap((d) => d.bfdProfiles),
    aliases: sources.flatMap((d) => d.aliases),
    l2Advertisements: sources.flatMap((d) => d.l2Advertisements),
    bgpAdvertisements: sources.flatMap((d) => d.bgpAdvertisements),
  };
  const fail: Fail = (where, message, related) => {
    report.errors.push({ ...where, message, ...(related ? { related } : {}) });
  };

  // Later definitions of a name are the errors; the first one stands.
  const pools = firstByName(all.pools, 'pool', fail);
  const peers = firstByName(all.peers, 'BGP peer', fail);
  const bfdProfiles = firstByName(all.bfdProfiles, 'BFD profile', fail);
  const l2Advertisements = firstByName(all.l2Advertisements, 'L2Advertisement', fail);
  const bgpAdvertisements = firstByName(all.bgpAdvertisements, 'BGPAdvertisement', fail);

  const aliases = new Map<string, AliasDecl>();
  for (const a of all.aliases) {
    const first = aliases.get(a.name);
    if (first) fail(placeOf(a, a.path), `duplicate community alias ${JSON.stringify(a.name)}: already defined by ${place(first.source, first.path)}`, placeOf(first, first.path));
    else aliases.set(a.name, a);
  }

  for (const decl of all.pools) checkReserved(decl, fail);
  checkOverlaps([...pools.values()], fail);

  // A reference from one object to another that does not exist yet is pending when the two are
  // separate objects (they may be applied in any order); inside the ConfigMap it is an error.
  const waitFor = (decl: { source: string; resource?: number }, path: string, message: string): void => {
    report.pending.push({ ...placeOf(decl, path), message });
  };
  for (const decl of all.peers) {
    const profile = decl.value.bfdProfile;
    if (profile === undefined || bfdProfiles.has(profile)) continue;
    const known = [...bfdProfiles.keys()];
    if (fromConfigMap(decl)) {
      fail(
        placeOf(decl, decl.paths.bfdProfile),
        `unknown BFD profile ${JSON.stringify(profile)} (${known.length ? `defined: ${known.join(', ')}` : 'no BFD profiles are defined'})`,
      );
      decl.ok = false;
    } else {
      waitFor(decl, decl.paths.bfdProfile, `BFD profile ${JSON.stringify(profile)} does not exist yet; the session runs without BFD until it is created`);
      delete decl.value.bfdProfile;
    }
  }
  checkPeersPerNode([...peers.values()], fail);

  const poolNames = [...pools.keys()];
  for (const decl of [...all.l2Advertisements, ...all.bgpAdvertisements]) {
    for (const ref of decl.poolRefs) {
      if (pools.has(ref.text)) continue;
      if (fromConfigMap(decl)) {
        fail(placeOf(decl, ref.path), `unknown pool ${JSON.stringify(ref.text)} (${poolNames.length ? `defined: ${poolNames.join(', ')}` : 'no pools are defined'})`);
        decl.ok = false;
      } else {
        // MetalLB skips a pool name it does not know; the advertisement covers the others meanwhile.
        waitFor(decl, ref.path, `pool ${JSON.stringify(ref.text)} does not exist yet; this advertisement covers it once it is created`);
      }
    }
  }

  for (const decl of all.bgpAdvertisements) {
    const adv = decl.value;
    for (const ref of decl.communityRefs) {
      const c = resolveCommunity(ref.text, aliases);
      if ('error' in c) {
        fail(placeOf(decl, ref.path), c.error);
        decl.ok = false;
      } else if ('unknown' in c) {
        if (fromConfigMap(decl)) {
          fail(placeOf(decl, ref.path), c.unknown);
          decl.ok = false;
        } else {
          // Left out until then: its routes must not go out without the community asked for.
          waitFor(decl, ref.path, `community alias ${JSON.stringify(ref.text)} is not defined yet; this advertisement is not used until a Community defines it`);
          decl.ok = false;
        }
      } else {
        const community = c.community;
        if (community && !adv.communities.some((x) => sameCommunity(x, community))) adv.communities.push(community);
      }
    }
    for (const pool of selectedPools(adv, [...pools.values()].map(asSelectable))) {
      const problems = aggregationProblems(adv.aggregationLength, adv.aggregationLengthV6, pool.decl);
      for (const p of problems) {
        fail(placeOf(decl, p.family === 'IPv4' ? decl.aggregationLengthPath : decl.aggregationLengthV6Path), p.message);
        decl.ok = false;
      }
    }
  }
  checkLocalPrefs([...bgpAdvertisements.values()], [...pools.values()], fail);
  warnIdentical([...l2Advertisements.values()], 'L2Advertisement', l2Key, report);
  warnIdentical([...bgpAdvertisements.values()], 'BGPAdvertisement', bgpKey, report);
  checkEchoOverIPv6([...bgpAdvertisements.values()], [...pools.values()], [...peers.values()], bfdProfiles, fail);

  const communities: Record<string, Community> = {};
  for (const [name, a] of aliases) if (a.community) communities[name] = a.community;
  const kept = <T>(decls: readonly Declared<T>[]): T[] => decls.filter((d) => d.ok).map((d) => d.value);
  return {
    pools: kept(all.pools),
    peers: kept(all.peers),
    bfdProfiles: kept(all.bfdProfiles),
    communities,
    l2Advertisements: kept(all.l2Advertisements),
    bgpAdvertisements: kept(all.bgpAdvertisements),
  };
}

type Fail = (where: Place, message: string, related?: Place) => void;

function fromConfigMap(decl: Declared<{ origin: Origin }>): boolean {
  return decl.value.origin.kind === 'ConfigMap';
}

/** The first declaration of each name; later ones are reported and dropped. */
function firstByName<D extends Declared<{ name: string }>>(decls: readonly D[], what: string, fail: Fail): Map<string, D> {
  const first = new Map<string, D>();
  for (const d of decls) {
    const prior = first.get(d.value.name);
    if (prior === undefined) {
      first.set(d.value.name, d);
      continue;
    }
    fail(
      placeOf(d, d.namePath),
      `duplicate ${what} name ${JSON.stringify(d.value.name)}: already defined by ${place(prior.source, prior.namePath)}`,
      placeOf(prior, prior.namePath),
    );
    d.ok = false;
  }
  return first;
}

/**
 * A pool holds only addresses a Service can be reached at: no loopback, multicast, link-local,
 * unspecified or broadcast address, not even as part of a wider range (`0.0.0.0/0`). A refused
 * entry is left out of the pool, so it does not also show up as overlapping every other pool.
 */
function checkReserved(decl: PoolDecl, fail: Fail): void {
  const ranges: IPRange[] = [];
  const paths: string[] = [];
  decl.value.ranges.forEach((range, i) => {
    const path = decl.rangePaths[i] ?? decl.path;
    const problem = reservedProblem(range, decl.value.name);
    if (problem === undefined) {
      ranges.push(range);
      paths.push(path);
      return;
    }
    fail(placeOf(decl, path), problem);
    decl.ok = false;
  });
  decl.value.ranges = ranges;
  decl.rangePaths = paths;
}

/**
 * Every address belongs to at most one pool and appears once in it: the allocator and the
 * announcers look an IP up to its pool, and two answers would make them disagree.
 */
function checkOverlaps(pools: readonly PoolDecl[], fail: Fail): void {
  interface Entry {
    order: number;
    range: IPRange;
    path: string;
    decl: PoolDecl;
  }
  const entries: Entry[] = [];
  for (const decl of pools) {
    decl.value.ranges.forEach((range, i) => {
      entries.push({ order: entries.length, range, path: decl.rangePaths[i] ?? decl.path, decl });
    });
  }
  const sorted = [...entries].sort((a, b) => {
    if (a.range.family !== b.range.family) return a.range.family < b.range.family ? -1 : 1;
    return a.range.first < b.range.first ? -1 : a.range.first > b.range.first ? 1 : a.order - b.order;
  });
  const pairs: [Entry, Entry][] = [];
  let active: Entry[] = [];
  for (const e of sorted) {
    active = active.filter((a) => a.range.family === e.range.family && a.range.last >= e.range.first);
    for (const a of active) pairs.push(a.order < e.order ? [a, e] : [e, a]);
    active.push(e);
  }
  // Report at the later of the two, in the order the operator wrote them.
  pairs.sort(([, a], [, b]) => a.order - b.order);
  for (const [earlier, later] of pairs) {
    const whose = earlier.decl === later.decl ? 'in the same pool' : `of pool ${JSON.stringify(earlier.decl.value.name)}`;
    fail(
      placeOf(later.decl, later.path),
      `${JSON.stringify(later.range.text)} overlaps ${JSON.stringify(earlier.range.text)} ${whose} (${place(earlier.decl.source, earlier.path)})`,
      placeOf(earlier.decl, earlier.path),
    );
    later.decl.ok = false;
  }
}

/**
 * One node runs one BGP speaker: MetalLB (FRR) refuses two peers that can land on one node with
 * the same address (one neighbor, configured twice), different router IDs or different local
 * ASNs. "Can land on one node" is judged from the node selectors alone (some labels satisfy
 * both), so the answer holds for nodes that join later too.
 */
function checkPeersPerNode(peers: readonly PeerDecl[], fail: Fail): void {
  const routerID = (p: PeerDecl): string => (p.value.routerID ? formatIP(p.value.routerID) : 'none set');
  const rules: { path: (p: PeerDecl) => string; clash: (a: PeerDecl, b: PeerDecl) => string | undefined }[] = [
    {
      path: (p) => p.paths.peerAddress,
      clash: (a, b) =>
        a.value.peerAddress.family === b.value.peerAddress.family && a.value.peerAddress.value === b.value.peerAddress.value
          ? `BGP peer ${JSON.stringify(b.value.name)} has the same address ${formatIP(b.value.peerAddress)} as peer ${JSON.stringify(a.value.name)} (${place(a.source, a.path)}) ` +
            `and both can run on one node, which holds one session per neighbor address: merge them, or give them node selectors no node satisfies both`
          : undefined,
    },
    {
      path: (p) => p.paths.routerID,
      clash: (a, b) =>
        routerID(a) !== routerID(b)
          ? `router ID ${routerID(b)} differs from peer ${JSON.stringify(a.value.name)}'s (${routerID(a)}, ${place(a.source, a.path)}) ` +
            `and both can run on one node, which has one BGP router ID: set the same routerID on both, or give them node selectors no node satisfies both`
          : undefined,
    },
    {
      path: (p) => p.paths.myASN,
      clash: (a, b) =>
        a.value.myASN !== b.value.myASN
          ? `local ASN ${b.value.myASN} differs from peer ${JSON.stringify(a.value.name)}'s (${a.value.myASN}, ${place(a.source, a.path)}) ` +
            `and both can run on one node, which speaks BGP as one AS: set the same myASN on both, or give them node selectors no node satisfies both`
          : undefined,
    },
  ];
  peers.forEach((later, i) => {
    for (const rule of rules) {
      // One error per peer and rule, naming the first peer it clashes with.
      for (const earlier of peers.slice(0, i)) {
        const message = rule.clash(earlier, later);
        if (message === undefined || !selectorListsOverlap(earlier.value.nodeSelectors, later.value.nodeSelectors)) continue;
        fail(placeOf(later, rule.path(later)), message, placeOf(earlier, rule.path(earlier)));
        later.ok = false;
        break;
      }
    }
  });
}

type Resolved = { community: Community | undefined } | { error: string } | { unknown: string };

function resolveCommunity(text: string, aliases: ReadonlyMap<string, { community: Community | undefined }>): Resolved {
  const alias = aliases.get(text);
  // A malformed alias was reported where it is defined; no second error here.
  if (alias) return { community: alias.community };
  if (text.includes(':') || /^\d+$/.test(text)) {
    const parsed = parseCommunity(text);
    return parsed.ok ? { community: parsed.value } : { error: parsed.error };
  }
  const known = [...aliases.keys()];
  return {
    unknown:
      `unknown community alias ${JSON.stringify(text)} ` +
      `(${known.length ? `defined: ${known.join(', ')}` : 'no aliases are defined'}; define it in a Community resource, or write the value as "asn:value")`,
  };
}

/**
 * MetalLB's rule: two advertisements that send a pool's prefixes to the same peers from the same
 * nodes, with the same aggregation, must agree on LOCAL_PREF, or a router gets one prefix with
 * two preferences. Advertisements naming disjoint peers, with node selectors no node satisfies
 * both, or with different aggregation lengths (different prefixes) do not collide. A missing
 * localPref is 0, as MetalLB reads it.
 */
function checkLocalPrefs(advs: readonly BGPAdvDecl[], pools: readonly PoolDecl[], fail: Fail): void {
  const selectable = pools.map(asSelectable);
  advs.forEach((later, i) => {
    for (const earlier of advs.slice(0, i)) {
      const a = earlier.value;
      const b = later.value;
      if ((a.localPref ?? 0) === (b.localPref ?? 0)) continue;
      if (a.peers.length > 0 && b.peers.length > 0 && !a.peers.some((p) => b.peers.includes(p))) continue;
      if (!selectorListsOverlap(a.nodeSelectors, b.nodeSelectors)) continue;
      const shared = selectedPools(a, selectable).filter((p) => selectedPools(b, selectable).includes(p));
      const pool = shared.find((p) => !aggregationDiffers(a, b, p.decl.value.ranges));
      if (pool === undefined) continue;
      fail(
        placeOf(later, later.localPrefPath),
        `LOCAL_PREF ${b.localPref ?? 0} conflicts with BGPAdvertisement ${JSON.stringify(a.name)} (${place(earlier.source, earlier.path)}), ` +
          `which gives pool ${JSON.stringify(pool.name)} LOCAL_PREF ${a.localPref ?? 0} towards the same peers from the same nodes with the same aggregation: ` +
          `use one localPref, or make them differ in peers, node selectors or aggregation length`,
        placeOf(earlier, earlier.localPrefPath),
      );
      later.ok = false;
      return;
    }
  });
}

/** Whether two advertisements make different prefixes of a pool's addresses (MetalLB's isAggrLengthDifferent). */
function aggregationDiffers(a: { aggregationLength: number; aggregationLengthV6: number }, b: typeof a, ranges: readonly IPRange[]): boolean {
  const v4 = ranges.some((r) => r.family === 'IPv4');
  const v6 = ranges.some((r) => r.family === 'IPv6');
  const d4 = a.aggregationLength !== b.aggregationLength;
  const d6 = a.aggregationLengthV6 !== b.aggregationLengthV6;
  if (!v4 && !v6) return true;
  if (v4 && v6) return d4 && d6;
  return v4 ? d4 : d6;
}

const sortedText = (xs: readonly string[]): string[] => [...xs].sort();

/** What an L2Advertisement does, without its name: equal for two that do the same. */
function l2Key(a: L2Decl['value']): string {
  return JSON.stringify([
    sortedText(a.ipAddressPools),
    sortedText(a.ipAddressPoolSelectors.map(selectorKey)),
    sortedText(a.nodeSelectors.map(selectorKey)),
    sortedText(a.interfaces),
    JSON.stringify(a.preferredNodeSelectors ?? []),
  ]);
}

/** What a BGPAdvertisement does, without its name. */
function bgpKey(a: BGPAdvDecl['value']): string {
  return JSON.stringify([
    sortedText(a.ipAddressPools),
    sortedText(a.ipAddressPoolSelectors.map(selectorKey)),
    sortedText(a.nodeSelectors.map(selectorKey)),
    sortedText(a.peers),
    a.aggregationLength,
    a.aggregationLengthV6,
    a.localPref ?? 0,
    sortedText(a.communities.map(formatCommunity)),
  ]);
}

/**
 * Two advertisements that say the same thing under two names: the second adds nothing. MetalLB
 * compares whole objects, names included, so it never sees these as equal; we accept them as
 * it does, and say so.
 */
function warnIdentical<D extends Declared<{ name: string; origin: Origin }>>(decls: readonly D[], kind: string, key: (v: D['value']) => string, report: Report): void {
  const seen = new Map<string, D>();
  for (const d of decls) {
    // ConfigMap advertisements are one per pool (or per entry, checked there).
    if (fromConfigMap(d)) continue;
    const k = key(d.value);
    const first = seen.get(k);
    if (first === undefined) {
      seen.set(k, d);
      continue;
    }
    report.warnings.push({
      ...placeOf(d, 'spec'),
      message: `does the same as ${kind} ${JSON.stringify(first.value.name)} (${place(first.source, first.path)}): it adds nothing; delete one`,
      related: placeOf(first, first.path),
    });
  }
}

/**
 * BFD echo mode does not work over IPv6 (FRR): MetalLB refuses a peer whose BFD profile has
 * echo mode on when an advertisement sends it an IPv6 pool's routes. Reported at the peer's
 * bfdProfile, once per peer.
 */
function checkEchoOverIPv6(advs: readonly BGPAdvDecl[], pools: readonly PoolDecl[], peers: readonly PeerDecl[], profiles: ReadonlyMap<string, BFDDecl>, fail: Fail): void {
  const selectable = pools.map(asSelectable);
  const reported = new Set<PeerDecl>();
  for (const adv of advs) {
    const v6 = selectedPools(adv.value, selectable).find((p) => p.decl.value.ranges.some((r) => r.family === 'IPv6'));
    if (v6 === undefined) continue;
    for (const peer of peers) {
      if (reported.has(peer)) continue;
      if (adv.value.peers.length > 0 && !adv.value.peers.includes(peer.value.name)) continue;
      const profile = peer.value.bfdProfile === undefined ? undefined : profiles.get(peer.value.bfdProfile);
      if (!profile?.value.echoMode) continue;
      fail(
        placeOf(peer, peer.paths.bfdProfile),
        `BFD profile ${JSON.stringify(profile.value.name)} has echo mode on, but IPv6 pool ${JSON.stringify(v6.name)} is advertised to this peer ` +
          `by ${place(adv.source, adv.path)}; BFD echo does not work over IPv6: ` +
          `turn echoMode off in the profile, or give this peer a profile without it`,
        placeOf(adv, adv.path),
      );
      peer.ok = false;
      reported.add(peer);
    }
  }
}

function asSelectable(decl: PoolDecl): { name: string; labels: Record<string, string>; decl: PoolDecl } {
  return { name: decl.value.name, labels: decl.value.labels, decl };
}

/**
 * MetalLB's rule: an advertisement may not aggregate wider than the pool's own blocks. For a
 * CIDR that is its prefix; an `a-b` range is split into CIDR blocks, and the aggregation length
 * must be at least the prefix of the largest one (as MetalLB's validateBGPAdvPerPool does).
 */
function aggregationProblems(length: number, lengthV6: number, decl: PoolDecl): { family: 'IPv4' | 'IPv6'; message: string }[] {
  const out: { family: 'IPv4' | 'IPv6'; message: string }[] = [];
  for (const range of decl.value.ranges) {
    const agg = range.family === 'IPv4' ? length : lengthV6;
    const widest = range.prefix ?? largestBlockPrefix(range);
    if (agg >= widest) continue;
    const what = range.prefix !== undefined ? `CIDR ${range.text}` : `range ${range.text} (its largest CIDR block is a /${widest})`;
    const field = range.family === 'IPv4' ? 'aggregation length' : 'IPv6 aggregation length';
    out.push({
      family: range.family,
      message: `invalid ${field} ${agg} for pool ${JSON.stringify(decl.value.name)} with ${what}: ` + `routes would cover addresses outside the pool; use ${widest} or more`,
    });
  }
  return out;
}

/** The shortest prefix among the CIDR blocks that exactly tile the range. */
function largestBlockPrefix(range: IPRange): number {
  const bits = FAMILY_BITS[range.family];
  let best = bits;
  let cur = range.first;
  while (cur <= range.last) {
    let size = 0;
    // Grow the block while it stays aligned at `cur` and inside the range.
    while (size < bits && (cur & ((1n << BigInt(size + 1)) - 1n)) === 0n && cur + (1n << BigInt(size + 1)) - 1n <= range.last) size++;
    best = Math.min(best, bits - size);
    cur += 1n << BigInt(size);
  }
  return best;
}
