/**
 * What `core/announce` reads and answers, as small plain types: no Kubernetes object reaches
 * the decision (kube.ts converts Services, EndpointSlices and Nodes into these).
 */

/** A node as layer 2 sees it. */
export interface AnnounceNode {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** The Node's `NetworkUnavailable` condition is True (its network is not set up yet). */
  networkUnavailable: boolean;
}

/** One endpoint of a Service, from its EndpointSlices, with the API's nil defaults applied. */
export interface AnnounceEndpoint {
  /** Where the endpoint runs; endpoints without one count as "somewhere" but never place an IP. */
  nodeName?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** spec.externalTrafficPolicy. */
export type TrafficPolicy = 'Cluster' | 'Local';

/** A Service holding load-balancer IPs. */
export interface AnnounceService {
  namespace: string;
  name: string;
  /**
   * The assigned addresses (status.loadBalancer.ingress), one per family. Their pool is looked
   * up from the configuration by address, as MetalLB's speaker does, so an address the current
   * configuration no longer covers is not announced.
   */
  ips: readonly string[];
  trafficPolicy: TrafficPolicy;
  endpoints: readonly AnnounceEndpoint[];
}

/** Why a node may not announce an IP. */
export type NodeReason =
  /** No advertisement of the IP's pool selects the node (its nodeSelectors): an L2Advertisement for layer 2, a BGPAdvertisement for BGP. */
  | 'not-selected'
  /** Not in the caller's live set (gossip membership, else Node readiness). */
  | 'not-alive'
  /** The Node's NetworkUnavailable condition is True. */
  | 'network-unavailable'
  /** Labelled node.kubernetes.io/exclude-from-external-load-balancers. */
  | 'excluded'
  /** externalTrafficPolicy Local, and no ready (or serving, not terminating) endpoint on the node. */
  | 'no-endpoint';

/** One node that may not announce, and every reason why (in the order of NodeReason). */
export interface NodeVerdict {
  node: string;
  reasons: readonly NodeReason[];
}

/** A node that may announce an IP. */
export interface Layer2Candidate {
  node: string;
  /**
   * The strongest preference among the L2Advertisements that let this node announce the pool:
   * per advertisement, the sum of the weights of its preferredNodeSelectors the node matches.
   * 0 without preferences.
   */
  weight: number;
  /** Interfaces to answer on: the union over those advertisements; empty = every interface. */
  interfaces: readonly string[];
}

/** Why no node announces an IP for a Service. */
export type NoOwnerReason =
  /** The address lies in no pool of the configuration (revoked, or the pool was removed). */
  | 'no-pool'
  /** No L2Advertisement selects the IP's pool. */
  | 'no-advertisement'
  /** The Service has no ready (or serving, not terminating) endpoint anywhere. */
  | 'no-ready-endpoint'
  /** Every node is ruled out: see `ineligible`. */
  | 'no-eligible-node';

/** Who announces one IP of a Service, and why the others do not. */
export interface Layer2IPCommon {
  /** The address, in canonical text. */
  ip: string;
  /** The pool the configuration puts the address in. */
  pool: string | undefined;
  /** The L2Advertisements selecting that pool, by name. */
  advertisements: readonly string[];
  /**
   * The address whose hash orders the nodes: the lowest address (IPv4 before IPv6) of every
   * Service linked to this one by a shared IP, itself included. So both families of a
   * dual-stack Service, and every Service sharing an address, use one order.
   */
  anchor: string;
  /**
   * The nodes that may announce, best first: higher weight, then lower
   * sha256(node + "#" + anchor). The owner is the first; drain it and the next one takes over.
   */
  candidates: readonly Layer2Candidate[];
  /** Every other known node, by name, with its reasons. */
  ineligible: readonly NodeVerdict[];
  /** Other Services holding this address (`namespace/name`, sorted). */
  sharedWith: readonly string[];
}

/** The node announcing the IP for this Service, or why none does. */
export type Layer2Verdict = { owner: string; reason?: undefined } | { owner?: undefined; reason: NoOwnerReason };

export type Layer2IP = Layer2IPCommon & Layer2Verdict;

/** Who announces each IP of one Service. */
export interface Layer2Service {
  namespace: string;
  name: string;
  /** In the order of the Service's `ips`. */
  ips: readonly Layer2IP[];
}

/** What one node answers for: an IP, where, and for which Services. */
export interface NodeAnnouncement {
  ip: string;
  /** Empty = every interface. */
  interfaces: readonly string[];
  /** `namespace/name`, sorted. */
  services: readonly string[];
}

/** The key a Service is known by: `namespace/name`. */
export function serviceKey(svc: { namespace: string; name: string }): string {
  return `${svc.namespace}/${svc.name}`;
}

/** An endpoint that can take traffic: ready, or serving and not terminating. */
export function endpointUsable(e: AnnounceEndpoint): boolean {
  return e.ready || (e.serving && !e.terminating);
}
