/**
 * IPv6 Neighbor Discovery (RFC 4861) neighbor solicitations and advertisements over Ethernet,
 * both ways, as pure functions over Buffer.
 *
 * `decodeNdp` applies the validity checks of RFC 4861 §7.1 (hop limit 255, ICMPv6 checksum,
 * code 0, lengths, options) and never throws: anything else comes back as a typed reason.
 * Options other than the link-layer addresses and the DAD nonce are skipped on reading.
 */
import { allocFrame, ETHERNET_HEADER_LENGTH, EtherType, formatMac, macBytes, readEthernetHeader, writeEthernetHeader, type EthernetAddresses } from './ethernet.js';
import {
  ALL_NODES,
  formatIPv6,
  icmpv6Checksum,
  IPV6_HEADER_LENGTH,
  ipv6Bytes,
  isMulticastIPv6,
  isUnspecifiedIPv6,
  multicastMac,
  NEXT_HEADER_ICMPV6,
  type Ipv6Header,
} from './ipv6.js';

/** ICMPv6 types of the two messages (RFC 4861 §4.3, §4.4). */
export const IcmpV6Type = {
  neighborSolicitation: 135,
  neighborAdvertisement: 136,
} as const;

/** Option types (RFC 4861 §4.6.1; the nonce is RFC 3971 §5.3.2, used for DAD by RFC 7527). */
export const NdpOption = {
  sourceLinkLayerAddress: 1,
  targetLinkLayerAddress: 2,
  nonce: 14,
} as const;

/** Flags of a neighbor advertisement (RFC 4861 §4.4), in its first byte after the checksum. */
const FLAG_ROUTER = 0x80;
const FLAG_SOLICITED = 0x40;
const FLAG_OVERRIDE = 0x20;

/** Type, code, checksum, 4 bytes reserved or flags, 16 bytes target. */
const NDP_BODY_LENGTH = 24;
const NDP_START = ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH;
const VALID_HOP_LIMIT = 255;

/** "Who has `target`? Tell me." Sent to the target's solicited-node group, or unicast to check reachability. */
export interface NeighborSolicitation {
  readonly type: 'neighbor-solicitation';
  readonly ethernet: EthernetAddresses;
  readonly ip: Ipv6Header;
  readonly target: string;
  /** The asker's MAC; absent from DAD probes (source ::), and allowed to be absent from unicast ones. */
  readonly sourceLinkLayer?: string;
  /** Hex of the RFC 7527 nonce that Linux adds to its DAD probes. */
  readonly nonce?: string;
}

/** "`target` is at `targetLinkLayer`." */
export interface NeighborAdvertisement {
  readonly type: 'neighbor-advertisement';
  readonly ethernet: EthernetAddresses;
  readonly ip: Ipv6Header;
  readonly router: boolean;
  /** An answer to a solicitation (never set on one sent to a multicast group). */
  readonly solicited: boolean;
  /** Receivers replace the MAC they have cached for `target` with this one. */
  readonly override: boolean;
  readonly target: string;
  readonly targetLinkLayer?: string;
}

export type NdpMessage = NeighborSolicitation | NeighborAdvertisement;

/** Why a frame is not a valid neighbor solicitation or advertisement. */
export type NdpIgnored =
  /** Shorter than its headers, or than the payload length its IPv6 header claims. */
  | 'truncated'
  /** Not IPv6 (EtherType or version). */
  | 'not-ipv6'
  /** IPv6 whose next header is not ICMPv6 (extension headers included: NDP never has them). */
  | 'not-icmpv6'
  /** ICMPv6 of another type (router solicitations, echo, MLD...). */
  | 'not-ndp'
  /** Hop limit other than 255: routed from another link, or forged (RFC 4861 §7.1). */
  | 'bad-hop-limit'
  | 'bad-checksum'
  | 'bad-code'
  /** An option of length 0 or running past the message. */
  | 'bad-option'
  /** Target address is multicast. */
  | 'multicast-target'
  /** A DAD probe (source ::) not sent to a solicited-node group, or carrying a source link-layer address. */
  | 'bad-dad'
  /** A solicited advertisement sent to a multicast group. */
  | 'multicast-solicited';

export type NdpDecoded = { readonly ok: true; readonly message: NdpMessage } | { readonly ok: false; readonly reason: NdpIgnored };

/** Reads an Ethernet frame holding a neighbor solicitation or advertisement. */
export function decodeNdp(frame: Buffer): NdpDecoded {
  const ethernet = readEthernetHeader(frame);
  if (!ethernet) return fail('truncated');
  if (ethernet.etherType !== EtherType.ipv6) return fail('not-ipv6');
  if (frame.length < NDP_START) return fail('truncated');
  const ipAt = ETHERNET_HEADER_LENGTH;
  const first = frame.readUInt32BE(ipAt);
  if (first >>> 28 !== 6) return fail('not-ipv6');
  if (frame[ipAt + 6] !== NEXT_HEADER_ICMPV6) return fail('not-icmpv6');
  const payloadLength = frame.readUInt16BE(ipAt + 4);
  // Short frames arrive padded to 60 bytes: the payload length, not the frame, says where the message ends.
  if (NDP_START + payloadLength > frame.length || payloadLength < 4) return fail('truncated');
  const message = frame.subarray(NDP_START, NDP_START + payloadLength);
  const type = message[0];
  if (type !== IcmpV6Type.neighborSolicitation && type !== IcmpV6Type.neighborAdvertisement) return fail('not-ndp');
  const hopLimit = frame[ipAt + 7] ?? 0;
  if (hopLimit !== VALID_HOP_LIMIT) return fail('bad-hop-limit');
  if (message.length < NDP_BODY_LENGTH) return fail('truncated');
  const source = frame.subarray(ipAt + 8, ipAt + 24);
  const destination = frame.subarray(ipAt + 24, ipAt + 40);
  if (icmpv6Checksum(source, destination, message) !== 0) return fail('bad-checksum');
  if (message[1] !== 0) return fail('bad-code');
  if (isMulticastIPv6(message, 8)) return fail('multicast-target');

  const options = readOptions(message.subarray(NDP_BODY_LENGTH));
  if (!options) return fail('bad-option');
  const ip: Ipv6Header = {
    source: formatIPv6(source),
    destination: formatIPv6(destination),
    hopLimit,
    trafficClass: (first >>> 20) & 0xff,
    flowLabel: first & 0xfffff,
  };
  const header = { ethernet: { destination: ethernet.destination, source: ethernet.source }, ip, target: formatIPv6(message, 8) };

  if (type === IcmpV6Type.neighborSolicitation) {
    if (isUnspecifiedIPv6(source) && (!isSolicitedNodeGroup(destination) || options.sourceLinkLayer !== undefined)) return fail('bad-dad');
    return {
      ok: true,
      message: {
        type: 'neighbor-solicitation',
        ...header,
        ...(options.sourceLinkLayer !== undefined && { sourceLinkLayer: options.sourceLinkLayer }),
        ...(options.nonce !== undefined && { nonce: options.nonce }),
      },
    };
  }
  const flags = message[4] ?? 0;
  const solicited = (flags & FLAG_SOLICITED) !== 0;
  if (solicited && isMulticastIPv6(destination)) return fail('multicast-solicited');
  return {
    ok: true,
    message: {
      type: 'neighbor-advertisement',
      ...header,
      router: (flags & FLAG_ROUTER) !== 0,
      solicited,
      override: (flags & FLAG_OVERRIDE) !== 0,
      ...(options.targetLinkLayer !== undefined && { targetLinkLayer: options.targetLinkLayer }),
    },
  };
}

/** The frame of a message, with its ICMPv6 checksum computed. Bad addresses are a RangeError. */
export function encodeNdp(message: NdpMessage): Buffer {
  const options: Buffer[] = [];
  if (message.type === 'neighbor-solicitation') {
    if (message.sourceLinkLayer !== undefined) options.push(linkLayerOption(NdpOption.sourceLinkLayerAddress, message.sourceLinkLayer));
    if (message.nonce !== undefined) options.push(nonceOption(message.nonce));
  } else if (message.targetLinkLayer !== undefined) {
    options.push(linkLayerOption(NdpOption.targetLinkLayerAddress, message.targetLinkLayer));
  }
  const body = Buffer.concat([Buffer.alloc(NDP_BODY_LENGTH), ...options]);
  body[0] = message.type === 'neighbor-solicitation' ? IcmpV6Type.neighborSolicitation : IcmpV6Type.neighborAdvertisement;
  if (message.type === 'neighbor-advertisement') {
    body[4] = (message.router ? FLAG_ROUTER : 0) | (message.solicited ? FLAG_SOLICITED : 0) | (message.override ? FLAG_OVERRIDE : 0);
  }
  ipv6Bytes(message.target).copy(body, 8);
  const source = ipv6Bytes(message.ip.source);
  const destination = ipv6Bytes(message.ip.destination);
  body.writeUInt16BE(icmpv6Checksum(source, destination, body), 2);

  const frame = allocFrame(NDP_START + body.length);
  writeEthernetHeader(frame, message.ethernet, EtherType.ipv6);
  const ipAt = ETHERNET_HEADER_LENGTH;
  frame.writeUInt32BE(((6 << 28) | ((message.ip.trafficClass & 0xff) << 20) | (message.ip.flowLabel & 0xfffff)) >>> 0, ipAt);
  frame.writeUInt16BE(body.length, ipAt + 4);
  frame[ipAt + 6] = NEXT_HEADER_ICMPV6;
  frame[ipAt + 7] = message.ip.hopLimit;
  source.copy(frame, ipAt + 8);
  destination.copy(frame, ipAt + 24);
  body.copy(frame, NDP_START);
  return frame;
}

/**
 * Our answer to a solicitation for one of our addresses (RFC 4861 §7.2.4), with our MAC in the
 * target link-layer address option and the target itself as the source, as Linux answers for
 * its own addresses. A DAD probe (source ::) from a host about to take our address is answered
 * to all nodes, unsolicited, which makes that host give the address up. Otherwise the answer
 * goes to the asker, to the MAC it gave in its option (else the frame's source MAC). The
 * override flag is set as RFC 4861 asks for an address that is ours and not anycast: a client
 * holding the previous owner's MAC takes ours.
 */
export function neighborAdvertisementFor(solicitation: NeighborSolicitation, mac: string): NeighborAdvertisement {
  const dad = solicitation.ip.source === '::';
  const destination = dad ? ALL_NODES : solicitation.ip.source;
  return {
    type: 'neighbor-advertisement',
    ethernet: {
      destination: dad ? multicastMac(ipv6Bytes(ALL_NODES)) : (solicitation.sourceLinkLayer ?? solicitation.ethernet.source),
      source: mac,
    },
    ip: { source: solicitation.target, destination, hopLimit: VALID_HOP_LIMIT, trafficClass: 0, flowLabel: 0 },
    router: false,
    solicited: !dad,
    override: true,
    target: solicitation.target,
    targetLinkLayer: mac,
  };
}

/** An unsolicited advertisement to all nodes that `ip` is now at `mac`, overriding what they cached (RFC 4861 §7.2.6). */
export function unsolicitedNeighborAdvertisement(mac: string, ip: string): NeighborAdvertisement {
  return {
    type: 'neighbor-advertisement',
    ethernet: { destination: multicastMac(ipv6Bytes(ALL_NODES)), source: mac },
    ip: { source: ip, destination: ALL_NODES, hopLimit: VALID_HOP_LIMIT, trafficClass: 0, flowLabel: 0 },
    router: false,
    solicited: false,
    override: true,
    target: ip,
    targetLinkLayer: mac,
  };
}

function fail(reason: NdpIgnored): NdpDecoded {
  return { ok: false, reason };
}

/** ff02::1:ffXX:XXXX */
function isSolicitedNodeGroup(address: Buffer): boolean {
  return address.readUInt32BE(0) === 0xff020000 && address.readUInt32BE(4) === 0 && address.readUInt32BE(8) === 1 && address[12] === 0xff;
}

interface Options {
  sourceLinkLayer?: string;
  targetLinkLayer?: string;
  nonce?: string;
}

/** The options we read, or undefined when one is malformed (RFC 4861 §4.6: length in units of 8 bytes, never 0). */
function readOptions(buf: Buffer): Options | undefined {
  const options: Options = {};
  let at = 0;
  while (at < buf.length) {
    if (at + 2 > buf.length) return undefined;
    const type = buf[at];
    const length = (buf[at + 1] ?? 0) * 8;
    if (length === 0 || at + length > buf.length) return undefined;
    // Link-layer address options for Ethernet are 8 bytes: type, length, 6 bytes of MAC (RFC 2464 §6).
    if (type === NdpOption.sourceLinkLayerAddress && length === 8) options.sourceLinkLayer ??= formatMac(buf, at + 2);
    if (type === NdpOption.targetLinkLayerAddress && length === 8) options.targetLinkLayer ??= formatMac(buf, at + 2);
    if (type === NdpOption.nonce) options.nonce ??= buf.subarray(at + 2, at + length).toString('hex');
    at += length;
  }
  return options;
}

function linkLayerOption(type: number, mac: string): Buffer {
  return Buffer.concat([Buffer.from([type, 1]), macBytes(mac)]);
}

function nonceOption(hex: string): Buffer {
  const nonce = Buffer.from(hex, 'hex');
  if (nonce.length * 2 !== hex.length || (nonce.length + 2) % 8 !== 0) throw new RangeError(`nonce "${hex}" is not 6, 14, 22... bytes of hex`);
  return Buffer.concat([Buffer.from([NdpOption.nonce, (nonce.length + 2) / 8]), nonce]);
}
