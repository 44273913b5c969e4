/**
 * The speaker with fake sockets, fake interfaces and jest's fake timers: which interfaces it
 * opens, what it answers and with which frame, what it ignores and counts, the gratuitous
 * schedule, and what changes when IPs or links come and go. Real packets: test/layer2/.
 */
import { jest } from '@jest/globals';
import { Registry } from 'prom-client';
import { arpReply, encodeArp, gratuitousArp, type ArpPacket } from './arp.js';
import { InterfaceFlag, type NetworkInterface } from './interfaces.js';
import { encodeNdp, neighborAdvertisementFor, unsolicitedNeighborAdvertisement, type NeighborSolicitation } from './ndp.js';
import { PacketType, type PacketSocket, type PacketSocketOptions } from './packet-socket.js';
import { Layer2Speaker, type Layer2Announcement, type Layer2SpeakerOptions } from './speaker.js';

const UP_ETHERNET = InterfaceFlag.up | InterfaceFlag.broadcast | InterfaceFlag.multicast;
const link = (name: string, index: number, extra: Partial<NetworkInterface> = {}): NetworkInterface => ({
  name,
  index,
  mac: `02:00:00:00:00:${index.toString(16).padStart(2, '0')}`,
  flags: UP_ETHERNET,
  linkType: 1,
  enslaved: false,
  ...extra,
});

const LINKS: NetworkInterface[] = [
  link('lo', 1, { mac: '00:00:00:00:00:00', flags: InterfaceFlag.up | InterfaceFlag.loopback, linkType: 772 }),
  link('eth0', 2),
  link('eth1', 3),
  link('eth2', 4, { flags: InterfaceFlag.broadcast | InterfaceFlag.multicast }), // down
  link('swp1', 5, { enslaved: true }), // a bridge port
  link('wg0', 6, { flags: InterfaceFlag.up | InterfaceFlag.noArp, linkType: 65534 }),
  link('tun0', 7, { linkType: 65534 }),
];

class FakeSocket implements PacketSocket {
  readonly sent: Buffer[] = [];
  readonly groups: string[] = [];
  closed = false;
  failSend?: Error;
  constructor(readonly options: PacketSocketOptions) {}
  send(frame: Buffer): void {
    if (this.closed) throw new Error('send on a closed socket');
    if (this.failSend) throw this.failSend;
    this.sent.push(frame);
  }
  addMembership(mac: Buffer): void {
    this.groups.push(macText(mac));
  }
  dropMembership(mac: Buffer): void {
    const i = this.groups.indexOf(macText(mac));
    if (i < 0) throw new Error('not a member');
    this.groups.splice(i, 1);
  }
  close(): void {
    this.closed = true;
  }
  /** A frame arriving from the wire. */
  receive(frame: Buffer, type: number = PacketType.broadcast): void {
    if (!this.closed) this.options.onFrame(frame, type);
  }
  take(): Buffer[] {
    return this.sent.splice(0);
  }
}

const macText = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

class Harness {
  readonly registry = new Registry();
  readonly sockets: FakeSocket[] = [];
  readonly logs: string[] = [];
  links = [...LINKS];
  openError?: Error;
  readonly speaker: Layer2Speaker;
  changes = 0;

  constructor(options: Partial<Layer2SpeakerOptions> = {}) {
    this.speaker = new Layer2Speaker({
      metrics: this.registry,
      log: (line) => this.logs.push(line),
      openSocket: (o) => {
        if (this.openError) throw this.openError;
        const s = new FakeSocket(o);
        this.sockets.push(s);
        return s;
      },
      listInterfaces: () => this.links,
      onInterfacesChanged: () => this.changes++,
      ...options,
    });
  }

  announce(entries: Record<string, string[]>): void {
    this.speaker.setAnnouncements(new Map(Object.entries(entries).map(([ip, interfaces]): [string, Layer2Announcement] => [ip, { interfaces }])));
  }

  /** The open socket of an interface for a protocol (0x0806 ARP, 0x86dd IPv6). */
  socket(name: string, protocol: number): FakeSocket {
    const s = this.sockets.find((x) => x.options.interface === name && x.options.protocol === protocol && !x.closed);
    if (!s) throw new Error(`no open socket on ${name} for ${protocol.toString(16)}`);
    return s;
  }

  openOn(protocol: number): string[] {
    return this.sockets.filter((s) => !s.closed && s.options.protocol === protocol).map((s) => s.options.interface);
  }

  async counter(name: string, labels: Record<string, string>): Promise<number> {
    const metric = this.registry.getSingleMetric(name);
    if (!metric) throw new Error(`no metric ${name}`);
    const { values } = await metric.get();
    return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
  }
}

const ARP = 0x0806;
const IPV6 = 0x86dd;
const CLIENT_MAC = '02:00:00:00:00:99';
const who = (targetIp: string, over: Partial<ArpPacket> = {}): ArpPacket => ({
  type: 'request',
  ethernet: { destination: 'ff:ff:ff:ff:ff:ff', source: CLIENT_MAC },
  senderMac: CLIENT_MAC,
  senderIp: '192.0.2.100',
  targetMac: '00:00:00:00:00:00',
  targetIp,
  ...over,
});
const solicit = (target: string, group: string): NeighborSolicitation => ({
  type: 'neighbor-solicitation',
  ethernet: { destination: group, source: CLIENT_MAC },
  ip: { source: 'fe80::99', destination: 'ff02::1:ff00:10', hopLimit: 255, trafficClass: 0, flowLabel: 0 },
  target,
  sourceLinkLayer: CLIENT_MAC,
});

let h: Harness;
beforeEach(() => {
  jest.useFakeTimers();
  h = new Harness({ linkPollIntervalMs: 0 });
});
afterEach(() => {
  h.speaker.close();
  jest.useRealTimers();
});

describe('interfaces', () => {
  it('with none named, answers on every up, non-enslaved, ARP-capable Ethernet interface', () => {
    h.announce({ '192.0.2.10': [] });
    expect(h.openOn(ARP)).toEqual(['eth0', 'eth1']);
    expect(h.speaker.interfacesOf('192.0.2.10')).toEqual(['eth0', 'eth1']);
    expect(h.openOn(IPV6)).toEqual([]);
  });

  it('with interfaces named, answers only on those that are eligible', () => {
    h.announce({ '192.0.2.10': ['eth1', 'eth2', 'nope0'], '192.0.2.11': ['swp1'] });
    expect(h.openOn(ARP)).toEqual(['eth1']);
    expect(h.speaker.interfacesOf('192.0.2.10')).toEqual(['eth1']);
    expect(h.speaker.interfacesOf('192.0.2.11')).toEqual([]);
    expect(h.logs).toContainEqual(expect.stringContaining('192.0.2.11 is not announced anywhere: none of swp1 is up and eligible'));
  });

  it('opens a socket per interface and family only while some IP needs it', () => {
    h.announce({ '192.0.2.10': ['eth0'], '2001:db8::10': ['eth0'] });
    expect(h.openOn(ARP)).toEqual(['eth0']);
    expect(h.openOn(IPV6)).toEqual(['eth0']);
    h.announce({ '2001:db8::10': ['eth0'] });
    expect(h.openOn(ARP)).toEqual([]);
    h.announce({});
    expect(h.openOn(IPV6)).toEqual([]);
    expect(h.sockets.every((s) => s.closed)).toBe(true);
  });

  it('follows links that go down, come up or are recreated, and says so', () => {
    h.announce({ '192.0.2.10': [] });
    h.socket('eth1', ARP).take();
    h.links = h.links.map((l) => (l.name === 'eth1' ? { ...l, flags: l.flags & ~InterfaceFlag.up } : l.name === 'eth2' ? { ...l, flags: l.flags | InterfaceFlag.up } : l));
    h.speaker.refreshInterfaces();
    expect(h.openOn(ARP)).toEqual(['eth0', 'eth2']);
    expect(h.speaker.interfacesOf('192.0.2.10')).toEqual(['eth0', 'eth2']);
    expect(h.changes).toBe(1);
    // The new interface gets its own burst at once.
    expect(h.socket('eth2', ARP).take()).toHaveLength(6);
    // eth0 recreated under the same name: new index, so its socket is dead; a new one is opened and announces.
    const old = h.socket('eth0', ARP);
    h.links = h.links.map((l) => (l.name === 'eth0' ? { ...l, index: 42 } : l));
    h.speaker.refreshInterfaces();
    expect(old.closed).toBe(true);
    expect(h.socket('eth0', ARP)).not.toBe(old);
    expect(h.socket('eth0', ARP).take()).toHaveLength(6);
    // Nothing changed: no callback.
    h.speaker.refreshInterfaces();
    expect(h.changes).toBe(2);
  });

  it('re-reads the links on its own every linkPollIntervalMs', () => {
    const polled = new Harness({ linkPollIntervalMs: 2000 });
    polled.announce({ '192.0.2.10': ['eth2'] });
    expect(polled.openOn(ARP)).toEqual([]);
    polled.links = polled.links.map((l) => (l.name === 'eth2' ? { ...l, flags: l.flags | InterfaceFlag.up } : l));
    jest.advanceTimersByTime(2000);
    expect(polled.openOn(ARP)).toEqual(['eth2']);
    polled.speaker.close();
  });

  it('keeps the last list when reading the links fails', () => {
    let fail = false;
    const flaky = new Harness({
      linkPollIntervalMs: 0,
      listInterfaces: () => {
        if (fail) throw new Error('EACCES /sys/class/net');
        return LINKS;
      },
    });
    flaky.announce({ '192.0.2.10': [] });
    fail = true;
    flaky.speaker.refreshInterfaces();
    expect(flaky.openOn(ARP)).toEqual(['eth0', 'eth1']);
    expect(flaky.logs).toContainEqual('layer2: reading the interfaces: EACCES /sys/class/net');
    flaky.speaker.close();
  });
});

describe('answering ARP', () => {
  beforeEach(() => {
    h.announce({ '192.0.2.10': ['eth0'] });
    h.socket('eth0', ARP).take();
  });

  it("answers a request for an owned IP with the interface's MAC, to the asker", async () => {
    const s = h.socket('eth0', ARP);
    s.receive(encodeArp(who('192.0.2.10')));
    expect(s.take()).toEqual([encodeArp(arpReply(who('192.0.2.10'), '02:00:00:00:00:02'))]);
    s.receive(encodeArp(who('192.0.2.10', { ethernet: { destination: '02:00:00:00:00:02', source: CLIENT_MAC } })), PacketType.host);
    expect(s.take()).toHaveLength(1);
    expect(await h.counter('metallb_layer2_requests_received', { ip: '192.0.2.10' })).toBe(2);
    expect(await h.counter('metallb_layer2_responses_sent', { ip: '192.0.2.10' })).toBe(2);
  });

  it.each([
    { name: 'a request for an IP not owned', frame: encodeArp(who('192.0.2.11')), reason: 'not-owned' },
    { name: 'a reply', frame: encodeArp({ ...who('192.0.2.10'), type: 'reply' }), reason: 'arp-reply' },
    { name: 'a request unicast to another MAC', frame: encodeArp(who('192.0.2.10', { ethernet: { destination: '02:00:00:00:00:77', source: CLIENT_MAC } })), reason: 'not-for-us' },
    { name: 'another host announcing our IP', frame: encodeArp(gratuitousArp('request', CLIENT_MAC, '192.0.2.10')), reason: 'gratuitous' },
    { name: 'a truncated frame', frame: encodeArp(who('192.0.2.10')).subarray(0, 30), reason: 'truncated' },
    { name: 'RARP', frame: Buffer.from(encodeArp(who('192.0.2.10')).fill(3, 21, 22)), reason: 'unknown-operation' },
  ])('ignores and counts $name ($reason)', async ({ frame, reason }) => {
    const s = h.socket('eth0', ARP);
    s.receive(frame);
    expect(s.take()).toEqual([]);
    expect(await h.counter('metallb_layer2_frames_ignored', { protocol: 'arp', reason })).toBe(1);
    expect(await h.counter('metallb_layer2_requests_received', { ip: '192.0.2.10' })).toBe(0);
  });

  it('ignores its own frames looped back without counting them', async () => {
    const s = h.socket('eth0', ARP);
    s.receive(encodeArp(who('192.0.2.10')), PacketType.outgoing);
    expect(s.take()).toEqual([]);
    expect((await h.registry.getSingleMetric('metallb_layer2_frames_ignored')!.get()).values).toEqual([]);
  });

  it('stops answering a removed IP at once', () => {
    const s = h.socket('eth0', ARP);
    h.announce({ '192.0.2.11': ['eth0'] });
    s.take();
    s.receive(encodeArp(who('192.0.2.10')));
    expect(s.take()).toEqual([]);
  });

  it('counts a failed send and carries on', async () => {
    const s = h.socket('eth0', ARP);
    s.failSend = Object.assign(new Error('send(AF_PACKET): Network is down'), { code: 'ENETDOWN' });
    s.receive(encodeArp(who('192.0.2.10')));
    expect(await h.counter('metallb_layer2_requests_received', { ip: '192.0.2.10' })).toBe(1);
    expect(await h.counter('metallb_layer2_responses_sent', { ip: '192.0.2.10' })).toBe(0);
    expect(await h.counter('metallb_layer2_socket_errors', { interface: 'eth0', operation: 'send' })).toBe(1);
    expect(h.logs).toContainEqual('layer2: send on eth0: send(AF_PACKET): Network is down');
  });

  it('filters in the kernel: only ARP requests wake it', () => {
    expect(h.socket('eth0', ARP).options.filter).toBeDefined();
  });
});

describe('answering NDP', () => {
  beforeEach(() => {
    h.announce({ '2001:db8::10': ['eth0'] });
    h.socket('eth0', IPV6).take();
  });

  it("joins the IP's solicited-node group and answers a solicitation with the interface's MAC", async () => {
    const s = h.socket('eth0', IPV6);
    expect(s.groups).toEqual(['33:33:ff:00:00:10']);
    const ns = solicit('2001:db8::10', '33:33:ff:00:00:10');
    s.receive(encodeNdp(ns), PacketType.multicast);
    expect(s.take()).toEqual([encodeNdp(neighborAdvertisementFor(ns, '02:00:00:00:00:02'))]);
    expect(await h.counter('metallb_layer2_requests_received', { ip: '2001:db8::10' })).toBe(1);
    expect(await h.counter('metallb_layer2_responses_sent', { ip: '2001:db8::10' })).toBe(1);
  });

  it('joins a group shared by two IPs once, and leaves it with the last', () => {
    h.announce({ '2001:db8::10': ['eth0'], '2001:db8:1::10': ['eth0'], '2001:db8::11': ['eth0'] });
    const s = h.socket('eth0', IPV6);
    expect(s.groups).toEqual(['33:33:ff:00:00:10', '33:33:ff:00:00:11']);
    h.announce({ '2001:db8:1::10': ['eth0'] });
    expect(s.groups).toEqual(['33:33:ff:00:00:10']);
  });

  it('stops answering a removed IP at once', () => {
    h.announce({ '2001:db8::11': ['eth0'] });
    const s = h.socket('eth0', IPV6);
    s.take();
    s.receive(encodeNdp(solicit('2001:db8::10', '33:33:ff:00:00:10')), PacketType.multicast);
    expect(s.take()).toEqual([]);
  });

  it.each([
    { name: 'a solicitation for an IP not owned', frame: encodeNdp(solicit('2001:db8::11', '33:33:ff:00:00:11')), reason: 'not-owned' },
    { name: 'an advertisement', frame: encodeNdp(unsolicitedNeighborAdvertisement(CLIENT_MAC, '2001:db8::10')), reason: 'not-solicitation' },
    { name: 'a solicitation unicast to another MAC', frame: encodeNdp(solicit('2001:db8::10', '02:00:00:00:00:77')), reason: 'not-for-us' },
    { name: 'a routed solicitation', frame: Buffer.from(encodeNdp(solicit('2001:db8::10', '33:33:ff:00:00:10')).fill(64, 21, 22)), reason: 'bad-hop-limit' },
    { name: 'a corrupted solicitation', frame: Buffer.from(encodeNdp(solicit('2001:db8::10', '33:33:ff:00:00:10')).fill(0, 56, 58)), reason: 'bad-checksum' },
  ])('ignores and counts $name ($reason)', async ({ frame, reason }) => {
    const s = h.socket('eth0', IPV6);
    s.receive(frame, PacketType.multicast);
    expect(s.take()).toEqual([]);
    expect(await h.counter('metallb_layer2_frames_ignored', { protocol: 'ndp', reason })).toBe(1);
  });
});

describe('gratuitous announcements', () => {
  it('announces a newly owned IPv4 in both ARP forms: three at once, then after 1, 2 and 4 s', async () => {
    h.announce({ '192.0.2.10': ['eth0'] });
    const s = h.socket('eth0', ARP);
    const pair = [encodeArp(gratuitousArp('request', '02:00:00:00:00:02', '192.0.2.10')), encodeArp(gratuitousArp('reply', '02:00:00:00:00:02', '192.0.2.10'))];
    expect(s.take()).toEqual([...pair, ...pair, ...pair]);
    jest.advanceTimersByTime(999);
    expect(s.take()).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(s.take()).toEqual(pair);
    jest.advanceTimersByTime(1000);
    expect(s.take()).toEqual(pair);
    jest.advanceTimersByTime(2000);
    expect(s.take()).toEqual(pair);
    jest.advanceTimersByTime(60_000);
    expect(s.take()).toEqual([]);
    expect(await h.counter('metallb_layer2_gratuitous_sent', { ip: '192.0.2.10' })).toBe(12);
  });

  it('announces a newly owned IPv6 with unsolicited advertisements to all nodes', async () => {
    h.announce({ '2001:db8::10': ['eth0'] });
    const s = h.socket('eth0', IPV6);
    const na = encodeNdp(unsolicitedNeighborAdvertisement('02:00:00:00:00:02', '2001:db8::10'));
    expect(s.take()).toEqual([na, na, na]);
    jest.advanceTimersByTime(4000);
    expect(s.take()).toEqual([na, na, na]);
    expect(await h.counter('metallb_layer2_gratuitous_sent', { ip: '2001:db8::10' })).toBe(6);
  });

  it('does not announce again an IP it already owns', () => {
    h.announce({ '192.0.2.10': ['eth0'] });
    const s = h.socket('eth0', ARP);
    s.take();
    h.announce({ '192.0.2.10': ['eth0'], '192.0.2.11': ['eth0'] });
    expect(s.take().every((f) => f.subarray(28, 32).equals(Buffer.from([192, 0, 2, 11])))).toBe(true);
  });

  it('cancels the rest of the burst of an IP given up', () => {
    h.announce({ '192.0.2.10': ['eth0'], '192.0.2.11': ['eth0'] });
    const s = h.socket('eth0', ARP);
    s.take();
    h.announce({ '192.0.2.11': ['eth0'] });
    jest.advanceTimersByTime(5000);
    expect(s.take()).toHaveLength(6);
  });

  it('keeps each burst on its own schedule when IPs are taken at different times', () => {
    h.announce({ '192.0.2.10': ['eth0'] });
    const s = h.socket('eth0', ARP);
    jest.advanceTimersByTime(500);
    h.announce({ '192.0.2.10': ['eth0'], '192.0.2.11': ['eth0'] });
    s.take();
    const targets = (): string[] => s.take().map((f) => [...f.subarray(38, 42)].join('.'));
    jest.advanceTimersByTime(500); // t = 1000
    expect(targets()).toEqual(['192.0.2.10', '192.0.2.10']);
    jest.advanceTimersByTime(500); // t = 1500
    expect(targets()).toEqual(['192.0.2.11', '192.0.2.11']);
    jest.advanceTimersByTime(3000); // t = 4500
    expect(targets()).toEqual(['192.0.2.10', '192.0.2.10', '192.0.2.11', '192.0.2.11', '192.0.2.10', '192.0.2.10', '192.0.2.11', '192.0.2.11']);
    jest.advanceTimersByTime(10_000);
    expect(targets()).toEqual([]);
  });

  it('takes its schedule from the options', () => {
    const quick = new Harness({ linkPollIntervalMs: 0, gratuitousScheduleMs: [0, 500] });
    quick.announce({ '192.0.2.10': ['eth0'] });
    expect(quick.socket('eth0', ARP).take()).toHaveLength(2);
    jest.advanceTimersByTime(500);
    expect(quick.socket('eth0', ARP).take()).toHaveLength(2);
    quick.speaker.close();
  });

  it('refreshes every owned IP on every interface each refreshIntervalMs when asked to', () => {
    const refreshing = new Harness({ linkPollIntervalMs: 0, refreshIntervalMs: 60_000, gratuitousScheduleMs: [0] });
    refreshing.announce({ '192.0.2.10': [], '2001:db8::10': ['eth1'] });
    for (const s of refreshing.sockets) s.take();
    jest.advanceTimersByTime(60_000);
    expect(refreshing.socket('eth0', ARP).take()).toHaveLength(2);
    expect(refreshing.socket('eth1', ARP).take()).toHaveLength(2);
    expect(refreshing.socket('eth1', IPV6).take()).toHaveLength(1);
    refreshing.speaker.close();
  });
});

describe('failures and lifecycle', () => {
  it('logs a socket it cannot open once, counts every attempt, and retries on the next poll', async () => {
    h.openError = Object.assign(new Error('socket(AF_PACKET): Operation not permitted (AF_PACKET sockets need CAP_NET_RAW)'), { code: 'EPERM' });
    h.announce({ '192.0.2.10': ['eth0'] });
    h.speaker.refreshInterfaces();
    expect(h.speaker.interfacesOf('192.0.2.10')).toEqual([]);
    expect(h.logs.filter((l) => l.includes('cannot open the ARP socket on eth0'))).toHaveLength(1);
    expect(await h.counter('metallb_layer2_socket_errors', { interface: 'eth0', operation: 'open' })).toBe(2);
    h.openError = undefined;
    h.speaker.refreshInterfaces();
    expect(h.speaker.interfacesOf('192.0.2.10')).toEqual(['eth0']);
    expect(h.socket('eth0', ARP).take()).toHaveLength(6);
  });

  it('skips keys that are not IP addresses and normalises the others', () => {
    h.announce({ 'not-an-ip': [], '2001:DB8:0::10': ['eth0'] });
    expect(h.logs).toContainEqual('layer2: not announcing "not-an-ip": not an IP address');
    expect(h.speaker.interfacesOf('2001:db8::10')).toEqual(['eth0']);
    expect(h.socket('eth0', IPV6).groups).toEqual(['33:33:ff:00:00:10']);
  });

  it('close() closes every socket, cancels every timer, and ignores later calls', () => {
    const refreshing = new Harness({ linkPollIntervalMs: 1000, refreshIntervalMs: 1000 });
    refreshing.announce({ '192.0.2.10': [], '2001:db8::10': [] });
    refreshing.speaker.close();
    expect(refreshing.sockets.every((s) => s.closed)).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
    refreshing.announce({ '192.0.2.11': [] });
    expect(refreshing.sockets.filter((s) => !s.closed)).toEqual([]);
  });
});
