/**
 * What `core/diagnose` reads: the cluster's objects as plain JSON (what the API returns), and the
 * configuration already parsed by core/config. No client: the caller lists the objects.
 */
import type { ConfigResult } from '../config/index.js';
import type { PreparedClaims } from './claims.js';

/** A namespace and its labels (pools' namespaceSelectors match these). */
export interface NamespaceInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** Everything a diagnosis is computed from. Lists may be partial (one namespace): say so in `scope`. */
export interface Snapshot {
  /** The configuration as the cluster holds it now (ConfigMap and metallb.io objects), parsed. */
  config: ConfigResult;
  /**
   * The last good configuration the controller recorded (ConfigMap metallb-last-good-config),
   * parsed; what every component runs on while the current one is invalid.
   */
  lastGood?: ConfigResult;
  /** Service objects (every type: only LoadBalancer Services of ours are diagnosed). */
  services: readonly unknown[];
  namespaces: readonly NamespaceInfo[];
  /** IPClaim objects (metallb.io): the ledger of who holds which IP. */
  claims: readonly unknown[];
  /**
   * These claims already read and mirrored (prepareClaims), by a caller that had them before the
   * rest arrived; used only when made from this very `claims` list and the pools analyze runs on.
   */
  preparedClaims?: PreparedClaims;
  endpointSlices: readonly unknown[];
  nodes: readonly unknown[];
  /** ServiceL2Status objects, as the node agents publish them. */
  l2Statuses: readonly unknown[];
  /** BGPSessionState objects, as the nodes' BGP speakers publish them. */
  bgpSessions?: readonly unknown[];
  /** core/v1 Events (only those about Services are read). */
  events?: readonly unknown[];
  /** The controller's spec.loadBalancerClass (undefined: Services without a class are ours). */
  loadBalancerClass?: string;
  /** When the snapshot was taken (ISO time), for the age of events. */
  now?: string;
}

/** One word for a Service's state, as `kubectl metallb services` shows it. */
export type ServiceState = 'ok' | 'pending' | 'not announced' | 'config error';
