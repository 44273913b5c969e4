import { createCipheriv, createHmac } from 'node:crypto';
import { decodePacket, encodePacket, MAX_DATAGRAM, packetLength, ReplayGuard, type Message, type Packet, type RejectReason, type Update } from './codec.js';
import { seeded } from './testing.js';

const key = Buffer.alloc(32, 0x11);
const otherKey = Buffer.alloc(32, 0x22);
/** Hex with spaces and | for readability -> bytes, then the MAC, computed here (not by the writer under test). */
const body = (hex: string) => Buffer.from(hex.replace(/[\s|]/g, ''), 'hex');
const signed = (hex: string, k = key) => {
  const b = body(hex);
  return Buffer.concat([b, createHmac('sha256', k).update(b).digest()]);
};

// Written by hand from the layout in codec.ts.
const fixtures: { name: string; packet: Packet; hex: string }[] = [
  {
    name: 'ping',
    packet: { from: 'a', to: 'b', timestamp: 0x1000, nonce: 0x01020304, message: { type: 'ping', seq: 0x0a0b0c0d, updates: [] } },
    hex: '6d6c 01 01 000000001000 01020304 0161 0162 | 0a0b0c0d | 00',
  },
  {
    name: 'ack carrying an alive update',
    packet: {
      from: 'b',
      to: 'a',
      timestamp: 0x1001,
      nonce: 5,
      message: { type: 'ack', seq: 7, updates: [{ type: 'alive', name: 'c', incarnation: 3, address: '192.0.2.3', port: 7946 }] },
    },
    hex: '6d6c 01 02 000000001001 00000005 0162 0161 | 00000007 | 01 01 0163 000000000003 09 3139322e302e322e33 1f0a',
  },
  {
    name: 'nack carrying a suspicion',
    packet: {
      from: 'b',
      to: 'a',
      timestamp: 0x1001,
      nonce: 6,
      message: { type: 'nack', seq: 8, updates: [{ type: 'suspect', name: 'c', incarnation: 0x010203040506, from: 'b' }] },
    },
    hex: '6d6c 01 03 000000001001 00000006 0162 0161 | 00000008 | 01 02 0163 010203040506 0162',
  },
  {
    name: 'ping-req for an IPv6 member',
    packet: { from: 'a', to: 'b', timestamp: 0x1002, nonce: 6, message: { type: 'ping-req', seq: 1, target: 'c', address: '2001:db8::3', port: 7946, updates: [] } },
    hex: '6d6c 01 04 000000001002 00000006 0161 0162 | 00000001 0163 0b 323030313a6462383a3a33 1f0a | 00',
  },
  {
    name: 'gossip of a graceful leave',
    packet: { from: 'a', to: 'b', timestamp: 0x1004, nonce: 8, message: { type: 'gossip', updates: [{ type: 'dead', name: 'a', incarnation: 2, from: 'a' }] } },
    hex: '6d6c 01 05 000000001004 00000008 0161 0162 | | 01 03 0161 000000000002 0161',
  },
  {
    name: 'sync asking for a reply',
    packet: {
      from: 'node-1',
      to: 'b',
      timestamp: 0x1003,
      nonce: 0xffffffff,
      message: { type: 'sync', reply: true, members: [{ name: 'a', address: '192.0.2.1', port: 7946, incarnation: 1, state: 'left' }], updates: [] },
    },
    hex: '6d6c 01 06 000000001003 ffffffff 066e6f64652d31 0162 | 01 01 | 0161 09 3139322e302e322e31 1f0a 000000000001 03 | 00',
  },
];

describe('fixtures, both ways', () => {
  test.each(fixtures)('$name', ({ packet, hex }) => {
    const bytes = signed(hex);
    expect(encodePacket(packet, key).toString('hex')).toBe(bytes.toString('hex'));
    expect(decodePacket(bytes, [key])).toEqual({ ok: true, packet });
    expect(packetLength(packet.from, packet.to, packet.message)).toBe(bytes.length);
  });

  test('a key being rolled out: signed with either key of the set, accepted', () => {
    const bytes = signed(fixtures[0]!.hex, otherKey);
    expect(decodePacket(bytes, [key])).toMatchObject({ ok: false, rejection: { reason: 'bad-mac' } });
    expect(decodePacket(bytes, [key, otherKey])).toMatchObject({ ok: true });
  });
});

describe('refusals, each a typed reason, none thrown', () => {
  const ping = fixtures[0]!.hex;
  const cases: [string, RejectReason, Buffer][] = [
    ['empty', 'too-short', Buffer.alloc(0)],
    ['ten bytes', 'too-short', body('6d6c0101000000001000')],
    ['a jumbo datagram', 'too-long', Buffer.alloc(MAX_DATAGRAM + 1, 0x6d)],
    ['another magic', 'bad-magic', signed(ping.replace('6d6c', '4d4c'))],
    ['version 2', 'bad-version', signed(ping.replace('6d6c 01', '6d6c 02'))],
    ['another key', 'bad-mac', signed(ping, otherKey)],
    ['one bit flipped after signing', 'bad-mac', (() => ((b) => ((b[20] = b[20]! ^ 1), b))(signed(ping)))()],
    ['the MAC cut short', 'bad-mac', signed(ping).subarray(0, -1)],
    ['type 9', 'unknown-type', signed(ping.replace('6d6c 01 01', '6d6c 01 09'))],
    ['type 0', 'unknown-type', signed(ping.replace('6d6c 01 01', '6d6c 01 00'))],
    ['seq cut short', 'truncated', signed('6d6c 01 01 000000001000 01020304 0161 0162 0a0b')],
    ['a name longer than the packet', 'truncated', signed('6d6c 01 01 000000001000 01020304 0161 40 62 0a0b0c0d 00')],
    ['updates promised, none there', 'truncated', signed('6d6c 01 01 000000001000 01020304 0161 0162 0a0b0c0d 03')],
    ['a byte after the updates', 'trailing-bytes', signed(ping + 'ff')],
    ['a name with a space', 'bad-name', signed('6d6c 01 01 000000001000 01020304 03612062 0162 0a0b0c0d 00')],
    ['an empty name', 'bad-name', signed('6d6c 01 01 000000001000 01020304 00 0162 0a0b0c0d 00')],
    ['a name with a NUL', 'bad-name', signed('6d6c 01 01 000000001000 01020304 026100 0162 0a0b0c0d 00')],
    ['an address that is not an IP', 'bad-address', signed('6d6c 01 02 000000001001 00000005 0162 0161 00000007 01 01 0163 000000000003 09 3939392e302e322e33 1f0a')],
    ['port 0', 'bad-port', signed('6d6c 01 02 000000001001 00000005 0162 0161 00000007 01 01 0163 000000000003 09 3139322e302e322e33 0000')],
    ['update kind 9', 'bad-code', signed('6d6c 01 05 000000001004 00000008 0161 0162 01 09 0161 000000000002 0161')],
    ['sync state 7', 'bad-code', signed('6d6c 01 06 000000001003 00000007 0161 0162 01 01 0161 09 3139322e302e322e31 1f0a 000000000001 07 00')],
  ];
  test.each(cases)('%s -> %s', (_name, reason, bytes) => {
    const result = decodePacket(bytes, [key]);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.rejection.reason).toBe(reason);
      expect(result.rejection.detail).not.toBe('');
    }
  });

  test('the encoder refuses what it cannot carry (a bug, not input)', () => {
    const p = (message: Message): Packet => ({ from: 'a', to: 'b', timestamp: 1, nonce: 1, message });
    expect(() => encodePacket(p({ type: 'ping-req', seq: 1, target: 'c', address: 'not-an-ip', port: 1, updates: [] }), key)).toThrow(RangeError);
    expect(() => encodePacket(p({ type: 'ping', seq: 1, updates: [{ type: 'alive', name: 'a b', incarnation: 1, address: '192.0.2.1', port: 1 }] }), key)).toThrow(RangeError);
    expect(() => encodePacket(p({ type: 'ping', seq: 1, updates: [{ type: 'dead', name: 'a', incarnation: 2 ** 48, from: 'a' }] }), key)).toThrow(RangeError);
    const many: Update[] = Array.from({ length: 100 }, (_, i) => ({ type: 'alive', name: `node-${i}`, incarnation: 1, address: '192.0.2.1', port: 7946 }));
    expect(() => encodePacket(p({ type: 'gossip', updates: many }), key)).toThrow(/exceeds 1400/);
  });
});

/** A random valid message (names, addresses and sizes drawn from `r`), small enough for one datagram. */
function randomMessage(r: () => number): Message {
  const int = (n: number) => Math.floor(r() * n);
  const name = () => `n${int(1e6)}${r() < 0.2 ? '.example' : ''}`;
  const address = () => (r() < 0.5 ? `192.0.2.${int(256)}` : `2001:db8::${int(65536).toString(16)}`);
  const port = () => 1 + int(65535);
  const incarnation = () => (r() < 0.5 ? int(1000) : Math.floor(r() * 2 ** 48));
  const updates: Update[] = [];
  for (let i = int(6); i > 0; i--) {
    const kind = int(3);
    if (kind === 0) updates.push({ type: 'alive', name: name(), incarnation: incarnation(), address: address(), port: port() });
    else updates.push({ type: kind === 1 ? 'suspect' : 'dead', name: name(), incarnation: incarnation(), from: name() });
  }
  switch (int(6)) {
    case 0:
      return { type: 'ping', seq: int(2 ** 32), updates };
    case 1:
      return { type: 'ack', seq: int(2 ** 32), updates };
    case 2:
      return { type: 'nack', seq: int(2 ** 32), updates };
    case 3:
      return { type: 'ping-req', seq: int(2 ** 32), target: name(), address: address(), port: port(), updates };
    case 4:
      return { type: 'gossip', updates };
    default: {
      const states = ['alive', 'suspect', 'dead', 'left'] as const;
      const members = Array.from({ length: int(8) }, () => ({ name: name(), address: address(), port: port(), incarnation: incarnation(), state: states[int(4)]! }));
      return { type: 'sync', reply: r() < 0.5, members, updates };
    }
  }
}

describe('seeded random input', () => {
  test('round trip of 2,000 random messages; packetLength is exact', () => {
    const r = seeded(42);
    for (let i = 0; i < 2000; i++) {
      const packet: Packet = { from: `from-${i}`, to: 'to', timestamp: Math.floor(r() * 2 ** 48), nonce: Math.floor(r() * 2 ** 32), message: randomMessage(r) };
      const bytes = encodePacket(packet, key);
      expect(bytes.length).toBe(packetLength(packet.from, packet.to, packet.message));
      expect(decodePacket(bytes, [key])).toEqual({ ok: true, packet });
    }
  });

  test('20,000 random byte strings: never a throw, never accepted', () => {
    const r = seeded(7);
    // A seeded keystream for the bytes (Math calls cost a microsecond each in jest's sandbox).
    const stream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16));
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = stream.update(Buffer.alloc(Math.floor(r() * 1500)));
      // Half start with our magic and version, so that they reach the MAC check.
      if (i % 2 === 0 && bytes.length >= 3) bytes.set([0x6d, 0x6c, 0x01]);
      if (decodePacket(bytes, [key]).ok) accepted++;
    }
    expect(accepted).toBe(0);
  });

  test('20,000 mutated packets, re-signed so that the parser sees them: never a throw; what decodes re-encodes to the same bytes', () => {
    const r = seeded(9);
    const reasons = new Map<string, number>();
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const valid = encodePacket({ from: 'a', to: 'b', timestamp: 1, nonce: i, message: randomMessage(r) }, key);
      let b = Buffer.from(valid.subarray(0, valid.length - 32));
      const how = Math.floor(r() * 3);
      if (how === 0) for (let j = 1 + Math.floor(r() * 4); j > 0; j--) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      else if (how === 1) b = b.subarray(0, Math.floor(r() * b.length));
      else b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256)))]);
      const bytes = Buffer.concat([b, createHmac('sha256', key).update(b).digest()]);
      const result = decodePacket(bytes, [key]);
      if (result.ok) {
        accepted++;
        if (!encodePacket(result.packet, key).equals(bytes)) throw new Error(`not canonical: ${bytes.toString('hex')} -> ${JSON.stringify(result.packet)}`);
      } else {
        reasons.set(result.rejection.reason, (reasons.get(result.rejection.reason) ?? 0) + 1);
      }
    }
    process.stderr.write(`mutated packets: ${accepted} still valid, refused: ${JSON.stringify(Object.fromEntries(reasons))}\n`);
    expect(reasons.size).toBeGreaterThan(5);
  });
});

describe('ReplayGuard', () => {
  test('a packet is accepted once; the same sender, timestamp and nonce again is a replay', () => {
    const g = new ReplayGuard(30_000);
    const now = 1_000_000;
    expect(g.check({ from: 'a', timestamp: now, nonce: 1 }, now)).toBeUndefined();
    expect(g.check({ from: 'a', timestamp: now, nonce: 1 }, now + 10)).toMatchObject({ reason: 'replay' });
    expect(g.check({ from: 'a', timestamp: now, nonce: 2 }, now)).toBeUndefined();
    expect(g.check({ from: 'b', timestamp: now, nonce: 1 }, now)).toBeUndefined();
  });

  test('outside the window, either way, is stale (and says by how much)', () => {
    const g = new ReplayGuard(30_000);
    expect(g.check({ from: 'a', timestamp: 1_000_000 - 30_001, nonce: 1 }, 1_000_000)).toMatchObject({
      reason: 'stale',
      detail: expect.stringContaining('behind our clock by 30001 ms'),
    });
    expect(g.check({ from: 'a', timestamp: 1_000_000 + 30_001, nonce: 1 }, 1_000_000)).toMatchObject({ reason: 'stale', detail: expect.stringContaining('ahead of') });
    expect(g.check({ from: 'a', timestamp: 1_000_000 + 30_000, nonce: 1 }, 1_000_000)).toBeUndefined();
  });

  test('memory stays bounded: old entries are pruned, and the cap holds under a flood', () => {
    const g = new ReplayGuard(1000, 500);
    for (let t = 0; t < 10_000; t++) g.check({ from: 'a', timestamp: t, nonce: t }, t);
    expect(g.size).toBeLessThanOrEqual(1300);
    const capped = new ReplayGuard(1_000_000, 500);
    for (let i = 0; i < 10_000; i++) capped.check({ from: 'a', timestamp: 5, nonce: i }, 5);
    expect(capped.size).toBe(500);
  });
});
