/**
 * Cluster-wide invariants of IP assignment, checked against everything the API server holds at
 * one moment (Services in every namespace and every IPClaim):
 *
 * 1. every IP a Service shows (status.loadBalancer.ingress or the `metallb.io/assigned-ips`
 *    annotation) has an IPClaim whose holders list that Service (namespace + name);
 * 2. no IP is shown by two Services unless both carry the same non-empty allow-shared-ip key
 *    (`metallb.io/allow-shared-ip`, or the deprecated `metallb.universe.tf/allow-shared-ip`), the
 *    claim lists them all and carries that key;
 * 3. once settled, the annotation and the status show the same IPs, and a claim's holder that
 *    exists shows the claim's IP; always, the pool annotation names the pool of the claims of the
 *    IPs it shows;
 * 4. no IPClaim lists a holder twice; one IPClaim per IP, named after it.
 *
 * `checkInvariants` is pure (hand-built objects in, violations out); `assertInvariants` reads the
 * API server double's store and throws with every violation; `waitForInvariants` polls until
 * they hold, for a cluster whose controllers are still converging, and throws with the last
 * violations when they do not.
 */
import { claimName } from '../../core/allocator/claim-name.js';
import { formatIP, parseIP } from '../../core/ip/index.js';
import type { ApiServer } from '../apiserver/index.js';

export const ASSIGNED_IPS = 'metallb.io/assigned-ips';
export const ASSIGNED_POOL = 'metallb.io/ip-allocated-from-pool';
export const SHARED_IP = 'metallb.io/allow-shared-ip';
export const SHARED_IP_DEPRECATED = 'metallb.universe.tf/allow-shared-ip';

/** The parts of a Service the checks read. */
export interface ServiceLike {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> | null } | null;
  spec?: { type?: string | null; loadBalancerClass?: string | null } | null;
  status?: { loadBalancer?: { ingress?: { ip?: string | null; hostname?: string | null }[] | null } | null } | null;
}

/** The parts of an IPClaim the checks read. */
export interface ClaimLike {
  metadata?: { name?: string } | null;
  spec?: { ip?: string; pool?: string; sharingKey?: string | null; holders?: { namespace?: string; name?: string; uid?: string }[] | null } | null;
}

/** One broken invariant. */
export interface Violation {
  /** 1..4, as in the file comment. */
  invariant: 1 | 2 | 3 | 4;
  /** `namespace/name` of the Service concerned, if one is. */
  service?: string;
  ip?: string;
  /** The IPClaim concerned, if one is. */
  claim?: string;
  problem: string;
}

/** Options of the checks. */
export interface InvariantOptions {
  /**
   * A moment in flight: skip what only holds once the controllers have caught up (annotation
   * and status agreeing, claim holders showing their IP). The rest always holds.
   */
  inFlight?: boolean;
  /** Our spec.loadBalancerClass (default: Services without one); Services of another class are skipped. */
  loadBalancerClass?: string;
}

const keyOf = (svc: ServiceLike) => `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;

/** The canonical text of an IP, or undefined when it is not one. */
function canonical(text: string): string | undefined {
  const p = parseIP(text.trim());
  return p.ok ? formatIP(p.value) : undefined;
}

function annotationIPs(svc: ServiceLike): string[] {
  const text = svc.metadata?.annotations?.[ASSIGNED_IPS];
  if (text === undefined) return [];
  return text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

function statusIPs(svc: ServiceLike): string[] {
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter((ip) => ip !== '');
}

/** The Service's allow-shared-ip key; `conflict` when both spellings are present with different values. */
function sharingKey(svc: ServiceLike): { key: string | undefined; text: string } {
  const a = svc.metadata?.annotations ?? {};
  const now = a[SHARED_IP];
  const old = a[SHARED_IP_DEPRECATED];
  if (now !== undefined && old !== undefined && now !== old) return { key: undefined, text: `conflicting keys "${now}" (${SHARED_IP}) and "${old}" (${SHARED_IP_DEPRECATED})` };
  const key = now ?? old;
  return key ? { key, text: `"${key}"` } : { key: undefined, text: 'no key' };
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/** Every violation among these Services and claims; empty when all invariants hold. */
export function checkInvariants(services: readonly ServiceLike[], claims: readonly ClaimLike[], options: InvariantOptions = {}): Violation[] {
  const out: Violation[] = [];

  // Claims by IP (4: one claim per IP, named after it, no holder twice).
  const claimByIP = new Map<string, ClaimLike>();
  for (const c of claims) {
    const name = c.metadata?.name ?? '';
    const ipText = c.spec?.ip ?? '';
    const ip = canonical(ipText);
    if (!ip) {
      out.push({ invariant: 4, claim: name, problem: `IPClaim ${name}: spec.ip ${JSON.stringify(ipText)} is not an IP` });
      continue;
    }
    const parsed = parseIP(ip);
    if (parsed.ok && claimName(parsed.value) !== name)
      out.push({ invariant: 4, claim: name, ip, problem: `IPClaim ${name} is for ${ip}, whose claim name is ${claimName(parsed.value)}` });
    const other = claimByIP.get(ip);
    if (other) out.push({ invariant: 4, claim: name, ip, problem: `two IPClaims for ${ip}: ${other.metadata?.name ?? ''} and ${name}` });
    else claimByIP.set(ip, c);
    const seen = new Map<string, number>();
    for (const h of c.spec?.holders ?? []) {
      const k = `${h.namespace ?? ''}/${h.name ?? ''}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    for (const [k, n] of seen) if (n > 1) out.push({ invariant: 4, claim: name, ip, service: k, problem: `IPClaim ${name} lists holder ${k} ${n} times` });
  }
  const holds = (c: ClaimLike, key: string) => (c.spec?.holders ?? []).some((h) => `${h.namespace ?? ''}/${h.name ?? ''}` === key);
  const holderList = (c: ClaimLike) => (c.spec?.holders ?? []).map((h) => `${h.namespace ?? ''}/${h.name ?? ''}`).join(', ') || 'none';

  // Services: what each shows.
  const shownBy = new Map<string, ServiceLike[]>();
  const shownIPsOf = new Map<string, Set<string>>();
  for (const svc of services) {
    const cls = svc.spec?.loadBalancerClass;
    if (cls && cls !== options.loadBalancerClass) continue;
    const service = keyOf(svc);
    const fromAnnotation: string[] = [];
    const fromStatus: string[] = [];
    for (const [where, list, into] of [
      ['annotation', annotationIPs(svc), fromAnnotation],
      ['status', statusIPs(svc), fromStatus],
    ] as const) {
      for (const t of list) {
        const ip = canonical(t);
        if (ip) into.push(ip);
        else out.push({ invariant: 1, service, ip: t, problem: `${where} shows ${JSON.stringify(t)}, which is not an IP` });
      }
    }
    const shown = new Set([...fromAnnotation, ...fromStatus]);
    shownIPsOf.set(service, shown);
    for (const ip of shown) {
      const where = fromAnnotation.includes(ip) && fromStatus.includes(ip) ? 'annotation and status' : fromAnnotation.includes(ip) ? 'annotation' : 'status';
      shownBy.set(ip, [...(shownBy.get(ip) ?? []), svc]);
      const claim = claimByIP.get(ip);
      // 1: a claim listing the Service.
      if (!claim) out.push({ invariant: 1, service, ip, problem: `shown in ${where}, but no IPClaim exists for it` });
      else if (!holds(claim, service))
        out.push({
          invariant: 1,
          service,
          ip,
          claim: claim.metadata?.name ?? '',
          problem: `shown in ${where}, but its IPClaim does not list the Service (holders: ${holderList(claim)})`,
        });
    }
    // 3: the pool annotation names the claims' pool (whenever the annotation shows IPs).
    const pool = svc.metadata?.annotations?.[ASSIGNED_POOL];
    if (fromAnnotation.length > 0) {
      for (const ip of fromAnnotation) {
        const claim = claimByIP.get(ip);
        if (!claim) continue; // reported under 1
        if (pool === undefined)
          out.push({ invariant: 3, service, ip, problem: `has IPs in ${ASSIGNED_IPS} but no ${ASSIGNED_POOL} annotation (the claim says pool "${claim.spec?.pool ?? ''}")` });
        else if (claim.spec?.pool !== pool)
          out.push({ invariant: 3, service, ip, claim: claim.metadata?.name ?? '', problem: `${ASSIGNED_POOL} says "${pool}", the IPClaim says pool "${claim.spec?.pool ?? ''}"` });
      }
    }
    // 3: annotation and status agree once settled.
    if (!options.inFlight) {
      if (!sameSet(fromAnnotation, fromStatus))
        out.push({ invariant: 3, service, problem: `annotation ${ASSIGNED_IPS} shows [${fromAnnotation.join(', ')}], status shows [${fromStatus.join(', ')}]` });
      if (fromAnnotation.length === 0 && pool !== undefined) out.push({ invariant: 3, service, problem: `${ASSIGNED_POOL} says "${pool}" but no IP is assigned` });
    }
  }

  // 2: shared IPs.
  for (const [ip, holders] of shownBy) {
    if (holders.length < 2) continue;
    const keys = holders.map(sharingKey);
    const first = keys[0]?.key;
    const names = holders.map(keyOf);
    if (!first || keys.some((k) => k.key !== first)) {
      const detail = holders.map((s, i) => `${keyOf(s)}: ${keys[i]?.text ?? ''}`).join('; ');
      out.push({ invariant: 2, service: names.join(', '), ip, problem: `shown by ${holders.length} Services without one common allow-shared-ip key (${detail})` });
      continue;
    }
    const claim = claimByIP.get(ip);
    if (!claim) continue; // reported under 1
    const missing = names.filter((n) => !holds(claim, n));
    if (missing.length > 0)
      out.push({ invariant: 2, service: names.join(', '), ip, claim: claim.metadata?.name ?? '', problem: `shared, but the IPClaim does not list ${missing.join(', ')}` });
    if ((claim.spec?.sharingKey ?? '') !== first)
      out.push({
        invariant: 2,
        service: names.join(', '),
        ip,
        claim: claim.metadata?.name ?? '',
        problem: `shared under key "${first}", but the IPClaim's sharingKey is "${claim.spec?.sharingKey ?? ''}"`,
      });
  }

  // 3 (settled): a holder Service that exists shows the claim's IP.
  if (!options.inFlight) {
    for (const [ip, claim] of claimByIP) {
      for (const h of claim.spec?.holders ?? []) {
        const service = `${h.namespace ?? ''}/${h.name ?? ''}`;
        const shown = shownIPsOf.get(service);
        if (shown && !shown.has(ip))
          out.push({ invariant: 3, service, ip, claim: claim.metadata?.name ?? '', problem: `the IPClaim lists the Service, which shows [${[...shown].join(', ')}] instead` });
      }
    }
  }
  return out;
}

/** Violations as lines: `[n] service ip (claim): problem`. */
export function formatViolations(violations: readonly Violation[]): string {
  const lines = violations.map((v) => {
    const where = [v.service, v.ip, v.claim && v.claim !== v.ip ? `claim ${v.claim}` : undefined].filter(Boolean).join(' ');
    return `  [${v.invariant}] ${where}: ${v.problem}`;
  });
  return `${violations.length} invariant violation${violations.length === 1 ? '' : 's'}:\n${lines.join('\n')}`;
}

/** Every Service (all namespaces) and IPClaim in the double's store, right now. */
export function clusterObjects(api: ApiServer): { services: ServiceLike[]; claims: ClaimLike[] } {
  return {
    services: api.store.list('v1', 'Service') as ServiceLike[],
    claims: api.store.list('metallb.io/v1beta1', 'IPClaim') as ClaimLike[],
  };
}

/** Throws, listing every violation, unless the invariants hold in the cluster at this moment. */
export function assertInvariants(api: ApiServer, options: InvariantOptions = {}): void {
  const { services, claims } = clusterObjects(api);
  const violations = checkInvariants(services, claims, options);
  if (violations.length > 0) throw new Error(formatViolations(violations));
}

/**
 * Waits until every invariant holds (the controllers have settled), polling the store; throws
 * with the violations of the last look after `timeoutMs`.
 */
export async function waitForInvariants(api: ApiServer, options: InvariantOptions & { timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    const { services, claims } = clusterObjects(api);
    const violations = checkInvariants(services, claims, options);
    if (violations.length === 0) return;
    if (Date.now() >= deadline) throw new Error(`still after ${options.timeoutMs ?? 5000} ms: ${formatViolations(violations)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
