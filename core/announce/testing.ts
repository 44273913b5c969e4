/**
 * Builders the core/announce tests and bench share (layer2.test.ts, bgp.test.ts,
 * test/bench/announce.ts): pools from CIDR text, BGPAdvertisements, label selectors, nodes,
 * endpoints and Services as core/announce reads them.
 */
import type { BGPAdvertisement, LabelSelector, Pool } from '../config/index.js';
import { parseRange } from '../ip/index.js';
import type { AnnounceEndpoint, AnnounceNode, AnnounceService } from './model.js';

export function range(text: string): Pool['ranges'][number] {
  const r = parseRange(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

export const pool = (name: string, ranges: string[], labels: Record<string, string> = {}): Pool => ({
  name,
  origin: { kind: 'IPAddressPool', namespace: 'metallb-system', name },
  labels,
  ranges: ranges.map(range),
  autoAssign: true,
  avoidBuggyIPs: false,
});

export const labels = (matchLabels: Record<string, string>): LabelSelector => ({ matchLabels, matchExpressions: [] });

export const node = (name: string, nodeLabels: Record<string, string> = {}, networkUnavailable = false): AnnounceNode => ({ name, labels: nodeLabels, networkUnavailable });

/** A ready endpoint, on `nodeName` when given. */
export const ready = (nodeName?: string): AnnounceEndpoint => ({ ...(nodeName ? { nodeName } : {}), ready: true, serving: true, terminating: false });

/** A Service in `default` holding `ips`: Cluster policy, one ready endpoint on node-a, unless `fields` say otherwise. */
export const svc = (name: string, ips: string[], fields: Partial<AnnounceService> = {}): AnnounceService => ({
  namespace: 'default',
  name,
  ips,
  trafficPolicy: 'Cluster',
  endpoints: [ready('node-a')],
  ...fields,
});

/** A BGPAdvertisement with MetalLB's defaults (one route per address, every pool, node and peer), `fields` aside. */
export const bgpAdvertisement = (name: string, fields: Partial<BGPAdvertisement> = {}): BGPAdvertisement => ({
  name,
  origin: { kind: 'BGPAdvertisement', namespace: 'metallb-system', name },
  aggregationLength: 32,
  aggregationLengthV6: 128,
  communities: [],
  ipAddressPools: [],
  ipAddressPoolSelectors: [],
  nodeSelectors: [],
  peers: [],
  ...fields,
});
