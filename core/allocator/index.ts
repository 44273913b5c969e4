/**
 * The allocator: which load-balancer IPs a Service gets, from which pool, and why not.
 *
 * Pure and synchronous. The webhook and controller build Requests from Services with
 * `serviceToRequest`, keep one `Allocator` in sync with the Config's pools (`setPools`) and the
 * cluster's existing allocations (`restore`), and call `assign` / `release` as Services come and go.
 */
export { Allocator } from './allocator.js';
export type { Allocation, AssignOptions, Assignment, Held, PoolCandidate, PoolUsage, Revocation } from './allocator.js';
export { newRequest, serviceKey } from './request.js';
export { sameSelector, sharingProblem, sharingProblemAmong } from './sharing.js';
export type { SharingCode, SharingProblem } from './sharing.js';
export type { Failure, FailureCode, IPFamilyPolicy, Request, ServicePort, TrafficPolicy } from './request.js';
export { ANNOTATIONS, serviceToRequest } from './service.js';
export type { DeprecatedAnnotation, ServiceRequest, ServiceShape } from './service.js';
export { narrowed, restoreClaimed } from './mirror.js';
export type { Claimed, Unmirrored } from './mirror.js';
