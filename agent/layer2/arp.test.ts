/**
 * The ARP codec against frames captured with `tcpdump -XX` between two network namespaces
 * (node 02:00:00:00:00:01 at 192.0.2.1, client 02:00:00:00:00:02 at 192.0.2.100): Habets'
 * `arping` asking, the Linux kernel answering, and `arping -U` / `arping -U -P` announcing.
 */
import { arpReply, decodeArp, encodeArp, gratuitousArp, ipv4Bytes, type ArpPacket } from './arp.js';
import { MIN_FRAME_LENGTH } from './ethernet.js';
import { seededRandom } from '../../core/seeded.js';

const NODE_MAC = '02:00:00:00:00:01';
const CLIENT_MAC = '02:00:00:00:00:02';

/** Hex as tcpdump prints it (spaces and line breaks are for reading). */
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** We pad every frame to 60 bytes, as a NIC would; arping pads to 58, and veth left the kernel's reply unpadded. */
const padded = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(Math.max(0, MIN_FRAME_LENGTH - b.length))]);

const ARPING_REQUEST: ArpPacket = {
  type: 'request',
  ethernet: { destination: 'ff:ff:ff:ff:ff:ff', source: CLIENT_MAC },
  senderMac: CLIENT_MAC,
  senderIp: '192.0.2.100',
  targetMac: '00:00:00:00:00:00',
  targetIp: '192.0.2.1',
};

const FIXTURES: { name: string; packet: ArpPacket; frame: Buffer }[] = [
  {
    name: 'arping: who has 192.0.2.1 tell 192.0.2.100 (arping pads to 58 bytes)',
    packet: ARPING_REQUEST,
    frame: hex(`ffff ffff ffff 0200 0000 0002 0806 0001
                0800 0604 0001 0200 0000 0002 c000 0264
                0000 0000 0000 c000 0201 0000 0000 0000
                0000 0000 0000 0000 0000`),
  },
  {
    name: 'the kernel: 192.0.2.1 is at 02:00:00:00:00:01 (42 bytes over veth)',
    packet: {
      type: 'reply',
      ethernet: { destination: CLIENT_MAC, source: NODE_MAC },
      senderMac: NODE_MAC,
      senderIp: '192.0.2.1',
      targetMac: CLIENT_MAC,
      targetIp: '192.0.2.100',
    },
    frame: hex(`0200 0000 0002 0200 0000 0001 0806 0001
                0800 0604 0002 0200 0000 0001 c000 0201
                0200 0000 0002 c000 0264`),
  },
  {
    name: 'arping -U: gratuitous request',
    packet: {
      type: 'request',
      ethernet: { destination: 'ff:ff:ff:ff:ff:ff', source: NODE_MAC },
      senderMac: NODE_MAC,
      senderIp: '192.0.2.1',
      targetMac: 'ff:ff:ff:ff:ff:ff',
      targetIp: '192.0.2.1',
    },
    frame: hex(`ffff ffff ffff 0200 0000 0001 0806 0001
                0800 0604 0001 0200 0000 0001 c000 0201
                ffff ffff ffff c000 0201 0000 0000 0000
                0000 0000 0000 0000 0000`),
  },
  {
    name: 'arping -U -P: gratuitous reply',
    packet: {
      type: 'reply',
      ethernet: { destination: 'ff:ff:ff:ff:ff:ff', source: NODE_MAC },
      senderMac: NODE_MAC,
      senderIp: '192.0.2.1',
      targetMac: 'ff:ff:ff:ff:ff:ff',
      targetIp: '192.0.2.1',
    },
    frame: hex(`ffff ffff ffff 0200 0000 0001 0806 0001
                0800 0604 0002 0200 0000 0001 c000 0201
                ffff ffff ffff c000 0201 0000 0000 0000
                0000 0000 0000 0000 0000`),
  },
];

describe('ARP fixtures', () => {
  it.each(FIXTURES)('$name: decodes', ({ packet, frame }) => {
    expect(decodeArp(frame)).toEqual({ ok: true, packet });
  });

  it.each(FIXTURES)('$name: encodes', ({ packet, frame }) => {
    expect(encodeArp(packet).toString('hex')).toBe(padded(frame).toString('hex'));
  });

  it.each(FIXTURES)('$name: round-trips', ({ packet }) => {
    expect(decodeArp(encodeArp(packet))).toEqual({ ok: true, packet });
  });
});

describe('building packets', () => {
  it("answers arping's request exactly as the Linux kernel did", () => {
    expect(encodeArp(arpReply(ARPING_REQUEST, NODE_MAC))).toEqual(padded(FIXTURES[1]!.frame));
  });

  it('answers an RFC 5227 probe (sender 0.0.0.0) to the prober, defending the address', () => {
    const probe: ArpPacket = { ...ARPING_REQUEST, senderIp: '0.0.0.0' };
    expect(arpReply(probe, NODE_MAC)).toEqual({
      type: 'reply',
      ethernet: { destination: CLIENT_MAC, source: NODE_MAC },
      senderMac: NODE_MAC,
      senderIp: '192.0.2.1',
      targetMac: CLIENT_MAC,
      targetIp: '0.0.0.0',
    });
  });

  it('builds both gratuitous forms as arping -U and -U -P send them', () => {
    expect(encodeArp(gratuitousArp('request', NODE_MAC, '192.0.2.1'))).toEqual(padded(FIXTURES[2]!.frame));
    expect(encodeArp(gratuitousArp('reply', NODE_MAC, '192.0.2.1'))).toEqual(padded(FIXTURES[3]!.frame));
  });

  it('refuses to encode addresses that are not addresses', () => {
    expect(() => encodeArp({ ...ARPING_REQUEST, senderIp: '192.0.2.256' })).toThrow(RangeError);
    expect(() => encodeArp({ ...ARPING_REQUEST, senderMac: '02:00:00:00:00' })).toThrow(RangeError);
    expect(() => ipv4Bytes('2001:db8::1')).toThrow(RangeError);
  });
});

describe('frames that are not ARP we can read', () => {
  const request = FIXTURES[0]!.frame;
  const edit = (at: number, bytes: number[]): Buffer => {
    const b = Buffer.from(request);
    Buffer.from(bytes).copy(b, at);
    return b;
  };
  it.each([
    { name: 'empty', frame: Buffer.alloc(0), reason: 'truncated' },
    { name: 'half an Ethernet header', frame: request.subarray(0, 7), reason: 'truncated' },
    { name: 'one byte short of a packet', frame: request.subarray(0, 41), reason: 'truncated' },
    { name: 'IPv4 EtherType', frame: edit(12, [0x08, 0x00]), reason: 'not-arp' },
    { name: 'IPv6 EtherType', frame: edit(12, [0x86, 0xdd]), reason: 'not-arp' },
    { name: 'IEEE 802 hardware type (6)', frame: edit(14, [0x00, 0x06]), reason: 'not-ethernet-ipv4' },
    { name: 'protocol IPv6', frame: edit(16, [0x86, 0xdd]), reason: 'not-ethernet-ipv4' },
    { name: 'hardware length 8', frame: edit(18, [8]), reason: 'not-ethernet-ipv4' },
    { name: 'protocol length 16', frame: edit(19, [16]), reason: 'not-ethernet-ipv4' },
    { name: 'RARP request (3)', frame: edit(20, [0x00, 0x03]), reason: 'unknown-operation' },
    { name: 'InARP reply (9)', frame: edit(20, [0x00, 0x09]), reason: 'unknown-operation' },
  ])('$name -> $reason', ({ frame, reason }) => {
    expect(decodeArp(frame)).toEqual({ ok: false, reason });
  });
});

const rng = seededRandom;

describe('seeded random input', () => {
  it('never throws, and whatever decodes re-encodes to a frame that decodes the same', () => {
    const random = rng(0x0806);
    const valid = FIXTURES.map((f) => f.frame);
    let decoded = 0;
    for (let i = 0; i < 10_000; i++) {
      let frame: Buffer;
      if (i % 2 === 0) {
        // Noise of any length, half of it with an ARP EtherType so that the checks after it run.
        frame = Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256)));
        if (frame.length >= 14 && random() < 0.5) frame.writeUInt16BE(0x0806, 12);
      } else {
        // A captured frame with a few bytes changed and maybe cut short.
        frame = Buffer.from(valid[Math.floor(random() * valid.length)]!);
        for (let n = Math.floor(random() * 4); n > 0; n--) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
        if (random() < 0.2) frame = frame.subarray(0, Math.floor(random() * frame.length));
      }
      const result = decodeArp(frame);
      if (!result.ok) continue;
      decoded++;
      const again = decodeArp(encodeArp(result.packet));
      if (JSON.stringify(again) !== JSON.stringify(result)) expect(again).toEqual(result);
    }
    // The mutations must reach the success path too, or this test proves little.
    expect(decoded).toBeGreaterThan(500);
  });
});
