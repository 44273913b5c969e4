/**
 * What a Service asks of the allocator, and how the allocator says no. Our own small types:
 * the allocator never sees a Kubernetes object (service.ts converts one).
 */
import type { Family, IP } from '../ip/index.js';

/** spec.ipFamilyPolicy. */
export type IPFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

/** spec.externalTrafficPolicy. */
export type TrafficPolicy = 'Cluster' | 'Local';

/** One port of the Service; two Services may share an IP only when these do not overlap. */
export interface ServicePort {
  port: number;
  /** TCP, UDP or SCTP, as in the Service. */
  protocol: string;
}

/** One Service's request for load-balancer addresses. */
export interface Request {
  namespace: string;
  name: string;
  /** The Service's labels (serviceAllocation.serviceSelectors match these). */
  labels: Readonly<Record<string, string>>;
  /** The labels of the Service's namespace (serviceAllocation.namespaceSelectors match these). */
  namespaceLabels: Readonly<Record<string, string>>;
  /**
   * spec.ipFamilies in order. Empty when not set yet: at admission time the API server has not
   * defaulted it, so a requested IP then decides the family and auto-assign defaults to IPv4.
   */
  families: readonly Family[];
  familyPolicy: IPFamilyPolicy;
  /** From spec.loadBalancerIP or the loadBalancerIPs annotation; at most one per family. */
  requestedIPs: readonly IP[];
  /** The address-pool annotation. */
  pool?: string;
  /** The allow-shared-ip annotation; absent or empty = this Service shares with nobody. */
  sharingKey?: string;
  ports: readonly ServicePort[];
  trafficPolicy: TrafficPolicy;
  /** spec.selector: Services sharing an IP under Local policy must select the same pods. */
  selector: Readonly<Record<string, string>>;
}

/** Why a request cannot be met (or why a held address was revoked). Every failure is data. */
export type FailureCode =
  /** A requested or held IP lies in no pool (or in a pool that avoids .0/.255 addresses). */
  | 'ip-not-in-any-pool'
  /** The IP is held by a Service that does not share it with this one. */
  | 'ip-in-use'
  /** The address-pool annotation names no pool. */
  | 'unknown-pool'
  /** Every usable pool has no free address of the family needed. */
  | 'pool-full'
  /** The IP is shared under another sharing key, or by Services this one may not join. */
  | 'sharing-key-mismatch'
  /** The IP is shared, but a port/protocol of this Service is already used on it. */
  | 'port-conflict'
  /** Requested IPs do not fit the Service's ipFamilies / ipFamilyPolicy. */
  | 'family-mismatch'
  /** The pool's serviceAllocation does not admit this Service (namespace or labels). */
  | 'pool-not-allowed'
  /** An annotation or spec field of the Service cannot be understood. */
  | 'malformed-annotation'
  /** No usable pool has addresses of the family (or both families) needed. */
  | 'no-pool-for-family'
  /** Requested IPs are not in the requested pool, or a dual-stack pair spans two pools. */
  | 'ip-pool-mismatch'
  /** A held IP moved into a pool with autoAssign false that the Service did not ask for. */
  | 'pool-not-auto-assign'
  /** The Service now requests other IPs than the ones it holds (restore only). */
  | 'requested-ip-changed';

/** One failure: a stable code to branch on and a one-line, actionable message. */
export interface Failure {
  code: FailureCode;
  message: string;
}

/** The key a Service is known by everywhere in the allocator: `namespace/name`. */
export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * A Request with Kubernetes' defaults for everything not given: no labels, no families set yet,
 * SingleStack, no requested IPs, no pool, no sharing, no ports, Cluster policy, no selector.
 */
export function newRequest(fields: Pick<Request, 'namespace' | 'name'> & Partial<Request>): Request {
  return {
    labels: NONE,
    namespaceLabels: NONE,
    families: NOTHING,
    familyPolicy: 'SingleStack',
    requestedIPs: NOTHING,
    ports: NOTHING,
    trafficPolicy: 'Cluster',
    selector: NONE,
    ...fields,
  };
}

// Shared, frozen empties: the allocator keeps every Request it is given, and four fresh empty
// objects per Service were a measurable part of its memory at 100k Services.
const NONE: Readonly<Record<string, string>> = Object.freeze({});
const NOTHING: readonly never[] = Object.freeze([]);
