/**
 * The IPClaim ledger read back into an Allocator, the way the controller's replicas mirror it,
 * so that sizes, usage and "what would the controller do for this Service" come from core's
 * allocator and cannot disagree with the controller.
 */
import { Allocator, newRequest, restoreClaimed, serviceKey, type Claimed, type Request } from '../allocator/index.js';
import type { Pool } from '../config/index.js';
import { formatIP, parseIP, type IP } from '../ip/index.js';

/** Annotation on an IPClaim: JSON object `namespace/name` -> the holder's request (written by the controller). */
export const HOLDER_REQUESTS_ANNOTATION = 'metallb.io/holder-requests';

/** One holder of a claimed IP: a Service, or a tentative reservation made at admission. */
export interface ClaimHolder {
  /** `namespace/name`, or `namespace/name*token` for a reservation. */
  key: string;
  namespace: string;
  name: string;
  reservation?: string;
  uid?: string;
}

/** An IPClaim, read. */
export interface Claim {
  name: string;
  ip: IP;
  /** Canonical text of the IP. */
  address: string;
  pool: string;
  sharingKey?: string;
  holders: ClaimHolder[];
  /**
   * The holders' requests as the claim records them, by holder key (missing when written by
   * hand). Read from the annotation on first use: only mirroring the claims needs them.
   */
  readonly requests: ReadonlyMap<string, Request>;
}

type Fields = Record<string, unknown>;
const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (m: Fields, k: string): string | undefined => (typeof m[k] === 'string' && m[k] !== '' ? m[k] : undefined);

/** IPClaim objects as plain data; objects that are not claims (no IP, no holders) are left out. */
export function readClaims(objects: readonly unknown[]): Claim[] {
  const out: Claim[] = [];
  for (const o of objects) {
    if (!isMap(o) || !isMap(o.metadata) || !isMap(o.spec)) continue;
    const spec = o.spec;
    const parsed = parseIP(spec.ip);
    if (!parsed.ok || !Array.isArray(spec.holders)) continue;
    const holders: ClaimHolder[] = [];
    for (const h of spec.holders) {
      if (!isMap(h)) continue;
      const namespace = text(h, 'namespace') ?? 'default';
      const name = text(h, 'name');
      if (!name) continue;
      const reservation = text(h, 'reservation');
      const uid = text(h, 'uid');
      holders.push({ key: serviceKey(namespace, reservation ? `${name}*${reservation}` : name), namespace, name, ...(reservation && { reservation }), ...(uid && { uid }) });
    }
    const annotations = isMap(o.metadata.annotations) ? o.metadata.annotations : {};
    let requests: Map<string, Request> | undefined;
    out.push({
      name: text(o.metadata, 'name') ?? formatIP(parsed.value),
      ip: parsed.value,
      address: formatIP(parsed.value),
      pool: text(spec, 'pool') ?? '',
      ...(text(spec, 'sharingKey') && { sharingKey: text(spec, 'sharingKey') }),
      holders,
      get requests() {
        return (requests ??= storedRequests(annotations[HOLDER_REQUESTS_ANNOTATION]));
      },
    });
  }
  return out.sort((a, b) => compareIP(a.ip, b.ip));
}

function storedRequests(annotation: unknown): Map<string, Request> {
  const out = new Map<string, Request>();
  if (typeof annotation !== 'string') return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    return out;
  }
  if (!isMap(parsed)) return out;
  for (const [key, stored] of Object.entries(parsed)) {
    if (!isMap(stored) || typeof stored.namespace !== 'string' || typeof stored.name !== 'string') continue;
    const ips: IP[] = [];
    let bad = false;
    for (const t of Array.isArray(stored.requestedIPs) ? stored.requestedIPs : []) {
      const p = parseIP(t);
      if (p.ok) ips.push(p.value);
      else bad = true;
    }
    if (bad) continue;
    out.set(key, newRequest({ ...(stored as unknown as Partial<Request>), namespace: stored.namespace, name: stored.name, requestedIPs: ips }));
  }
  return out;
}

/** Claims read and mirrored ahead of an analysis (see Snapshot.preparedClaims). */
export interface PreparedClaims {
  /** The IPClaim objects they were read from. */
  objects: readonly unknown[];
  /** The pools they were mirrored over. */
  pools: readonly Pool[];
  claims: Claim[];
  allocator: Allocator;
}

/**
 * readClaims and mirrorClaims at once, for a caller that has the claims and the configuration
 * while other lists are still on their way (`explain` reads them with the Services).
 */
export function prepareClaims(objects: readonly unknown[], pools: readonly Pool[]): PreparedClaims {
  const claims = readClaims(objects);
  return { objects, pools, claims, allocator: mirrorClaims(pools, claims) };
}

/** IPv4 before IPv6, then by value. */
export function compareIP(a: IP, b: IP): number {
  if (a.family !== b.family) return a.family === 'IPv4' ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** A request the claims satisfy, for a holder whose own request is unknown or no longer fits them (as the controller's ledger guesses it). */
function guessRequest(holder: ClaimHolder, claim: Claim, ips: readonly IP[], base?: Request): Request {
  return newRequest({
    ...(base ?? {}),
    namespace: holder.namespace,
    name: holder.reservation ? `${holder.name}*${holder.reservation}` : holder.name,
    families: [],
    familyPolicy: ips.length > 1 ? 'RequireDualStack' : 'SingleStack',
    requestedIPs: [],
    ...(claim.sharingKey ? { sharingKey: claim.sharingKey } : { sharingKey: undefined }),
  });
}

/**
 * An Allocator over `pools` holding what the claims record, as the controller mirrors them
 * (core/allocator's restoreClaimed, the controller's own code): each holder with its recorded
 * request, or one its claims satisfy; a holder whose claims fit no request (caught between two
 * states) still keeps every claimed address taken, one by one.
 */
export function mirrorClaims(pools: readonly Pool[], claims: readonly Claim[]): Allocator {
  const allocator = new Allocator(pools);
  const byHolder = new Map<string, { holder: ClaimHolder; claims: Claim[] }>();
  for (const c of claims) {
    for (const h of c.holders) {
      const entry = byHolder.get(h.key);
      if (entry) entry.claims.push(c);
      else byHolder.set(h.key, { holder: h, claims: [c] });
    }
  }
  const claimed: Claimed[] = [];
  for (const { holder, claims: mine } of [...byHolder.values()].sort((a, b) => (a.holder.key < b.holder.key ? -1 : 1))) {
    const first = mine[0]!;
    const ips = mine.map((c) => c.ip).sort(compareIP);
    const request = first.requests.get(holder.key) ?? guessRequest(holder, first, ips);
    claimed.push({ held: { request, ips, pool: first.pool }, guess: (base) => guessRequest(holder, first, ips, base) });
  }
  restoreClaimed(allocator, claimed);
  return allocator;
}
