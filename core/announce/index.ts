/**
 * Who announces what. Layer 2: one owner per IP among the eligible nodes (layer2.ts), from
 * small plain inputs (model.ts) that kube.ts reads off Services, EndpointSlices and Nodes.
 */
export * from './model.js';
export { announceAll, announcedBy, announceLayer2, EXCLUDE_LABEL, Layer2Context, layer2Hash, prepareLayer2, ServicesByIP, sharingGroup } from './layer2.js';
export type { Alive, Layer2Options, SharingLookup } from './layer2.js';
export { endpointsFromSlices, nodeFromKube, serviceFromKube, SERVICE_NAME_LABEL, sliceServiceKey } from './kube.js';
