/**
 * SWIM membership as a pure state machine (after HashiCorp memberlist's state.go and
 * suspicion.go, with Lifeguard's local health): `handle(event, now)` returns what to send and
 * what happened. No timers, no sockets, no clock, no Math.random: the caller passes the time in,
 * asks `nextDeadline()` when to call again with a `tick`, and gives a random function at
 * construction. Membership (index.ts) is the edge that runs it over UDP.
 *
 * One probe per protocol period: ping the next member of a shuffled round-robin list; no ack
 * within the probe timeout -> ask k others to ping it (ping-req); still none by the end of the
 * period -> suspect it. A suspicion becomes `dead` after a timeout that starts at
 * suspicionMaxMs and shrinks towards suspicionMinMs as other members independently suspect the
 * same node (memberlist's formula), unless the suspect refutes first by announcing itself alive
 * with a higher incarnation. News travels piggybacked on every message and in small gossip
 * rounds, each item sent a bounded number of times (retransmitMult * ceil(log10(n + 1))).
 */
import { MAX_DATAGRAM, MAX_INCARNATION, MAX_ITEMS, packetLength, recordLength, updateLength } from './codec.js';
import type { MemberRecord, MemberState, Message, Update } from './codec.js';

export type { MemberRecord, MemberState, Message, Update } from './codec.js';

/** Where a member listens. */
export interface Endpoint {
  address: string;
  port: number;
}

/** A node to join through: the agent's Node objects, by name and InternalIP. */
export interface Seed extends Endpoint {
  name: string;
}

/** The protocol's clocks and fan-outs. Every field is tunable; see DEFAULT_TIMINGS. */
export interface Timings {
  /** SWIM's protocol period: one probe starts every interval (times the local health factor). */
  probeIntervalMs: number;
  /** Wait for a direct ack before asking others to probe (times the local health factor). */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly (SWIM's k). */
  indirectChecks: number;
  /** Shortest suspicion: reached once `suspicionConfirmations` others have suspected too. */
  suspicionMinMs: number;
  /** Longest suspicion: a suspect nobody else confirms is declared dead after this. */
  suspicionMaxMs: number;
  /** Independent suspicions that bring the timeout down to the minimum (capped at n - 2). */
  suspicionConfirmations: number;
  /** Each update is sent retransmitMult * ceil(log10(n + 1)) times. */
  retransmitMult: number;
  /** A gossip round sends pending updates to `gossipNodes` random members. */
  gossipIntervalMs: number;
  gossipNodes: number;
  /** Members dead for less than this still get gossip, so that a falsely dead one learns it and refutes. */
  gossipToTheDeadMs: number;
  /** Full-state exchange with one random member (anti-entropy). */
  syncIntervalMs: number;
  /** Seeds that are not live members are asked to sync (join) this often. */
  joinIntervalMs: number;
  /** Dead and left members are forgotten after this. */
  deadReclaimMs: number;
  /** Lifeguard: the local health score scales probe timing by (score + 1), up to this score. */
  maxHealthScore: number;
}

/** Defaults for a sub-second failover on a LAN (MetalLB's memberlist uses 1 s probes and takes about 3 s). */
export const DEFAULT_TIMINGS: Readonly<Timings> = Object.freeze({
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  indirectChecks: 3,
  suspicionMinMs: 200,
  suspicionMaxMs: 500,
  suspicionConfirmations: 3,
  retransmitMult: 4,
  gossipIntervalMs: 100,
  gossipNodes: 3,
  gossipToTheDeadMs: 5_000,
  syncIntervalMs: 15_000,
  joinIntervalMs: 1_000,
  deadReclaimMs: 60_000,
  maxHealthScore: 8,
});

/** What the machine is told. */
export type Event =
  /** Begin: arm the timers, join the seeds. */
  | { type: 'start' }
  /** Time passed: act on whatever fell due. */
  | { type: 'tick' }
  /** An authenticated message from node `from`, whose datagram came from `source`. */
  | { type: 'receive'; from: string; source: Endpoint; message: Message }
  /** The nodes to join through (replaces the previous list). */
  | { type: 'seeds'; seeds: readonly Seed[] }
  /** Our own address changed (or became known). */
  | { type: 'address'; address: string; port: number }
  /** Graceful leave: tell every live member, then stay silent. */
  | { type: 'leave' };

/** What the machine asks for, and what it reports. */
export type Action =
  /** Send `message` to node `to` at `endpoint`. */
  | { type: 'send'; to: string; endpoint: Endpoint; message: Message }
  /** The set of live members (alive()) changed. */
  | { type: 'changed' }
  /** A member's state changed; `previous` undefined means newly known; `by` who suspected or declared it dead. */
  | { type: 'member'; name: string; state: MemberState; previous: MemberState | undefined; incarnation: number; by?: string }
  /** We were suspected or declared dead and answered with a higher incarnation. */
  | { type: 'refuted'; incarnation: number; accuser: string }
  /** A probe ended. */
  | { type: 'probe'; target: string; result: 'ack' | 'failed'; indirect: boolean }
  /** The local health score changed (Lifeguard); timings are scaled by score + 1. */
  | { type: 'health'; score: number };

/** A member as this node sees it. */
export interface MemberView extends MemberRecord {
  /** `now` of the last state change. */
  since: number;
}

interface Member extends MemberView {
  suspicion?: Suspicion;
}

/** memberlist's suspicion: a deadline that shrinks as distinct confirmers arrive. */
interface Suspicion {
  start: number;
  /** The first accuser and every confirmer. */
  confirmers: Set<string>;
  /** Confirmations that bring the timeout to its minimum. */
  k: number;
  deadline: number;
}

/** The probe of the current protocol period. */
interface Probe {
  target: string;
  seq: number;
  start: number;
  indirectAt: number;
  endAt: number;
  indirect: boolean;
  acked: boolean;
  expectedNacks: number;
  nacks: number;
}

/** A ping we send for another member's ping-req. */
interface Relay {
  origin: string;
  endpoint: Endpoint;
  originSeq: number;
  nackAt: number;
}

interface Queued {
  update: Update;
  transmits: number;
  id: number;
}

export interface ProtocolOptions {
  /** Our node name. */
  name: string;
  /** Our address as others reach it; '' while unknown (we probe but do not announce ourselves). */
  address: string;
  port: number;
  /** Starting incarnation: the edge passes wall-clock ms, so a restarted node outranks its former self. */
  incarnation: number;
  /** Uniform in [0, 1). */
  random: () => number;
  timings?: Partial<Timings>;
}

/** Relays in flight at most (each costs one entry until its ack or nack). */
const MAX_RELAYS = 1024;
/** The relay answers with a nack a little before the origin's indirect window ends. */
const NACK_FRACTION = 0.8;

/** SWIM membership of one node. */
export class Protocol {
  readonly name: string;
  readonly timings: Readonly<Timings>;
  private address: string;
  private port: number;
  private incarnation: number;
  private readonly random: () => number;
  private readonly known = new Map<string, Member>();
  private readonly queue = new Map<string, Queued>();
  private queued = 0;
  private seeds = new Map<string, Seed>();
  private probeOrder: string[] = [];
  private probeIndex = 0;
  /** Members others suspect: probed next, so that our own confirmation comes quickly. */
  private urgent: string[] = [];
  private probe: Probe | undefined;
  private readonly relays = new Map<number, Relay>();
  private seq: number;
  private health = 0;
  private started = false;
  private leaving = false;
  private nextProbeAt = Infinity;
  private nextGossipAt = Infinity;
  private nextSyncAt = Infinity;
  private nextJoinAt = Infinity;
  // Per handle() call.
  private now = 0;
  private out: Action[] = [];
  private changed = false;
  /** News of our own making (a suspicion, a death, a refutation) goes out at once, not at the next gossip round. */
  private gossipNow = false;

  constructor(options: ProtocolOptions) {
    this.name = options.name;
    this.address = options.address;
    this.port = options.port;
    this.incarnation = Math.min(MAX_INCARNATION, Math.max(0, Math.floor(options.incarnation)));
    this.random = options.random;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.seq = Math.floor(this.random() * 2 ** 32);
  }

  /** The one entry point: apply `event` at time `now` (monotonic ms); returns the actions to take. */
  handle(event: Event, now: number): Action[] {
    this.now = now;
    this.out = [];
    this.changed = false;
    this.gossipNow = false;
    if (!this.leaving) {
      switch (event.type) {
        case 'start':
          this.start();
          break;
        case 'tick':
          if (this.started) this.tick();
          break;
        case 'receive':
          this.receive(event.from, event.source, event.message);
          break;
        case 'seeds':
          this.setSeeds(event.seeds);
          break;
        case 'address':
          this.setAddress(event.address, event.port);
          break;
        case 'leave':
          this.leave();
          break;
      }
    }
    if (this.gossipNow && this.started && !this.leaving) this.gossip();
    if (this.changed) this.out.push({ type: 'changed' });
    const out = this.out;
    this.out = [];
    return out;
  }

  /** When to call handle({ type: 'tick' }) next; Infinity before start and after leave. */
  nextDeadline(): number {
    if (!this.started || this.leaving) return Infinity;
    let d = Math.min(this.nextGossipAt, this.nextSyncAt, this.nextJoinAt);
    const p = this.probe;
    if (p) d = Math.min(d, p.indirect || p.acked ? p.endAt : Math.min(p.indirectAt, p.endAt));
    else d = Math.min(d, this.nextProbeAt);
    for (const r of this.relays.values()) d = Math.min(d, r.nackAt);
    for (const m of this.known.values()) if (m.suspicion) d = Math.min(d, m.suspicion.deadline);
    return d;
  }

  /** Names of the live members (alive or suspect), ourselves included. */
  alive(): Set<string> {
    const names = new Set<string>([this.name]);
    for (const m of this.known.values()) if (isLive(m.state)) names.add(m.name);
    return names;
  }

  /** Every member we know, ourselves first. */
  members(): MemberView[] {
    const self: MemberView = { name: this.name, address: this.address, port: this.port, incarnation: this.incarnation, state: this.leaving ? 'left' : 'alive', since: 0 };
    return [self, ...[...this.known.values()].map(({ name, address, port, incarnation, state, since }) => ({ name, address, port, incarnation, state, since }))];
  }

  /** Our incarnation now. */
  get selfIncarnation(): number {
    return this.incarnation;
  }

  /** Lifeguard's local health score (0 = healthy). */
  get healthScore(): number {
    return this.health;
  }

  // ---- events ------------------------------------------------------------------------------

  private start(): void {
    if (this.started) return;
    this.started = true;
    const t = this.timings;
    // Spread the first probe and gossip over a period, so that nodes started together do not
    // probe in lockstep.
    this.nextProbeAt = this.now + this.random() * t.probeIntervalMs;
    this.nextGossipAt = this.now + this.random() * t.gossipIntervalMs;
    this.nextSyncAt = this.now + t.syncIntervalMs * (0.5 + this.random());
    this.nextJoinAt = this.now + t.joinIntervalMs;
    if (this.address) this.enqueue(this.selfAlive());
    this.join(this.seeds.values());
  }

  private tick(): void {
    const now = this.now;
    const t = this.timings;
    for (const m of this.known.values()) {
      if (m.state === 'suspect' && m.suspicion && m.suspicion.deadline <= now) this.deadNode({ name: m.name, incarnation: m.incarnation, from: this.name });
    }
    for (const [seq, r] of this.relays) {
      if (r.nackAt > now) continue;
      this.relays.delete(seq);
      this.send(r.origin, r.endpoint, { type: 'nack', seq: r.originSeq, updates: [] });
    }
    const p = this.probe;
    if (p && !p.acked && !p.indirect && now >= p.indirectAt) this.probeIndirectly(p);
    if (p && now >= p.endAt) this.endProbe(p);
    if (!this.probe && now >= this.nextProbeAt) this.startProbe();
    if (now >= this.nextGossipAt) {
      this.nextGossipAt = now + t.gossipIntervalMs;
      this.reap();
      this.gossip();
    }
    if (now >= this.nextSyncAt) {
      this.nextSyncAt = now + t.syncIntervalMs * (0.5 + this.random());
      const live = [...this.known.values()].filter((m) => m.state === 'alive');
      const peer = live[Math.floor(this.random() * live.length)];
      if (peer) this.sendSync(peer.name, peer, true);
    }
    if (now >= this.nextJoinAt) {
      this.nextJoinAt = now + t.joinIntervalMs;
      this.join(this.seeds.values());
    }
  }

  private receive(from: string, source: Endpoint, message: Message): void {
    if (from === this.name) return;
    for (const u of message.updates) this.apply(u);
    switch (message.type) {
      case 'ping':
        this.send(from, source, { type: 'ack', seq: message.seq, updates: [] });
        break;
      case 'ack':
        this.onAck(message.seq);
        break;
      case 'nack':
        if (this.probe && this.probe.seq === message.seq) this.probe.nacks++;
        break;
      case 'ping-req': {
        if (message.target === this.name) {
          // Asked to probe ourselves (the origin's list is stale about our name): answer directly.
          this.send(from, source, { type: 'ack', seq: message.seq, updates: [] });
          break;
        }
        if (this.relays.size >= MAX_RELAYS) break;
        const seq = this.nextSeq();
        this.relays.set(seq, { origin: from, endpoint: source, originSeq: message.seq, nackAt: this.now + this.timings.probeTimeoutMs * NACK_FRACTION });
        this.send(message.target, { address: message.address, port: message.port }, { type: 'ping', seq, updates: [] });
        break;
      }
      case 'gossip':
        break;
      case 'sync':
        for (const r of message.members) this.merge(r, from);
        if (message.reply) this.sendSync(from, source, false);
        break;
    }
    // Someone else suspects a member: if this period's probe is already answered, probe the
    // suspect now, so that our confirmation (or its ack) comes within one probe rather than two.
    if (this.started && this.urgent.length > 0 && (!this.probe || this.probe.acked)) {
      if (this.probe) this.endProbe(this.probe);
      this.startProbe();
    }
    // A member we hold dead is talking to us: tell it, so that it refutes now rather than when
    // gossip happens to reach it.
    const m = this.known.get(from);
    if (m && !isLive(m.state)) {
      this.send(from, source, { type: 'gossip', updates: [{ type: 'dead', name: m.name, incarnation: m.incarnation, from: m.state === 'left' ? m.name : this.name }] });
    }
  }

  private setSeeds(seeds: readonly Seed[]): void {
    const previous = this.seeds;
    this.seeds = new Map();
    for (const s of seeds) if (s.name !== this.name) this.seeds.set(s.name, { name: s.name, address: s.address, port: s.port });
    if (!this.started) return;
    // Join new seeds at once; the others wait for the join timer, so that an agent calling
    // this on every Node update does not flood.
    const fresh = [...this.seeds.values()].filter((s) => {
      const p = previous.get(s.name);
      return !p || p.address !== s.address || p.port !== s.port;
    });
    this.join(fresh);
  }

  private setAddress(address: string, port: number): void {
    if (address === this.address && port === this.port) return;
    this.address = address;
    this.port = port;
    if (!this.started) return;
    // A new incarnation, so that the new address wins over the old everywhere.
    this.incarnation = Math.min(MAX_INCARNATION, this.incarnation + 1);
    this.enqueue(this.selfAlive());
    this.join(this.seeds.values());
  }

  private leave(): void {
    const wasStarted = this.started;
    this.leaving = true;
    this.started = false;
    this.probe = undefined;
    if (!wasStarted || !this.address) return;
    // Sent to every live member directly, not gossiped: they should drop us at once.
    const farewell: Update = { type: 'dead', name: this.name, incarnation: this.incarnation, from: this.name };
    for (const m of this.known.values()) {
      if (isLive(m.state)) this.out.push({ type: 'send', to: m.name, endpoint: { address: m.address, port: m.port }, message: { type: 'gossip', updates: [farewell] } });
    }
  }

  // ---- probing -----------------------------------------------------------------------------

  private scaled(ms: number): number {
    return ms * (this.health + 1);
  }

  private startProbe(): void {
    const t = this.timings;
    const m = this.nextTarget();
    if (!m) {
      this.nextProbeAt = this.now + t.probeIntervalMs;
      return;
    }
    const seq = this.nextSeq();
    this.probe = {
      target: m.name,
      seq,
      start: this.now,
      indirectAt: this.now + this.scaled(t.probeTimeoutMs),
      endAt: this.now + this.scaled(t.probeIntervalMs),
      indirect: false,
      acked: false,
      expectedNacks: 0,
      nacks: 0,
    };
    // Lifeguard's buddy system: a suspect we probe hears that it is suspected, so it can refute.
    const updates: Update[] = m.state === 'suspect' ? [{ type: 'suspect', name: m.name, incarnation: m.incarnation, from: this.name }] : [];
    this.send(m.name, m, { type: 'ping', seq, updates });
  }

  private probeIndirectly(p: Probe): void {
    const t = this.timings;
    p.indirect = true;
    const target = this.known.get(p.target);
    if (!target) return;
    const helpers = [...this.known.values()].filter((m) => m.state === 'alive' && m.name !== p.target);
    const chosen = this.pick(helpers, t.indirectChecks);
    for (const h of chosen) this.send(h.name, h, { type: 'ping-req', seq: p.seq, target: target.name, address: target.address, port: target.port, updates: [] });
    p.expectedNacks = chosen.length;
    // If this tick came late (a stalled event loop), the helpers still get their whole window.
    p.endAt = Math.max(p.endAt, this.now + this.scaled(t.probeIntervalMs - t.probeTimeoutMs));
  }

  private onAck(seq: number): void {
    const p = this.probe;
    if (p && p.seq === seq) {
      if (p.acked) return;
      p.acked = true;
      this.out.push({ type: 'probe', target: p.target, result: 'ack', indirect: p.indirect });
      this.adjustHealth(-1);
      return;
    }
    const r = this.relays.get(seq);
    if (r) {
      this.relays.delete(seq);
      this.send(r.origin, r.endpoint, { type: 'ack', seq: r.originSeq, updates: [] });
    }
  }

  private endProbe(p: Probe): void {
    this.probe = undefined;
    this.nextProbeAt = this.now;
    if (p.acked) return;
    this.out.push({ type: 'probe', target: p.target, result: 'failed', indirect: p.indirect });
    // Lifeguard: helpers that did not even nack suggest that our own network or process is
    // the slow one, so we slow down rather than accuse.
    this.adjustHealth(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1);
    const m = this.known.get(p.target);
    if (m && isLive(m.state)) this.suspectNode({ name: m.name, incarnation: m.incarnation, from: this.name });
  }

  private nextTarget(): Member | undefined {
    while (this.urgent.length > 0) {
      const m = this.known.get(this.urgent.shift()!);
      if (m && m.state === 'suspect') return m;
    }
    for (let tries = 0; tries <= 2 * this.probeOrder.length + 1; tries++) {
      if (this.probeIndex >= this.probeOrder.length) {
        this.probeOrder = this.shuffle([...this.known.keys()]);
        this.probeIndex = 0;
        if (this.probeOrder.length === 0) return undefined;
      }
      const m = this.known.get(this.probeOrder[this.probeIndex++]!);
      if (m && isLive(m.state)) return m;
    }
    return undefined;
  }

  private adjustHealth(delta: number): void {
    const next = Math.max(0, Math.min(this.timings.maxHealthScore, this.health + delta));
    if (next === this.health) return;
    this.health = next;
    this.out.push({ type: 'health', score: next });
  }

  // ---- membership rules (memberlist's aliveNode, suspectNode, deadNode) ---------------------

  private apply(u: Update): void {
    if (u.type === 'alive') this.aliveNode(u);
    else if (u.type === 'suspect') this.suspectNode(u);
    else this.deadNode(u);
  }

  /** A sync record: alive as alive; left as a leave; dead or suspect only as a suspicion, so the member may still refute. */
  private merge(r: MemberRecord, from: string): void {
    if (r.state === 'alive') this.aliveNode({ name: r.name, incarnation: r.incarnation, address: r.address, port: r.port });
    else if (r.state === 'left') this.deadNode({ name: r.name, incarnation: r.incarnation, from: r.name });
    else this.suspectNode({ name: r.name, incarnation: r.incarnation, from });
  }

  private aliveNode(a: { name: string; incarnation: number; address: string; port: number }): void {
    if (a.name === this.name) {
      // Someone holds a newer (or a different) picture of us: outrank it.
      if (a.incarnation > this.incarnation || (a.incarnation === this.incarnation && (a.address !== this.address || a.port !== this.port))) this.refute(a.incarnation, a.name);
      return;
    }
    const update: Update = { type: 'alive', name: a.name, incarnation: a.incarnation, address: a.address, port: a.port };
    const m = this.known.get(a.name);
    if (!m) {
      this.known.set(a.name, { name: a.name, address: a.address, port: a.port, incarnation: a.incarnation, state: 'alive', since: this.now });
      // Into the probe list at a random place still ahead of us in this round.
      const at = this.probeIndex + Math.floor(this.random() * (this.probeOrder.length - this.probeIndex + 1));
      this.probeOrder.splice(at, 0, a.name);
      this.enqueue(update);
      this.changed = true;
      this.out.push({ type: 'member', name: a.name, state: 'alive', previous: undefined, incarnation: a.incarnation });
      return;
    }
    // SWIM: alive overrides suspect or dead only with a higher incarnation.
    if (a.incarnation <= m.incarnation) return;
    const previous = m.state;
    m.address = a.address;
    m.port = a.port;
    m.incarnation = a.incarnation;
    m.state = 'alive';
    m.since = this.now;
    m.suspicion = undefined;
    this.enqueue(update);
    if (previous !== 'alive') {
      if (!isLive(previous)) this.changed = true;
      this.out.push({ type: 'member', name: a.name, state: 'alive', previous, incarnation: a.incarnation });
    }
  }

  private suspectNode(s: { name: string; incarnation: number; from: string }): void {
    if (s.name === this.name) {
      if (s.incarnation >= this.incarnation) {
        this.refute(s.incarnation, s.from);
        this.adjustHealth(1);
      }
      return;
    }
    const m = this.known.get(s.name);
    if (!m || s.incarnation < m.incarnation) return;
    if (m.state === 'suspect' && m.suspicion) {
      if (this.confirm(m.suspicion, s.from)) this.enqueue({ type: 'suspect', name: m.name, incarnation: m.incarnation, from: s.from });
      return;
    }
    if (m.state !== 'alive') return;
    const t = this.timings;
    const k = Math.max(0, Math.min(t.suspicionConfirmations, this.liveCount() - 2));
    m.state = 'suspect';
    m.incarnation = s.incarnation;
    m.since = this.now;
    m.suspicion = { start: this.now, confirmers: new Set([s.from]), k, deadline: this.now + this.suspicionTimeout(0, k) };
    this.enqueue({ type: 'suspect', name: m.name, incarnation: m.incarnation, from: s.from });
    this.out.push({ type: 'member', name: m.name, state: 'suspect', previous: 'alive', incarnation: m.incarnation, by: s.from });
    if (s.from !== this.name) this.urgent.push(m.name);
    else this.gossipNow = true;
  }

  private deadNode(d: { name: string; incarnation: number; from: string }): void {
    if (d.name === this.name) {
      if (d.incarnation >= this.incarnation) this.refute(d.incarnation, d.from);
      return;
    }
    const m = this.known.get(d.name);
    if (!m || d.incarnation < m.incarnation) return;
    const state: MemberState = d.from === d.name ? 'left' : 'dead';
    // Dead may still become left (the member's own word), nothing else.
    if (m.state === 'left' || (m.state === 'dead' && state === 'dead')) return;
    const previous = m.state;
    m.state = state;
    m.incarnation = d.incarnation;
    m.since = this.now;
    m.suspicion = undefined;
    this.enqueue({ type: 'dead', name: m.name, incarnation: m.incarnation, from: d.from });
    if (d.from === this.name) this.gossipNow = true;
    if (isLive(previous)) this.changed = true;
    this.out.push({ type: 'member', name: m.name, state, previous, incarnation: m.incarnation, by: d.from });
  }

  private refute(accused: number, accuser: string): void {
    this.incarnation = Math.min(MAX_INCARNATION, Math.max(this.incarnation + 1, accused + 1));
    if (this.address) this.enqueue(this.selfAlive());
    this.gossipNow = true;
    this.out.push({ type: 'refuted', incarnation: this.incarnation, accuser });
  }

  /** Adds a distinct confirmer; true if it was new (and so worth passing on). */
  private confirm(s: Suspicion, from: string): boolean {
    if (s.confirmers.size - 1 >= s.k || s.confirmers.has(from)) return false;
    s.confirmers.add(from);
    s.deadline = s.start + this.suspicionTimeout(s.confirmers.size - 1, s.k);
    return true;
  }

  /** memberlist's remainingSuspicionTime before elapsed time: max shrinking by log(n+1)/log(k+1) towards min. */
  private suspicionTimeout(n: number, k: number): number {
    const { suspicionMinMs: min, suspicionMaxMs: max } = this.timings;
    if (k < 1) return min;
    const frac = Math.log(n + 1) / Math.log(k + 1);
    return Math.max(min, Math.floor(max - frac * (max - min)));
  }

  private liveCount(): number {
    let n = 1;
    for (const m of this.known.values()) if (isLive(m.state)) n++;
    return n;
  }

  // ---- dissemination -------------------------------------------------------------------------

  private selfAlive(): Update {
    return { type: 'alive', name: this.name, incarnation: this.incarnation, address: this.address, port: this.port };
  }

  /** Queues news about one member; it replaces older news about the same member. */
  private enqueue(update: Update): void {
    this.queue.set(update.name, { update, transmits: 0, id: ++this.queued });
  }

  private retransmitLimit(): number {
    return this.timings.retransmitMult * Math.ceil(Math.log10(this.liveCount() + 1));
  }

  /** Sends `message` with as much pending news as fits, least-sent first. */
  private send(to: string, endpoint: Endpoint, message: Message): void {
    let room = MAX_DATAGRAM - packetLength(this.name, to, message);
    if (this.queue.size > 0 && message.updates.length < MAX_ITEMS) {
      const limit = this.retransmitLimit();
      const pending = [...this.queue.values()].sort((a, b) => a.transmits - b.transmits || b.id - a.id);
      for (const q of pending) {
        if (message.updates.length >= MAX_ITEMS) break;
        // News about the recipient itself is worth sending too: it may need to refute.
        const length = updateLength(q.update);
        if (length > room) continue;
        room -= length;
        message.updates.push(q.update);
        if (++q.transmits >= limit) this.queue.delete(q.update.name);
      }
    }
    this.out.push({ type: 'send', to, endpoint: { address: endpoint.address, port: endpoint.port }, message });
  }

  private gossip(): void {
    if (this.queue.size === 0) return;
    const recent = this.now - this.timings.gossipToTheDeadMs;
    const targets = [...this.known.values()].filter((m) => isLive(m.state) || (m.state === 'dead' && m.since > recent));
    for (const m of this.pick(targets, this.timings.gossipNodes)) {
      if (this.queue.size === 0) break;
      this.send(m.name, m, { type: 'gossip', updates: [] });
    }
  }

  /** Our whole picture, in as many datagrams as it takes; only the first asks for a reply. */
  private sendSync(to: string, endpoint: Endpoint, reply: boolean): void {
    const records: MemberRecord[] = [];
    if (this.address) records.push({ name: this.name, address: this.address, port: this.port, incarnation: this.incarnation, state: 'alive' });
    for (const m of this.known.values()) records.push({ name: m.name, address: m.address, port: m.port, incarnation: m.incarnation, state: m.state });
    let first = true;
    let i = 0;
    do {
      const message: Message = { type: 'sync', reply: reply && first, members: [], updates: [] };
      let room = MAX_DATAGRAM - packetLength(this.name, to, message);
      while (i < records.length && message.members.length < MAX_ITEMS && recordLength(records[i]!) <= room) {
        room -= recordLength(records[i]!);
        message.members.push(records[i++]!);
      }
      this.out.push({ type: 'send', to, endpoint: { address: endpoint.address, port: endpoint.port }, message });
      first = false;
    } while (i < records.length);
  }

  /** Asks every seed that is not a live member for a sync: joining, and healing partitions. */
  private join(seeds: Iterable<Seed>): void {
    for (const s of seeds) {
      const m = this.known.get(s.name);
      if (!m || !isLive(m.state)) this.sendSync(s.name, s, true);
    }
  }

  private reap(): void {
    const before = this.now - this.timings.deadReclaimMs;
    for (const [name, m] of this.known) if (!isLive(m.state) && m.since <= before) this.known.delete(name);
  }

  // ---- randomness ----------------------------------------------------------------------------

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** Up to n distinct items, chosen at random. */
  private pick<T>(items: T[], n: number): T[] {
    return this.shuffle(items.slice()).slice(0, Math.max(0, n));
  }
}

function isLive(state: MemberState): boolean {
  return state === 'alive' || state === 'suspect';
}
