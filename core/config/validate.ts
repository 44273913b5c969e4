/**
 * Merging the sources into one Config and the checks that span objects: duplicate names,
 * overlapping addresses, references (pools, BFD profiles, community aliases), duplicate peers,
 * aggregation lengths against the pools an advertisement covers.
 */
import { FAMILY_BITS, formatIP, type IPRange } from '../ip/index.js';
import { parseCommunity, sameCommunity } from './community.js';
import { place, type Declarations, type Declared, type PoolDecl } from './declarations.js';
import { reservedProblem } from './reserved.js';
import { selectorKey, selectorMatches } from './selector.js';
import type { Community, Config, ConfigError, LabelSelector, Pool } from './types.js';

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
export function merge(sources: readonly Declarations[], errors: ConfigError[]): Config {
  const all: Declarations = {
    pools: sources.flatMap((d) => d.pools),
    peers: sources.flatMap((d) => d.peers),
    bfdProfiles: sources.flatMap((d) => d.bfdProfiles),
    aliases: sources.flatMap((d) => d.aliases),
    l2Advertisements: sources.flatMap((d) => d.l2Advertisements),
    bgpAdvertisements: sources.flatMap((d) => d.bgpAdvertisements),
  };
  const fail = (source: string, path: string, message: string): void => {
    errors.push({ source, path, message });
  };

  // Later definitions of a name are the errors; the first one stands.
  const pools = firstByName(all.pools, 'pool', fail);
  firstByName(all.peers, 'BGP peer', fail);
  const bfdProfiles = firstByName(all.bfdProfiles, 'BFD profile', fail);
  firstByName(all.l2Advertisements, 'L2Advertisement', fail);
  firstByName(all.bgpAdvertisements, 'BGPAdvertisement', fail);

  const aliases = new Map<string, { community: Community | undefined; source: string; path: string }>();
  for (const a of all.aliases) {
    const first = aliases.get(a.name);
    if (first) fail(a.source, a.path, `duplicate community alias ${JSON.stringify(a.name)}: already defined by ${place(first.source, first.path)}`);
    else aliases.set(a.name, a);
  }

  for (const decl of all.pools) checkReserved(decl, fail);
  checkOverlaps([...pools.values()], fail);

  for (const decl of all.peers) {
    const profile = decl.value.bfdProfile;
    if (profile !== undefined && !bfdProfiles.has(profile)) {
      const known = [...bfdProfiles.keys()];
      fail(decl.source, decl.bfdProfilePath, `unknown BFD profile ${JSON.stringify(profile)} (${known.length ? `defined: ${known.join(', ')}` : 'no BFD profiles are defined'})`);
      decl.ok = false;
    }
  }
  checkDuplicatePeers(all.peers, fail);

  const poolNames = [...pools.keys()];
  for (const decl of [...all.l2Advertisements, ...all.bgpAdvertisements]) {
    for (const ref of decl.poolRefs) {
      if (pools.has(ref.text)) continue;
      fail(decl.source, ref.path, `unknown pool ${JSON.stringify(ref.text)} (${poolNames.length ? `defined: ${poolNames.join(', ')}` : 'no pools are defined'})`);
      decl.ok = false;
    }
  }

  for (const decl of all.bgpAdvertisements) {
    const adv = decl.value;
    for (const ref of decl.communityRefs) {
      const c = resolveCommunity(ref.text, aliases);
      if ('error' in c) {
        fail(decl.source, ref.path, c.error);
        decl.ok = false;
      } else {
        const community = c.community;
        if (community && !adv.communities.some((x) => sameCommunity(x, community))) adv.communities.push(community);
      }
    }
    for (const pool of selectedPools(adv, [...pools.values()].map(asSelectable))) {
      const problems = aggregationProblems(adv.aggregationLength, adv.aggregationLengthV6, pool.decl);
      for (const p of problems) {
        fail(decl.source, p.family === 'IPv4' ? decl.aggregationLengthPath : decl.aggregationLengthV6Path, p.message);
        decl.ok = false;
      }
    }
  }

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

type Fail = (source: string, path: string, message: string) => void;

/** The first declaration of each name; later ones are reported and dropped. */
function firstByName<D extends Declared<{ name: string }>>(decls: readonly D[], what: string, fail: Fail): Map<string, D> {
  const first = new Map<string, D>();
  for (const d of decls) {
    const prior = first.get(d.value.name);
    if (prior === undefined) {
      first.set(d.value.name, d);
      continue;
    }
    fail(d.source, d.namePath, `duplicate ${what} name ${JSON.stringify(d.value.name)}: already defined by ${place(prior.source, prior.namePath)}`);
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
    fail(decl.source, path, problem);
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
      later.decl.source,
      later.path,
      `${JSON.stringify(later.range.text)} overlaps ${JSON.stringify(earlier.range.text)} ${whose} (${place(earlier.decl.source, earlier.path)})`,
    );
    later.decl.ok = false;
  }
}

/** Two peers with the same address, port and node selectors would be one session configured twice. */
function checkDuplicatePeers(peers: Declarations['peers'], fail: Fail): void {
  const seen = new Map<string, Declarations['peers'][number]>();
  for (const decl of peers) {
    const p = decl.value;
    const key = `${p.peerAddress.family} ${p.peerAddress.value} ${p.peerPort} ${p.nodeSelectors.map(selectorKey).sort().join('|')}`;
    const prior = seen.get(key);
    if (prior === undefined) {
      seen.set(key, decl);
      continue;
    }
    if (prior.value.name === p.name) continue; // a duplicate name, already reported
    fail(
      decl.source,
      decl.path,
      `BGP peer ${JSON.stringify(p.name)} duplicates peer ${JSON.stringify(prior.value.name)} (${place(prior.source, prior.path)}): ` +
        `same address ${formatIP(p.peerAddress)}, port ${p.peerPort} and node selectors`,
    );
    decl.ok = false;
  }
}

function resolveCommunity(text: string, aliases: ReadonlyMap<string, { community: Community | undefined }>): { community: Community | undefined } | { error: string } {
  const alias = aliases.get(text);
  // A malformed alias was reported where it is defined; no second error here.
  if (alias) return { community: alias.community };
  if (text.includes(':') || /^\d+$/.test(text)) {
    const parsed = parseCommunity(text);
    return parsed.ok ? { community: parsed.value } : { error: parsed.error };
  }
  const known = [...aliases.keys()];
  return {
    error:
      `unknown community alias ${JSON.stringify(text)} ` +
      `(${known.length ? `defined: ${known.join(', ')}` : 'no aliases are defined'}; define it in a Community resource, or write the value as "asn:value")`,
  };
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
