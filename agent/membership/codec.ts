/**
 * The membership wire format: one message per UDP datagram, at most MAX_DATAGRAM bytes,
 * authenticated with HMAC-SHA256 under the cluster's shared key. Not encrypted: names, addresses
 * and liveness are visible on the LAN, as node names and InternalIPs already are.
 *
 * ```
 *  0  magic 'ml' (0x6d 0x6c)
 *  2  version 1
 *  3  type            MessageType
 *  4  timestamp u48   sender's wall clock, ms since the epoch (replay window)
 * 10  nonce u32       sender's message counter (replay cache key with from and timestamp)
 * 14  from, to        names: u8 length + ASCII; `to` binds the packet to its recipient, so a
 *                     packet captured on its way to one node is refused by every other
 *     body            per type, below
 *     updates         u8 count, then per update: kind u8, name, incarnation u48, and
 *                     address + port (alive) or from (suspect, dead)
 *     mac             32 bytes: HMAC-SHA256(key, every byte before it)
 *
 * ping, ack, nack     seq u32
 * ping-req            seq u32, target name, address (u8 length + text), port u16
 * gossip              (nothing)
 * sync                flags u8 (bit 0: reply with yours), u8 count, per member: name, address,
 *                     port u16, incarnation u48, state u8
 * ```
 *
 * Decoding checks size, magic and version, then the MAC, and only then parses: bytes from
 * whoever lacks the key never reach the parser. Nothing here throws on input: a bad datagram
 * is a typed `Rejection` that the caller counts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** Largest datagram we send or accept: below a 1500-byte Ethernet MTU with IPv6 and UDP headers. */
export const MAX_DATAGRAM = 1400;
/** Bytes of the MAC that ends every datagram. */
export const MAC_LENGTH = 32;
/** Largest incarnation the wire carries (u48). */
export const MAX_INCARNATION = 2 ** 48 - 1;
/** Most updates or sync records in one datagram (u8 count). */
export const MAX_ITEMS = 255;
/** A node name: Kubernetes' DNS subdomain characters (uppercase tolerated), 1..253 bytes. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

const MAGIC0 = 0x6d;
const MAGIC1 = 0x6c;
const VERSION = 1;
/** Bytes before `from`: magic, version, type, timestamp, nonce. */
const FIXED_HEADER = 14;

/** Message type codes on the wire. */
export const MessageType = { ping: 1, ack: 2, nack: 3, 'ping-req': 4, gossip: 5, sync: 6 } as const;
const TYPE_NAMES = ['', 'ping', 'ack', 'nack', 'ping-req', 'gossip', 'sync'] as const;

/** Update kinds on the wire. */
const UpdateKind = { alive: 1, suspect: 2, dead: 3 } as const;
/** Member states in sync records. */
const StateCode = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
const STATE_NAMES = ['alive', 'suspect', 'dead', 'left'] as const;

/** A member's liveness as one node sees it. `left` is dead by its own graceful leave. */
export type MemberState = (typeof STATE_NAMES)[number];

/**
 * A piece of membership news, piggybacked on any message (SWIM's dissemination component).
 * A `dead` update whose `from` is the member itself is a graceful leave.
 */
export type Update =
  | { type: 'alive'; name: string; incarnation: number; address: string; port: number }
  | { type: 'suspect'; name: string; incarnation: number; from: string }
  | { type: 'dead'; name: string; incarnation: number; from: string };

/** One member in a full-state exchange (join, anti-entropy). */
export interface MemberRecord {
  name: string;
  address: string;
  port: number;
  incarnation: number;
  state: MemberState;
}

/** The protocol's messages; every one carries piggybacked updates. */
export type Message =
  | { type: 'ping'; seq: number; updates: Update[] }
  | { type: 'ack'; seq: number; updates: Update[] }
  | { type: 'nack'; seq: number; updates: Update[] }
  | { type: 'ping-req'; seq: number; target: string; address: string; port: number; updates: Update[] }
  | { type: 'gossip'; updates: Update[] }
  | { type: 'sync'; reply: boolean; members: MemberRecord[]; updates: Update[] };

/** A message with its envelope, as it travels. */
export interface Packet {
  /** Sender's node name. */
  from: string;
  /** Recipient's node name. */
  to: string;
  /** Sender's wall clock, ms since the epoch. */
  timestamp: number;
  /** Sender's message counter (u32, wraps). */
  nonce: number;
  message: Message;
}

/** Why a datagram was refused; the label of `metallb_membership_messages_rejected_total`. */
export type RejectReason =
  | 'too-short'
  | 'too-long'
  | 'bad-magic'
  | 'bad-version'
  | 'bad-mac'
  | 'unknown-type'
  | 'truncated'
  | 'trailing-bytes'
  | 'bad-name'
  | 'bad-address'
  | 'bad-port'
  | 'bad-code'
  // Decided by the receiver after decoding (ReplayGuard, Membership):
  | 'stale'
  | 'replay'
  | 'misdirected'
  | 'from-self';

/** Every RejectReason, for metrics that start at zero. */
export const REJECT_REASONS: readonly RejectReason[] = [
  'too-short',
  'too-long',
  'bad-magic',
  'bad-version',
  'bad-mac',
  'unknown-type',
  'truncated',
  'trailing-bytes',
  'bad-name',
  'bad-address',
  'bad-port',
  'bad-code',
  'stale',
  'replay',
  'misdirected',
  'from-self',
];

/** A refused datagram. */
export interface Rejection {
  reason: RejectReason;
  detail: string;
}

export type DecodeResult = { ok: true; packet: Packet } | { ok: false; rejection: Rejection };

/** True for a name the wire can carry. */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}

// ---- lengths -------------------------------------------------------------------------------

/** Encoded bytes of one update. */
export function updateLength(u: Update): number {
  const head = 1 + 1 + u.name.length + 6;
  return u.type === 'alive' ? head + 1 + u.address.length + 2 : head + 1 + u.from.length;
}

/** Encoded bytes of one sync record. */
export function recordLength(r: MemberRecord): number {
  return 1 + r.name.length + 1 + r.address.length + 2 + 6 + 1;
}

/** Encoded bytes of a whole datagram (MAC included) for this envelope and message. */
export function packetLength(from: string, to: string, message: Message): number {
  let n = FIXED_HEADER + 1 + from.length + 1 + to.length + bodyLength(message) + 1 + MAC_LENGTH;
  for (const u of message.updates) n += updateLength(u);
  return n;
}

function bodyLength(m: Message): number {
  switch (m.type) {
    case 'ping':
    case 'ack':
    case 'nack':
      return 4;
    case 'ping-req':
      return 4 + 1 + m.target.length + 1 + m.address.length + 2;
    case 'gossip':
      return 0;
    case 'sync': {
      let n = 2;
      for (const r of m.members) n += recordLength(r);
      return n;
    }
  }
}

// ---- encoding ------------------------------------------------------------------------------

/**
 * The datagram for `packet`, signed with `key`. Throws RangeError if the packet breaks a bound
 * (too long, invalid name or address): the protocol never builds one, so that is a bug.
 */
export function encodePacket(packet: Packet, key: Buffer): Buffer {
  const { message } = packet;
  const length = packetLength(packet.from, packet.to, message);
  if (length > MAX_DATAGRAM) throw new RangeError(`membership: ${message.type} packet of ${length} bytes exceeds ${MAX_DATAGRAM}`);
  if (message.updates.length > MAX_ITEMS) throw new RangeError(`membership: ${message.updates.length} updates in one packet`);
  const w = new Writer(Buffer.alloc(length));
  w.u8(MAGIC0);
  w.u8(MAGIC1);
  w.u8(VERSION);
  w.u8(MessageType[message.type]);
  w.u48(packet.timestamp);
  w.u32(packet.nonce >>> 0);
  w.name(packet.from);
  w.name(packet.to);
  switch (message.type) {
    case 'ping':
    case 'ack':
    case 'nack':
      w.u32(message.seq);
      break;
    case 'ping-req':
      w.u32(message.seq);
      w.name(message.target);
      w.address(message.address);
      w.port(message.port);
      break;
    case 'gossip':
      break;
    case 'sync':
      if (message.members.length > MAX_ITEMS) throw new RangeError(`membership: ${message.members.length} sync records in one packet`);
      w.u8(message.reply ? 1 : 0);
      w.u8(message.members.length);
      for (const r of message.members) {
        w.name(r.name);
        w.address(r.address);
        w.port(r.port);
        w.u48(r.incarnation);
        w.u8(StateCode[r.state]);
      }
      break;
  }
  w.u8(message.updates.length);
  for (const u of message.updates) {
    w.u8(UpdateKind[u.type]);
    w.name(u.name);
    w.u48(u.incarnation);
    if (u.type === 'alive') {
      w.address(u.address);
      w.port(u.port);
    } else {
      w.name(u.from);
    }
  }
  const body = w.buf.subarray(0, w.at);
  createHmac('sha256', key).update(body).digest().copy(w.buf, w.at);
  return w.buf;
}

class Writer {
  at = 0;
  constructor(readonly buf: Buffer) {}
  u8(v: number): void {
    this.buf.writeUInt8(v, this.at);
    this.at += 1;
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.at);
    this.at += 2;
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v, this.at);
    this.at += 4;
  }
  u48(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > MAX_INCARNATION) throw new RangeError(`membership: ${v} does not fit 48 bits`);
    this.buf.writeUIntBE(v, this.at, 6);
    this.at += 6;
  }
  name(s: string): void {
    if (!NAME.test(s)) throw new RangeError(`membership: invalid name ${JSON.stringify(s)}`);
    this.text(s);
  }
  address(s: string): void {
    if (isIP(s) === 0) throw new RangeError(`membership: invalid address ${JSON.stringify(s)}`);
    this.text(s);
  }
  port(p: number): void {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`membership: invalid port ${p}`);
    this.u16(p);
  }
  private text(s: string): void {
    this.u8(s.length);
    this.at += this.buf.write(s, this.at, 'latin1');
  }
}

// ---- decoding ------------------------------------------------------------------------------

/** Thrown inside the reader only; decodePacket turns it into a Rejection. */
class Refused {
  constructor(readonly rejection: Rejection) {}
}

function refuse(reason: RejectReason, detail: string): never {
  throw new Refused({ reason, detail });
}

class Reader {
  at: number;
  constructor(
    private readonly buf: Buffer,
    at: number,
    private readonly end: number,
  ) {
    this.at = at;
  }
  private need(n: number, what: string): void {
    if (this.at + n > this.end) refuse('truncated', `${what} at byte ${this.at} runs past the end (${this.end})`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.at++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  u48(what: string): number {
    this.need(6, what);
    const v = this.buf.readUIntBE(this.at, 6);
    this.at += 6;
    return v;
  }
  private text(what: string): string {
    const n = this.u8(`${what} length`);
    this.need(n, what);
    const s = this.buf.toString('latin1', this.at, this.at + n);
    this.at += n;
    return s;
  }
  name(what: string): string {
    const s = this.text(what);
    if (!NAME.test(s)) refuse('bad-name', `${what} ${JSON.stringify(s.slice(0, 64))} is not a node name`);
    return s;
  }
  address(what: string): string {
    const s = this.text(what);
    if (s.length > 45 || isIP(s) === 0) refuse('bad-address', `${what} ${JSON.stringify(s.slice(0, 64))} is not an IP address`);
    return s;
  }
  port(what: string): number {
    const p = this.u16(what);
    if (p === 0) refuse('bad-port', `${what} is 0`);
    return p;
  }
}

/**
 * The packet in `buf` if it is well formed and its MAC verifies under one of `keys` (the first
 * signs; the others let a new key roll out node by node). Never throws.
 */
export function decodePacket(buf: Buffer, keys: readonly Buffer[]): DecodeResult {
  try {
    return { ok: true, packet: decode(buf, keys) };
  } catch (e) {
    if (e instanceof Refused) return { ok: false, rejection: e.rejection };
    // A reader bug must not kill the agent; it still refuses the datagram.
    return { ok: false, rejection: { reason: 'truncated', detail: `decoder error: ${String(e)}` } };
  }
}

function decode(buf: Buffer, keys: readonly Buffer[]): Packet {
  if (buf.length > MAX_DATAGRAM) refuse('too-long', `${buf.length} bytes, at most ${MAX_DATAGRAM}`);
  // Header, two one-byte names, the update count and the MAC.
  if (buf.length < FIXED_HEADER + 4 + 1 + MAC_LENGTH) refuse('too-short', `${buf.length} bytes`);
  if (buf[0] !== MAGIC0 || buf[1] !== MAGIC1) refuse('bad-magic', `starts ${buf.subarray(0, 2).toString('hex')}`);
  if (buf[2] !== VERSION) refuse('bad-version', `version ${buf[2]}, we speak ${VERSION}`);
  const end = buf.length - MAC_LENGTH;
  const body = buf.subarray(0, end);
  const mac = buf.subarray(end);
  if (!keys.some((key) => timingSafeEqual(createHmac('sha256', key).update(body).digest(), mac))) refuse('bad-mac', 'no key verifies the MAC');

  const r = new Reader(buf, 3, end);
  const code = r.u8('type');
  const type = TYPE_NAMES[code];
  if (!type) refuse('unknown-type', `type ${code}`);
  const timestamp = r.u48('timestamp');
  const nonce = r.u32('nonce');
  const from = r.name('from');
  const to = r.name('to');
  let message: Message;
  switch (type) {
    case 'ping':
    case 'ack':
    case 'nack':
      message = { type, seq: r.u32('seq'), updates: [] };
      break;
    case 'ping-req':
      message = { type, seq: r.u32('seq'), target: r.name('target'), address: r.address('target address'), port: r.port('target port'), updates: [] };
      break;
    case 'gossip':
      message = { type, updates: [] };
      break;
    case 'sync': {
      const flags = r.u8('sync flags');
      if ((flags & ~1) !== 0) refuse('bad-code', `sync flags ${flags}`);
      const count = r.u8('sync count');
      const members: MemberRecord[] = [];
      for (let i = 0; i < count; i++) {
        const name = r.name(`member[${i}] name`);
        const address = r.address(`member[${i}] address`);
        const port = r.port(`member[${i}] port`);
        const incarnation = r.u48(`member[${i}] incarnation`);
        const code = r.u8(`member[${i}] state`);
        const state = STATE_NAMES[code];
        if (!state) refuse('bad-code', `member[${i}] state ${code}`);
        members.push({ name, address, port, incarnation, state });
      }
      message = { type, reply: (flags & 1) !== 0, members, updates: [] };
      break;
    }
  }
  const count = r.u8('update count');
  for (let i = 0; i < count; i++) {
    const kind = r.u8(`update[${i}] kind`);
    const name = r.name(`update[${i}] name`);
    const incarnation = r.u48(`update[${i}] incarnation`);
    if (kind === UpdateKind.alive) {
      message.updates.push({ type: 'alive', name, incarnation, address: r.address(`update[${i}] address`), port: r.port(`update[${i}] port`) });
    } else if (kind === UpdateKind.suspect || kind === UpdateKind.dead) {
      message.updates.push({ type: kind === UpdateKind.suspect ? 'suspect' : 'dead', name, incarnation, from: r.name(`update[${i}] from`) });
    } else {
      refuse('bad-code', `update[${i}] kind ${kind}`);
    }
  }
  if (r.at !== end) refuse('trailing-bytes', `${end - r.at} bytes after the last update`);
  return { from, to, timestamp, nonce, message };
}

// ---- replay --------------------------------------------------------------------------------

/**
 * Refuses a packet whose timestamp is outside ±windowMs of our wall clock, or that was already
 * accepted (same sender, timestamp and nonce) within the window. Only packets whose MAC
 * verified come here, so only a key holder can fill the cache; it is bounded anyway (oldest
 * entries go first). Pure: the time is passed in.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  private lastPrune = -Infinity;

  constructor(
    readonly windowMs = 30_000,
    private readonly maxEntries = 100_000,
  ) {}

  /** Undefined if `packet` is fresh (and remembers it), else why not. */
  check(packet: Pick<Packet, 'from' | 'timestamp' | 'nonce'>, now: number): Rejection | undefined {
    const skew = packet.timestamp - now;
    if (Math.abs(skew) > this.windowMs) {
      return { reason: 'stale', detail: `from ${packet.from}: timestamp ${skew > 0 ? 'ahead of' : 'behind'} our clock by ${Math.abs(skew)} ms (window ${this.windowMs} ms)` };
    }
    const key = `${packet.from}\0${packet.timestamp}\0${packet.nonce}`;
    if (this.seen.has(key)) return { reason: 'replay', detail: `from ${packet.from}: timestamp ${packet.timestamp} nonce ${packet.nonce} seen before` };
    if (now - this.lastPrune > this.windowMs / 4) this.prune(now);
    if (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.set(key, packet.timestamp);
    return undefined;
  }

  /** Entries held (for tests). */
  get size(): number {
    return this.seen.size;
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [key, timestamp] of this.seen) if (timestamp < now - this.windowMs) this.seen.delete(key);
  }
}
