/**
 * ARP over Ethernet for IPv4 (RFC 826), both ways, as pure functions over Buffer.
 *
 * `decodeArp` never throws: a frame that is not an Ethernet/IPv4 ARP packet comes back as a
 * typed reason, which the speaker counts. `encodeArp` pads to the 60-byte minimum frame.
 */
import { allocFrame, BROADCAST_MAC, ETHERNET_HEADER_LENGTH, EtherType, formatMac, macBytes, readEthernetHeader, writeEthernetHeader, type EthernetAddresses } from './ethernet.js';
import { ipv4Octets } from '../../core/ip/text.js';

/** ARP operation codes (RFC 826; IANA "Address Resolution Protocol (ARP) Parameters"). */
export const ArpOperation = {
  request: 1,
  reply: 2,
} as const;

/** Hardware type Ethernet (RFC 826 ar$hrd; IANA hardware type 1). */
const HARDWARE_ETHERNET = 1;
/** ARP header (8) + two MAC/IPv4 pairs (20). */
const ARP_LENGTH = 28;
/** The shortest frame that holds an Ethernet/IPv4 ARP packet (without padding). */
export const ARP_FRAME_LENGTH = ETHERNET_HEADER_LENGTH + ARP_LENGTH;

/** One ARP packet of Ethernet and IPv4 addresses, with the Ethernet header it came in. */
export interface ArpPacket {
  readonly type: 'request' | 'reply';
  readonly ethernet: EthernetAddresses;
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetMac: string;
  readonly targetIp: string;
}

/** Why a frame is not an ARP packet we can read. */
export type ArpIgnored =
  /** Shorter than an Ethernet header plus an Ethernet/IPv4 ARP packet. */
  | 'truncated'
  /** EtherType is not ARP (0x0806). */
  | 'not-arp'
  /** ARP for another hardware or protocol (Token Ring, IPX...) or wrong address lengths. */
  | 'not-ethernet-ipv4'
  /** An operation other than request and reply (RARP, InARP...). */
  | 'unknown-operation';

export type ArpDecoded = { readonly ok: true; readonly packet: ArpPacket } | { readonly ok: false; readonly reason: ArpIgnored };

/** Reads an Ethernet frame holding an ARP packet. Bytes past the packet (padding) are ignored. */
export function decodeArp(frame: Buffer): ArpDecoded {
  const ethernet = readEthernetHeader(frame);
  if (!ethernet) return { ok: false, reason: 'truncated' };
  if (ethernet.etherType !== EtherType.arp) return { ok: false, reason: 'not-arp' };
  if (frame.length < ARP_FRAME_LENGTH) return { ok: false, reason: 'truncated' };
  const at = ETHERNET_HEADER_LENGTH;
  const hardware = frame.readUInt16BE(at);
  const protocol = frame.readUInt16BE(at + 2);
  const hardwareLength = frame[at + 4];
  const protocolLength = frame[at + 5];
  if (hardware !== HARDWARE_ETHERNET || protocol !== EtherType.ipv4 || hardwareLength !== 6 || protocolLength !== 4) {
    return { ok: false, reason: 'not-ethernet-ipv4' };
  }
  const operation = frame.readUInt16BE(at + 6);
  if (operation !== ArpOperation.request && operation !== ArpOperation.reply) return { ok: false, reason: 'unknown-operation' };
  return {
    ok: true,
    packet: {
      type: operation === ArpOperation.request ? 'request' : 'reply',
      ethernet: { destination: ethernet.destination, source: ethernet.source },
      senderMac: formatMac(frame, at + 8),
      senderIp: formatIPv4(frame, at + 14),
      targetMac: formatMac(frame, at + 18),
      targetIp: formatIPv4(frame, at + 24),
    },
  };
}

/** The frame of an ARP packet, padded with zeros to 60 bytes. Bad addresses are a RangeError. */
export function encodeArp(packet: ArpPacket): Buffer {
  const frame = allocFrame(ARP_FRAME_LENGTH);
  writeEthernetHeader(frame, packet.ethernet, EtherType.arp);
  const at = ETHERNET_HEADER_LENGTH;
  frame.writeUInt16BE(HARDWARE_ETHERNET, at);
  frame.writeUInt16BE(EtherType.ipv4, at + 2);
  frame[at + 4] = 6;
  frame[at + 5] = 4;
  frame.writeUInt16BE(ArpOperation[packet.type], at + 6);
  macBytes(packet.senderMac).copy(frame, at + 8);
  ipv4Bytes(packet.senderIp).copy(frame, at + 14);
  macBytes(packet.targetMac).copy(frame, at + 18);
  ipv4Bytes(packet.targetIp).copy(frame, at + 24);
  return frame;
}

/**
 * Our answer to a request for one of our addresses: "targetIp is at `mac`", sent to the asker
 * alone. A probe (RFC 5227, sender 0.0.0.0) is answered the same way, which defends the address.
 */
export function arpReply(request: ArpPacket, mac: string): ArpPacket {
  return {
    type: 'reply',
    ethernet: { destination: request.senderMac, source: mac },
    senderMac: mac,
    senderIp: request.targetIp,
    targetMac: request.senderMac,
    targetIp: request.senderIp,
  };
}

/**
 * A gratuitous ARP announcing that `ip` is at `mac`, broadcast, with sender and target IP both
 * `ip`. Hosts and switches differ in which form they heed, so the speaker sends both, as MetalLB
 * does; like MetalLB and `arping -U`, the target MAC is the broadcast address in both forms.
 */
export function gratuitousArp(type: ArpPacket['type'], mac: string, ip: string): ArpPacket {
  return {
    type,
    ethernet: { destination: BROADCAST_MAC, source: mac },
    senderMac: mac,
    senderIp: ip,
    targetMac: BROADCAST_MAC,
    targetIp: ip,
  };
}

function formatIPv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** The four bytes of a dotted-quad IPv4 address (no leading zeros); a RangeError for anything else. */
export function ipv4Bytes(text: string): Buffer {
  const bytes = parseIPv4(text);
  if (!bytes) throw new RangeError(`"${text}" is not an IPv4 address`);
  return bytes;
}

/** The four bytes of a dotted-quad IPv4 address, or undefined (core/ip's text rules, no bigint: it runs for every frame sent). */
export function parseIPv4(text: string): Buffer | undefined {
  const octets = ipv4Octets(text);
  return octets && Buffer.from(octets);
}
