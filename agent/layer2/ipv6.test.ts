/**
 * The speaker's IPv6 text <-> bytes (core/ip's text.ts groups, as bytes), checked equal to
 * core/ip's bigint addresses on seeded random addresses written in every form (core/ip's own
 * tests hold the text rules to ip-num's), and the ICMPv6 checksum against RFC 1071's example.
 */
import { formatIP, parseIP } from '../../core/ip/index.js';
import { seededRandom } from '../../core/seeded.js';
import { formatIPv6, icmpv6Checksum, parseIPv6 } from './ipv6.js';

const toBigInt = (b: Buffer): bigint => (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);

describe('IPv6 text', () => {
  it.each([
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['ff02::1:ff00:1', 'ff02::1:ff00:1'],
    ['::ffff:192.0.2.1', formatIP({ family: 'IPv6', value: 0xffffc0000201n })],
  ])('%s -> %s', (text, canonical) => {
    expect(formatIPv6(parseIPv6(text)!)).toBe(canonical);
  });

  it.each([
    '',
    ':',
    ':::',
    '1:::2',
    '1::2::3',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7::8',
    '12345::',
    'g::',
    '::1.2.3',
    '::256.1.1.1',
    '::1.2.3.4:5',
    '192.0.2.1',
    'fe80::1%eth0',
  ])('rejects %j', (text) => {
    expect(parseIPv6(text)).toBeUndefined();
    const core = parseIP(text);
    expect(core.ok && core.value.family === 'IPv6').toBe(false);
  });

  it('agrees with core/ip on 2,000 random addresses in random forms', () => {
    const random = seededRandom(6);
    for (let n = 0; n < 2_000; n++) {
      // Groups with zero runs, so that compression has work to do.
      const g = Array.from({ length: 8 }, () => (random() < 0.4 ? 0 : Math.floor(random() * 0x10000)));
      const full = g.map((x) => x.toString(16).padStart(random() < 0.5 ? 4 : 1, '0')).join(':');
      const text = random() < 0.5 ? full.toUpperCase() : full;
      const ours = parseIPv6(text);
      const theirs = parseIP(text);
      expect(theirs.ok).toBe(true);
      if (!theirs.ok || !ours) throw new Error(`${text} did not parse`);
      expect(toBigInt(ours)).toBe(theirs.value.value);
      const canonical = formatIPv6(ours);
      expect(canonical).toBe(formatIP(theirs.value));
      expect(toBigInt(parseIPv6(canonical)!)).toBe(theirs.value.value);
    }
  });
});

describe('ICMPv6 checksum', () => {
  it("sums as RFC 1071 §3's example does (0xddf2, complemented)", () => {
    // RFC 1071's bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2; our sum adds the pseudo-header,
    // so take it back out: with zero addresses the pseudo-header is the length (8) and 58.
    const zero = Buffer.alloc(16);
    const message = Buffer.from('0001f203f4f5f6f7', 'hex');
    expect(icmpv6Checksum(zero, zero, message)).toBe(~(0xddf2 + 8 + 58) & 0xffff);
  });

  it('handles an odd length by padding with a zero byte', () => {
    const zero = Buffer.alloc(16);
    expect(icmpv6Checksum(zero, zero, Buffer.from('01', 'hex'))).toBe(~(0x0100 + 1 + 58) & 0xffff);
  });
});
