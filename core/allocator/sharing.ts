/**
 * MetalLB's IP-sharing rules, written once: the allocator and the claims ledger (webhook) both
 * ask `sharingProblem` whether a Service may join the Services already holding an address.
 *
 * Two Services may hold the same IP only if (MetalLB's `sharingOK` and port check,
 * internal/allocator/allocator.go):
 *
 * 1. both have a sharing key (metallb.io/allow-shared-ip), non-empty, and the same one;
 * 2. they reach the same backends: both externalTrafficPolicy Cluster, or both Local with the
 *    same pod selector (compared as maps: key order does not matter, no selector = `{}`);
 * 3. no port is used by both with the same protocol (TCP/53 and UDP/53 may share).
 *
 * Where we differ from MetalLB:
 * - MetalLB's backend key is "" for Cluster and `labels.Set(selector).String()` for Local, so a
 *   Cluster Service and a Local Service *without a selector* compare equal there; we refuse
 *   Cluster with Local always (one IP announced two ways would need two node sets).
 * - MetalLB compares the protocol string exactly, after the API server defaulted it to TCP; so
 *   do we, reading a missing protocol as TCP (requests built before defaulting, stored ones).
 * - MetalLB checks the key against the last Service assigned to the IP and forgets it once the
 *   holders left have no ports (a port-less holder then shares with anyone); we check
 *   every holder, so all holders always agree.
 * - The metallb.universe.tf/enforced-single-node annotation of some MetalLB versions
 *   (k8salloc.go: Local compared as Cluster) is not supported.
 *
 * Pure: requests in, a reason out. No JSON, no formatting unless there is a problem.
 */
import { formatIP, type IP } from '../ip/index.js';
import { serviceKey, type FailureCode, type Request, type ServicePort } from './request.js';

/** Which sharing rule refuses. */
export type SharingCode =
  /** One of the two Services has no sharing key (it shares with nobody). */
  | 'no-sharing-key'
  /** Both have a key, but not the same one. */
  | 'sharing-key-mismatch'
  /** One is externalTrafficPolicy Cluster, the other Local. */
  | 'traffic-policy-differs'
  /** Both are Local, with different pod selectors. */
  | 'selector-differs'
  /** Both use the same port with the same protocol. */
  | 'port-conflict';

/** Why a Service may not share an address with one holding it. */
export interface SharingProblem {
  code: SharingCode;
  /** The allocator's FailureCode for it: ip-in-use, sharing-key-mismatch or port-conflict. */
  failureCode: Extract<FailureCode, 'ip-in-use' | 'sharing-key-mismatch' | 'port-conflict'>;
  /** The holder (`namespace/name`) the candidate may not join. */
  holder: string;
  /** The port both use, for port-conflict. */
  port?: ServicePort;
  /** One line naming the holder, and what to do. */
  message: string;
}

/** The FailureCode each rule is reported under (request.ts has no finer codes). */
const FAILURE: Readonly<Record<SharingCode, SharingProblem['failureCode']>> = {
  'no-sharing-key': 'ip-in-use',
  'sharing-key-mismatch': 'sharing-key-mismatch',
  'traffic-policy-differs': 'sharing-key-mismatch',
  'selector-differs': 'sharing-key-mismatch',
  'port-conflict': 'port-conflict',
};

type Selector = Readonly<Record<string, string>> | null | undefined;

/**
 * Why `candidate` may not hold the address `holder` holds, or undefined when it may. A Service
 * never conflicts with itself (same namespace/name). `ip` only names the address in the message.
 *
 * Tolerates requests read back from storage with fields missing: no key = no sharing, no
 * traffic policy = Cluster, no selector = `{}`, no ports = none, no protocol = TCP.
 */
export function sharingProblem(holder: Request, candidate: Request, ip?: IP): SharingProblem | undefined {
  if (holder.namespace === candidate.namespace && holder.name === candidate.name) return undefined;
  const theirKey = holder.sharingKey || undefined;
  const myKey = candidate.sharingKey || undefined;
  const theirPolicy = policyOf(holder);
  const myPolicy = policyOf(candidate);
  let code: SharingCode | undefined;
  let port: ServicePort | undefined;
  if (!theirKey || !myKey) code = 'no-sharing-key';
  else if (theirKey !== myKey) code = 'sharing-key-mismatch';
  else if (theirPolicy !== myPolicy) code = 'traffic-policy-differs';
  else if (myPolicy === 'Local' && !sameSelector(holder.selector, candidate.selector)) code = 'selector-differs';
  else {
    port = commonPort(holder.ports, candidate.ports);
    if (port) code = 'port-conflict';
  }
  if (!code) return undefined;

  // Formatting costs (bigint to text); compatible candidates never pay for it.
  const who = serviceKey(holder.namespace, holder.name);
  const me = serviceKey(candidate.namespace, candidate.name);
  const address = ip ? formatIP(ip) : 'the address';
  let message: string;
  switch (code) {
    case 'no-sharing-key':
      message = `${address} is already in use by ${who}; request another address, or give both Services the same metallb.io/allow-shared-ip key`;
      break;
    case 'sharing-key-mismatch':
      message = `${address} is shared by ${who} under key "${theirKey}", not "${myKey}"; use the same metallb.io/allow-shared-ip value or another address`;
      break;
    case 'traffic-policy-differs':
      message = `${address} cannot be shared: ${who} has externalTrafficPolicy ${theirPolicy} and ${me} has ${myPolicy}; Services sharing an IP need the same policy`;
      break;
    case 'selector-differs':
      message =
        `${address} cannot be shared: ${who} selects {${selectorText(holder.selector)}} and ${me} selects {${selectorText(candidate.selector)}}; ` +
        'Services sharing an IP with externalTrafficPolicy Local need the same selector';
      break;
    case 'port-conflict':
      message = `port ${port ? `${protocolOf(port)}/${port.port}` : ''} on ${address} is already used by ${who}; use another port or another address`;
      break;
  }
  return { code, failureCode: FAILURE[code], holder: who, ...(port && { port }), message };
}

/**
 * The first problem `candidate` has with any of `holders` (checked in `namespace/name` order, the
 * candidate itself skipped), or undefined when it may join them all.
 */
export function sharingProblemAmong(holders: readonly Request[], candidate: Request, ip?: IP): SharingProblem | undefined {
  const ordered = holders.length > 1 ? [...holders].sort(byService) : holders;
  for (const h of ordered) {
    const problem = sharingProblem(h, candidate, ip);
    if (problem) return problem;
  }
  return undefined;
}

/** Whether two pod selectors are the same map (key order does not matter; none = `{}`). */
export function sameSelector(a: Selector, b: Selector): boolean {
  const ka = a ? Object.keys(a) : [];
  const kb = b ? Object.keys(b) : [];
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!b || !Object.prototype.hasOwnProperty.call(b, k) || b[k] !== a?.[k]) return false;
  return true;
}

function policyOf(r: Request): 'Cluster' | 'Local' {
  return r.trafficPolicy === 'Local' ? 'Local' : 'Cluster';
}

/** A port of `mine` that `theirs` also uses with the same protocol. */
function commonPort(theirs: readonly ServicePort[] | undefined, mine: readonly ServicePort[] | undefined): ServicePort | undefined {
  if (!theirs || !mine) return undefined;
  return mine.find((p) => theirs.some((q) => q.port === p.port && protocolOf(q) === protocolOf(p)));
}

function protocolOf(p: ServicePort): string {
  return p.protocol || 'TCP';
}

/** `k=v,...` sorted by key: for messages only (equality is `sameSelector`). */
function selectorText(selector: Selector): string {
  return Object.entries(selector ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function byService(a: Request, b: Request): number {
  const x = serviceKey(a.namespace, a.name);
  const y = serviceKey(b.namespace, b.name);
  return x < y ? -1 : x > y ? 1 : 0;
}
