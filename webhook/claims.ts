/**
 * The claims ledger: IPClaim objects in the API server are the durable record of which Service
 * holds which IP, and creating one is what takes an IP (the API server lets exactly one create
 * of a name succeed). Each webhook replica mirrors the claims into an in-memory `Allocator`
 * (list + watch) to pick candidates quickly; the API server arbitrates between replicas:
 *
 * - a free candidate is taken by CREATE: 201 = ours; 409 AlreadyExists = another replica took
 *   it, so the claim is read back into the allocator and the next candidate is tried;
 * - joining a shared IP is an optimistic-concurrency UPDATE of the claim's holders (409 Conflict
 *   = it changed under us: read it back, let the allocator re-check sharing, retry);
 * - a dry run computes the answer and writes nothing.
 *
 * Sharing needs the holders' ports and traffic policy, and restoring after a restart needs the
 * holders' requests (serviceAllocation is checked on namespace labels). Neither fits the claim's
 * spec, so each claim carries its holders' requests as JSON in the annotation
 * `metallb.io/holder-requests`; a claim without it (written by hand) is read conservatively.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  Allocator,
  narrowed,
  newRequest,
  restoreClaimed,
  serviceKey,
  sharingProblemAmong,
  type Allocation,
  type Claimed,
  type Failure,
  type Request,
  type Revocation,
} from '../core/allocator/index.js';
import { claimName } from '../core/allocator/claim-name.js';
import type { Pool } from '../core/config/index.js';
import { formatIP, parseIP, type Family, type IP } from '../core/ip/index.js';
import { apiVersionOf, isKubeError, olderThan, Reflector, RESOURCES, type KubeApi, type KubeObject } from '../kube/client.js';

/** Annotation on an IPClaim: JSON object `namespace/name` -> the holder's request. */
export const HOLDER_REQUESTS_ANNOTATION = 'metallb.io/holder-requests';

/**
 * One Service holding an IP. `uid` is bound by the controller once the Service exists.
 * `reservation` marks a tentative hold taken at admission for an update of the Service that
 * needs new addresses: it becomes the Service's own only when the reconcile loop sees the
 * stored Service showing it (the update was accepted), and expires otherwise.
 */
export interface ClaimHolder {
  namespace: string;
  name: string;
  uid?: string;
  reservation?: string;
}

/** An IPClaim as stored. */
export interface IPClaim extends KubeObject {
  spec: { ip: string; pool: string; family: Family; sharingKey?: string; holders: ClaimHolder[]; holderNames?: string };
}

/** The outcome of `Ledger.allocate`. */
export type LedgerResult =
  | { ok: true; service: string; pool: string; ips: readonly IP[]; changed: boolean }
  /** `transient`: lost every race to other replicas; nothing is wrong with the request, retry. */
  | { ok: false; failure: Failure; transient?: boolean };

/** The outcome of `Ledger.reserve`: the Service's addresses after the change, and the reservation holding the new ones. */
export type ReserveResult = { ok: true; pool: string; ips: readonly IP[]; reservation?: string; changed: boolean } | { ok: false; failure: Failure; transient?: boolean };

/** A Request as JSON (IPs as text). */
interface StoredRequest extends Omit<Request, 'requestedIPs'> {
  requestedIPs: string[];
}

function storeRequest(req: Request): StoredRequest {
  return { ...req, requestedIPs: req.requestedIPs.map(formatIP) };
}

function loadRequest(s: StoredRequest): Request | undefined {
  const ips: IP[] = [];
  for (const t of s.requestedIPs ?? []) {
    const p = parseIP(t);
    if (!p.ok) return undefined;
    ips.push(p.value);
  }
  if (typeof s.namespace !== 'string' || typeof s.name !== 'string') return undefined;
  return newRequest({ ...s, requestedIPs: ips });
}

function holdersRequests(claim: IPClaim): Record<string, StoredRequest> {
  const text = claim.metadata.annotations?.[HOLDER_REQUESTS_ANNOTATION];
  if (!text) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, StoredRequest>) : {};
  } catch {
    return {};
  }
}

/**
 * The key a holder is mirrored under: `namespace/name` for a Service's own hold, and
 * `namespace/name*token` for a tentative one (the text the Service's `metallb.io/reservation`
 * annotation carries). A reservation made for a Service created with generateName has the form
 * `namespace/<generateName>*<token>` in its name already.
 */
export function holderKey(h: ClaimHolder): string {
  return serviceKey(h.namespace, h.reservation ? `${h.name}*${h.reservation}` : h.name);
}

/** Whether a holder key is a tentative reservation (never a real Service name: `*` is not allowed in one). */
export function isReservationKey(key: string): boolean {
  return key.includes('*');
}

function asClaim(obj: KubeObject): IPClaim | undefined {
  const spec = obj.spec as Partial<IPClaim['spec']> | undefined;
  if (!obj.metadata?.name || !spec || typeof spec.ip !== 'string' || !Array.isArray(spec.holders)) return undefined;
  return obj as IPClaim;
}

function sameRequest(a: Request, b: Request): boolean {
  return isDeepStrictEqual(storeRequest(a), storeRequest(b));
}

function sameIP(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Options of a Ledger. */
export interface LedgerOptions {
  /** Attempts before giving up when other replicas keep taking the candidates (default 64). */
  maxAttempts?: number;
  log?: (line: string) => void;
}

/**
 * One replica's view of the ledger and its way of writing to it.
 *
 * Calls for one Service (`allocate`, `release`, `bind`) are serialized per Service; calls for
 * different Services run at once. The choice of addresses is made synchronously in the
 * allocator, which then holds them as the Service's reservation while the claim writes are in
 * flight, so concurrent calls in one replica pick different candidates without waiting for
 * each other's API round trips. When the writes end (201, or 409 = another writer won) the
 * Service's view is rebuilt from the claims, which rolls a lost reservation back. Whoever
 * writes, replicas or calls within one, races only through the API server, which is what makes
 * it safe.
 */
export class Ledger {
  /** The allocator mirroring the claims (read it; change it only through the Ledger). */
  readonly allocator: Allocator;
  private readonly claims = new Map<string, IPClaim>();
  /** holder `namespace/name` -> names of the claims listing it. */
  private readonly byHolder = new Map<string, Set<string>>();
  private reflector: Reflector | undefined;
  /** Per-holder locks: the tail of each holder's chain of calls. */
  private readonly locks = new Map<string, Promise<void>>();
  /** Holders whose allocation is in flight: the allocator holds their reservation, not their claims. */
  private readonly pending = new Set<string>();
  private pools: readonly Pool[];
  /** Holder -> placeholders mirroring its addresses one by one while its claims cannot be mirrored as one allocation. */
  private readonly placeholders = new Map<string, string[]>();
  /** Whether a configuration has been set (in the constructor or by setPools). */
  private poolsKnown: boolean;
  private readonly maxAttempts: number;
  private readonly log: (line: string) => void;
  private readonly listeners = new Set<(holders: ReadonlySet<string>) => void>();

  constructor(
    private readonly kube: KubeApi,
    pools: readonly Pool[] = [],
    options: LedgerOptions = {},
  ) {
    this.allocator = new Allocator(pools);
    this.pools = pools;
    this.poolsKnown = pools.length > 0;
    this.maxAttempts = options.maxAttempts ?? 64;
    this.log = options.log ?? (() => {});
  }

  /** Lists the claims into the allocator and keeps watching them. Resolves once loaded. */
  async start(): Promise<void> {
    this.reflector = new Reflector(this.kube, RESOURCES.ipClaims, {
      onSync: (items) => {
        const seen = new Set<string>();
        for (const o of items) {
          const c = asClaim(o);
          if (!c) continue;
          seen.add(c.metadata.name as string);
          this.put(c.metadata.name as string, c, true);
        }
        for (const name of [...this.claims.keys()]) if (!seen.has(name)) this.put(name, undefined, true);
      },
      onEvent: (type, obj) => {
        const c = asClaim(obj);
        if (!c) return;
        const name = c.metadata.name as string;
        if (type === 'DELETED') {
          const cached = this.claims.get(name);
          if (cached && olderThan(c.metadata.resourceVersion, cached.metadata.resourceVersion)) return;
          this.put(name, undefined, true);
        } else {
          this.put(name, c);
        }
      },
      onError: (e) => this.log(`ipclaims watch: ${String(e)}`),
    });
    await this.reflector.start();
  }

  stop(): void {
    this.reflector?.stop();
  }

  /** Called after every change of the claims, with the holders it touched (for the controller). */
  onChange(listener: (holders: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * New pools. Every claim is mirrored again under them (claims loaded before the first
   * configuration are mirrored only now); returns the holders whose claims the pools no longer
   * allow (the claims stay until the controller releases them).
   */
  setPools(pools: readonly Pool[]): Revocation[] {
    this.pools = pools;
    this.poolsKnown = true;
    const revoked = this.allocator.setPools(pools);
    this.resync(new Set(this.byHolder.keys()));
    const lost = new Map(revoked.map((r) => [r.service, r]));
    for (const service of this.byHolder.keys()) {
      if (this.allocator.allocation(service) || lost.has(service)) continue;
      const h = this.heldBy(service);
      const failure: Failure = { code: 'ip-not-in-any-pool', message: `${service}'s claimed IPs are not allowed by the current pools` };
      lost.set(service, { service, ips: h?.ips ?? [], ...(h ? { pool: h.pool } : {}), failure });
    }
    return [...lost.values()].filter((r) => !this.allocator.allocation(r.service)).sort((a, b) => (a.service < b.service ? -1 : 1));
  }

  /** The current pools. */
  currentPools(): readonly Pool[] {
    return this.pools;
  }

  /** Every claim, by name. */
  all(): IPClaim[] {
    return [...this.claims.values()];
  }

  /** The claims listing a holder (`namespace/name`). */
  claimsOf(service: string): IPClaim[] {
    return [...(this.byHolder.get(service) ?? [])].flatMap((n) => this.claims.get(n) ?? []);
  }

  /** What the claims say a holder holds (pool, IPs sorted IPv4 first), if anything. */
  heldBy(service: string): { pool: string; ips: IP[] } | undefined {
    const claims = this.claimsOf(service);
    const first = claims[0];
    if (!first) return undefined;
    const ips = claims.flatMap((c) => {
      const p = parseIP(c.spec.ip);
      return p.ok ? [p.value] : [];
    });
    ips.sort((a, b) => (a.family === b.family ? (a.value < b.value ? -1 : 1) : a.family === 'IPv4' ? -1 : 1));
    return { pool: first.spec.pool, ips };
  }

  /**
   * Give the Service its IPs and claim them in the API server. Idempotent: a Service already
   * holding claims that satisfy its request keeps them (`changed: false`). With `dryRun`,
   * computes the answer from the mirror and writes nothing.
   */
  allocate(req: Request, options: { dryRun?: boolean; prefer?: readonly IP[]; recordRequest?: boolean } = {}): Promise<LedgerResult> {
    const prefer = options.prefer && options.prefer.length > 0 ? { prefer: options.prefer } : {};
    if (options.dryRun) return Promise.resolve(this.allocator.assign(req, { dryRun: true, ...prefer }));
    const service = serviceKey(req.namespace, req.name);
    return this.exclusive([service], async () => {
      for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
        // Choose and reserve in one synchronous step: no other call can pick these addresses.
        // Addresses mirrored under placeholders for this Service are its own to keep or let go.
        this.dropPlaceholders(service);
        const a = this.allocator.assign(req, prefer);
        if (!a.ok) return a;
        this.pending.add(service);
        let claimed: Awaited<ReturnType<Ledger['claimAll']>>;
        try {
          claimed = await this.claimAll(req, a.pool, a.ips, undefined, options.recordRequest ?? true);
          if (claimed === true) await this.dropExcept(service, a.ips);
        } finally {
          // The claims are the truth again: the reservation becomes them, or is rolled back.
          this.settle(service, a.ips);
        }
        if (claimed === false) continue;
        if (claimed !== true) return { ok: false, failure: claimed.failure };
        return { ok: true, service, pool: a.pool, ips: a.ips, changed: a.changed || this.allocator.allocation(service) === undefined };
      }
      const message = `${service}: other replicas took every candidate address ${this.maxAttempts} times in a row; retry`;
      return { ok: false, failure: { code: 'pool-full', message }, transient: true };
    });
  }

  /**
   * Admission's allocation: what the Service's addresses are after this change, taking new ones
   * only as a tentative reservation. `keep` is what the stored Service shows now (the truth until
   * the reconcile loop sees the change stored): kept addresses stay the Service's own and nothing
   * the Service holds is released here, so a request refused later in the admission chain (API
   * validation, a conflict, another webhook) moves and frees nothing. New addresses are claimed
   * under the holder `{name, reservation: token}`; the reconcile loop makes them the Service's
   * own once it sees the stored Service carrying the reservation, or lets them expire.
   *
   * `generated`: the Service has no name yet (generateName); `req.name` is then its reservation
   * name already (`<generateName>*<token>`) and every address is claimed under it.
   */
  reserve(req: Request, keep: readonly IP[], options: { dryRun?: boolean; token: () => string; generated?: boolean; direct?: boolean; reuse?: string }): Promise<ReserveResult> {
    const service = serviceKey(req.namespace, req.name);
    // A reservation this Service already has (reinvocation of this admission, or an update of a
    // Service whose earlier change is not adopted yet) is reused rather than made twice.
    const reuse = options.generated ? req.name : !options.direct && options.reuse && options.reuse.startsWith(`${req.name}*`) ? options.reuse : undefined;
    const reuseKey = reuse !== undefined ? serviceKey(req.namespace, reuse) : undefined;
    const run = async (): Promise<ReserveResult> => {
      for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
        const reserved = reuseKey ? (this.heldBy(reuseKey)?.ips ?? []) : [];
        const mine = [...keep, ...reserved.filter((ip) => !keep.some((k) => sameIP(k, ip)))];
        const a = this.answer(req, mine, reuseKey && reuseKey !== service ? [reuseKey] : []);
        if (!a.ok) return a;
        const fresh = a.ips.filter((ip) => !mine.some((k) => sameIP(k, ip)));
        const usesReserved = a.ips.some((ip) => reserved.some((r) => sameIP(r, ip)));
        if (fresh.length === 0)
          return {
            ok: true,
            pool: a.pool,
            ips: a.ips,
            ...(usesReserved && reuse !== undefined && { reservation: reuse }),
            changed: !isDeepStrictEqual(a.ips.map(formatIP).sort(), keep.map(formatIP).sort()),
          };
        if (options.dryRun) return { ok: true, pool: a.pool, ips: a.ips, changed: true };
        // A create claims under the Service's own name (nothing it holds can move: it does not
        // exist yet), an update under a reservation; see the doc comment.
        const name = options.direct ? req.name : (reuse ?? `${req.name}*${options.token()}`);
        const star = name.indexOf('*');
        const holder: ClaimHolder =
          options.generated || options.direct ? { namespace: req.namespace, name } : { namespace: req.namespace, name: name.slice(0, star), reservation: name.slice(star + 1) };
        const key = holderKey(holder);
        const wanted = narrowed(req, name, options.direct ? a.ips : [...reserved.filter((r) => a.ips.some((ip) => sameIP(ip, r))), ...fresh]);
        // Synchronously, so no other call in this replica can pick these addresses meanwhile.
        const r = this.allocator.assign(wanted);
        if (!r.ok) return r;
        this.pending.add(key);
        let claimed: Awaited<ReturnType<Ledger['claimAll']>>;
        try {
          // The claims record the Service's own request (a direct hold needs no second write to fix it).
          claimed = await this.claimAll(options.direct ? req : wanted, a.pool, fresh, holder);
        } finally {
          this.settle(key, fresh);
        }
        if (claimed === false) continue;
        if (claimed !== true) return { ok: false, failure: claimed.failure };
        return { ok: true, pool: a.pool, ips: a.ips, ...(!options.direct && { reservation: name }), changed: true };
      }
      const message = `${service}: other replicas took every candidate address ${this.maxAttempts} times in a row; retry`;
      return { ok: false, failure: { code: 'pool-full', message }, transient: true };
    };
    return options.dryRun ? run() : this.exclusive([service, ...(reuseKey ? [reuseKey] : [])], run);
  }

  /**
   * The allocator's answer for `req` when the Service holds exactly `keep`: its other holdings
   * (left over from an earlier change, released by the loop soon) stay taken but are not its to
   * keep. Computed on the mirror and put back as it was, in one synchronous step.
   */
  private answer(req: Request, keep: readonly IP[], also: readonly string[]) {
    const service = serviceKey(req.namespace, req.name);
    // Placeholders mirroring this Service's addresses (see resync) count as its own here.
    const saved = [service, ...also, ...(this.placeholders.get(service) ?? [])].flatMap((k) => this.allocator.release(k) ?? []);
    const leftover = saved.flatMap((c) => c.ips.filter((ip) => !keep.some((k) => sameIP(k, ip))).map((ip) => ({ ip, c })));
    const aside = (i: number) => `${req.name}*~${i}`;
    try {
      leftover.forEach(({ ip, c }, i) => this.allocator.restore([{ request: narrowed(c.request, aside(i), [ip]), ips: [ip], pool: c.pool }]));
      if (keep.length > 0) {
        const pool = saved[0]?.pool;
        const held = { request: req, ips: keep, ...(pool !== undefined && { pool }) };
        if (this.allocator.restore([held]).length > 0) this.allocator.restore([{ ...held, request: narrowed(req, req.name, keep) }]);
      }
      return this.allocator.assign(req, { dryRun: true });
    } finally {
      this.allocator.release(service);
      leftover.forEach((_, i) => this.allocator.release(serviceKey(req.namespace, aside(i))));
      for (const c of saved) this.allocator.restore([{ request: c.request, ips: c.ips, pool: c.pool }]);
    }
  }

  /**
   * The reconcile loop saw the stored Service `to` carrying `reservation` (`name*token`) and
   * showing `shown`: the reservation's claims become the Service's own (UID bound), and the
   * Service lets go of every address it no longer shows.
   */
  adopt(namespace: string, reservation: string, to: { name: string; uid?: string }, shown: readonly IP[], request?: Request): Promise<void> {
    const from = serviceKey(namespace, reservation);
    const service = serviceKey(namespace, to.name);
    return this.exclusive([from, service], async () => {
      for (const name of [...(this.byHolder.get(from) ?? [])]) {
        await this.update(name, (c) => {
          const holders = c.spec.holders.filter((h) => holderKey(h) !== service);
          const mine = holders.map((h) => (holderKey(h) === from ? { namespace, name: to.name, ...(to.uid ? { uid: to.uid } : {}) } : h));
          const reqs = holdersRequests(c);
          const stored = reqs[from];
          delete reqs[from];
          // The Service's own request from now on (one write: no second PUT to record it).
          if (request) reqs[service] = storeRequest(request);
          else if (stored) reqs[service] = { ...stored, name: to.name };
          return withHolders(c, mine, reqs);
        });
      }
      await this.dropExcept(service, shown);
    });
  }

  /** Lets go of the placeholders mirroring a holder's addresses one by one. */
  private dropPlaceholders(service: string): void {
    for (const p of this.placeholders.get(service) ?? []) this.allocator.release(p);
    this.placeholders.delete(service);
  }

  /**
   * Rebuilds the mirror of these addresses from their claims: every holder the allocator has on
   * them that the claims do not list is mirrored again (a holder with no claims is let go), and
   * so is every holder the claims list. Returns the addresses still held in the mirror by
   * someone the claims do not list (an allocation in flight in this replica), if any.
   */
  remirror(ips: readonly IP[]): IP[] {
    const keys = new Set<string>();
    for (const ip of ips) {
      for (const h of this.allocator.holders(ip)) keys.add(h);
      for (const h of this.claims.get(claimName(ip))?.spec.holders ?? []) keys.add(holderKey(h));
    }
    this.resync(keys);
    return ips.filter((ip) => {
      const listed = new Set((this.claims.get(claimName(ip))?.spec.holders ?? []).map(holderKey));
      // A placeholder mirrors a listed holder's address (see resync): it is that holder.
      return this.allocator.holders(ip).some((h) => !listed.has(h) && !listed.has(h.replace(/\*~m\d+$/, '')));
    });
  }

  /**
   * The reconcile loop saw the stored Service: every claim it holds records its request as
   * stored, and its UID along with it (one write per claim, and none when the request is already
   * there). A UID alone is not worth a write per create: the claim names the Service, and the
   * reaper knows a Service it has seen stored (see reaper.ts).
   */
  confirm(service: string, uid: string | undefined, request: Request): Promise<void> {
    return this.exclusive([service], async () => {
      const want = storeRequest(request);
      for (const name of [...(this.byHolder.get(service) ?? [])]) {
        const c = this.claims.get(name);
        const h = c?.spec.holders.find((x) => holderKey(x) === service);
        const stored = c && holdersRequests(c)[service];
        if (!c || !h || (stored && isDeepStrictEqual(stored, want))) continue;
        await this.update(name, (cur) => {
          const reqs = { ...holdersRequests(cur), [service]: want };
          const holders = cur.spec.holders.map((x) => (holderKey(x) === service && uid ? { ...x, uid } : x));
          return withHolders(cur, holders, reqs);
        });
      }
    });
  }

  /** The Service lets go of every address it holds but `ips` (what the stored Service shows). */
  keepOnly(service: string, ips: readonly IP[]): Promise<void> {
    return this.exclusive([service], () => this.dropExcept(service, ips));
  }

  /**
   * Ends a Service's reservation: its view (and that of every holder of the reserved addresses,
   * whose mirroring the reservation may have refused meanwhile) is rebuilt from the claims.
   */
  private settle(service: string, reserved: readonly IP[]): void {
    this.pending.delete(service);
    const affected = new Set([service]);
    for (const ip of reserved) for (const h of this.claims.get(claimName(ip))?.spec.holders ?? []) affected.add(holderKey(h));
    const mirrored = (s: string) => {
      const c = this.allocator.allocation(s);
      return c ? `${c.pool}:${c.ips.map(formatIP).join(',')}` : '';
    };
    const before = new Map([...affected].map((s) => [s, mirrored(s)]));
    this.resync(affected);
    // Only holders whose mirror moved: a reservation that became its claims unchanged (every
    // idempotent allocate) is no news, and telling the controller would make it reconcile again, forever.
    const changed = new Set([...affected].filter((s) => mirrored(s) !== before.get(s)));
    if (changed.size > 0) for (const l of this.listeners) l(changed);
  }

  /** Drop the Service from every claim (deleting claims it held alone). Returns what it held. */
  release(service: string): Promise<Allocation | undefined> {
    return this.exclusive([service], async () => {
      const held = this.allocator.allocation(service);
      await this.dropExcept(service, []);
      return held;
    });
  }

  /**
   * Rename a holder and/or record its UID: the controller binds a reservation made at admission
   * (generateName, no name yet) to the Service that was created, and records UIDs.
   */
  bind(holder: ClaimHolder, to: { name: string; uid?: string }): Promise<void> {
    const from = holderKey(holder);
    return this.exclusive([from, serviceKey(holder.namespace, to.name)], async () => {
      for (const name of [...(this.byHolder.get(from) ?? [])]) {
        await this.update(name, (c) => {
          const holders = c.spec.holders.map((h) =>
            holderKey(h) === from ? { namespace: h.namespace, name: to.name, ...((to.uid ?? h.uid) ? { uid: to.uid ?? h.uid } : {}) } : h,
          );
          const reqs = holdersRequests(c);
          const stored = reqs[from];
          delete reqs[from];
          if (stored) reqs[serviceKey(holder.namespace, to.name)] = { ...stored, name: to.name };
          return withHolders(c, holders, reqs);
        });
      }
    });
  }

  /** Read one claim again from the API server. */
  async refresh(name: string): Promise<void> {
    const cur = await this.kube.get(RESOURCES.ipClaims, name);
    this.put(name, cur ? asClaim(cur) : undefined, true);
  }

  // ---- writing ----

  /**
   * Runs `work` once no earlier call holds any of `keys`. All keys are taken in one synchronous
   * step (each call waits only for calls registered before it), so there is no deadlock.
   */
  private async exclusive<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    const before = unique.map((k) => this.locks.get(k));
    let done = () => {};
    const mine = new Promise<void>((r) => (done = r));
    for (const k of unique) this.locks.set(k, mine);
    await Promise.all(before);
    try {
      return await work();
    } finally {
      done();
      for (const k of unique) if (this.locks.get(k) === mine) this.locks.delete(k);
    }
  }

  /** Claims every IP for the request; false when one was taken meanwhile (the mirror is refreshed). */
  private async claimAll(
    req: Request,
    pool: string,
    ips: readonly IP[],
    holder: ClaimHolder = { namespace: req.namespace, name: req.name },
    /** Rewrite a claim the holder already has when its recorded request differs (false: the caller confirms it later). */
    recordRequest = true,
  ): Promise<boolean | { failure: Failure }> {
    const service = holderKey(holder);
    for (const ip of ips) {
      const name = claimName(ip);
      const cached = this.claims.get(name);
      if (!cached) {
        const body: IPClaim = {
          apiVersion: apiVersionOf(RESOURCES.ipClaims),
          kind: 'IPClaim',
          metadata: {
            name,
            labels: { 'app.kubernetes.io/managed-by': 'metallb-ts' },
            annotations: { [HOLDER_REQUESTS_ANNOTATION]: JSON.stringify({ [service]: storeRequest(req) }) },
          },
          spec: {
            ip: formatIP(ip),
            pool,
            family: ip.family,
            ...(req.sharingKey ? { sharingKey: req.sharingKey } : {}),
            holders: [holder],
            holderNames: holderList([holder]),
          },
        };
        try {
          const created = asClaim(await this.kube.create(RESOURCES.ipClaims, body));
          this.put(name, created);
        } catch (e) {
          if (!isKubeError(e, 409)) throw e;
          await this.refresh(name);
          return false;
        }
        continue;
      }
      const mine = cached.spec.holders.some((h) => holderKey(h) === service);
      const stored = holdersRequests(cached)[service];
      if (mine && stored && (!recordRequest || sameRequest(loadRequest(stored) ?? req, req))) continue;
      if (!mine) {
        // The allocator found the IP compatible with its mirror; check the claim itself too, so a
        // stale or partial mirror can never let two incompatible Services onto one IP.
        const problem = joinProblem(cached, req);
        if (problem) {
          this.log(`${service}: not joining ${name}: ${problem}`);
          const rv = cached.metadata.resourceVersion;
          await this.refresh(name);
          // The mirror holds it now (it lagged): the next attempt picks another address. Unchanged
          // and still not held there: the allocator would offer it again; give up with the holder's
          // name instead of spinning.
          if (this.claims.get(name)?.metadata.resourceVersion === rv && !this.allocator.holders(ip).some((h) => h !== service)) {
            const holders = cached.spec.holders.map(holderKey).join(', ');
            return { failure: { code: 'ip-in-use', message: `${cached.spec.ip} is already in use by ${holders}; request another address` } };
          }
          return false;
        }
      }
      const ok = await this.write(name, cached, (c) => {
        const reqs = { ...holdersRequests(c), [service]: storeRequest(req) };
        const holders = mine ? c.spec.holders : [...c.spec.holders, holder];
        return withHolders(c, holders, reqs);
      });
      if (!ok) return false;
    }
    return true;
  }

  /** One optimistic write of a changed claim; false (and the mirror refreshed) on conflict. */
  private async write(name: string, base: IPClaim, change: (c: IPClaim) => IPClaim | undefined): Promise<boolean> {
    const next = change(structuredClone(base));
    try {
      if (next === undefined) {
        await this.kube.delete(RESOURCES.ipClaims, name, undefined, { resourceVersion: base.metadata.resourceVersion as string });
        this.put(name, undefined, true);
      } else {
        this.put(name, asClaim(await this.kube.replace(RESOURCES.ipClaims, next)));
      }
      return true;
    } catch (e) {
      if (!isKubeError(e, 409) && !isKubeError(e, 404)) throw e;
      await this.refresh(name);
      return false;
    }
  }

  /** Applies `change` to the current claim until the write sticks (or the claim is gone). */
  private async update(name: string, change: (c: IPClaim) => IPClaim | undefined): Promise<void> {
    for (let i = 0; i < this.maxAttempts; i++) {
      const cached = this.claims.get(name);
      if (!cached) return;
      if (await this.write(name, cached, change)) return;
    }
    throw new Error(`claim ${name}: gave up after ${this.maxAttempts} conflicting updates`);
  }

  /** Removes the Service from its claims other than `keep`'s. */
  private async dropExcept(service: string, keep: readonly IP[]): Promise<void> {
    const keepNames = new Set(keep.map(claimName));
    for (const name of [...(this.byHolder.get(service) ?? [])]) {
      if (keepNames.has(name)) continue;
      await this.update(name, (c) => {
        const holders = c.spec.holders.filter((h) => holderKey(h) !== service);
        if (holders.length === 0) return undefined;
        const reqs = holdersRequests(c);
        delete reqs[service];
        return withHolders(c, holders, reqs);
      });
    }
  }

  // ---- mirroring ----

  /**
   * Records a claim's current state (undefined = gone) and re-derives the allocator's view of
   * every holder it touches. Without `force`, an older version than the cached one is ignored
   * (the watch may deliver our own write after we already stored its answer).
   */
  private put(name: string, claim: IPClaim | undefined, force = false): void {
    const old = this.claims.get(name);
    if (claim && old && !force && olderThan(claim.metadata.resourceVersion, old.metadata.resourceVersion)) return;
    if (claim && old && claim.metadata.resourceVersion === old.metadata.resourceVersion && claim.metadata.uid === old.metadata.uid) return;
    const affected = new Set<string>();
    for (const h of old?.spec.holders ?? []) {
      const k = holderKey(h);
      affected.add(k);
      this.byHolder.get(k)?.delete(name);
    }
    if (claim) {
      this.claims.set(name, claim);
      for (const h of claim.spec.holders) {
        const k = holderKey(h);
        affected.add(k);
        let set = this.byHolder.get(k);
        if (!set) this.byHolder.set(k, (set = new Set()));
        set.add(name);
      }
    } else {
      this.claims.delete(name);
    }
    for (const k of affected) if (this.byHolder.get(k)?.size === 0) this.byHolder.delete(k);
    this.resync(affected);
    for (const l of this.listeners) l(affected);
  }

  private resync(all: Set<string>): void {
    // Claims listed before the first configuration are mirrored once pools exist (setPools
    // resyncs every holder): before that every restore would be refused, and logged, per claim.
    if (!this.poolsKnown) return;
    // A holder with an allocation in flight keeps its reservation; `settle` resyncs it after.
    const services = new Set([...all].filter((s) => !this.pending.has(s)));
    for (const s of services) {
      this.allocator.release(s);
      this.dropPlaceholders(s);
    }
    const claimed: Claimed[] = [];
    for (const s of services) {
      const claims = this.claimsOf(s);
      const first = claims[0];
      const h = this.heldBy(s);
      if (!first || !h) continue;
      const stored = holdersRequests(first)[s];
      const request = (stored && loadRequest(stored)) ?? this.guessRequest(s, first, h.ips);
      claimed.push({ held: { request, ips: h.ips, pool: h.pool }, guess: (base) => this.guessRequest(s, this.claimsOf(s)[0], h.ips, base) });
    }
    // A holder whose request no longer fits its claims is mirrored under one they satisfy, or
    // address by address under placeholders (core/allocator's restoreClaimed, which the plugin
    // uses too): the IPs stay taken here.
    for (const { refused, held, placeholders } of restoreClaimed(this.allocator, claimed)) {
      this.placeholders.set(refused.service, placeholders);
      // With allocations in flight the conflict may be a reservation; `settle` mirrors it again.
      if (placeholders.length < held.ips.length && this.pending.size === 0)
        this.log(`claims of ${refused.service} (${refused.ips.map(formatIP).join(', ')}) not mirrored: ${refused.failure.message}`);
    }
  }

  /** A request the claims satisfy, for holders whose own request is unknown or no longer fits. */
  private guessRequest(service: string, claim: IPClaim | undefined, ips: readonly IP[], base?: Request): Request {
    const slash = service.indexOf('/');
    return newRequest({
      ...(base ?? {}),
      namespace: service.slice(0, slash),
      name: service.slice(slash + 1),
      families: [],
      familyPolicy: ips.length > 1 ? 'RequireDualStack' : 'SingleStack',
      requestedIPs: [],
      ...(claim?.spec.sharingKey ? { sharingKey: claim.spec.sharingKey } : {}),
    });
  }
}

function withHolders(c: IPClaim, holders: ClaimHolder[], reqs: Record<string, StoredRequest>): IPClaim {
  return {
    ...c,
    metadata: {
      ...c.metadata,
      annotations: { ...(c.metadata.annotations ?? {}), [HOLDER_REQUESTS_ANNOTATION]: JSON.stringify(reqs) },
    },
    spec: { ...c.spec, holders, holderNames: holderList(holders) },
  };
}

/** Every holder, for the HOLDERS column of `kubectl get ipclaims`. */
function holderList(holders: readonly ClaimHolder[]): string {
  return holders.map(holderKey).join(',');
}

/** Why `req` may not join the holders of `claim`: core's one sharing rule, over the holders' requests as the claim stores them. */
function joinProblem(claim: IPClaim, req: Request): string | undefined {
  const reqs = holdersRequests(claim);
  const holders: Request[] = [];
  for (const h of claim.spec.holders) {
    const stored = reqs[holderKey(h)];
    const loaded = stored && loadRequest(stored);
    if (!loaded) return `holder ${holderKey(h)}'s request is unknown`;
    // A claim written by hand may lack the key in the stored request; the claim's own key rules.
    holders.push(newRequest({ ...loaded, ...(claim.spec.sharingKey ? { sharingKey: claim.spec.sharingKey } : { sharingKey: undefined }) }));
  }
  const ip = parseIP(claim.spec.ip);
  return sharingProblemAmong(holders, req, ip.ok ? ip.value : undefined)?.message;
}
