/**
 * Address text, by hand: the four octets of a dotted quad, the eight 16-bit groups of an IPv6
 * address in any RFC 4291 §2.2 text form, and the RFC 5952 canonical text of eight groups.
 * core/ip (addresses as bigint) and the agent's ARP and NDP codecs (addresses as bytes, for
 * every frame sent) both build on these. ip-num, which core/ip used before, costs about 30 ms to
 * load (it parses its own constants) and tens of microseconds an address; seeded tests in
 * core/ip hold these to its answers.
 */

/** The four octets of a dotted-quad IPv4 address (0-255, no leading zeros), or undefined. */
export function ipv4Octets(text: string): [number, number, number, number] | undefined {
  const octets: number[] = [];
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final '.' closes the last part
    if (c === 46) {
      if (digits === 0 || octets.length > 3) return undefined;
      octets.push(value);
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // a leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return undefined;
    } else return undefined;
  }
  return octets.length === 4 ? (octets as [number, number, number, number]) : undefined;
}

/** The eight groups of an IPv6 address, or undefined when `text` is not one (no zone, no brackets). */
export function ipv6Groups(text: string): number[] | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const gap = text.indexOf('::');
  if (gap >= 0 && text.indexOf('::', gap + 1) >= 0) return undefined;
  const head = gap < 0 ? text : text.slice(0, gap);
  const tail = gap < 0 ? '' : text.slice(gap + 2);
  const front = head === '' ? [] : fields(head, gap < 0);
  const back = tail === '' ? [] : fields(tail, true);
  if (!front || !back) return undefined;
  const count = front.length + back.length;
  if (gap < 0 ? count !== 8 : count > 7) return undefined;
  return [...front, ...new Array<number>(8 - count).fill(0), ...back];
}

/** 16-bit groups of `part` (colon-separated hex); the last may be a dotted IPv4 address when `last`. */
function fields(part: string, last: boolean): number[] | undefined {
  const out: number[] = [];
  const texts = part.split(':');
  for (let i = 0; i < texts.length; i++) {
    const f = texts[i] as string;
    if (last && i === texts.length - 1 && f.includes('.')) {
      // An IPv4 address as the last 32 bits, with the same rules as one standing alone.
      const b = ipv4Octets(f);
      if (!b) return undefined;
      out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(f)) return undefined;
      out.push(Number.parseInt(f, 16));
    }
  }
  return out;
}

/** Canonical (RFC 5952) text of eight groups: lower case, longest zero run (2 groups or more, first on a tie) as `::`. */
export function formatIPv6Groups(g: readonly number[]): string {
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

/** The eight groups as one 128-bit number, and back. */
export function groupsToBigInt(g: readonly number[]): bigint {
  let v = 0n;
  for (const x of g) v = (v << 16n) | BigInt(x);
  return v;
}

export function bigIntToGroups(v: bigint): number[] {
  const g = new Array<number>(8);
  for (let i = 7; i >= 0; i--) {
    g[i] = Number(v & 0xffffn);
    v >>= 16n;
  }
  return g;
}
