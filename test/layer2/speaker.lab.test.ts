/**
 * The layer-2 speaker with real packets, as root: a "node" network namespace runs the real
 * Layer2Speaker (test/layer2/speaker-node.ts: the addon's AF_PACKET sockets, the namespace's
 * /sys/class/net), a "client" namespace asks with the real tools (arping, ndisc6, ping) and
 * watches with tcpdump.
 *
 *   client lan0 ---- lan0 node            192.0.2.0/24, 2001:db8::/64
 *   client lan1 ---- lan1 node            198.51.100.0/24
 *   client lan2 ---- lan2 -- br0 node     (lan2 is a bridge port: the bridge answers)
 *                        noarp0, noarp1   (a veth pair inside the node: NOARP, and down)
 */
import { Lab, distScript, removeLeftovers, requireLab } from './lab.js';
import { Helper } from './rpc.js';
import { encodeArp, gratuitousArp } from '../../agent/layer2/arp.js';
import { encodeNdp, type NeighborSolicitation } from '../../agent/layer2/ndp.js';

const NODE = { lan0: '02:00:00:00:01:01', lan1: '02:00:00:00:01:02', lan2: '02:00:00:00:01:03', br0: '02:00:00:00:01:0b' };
const CLIENT = { lan0: '02:00:00:00:02:01', lan1: '02:00:00:00:02:02', lan2: '02:00:00:00:02:03' };

const lab = new Lab();
let node: string;
let client: string;
let speaker: Helper;

beforeAll(async () => {
  requireLab(['arping', 'ndisc6', 'tcpdump', 'ping']);
  removeLeftovers();
  const script = distScript('test/layer2/speaker-node.js');
  node = lab.namespace('node');
  client = lab.namespace('client');
  for (const name of ['lan0', 'lan1', 'lan2'] as const) lab.veth({ ns: node, name, mac: NODE[name] }, { ns: client, name, mac: CLIENT[name] });
  lab.ip(node, 'link', 'add', 'br0', 'address', NODE.br0, 'type', 'bridge');
  lab.ip(node, 'link', 'set', 'lan2', 'master', 'br0');
  lab.ip(node, 'link', 'set', 'br0', 'up');
  lab.ip(node, 'link', 'add', 'noarp0', 'type', 'veth', 'peer', 'name', 'noarp1');
  lab.ip(node, 'link', 'set', 'noarp0', 'arp', 'off', 'up');
  lab.ip(node, 'addr', 'add', '192.0.2.1/24', 'dev', 'lan0');
  lab.ip(node, 'addr', 'add', '2001:db8::1/64', 'dev', 'lan0', 'nodad');
  lab.ip(node, 'addr', 'add', '198.51.100.1/24', 'dev', 'lan1');
  lab.ip(client, 'addr', 'add', '192.0.2.100/24', 'dev', 'lan0');
  lab.ip(client, 'addr', 'add', '2001:db8::100/64', 'dev', 'lan0', 'nodad');
  lab.ip(client, 'addr', 'add', '198.51.100.100/24', 'dev', 'lan1');
  lab.ip(client, 'addr', 'add', '203.0.113.100/24', 'dev', 'lan2');
  speaker = await Helper.start(node, script, [JSON.stringify({ linkPollIntervalMs: 300 })]);
  lab.onDestroy(() => speaker.stop());
}, 30_000);

afterAll(() => lab.destroy(), 30_000);

const announce = (announcements: Record<string, string[]>): Promise<unknown> => speaker.call('set', { announcements });
const interfacesOf = (ip: string): Promise<string[]> => speaker.call<string[]>('interfaces', { ip });

/** One sample of a counter from the speaker's /metrics text (0 when absent). */
async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const text = await speaker.call<string>('metrics');
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m?.[1] === name && m[2]!.split(',').sort().join(',') === want.join(',')) return Number(m[3]);
  }
  return 0;
}

/** The MACs that answered an arping from the client (Habets' arping: "60 bytes from MAC (IP): ..."). */
async function arping(ip: string, iface: string, count = 3): Promise<{ code: number | null; macs: string[] }> {
  const { code, stdout } = await lab.exec(client, ['arping', '-c', String(count), '-W', '0.2', '-i', iface, ip]);
  return { code, macs: [...stdout.matchAll(new RegExp(`bytes from ([0-9a-f:]{17}) \\(${ip.replaceAll('.', '\\.')}\\)`, 'g'))].map((m) => m[1]!) };
}

/** What ndisc6 learnt for an address, or undefined when nobody answered. */
async function ndisc6(ip: string, iface: string): Promise<{ code: number | null; mac?: string }> {
  const { code, stdout } = await lab.exec(client, ['ndisc6', '-r', '3', '-w', '300', ip, iface]);
  return { code, mac: /Target link-layer address: ([0-9A-Fa-f:]{17})/.exec(stdout)?.[1]?.toLowerCase() };
}

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** When 192.0.2.10 and 2001:db8::10 were taken, whose burst runs 4 s. */
let firstTaken = 0;

describe('answering', () => {
  beforeAll(async () => {
    await announce({ '192.0.2.10': [], '2001:db8::10': [] });
    firstTaken = Date.now();
  });

  it('picks every up, non-enslaved, ARP-capable Ethernet interface when none is named', async () => {
    // Not lo (loopback), lan2 (a bridge port), noarp0 (NOARP) or noarp1 (down).
    expect(await interfacesOf('192.0.2.10')).toEqual(['br0', 'lan0', 'lan1']);
    expect(await interfacesOf('2001:db8::10')).toEqual(['br0', 'lan0', 'lan1']);
  });

  it("arping from the client is answered with the node interface's MAC", async () => {
    const before = await counter('metallb_layer2_requests_received', { ip: '192.0.2.10' });
    const { code, macs } = await arping('192.0.2.10', 'lan0');
    expect(macs).toEqual([NODE.lan0, NODE.lan0, NODE.lan0]);
    expect(code).toBe(0);
    expect((await counter('metallb_layer2_requests_received', { ip: '192.0.2.10' })) - before).toBe(3);
    expect(await counter('metallb_layer2_responses_sent', { ip: '192.0.2.10' })).toBeGreaterThanOrEqual(3);
  });

  it("ndisc6 from the client learns the node interface's MAC", async () => {
    expect(await ndisc6('2001:db8::10', 'lan0')).toEqual({ code: 0, mac: NODE.lan0 });
    expect(await counter('metallb_layer2_responses_sent', { ip: '2001:db8::10' })).toBeGreaterThanOrEqual(1);
  });

  it("the client's kernel resolves both addresses to the node's MAC (ping)", async () => {
    // Nothing on the node answers the echo itself (no kube-proxy here); the neighbor entry is the point.
    await lab.exec(client, ['ping', '-c', '1', '-W', '1', '192.0.2.10']);
    await lab.exec(client, ['ping', '-6', '-c', '1', '-W', '1', '2001:db8::10']);
    expect(lab.ip(client, 'neigh', 'show', 'dev', 'lan0', '192.0.2.10')).toContain(`lladdr ${NODE.lan0}`);
    expect(lab.ip(client, 'neigh', 'show', 'dev', 'lan0', '2001:db8::10')).toContain(`lladdr ${NODE.lan0}`);
  });

  it("answers through a bridge with the bridge's MAC, not the port's", async () => {
    expect((await arping('192.0.2.10', 'lan2')).macs).toEqual([NODE.br0, NODE.br0, NODE.br0]);
  });

  it('counts malformed and foreign frames, and keeps answering', async () => {
    const peer = await Helper.start(client, distScript('test/native/packet-peer.js'));
    try {
      await peer.call('open', { id: 'arp', interface: 'lan0', protocol: 0x0806 });
      await peer.call('open', { id: 'ip6', interface: 'lan0', protocol: 0x86dd });
      const request = encodeArp({ ...gratuitousArp('request', CLIENT.lan0, '192.0.2.100'), targetIp: '192.0.2.10', targetMac: '00:00:00:00:00:00' });
      const truncated = request.subarray(0, 30);
      const tokenRing = Buffer.from(request).fill(6, 15, 16); // hardware type 6
      const solicitation: NeighborSolicitation = {
        type: 'neighbor-solicitation',
        ethernet: { destination: '33:33:ff:00:00:10', source: CLIENT.lan0 },
        ip: { source: 'fe80::2:1', destination: 'ff02::1:ff00:10', hopLimit: 255, trafficClass: 0, flowLabel: 0 },
        target: '2001:db8::10',
        sourceLinkLayer: CLIENT.lan0,
      };
      const badChecksum = Buffer.from(encodeNdp(solicitation)).fill(0, 56, 58);
      const routed = encodeNdp({ ...solicitation, ip: { ...solicitation.ip, hopLimit: 64 } });
      const before = {
        truncated: await counter('metallb_layer2_frames_ignored', { protocol: 'arp', reason: 'truncated' }),
        tokenRing: await counter('metallb_layer2_frames_ignored', { protocol: 'arp', reason: 'not-ethernet-ipv4' }),
        checksum: await counter('metallb_layer2_frames_ignored', { protocol: 'ndp', reason: 'bad-checksum' }),
        hopLimit: await counter('metallb_layer2_frames_ignored', { protocol: 'ndp', reason: 'bad-hop-limit' }),
      };
      await peer.call('send', { id: 'arp', frame: truncated.toString('hex') });
      await peer.call('send', { id: 'arp', frame: tokenRing.toString('hex') });
      await peer.call('send', { id: 'ip6', frame: badChecksum.toString('hex') });
      await peer.call('send', { id: 'ip6', frame: routed.toString('hex') });
      const after = await eventually(
        async () => ({
          truncated: await counter('metallb_layer2_frames_ignored', { protocol: 'arp', reason: 'truncated' }),
          tokenRing: await counter('metallb_layer2_frames_ignored', { protocol: 'arp', reason: 'not-ethernet-ipv4' }),
          checksum: await counter('metallb_layer2_frames_ignored', { protocol: 'ndp', reason: 'bad-checksum' }),
          hopLimit: await counter('metallb_layer2_frames_ignored', { protocol: 'ndp', reason: 'bad-hop-limit' }),
        }),
        (v) => v.hopLimit > before.hopLimit,
      );
      expect(after).toEqual({ truncated: before.truncated + 1, tokenRing: before.tokenRing + 1, checksum: before.checksum + 1, hopLimit: before.hopLimit + 1 });
      // And the well-formed request in the same bytes is answered, to the peer's socket.
      const from = peer.events.length;
      await peer.call('send', { id: 'arp', frame: request.toString('hex') });
      const reply = await peer.waitFor((e) => peer.events.indexOf(e) >= from && e.event === 'frame' && String(e.frame).startsWith(CLIENT.lan0.replaceAll(':', '')));
      expect(String(reply.frame).slice(12, 24)).toBe(NODE.lan0.replaceAll(':', ''));
    } finally {
      await peer.stop();
    }
  });
});

describe('announcing', () => {
  it('sends a gratuitous burst when it takes an IP: 3 at once, then after 1, 2 and 4 s, seen by tcpdump on the client', async () => {
    // The burst of the IPs taken before ends first, so that any frame for them now would be a repeat.
    await new Promise((r) => setTimeout(r, Math.max(0, firstTaken + 4300 - Date.now())));
    const tcpdump = lab.spawn(client, ['tcpdump', '-i', 'lan0', '-n', '-e', '-l', '-tt', `ether src ${NODE.lan0} and (arp or (icmp6 and ip6[40] == 136))`]);
    let out = '';
    let err = '';
    tcpdump.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    tcpdump.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await eventually(
      async () => err,
      (e) => e.includes('listening on'),
    );
    await announce({ '192.0.2.10': [], '2001:db8::10': [], '192.0.2.20': ['lan0'], '2001:db8::20': ['lan0'] });
    await new Promise((r) => setTimeout(r, 4600));
    const exited = new Promise((r) => tcpdump.once('exit', r));
    tcpdump.kill('SIGTERM');
    await exited;

    const times = (pattern: RegExp): number[] =>
      out
        .split('\n')
        .filter((l) => pattern.test(l))
        .map((l) => Number(l.split(' ')[0]));
    const requests = times(/Request who-has 192\.0\.2\.20 \(ff:ff:ff:ff:ff:ff\) tell 192\.0\.2\.20/);
    const replies = times(/Reply 192\.0\.2\.20 is-at 02:00:00:00:01:01/);
    const advertisements = times(/neighbor advertisement, tgt is 2001:db8::20/);
    const start = Math.min(...requests, ...advertisements);
    // Offsets from the first frame, rounded to 100 ms: [0, 0, 0, 1, 2, 4] seconds.
    const shape = (ts: number[]): number[] => ts.map((t) => Math.round((t - start) * 10) / 10);
    for (const ts of [requests, replies, advertisements]) {
      expect(ts).toHaveLength(6);
      expect(shape(ts)).toEqual([0, 0, 0, 1, 2, 4]);
    }
    // The IPs it already owned are not announced again.
    expect(out).not.toMatch(/192\.0\.2\.10|2001:db8::10\b/);
    expect(await counter('metallb_layer2_gratuitous_sent', { ip: '192.0.2.20' })).toBe(12);
    expect(await counter('metallb_layer2_gratuitous_sent', { ip: '2001:db8::20' })).toBe(6);
  }, 20_000);

  it('stops answering an IP at once when it is removed', async () => {
    await announce({ '192.0.2.10': [], '2001:db8::10': [] });
    expect((await arping('192.0.2.10', 'lan0', 1)).macs).toEqual([NODE.lan0]);
    await announce({});
    expect(await arping('192.0.2.10', 'lan0', 2)).toEqual({ code: 1, macs: [] });
    expect((await ndisc6('2001:db8::10', 'lan0')).mac).toBeUndefined();
    expect(await interfacesOf('192.0.2.10')).toEqual([]);
  });

  it('answers only on the interfaces it is told to', async () => {
    await announce({ '198.51.100.10': ['lan0'] });
    expect((await arping('198.51.100.10', 'lan1', 2)).macs).toEqual([]);
    await announce({ '198.51.100.10': ['lan1'] });
    expect(await interfacesOf('198.51.100.10')).toEqual(['lan1']);
    expect((await arping('198.51.100.10', 'lan1', 2)).macs).toEqual([NODE.lan1, NODE.lan1]);
    expect((await arping('198.51.100.10', 'lan0', 2)).macs).toEqual([]);
  });

  it('follows a link going down and coming back up', async () => {
    await announce({ '192.0.2.10': [] });
    lab.ip(node, 'link', 'set', 'lan1', 'down');
    expect(
      await eventually(
        () => interfacesOf('192.0.2.10'),
        (v) => v.length === 2,
      ),
    ).toEqual(['br0', 'lan0']);
    lab.ip(node, 'link', 'set', 'lan1', 'up');
    expect(
      await eventually(
        () => interfacesOf('192.0.2.10'),
        (v) => v.length === 3,
      ),
    ).toEqual(['br0', 'lan0', 'lan1']);
    expect(
      (
        await eventually(
          () => arping('192.0.2.10', 'lan1', 1),
          (v) => v.macs.length > 0,
        )
      ).macs,
    ).toEqual([NODE.lan1]);
  });
});
