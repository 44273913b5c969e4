/**
 * The node agent, wired: it follows the configuration (config.ts) and the cluster (cluster.ts),
 * decides with core/announce what this node announces (announcer.ts), hands that to the
 * layer-2 speaker, and publishes ServiceL2Status objects (status.ts) and `nodeAssigned`
 * events. main.ts builds it from the command line; tests build it with a fake speaker.
 *
 * Liveness: with gossip membership, a node is alive while the gossip says so, whatever its
 * Node's Ready condition (an agent that answers on the network can answer ARP; a kubelet that
 * lost the API server does not stop it), and a Ready node whose agent is not in the gossip is
 * not (nobody there would answer). Without membership (no key), a node is alive while its Node
 * is Ready. Every agent must use the same rule, so a membership that fails to start stops the
 * agent rather than falling back alone.
 */
import { isIP } from 'node:net';
import type { KubeApi, KubeObject } from '../kube/client.js';
import { EventRecorder } from '../kube/events.js';
import { Announcer, type Speaker } from './announcer.js';
import { ClusterWatch } from './cluster.js';
import { ConfigWatch, type OwnerReference } from './config.js';
import { describeError, silentLogger, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { L2StatusWriter } from './status.js';

/** The gossip membership as the agent uses it (agent/membership's Membership). */
export interface MembershipLike {
  start(): Promise<void>;
  stop(options?: { leave?: boolean }): Promise<void>;
  alive(): Set<string>;
  setSeeds(seeds: readonly { name: string; address: string; port?: number }[]): void;
  on(event: 'change', listener: (alive: Set<string>) => void): unknown;
}

export interface AgentOptions {
  kube: KubeApi;
  nodeName: string;
  namespace: string;
  loadBalancerClass?: string;
  /** Owner of the objects the agent writes (its Pod). */
  owner?: OwnerReference;
  speaker: Speaker & { close(): void };
  /** Gossip membership; without it liveness is Node readiness. */
  membership?: MembershipLike;
  /** The membership's UDP port, for the seeds (the same on every node). */
  membershipPort?: number;
  /** The family of the address the membership binds (seeds of that family are preferred). */
  membershipFamily?: 4 | 6;
  metrics: Metrics;
  log?: Logger;
  /** Debounce of recomputes (default 20 ms). */
  debounceMs?: number;
  /** How long to wait at start for the gossip to find the other agents (default 3 s). */
  joinTimeoutMs?: number;
}

/** Whether a Node's Ready condition is True. */
export function nodeReady(n: KubeObject): boolean {
  const conditions = (n.status as { conditions?: { type?: unknown; status?: unknown }[] } | undefined)?.conditions;
  return Array.isArray(conditions) && conditions.some((c) => c?.type === 'Ready' && c?.status === 'True');
}

/** A Node's address for the gossip: an InternalIP of the wanted family, else any InternalIP, else an ExternalIP. */
export function nodeAddress(n: KubeObject, family?: 4 | 6): string | undefined {
  const addresses = ((n.status as { addresses?: { type?: unknown; address?: unknown }[] } | undefined)?.addresses ?? []).filter(
    (a): a is { type: string; address: string } => typeof a?.address === 'string' && isIP(a.address) !== 0 && typeof a.type === 'string',
  );
  const pick = (type: string, fam?: 4 | 6) => addresses.find((a) => a.type === type && (fam === undefined || isIP(a.address) === fam))?.address;
  return pick('InternalIP', family) ?? pick('InternalIP') ?? pick('ExternalIP', family) ?? pick('ExternalIP');
}

export class Agent {
  readonly config: ConfigWatch;
  readonly cluster: ClusterWatch;
  readonly status: L2StatusWriter;
  readonly announcer: Announcer;
  readonly recorder: EventRecorder;
  private isReady = false;
  private stopping = false;
  private readonly log: Logger;

  constructor(private readonly options: AgentOptions) {
    const { kube, nodeName, namespace, owner, metrics } = options;
    this.log = options.log ?? silentLogger;
    metrics.setMembershipEnabled(options.membership !== undefined);
    metrics.setSynced(false);
    this.recorder = new EventRecorder(kube, {
      component: 'metallb-agent',
      reportingComponent: 'metallb.io/agent',
      instance: nodeName,
      log: (line) => this.log.warn(line),
    });
    this.config = new ConfigWatch({
      kube,
      namespace,
      nodeName,
      ...(owner ? { owner } : {}),
      metrics,
      log: this.log,
      onChange: () => this.announcer.allChanged(),
    });
    this.cluster = new ClusterWatch({
      kube,
      ...(options.loadBalancerClass ? { loadBalancerClass: options.loadBalancerClass } : {}),
      log: this.log,
      onChange: (change) => {
        metrics.countUpdate(true);
        if (change.kind === 'service') this.announcer.serviceChanged(change.key);
        else {
          this.announcer.allChanged();
          this.updateSeeds();
        }
      },
    });
    this.status = new L2StatusWriter({ kube, namespace, nodeName, ...(owner ? { owner } : {}), metrics, log: this.log });
    this.announcer = new Announcer({
      nodeName,
      services: () => this.cluster.services,
      slicesOf: (key) => this.cluster.slicesOf(key),
      nodes: () => this.cluster.nodes.values(),
      config: () => this.config.config,
      alive: () => this.alive(),
      speaker: options.speaker,
      status: this.status,
      recorder: this.recorder,
      metrics,
      ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
      log: this.log,
    });
  }

  /** Ready: the configuration read, the watches synced, and what this node announces computed and handed on once. */
  get ready(): boolean {
    return this.isReady && !this.stopping;
  }

  /** The nodes counted alive now (see the file's comment). */
  alive(): Set<string> {
    if (this.options.membership) return this.options.membership.alive();
    const alive = new Set<string>();
    for (const [name, n] of this.cluster.nodes) if (nodeReady(n)) alive.add(name);
    return alive;
  }

  /** Starts everything; resolves once ready. Rejects when the membership cannot start. */
  async start(): Promise<void> {
    const { membership } = this.options;
    await Promise.all([this.cluster.start(), this.config.start(), this.status.start()]);
    if (membership) {
      membership.on('change', () => this.announcer.aliveChanged());
      try {
        await membership.start();
      } catch (e) {
        throw new Error(`the gossip membership cannot start: ${describeError(e)}`, { cause: e });
      }
      this.updateSeeds();
      await this.waitForJoin();
    }
    await this.announcer.start();
    this.status.begin();
    this.isReady = true;
    this.options.metrics.setSynced(true);
  }

  /**
   * Stops: first the answers (the speaker closes, so no stale answer follows the next owner's
   * gratuitous ARP), then leaves the gossip (the others take over at once), then the watches.
   * The ServiceL2Status objects stay for the next owner to replace (and go with the Pod).
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.announcer.stop();
    try {
      this.options.speaker.close();
    } catch (e) {
      this.log.warn(`closing the speaker: ${describeError(e)}`);
    }
    if (this.options.membership) await this.options.membership.stop().catch((e: unknown) => this.log.warn(`leaving the membership: ${describeError(e)}`));
    this.cluster.stop();
    await Promise.all([this.config.stop(), this.status.stop(), this.recorder.flush()]);
  }

  /** Every Node with an address joins the gossip through it. */
  private updateSeeds(): void {
    const { membership, membershipPort, membershipFamily } = this.options;
    if (!membership) return;
    const seeds: { name: string; address: string; port?: number }[] = [];
    for (const [name, n] of this.cluster.nodes) {
      const address = nodeAddress(n, membershipFamily);
      if (address) seeds.push({ name, address, ...(membershipPort !== undefined ? { port: membershipPort } : {}) });
    }
    membership.setSeeds(seeds);
  }

  /**
   * At start the gossip knows only this node; deciding then would make it announce everything
   * for a moment. Wait until it has heard from another agent, or the timeout (a node alone, or
   * the first agent up).
   */
  private async waitForJoin(): Promise<void> {
    const { membership, nodeName } = this.options;
    if (!membership) return;
    const others = [...this.cluster.nodes.keys()].filter((n) => n !== nodeName);
    if (others.length === 0 || membership.alive().size > 1) return;
    const timeoutMs = this.options.joinTimeoutMs ?? 3000;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      membership.on('change', (alive) => {
        if (alive.size > 1) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const alive = membership.alive();
    this.log.info(`membership: ${alive.size} of ${others.length + 1} node(s) alive at start (${[...alive].sort().join(', ')})`);
  }
}
