/**
 * Addresses, CIDRs and ranges for both families, as checked value types.
 *
 * Address text is read and written by hand (text.ts, shared with the agent's codecs), held to ip-num's answers by
 * seeded tests: ip-num cost 30 ms to load and tens of microseconds an address. Arithmetic is done on bigint so
 * a /8 or an IPv6 /64 costs the same as a /30: nothing here ever enumerates a range.
 */
import { bigIntToGroups, formatIPv6Groups, groupsToBigInt, ipv4Octets, ipv6Groups } from './text.js';

export type Family = 'IPv4' | 'IPv6';

export const FAMILY_BITS: Readonly<Record<Family, number>> = { IPv4: 32, IPv6: 128 };

/** One address. `value` is the address as an unsigned integer of its family's width. */
export interface IP {
  readonly family: Family;
  readonly value: bigint;
}

/** An inclusive span of addresses of one family, written by the operator as a CIDR or `a-b`. */
export interface IPRange {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
  /** The prefix length when the range was written as a CIDR. */
  readonly prefix?: number;
  /** What the operator wrote, for messages. */
  readonly text: string;
}

/** Parse failures are values, not exceptions: callers attach the place and report them all. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** Parse one IPv4 or IPv6 address (no zone, no surrounding spaces, no leading zeros). */
export function parseIP(text: unknown): Parsed<IP> {
  if (typeof text !== 'string') return fail(`${JSON.stringify(text)} is not an IP address`);
  if (text.includes(':')) {
    const groups = ipv6Groups(text);
    return groups === undefined ? fail(`"${text}" is not an IP address`) : ok({ family: 'IPv6', value: groupsToBigInt(groups) });
  }
  const value = ipv4Value(text);
  return value === undefined ? fail(`"${text}" is not an IP address`) : ok({ family: 'IPv4', value });
}

/** A dotted quad's value (text.ts's rules: octets 0-255, no leading zeros). */
function ipv4Value(text: string): bigint | undefined {
  const o = ipv4Octets(text);
  return o && BigInt(((o[0] * 256 + o[1]) * 256 + o[2]) * 256 + o[3]);
}

/** Canonical text of an address: dotted quad, or RFC 5952 compressed IPv6. */
export function formatIP(ip: IP): string {
  if (ip.family === 'IPv4') {
    const v = Number(ip.value);
    return `${Math.floor(v / 0x1000000) & 0xff}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
  }
  return formatIPv6Groups(bigIntToGroups(ip.value));
}

export function ipFromValue(family: Family, value: bigint): IP {
  return { family, value };
}

export function sameIP(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Parse `a.b.c.d/n` or `x::/n`. The address must be the network address, as MetalLB requires. */
export function parseCIDR(text: unknown): Parsed<IPRange> {
  if (typeof text !== 'string') return fail(`${JSON.stringify(text)} is not a CIDR`);
  const slash = text.indexOf('/');
  if (slash < 0) return fail(`"${text}" is not a CIDR`);
  const addr = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!addr.ok || !/^\d{1,3}$/.test(prefixText)) return fail(`"${text}" is not a CIDR`);
  const prefix = Number(prefixText);
  const bits = FAMILY_BITS[addr.value.family];
  if (prefix > bits) return fail(`"${text}" is not a CIDR: prefix length ${prefix} is longer than ${bits}`);
  const hostBits = BigInt(bits - prefix);
  const first = (addr.value.value >> hostBits) << hostBits;
  if (first !== addr.value.value) {
    const network = formatIP({ family: addr.value.family, value: first });
    return fail(`"${text}" is not a CIDR: host bits are set (the network is ${network}/${prefix})`);
  }
  const last = first + (1n << hostBits) - 1n;
  return ok({ family: addr.value.family, first, last, prefix, text });
}

/** Parse a pool entry: a CIDR or an inclusive range `a-b` (spaces around the dash allowed). */
export function parseRange(text: unknown): Parsed<IPRange> {
  if (typeof text !== 'string') return fail(`${JSON.stringify(text)} is not a CIDR or an address range`);
  if (text.includes('/')) return parseCIDR(text);
  const dash = text.indexOf('-');
  if (dash < 0) return fail(`"${text}" is not a CIDR or an address range (write a.b.c.d/n or a.b.c.d-e.f.g.h)`);
  const start = parseIP(text.slice(0, dash).trim());
  const end = parseIP(text.slice(dash + 1).trim());
  if (!start.ok) return fail(`"${text}": range start ${start.error}`);
  if (!end.ok) return fail(`"${text}": range end ${end.error}`);
  if (start.value.family !== end.value.family) return fail(`"${text}": range mixes IPv4 and IPv6`);
  if (start.value.value > end.value.value) return fail(`"${text}": range start is after its end`);
  return ok({ family: start.value.family, first: start.value.value, last: end.value.value, text });
}

export function rangeSize(r: IPRange): bigint {
  return r.last - r.first + 1n;
}

export function rangeContains(r: IPRange, ip: IP): boolean {
  return r.family === ip.family && ip.value >= r.first && ip.value <= r.last;
}

export function rangesOverlap(a: IPRange, b: IPRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** The length of the smallest CIDR covering every address of the range (its own prefix for a CIDR). */
export function coveringPrefix(r: IPRange): number {
  const bits = FAMILY_BITS[r.family];
  let prefix = bits;
  while (prefix > 0 && r.first >> BigInt(bits - prefix) !== r.last >> BigInt(bits - prefix)) prefix--;
  return prefix;
}

/** The network of `ip` at the given prefix length, as a CIDR range (used for route aggregation). */
export function networkOf(ip: IP, prefix: number): IPRange {
  const bits = FAMILY_BITS[ip.family];
  const hostBits = BigInt(bits - prefix);
  const first = (ip.value >> hostBits) << hostBits;
  const last = first + (1n << hostBits) - 1n;
  const range = { family: ip.family, first, last, prefix, text: '' };
  return { ...range, text: `${formatIP({ family: ip.family, value: first })}/${prefix}` };
}

/**
 * True for IPv4 addresses ending in .0 or .255. Some old firmware treats them as broadcast
 * addresses whatever the real prefix is and drops traffic to them, hence avoid-buggy-ips.
 */
export function isBuggyIP(ip: IP): boolean {
  if (ip.family !== 'IPv4') return false;
  const low = ip.value & 0xffn;
  return low === 0n || low === 0xffn;
}
