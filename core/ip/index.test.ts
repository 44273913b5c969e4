import { collapseIPv6Number, IPv4, IPv6, Validator } from 'ip-num';
import { seededRandom } from '../seeded.js';
import { coveringPrefix, formatIP, isBuggyIP, networkOf, parseCIDR, parseIP, parseRange, rangeSize, rangesOverlap } from './index.js';

describe('parseIP', () => {
  it.each([
    ['192.0.2.1', 'IPv4', '192.0.2.1'],
    ['2001:db8::1', 'IPv6', '2001:db8::1'],
    ['2001:0db8:0:0:0:0:0:0001', 'IPv6', '2001:db8::1'],
    ['::', 'IPv6', '::'],
  ])('%s is %s, formatted %s', (text, family, canonical) => {
    const ip = parseIP(text);
    if (!ip.ok) throw new Error(ip.error);
    expect(ip.value.family).toBe(family);
    expect(formatIP(ip.value)).toBe(canonical);
  });

  it.each(['192.0.2', '192.0.2.256', '192.0.2.01', ' 192.0.2.1', 'fe80::1%eth0', '2001:db8::g', '', 'x', 42, null])('rejects %p', (text) => {
    const ip = parseIP(text);
    expect(ip.ok).toBe(false);
    if (!ip.ok) expect(ip.error).toMatch(/is not an IP address/);
  });
});

describe('the hand-written IPv4 parser and formatter', () => {
  // They replaced ip-num's for speed; ip-num stays the reference for what a dotted quad is.
  it('accept, refuse and read 20,000 seeded dotted strings as ip-num does', () => {
    const random = seededRandom(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const octet = () => pick([String(Math.floor(random() * 256)), String(Math.floor(random() * 1000)), '0', '00', '01', '255', '256', '', '1a', '+1', ' 1']);
    for (let i = 0; i < 20_000; i++) {
      const parts = Array.from({ length: pick([3, 4, 4, 4, 4, 5]) }, octet);
      const text = parts.join(pick(['.', '.', '.', ':', '..']));
      const ours = parseIP(text);
      const theirs = /^\d{1,3}(\.\d{1,3}){3}$/.test(text) && Validator.isValidIPv4String(text)[0];
      expect([text, ours.ok && ours.value.family === 'IPv4']).toEqual([text, theirs]);
      if (ours.ok && theirs) expect([text, ours.value.value]).toEqual([text, IPv4.fromString(text).getValue()]);
    }
  });

  it('formats every corner as ip-num does', () => {
    const random = seededRandom(8);
    const values = [0n, 1n, 255n, 256n, 0xffffffn, 0x1000000n, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn];
    for (let i = 0; i < 10_000; i++) values.push(BigInt(Math.floor(random() * 2 ** 32)));
    for (const value of values) expect(formatIP({ family: 'IPv4', value })).toBe(IPv4.fromNumber(value).toString());
  });
});

describe('the hand-written IPv6 parser and formatter', () => {
  it('accept, refuse, read and write 100,000 seeded strings as ip-num does', () => {
    const random = seededRandom(9);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const group = () => pick(['0', '00', '0000', '1', 'db8', '2001', 'ffff', 'FFFF', 'fffff', 'g', '', '12345', 'a', '0a0b', '1.2.3.4', '01.2.3.4', '256.1.1.1']);
    let valid = 0;
    for (let i = 0; i < 100_000; i++) {
      let text = Array.from({ length: 1 + Math.floor(random() * 9) }, group).join(':');
      if (random() < 0.5) {
        const k = Math.floor(random() * (text.length + 1));
        text = text.slice(0, k) + pick(['::', ':', ':::']) + text.slice(k);
      }
      if (!text.includes(':')) continue;
      const ours = parseIP(text);
      const theirs = Validator.isValidIPv6String(text)[0];
      expect([text, ours.ok]).toEqual([text, theirs]);
      if (!ours.ok) continue;
      valid++;
      const value = IPv6.fromString(text).getValue();
      expect([text, ours.value.value]).toEqual([text, value]);
      expect([text, formatIP(ours.value)]).toEqual([text, collapseIPv6Number(IPv6.fromBigInt(value).toString())]);
    }
    // The generator must reach both sides of the line (about 2% of its strings are addresses).
    expect(valid).toBeGreaterThan(1_000);
  });
});

describe('parseCIDR and parseRange', () => {
  it.each([
    ['192.0.2.0/24', 256n, 24],
    ['10.0.0.0/8', 16777216n, 8],
    ['2001:db8::/64', 1n << 64n, 64],
    ['192.0.2.7/32', 1n, 32],
  ])('%s has %d addresses and prefix %d', (text, size, prefix) => {
    const r = parseCIDR(text);
    if (!r.ok) throw new Error(r.error);
    expect(rangeSize(r.value)).toBe(size);
    expect(coveringPrefix(r.value)).toBe(prefix);
  });

  it.each([
    ['192.0.2.0/33', /longer than 32/],
    ['192.0.2.1/24', /host bits are set \(the network is 192.0.2.0\/24\)/],
    ['192.0.2.0/', /is not a CIDR/],
    ['nope/24', /is not a CIDR/],
  ])('rejects CIDR %s', (text, message) => {
    const r = parseCIDR(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it('parses ranges, with or without spaces', () => {
    const r = parseRange('192.0.2.10 - 192.0.2.20');
    if (!r.ok) throw new Error(r.error);
    expect(rangeSize(r.value)).toBe(11n);
    expect(coveringPrefix(r.value)).toBe(27);
  });

  it.each([
    ['192.0.2.20-192.0.2.10', /start is after its end/],
    ['192.0.2.1-2001:db8::1', /mixes IPv4 and IPv6/],
    ['192.0.2.1', /not a CIDR or an address range/],
    ['192.0.2.1-x', /range end/],
  ])('rejects range %s', (text, message) => {
    const r = parseRange(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it('detects overlap within one family only', () => {
    const a = parseRange('192.0.2.0/25');
    const b = parseRange('192.0.2.100-192.0.2.200');
    const c = parseRange('192.0.2.128/25');
    if (!a.ok || !b.ok || !c.ok) throw new Error('fixture');
    expect(rangesOverlap(a.value, b.value)).toBe(true);
    expect(rangesOverlap(a.value, c.value)).toBe(false);
  });
});

describe('helpers', () => {
  it('finds buggy IPv4 addresses only', () => {
    const p = (t: string) => {
      const r = parseIP(t);
      if (!r.ok) throw new Error(r.error);
      return r.value;
    };
    expect(isBuggyIP(p('192.0.2.0'))).toBe(true);
    expect(isBuggyIP(p('192.0.2.255'))).toBe(true);
    expect(isBuggyIP(p('192.0.2.1'))).toBe(false);
    expect(isBuggyIP(p('2001:db8::ff'))).toBe(false);
    expect(networkOf(p('2001:db8::1:5'), 112).text).toBe('2001:db8::1:0/112');
  });
});
