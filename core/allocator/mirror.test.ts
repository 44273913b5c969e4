/**
 * restoreClaimed: the claims mirrored into an Allocator, as the controller's ledger and the
 * plugin both do. Every claimed address stays taken, whatever the holder's request says.
 */
import type { Pool } from '../config/types.js';
import { parseIP, parseRange, type IP } from '../ip/index.js';
import { Allocator } from './allocator.js';
import { restoreClaimed, type Claimed } from './mirror.js';
import { newRequest, type Request } from './request.js';

const ip = (text: string): IP => {
  const p = parseIP(text);
  if (!p.ok) throw new Error(p.error);
  return p.value;
};

const pool = (name: string, range: string): Pool => {
  const r = parseRange(range);
  if (!r.ok) throw new Error(r.error);
  return { name, origin: { kind: 'IPAddressPool', namespace: 'metallb-system', name }, labels: {}, ranges: [r.value], autoAssign: true, avoidBuggyIPs: false };
};

const POOLS = [pool('a', '192.0.2.0/28'), pool('b', '198.51.100.0/28')];
const req = (name: string, extra: Partial<Request> = {}): Request => newRequest({ namespace: 'ns', name, ...extra });
/** The guess a ledger makes: the addresses' families, nothing else asked. */
const guess = (ips: readonly IP[]) => (base: Request) => newRequest({ ...base, requestedIPs: [], families: [], familyPolicy: ips.length > 1 ? 'RequireDualStack' : 'SingleStack' });
const claimed = (request: Request, ips: IP[], pool?: string): Claimed => ({ held: { request, ips, ...(pool !== undefined && { pool }) }, guess: guess(ips) });

describe('restoreClaimed', () => {
  it('restores a holder whose request fits its addresses as it is', () => {
    const allocator = new Allocator(POOLS);
    expect(restoreClaimed(allocator, [claimed(req('web'), [ip('192.0.2.1')], 'a')])).toEqual([]);
    expect(allocator.holders(ip('192.0.2.1'))).toEqual(['ns/web']);
  });

  it('restores one whose request no longer fits (it asks for another address now) under the guess', () => {
    const allocator = new Allocator(POOLS);
    expect(restoreClaimed(allocator, [claimed(req('web', { requestedIPs: [ip('192.0.2.9')] }), [ip('192.0.2.1')], 'a')])).toEqual([]);
    expect(allocator.holders(ip('192.0.2.1'))).toEqual(['ns/web']);
  });

  it('holds each address of one caught between two states under a placeholder, and says so', () => {
    const allocator = new Allocator(POOLS);
    // Two IPv4 addresses for one holder: no request of one Service can hold them both.
    const out = restoreClaimed(allocator, [claimed(req('web'), [ip('192.0.2.1'), ip('192.0.2.2')], 'a')]);
    expect(out.map((u) => [u.refused.service, u.placeholders])).toEqual([['ns/web', ['ns/web*~m0', 'ns/web*~m1']]]);
    expect(allocator.holders(ip('192.0.2.1'))).toEqual(['ns/web*~m0']);
    expect(allocator.holders(ip('192.0.2.2'))).toEqual(['ns/web*~m1']);
    // Taken: nobody else is given them.
    const other = allocator.assign(req('other', { requestedIPs: [ip('192.0.2.2')] }));
    expect(other.ok).toBe(false);
  });

  it('leaves the others alone', () => {
    const allocator = new Allocator(POOLS);
    const out = restoreClaimed(allocator, [
      claimed(req('one'), [ip('192.0.2.1'), ip('192.0.2.2')], 'a'),
      claimed(req('two'), [ip('198.51.100.3')], 'b'),
      claimed(req('three', { requestedIPs: [ip('198.51.100.9')] }), [ip('198.51.100.4')], 'b'),
    ]);
    expect(out.map((u) => u.refused.service)).toEqual(['ns/one']);
    expect(allocator.holders(ip('198.51.100.3'))).toEqual(['ns/two']);
    expect(allocator.holders(ip('198.51.100.4'))).toEqual(['ns/three']);
  });
});
