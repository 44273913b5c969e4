/**
 * The one configuration model. Both sources (the legacy ConfigMap `metallb-system/config` and
 * the metallb.io CRDs) parse into this; every program reads only this.
 *
 * Values here are already checked: an ASN is in range, a CIDR is a CIDR, a community is
 * well-formed. Code holding a Config never re-validates.
 */
import type { Family, IP, IPRange } from '../ip/index.js';

/** Where a configuration object came from, for messages and status reporting. */
export type Origin = { kind: 'ConfigMap'; namespace: string; name: string; path: string } | { kind: CrdKind; namespace: string; name: string };

export type CrdKind = 'IPAddressPool' | 'L2Advertisement' | 'BGPAdvertisement' | 'BGPPeer' | 'BFDProfile' | 'Community';

/** A Kubernetes label selector, already checked (operators are known, values present where needed). */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: SelectorRequirement[];
}

export interface SelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
}

/** Which Services may take addresses from a pool, and in which order pools are tried (current MetalLB). */
export interface ServiceAllocation {
  /** Lower number = tried first. Pools without a priority come after all pools with one. */
  priority?: number;
  namespaces: string[];
  namespaceSelectors: LabelSelector[];
  serviceSelectors: LabelSelector[];
}

export interface Pool {
  name: string;
  origin: Origin;
  /** Labels of the IPAddressPool object (ipAddressPoolSelectors match these); empty for the ConfigMap. */
  labels: Record<string, string>;
  /** In the order the operator wrote them. Never overlapping (validation guarantees it). */
  ranges: IPRange[];
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  serviceAllocation?: ServiceAllocation;
  /** Set only for pools from the legacy ConfigMap, which names one protocol per pool. */
  protocol?: 'bgp' | 'layer2';
}

/** A BGP community: RFC 1997 standard (two 16-bit halves) or RFC 8092 large (three 32-bit parts). */
export type Community = { kind: 'standard'; asn: number; value: number } | { kind: 'large'; global: number; local1: number; local2: number };

export interface L2Advertisement {
  name: string;
  origin: Origin;
  /** Pool names; together with ipAddressPoolSelectors. Both empty = every pool. */
  ipAddressPools: string[];
  ipAddressPoolSelectors: LabelSelector[];
  /** Empty = every node. */
  nodeSelectors: LabelSelector[];
  /**
   * Which of the selected nodes should announce first: a node's weight is the sum of the weights
   * of the entries whose preference it matches, and higher weights win (Kubernetes'
   * PreferredSchedulingTerm). Empty = no preference (the hash alone decides).
   */
  preferredNodeSelectors: PreferredNodeSelector[];
  /** Empty = every interface. */
  interfaces: string[];
}

/** One weighted node preference of an L2Advertisement, shaped as Kubernetes' PreferredSchedulingTerm. */
export interface PreferredNodeSelector {
  /** 1..100. */
  weight: number;
  preference: LabelSelector;
}

export interface BGPAdvertisement {
  name: string;
  origin: Origin;
  /** Defaults: 32 for IPv4, 128 for IPv6 (one route per address). */
  aggregationLength: number;
  aggregationLengthV6: number;
  /** Only sent to iBGP peers. */
  localPref?: number;
  communities: Community[];
  ipAddressPools: string[];
  ipAddressPoolSelectors: LabelSelector[];
  nodeSelectors: LabelSelector[];
  /** Peer names; empty = every peer. */
  peers: string[];
}

/** A reference to a Secret holding a BGP password (key `password`), resolved when the Secret exists. */
export interface SecretRef {
  namespace: string;
  name: string;
}

export interface BGPPeer {
  name: string;
  origin: Origin;
  myASN: number;
  peerASN: number;
  peerAddress: IP;
  /** Default 179. */
  peerPort: number;
  sourceAddress?: IP;
  /** Seconds. 0 disables keepalives; otherwise at least 3. Default 90. */
  holdTime: number;
  /** Seconds, below holdTime (0 when holdTime is 0). Default holdTime / 3. */
  keepaliveTime: number;
  /** Seconds between connection attempts. Default 120 (RFC 4271 ConnectRetryTime). */
  connectTime: number;
  routerID?: IP;
  nodeSelectors: LabelSelector[];
  /** The password in clear, from the ConfigMap / `password`, or resolved from `passwordSecret`. */
  password?: string;
  passwordSecret?: SecretRef;
  bfdProfile?: string;
  ebgpMultiHop: boolean;
  enableGracefulRestart: boolean;
}

export interface BFDProfile {
  name: string;
  origin: Origin;
  /** Milliseconds. Defaults as in MetalLB/FRR: 300, 300, 3, 50, false, false, 254. */
  receiveInterval: number;
  transmitInterval: number;
  detectMultiplier: number;
  echoInterval: number;
  echoMode: boolean;
  passiveMode: boolean;
  minimumTtl: number;
}

export interface Config {
  pools: Pool[];
  peers: BGPPeer[];
  bfdProfiles: BFDProfile[];
  /** Community aliases by name (ConfigMap `communities`/`bgp-communities`, Community CRDs). */
  communities: Record<string, Community>;
  l2Advertisements: L2Advertisement[];
  bgpAdvertisements: BGPAdvertisement[];
}

/** A place in the input: an object (`source`) and a field in it (`path`). */
export interface Place {
  /** e.g. `ConfigMap metallb-system/config` or `IPAddressPool metallb-system/prod`. */
  source: string;
  /** e.g. `address-pools[2].cidr[0]` or `spec.addresses[0]`; empty for the object as a whole. */
  path: string;
  /**
   * The index in `ConfigInput.resources` of the object `source` names, when it is one of them.
   * Two objects can share a source (the same name in two files); this tells them apart.
   */
  resource?: number;
}

/** One thing wrong with the configuration: where (`source` + `path`), and what. */
export interface ConfigError extends Place {
  message: string;
  /** The other place a conflict involves (the first definition of a duplicate name, the range overlapped). */
  related?: Place;
}

/** A reference that cannot be resolved yet (the object may still be created); not an error. */
export interface Pending extends Place {
  message: string;
}

/**
 * Accepted, but worth the operator's attention: something MetalLB reads the same way silently
 * (a CIDR with host bits set) or a deprecated field. The message says what to write instead.
 */
export interface ConfigWarning extends Place {
  message: string;
  related?: Place;
}

export type { Family, IP, IPRange };
