/**
 * The pieces of IPv6 the NDP codec needs: the fixed header, addresses as bytes and text, the
 * ICMPv6 checksum, and solicited-node multicast groups.
 */
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
 * Written here rather than taken from core/ip, whose parser (ip-num) costs tens of microseconds
 * an address: every frame the speaker sends goes through this.
 */
export function ipv6Bytes(text: string): Buffer {
  const bytes = parseIPv6(text);
  if (!bytes) throw new RangeError(`"${text}" is not an IPv6 address`);
  return bytes;
}

/** The 16 bytes of an IPv6 address, or undefined when `text` is not one (no zone, no brackets). */
export function parseIPv6(text: string): Buffer | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const gap = text.indexOf('::');
  if (gap >= 0 && text.indexOf('::', gap + 1) >= 0) return undefined;
  const head = gap < 0 ? text : text.slice(0, gap);
  const tail = gap < 0 ? '' : text.slice(gap + 2);
  const front = head === '' ? [] : groups(head, gap < 0);
  const back = tail === '' ? [] : groups(tail, true);
  if (!front || !back) return undefined;
  const count = front.length + back.length;
  if (gap < 0 ? count !== 8 : count > 7) return undefined;
  const buf = Buffer.alloc(16);
  front.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  back.forEach((g, i) => buf.writeUInt16BE(g, 16 - (back.length - i) * 2));
  return buf;
}

/** 16-bit groups of `part` (colon-separated hex); the last may be a dotted IPv4 address when `last`. */
function groups(part: string, last: boolean): number[] | undefined {
  const out: number[] = [];
  const fields = part.split(':');
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (last && i === fields.length - 1 && f.includes('.')) {
      const quad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(f);
      const b = quad ? quad.slice(1).map(Number) : [];
      // No leading zeros in the dotted part (RFC 4291 §2.2 and what core/ip accepts).
      if (!quad || b.some((x, j) => x > 255 || (quad[j + 1]!.length > 1 && quad[j + 1]![0] === '0'))) return undefined;
      out.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(f)) return undefined;
      out.push(Number.parseInt(f, 16));
    }
  }
  return out;
}

/** Canonical (RFC 5952) text of the IPv6 address at `offset`: lower case, longest zero run (2 groups or more, first on a tie) as `::`. */
export function formatIPv6(buf: Buffer, offset = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(offset + i * 2));
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLength, 8)}`;
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
