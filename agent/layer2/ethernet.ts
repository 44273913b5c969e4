/**
 * Ethernet II framing and MAC addresses, shared by the ARP and NDP codecs.
 *
 * MAC addresses travel through the codecs as canonical text (`02:00:00:00:00:01`, lower case),
 * so messages are plain data that tests and logs can compare and print.
 */

/** EtherTypes this agent meets (IEEE 802 assignments, RFC 7042 appendix B). */
export const EtherType = {
  ipv4: 0x0800,
  arp: 0x0806,
  ipv6: 0x86dd,
} as const;

/** Destination and source of a frame. */
export interface EthernetAddresses {
  readonly destination: string;
  readonly source: string;
}

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
export const ZERO_MAC = '00:00:00:00:00:00';
export const ETHERNET_HEADER_LENGTH = 14;
/**
 * The shortest frame on the wire without its FCS. NICs pad short frames themselves, veth does
 * not; we pad, so that what we send is byte for byte what a switch port would see.
 */
export const MIN_FRAME_LENGTH = 60;

const MAC_TEXT = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Two lower-case hex digits per byte value, for formatMac (it runs for every frame received). */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Whether `text` is a MAC address in canonical form (six lower-case hex pairs joined by colons). */
export function isMac(text: string): boolean {
  return MAC_TEXT.test(text);
}

/** The six bytes of a canonical MAC address; a RangeError for anything else (a bug of the caller). */
export function macBytes(text: string): Buffer {
  if (!isMac(text)) throw new RangeError(`"${text}" is not a MAC address (six lower-case hex pairs joined by colons)`);
  const buf = Buffer.allocUnsafe(6);
  for (let i = 0; i < 6; i++) buf[i] = (hexDigit(text.charCodeAt(i * 3)) << 4) | hexDigit(text.charCodeAt(i * 3 + 1));
  return buf;
}

/** The value of a lower-case hex digit's character code (already checked by isMac). */
function hexDigit(code: number): number {
  return code <= 57 ? code - 48 : code - 87;
}

/** Canonical text of the MAC address at `offset`. */
export function formatMac(buf: Buffer, offset = 0): string {
  const h = (i: number): string => HEX[buf[offset + i] ?? 0]!;
  return `${h(0)}:${h(1)}:${h(2)}:${h(3)}:${h(4)}:${h(5)}`;
}

/** Whether the MAC address at `offset` has the group bit set (broadcast included). */
export function isMulticastMac(buf: Buffer, offset = 0): boolean {
  return ((buf[offset] ?? 0) & 1) === 1;
}

/** Writes the 14-byte header at the start of `frame`. */
export function writeEthernetHeader(frame: Buffer, addresses: EthernetAddresses, etherType: number): void {
  macBytes(addresses.destination).copy(frame, 0);
  macBytes(addresses.source).copy(frame, 6);
  frame.writeUInt16BE(etherType, 12);
}

/** The header of a frame, or undefined when the frame is shorter than a header. */
export function readEthernetHeader(frame: Buffer): (EthernetAddresses & { etherType: number }) | undefined {
  if (frame.length < ETHERNET_HEADER_LENGTH) return undefined;
  return { destination: formatMac(frame, 0), source: formatMac(frame, 6), etherType: frame.readUInt16BE(12) };
}

/** A buffer of at least MIN_FRAME_LENGTH bytes, zero-filled past `length`. */
export function allocFrame(length: number): Buffer {
  return Buffer.alloc(Math.max(length, MIN_FRAME_LENGTH));
}
