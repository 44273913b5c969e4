/**
 * Gossip membership among node agents, over UDP: the edge around the pure SWIM machine in
 * protocol.ts. It owns the socket and the one timer, signs and checks every datagram
 * (codec.ts), and tells the agent which nodes are alive. See README.md beside this file.
 *
 * ```ts
 * const membership = new Membership({ nodeName, bindAddress: '0.0.0.0', advertiseAddress: nodeIP, key, registry });
 * membership.on('change', (alive) => recompute(alive));
 * await membership.start();
 * membership.setSeeds(nodes.map((n) => ({ name: n.name, address: n.internalIP })));
 * // ...
 * await membership.stop(); // graceful leave: the others drop us at once
 * ```
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { systemClock, type Clock } from '../../kube/clock.js';
import { decodePacket, encodePacket, isValidName, MAX_INCARNATION, REJECT_REASONS, ReplayGuard, type Message, type RejectReason } from './codec.js';
import { Protocol, type Action, type Event, type MemberView, type Seed, type Timings } from './protocol.js';

export { DEFAULT_TIMINGS, type MemberView, type Timings } from './protocol.js';
export type { MemberState, RejectReason } from './codec.js';

/** MetalLB's memberlist port. */
export const DEFAULT_PORT = 7946;

/** Options of Membership. */
export interface MembershipOptions {
  /** This node's name (the Kubernetes Node name). */
  nodeName: string;
  /** Address to bind: IPv4 or IPv6; '::' listens on both families. */
  bindAddress: string;
  /** UDP port (default 7946; 0 picks a free one, for tests). */
  port?: number;
  /**
   * The address others reach us at (the Node's InternalIP). Default: bindAddress unless it is a
   * wildcard; else the address of our own entry in setSeeds(). Until known we probe others but
   * do not announce ourselves.
   */
  advertiseAddress?: string;
  /**
   * Shared key(s), at least 16 bytes each: the first signs, any verifies (so a new key can be
   * rolled out node by node: add it second, then move it first, then drop the old one).
   */
  key: Buffer | readonly Buffer[];
  clock?: Clock;
  /** Uniform in [0, 1) (default Math.random); used for probe order, helpers and gossip targets. */
  random?: () => number;
  log?: (line: string) => void;
  /** Where to register the metrics (one Membership per registry). */
  registry?: Registry;
  timings?: Partial<Timings>;
  /** A datagram whose timestamp is further than this from our clock is refused (default 30 s). */
  replayWindowMs?: number;
  /** Called with the live nodes whenever that set changes (as on('change')). */
  onChange?: (alive: Set<string>) => void;
}

/** A node to join through; port defaults to ours. */
export interface MembershipSeed {
  name: string;
  address: string;
  port?: number;
}

type ChangeListener = (alive: Set<string>) => void;

/** Gossip membership of this node agent. */
export class Membership {
  private readonly nodeName: string;
  private readonly keys: Buffer[];
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: (line: string) => void;
  private readonly timings: Partial<Timings>;
  private readonly guard: ReplayGuard;
  private readonly listeners = new Set<ChangeListener>();
  private readonly metrics: Metrics | undefined;
  private socket: dgram.Socket | undefined;
  private protocol: Protocol | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private advertise: string | undefined;
  private boundPort = 0;
  private family: 'udp4' | 'udp6' = 'udp4';
  private seeds: MembershipSeed[] = [];
  private nonce: number;
  private lastAlive = '';
  private stopping = false;
  private readonly lastLogged = new Map<string, number>();

  constructor(private readonly options: MembershipOptions) {
    if (!isValidName(options.nodeName))
      throw new Error(`membership: node name ${JSON.stringify(options.nodeName)} cannot be carried (letters, digits, '.', '-', '_'; at most 253)`);
    if (isIP(options.bindAddress) === 0) throw new Error(`membership: bind address ${JSON.stringify(options.bindAddress)} is not an IP address`);
    if (options.advertiseAddress !== undefined && (isIP(options.advertiseAddress) === 0 || isWildcard(options.advertiseAddress))) {
      throw new Error(`membership: advertise address ${JSON.stringify(options.advertiseAddress)} is not a unicast IP address`);
    }
    const keys = Buffer.isBuffer(options.key) ? [options.key] : [...options.key];
    if (keys.length === 0 || keys.some((k) => k.length < 16)) throw new Error('membership: the shared key must be at least 16 bytes (32 random bytes recommended)');
    this.nodeName = options.nodeName;
    this.keys = keys;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.log ?? (() => {});
    this.timings = options.timings ?? {};
    this.guard = new ReplayGuard(options.replayWindowMs ?? 30_000);
    this.nonce = Math.floor(this.random() * 2 ** 32);
    this.advertise = options.advertiseAddress ?? (isWildcard(options.bindAddress) ? undefined : options.bindAddress);
    this.metrics = options.registry ? new Metrics(options.registry, () => this.protocol?.members() ?? []) : undefined;
    if (options.onChange) this.listeners.add(options.onChange);
  }

  /** Binds the socket and starts probing and joining the seeds. */
  async start(): Promise<void> {
    if (this.socket) return;
    const family = isIP(this.options.bindAddress) === 6 ? 'udp6' : 'udp4';
    // An IPv6 wildcard socket takes IPv4 peers too (as ::ffff:a.b.c.d).
    const socket = dgram.createSocket(family === 'udp6' ? { type: family, ipv6Only: false } : { type: family });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => {
        socket.close();
        reject(new Error(`membership: cannot listen on ${this.options.bindAddress} port ${this.options.port ?? DEFAULT_PORT}: ${err.message}`));
      });
      socket.bind({ address: this.options.bindAddress, port: this.options.port ?? DEFAULT_PORT, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.note('socket', `membership: socket error: ${err.message}`));
    socket.on('message', (buf, rinfo) => this.receive(buf, rinfo));
    this.socket = socket;
    this.family = family;
    this.boundPort = socket.address().port;
    this.stopping = false;
    this.protocol = new Protocol({
      name: this.nodeName,
      address: this.advertise ?? '',
      port: this.boundPort,
      // Wall-clock ms: a restarted agent outranks what the others remember of its former self.
      incarnation: Math.min(MAX_INCARNATION, this.clock.now().getTime()),
      random: this.random,
      timings: this.timings,
    });
    this.step({ type: 'seeds', seeds: this.protocolSeeds() });
    this.step({ type: 'start' });
    this.log(`membership: ${this.nodeName} listening on ${this.options.bindAddress} port ${this.boundPort}, advertising ${this.advertise ?? '(not yet known)'}`);
  }

  /**
   * Stops. By default leaves gracefully first (every live member hears it at once and drops
   * us); `{ leave: false }` just closes the socket, as a crash would (for tests).
   */
  async stop(options: { leave?: boolean } = {}): Promise<void> {
    const socket = this.socket;
    if (!socket || this.stopping) return;
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (options.leave !== false && this.protocol) {
      const actions = this.protocol.handle({ type: 'leave' }, this.clock.monotonic());
      // Wait for the farewells to leave the socket (bounded: a send never blocks for long).
      await Promise.race([Promise.all(actions.map((a) => this.perform(a))), new Promise((r) => setTimeout(r, 1000))]);
    }
    this.socket = undefined;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.log(`membership: ${this.nodeName} stopped${options.leave === false ? ' without leaving' : ' (left)'}`);
  }

  /** Names of the nodes considered alive (alive or suspect), this node included. */
  alive(): Set<string> {
    return this.protocol ? this.protocol.alive() : new Set([this.nodeName]);
  }

  /** Every member this node knows, with state and incarnation (for status and debugging). */
  members(): MemberView[] {
    return this.protocol?.members() ?? [];
  }

  /** The UDP port bound (useful with port 0). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * The nodes to join through (replaces the previous list); the agent passes every Node with
   * its InternalIP. A seed that is not a live member is asked to sync now (if new) and every
   * joinIntervalMs after. Our own entry, if present, supplies the advertise address when none
   * was given. Invalid entries are skipped and logged.
   */
  setSeeds(seeds: readonly MembershipSeed[]): void {
    const valid: MembershipSeed[] = [];
    for (const s of seeds) {
      if (!isValidName(s.name) || isIP(s.address) === 0 || isWildcard(s.address) || (s.port !== undefined && !(Number.isInteger(s.port) && s.port > 0 && s.port < 65536))) {
        this.note(`seed:${s.name}`, `membership: ignoring seed ${JSON.stringify(s)}: not a node name with a unicast IP address and port`);
        continue;
      }
      valid.push({ name: s.name, address: normalize(s.address), port: s.port });
    }
    this.seeds = valid;
    const own = valid.find((s) => s.name === this.nodeName);
    if (own && this.options.advertiseAddress === undefined && isWildcard(this.options.bindAddress) && own.address !== this.advertise) {
      this.advertise = own.address;
      if (this.protocol) {
        this.step({ type: 'address', address: own.address, port: this.boundPort });
        this.log(`membership: advertising ${own.address} (our Node's address)`);
      }
    }
    if (this.protocol) this.step({ type: 'seeds', seeds: this.protocolSeeds() });
  }

  /** Calls `listener` with the live nodes whenever that set changes. */
  on(event: 'change', listener: ChangeListener): this {
    if (event === 'change') this.listeners.add(listener);
    return this;
  }

  off(event: 'change', listener: ChangeListener): this {
    if (event === 'change') this.listeners.delete(listener);
    return this;
  }

  // ---- the edge ------------------------------------------------------------------------------

  private protocolSeeds(): Seed[] {
    const port = this.options.port || DEFAULT_PORT;
    return this.seeds.map((s) => ({ name: s.name, address: s.address, port: s.port ?? port }));
  }

  private receive(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.protocol || this.stopping) return;
    const result = decodePacket(buf, this.keys);
    if (!result.ok) return this.reject(result.rejection.reason, `${rinfo.address} port ${rinfo.port}: ${result.rejection.detail}`);
    const { packet } = result;
    if (packet.to !== this.nodeName) return this.reject('misdirected', `${packet.from} at ${rinfo.address} sent to ${packet.to}`);
    if (packet.from === this.nodeName) return this.reject('from-self', `${rinfo.address} port ${rinfo.port} uses our name (two agents with one node name?)`);
    const stale = this.guard.check(packet, this.clock.now().getTime());
    if (stale) return this.reject(stale.reason, stale.detail);
    this.metrics?.received.inc({ type: packet.message.type });
    this.step({ type: 'receive', from: packet.from, source: { address: normalize(rinfo.address), port: rinfo.port }, message: packet.message });
  }

  private reject(reason: RejectReason, detail: string): void {
    this.metrics?.rejected.inc({ reason });
    // Some reasons point at a misconfiguration an operator must fix; say so, once a minute.
    this.note(`reject:${reason}`, `membership: refused a datagram (${reason}): ${detail}${HINTS[reason] ?? ''}`);
  }

  private step(event: Event): void {
    const protocol = this.protocol;
    if (!protocol || this.stopping) return;
    for (const action of protocol.handle(event, this.clock.monotonic())) void this.perform(action);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = this.protocol?.nextDeadline() ?? Infinity;
    if (!Number.isFinite(deadline) || this.stopping) return;
    const delay = Math.max(0, Math.ceil(deadline - this.clock.monotonic()));
    // setImmediate: after a stall, the datagrams already waiting (an ack, a refutation) are read
    // before the machine judges a probe or a suspicion that fell due meanwhile.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      setImmediate(() => this.step({ type: 'tick' }));
    }, delay);
  }

  private perform(action: Action): Promise<void> {
    switch (action.type) {
      case 'send':
        return this.send(action.to, action.endpoint.address, action.endpoint.port, action.message);
      case 'changed':
        this.emitChange();
        break;
      case 'member': {
        const by = action.by && action.by !== action.name ? ` by ${action.by}` : '';
        const was = action.previous ? `was ${action.previous}` : 'new';
        const what = action.state === 'left' ? 'left' : `is ${action.state}${by}`;
        this.log(`membership: ${action.name} ${what} (${was}, incarnation ${action.incarnation})`);
        this.metrics?.transitions.inc({ state: action.state });
        break;
      }
      case 'refuted':
        this.log(`membership: ${action.accuser} suspected us; refuted with incarnation ${action.incarnation}`);
        this.metrics?.refutations.inc();
        break;
      case 'probe':
        this.metrics?.probes.inc({ result: action.result === 'failed' ? 'failed' : action.indirect ? 'indirect-ack' : 'ack' });
        break;
      case 'health':
        this.metrics?.health.set(action.score);
        if (action.score > 0)
          this.note(
            'health',
            `membership: local health score ${action.score}: probes slowed ${action.score + 1}x (missed acks and nacks suggest this node or its network is slow)`,
          );
        break;
    }
    return Promise.resolve();
  }

  private send(to: string, address: string, port: number, message: Message): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.resolve();
    let bytes: Buffer;
    try {
      bytes = encodePacket({ from: this.nodeName, to, timestamp: this.clock.now().getTime(), nonce: this.nonce, message }, this.keys[0]!);
    } catch (e) {
      this.metrics?.sendErrors.inc();
      this.note('encode', `membership: bug: could not encode a ${message.type} for ${to}: ${String(e)}`);
      return Promise.resolve();
    }
    this.nonce = (this.nonce + 1) >>> 0;
    this.metrics?.sent.inc({ type: message.type });
    const target = this.family === 'udp6' && isIP(address) === 4 ? `::ffff:${address}` : address;
    return new Promise((resolve) => {
      socket.send(bytes, port, target, (err) => {
        if (err) {
          this.metrics?.sendErrors.inc();
          this.note(`send:${err.message}`, `membership: sending to ${to} at ${address} port ${port}: ${err.message}`);
        }
        resolve();
      });
    });
  }

  private emitChange(): void {
    const alive = this.alive();
    const key = [...alive].sort().join('\n');
    if (key === this.lastAlive) return;
    this.lastAlive = key;
    for (const listener of this.listeners) {
      try {
        listener(new Set(alive));
      } catch (e) {
        this.log(`membership: a change listener threw: ${String(e)}`);
      }
    }
  }

  /** Logs `line`, at most once a minute per `topic`. */
  private note(topic: string, line: string): void {
    const now = this.clock.monotonic();
    const last = this.lastLogged.get(topic);
    if (last !== undefined && now - last < 60_000) return;
    if (this.lastLogged.size > 1000) this.lastLogged.clear();
    this.lastLogged.set(topic, now);
    this.log(line);
  }
}

const HINTS: Partial<Record<RejectReason, string>> = {
  'bad-mac': ' (a node with another key: check the memberlist Secret is the same everywhere)',
  stale: " (clock skew between nodes: check the nodes' time sync)",
  'from-self': '',
};

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || /^[0:]+$/.test(address);
}

/** '::ffff:192.0.2.1' (an IPv4 peer seen on a dual-stack socket) -> '192.0.2.1'. */
function normalize(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/** The membership metrics (our names: MetalLB has none of its own for memberlist). */
class Metrics {
  readonly probes: Counter<'result'>;
  readonly sent: Counter<'type'>;
  readonly received: Counter<'type'>;
  readonly rejected: Counter<'reason'>;
  readonly sendErrors: Counter;
  readonly transitions: Counter<'state'>;
  readonly refutations: Counter;
  readonly health: Gauge;

  constructor(registry: Registry, members: () => MemberView[]) {
    const registers = [registry];
    new Gauge({
      name: 'metallb_membership_members',
      help: 'Members this node knows, by state (alive includes this node).',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
        for (const m of members()) counts[m.state]++;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    this.probes = new Counter({ name: 'metallb_membership_probes_total', help: 'Probes this node ran, by result (ack, indirect-ack, failed).', labelNames: ['result'], registers });
    this.sent = new Counter({ name: 'metallb_membership_messages_sent_total', help: 'Datagrams sent, by message type.', labelNames: ['type'], registers });
    this.received = new Counter({
      name: 'metallb_membership_messages_received_total',
      help: 'Authenticated datagrams accepted, by message type.',
      labelNames: ['type'],
      registers,
    });
    this.rejected = new Counter({
      name: 'metallb_membership_messages_rejected_total',
      help: 'Datagrams refused, by reason (bad-mac, stale, replay, truncated, ...).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of REJECT_REASONS) this.rejected.inc({ reason }, 0);
    this.sendErrors = new Counter({ name: 'metallb_membership_send_errors_total', help: 'Datagrams that could not be sent.', registers });
    this.transitions = new Counter({
      name: 'metallb_membership_transitions_total',
      help: 'Member state changes seen by this node, by new state.',
      labelNames: ['state'],
      registers,
    });
    this.refutations = new Counter({ name: 'metallb_membership_refutations_total', help: 'Times this node was suspected or declared dead and refuted it.', registers });
    this.health = new Gauge({ name: 'metallb_membership_health_score', help: 'Local health score (0 healthy); probe timing is scaled by score + 1.', registers });
  }
}
