/**
 * Addresses no Service can ever be reached at. A pool holding one would hand it out: a Service
 * on 127.0.0.1 or 224.0.0.1 is at best dead and at worst hijacks host traffic, so a pool that
 * contains any of them (whole or in part, e.g. `0.0.0.0/0`) is refused.
 *
 * Documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), private
 * ranges (RFC 1918, fc00::/7), CGNAT (100.64.0.0/10) and public addresses are all unicast and
 * stay allowed.
 */
import { FAMILY_BITS, formatIP, parseCIDR, type IPRange } from '../ip/index.js';

export interface ReservedBlock {
  /** The block, as a CIDR (a /32 or /128 is shown as the bare address). */
  readonly range: IPRange;
  /** "multicast", "loopback", ... */
  readonly what: string;
  /** Why a Service IP cannot be there. */
  readonly why: string;
}

const block = (cidr: string, what: string, why: string): ReservedBlock => {
  const parsed = parseCIDR(cidr);
  if (!parsed.ok) throw new Error(`bad reserved block ${cidr}: ${parsed.error}`);
  return { range: parsed.value, what, why };
};

const UNICAST = 'a Service IP must be a unicast address';

/** Sorted by family, then address. */
export const RESERVED_BLOCKS: readonly ReservedBlock[] = [
  block('0.0.0.0/8', '"this network" (RFC 1122)', 'it is valid only as a source address, never as a destination'),
  block('127.0.0.0/8', 'loopback', 'traffic to it never leaves the host that sends it'),
  block('169.254.0.0/16', 'link-local', 'it is not routed beyond one link'),
  block('224.0.0.0/4', 'multicast', UNICAST),
  block('255.255.255.255/32', 'the limited broadcast address', UNICAST),
  block('::/128', 'the unspecified address', 'it means "no address"'),
  block('::1/128', 'loopback', 'traffic to it never leaves the host that sends it'),
  block('::ffff:0:0/96', 'IPv4-mapped', 'it is an IPv4 address in IPv6 notation; put the IPv4 address in the pool instead'),
  block('fe80::/10', 'link-local', 'it is not routed beyond one link'),
  block('ff00::/8', 'multicast', UNICAST),
];

/** `224.0.0.0/4`, `::1`, or `a-b` for a span that is not one CIDR block. */
function formatSpan(family: IPRange['family'], first: bigint, last: bigint): string {
  if (first === last) return formatIP({ family, value: first });
  const size = last - first + 1n;
  const bits = FAMILY_BITS[family];
  const hostBits = size.toString(2).length - 1;
  if (size === 1n << BigInt(hostBits) && first % size === 0n) return `${formatIP({ family, value: first })}/${bits - hostBits}`;
  return `${formatIP({ family, value: first })}-${formatIP({ family, value: last })}`;
}

/** The reserved blocks a range touches, with the part of the range inside each. */
export function reservedParts(range: IPRange): { block: ReservedBlock; first: bigint; last: bigint }[] {
  const out: { block: ReservedBlock; first: bigint; last: bigint }[] = [];
  for (const b of RESERVED_BLOCKS) {
    if (b.range.family !== range.family || b.range.last < range.first || b.range.first > range.last) continue;
    out.push({ block: b, first: range.first > b.range.first ? range.first : b.range.first, last: range.last < b.range.last ? range.last : b.range.last });
  }
  return out;
}

/**
 * Why a pool may not hold `range`, or undefined when every address in it is usable. The
 * message names the range as written, the pool, the reserved part and the reason, e.g.
 * `"224.0.0.0/24" in pool "prod" is multicast (224.0.0.0/4); a Service IP must be a unicast address`.
 */
export function reservedProblem(range: IPRange, pool: string): string | undefined {
  const parts = reservedParts(range);
  const first = parts[0];
  if (first === undefined) return undefined;
  const where = `${JSON.stringify(range.text)} in pool ${JSON.stringify(pool)}`;
  const blockText = (b: ReservedBlock): string => formatSpan(b.range.family, b.range.first, b.range.last);
  if (parts.length === 1) {
    const { block: b } = first;
    if (first.first === range.first && first.last === range.last) return `${where} is ${b.what} (${blockText(b)}); ${b.why}`;
    return `${where} includes ${formatSpan(range.family, first.first, first.last)}, which is ${b.what} (${blockText(b)}); ${b.why}`;
  }
  const list = parts.map((p) => `${formatSpan(range.family, p.first, p.last)} (${p.block.what})`).join(', ');
  return `${where} includes addresses no Service can use: ${list}; a pool may hold only routable unicast addresses`;
}
