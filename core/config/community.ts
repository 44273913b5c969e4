/**
 * BGP communities as operators write them: "asn:value" (RFC 1997) or "large:a:b:c" (RFC 8092),
 * the two forms MetalLB accepts in advertisements and Community aliases.
 */
import type { Parsed } from '../ip/index.js';
import type { Community } from './types.js';

const U16 = 0xffff;
const U32 = 0xffff_ffff;

/** Parse a literal community. Alias names are resolved by the caller, not here. */
export function parseCommunity(text: unknown): Parsed<Community> {
  if (typeof text !== 'string') {
    return { ok: false, error: `${JSON.stringify(text) ?? 'nothing'} is not a community (write "asn:value" or "large:a:b:c")` };
  }
  const bad = (why: string): Parsed<Community> => ({ ok: false, error: `"${text}" is not a community: ${why}` });
  const parts = text.split(':');
  if (parts[0] === 'large') {
    if (parts.length !== 4) return bad('a large community has three parts, "large:a:b:c"');
    const [g, l1, l2] = parts.slice(1).map((p) => decimal(p, U32));
    if (g === undefined || l1 === undefined || l2 === undefined) {
      return bad(`each part of a large community is a number from 0 to ${U32}`);
    }
    return { ok: true, value: { kind: 'large', global: g, local1: l1, local2: l2 } };
  }
  if (parts.length !== 2) return bad('write "asn:value" (each 0-65535) or "large:a:b:c"');
  const [asn, value] = parts.map((p) => decimal(p, U16));
  if (asn === undefined || value === undefined) return bad('each half of a community is a number from 0 to 65535');
  return { ok: true, value: { kind: 'standard', asn, value } };
}

/** The text form parseCommunity reads back: "asn:value" or "large:a:b:c". */
export function formatCommunity(c: Community): string {
  return c.kind === 'standard' ? `${c.asn}:${c.value}` : `large:${c.global}:${c.local1}:${c.local2}`;
}

/** Same value, however it was written (an alias or a literal). */
export function sameCommunity(a: Community, b: Community): boolean {
  return formatCommunity(a) === formatCommunity(b);
}

/** Plain decimal only: "0x10", "1e3" or " 1" in a community are typos, not numbers. */
function decimal(text: string | undefined, max: number): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}
