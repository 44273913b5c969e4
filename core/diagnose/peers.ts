/**
 * `kubectl metallb peers` as data: every node x BGP peer session the configuration asks for
 * (each BGPPeer on the nodes its nodeSelectors select), with what the node's speaker published
 * about it in its BGPSessionState object (MetalLB's fields: node, peer, vrf, bgpStatus,
 * bfdStatus; ours: lastTransitionTime, prefixesSent/Received, negotiated holdTime and
 * keepaliveTime, lastError). A session nobody published is shown as unknown, not as down.
 */
import { selectorMatches, type BGPPeer, type Config } from '../config/index.js';
import { formatIP } from '../ip/index.js';
import type { AnnounceNode } from '../announce/index.js';
import { canonicalIP } from './analyze.js';

/** One node x peer session. Field names are stable (-o json|yaml). */
export interface PeerRow {
  node: string;
  /** The BGPPeer's name, or null for a session the configuration does not ask for (stale status). */
  peer: string | null;
  address: string;
  asn: number | null;
  /** As the speaker says (Established, Active, Idle, Connect, OpenSent, OpenConfirm), or `unknown` with no status. */
  state: string;
  /** When the state last changed (ISO): uptime while Established, time since down otherwise. */
  since: string | null;
  prefixesSent: number | null;
  prefixesReceived: number | null;
  /** Negotiated hold time, seconds. */
  holdTime: number | null;
  keepaliveTime: number | null;
  /** `up`, `down`, `no BFD configured` (MetalLB's words), or null. */
  bfd: string | null;
  lastError: string | null;
  vrf: string;
}

export interface PeersReport {
  sessions: PeerRow[];
  established: number;
  total: number;
}

type Fields = Record<string, unknown>;
const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (m: Fields, k: string): string | undefined => (typeof m[k] === 'string' && m[k] !== '' ? m[k] : undefined);
const num = (m: Fields, k: string): number | null => (typeof m[k] === 'number' ? m[k] : typeof m[k] === 'string' && /^\d+$/.test(m[k]) ? Number(m[k]) : null);

/** `90s`, `90`, 90 -> 90 (seconds). */
function seconds(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return null;
  const m = /^(\d+)(s|m)?$/.exec(v.trim());
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : null;
}

/** The peer address of a session object, canonical (MetalLB writes the address, with a zone for link-local). */
function addressOf(status: Fields, labels: Fields): string | undefined {
  const raw = text(status, 'peer') ?? text(labels, 'metallb.io/peer') ?? text(labels, 'frrk8s.metallb.io/peer');
  if (!raw) return undefined;
  return canonicalIP(raw.split('%')[0]) ?? raw;
}

/** Every expected or published session, sorted by node then peer address. */
export function peerRows(config: Config, nodes: readonly AnnounceNode[], sessions: readonly unknown[], options: { node?: string } = {}): PeersReport {
  const published = new Map<string, Fields>();
  for (const o of sessions) {
    if (!isMap(o)) continue;
    const status = isMap(o.status) ? o.status : {};
    const labels = isMap(o.metadata) && isMap(o.metadata.labels) ? o.metadata.labels : {};
    const node = text(status, 'node') ?? text(labels, 'metallb.io/node');
    const address = addressOf(status, labels);
    if (!node || !address) continue;
    published.set(`${node} ${address}`, status);
  }
  const rows: PeerRow[] = [];
  const seen = new Set<string>();
  const peerAt = new Map(config.peers.map((p) => [formatIP(p.peerAddress), p]));
  const row = (node: string, address: string, peer: BGPPeer | undefined, status: Fields | undefined): PeerRow => ({
    node,
    peer: peer?.name ?? null,
    address,
    asn: peer?.peerASN ?? null,
    state: (status && text(status, 'bgpStatus')) ?? 'unknown',
    since: (status && text(status, 'lastTransitionTime')) ?? null,
    prefixesSent: status ? num(status, 'prefixesSent') : null,
    prefixesReceived: status ? num(status, 'prefixesReceived') : null,
    holdTime: status ? seconds(status.holdTime) : null,
    keepaliveTime: status ? seconds(status.keepaliveTime) : null,
    bfd: (status && text(status, 'bfdStatus')) ?? null,
    lastError: (status && text(status, 'lastError')) ?? null,
    vrf: (status && text(status, 'vrf')) ?? '',
  });
  for (const node of nodes) {
    for (const peer of config.peers) {
      if (peer.nodeSelectors.length > 0 && !peer.nodeSelectors.some((s) => selectorMatches(s, node.labels))) continue;
      const address = formatIP(peer.peerAddress);
      const key = `${node.name} ${address}`;
      seen.add(key);
      rows.push(row(node.name, address, peer, published.get(key)));
    }
  }
  for (const [key, status] of published) {
    if (seen.has(key)) continue;
    const [node = '', address = ''] = key.split(' ');
    rows.push(row(node, address, peerAt.get(address), status));
  }
  const shown = rows
    .filter((r) => options.node === undefined || r.node === options.node)
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { sessions: shown, established: shown.filter((r) => r.state === 'Established').length, total: shown.length };
}
