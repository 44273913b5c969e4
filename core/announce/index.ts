/**
 * Who announces what. Layer 2: one owner per IP among the eligible nodes (layer2.ts); BGP: every
 * eligible node, to its peers, with the route attributes (bgp.ts). Both read small plain inputs
 * (model.ts) that kube.ts reads off Services, EndpointSlices and Nodes.
 */
export * from './model.js';
export { announceAll, announcedBy, announceLayer2, EXCLUDE_LABEL, Layer2Context, layer2Hash, prepareLayer2, ServicesByIP, sharingGroup, sharingLookup } from './layer2.js';
export type { Alive, Layer2Options, SharingLookup } from './layer2.js';
export { announceAllBGP, announceBGP, BGPContext, bgpRoutes, communityText, prepareBGP, routeChanges, routesTo } from './bgp.js';
export type {
  BGPAdvertised,
  BGPIP,
  BGPNodeReason,
  BGPNodeVerdict,
  BGPNoRouteReason,
  BGPOptions,
  BGPPeerReason,
  BGPPeerRoutes,
  BGPPeerVerdict,
  BGPRoute,
  BGPRouteChanges,
  BGPRouteFilter,
  BGPService,
  BGPSpeakerGroup,
} from './bgp.js';
export { endpointsFromSlices, nodeFromKube, serviceFromKube, SERVICE_NAME_LABEL, sliceServiceKey } from './kube.js';
