/**
 * Pools -> IPs for Services: requested IPs, the pool annotation, auto-assign ordered by
 * serviceAllocation, dual-stack, and IP sharing, with the semantics of MetalLB's allocator.
 *
 * Nothing here walks a range address by address: each pool keeps its held addresses as sorted
 * runs (runs.ts), so a /8 or an IPv6 /64 costs what a /30 costs, and allocation cost does not
 * grow with the number of Services.
 */
import type { Pool } from '../config/types.js';
import { formatIP, isBuggyIP, rangeSize, sameIP, type Family, type IP, type IPRange } from '../ip/index.js';
import { type Failure, type Request, serviceKey } from './request.js';
import { RunSet } from './runs.js';
import { sharingProblemAmong } from './sharing.js';
import { selectorMatches as matches } from '../config/selector.js';

/** What one Service holds in the allocator: its allocation (an IPClaim, in the API, is one IP and its holders). */
export interface Allocation {
  /** `namespace/name`. */
  service: string;
  /** The pool the IPs come from (dual-stack pairs always come from one pool). */
  pool: string;
  /** One IP, or one per family (primary family first when auto-assigned). */
  ips: readonly IP[];
  /** The request the IPs were assigned for; kept to re-check them when the pools change. */
  request: Request;
}

/** The outcome of `assign`: the Service's IPs and their pool, or why not. */
export type Assignment = { ok: true; service: string; pool: string; ips: readonly IP[]; changed: boolean } | { ok: false; failure: Failure };

/** An allocation known from before (e.g. read back from the cluster after a restart). */
export interface Held {
  request: Request;
  ips: readonly IP[];
  /** The pool it was allocated from, when recorded (the ip-allocated-from-pool annotation). */
  pool?: string;
}

/** A Service that lost (or could not get back) its IPs, or some of them, and why. */
export interface Revocation {
  service: string;
  /** Every IP the Service held before. */
  ips: readonly IP[];
  /** The pool the IPs were in before. */
  pool?: string;
  /** Why the IPs no longer do, as a whole (the first problem found). */
  failure: Failure;
  /**
   * Set by `setPools`: the IPs (of `ips`) still allowed one by one, which the Service keeps
   * holding, so that assigning it again keeps them and fills only what was lost. Empty when
   * nothing can be kept; absent (older producers) means nothing was kept.
   */
  kept?: readonly IP[];
  /** Set by `setPools`: the IPs (of `ips`) the Service no longer holds; release exactly these. */
  lost?: readonly IP[];
}

/** Addresses of one pool (and per family): size excludes .0/.255 when the pool avoids them. */
export interface PoolUsage {
  size: bigint;
  used: bigint;
  free: bigint;
  families: Record<Family, { size: bigint; used: bigint; free: bigint }>;
}

/** Whether a pool can serve a Service's auto-assignment, in the order they are tried. */
export interface PoolCandidate {
  pool: string;
  usable: boolean;
  /** Why not, when not usable (pool-not-allowed or pool-not-auto-assign). */
  reason?: Failure;
}

/** Options of `assign`. */
export interface AssignOptions {
  /** Compute the answer but change nothing (admission dry-run). */
  dryRun?: boolean;
  /**
   * Addresses the Service held before (e.g. its status, or a Revocation's `kept`): each one still
   * usable for this request (a family it wants, in a pool it may use and the one it names, free
   * or shareable) is kept, and only the missing families are filled, from the kept ones' pool.
   * The Service's current addresses are always preferred this way. Ignored when the request
   * names IPs (requestedIPs are honoured exactly); when nothing can be kept, chosen afresh.
   */
  prefer?: readonly IP[];
}

const FAMILIES: readonly Family[] = ['IPv4', 'IPv6'];

function otherFamily(f: Family): Family {
  return f === 'IPv4' ? 'IPv6' : 'IPv4';
}

interface PoolState {
  readonly pool: Pool;
  /** Ranges of each family, ascending. */
  readonly ranges: Readonly<Record<Family, readonly IPRange[]>>;
  readonly size: Readonly<Record<Family, bigint>>;
  readonly runs: Readonly<Record<Family, RunSet>>;
}

/** One IP held by at least one Service. */
interface Address {
  readonly ip: IP;
  readonly pool: PoolState;
  /** Set by the first holder; every later holder has the same (that is what sharing requires). */
  readonly sharingKey: string | undefined;
  /** Services holding it: usually one, a handful when shared (their requests are read from their claims). */
  readonly holders: string[];
}

/** A claim with the addresses it holds, so that releasing it needs no lookup. */
interface HeldAllocation extends Allocation {
  readonly addresses: Address[];
}

function publicAllocation(h: HeldAllocation): Allocation {
  return { service: h.service, pool: h.pool, ips: h.ips, request: h.request };
}

interface RangeEntry {
  readonly first: bigint;
  readonly last: bigint;
  readonly state: PoolState;
}

type Located = { state: PoolState } | { state: undefined; avoidedBy?: PoolState };

type Checked = { ok: true; state: PoolState } | { ok: false; failure: Failure };

type Chosen = { ok: true; state: PoolState; ips: IP[] } | { ok: false; failure: Failure };

/** Families a request wants: one (`single`), both or fail (`require`), both if possible (`prefer`). */
interface Wanted {
  mode: 'single' | 'prefer' | 'require';
  primary: Family;
  secondary: Family;
}

function wantedFamilies(req: Request): Wanted {
  const mode = req.familyPolicy === 'RequireDualStack' ? 'require' : req.familyPolicy === 'PreferDualStack' ? 'prefer' : 'single';
  // ipFamilies may be unset at admission time; then a requested IP tells the family.
  const primary = req.families[0] ?? req.requestedIPs[0]?.family ?? 'IPv4';
  return { mode, primary, secondary: otherFamily(primary) };
}

/** Addresses per page of the address table (a power of two). */
const PAGE = 16;
/** The low bits of an IPv6 address that pick its page (34 - log2(PAGE) = 30 bits: a small integer). */
const IPV6_LOW = (1n << 34n) - 1n;

/** PAGE consecutive addresses of one family, from `base`; `used` slots are set. */
interface Page {
  readonly base: bigint;
  readonly slots: (Address | undefined)[];
  used: number;
}

/**
 * Held addresses by value, in pages of PAGE consecutive addresses behind one Map.
 *
 * The allocator hands out the lowest free address, so the Services created together hold
 * neighbouring addresses and share pages: the Map has one entry per PAGE addresses and its
 * recently used entries stay in cache. A Map with one entry per address (keyed by the address,
 * even as a small integer) was cache-bound: at 100k Services every lookup landed on a cold
 * bucket and chain, and the table's cost grew several-fold between 1k and 100k Services.
 *
 * Keys are small integers: an IPv4 page by its address / PAGE (unique), an IPv6 page as
 * -1 - (low 34 bits / PAGE); IPv6 pages equal in those bits (other pools at the same offset) go
 * in a short list. A page alone costs ~PAGE slots, the price of scattered requested IPs.
 */
class AddressTable {
  private readonly pages = new Map<number, Page | Page[]>();

  get(ip: IP): Address | undefined {
    const low = lowBits(ip);
    const slot = low % PAGE;
    const e = this.pages.get(pageKey(ip, low));
    if (e === undefined) return undefined;
    if (!Array.isArray(e)) return matching(e.slots[slot], ip);
    for (const page of e) {
      const a = matching(page.slots[slot], ip);
      if (a) return a;
    }
    return undefined;
  }

  /** Add an address not yet in the table. */
  set(address: Address): void {
    const ip = address.ip;
    const low = lowBits(ip);
    const slot = low % PAGE;
    const key = pageKey(ip, low);
    const e = this.pages.get(key);
    let page = e === undefined || Array.isArray(e) ? undefined : e;
    if (page && ip.family === 'IPv6' && page.base !== ip.value - BigInt(slot)) {
      // Another IPv6 page with the same key: keep both in a list.
      page = undefined;
    } else if (Array.isArray(e)) {
      const base = ip.value - BigInt(slot);
      page = e.find((p) => p.base === base);
    }
    if (!page) {
      page = { base: ip.value - BigInt(slot), slots: new Array<Address | undefined>(PAGE).fill(undefined), used: 0 };
      if (e === undefined) this.pages.set(key, page);
      else if (Array.isArray(e)) e.push(page);
      else this.pages.set(key, [e, page]);
    }
    if (page.slots[slot] === undefined) page.used++;
    page.slots[slot] = address;
  }

  delete(ip: IP): void {
    const low = lowBits(ip);
    const slot = low % PAGE;
    const key = pageKey(ip, low);
    const e = this.pages.get(key);
    if (e === undefined) return;
    const page = Array.isArray(e) ? e.find((p) => matching(p.slots[slot], ip)) : matching(e.slots[slot], ip) && e;
    if (!page) return;
    page.slots[slot] = undefined;
    if (--page.used > 0) return;
    if (!Array.isArray(e)) {
      this.pages.delete(key);
      return;
    }
    const rest = e.filter((p) => p !== page);
    const only = rest[0];
    if (rest.length === 1 && only) this.pages.set(key, only);
    else this.pages.set(key, rest);
  }

  clear(): void {
    this.pages.clear();
  }
}

/** The low bits of an address as a number: all 32 of IPv4, 34 of IPv6. */
function lowBits(ip: IP): number {
  return ip.family === 'IPv4' ? Number(ip.value) : Number(ip.value & IPV6_LOW);
}

/** The AddressTable key of the page holding an address whose low bits are `low`. */
function pageKey(ip: IP, low: number): number {
  const page = Math.floor(low / PAGE);
  return ip.family === 'IPv4' ? page : -1 - page;
}

function matching(a: Address | undefined, ip: IP): Address | undefined {
  return a !== undefined && a.ip.value === ip.value && a.ip.family === ip.family ? a : undefined;
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Count of addresses ending in .0 or .255 in an IPv4 range, by arithmetic. */
function buggyCount(r: IPRange): bigint {
  const zeros = r.last / 256n - (r.first + 255n) / 256n + 1n;
  const broadcasts = (r.last + 1n) / 256n - (r.first + 256n) / 256n + 1n;
  return zeros + broadcasts;
}

function buildPool(pool: Pool): PoolState {
  const ranges: Record<Family, IPRange[]> = { IPv4: [], IPv6: [] };
  const size: Record<Family, bigint> = { IPv4: 0n, IPv6: 0n };
  for (const r of pool.ranges) {
    ranges[r.family].push(r);
    size[r.family] += rangeSize(r) - (pool.avoidBuggyIPs && r.family === 'IPv4' ? buggyCount(r) : 0n);
  }
  for (const f of FAMILIES) ranges[f].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  // .0/.255 are only an IPv4 concern.
  const runs = { IPv4: new RunSet(pool.avoidBuggyIPs), IPv6: new RunSet(false) };
  return { pool, ranges, size, runs };
}

/**
 * Hands out load-balancer IPs from the configured pools and remembers who holds what.
 *
 * Every operation is synchronous and pure in-memory; the webhook and controller persist the
 * outcome (claims, annotations) and feed it back with `restore` after a restart.
 */
export class Allocator {
  private pools = new Map<string, PoolState>();
  /** Pool names in order, for deterministic iteration. */
  private poolNames: string[] = [];
  /**
   * Every pool in the order auto-assignment tries them, as MetalLB: pools with a serviceAllocation
   * first (by priority, lower first; no priority after those with one), then pools without.
   * Ties go by name, so every replica picks alike. Fixed per pool set, so sorted once here.
   */
  private tryOrder: PoolState[] = [];
  private rangeIndex: Record<Family, RangeEntry[]> = { IPv4: [], IPv6: [] };
  private readonly allocationsByService = new Map<string, HeldAllocation>();
  private readonly addresses = new AddressTable();
  /** Sharing key -> the addresses held under it, to prefer them on auto-assign. */
  private readonly sharedUnder = new Map<string, Set<Address>>();

  /** An allocator over `pools` holding nothing. */
  constructor(pools: readonly Pool[]) {
    this.installPools(pools);
  }

  /**
   * Give the Service its IPs, or say why not. Idempotent: a Service whose held IPs still
   * satisfy its request keeps them (`changed: false`). Otherwise it keeps each held (or
   * `options.prefer`red) address still usable and gets new ones only for the missing families.
   * Atomic: on failure nothing changes, the Service keeps whatever it held before.
   */
  assign(req: Request, options: AssignOptions = {}): Assignment {
    const service = serviceKey(req.namespace, req.name);
    const old = this.allocationsByService.get(service);
    // The Service's own holdings must not block its new choice (e.g. same IP, new ports).
    if (old) this.removeAllocation(old);

    let chosen: Chosen | undefined;
    let changed = true;
    if (old) {
      const kept = this.checkHeld(req, old.ips, old.pool);
      if (kept.ok) {
        chosen = { ok: true, state: kept.state, ips: [...old.ips] };
        changed = false;
        const want = wantedFamilies(req);
        const only = old.ips[0];
        // PreferDualStack with one IP: take the missing family from the same pool when it can.
        if (want.mode === 'prefer' && old.ips.length === 1 && only && req.requestedIPs.length === 0) {
          const extra = this.pickIn(kept.state, otherFamily(only.family), req);
          if (extra) {
            chosen.ips.push(extra);
            changed = true;
          }
        }
      }
    }
    if (!chosen && req.requestedIPs.length === 0 && (old || options.prefer?.length)) {
      chosen = this.choosePreferred(req, [...(old?.ips ?? []), ...(options.prefer ?? [])], old);
      if (chosen?.ok && old) changed = !(old.pool === chosen.state.pool.name && sameIPs(old.ips, chosen.ips));
    }
    chosen ??= this.choose(req);

    if (!chosen.ok || options.dryRun) {
      if (old) this.addAllocation(old);
      if (!chosen.ok) return { ok: false, failure: chosen.failure };
      return { ok: true, service, pool: chosen.state.pool.name, ips: chosen.ips, changed };
    }
    this.addAllocation({ service, pool: chosen.state.pool.name, ips: chosen.ips, request: req });
    return { ok: true, service, pool: chosen.state.pool.name, ips: chosen.ips, changed };
  }

  /** Free the Service's IPs (an IP shared with others stays held by them). Returns what it held. */
  release(service: string): Allocation | undefined {
    const claim = this.allocationsByService.get(service);
    if (!claim) return undefined;
    this.removeAllocation(claim);
    return publicAllocation(claim);
  }

  /**
   * Take back allocations made before a restart, before any new assignment, so existing
   * Services keep their IPs. Returns the ones that cannot be kept under the current pools
   * (the caller then assigns those Services afresh). A Service already holding IPs here keeps
   * them if its restored allocation is refused.
   */
  restore(held: readonly Held[]): Revocation[] {
    const refused: Revocation[] = [];
    for (const h of held) {
      const service = serviceKey(h.request.namespace, h.request.name);
      const old = this.allocationsByService.get(service);
      if (old) this.removeAllocation(old);
      const checked = this.checkHeld(h.request, h.ips, h.pool);
      if (checked.ok) {
        this.addAllocation({ service, pool: checked.state.pool.name, ips: [...h.ips], request: h.request });
      } else {
        if (old) this.addAllocation(old);
        refused.push({ service, ips: h.ips, ...(h.pool !== undefined && { pool: h.pool }), failure: checked.failure });
      }
    }
    return refused;
  }

  /**
   * Replace the pools. Services whose IPs the new pools no longer allow are returned with the
   * reason (sorted by Service); the others keep their IPs, with the pool name updated when their
   * IPs now belong to a differently named pool. A revoked Service keeps holding each address
   * still allowed one by one (`kept`: e.g. the IPv6 one when the pool's IPv4 range is removed;
   * all in one pool) and loses the others (`lost`); its claim may then fall short of its request
   * until it is assigned again, which keeps `kept` and fills only what was lost.
   */
  setPools(pools: readonly Pool[]): Revocation[] {
    const claims = [...this.allocationsByService.values()];
    this.allocationsByService.clear();
    this.addresses.clear();
    this.sharedUnder.clear();
    this.installPools(pools);
    const revoked: Revocation[] = [];
    for (const claim of claims) {
      const checked = this.checkHeld(claim.request, claim.ips, claim.pool);
      if (checked.ok) {
        this.addAllocation({ ...publicAllocation(claim), pool: checked.state.pool.name });
        continue;
      }
      // Address by address: keep what is still allowed alone (in one pool: the first kept one's).
      const kept: IP[] = [];
      const lost: IP[] = [];
      let state: PoolState | undefined;
      for (const ip of claim.ips) {
        const one = this.checkHeld(claim.request, [ip], claim.pool, true);
        if (one.ok && (!state || one.state === state)) {
          state = one.state;
          kept.push(ip);
        } else {
          lost.push(ip);
        }
      }
      // Every address fine alone but not together: nothing to keep apart from the others.
      if (lost.length === 0) lost.push(...kept.splice(0));
      if (state && kept.length > 0) this.addAllocation({ service: claim.service, pool: state.pool.name, ips: kept, request: claim.request });
      revoked.push({ service: claim.service, ips: claim.ips, pool: claim.pool, failure: checked.failure, kept, lost });
    }
    return revoked.sort((a, b) => byName(a.service, b.service));
  }

  /** Size, used and free addresses of a pool; undefined for an unknown pool. */
  usage(pool: string): PoolUsage | undefined {
    const state = this.pools.get(pool);
    if (!state) return undefined;
    const fam = (f: Family) => {
      const used = BigInt(state.runs[f].count);
      return { size: state.size[f], used, free: state.size[f] - used };
    };
    const families = { IPv4: fam('IPv4'), IPv6: fam('IPv6') };
    const size = families.IPv4.size + families.IPv6.size;
    const used = families.IPv4.used + families.IPv6.used;
    return { size, used, free: size - used, families };
  }

  /** The Services (`namespace/name`, sorted) holding `ip`; empty when it is free. */
  holders(ip: IP): string[] {
    const address = this.addresses.get(ip);
    return address ? [...address.holders].sort(byName) : [];
  }

  /** What a Service holds, if anything. */
  allocation(service: string): Allocation | undefined {
    const claim = this.allocationsByService.get(service);
    return claim && publicAllocation(claim);
  }

  /** Every claim, sorted by Service. */
  allocations(): Allocation[] {
    return [...this.allocationsByService.values()].map(publicAllocation).sort((a, b) => byName(a.service, b.service));
  }

  /** The pool that would serve `ip` (undefined if none, or if its pool avoids .0/.255 and it is one). */
  poolFor(ip: IP): string | undefined {
    return this.locate(ip).state?.pool.name;
  }

  /**
   * Every pool in the order auto-assignment tries them for this request, unusable ones last
   * with the reason: for explaining why a Service got (or did not get) a given pool.
   */
  candidates(req: Request): PoolCandidate[] {
    const usable = this.autoPools(req);
    const refused = this.refusedPools(req);
    return [...usable.map((s) => ({ pool: s.pool.name, usable: true })), ...refused.map(({ state, reason }) => ({ pool: state.pool.name, usable: false, reason }))];
  }

  // ---- choosing ----

  private choose(req: Request): Chosen {
    if (req.requestedIPs.length > 0) {
      const checked = this.checkHeld(req, req.requestedIPs, undefined);
      return checked.ok ? { ok: true, state: checked.state, ips: [...req.requestedIPs] } : checked;
    }
    if (req.pool !== undefined) {
      const state = this.pools.get(req.pool);
      if (!state) return { ok: false, failure: this.unknownPool(req.pool) };
      const notAllowed = this.refusal(state, req);
      if (notAllowed) return { ok: false, failure: notAllowed };
      return this.chooseFrom(req, [state], `pool "${req.pool}"`);
    }
    const usable = this.autoPools(req);
    if (usable.length === 0) {
      const want = wantedFamilies(req);
      const service = serviceKey(req.namespace, req.name);
      const why = this.refusedPools(req)
        .map((r) => `"${r.state.pool.name}": ${r.reason.code}`)
        .join(', ');
      const message =
        this.poolNames.length === 0
          ? `no address pools are configured, so ${service} cannot get an address; create an IPAddressPool`
          : `no address pool may auto-assign an ${want.primary} address to ${service} (${why}); ` + `name a pool with the metallb.io/address-pool annotation or adjust the pools`;
      return { ok: false, failure: { code: 'no-pool-for-family', message } };
    }
    return this.chooseFrom(req, usable, 'auto');
  }

  /**
   * Keep what the Service held before: of `preferred`, the first address of each family still
   * usable for the request (all in one pool: the primary family's wins), then fill the missing
   * families from that pool only. Undefined when nothing is kept, or when RequireDualStack
   * cannot get its other family there (then the Service is placed afresh).
   */
  private choosePreferred(req: Request, preferred: readonly IP[], old: HeldAllocation | undefined): Chosen | undefined {
    const want = wantedFamilies(req);
    const usable = new Map<Family, { ip: IP; state: PoolState }>();
    for (const ip of preferred) {
      if (usable.has(ip.family)) continue;
      // Where the Service held it: its own addresses may stay in a pool that turned autoAssign off.
      const previousPool = old?.ips.some((x) => sameIP(x, ip)) ? old.pool : undefined;
      const checked = this.checkHeld(req, [ip], previousPool, true);
      if (checked.ok) usable.set(ip.family, { ip, state: checked.state });
    }
    const first = usable.get(want.primary) ?? usable.get(want.secondary);
    if (!first) return undefined;
    const state = first.state;
    if (want.mode === 'single') return { ok: true, state, ips: [first.ip] };
    const keep = (f: Family) => {
      const u = usable.get(f);
      return u && u.state === state ? u.ip : this.pickIn(state, f, req);
    };
    const a = keep(want.primary);
    const b = keep(want.secondary);
    if (a && b) return { ok: true, state, ips: [a, b] };
    if (want.mode === 'require') return undefined;
    return { ok: true, state, ips: [first.ip] };
  }

  /** Pools this request may auto-assign from, in `tryOrder`. */
  private autoPools(req: Request): PoolState[] {
    return this.tryOrder.filter((state) => state.pool.autoAssign && !this.refusal(state, req));
  }

  /** Pools this request may not auto-assign from, and why (for messages and `candidates`). */
  private refusedPools(req: Request): { state: PoolState; reason: Failure }[] {
    const refused: { state: PoolState; reason: Failure }[] = [];
    for (const state of this.tryOrder) {
      const reason = this.refusal(state, req);
      if (reason) {
        refused.push({ state, reason });
      } else if (!state.pool.autoAssign) {
        const message = `pool "${state.pool.name}" has autoAssign false: it serves only Services that name it or request one of its IPs`;
        refused.push({ state, reason: { code: 'pool-not-auto-assign', message } });
      }
    }
    return refused;
  }

  /**
   * The first pool (in order) giving what the request's families need, as MetalLB's
   * findBestPoolForService: for PreferDualStack a pool giving both wins, else the first giving
   * the primary family, else the first giving the other one.
   */
  private chooseFrom(req: Request, candidates: readonly PoolState[], scope: string): Chosen {
    const want = wantedFamilies(req);
    let ordered = candidates;
    if (req.sharingKey) {
      // A sharing key means "put me with the others": pools already holding a compatible IP
      // under the key go first, so sharing Services meet on one IP even if another pool ranks higher.
      const sharing = new Set<PoolState>();
      for (const a of this.sharedAddresses(req)) sharing.add(a.pool);
      if (sharing.size > 0) ordered = [...candidates.filter((s) => sharing.has(s)), ...candidates.filter((s) => !sharing.has(s))];
    }
    let primaryOnly: Chosen | undefined;
    let secondaryOnly: Chosen | undefined;
    for (const state of ordered) {
      const a = this.pickIn(state, want.primary, req);
      if (want.mode === 'single') {
        if (a) return { ok: true, state, ips: [a] };
        continue;
      }
      const b = this.pickIn(state, want.secondary, req);
      if (a && b) return { ok: true, state, ips: [a, b] };
      if (want.mode === 'prefer') {
        if (a && !primaryOnly) primaryOnly = { ok: true, state, ips: [a] };
        if (b && !secondaryOnly) secondaryOnly = { ok: true, state, ips: [b] };
      }
    }
    if (primaryOnly) return primaryOnly;
    if (secondaryOnly) return secondaryOnly;
    return { ok: false, failure: this.shortage(req, want, candidates, scope) };
  }

  /** For one pool and family: a compatible IP already shared under the key, else the lowest free. */
  private pickIn(state: PoolState, family: Family, req: Request): IP | undefined {
    let best: IP | undefined;
    if (req.sharingKey)
      for (const a of this.sharedAddresses(req)) {
        if (a.pool === state && a.ip.family === family && (!best || a.ip.value < best.value)) best = a.ip;
      }
    if (best) return best;
    const runs = state.runs[family];
    for (const r of state.ranges[family]) {
      const v = runs.firstFreeFrom(r.first);
      if (v <= r.last) return { family, value: v };
    }
    return undefined;
  }

  /** Addresses held under the request's sharing key that it may join. */
  private *sharedAddresses(req: Request): Generator<Address> {
    if (!req.sharingKey) return;
    const held = this.sharedUnder.get(req.sharingKey);
    if (!held) return;
    const service = serviceKey(req.namespace, req.name);
    for (const a of held) if (!this.shareProblem(a, req, service)) yield a;
  }

  private shortage(req: Request, want: Wanted, candidates: readonly PoolState[], scope: string): Failure {
    const service = serviceKey(req.namespace, req.name);
    const has = (s: PoolState, f: Family) => s.ranges[f].length > 0;
    const fits = (s: PoolState) => (want.mode === 'single' ? has(s, want.primary) : want.mode === 'require' ? has(s, 'IPv4') && has(s, 'IPv6') : has(s, 'IPv4') || has(s, 'IPv6'));
    const withFamily = candidates.filter(fits);
    const needs = want.mode === 'single' ? `an ${want.primary} address` : want.mode === 'require' ? 'both an IPv4 and an IPv6 address' : 'an address';
    if (withFamily.length === 0) {
      const where = scope === 'auto' ? 'no pool it may auto-assign from has' : `${scope} has no`;
      const what = want.mode === 'single' ? `${want.primary} addresses` : want.mode === 'require' ? 'both IPv4 and IPv6 addresses' : 'addresses';
      return {
        code: 'no-pool-for-family',
        message: `${service} needs ${needs} but ${where} ${what}; add such a range to a pool or change spec.ipFamilies/ipFamilyPolicy`,
      };
    }
    const full = withFamily.map((s) => {
      const wanted = want.mode === 'single' ? [want.primary] : FAMILIES.filter((f) => has(s, f));
      const exhausted = wanted.filter((f) => !this.pickIn(s, f, req));
      const fams = exhausted.length > 0 ? exhausted : wanted;
      const mixed = has(s, 'IPv4') && has(s, 'IPv6');
      const counts = fams.map((f) => `${s.runs[f].count}/${s.size[f]} ${mixed ? `${f} ` : ''}addresses in use`);
      return `pool "${s.pool.name}" is full: ${counts.join(', ')}`;
    });
    const head = full.length === 1 ? full[0] : `every pool ${service} may use is full (${full.join('; ')})`;
    return {
      code: 'pool-full',
      message: `${head}; release a Service's address or add addresses (kubectl metallb pools -v)`,
    };
  }

  // ---- checking ----

  /**
   * Whether `ips` can be (or stay) the Service's addresses under the current pools: families fit
   * the request, all in one pool the Service may use, the pool the one it names, sharing allowed.
   * `previousPool` is where the IPs were before, to notice a move into a pool with autoAssign off.
   * With `part`, `ips` need only be some of them: families the request wants, requested ones.
   */
  private checkHeld(req: Request, ips: readonly IP[], previousPool: string | undefined, part = false): Checked {
    const service = serviceKey(req.namespace, req.name);
    const fit = part ? this.partFamilyProblem(req, ips) : this.familyProblem(req, ips);
    if (fit) return { ok: false, failure: fit };
    if (part && req.requestedIPs.length > 0 && !ips.every((ip) => req.requestedIPs.some((r) => sameIP(r, ip)))) {
      const message = `${service} holds ${ips.map(formatIP).join(', ')} but requests ${req.requestedIPs.map(formatIP).join(', ')}`;
      return { ok: false, failure: { code: 'requested-ip-changed', message } };
    }
    if (!part && req.requestedIPs.length > 0 && !sameIPs(ips, req.requestedIPs)) {
      const message = `${service} holds ${ips.map(formatIP).join(', ')} but now requests ${req.requestedIPs.map(formatIP).join(', ')}; assign it again to move it`;
      return { ok: false, failure: { code: 'requested-ip-changed', message } };
    }
    let state: PoolState | undefined;
    for (const ip of ips) {
      const found = this.locate(ip);
      if (!found.state) {
        const text = formatIP(ip);
        const message = found.avoidedBy
          ? `${text} is in pool "${found.avoidedBy.pool.name}", which avoids addresses ending in .0 and .255 (avoidBuggyIPs); request another address`
          : `${text} is not in any address pool; request an address from a pool (kubectl metallb pools) or let MetalLB choose`;
        return { ok: false, failure: { code: 'ip-not-in-any-pool', message } };
      }
      if (state && found.state !== state) {
        const message = `${service}: ${ips.map(formatIP).join(' and ')} are in pools "${state.pool.name}" and "${found.state.pool.name}"; a dual-stack pair must come from one pool`;
        return { ok: false, failure: { code: 'ip-pool-mismatch', message } };
      }
      state = found.state;
    }
    if (!state) return { ok: false, failure: { code: 'family-mismatch', message: `${service}: no address given` } };

    const refused = this.refusal(state, req);
    if (refused) return { ok: false, failure: refused };
    if (req.pool !== undefined && req.pool !== state.pool.name) {
      if (!this.pools.has(req.pool)) return { ok: false, failure: this.unknownPool(req.pool) };
      const message = `${ips.map(formatIP).join(', ')} ${ips.length > 1 ? 'are' : 'is'} in pool "${state.pool.name}", not in pool "${req.pool}" named by metallb.io/address-pool; fix the annotation or the address`;
      return { ok: false, failure: { code: 'ip-pool-mismatch', message } };
    }
    if (previousPool !== undefined && previousPool !== state.pool.name && !state.pool.autoAssign && req.pool === undefined && req.requestedIPs.length === 0) {
      const message = `${ips.map(formatIP).join(', ')} moved from pool "${previousPool}" to pool "${state.pool.name}", which has autoAssign false and is not named by ${service}`;
      return { ok: false, failure: { code: 'pool-not-auto-assign', message } };
    }
    for (const ip of ips) {
      const address = this.addresses.get(ip);
      const problem = address && this.shareProblem(address, req, service);
      if (problem) return { ok: false, failure: problem };
    }
    return { ok: true, state };
  }

  /** Why `ips` cannot be part of the request's addresses by family: at most one per family, of families it wants. */
  private partFamilyProblem(req: Request, ips: readonly IP[]): Failure | undefined {
    const want = wantedFamilies(req);
    const [a, b] = ips;
    const ok = a !== undefined && ips.length <= 2 && !(b && a.family === b.family) && (want.mode !== 'single' || (!b && (req.families.length === 0 || a.family === want.primary)));
    if (ok) return undefined;
    const message = `${serviceKey(req.namespace, req.name)} (${req.familyPolicy} ${req.families.join('/') || want.primary}) cannot hold ${ips.map(formatIP).join(', ')}`;
    return { code: 'family-mismatch', message };
  }

  private familyProblem(req: Request, ips: readonly IP[]): Failure | undefined {
    const want = wantedFamilies(req);
    const [a, b] = ips;
    const ok =
      a !== undefined &&
      ips.length <= 2 &&
      !(b && a.family === b.family) &&
      (want.mode === 'single' ? !b && (req.families.length === 0 || a.family === want.primary) : want.mode === 'prefer' || b !== undefined);
    if (ok) return undefined;
    // Formatting costs (bigint to text); only failures pay for it.
    const service = serviceKey(req.namespace, req.name);
    const text = ips.map(formatIP).join(', ');
    const fail = (why: string): Failure => ({ code: 'family-mismatch', message: `${service}: ${why}` });
    if (!a || ips.length > 2) return fail(`${ips.length} addresses (${text}); give one, or one per family`);
    if (b && a.family === b.family) return fail(`${text} are both ${a.family}; give at most one address per family`);
    if (want.mode === 'single') {
      if (b) return fail(`is SingleStack but asks for ${text}; ask for one address or set ipFamilyPolicy PreferDualStack/RequireDualStack`);
      if (req.families.length > 0 && a.family !== want.primary) {
        return fail(`is SingleStack ${want.primary} but ${text} is ${a.family}; request an ${want.primary} address or change spec.ipFamilies`);
      }
    }
    if (want.mode === 'require' && !b) {
      return fail(`is RequireDualStack but asks only for ${text}; give one IPv4 and one IPv6 address in metallb.io/loadBalancerIPs`);
    }
    return undefined;
  }

  /** Why `state`'s serviceAllocation does not admit the request, if it does not. */
  private refusal(state: PoolState, req: Request): Failure | undefined {
    const sa = state.pool.serviceAllocation;
    if (!sa) return undefined;
    const service = serviceKey(req.namespace, req.name);
    const name = state.pool.name;
    const anyNamespace = sa.namespaces.length === 0 && sa.namespaceSelectors.length === 0;
    const namespaceOK = anyNamespace || sa.namespaces.includes(req.namespace) || sa.namespaceSelectors.some((s) => matches(s, req.namespaceLabels));
    if (!namespaceOK) {
      const listed = sa.namespaces.length > 0 ? `namespaces ${sa.namespaces.join(', ')}` : '';
      const selected = sa.namespaceSelectors.length > 0 ? 'namespaces matching its namespaceSelectors' : '';
      const message = `pool "${name}" serves only ${[listed, selected].filter(Boolean).join(' and ')}, not namespace "${req.namespace}" of ${service}; use another pool`;
      return { code: 'pool-not-allowed', message };
    }
    if (sa.serviceSelectors.length > 0 && !sa.serviceSelectors.some((s) => matches(s, req.labels))) {
      const message = `pool "${name}" serves only Services matching its serviceSelectors and ${service}'s labels do not match; label the Service or use another pool`;
      return { code: 'pool-not-allowed', message };
    }
    return undefined;
  }

  /** Why the request may not join the Services already on `address`, if it may not (sharing.ts has the rules). */
  private shareProblem(address: Address, req: Request, service: string): Failure | undefined {
    const holders: Request[] = [];
    for (const h of address.holders) {
      if (h === service) continue;
      const claim = this.allocationsByService.get(h);
      if (claim) holders.push(claim.request);
    }
    if (holders.length === 0) return undefined;
    const problem = sharingProblemAmong(holders, req, address.ip);
    return problem && { code: problem.failureCode, message: problem.message };
  }

  private unknownPool(name: string): Failure {
    const known = this.poolNames.length > 0 ? `known pools: ${this.poolNames.slice(0, 10).join(', ')}${this.poolNames.length > 10 ? ', ...' : ''}` : 'no pools are configured';
    return { code: 'unknown-pool', message: `pool "${name}" does not exist (${known}); fix the metallb.io/address-pool annotation` };
  }

  // ---- state ----

  private installPools(pools: readonly Pool[]): void {
    this.pools = new Map();
    for (const pool of pools) if (!this.pools.has(pool.name)) this.pools.set(pool.name, buildPool(pool));
    this.poolNames = [...this.pools.keys()].sort(byName);
    // MetalLB treats priority 0 (the Go zero value) as "no priority".
    const rank = (s: PoolState): [number, number] => {
      const sa = s.pool.serviceAllocation;
      if (!sa) return [2, 0];
      return sa.priority !== undefined && sa.priority > 0 ? [0, sa.priority] : [1, 0];
    };
    this.tryOrder = [...this.pools.values()].sort((a, b) => {
      const [ga, pa] = rank(a);
      const [gb, pb] = rank(b);
      return ga - gb || pa - pb || byName(a.pool.name, b.pool.name);
    });
    const index: Record<Family, RangeEntry[]> = { IPv4: [], IPv6: [] };
    for (const name of this.poolNames) {
      const state = this.pools.get(name);
      if (!state) continue;
      for (const f of FAMILIES) for (const r of state.ranges[f]) index[f].push({ first: r.first, last: r.last, state });
    }
    for (const f of FAMILIES) index[f].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    this.rangeIndex = index;
  }

  /** The pool serving `ip`: binary search over every pool's ranges (validation keeps them disjoint). */
  private locate(ip: IP): Located {
    const entries = this.rangeIndex[ip.family];
    let lo = 0;
    let hi = entries.length - 1;
    let found: RangeEntry | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = entries[mid];
      if (e && e.first <= ip.value) {
        found = e;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (!found || found.last < ip.value) return { state: undefined };
    if (found.state.pool.avoidBuggyIPs && isBuggyIP(ip)) return { state: undefined, avoidedBy: found.state };
    return { state: found.state };
  }

  private addAllocation(claim: Allocation): void {
    const state = this.pools.get(claim.pool);
    if (!state) throw new Error(`bug: claim of ${claim.service} on unknown pool ${claim.pool}`);
    // map, not push onto []: a pushed-to empty array reserves 17 slots, and the allocator keeps
    // this array (and each address's holders) for as long as the Service holds its IPs.
    const addresses = claim.ips.map((ip) => this.hold(state, ip, claim));
    const held: HeldAllocation = { service: claim.service, pool: claim.pool, ips: claim.ips, request: claim.request, addresses };
    this.allocationsByService.set(claim.service, held);
  }

  /** Record `claim`'s Service as a holder of `ip` (in `state`), creating the address if free. */
  private hold(state: PoolState, ip: IP, claim: Allocation): Address {
    const runs = state.runs[ip.family];
    // The run set answers "is it held?" from a small sorted structure; only held (shared or
    // requested) addresses need the table.
    const address = runs.has(ip.value) ? this.addresses.get(ip) : undefined;
    if (address) {
      if (!address.holders.includes(claim.service)) address.holders.push(claim.service);
      return address;
    }
    const req = claim.request;
    const created: Address = {
      ip,
      pool: state,
      sharingKey: req.sharingKey || undefined,
      holders: [claim.service],
    };
    this.addresses.set(created);
    runs.add(ip.value);
    if (created.sharingKey) {
      let held = this.sharedUnder.get(created.sharingKey);
      if (!held) this.sharedUnder.set(created.sharingKey, (held = new Set()));
      held.add(created);
    }
    return created;
  }

  private removeAllocation(claim: HeldAllocation): void {
    this.allocationsByService.delete(claim.service);
    for (const address of claim.addresses) {
      const at = address.holders.indexOf(claim.service);
      if (at >= 0) address.holders.splice(at, 1);
      if (address.holders.length > 0) continue;
      this.addresses.delete(address.ip);
      address.pool.runs[address.ip.family].delete(address.ip.value);
      if (address.sharingKey) {
        const held = this.sharedUnder.get(address.sharingKey);
        held?.delete(address);
        if (held && held.size === 0) this.sharedUnder.delete(address.sharingKey);
      }
    }
  }
}

function sameIPs(a: readonly IP[], b: readonly IP[]): boolean {
  return a.length === b.length && a.every((x) => b.some((y) => x.family === y.family && x.value === y.value));
}
