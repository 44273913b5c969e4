/**
 * The agent's Prometheus metrics, in a Registry of its own (never prom-client's global one), so
 * two agents in one test process count apart. The layer-2 speaker and the membership register
 * theirs (`metallb_layer2_*`, ...) in the same registry.
 *
 * MetalLB's names where MetalLB's speaker has the same thing: `metallb_speaker_announced`
 * (1 per IP this node announces, labels protocol/service/node/ip),
 * `metallb_k8s_client_config_loaded_bool`, `metallb_k8s_client_config_stale_bool`,
 * `metallb_k8s_client_updates_total`, `metallb_k8s_client_update_errors_total`. The others are
 * ours (`metallb_agent_*`).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  private readonly configLoaded: Gauge;
  private readonly configStale: Gauge;
  private readonly updates: Counter;
  private readonly updateErrors: Counter;
  private readonly announced: Gauge<'protocol' | 'service' | 'node' | 'ip'>;
  private readonly services: Gauge<'protocol'>;
  private readonly statusWrites: Counter<'op' | 'result'>;
  private readonly recompute: Histogram<'scope'>;
  private readonly aliveNodes: Gauge;
  private readonly membership: Gauge;
  private readonly synced: Gauge;

  constructor() {
    const registers = [this.registry];
    this.configLoaded = new Gauge({
      name: 'metallb_k8s_client_config_loaded_bool',
      help: '1 once a valid configuration has been loaded since the agent started, 0 before (also while it runs on the last good one the controller recorded).',
      registers,
    });
    this.configStale = new Gauge({
      name: 'metallb_k8s_client_config_stale_bool',
      help: '1 while the agent runs on an earlier configuration because the current one is invalid or could not be read; 0 otherwise.',
      registers,
    });
    this.updates = new Counter({ name: 'metallb_k8s_client_updates_total', help: 'Changes of watched Kubernetes objects the agent has processed.', registers });
    this.updateErrors = new Counter({
      name: 'metallb_k8s_client_update_errors_total',
      help: 'Changes of watched Kubernetes objects whose processing failed (they are retried).',
      registers,
    });
    this.announced = new Gauge({
      name: 'metallb_speaker_announced',
      help: 'Services this node announces: 1 per IP, labelled with the protocol, the Service (namespace/name), the node and the IP.',
      labelNames: ['protocol', 'service', 'node', 'ip'],
      registers,
    });
    this.services = new Gauge({ name: 'metallb_agent_announced_services', help: 'Services this node announces now, by protocol.', labelNames: ['protocol'], registers });
    this.statusWrites = new Counter({
      name: 'metallb_agent_status_writes_total',
      help: 'ServiceL2Status writes by operation (create, update, delete) and result (ok, error).',
      labelNames: ['op', 'result'],
      registers,
    });
    this.recompute = new Histogram({
      name: 'metallb_agent_recompute_duration_seconds',
      help: 'Time to recompute what this node announces: scope "service" for the Services that changed, "liveness" for the Services of nodes that died, "all" after a configuration or Node change or a node coming back.',
      labelNames: ['scope'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.aliveNodes = new Gauge({ name: 'metallb_agent_alive_nodes', help: 'Nodes this agent counts as alive (gossip membership, or Node readiness without it).', registers });
    this.membership = new Gauge({
      name: 'metallb_agent_membership_enabled_bool',
      help: '1 while liveness comes from the gossip membership, 0 while it comes from Node readiness (no key, or the membership failed).',
      registers,
    });
    this.synced = new Gauge({ name: 'metallb_agent_synced_bool', help: '1 once the agent has computed and published what it announces after starting.', registers });
  }

  setConfigLoaded(loaded: boolean): void {
    this.configLoaded.set(loaded ? 1 : 0);
  }

  setConfigStale(stale: boolean): void {
    this.configStale.set(stale ? 1 : 0);
  }

  countUpdate(ok: boolean): void {
    this.updates.inc();
    if (!ok) this.updateErrors.inc();
  }

  /** This node announces (or stops announcing) an IP of a Service. */
  setAnnounced(protocol: 'layer2', service: string, node: string, ip: string, on: boolean): void {
    if (on) this.announced.set({ protocol, service, node, ip }, 1);
    else this.announced.remove({ protocol, service, node, ip });
  }

  setAnnouncedServices(protocol: 'layer2', count: number): void {
    this.services.set({ protocol }, count);
  }

  countStatusWrite(op: 'create' | 'update' | 'delete', ok: boolean): void {
    this.statusWrites.inc({ op, result: ok ? 'ok' : 'error' });
  }

  observeRecompute(scope: 'service' | 'liveness' | 'all', seconds: number): void {
    this.recompute.observe({ scope }, seconds);
  }

  setAliveNodes(n: number): void {
    this.aliveNodes.set(n);
  }

  setMembershipEnabled(on: boolean): void {
    this.membership.set(on ? 1 : 0);
  }

  setSynced(synced: boolean): void {
    this.synced.set(synced ? 1 : 0);
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
