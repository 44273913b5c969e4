/**
 * The NDP codec against frames captured with `tcpdump -XX` between two network namespaces
 * (node 02:00:00:00:00:01 at 2001:db8::1, client 02:00:00:00:00:02): `ndisc6` asking, the
 * Linux kernel answering, a DAD probe and the kernel defending its address against it, and the
 * unsolicited advertisement Linux sends with `ndisc_notify`.
 */
import { MIN_FRAME_LENGTH } from './ethernet.js';
import { icmpv6Checksum, ipv6Bytes, solicitedNode, formatIPv6 } from './ipv6.js';
import { decodeNdp, encodeNdp, neighborAdvertisementFor, unsolicitedNeighborAdvertisement, type NdpMessage, type NeighborSolicitation } from './ndp.js';
import { seededRandom } from '../../core/seeded.js';

const NODE_MAC = '02:00:00:00:00:01';
const CLIENT_MAC = '02:00:00:00:00:02';
const ip = (source: string, destination: string, flowLabel = 0) => ({ source, destination, hopLimit: 255, trafficClass: 0, flowLabel });
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const padded = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc(Math.max(0, MIN_FRAME_LENGTH - b.length))]);

const NDISC6_SOLICITATION: NeighborSolicitation = {
  type: 'neighbor-solicitation',
  ethernet: { destination: '33:33:ff:00:00:01', source: CLIENT_MAC },
  ip: ip('fe80::ff:fe00:2', 'ff02::1:ff00:1', 0xbf471),
  target: '2001:db8::1',
  sourceLinkLayer: CLIENT_MAC,
};

const DAD_PROBE: NeighborSolicitation = {
  type: 'neighbor-solicitation',
  ethernet: { destination: '33:33:ff:00:00:01', source: CLIENT_MAC },
  ip: ip('::', 'ff02::1:ff00:1'),
  target: '2001:db8::1',
  nonce: '1d8c428410b8',
};

const FIXTURES: { name: string; message: NdpMessage; frame: Buffer }[] = [
  {
    name: 'ndisc6: who has 2001:db8::1 (to its solicited-node group, with a flow label)',
    message: NDISC6_SOLICITATION,
    frame: hex(`3333 ff00 0001 0200 0000 0002 86dd 600b
                f471 0020 3aff fe80 0000 0000 0000 0000
                00ff fe00 0002 ff02 0000 0000 0000 0000
                0001 ff00 0001 8700 4c5f 0000 0000 2001
                0db8 0000 0000 0000 0000 0000 0001 0101
                0200 0000 0002`),
  },
  {
    name: 'the kernel: 2001:db8::1 is at 02:00:00:00:00:01 (solicited, override)',
    message: {
      type: 'neighbor-advertisement',
      ethernet: { destination: CLIENT_MAC, source: NODE_MAC },
      ip: ip('2001:db8::1', 'fe80::ff:fe00:2'),
      router: false,
      solicited: true,
      override: true,
      target: '2001:db8::1',
      targetLinkLayer: NODE_MAC,
    },
    frame: hex(`0200 0000 0002 0200 0000 0001 86dd 6000
                0000 0020 3aff 2001 0db8 0000 0000 0000
                0000 0000 0001 fe80 0000 0000 0000 0000
                00ff fe00 0002 8800 baab 6000 0000 2001
                0db8 0000 0000 0000 0000 0000 0001 0201
                0200 0000 0001`),
  },
  {
    name: 'the kernel checking reachability: unicast solicitation',
    message: {
      type: 'neighbor-solicitation',
      ethernet: { destination: NODE_MAC, source: CLIENT_MAC },
      ip: ip('fe80::ff:fe00:2', 'fe80::ff:fe00:1'),
      target: 'fe80::ff:fe00:1',
      sourceLinkLayer: CLIENT_MAC,
    },
    frame: hex(`0200 0000 0001 0200 0000 0002 86dd 6000
                0000 0020 3aff fe80 0000 0000 0000 0000
                00ff fe00 0002 fe80 0000 0000 0000 0000
                00ff fe00 0001 8700 7d1b 0000 0000 fe80
                0000 0000 0000 0000 00ff fe00 0001 0101
                0200 0000 0002`),
  },
  {
    name: 'the kernel answering it: solicited, no override, no option (78 bytes)',
    message: {
      type: 'neighbor-advertisement',
      ethernet: { destination: CLIENT_MAC, source: NODE_MAC },
      ip: ip('fe80::ff:fe00:1', 'fe80::ff:fe00:2'),
      router: false,
      solicited: true,
      override: false,
      target: 'fe80::ff:fe00:1',
    },
    frame: hex(`0200 0000 0002 0200 0000 0001 86dd 6000
                0000 0018 3aff fe80 0000 0000 0000 0000
                00ff fe00 0001 fe80 0000 0000 0000 0000
                00ff fe00 0002 8800 3f26 4000 0000 fe80
                0000 0000 0000 0000 00ff fe00 0001`),
  },
  {
    name: 'DAD probe from :: with an RFC 7527 nonce',
    message: DAD_PROBE,
    frame: hex(`3333 ff00 0001 0200 0000 0002 86dd 6000
                0000 0020 3aff 0000 0000 0000 0000 0000
                0000 0000 0000 ff02 0000 0000 0000 0000
                0001 ff00 0001 8700 ce1b 0000 0000 2001
                0db8 0000 0000 0000 0000 0000 0001 0e01
                1d8c 4284 10b8`),
  },
  {
    name: 'the kernel defending 2001:db8::1 against that probe: to all nodes, override',
    message: {
      type: 'neighbor-advertisement',
      ethernet: { destination: '33:33:00:00:00:01', source: NODE_MAC },
      ip: ip('2001:db8::1', 'ff02::1'),
      router: false,
      solicited: false,
      override: true,
      target: '2001:db8::1',
      targetLinkLayer: NODE_MAC,
    },
    frame: hex(`3333 0000 0001 0200 0000 0001 86dd 6000
                0000 0020 3aff 2001 0db8 0000 0000 0000
                0000 0000 0001 ff02 0000 0000 0000 0000
                0000 0000 0001 8800 f92a 2000 0000 2001
                0db8 0000 0000 0000 0000 0000 0001 0201
                0200 0000 0001`),
  },
  {
    name: 'ndisc_notify: unsolicited advertisement of 2001:db8::2',
    message: {
      type: 'neighbor-advertisement',
      ethernet: { destination: '33:33:00:00:00:01', source: NODE_MAC },
      ip: ip('2001:db8::2', 'ff02::1'),
      router: false,
      solicited: false,
      override: true,
      target: '2001:db8::2',
      targetLinkLayer: NODE_MAC,
    },
    frame: hex(`3333 0000 0001 0200 0000 0001 86dd 6000
                0000 0020 3aff 2001 0db8 0000 0000 0000
                0000 0000 0002 ff02 0000 0000 0000 0000
                0000 0000 0001 8800 f928 2000 0000 2001
                0db8 0000 0000 0000 0000 0000 0002 0201
                0200 0000 0001`),
  },
];

describe('NDP fixtures', () => {
  it.each(FIXTURES)('$name: decodes', ({ message, frame }) => {
    expect(decodeNdp(frame)).toEqual({ ok: true, message });
  });

  it.each(FIXTURES)('$name: encodes', ({ message, frame }) => {
    expect(encodeNdp(message).toString('hex')).toBe(padded(frame).toString('hex'));
  });

  it.each(FIXTURES)('$name: round-trips', ({ message }) => {
    expect(decodeNdp(encodeNdp(message))).toEqual({ ok: true, message });
  });

  it('reads a short frame by its payload length, not its padding', () => {
    const short = FIXTURES[3]!.frame;
    expect(decodeNdp(padded(short))).toEqual(decodeNdp(short));
  });
});

describe('building messages', () => {
  it("answers ndisc6's solicitation exactly as the Linux kernel did", () => {
    expect(encodeNdp(neighborAdvertisementFor(NDISC6_SOLICITATION, NODE_MAC))).toEqual(FIXTURES[1]!.frame);
  });

  it('answers a DAD probe for our address to all nodes, as the kernel defends its own', () => {
    expect(encodeNdp(neighborAdvertisementFor(DAD_PROBE, NODE_MAC))).toEqual(FIXTURES[5]!.frame);
  });

  it('answers a solicitation without a source link-layer option to the MAC it came from', () => {
    const { sourceLinkLayer: _, ...bare } = NDISC6_SOLICITATION;
    expect(neighborAdvertisementFor({ ...bare, ethernet: { ...bare.ethernet, source: '02:00:00:00:00:99' } }, NODE_MAC).ethernet.destination).toBe('02:00:00:00:00:99');
  });

  it('builds the unsolicited advertisement Linux sends', () => {
    expect(encodeNdp(unsolicitedNeighborAdvertisement(NODE_MAC, '2001:db8::2'))).toEqual(FIXTURES[6]!.frame);
  });

  it('maps an address to its solicited-node group and that group to its Ethernet address', () => {
    expect(solicitedNode('2001:db8::1')).toEqual({ ip: 'ff02::1:ff00:1', mac: '33:33:ff:00:00:01' });
    expect(solicitedNode('2001:db8:0:0:1:2:ab:cdef')).toEqual({ ip: 'ff02::1:ffab:cdef', mac: '33:33:ff:ab:cd:ef' });
  });

  it('writes addresses in RFC 5952 form whatever form they were given in', () => {
    expect(formatIPv6(ipv6Bytes('2001:0DB8:0000:0000:0000:0000:0000:0010'))).toBe('2001:db8::10');
    expect(() => ipv6Bytes('192.0.2.1')).toThrow(RangeError);
    expect(() => encodeNdp({ ...NDISC6_SOLICITATION, nonce: 'abc' })).toThrow(RangeError);
  });
});

describe('frames that are not valid solicitations or advertisements', () => {
  const solicitation = FIXTURES[0]!.frame;
  /** A copy with bytes replaced and, unless told, the ICMPv6 checksum made right again. */
  const edit = (at: number, bytes: number[], options: { length?: number; keepChecksum?: boolean } = {}): Buffer => {
    let b = Buffer.from(solicitation);
    Buffer.from(bytes).copy(b, at);
    if (options.length !== undefined) {
      b = Buffer.concat([b, Buffer.alloc(Math.max(0, options.length - b.length))]).subarray(0, options.length);
      b.writeUInt16BE(options.length - 54, 18);
    }
    if (!options.keepChecksum) {
      b.writeUInt16BE(0, 56);
      b.writeUInt16BE(icmpv6Checksum(b.subarray(22, 38), b.subarray(38, 54), b.subarray(54, 54 + b.readUInt16BE(18))), 56);
    }
    return b;
  };
  const routerSolicitation = hex(`3333 0000 0002 0200 0000 0001 86dd 6000
                                  0000 0010 3aff fe80 0000 0000 0000 0000
                                  00ff fe00 0001 ff02 0000 0000 0000 0000
                                  0000 0000 0002 8500 7b2c 0000 0000 0101
                                  0200 0000 0001`);
  it.each([
    { name: 'empty', frame: Buffer.alloc(0), reason: 'truncated' },
    { name: 'an IPv6 header cut short', frame: solicitation.subarray(0, 40), reason: 'truncated' },
    { name: 'payload length past the frame', frame: solicitation.subarray(0, 80), reason: 'truncated' },
    { name: 'a message shorter than 24 bytes', frame: edit(0, [], { length: 54 + 20 }), reason: 'truncated' },
    { name: 'ARP EtherType', frame: edit(12, [0x08, 0x06]), reason: 'not-ipv6' },
    { name: 'IP version 4 under the IPv6 EtherType', frame: edit(14, [0x45]), reason: 'not-ipv6' },
    { name: 'a hop-by-hop header first', frame: edit(20, [0]), reason: 'not-icmpv6' },
    { name: 'UDP', frame: edit(20, [17]), reason: 'not-icmpv6' },
    { name: 'router solicitation (captured)', frame: routerSolicitation, reason: 'not-ndp' },
    { name: 'echo request', frame: edit(54, [128]), reason: 'not-ndp' },
    { name: 'hop limit 64 (routed)', frame: edit(21, [64]), reason: 'bad-hop-limit' },
    { name: 'checksum off by one', frame: edit(57, [0x60], { keepChecksum: true }), reason: 'bad-checksum' },
    { name: 'target changed after the checksum', frame: edit(77, [2], { keepChecksum: true }), reason: 'bad-checksum' },
    { name: 'code 1', frame: edit(55, [1]), reason: 'bad-code' },
    { name: 'multicast target', frame: edit(62, [0xff, 0x02]), reason: 'multicast-target' },
    { name: 'option of length 0', frame: edit(79, [0]), reason: 'bad-option' },
    { name: 'option running past the message', frame: edit(79, [2]), reason: 'bad-option' },
    { name: 'a lone option byte', frame: edit(0, [], { length: 54 + 25 }), reason: 'bad-option' },
    { name: 'DAD probe (source ::) with a source link-layer option', frame: edit(22, new Array<number>(16).fill(0)), reason: 'bad-dad' },
    {
      name: 'DAD probe (source ::) not to a solicited-node group',
      frame: edit(22, [...new Array<number>(16).fill(0), 0xff, 0x02, ...new Array<number>(13).fill(0), 1]),
      reason: 'bad-dad',
    },
    { name: 'solicited advertisement to all nodes', frame: edit(38, [0xff, 0x02, ...new Array<number>(13).fill(0), 1, 136, 0, 0, 0, 0x60]), reason: 'multicast-solicited' },
  ])('$name -> $reason', ({ frame, reason }) => {
    expect(decodeNdp(frame)).toEqual({ ok: false, reason });
  });

  it('skips options it does not know and keeps reading', () => {
    // An MTU option (type 5, 8 bytes) in front of the source link-layer address.
    const withMtu = Buffer.concat([solicitation.subarray(0, 78), hex('0501 0000 0000 05dc'), solicitation.subarray(78)]);
    withMtu.writeUInt16BE(40, 18);
    withMtu.writeUInt16BE(0, 56);
    withMtu.writeUInt16BE(icmpv6Checksum(withMtu.subarray(22, 38), withMtu.subarray(38, 54), withMtu.subarray(54)), 56);
    expect(decodeNdp(withMtu)).toEqual({ ok: true, message: NDISC6_SOLICITATION });
  });
});

const rng = seededRandom;

describe('seeded random input', () => {
  it('never throws, and whatever decodes re-encodes to a frame that decodes the same', () => {
    const random = rng(0x86dd);
    const valid = FIXTURES.map((f) => f.frame);
    let decoded = 0;
    for (let i = 0; i < 10_000; i++) {
      let frame: Buffer;
      if (i % 4 === 0) {
        frame = Buffer.from(Array.from({ length: Math.floor(random() * 120) }, () => Math.floor(random() * 256)));
        if (frame.length >= 14 && random() < 0.7) frame.writeUInt16BE(0x86dd, 12);
      } else {
        // A captured frame with bytes changed past the checksum's reach or with the checksum redone, maybe cut short.
        frame = Buffer.from(valid[Math.floor(random() * valid.length)]!);
        for (let n = 1 + Math.floor(random() * 3); n > 0; n--) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
        if (random() < 0.2) frame = frame.subarray(0, Math.floor(random() * frame.length));
        if (random() < 0.8 && frame.length >= 58) {
          const end = Math.min(frame.length, 54 + frame.readUInt16BE(18));
          frame.writeUInt16BE(0, 56);
          frame.writeUInt16BE(icmpv6Checksum(frame.subarray(22, 38), frame.subarray(38, 54), frame.subarray(54, end)), 56);
        }
      }
      const result = decodeNdp(frame);
      if (!result.ok) continue;
      decoded++;
      const again = decodeNdp(encodeNdp(result.message));
      if (JSON.stringify(again) !== JSON.stringify(result)) expect(again).toEqual(result);
    }
    expect(decoded).toBeGreaterThan(500);
  });
});
