/**
 * "Why is this Service pending, where is it announced" as data, for `kubectl metallb`: from the
 * cluster's objects as plain JSON (model.ts), computed with core's allocator and core/announce,
 * so it says exactly what the controller and the agents do.
 */
export * from './model.js';
export { analyze, canonicalIP, effectiveConfig, isOurs, nodeReady, ASSIGNED_IPS_ANNOTATION, ASSIGNED_POOL_ANNOTATION } from './analyze.js';
export type { Analysis, ConfigSource, LBService } from './analyze.js';
export { HOLDER_REQUESTS_ANNOTATION, mirrorClaims, prepareClaims, readClaims, type PreparedClaims } from './claims.js';
export type { Claim, ClaimHolder } from './claims.js';
export { formatCount, formatPercent, percentOf } from './count.js';
export { poolNames, poolRows, selectorText } from './pools.js';
export type { FamilyUsage, HeldAddress, PoolOptions, PoolRow } from './pools.js';
export { judge, serviceRows } from './services.js';
export type { Judgement, ServiceRow, ServiceRowOptions } from './services.js';
export { explainService } from './explain.js';
export type { BGPEvidence, EventRow, Explanation, Layer2Evidence, PoolFit, Sourced } from './explain.js';
export { simulateDrain } from './drain.js';
export type { DrainMove, DrainReport } from './drain.js';
export { closest } from './closest.js';
export { peerRows } from './peers.js';
export type { PeerRow, PeersReport } from './peers.js';
