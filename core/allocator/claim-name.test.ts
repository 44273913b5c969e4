import { parseIP, type IP } from '../ip/index.js';
import { claimName, ipOfClaimName } from './claim-name.js';

function ip(text: string): IP {
  const p = parseIP(text);
  if (!p.ok) throw new Error(p.error);
  return p.value;
}

describe('claimName', () => {
  // The examples of the IPClaim CRD's header comment.
  it.each([
    ['203.0.113.5', '203.0.113.5'],
    ['2001:db8::5', '2001-db8--5'],
    ['2001:0DB8:0:0:0:0:0:5', '2001-db8--5'],
    ['2001:db8:0:0:1::', '2001-db8-0-0-1--0'],
    ['::1', '0--1'],
    ['::', '0--0'],
    ['::ffff:192.0.2.1', '0--ffff-c000-201'],
  ])('%s -> %s, and back', (text, name) => {
    expect(claimName(ip(text))).toBe(name);
    expect(ipOfClaimName(name)).toEqual(ip(text));
  });

  it('rejects names that are no IP', () => {
    expect(ipOfClaimName('web')).toBeUndefined();
    expect(ipOfClaimName('1-2')).toBeUndefined();
  });
});
