/**
 * The layer-2 speaker: answers ARP requests (IPv4) and neighbor solicitations (IPv6) for the
 * Service IPs this node owns, with the MAC of the interface they arrive on, and announces each
 * newly owned IP with gratuitous ARP / unsolicited neighbor advertisements.
 *
 * The agent decides what this node owns (core/announce) and hands the whole set over with
 * `setAnnouncements`; the speaker does the wire. Sockets are opened per interface and family
 * only while some IP needs them. Metrics carry MetalLB's names (internal/layer2/stats.go).
 */
import { Counter, type Registry } from 'prom-client';
import { type Family } from '../../core/ip/index.js';
import { arpReply, decodeArp, encodeArp, gratuitousArp, parseIPv4, type ArpIgnored } from './arp.js';
import { BROADCAST_MAC, EtherType, isMulticastMac, macBytes } from './ethernet.js';
import { isEligible, readInterfaces, type NetworkInterface } from './interfaces.js';
import { formatIPv6, parseIPv6, solicitedNode } from './ipv6.js';
import { decodeNdp, encodeNdp, neighborAdvertisementFor, unsolicitedNeighborAdvertisement, type NdpIgnored } from './ndp.js';
import { ARP_REQUEST_FILTER, NEIGHBOR_SOLICITATION_FILTER, openPacketSocket, PacketType, type OpenPacketSocket, type PacketSocket } from './packet-socket.js';

/** Where one owned IP is announced. */
export interface Layer2Announcement {
  /** Interface names (the L2Advertisement's `interfaces`); empty means every eligible interface. */
  readonly interfaces: readonly string[];
}

export interface Layer2SpeakerOptions {
  /** The agent's registry; the speaker registers its counters there (one speaker per registry). */
  readonly metrics: Registry;
  readonly log?: (line: string) => void;
  /** Opens AF_PACKET sockets (default: the native addon). */
  readonly openSocket?: OpenPacketSocket;
  /** The node's interfaces (default: read from /sys/class/net). */
  readonly listInterfaces?: () => NetworkInterface[];
  /** Re-read the interfaces this often, in ms (default 5000; 0: only on refreshInterfaces()). */
  readonly linkPollIntervalMs?: number;
  /**
   * Announce every owned IP again this often, in ms (default 0: never). Keeps switch MAC tables
   * and routers' ARP caches from ageing the IP out while nobody asks for it.
   */
  readonly refreshIntervalMs?: number;
  /** When a newly owned IP is announced on an interface, in ms after it became owned there. */
  readonly gratuitousScheduleMs?: readonly number[];
  /** Called when a re-read of the interfaces changed where some IP is announced (see interfacesOf). */
  readonly onInterfacesChanged?: () => void;
}

/**
 * Three at once (one lost frame must not leave a switch pointing at the old owner), then again
 * after 1, 2 and 4 s for hosts that missed the first ones or ignored them while busy.
 */
export const DEFAULT_GRATUITOUS_SCHEDULE_MS: readonly number[] = [0, 0, 0, 1000, 2000, 4000];
const DEFAULT_LINK_POLL_MS = 5000;

/** Why a received frame was not answered (the `reason` label of metallb_layer2_frames_ignored). */
export type IgnoredReason =
  | ArpIgnored
  | NdpIgnored
  /** An ARP reply (only requests are answered). */
  | 'arp-reply'
  /** A neighbor advertisement (only solicitations are answered). */
  | 'not-solicitation'
  /** Unicast to another host's MAC. */
  | 'not-for-us'
  /** Asks for an IP this node does not announce on that interface. */
  | 'not-owned'
  /** A gratuitous ARP of someone announcing our IP: not a question. */
  | 'gratuitous';

interface Link {
  readonly info: NetworkInterface;
  arp?: PacketSocket;
  ndp?: PacketSocket;
  /** Owned IPs answered here, per family. */
  readonly v4: Set<string>;
  readonly v6: Set<string>;
  /** Solicited-node groups joined on the NDP socket, with how many owned IPs need each. */
  readonly groups: Map<string, number>;
}

interface Owned {
  readonly family: Family;
  wanted: readonly string[];
  /** Interfaces it is answered on now. */
  readonly on: Set<string>;
  /** What was logged about it having no interface, so it is said once. */
  warned?: string;
}

/** Answers ARP and NDP for the IPs it is given, on the node's interfaces. */
export class Layer2Speaker {
  private readonly log: (line: string) => void;
  private readonly openSocket: OpenPacketSocket;
  private readonly listInterfaces: () => NetworkInterface[];
  private readonly schedule: readonly number[];
  private readonly onInterfacesChanged: () => void;
  private readonly owned = new Map<string, Owned>();
  private readonly links = new Map<string, Link>();
  /** The burst still going on per (IP, interface). */
  private readonly bursts = new Map<string, Burst>();
  /** The bursts started in this turn of the event loop, which share their timers. */
  private batch?: Burst[];
  /** Timers of batches of bursts. */
  private readonly batchTimers = new Set<NodeJS.Timeout>();
  private interfaces: NetworkInterface[] = [];
  /** The interfaces as last reconciled, to tell whether a poll found a change. */
  private signature = '';
  /** A socket could not be opened or a group joined: the next poll reconciles even without a change. */
  private retry = false;
  /** The last failure to open each socket (`name/kind`), so that retries failing alike stay quiet. */
  private readonly openErrors = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  private readonly requestsReceived: Counter<'ip'>;
  private readonly responsesSent: Counter<'ip'>;
  private readonly gratuitousSent: Counter<'ip'>;
  private readonly framesIgnored: Counter<'protocol' | 'reason'>;
  private readonly socketErrors: Counter<'interface' | 'operation'>;

  constructor(options: Layer2SpeakerOptions) {
    this.log = options.log ?? (() => {});
    this.openSocket = options.openSocket ?? openPacketSocket;
    this.listInterfaces = options.listInterfaces ?? (() => readInterfaces());
    this.schedule = [...(options.gratuitousScheduleMs ?? DEFAULT_GRATUITOUS_SCHEDULE_MS)].sort((a, b) => a - b);
    this.onInterfacesChanged = options.onInterfacesChanged ?? (() => {});
    const registers = [options.metrics];
    // MetalLB's names, help and labels.
    this.requestsReceived = new Counter({ name: 'metallb_layer2_requests_received', help: 'Number of layer2 requests received for owned IPs', labelNames: ['ip'], registers });
    this.responsesSent = new Counter({ name: 'metallb_layer2_responses_sent', help: 'Number of layer2 responses sent for owned IPs', labelNames: ['ip'], registers });
    this.gratuitousSent = new Counter({
      name: 'metallb_layer2_gratuitous_sent',
      help: 'Number of gratuitous layer2 packets sent for owned IPs as a result of failovers',
      labelNames: ['ip'],
      registers,
    });
    // Ours.
    this.framesIgnored = new Counter({
      name: 'metallb_layer2_frames_ignored',
      help: 'Frames received and not answered: malformed, foreign, or for IPs this node does not announce, by protocol (arp, ndp) and reason',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    this.socketErrors = new Counter({
      name: 'metallb_layer2_socket_errors',
      help: 'Failures to open, send on, receive on or join a multicast group on a packet socket, by interface and operation',
      labelNames: ['interface', 'operation'],
      registers,
    });

    this.interfaces = this.readLinks() ?? [];
    this.signature = JSON.stringify(this.interfaces);
    const pollMs = options.linkPollIntervalMs ?? DEFAULT_LINK_POLL_MS;
    if (pollMs > 0) this.timers.push(setInterval(() => this.refreshInterfaces(), pollMs));
    const refreshMs = options.refreshIntervalMs ?? 0;
    if (refreshMs > 0) this.timers.push(setInterval(() => this.announceAll(), refreshMs));
  }

  /**
   * The IPs this node owns now, each with where to announce it; IPs not in the map stop being
   * answered before this returns. A newly owned IP (or one on a new interface) is announced at
   * once and then on the gratuitous schedule. Keys are IP addresses in any standard text form;
   * anything else is logged and skipped.
   */
  setAnnouncements(announcements: ReadonlyMap<string, Layer2Announcement>): void {
    if (this.closed) return;
    // The agent hands over every owned IP on every change: only the IPs new or changed are looked at again.
    const seen = new Set<string>();
    const changed: string[] = [];
    for (const [text, announcement] of announcements) {
      // Keys we hold are canonical already: no need to parse them again.
      let ip = text;
      let owned = this.owned.get(text);
      if (!owned) {
        const parsed = canonicalIP(text);
        if (!parsed) {
          this.log(`layer2: not announcing ${JSON.stringify(text)}: not an IP address`);
          continue;
        }
        ip = parsed.ip;
        owned = this.owned.get(ip);
        if (!owned) {
          owned = { family: parsed.family, wanted: [...announcement.interfaces], on: new Set() };
          this.owned.set(ip, owned);
          this.log(`layer2: announcing ${ip}${owned.wanted.length > 0 ? ` on ${owned.wanted.join(', ')}` : ''}`);
          changed.push(ip);
        }
      }
      seen.add(ip);
      if (!sameList(owned.wanted, announcement.interfaces)) {
        owned.wanted = [...announcement.interfaces];
        changed.push(ip);
      }
    }
    for (const [ip, owned] of this.owned) {
      if (seen.has(ip)) continue;
      for (const name of [...owned.on]) this.detach(ip, owned, name);
      this.owned.delete(ip);
      this.log(`layer2: stopped announcing ${ip}`);
    }
    this.reconcile(changed);
  }

  /** The interfaces `ip` is answered on now (sorted); empty when it is not announced anywhere. */
  interfacesOf(ip: string): string[] {
    const parsed = canonicalIP(ip);
    const owned = parsed ? this.owned.get(parsed.ip) : undefined;
    return owned ? [...owned.on].sort() : [];
  }

  /** Re-reads the interfaces now (also done every linkPollIntervalMs) and follows what changed. */
  refreshInterfaces(): void {
    if (this.closed) return;
    const links = this.readLinks();
    if (links) this.interfaces = links;
    const signature = JSON.stringify(this.interfaces);
    // Nothing changed and nothing to retry: nothing to do (this runs every few seconds, with every owned IP).
    if (signature === this.signature && !this.retry) return;
    this.signature = signature;
    this.retry = false;
    if (this.reconcile()) this.onInterfacesChanged();
  }

  /** Stops answering, cancels pending announcements and closes every socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.batchTimers) clearTimeout(t);
    this.batchTimers.clear();
    this.bursts.clear();
    for (const link of this.links.values()) this.closeLink(link);
    this.links.clear();
    this.owned.clear();
  }

  private readLinks(): NetworkInterface[] | undefined {
    try {
      return this.listInterfaces();
    } catch (e) {
      this.log(`layer2: reading the interfaces: ${describe(e)}`);
      return undefined;
    }
  }

  /**
   * Brings sockets and answered sets in line with what is owned and the interfaces there are:
   * for the IPs listed, or for everything (and every link) when none are. Returns whether any
   * IP's interfaces changed.
   */
  private reconcile(only?: readonly string[]): boolean {
    let changed = false;
    const eligible = new Map(this.interfaces.filter(isEligible).map((i) => [i.name, i]));
    // An interface gone, no longer eligible, or recreated (new index or MAC: its sockets are dead) loses everything.
    for (const [name, link] of only ? [] : this.links) {
      const now = eligible.get(name);
      if (now && now.index === link.info.index && now.mac === link.info.mac) continue;
      for (const [ip, owned] of this.owned) {
        if (!owned.on.has(name)) continue;
        this.detach(ip, owned, name);
        changed = true;
      }
      this.closeLink(link);
      this.links.delete(name);
      this.log(`layer2: ${now ? `interface ${name} changed` : `interface ${name} is gone or no longer eligible`}; its sockets are closed`);
    }
    for (const ip of only ?? this.owned.keys()) {
      const owned = this.owned.get(ip);
      if (!owned) continue;
      const targets = owned.wanted.length > 0 ? owned.wanted.filter((n) => eligible.has(n)) : [...eligible.keys()];
      for (const name of [...owned.on]) {
        if (targets.includes(name)) continue;
        this.detach(ip, owned, name);
        changed = true;
      }
      for (const name of targets) {
        if (owned.on.has(name)) continue;
        const info = eligible.get(name);
        if (!info) continue;
        if (this.attach(ip, owned, info)) changed = true;
        else this.retry = true;
      }
      const warning = targets.length === 0 ? (owned.wanted.length > 0 ? `none of ${owned.wanted.join(', ')} is up and eligible` : 'no interface is up and eligible') : undefined;
      if (warning && owned.warned !== warning) this.log(`layer2: ${ip} is not announced anywhere: ${warning}`);
      owned.warned = warning;
    }
    // The next bursts start a batch of their own.
    this.batch = undefined;
    // Sockets no IP needs any more.
    for (const [name, link] of this.links) {
      if (link.v4.size === 0 && link.arp) {
        link.arp.close();
        link.arp = undefined;
      }
      if (link.v6.size === 0 && link.ndp) {
        link.ndp.close();
        link.ndp = undefined;
      }
      if (!link.arp && !link.ndp) this.links.delete(name);
    }
    return changed;
  }

  /** Starts answering for `ip` on an interface and announces it there. False if the socket cannot be opened (retried on the next poll). */
  private attach(ip: string, owned: Owned, info: NetworkInterface): boolean {
    let link = this.links.get(info.name);
    if (!link) {
      link = { info, v4: new Set(), v6: new Set(), groups: new Map() };
      this.links.set(info.name, link);
    }
    if (owned.family === 'IPv4') {
      if (!this.ensureSocket(link, 'arp')) return false;
      link.v4.add(ip);
    } else {
      const ndp = this.ensureSocket(link, 'ndp');
      if (!ndp) return false;
      const group = solicitedNode(ip).mac;
      const members = link.groups.get(group) ?? 0;
      if (members === 0) {
        try {
          ndp.addMembership(macBytes(group));
        } catch (e) {
          this.socketError(link, 'join', e);
          return false;
        }
      }
      link.groups.set(group, members + 1);
      link.v6.add(ip);
    }
    owned.on.add(info.name);
    this.startBurst(ip, link);
    return true;
  }

  /** Stops answering for `ip` on one interface, at once. */
  private detach(ip: string, owned: Owned, name: string): void {
    owned.on.delete(name);
    const key = burstKey(ip, name);
    const burst = this.bursts.get(key);
    if (burst) burst.cancelled = true;
    this.bursts.delete(key);
    const link = this.links.get(name);
    if (!link) return;
    if (owned.family === 'IPv4') {
      link.v4.delete(ip);
      return;
    }
    if (!link.v6.delete(ip)) return;
    const group = solicitedNode(ip).mac;
    const members = (link.groups.get(group) ?? 1) - 1;
    if (members > 0) {
      link.groups.set(group, members);
      return;
    }
    link.groups.delete(group);
    try {
      link.ndp?.dropMembership(macBytes(group));
    } catch (e) {
      this.socketError(link, 'leave', e);
    }
  }

  private ensureSocket(link: Link, kind: 'arp' | 'ndp'): PacketSocket | undefined {
    const existing = link[kind];
    if (existing) return existing;
    const name = link.info.name;
    try {
      const socket = this.openSocket({
        interface: name,
        protocol: kind === 'arp' ? EtherType.arp : EtherType.ipv6,
        filter: kind === 'arp' ? ARP_REQUEST_FILTER : NEIGHBOR_SOLICITATION_FILTER,
        onFrame: (frame, type) => (kind === 'arp' ? this.onArp(link, frame, type) : this.onNdp(link, frame, type)),
        onError: (e) => this.socketError(link, 'receive', e),
      });
      link[kind] = socket;
      this.openErrors.delete(`${name}/${kind}`);
      this.log(`layer2: ${kind === 'arp' ? 'ARP' : 'NDP'} socket open on ${name} (${link.info.mac})`);
      return socket;
    } catch (e) {
      this.socketErrors.inc({ interface: name, operation: 'open' });
      const message = describe(e);
      if (this.openErrors.get(`${name}/${kind}`) !== message) {
        this.log(`layer2: cannot open the ${kind === 'arp' ? 'ARP' : 'NDP'} socket on ${name} (retrying on the next interface poll): ${message}`);
      }
      this.openErrors.set(`${name}/${kind}`, message);
      return undefined;
    }
  }

  private closeLink(link: Link): void {
    // Closing the socket leaves its multicast groups too.
    link.arp?.close();
    link.ndp?.close();
    link.arp = undefined;
    link.ndp = undefined;
    link.v4.clear();
    link.v6.clear();
    link.groups.clear();
  }

  private onArp(link: Link, frame: Buffer, packetType: number): void {
    // Our own replies and announcements, looped back to packet sockets.
    if (packetType === PacketType.outgoing) return;
    const decoded = decodeArp(frame);
    if (!decoded.ok) return this.ignore('arp', decoded.reason);
    const request = decoded.packet;
    if (request.type !== 'request') return this.ignore('arp', 'arp-reply');
    if (request.ethernet.destination !== BROADCAST_MAC && request.ethernet.destination !== link.info.mac) return this.ignore('arp', 'not-for-us');
    if (!link.v4.has(request.targetIp)) return this.ignore('arp', 'not-owned');
    if (request.senderIp === request.targetIp) return this.ignore('arp', 'gratuitous');
    this.requestsReceived.inc({ ip: request.targetIp });
    if (this.send(link, 'arp', encodeArp(arpReply(request, link.info.mac)))) this.responsesSent.inc({ ip: request.targetIp });
  }

  private onNdp(link: Link, frame: Buffer, packetType: number): void {
    if (packetType === PacketType.outgoing) return;
    const decoded = decodeNdp(frame);
    if (!decoded.ok) return this.ignore('ndp', decoded.reason);
    const solicitation = decoded.message;
    if (solicitation.type !== 'neighbor-solicitation') return this.ignore('ndp', 'not-solicitation');
    if (!isMulticastMac(frame, 0) && solicitation.ethernet.destination !== link.info.mac) return this.ignore('ndp', 'not-for-us');
    if (!link.v6.has(solicitation.target)) return this.ignore('ndp', 'not-owned');
    this.requestsReceived.inc({ ip: solicitation.target });
    if (this.send(link, 'ndp', encodeNdp(neighborAdvertisementFor(solicitation, link.info.mac)))) this.responsesSent.inc({ ip: solicitation.target });
  }

  private ignore(protocol: 'arp' | 'ndp', reason: IgnoredReason): void {
    this.framesIgnored.inc({ protocol, reason });
  }

  /**
   * Announces `ip` on `link` now and then on the schedule. Bursts started by one reconcile (an
   * agent taking over 10,000 IPs) share one timer per step of the schedule rather than having
   * three each.
   */
  private startBurst(ip: string, link: Link): void {
    const key = burstKey(ip, link.info.name);
    const previous = this.bursts.get(key);
    if (previous) previous.cancelled = true;
    // The frames of one burst are the same: encode them once.
    const burst: Burst = { key, ip, link, frames: this.gratuitousFrames(ip, link), cancelled: false };
    for (const ms of this.schedule) if (ms <= 0) this.announce(ip, link, burst.frames);
    if (!this.schedule.some((ms) => ms > 0)) return;
    this.bursts.set(key, burst);
    if (!this.batch) {
      const batch: Burst[] = [];
      this.batch = batch;
      const later = this.schedule.filter((ms) => ms > 0);
      const last = later[later.length - 1]!;
      for (const ms of later) {
        const timer = setTimeout(() => {
          this.batchTimers.delete(timer);
          for (const b of batch) {
            if (b.cancelled) continue;
            this.announce(b.ip, b.link, b.frames);
            if (ms === last && this.bursts.get(b.key) === b) this.bursts.delete(b.key);
          }
        }, ms);
        this.batchTimers.add(timer);
      }
    }
    this.batch.push(burst);
  }

  /** What announces `ip` on `link`: ARP in both forms, or one unsolicited NA. */
  private gratuitousFrames(ip: string, link: Link): Buffer[] {
    if (link.v4.has(ip)) return [encodeArp(gratuitousArp('request', link.info.mac, ip)), encodeArp(gratuitousArp('reply', link.info.mac, ip))];
    if (link.v6.has(ip)) return [encodeNdp(unsolicitedNeighborAdvertisement(link.info.mac, ip))];
    return [];
  }

  /** One gratuitous announcement of `ip` on `link`, unless it stopped being answered there. */
  private announce(ip: string, link: Link, frames = this.gratuitousFrames(ip, link)): void {
    const kind = link.v4.has(ip) ? 'arp' : link.v6.has(ip) ? 'ndp' : undefined;
    if (!kind) return;
    let sent = 0;
    for (const frame of frames) if (this.send(link, kind, frame)) sent++;
    if (sent > 0) this.gratuitousSent.inc({ ip }, sent);
  }

  /** The periodic refresh: every owned IP once on each of its interfaces. */
  private announceAll(): void {
    for (const [ip, owned] of this.owned) {
      for (const name of owned.on) {
        const link = this.links.get(name);
        if (link) this.announce(ip, link);
      }
    }
  }

  private send(link: Link, kind: 'arp' | 'ndp', frame: Buffer): boolean {
    const socket = link[kind];
    if (!socket) return false;
    try {
      socket.send(frame);
      return true;
    } catch (e) {
      this.socketError(link, 'send', e);
      return false;
    }
  }

  private socketError(link: Link, operation: 'send' | 'receive' | 'join' | 'leave', e: unknown): void {
    this.socketErrors.inc({ interface: link.info.name, operation });
    this.log(`layer2: ${operation} on ${link.info.name}: ${describe(e)}`);
  }
}

/** One IP's gratuitous announcements on one interface, still to come. */
interface Burst {
  readonly key: string;
  readonly ip: string;
  readonly link: Link;
  readonly frames: Buffer[];
  /** The IP stopped being answered there (or the burst was restarted): send no more. */
  cancelled: boolean;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The canonical text (dotted quad, RFC 5952) and family of an address, or undefined: straight from the bytes the codecs use, no bigint (the agent hands over every owned IP on every change). */
function canonicalIP(text: string): { ip: string; family: Family } | undefined {
  if (text.includes(':')) {
    const bytes = parseIPv6(text);
    return bytes && { ip: formatIPv6(bytes), family: 'IPv6' };
  }
  const bytes = parseIPv4(text);
  return bytes && { ip: `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`, family: 'IPv4' };
}

function burstKey(ip: string, name: string): string {
  return `${ip}%${name}`;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
