/**
 * The pieces of IPv6 the NDP codec needs: the fixed header, addresses as bytes and text, the
 * ICMPv6 checksum, and solicited-node multicast groups.
 */
import { formatIPv6Groups, ipv6Groups } from '../../core/ip/text.js';

/** Next Header value of ICMPv6 (IANA protocol numbers; RFC 4443). */
export const NEXT_HEADER_ICMPV6 = 58;
export const IPV6_HEADER_LENGTH = 40;
/** ff02::1, all nodes on the link (RFC 4291 §2.7.1). */
export const ALL_NODES = 'ff02::1';

/** The fields of the fixed IPv6 header (RFC 8200 §3) that NDP messages carry. */
export interface Ipv6Header {
  readonly source: string;
  readonly destination: string;
  /** 255 on every valid NDP message (RFC 4861 §7.1): proof it was not routed. */
  readonly hopLimit: number;
  readonly trafficClass: number;
  readonly flowLabel: number;
}

/**
 * The 16 bytes of an IPv6 address in any RFC 4291 text form; a RangeError for anything else.
 * Every frame the speaker sends goes through this: no bigint on the way, bytes from the groups.
 */
export function ipv6Bytes(text: string): Buffer {
  const bytes = parseIPv6(text);
  if (!bytes) throw new RangeError(`"${text}" is not an IPv6 address`);
  return bytes;
}

/** The 16 bytes of an IPv6 address, or undefined when `text` is not one (no zone, no brackets). */
export function parseIPv6(text: string): Buffer | undefined {
  const groups = ipv6Groups(text);
  if (groups === undefined) return undefined;
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  return buf;
}

/** Canonical (RFC 5952) text of the IPv6 address at `offset`. */
export function formatIPv6(buf: Buffer, offset = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(offset + i * 2));
  return formatIPv6Groups(g);
}

/** Whether the IPv6 address at `offset` is multicast (ff00::/8). */
export function isMulticastIPv6(buf: Buffer, offset = 0): boolean {
  return buf[offset] === 0xff;
}

/** Whether the IPv6 address at `offset` is the unspecified address ::. */
export function isUnspecifiedIPv6(buf: Buffer, offset = 0): boolean {
  for (let i = offset; i < offset + 16; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * The solicited-node multicast group of an address (RFC 4291 §2.7.1: ff02::1:ff00:0/104 plus its
 * low 24 bits), and the Ethernet group it maps to (RFC 2464 §7: 33:33 plus the low 32 bits).
 * Neighbor solicitations for the address are sent there, so the speaker joins it.
 */
export function solicitedNode(ip: string): { readonly ip: string; readonly mac: string } {
  const low = ipv6Bytes(ip).subarray(13);
  const group = Buffer.from('ff0200000000000000000001ff000000', 'hex');
  low.copy(group, 13);
  return { ip: formatIPv6(group), mac: multicastMac(group) };
}

/** The Ethernet address of an IPv6 multicast group (RFC 2464 §7). */
export function multicastMac(group: Buffer, offset = 0): string {
  const mac = Buffer.from([0x33, 0x33, ...group.subarray(offset + 12, offset + 16)]);
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * The ICMPv6 checksum (RFC 4443 §2.3) of `message` (its checksum field taken as it is) under
 * the pseudo-header of RFC 8200 §8.1. Writing: zero the field, store the result. Checking: a
 * message whose stored checksum is right sums to 0.
 */
export function icmpv6Checksum(source: Buffer, destination: Buffer, message: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 16; i += 2) sum += source.readUInt16BE(i) + destination.readUInt16BE(i);
  sum += Math.floor(message.length / 0x10000) + (message.length & 0xffff) + NEXT_HEADER_ICMPV6;
  const even = message.length & ~1;
  for (let i = 0; i < even; i += 2) sum += message.readUInt16BE(i);
  if (even < message.length) sum += (message[even] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
