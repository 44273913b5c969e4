/**
 * A simulated LAN for the membership protocol: nodes are Protocol machines, time is discrete and
 * fake, datagrams go through the real codec (signed, decoded, replay-checked) with a latency
 * and loss the test chooses. Deterministic for a given seed.
 */
import { decodePacket, encodePacket, ReplayGuard, type RejectReason } from './codec.js';
import { Protocol, type Action, type Event, type Seed, type Timings } from './protocol.js';
import { seededRandom } from '../../core/seeded.js';

/** A small, seeded PRNG (core/seeded.ts). */
export const seeded = seededRandom;

/** Wall clock of the simulation at monotonic 0. */
const EPOCH = Date.parse('2026-03-01T12:00:00Z');

interface InFlight {
  at: number;
  order: number;
  from: string;
  address: string;
  port: number;
  bytes: Buffer;
}

/** One simulated node. */
export interface SimNode {
  name: string;
  address: string;
  port: number;
  key: Buffer;
  protocol: Protocol;
  guard: ReplayGuard;
  up: boolean;
  nonce: number;
  /** Every action the node's machine returned, with its time. */
  log: { at: number; action: Action }[];
  rejected: Map<RejectReason, number>;
}

export interface SimOptions {
  seed?: number;
  timings?: Partial<Timings>;
  /** One-way latency per datagram, ms (default 0.2 to 1 ms). */
  latency?: (random: () => number) => number;
  key?: Buffer;
}

/** Several Protocol machines on one simulated LAN. */
export class SimCluster {
  now = 0;
  readonly random: () => number;
  readonly nodes = new Map<string, SimNode>();
  private readonly byEndpoint = new Map<string, SimNode>();
  private inflight: InFlight[] = [];
  private order = 0;
  /** Decides whether the datagram from -> to is lost (default: never). */
  lose: (from: string, to: string | undefined) => boolean = () => false;
  /** Datagrams sent, and datagrams dropped by `lose`. */
  sent = 0;
  dropped = 0;
  /** Every datagram's size, for bounds checks. */
  largest = 0;

  constructor(private readonly options: SimOptions = {}) {
    this.random = seeded(options.seed ?? 1);
  }

  wall(): number {
    return EPOCH + Math.floor(this.now);
  }

  /** Adds a node at 192.0.2.<n> (not started). */
  add(name: string, key = this.options.key ?? Buffer.alloc(32, 7)): SimNode {
    const address = `192.0.2.${this.nodes.size + 1}`;
    const node: SimNode = {
      name,
      address,
      port: 7946,
      key,
      protocol: this.machine(name, address),
      guard: new ReplayGuard(),
      up: true,
      nonce: 0,
      log: [],
      rejected: new Map(),
    };
    this.nodes.set(name, node);
    this.byEndpoint.set(`${address}:7946`, node);
    return node;
  }

  private machine(name: string, address: string): Protocol {
    return new Protocol({ name, address, port: 7946, incarnation: this.wall(), random: this.random, timings: this.options.timings });
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Seeds as the agent would give them: every node. */
  seeds(): Seed[] {
    return [...this.nodes.values()].map((n) => ({ name: n.name, address: n.address, port: n.port }));
  }

  /** Starts `names` (default all), each seeded with every node. */
  start(names = [...this.nodes.keys()]): void {
    for (const name of names) {
      const n = this.node(name);
      this.handle(n, { type: 'seeds', seeds: this.seeds() });
      this.handle(n, { type: 'start' });
    }
  }

  /** Hands `event` to a node's machine now and carries out its actions. */
  handle(n: SimNode, event: Event): Action[] {
    const actions = n.protocol.handle(event, this.now);
    for (const action of actions) {
      n.log.push({ at: this.now, action });
      if (action.type !== 'send') continue;
      const bytes = encodePacket({ from: n.name, to: action.to, timestamp: this.wall(), nonce: n.nonce++, message: action.message }, n.key);
      this.transmit(n.name, action.endpoint.address, action.endpoint.port, bytes);
    }
    return actions;
  }

  /** Puts raw bytes on the wire from `from` (a node name or anything, for forgeries). */
  transmit(from: string, address: string, port: number, bytes: Buffer): void {
    this.sent++;
    this.largest = Math.max(this.largest, bytes.length);
    const to = this.byEndpoint.get(`${address}:${port}`);
    if (this.lose(from, to?.name)) {
      this.dropped++;
      return;
    }
    const latency = this.options.latency ? this.options.latency(this.random) : 0.2 + 0.8 * this.random();
    this.inflight.push({ at: this.now + latency, order: this.order++, from, address, port, bytes });
  }

  private deliver(d: InFlight): void {
    const n = this.byEndpoint.get(`${d.address}:${d.port}`);
    if (!n || !n.up) return;
    const sender = this.nodes.get(d.from);
    const result = decodePacket(d.bytes, [n.key]);
    const reject = (reason: RejectReason): void => void n.rejected.set(reason, (n.rejected.get(reason) ?? 0) + 1);
    if (!result.ok) return reject(result.rejection.reason);
    const { packet } = result;
    if (packet.to !== n.name) return reject('misdirected');
    if (packet.from === n.name) return reject('from-self');
    const stale = n.guard.check(packet, this.wall());
    if (stale) return reject(stale.reason);
    const source = sender ? { address: sender.address, port: sender.port } : { address: '198.51.100.1', port: 7946 };
    this.handle(n, { type: 'receive', from: packet.from, source, message: packet.message });
  }

  /** Runs the simulation until `until` (absolute ms), in event order. */
  runUntil(until: number): void {
    for (;;) {
      let next = until;
      let who: SimNode | undefined;
      for (const n of this.nodes.values()) {
        if (!n.up) continue;
        const d = n.protocol.nextDeadline();
        if (d < next) {
          next = d;
          who = n;
        }
      }
      let flight: InFlight | undefined;
      for (const f of this.inflight) if (f.at <= next && (!flight || f.at < flight.at || (f.at === flight.at && f.order < flight.order))) flight = f;
      if (flight) {
        this.now = Math.max(this.now, flight.at);
        this.inflight.splice(this.inflight.indexOf(flight), 1);
        this.deliver(flight);
        continue;
      }
      if (!who) break;
      this.now = Math.max(this.now, next);
      this.handle(who, { type: 'tick' });
    }
    this.now = Math.max(this.now, until);
  }

  /** Runs for `ms` more. */
  run(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Runs until `done()` holds (checked after every step of 5 ms), at most `limit` ms; the time it took, or undefined. */
  runUntilTrue(done: () => boolean, limit: number): number | undefined {
    const start = this.now;
    while (this.now - start < limit) {
      if (done()) return this.now - start;
      this.run(5);
    }
    return done() ? this.now - start : undefined;
  }

  /** The process dies: no more datagrams in or out, no leave. */
  crash(name: string): void {
    this.node(name).up = false;
  }

  /** A crashed node comes back as a new process (fresh machine, new incarnation). */
  restart(name: string): void {
    const n = this.node(name);
    n.protocol = this.machine(name, n.address);
    n.guard = new ReplayGuard();
    n.up = true;
    this.start([name]);
  }

  /** Graceful leave, then the node stops. */
  leave(name: string): void {
    const n = this.node(name);
    this.handle(n, { type: 'leave' });
    // Its farewells are on the wire already; the process exits right after.
    n.up = false;
  }

  /** Live members as `name` sees them. */
  aliveAt(name: string): Set<string> {
    return this.node(name).protocol.alive();
  }

  /** True if every up node sees exactly the up nodes as live. */
  converged(): boolean {
    const up = [...this.nodes.values()].filter((n) => n.up).map((n) => n.name);
    return up.every((name) => {
      const seen = this.aliveAt(name);
      return seen.size === up.length && up.every((u) => seen.has(u));
    });
  }

  /** Count of `type` member transitions to `state` logged by up nodes about `name` (e.g. false deaths). */
  transitions(name: string, state: string): number {
    let count = 0;
    for (const n of this.nodes.values()) for (const { action } of n.log) if (action.type === 'member' && action.name === name && action.state === state) count++;
    return count;
  }
}
