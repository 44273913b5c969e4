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
