/**
 * The controller's Prometheus metrics, in a Registry of their own (never prom-client's global
 * default registry), so that two controllers in one test process do not share counters.
 *
 * Where MetalLB's controller has a metric for the same thing, ours has MetalLB's name, labels
 * and meaning (internal/allocator and internal/k8s in MetalLB), so existing dashboards and
 * alerts keep working: `metallb_allocator_addresses_in_use_total`,
 * `metallb_allocator_addresses_total`, `metallb_k8s_client_config_loaded_bool`,
 * `metallb_k8s_client_config_stale_bool`, `metallb_k8s_client_updates_total`,
 * `metallb_k8s_client_update_errors_total`. The others are ours.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Options of Metrics. */
export interface MetricsOptions {
  /** Wall-clock time for the reload timestamp (default Date.now). */
  now?: () => number;
}

/** The controller's metrics; `registry` is what `/metrics` serves. */
export class Metrics {
  readonly registry = new Registry();
  private readonly inUse: Gauge<'pool'>;
  private readonly total: Gauge<'pool'>;
  private readonly allocations: Counter<'pool'>;
  private readonly failures: Counter<'reason'>;
  private readonly admission: Histogram<'handler' | 'allowed'>;
  private readonly configState: Gauge;
  private readonly lastReload: Gauge;
  private readonly configLoaded: Gauge;
  private readonly configStale: Gauge;
  private readonly updates: Counter;
  private readonly updateErrors: Counter;
  private readonly synced: Gauge;
  private readonly now: () => number;

  constructor(options: MetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    const registers = [this.registry];
    // MetalLB's names (a gauge named *_total, as MetalLB has it).
    this.inUse = new Gauge({
      name: 'metallb_allocator_addresses_in_use_total',
      help: 'Addresses of the pool held by Services now, per pool.',
      labelNames: ['pool'],
      registers,
    });
    this.total = new Gauge({
      name: 'metallb_allocator_addresses_total',
      help: 'Addresses the pool can hand out (buggy .0/.255 left out when the pool avoids them), per pool.',
      labelNames: ['pool'],
      registers,
    });
    this.configLoaded = new Gauge({
      name: 'metallb_k8s_client_config_loaded_bool',
      help: '1 once a valid configuration has been loaded since the controller started, 0 before.',
      registers,
    });
    this.configStale = new Gauge({
      name: 'metallb_k8s_client_config_stale_bool',
      help: '1 while the controller runs on an earlier configuration because the current one is invalid or could not be read; 0 otherwise.',
      registers,
    });
    this.updates = new Counter({
      name: 'metallb_k8s_client_updates_total',
      help: 'Changes of watched Kubernetes objects (Services, claims, configuration) the controller has processed.',
      registers,
    });
    this.updateErrors = new Counter({
      name: 'metallb_k8s_client_update_errors_total',
      help: 'Changes of watched Kubernetes objects whose processing failed (they are retried).',
      registers,
    });
    // Ours.
    this.synced = new Gauge({
      name: 'metallb_controller_synced_bool',
      help: '1 once this replica, leading, has reconciled every Service since it took the lead; 0 before and while not leading.',
      registers,
    });
    this.allocations = new Counter({ name: 'metallb_allocations_total', help: 'Addresses allocated from the pool.', labelNames: ['pool'], registers });
    this.failures = new Counter({ name: 'metallb_allocation_failures_total', help: 'Allocations that failed, by reason.', labelNames: ['reason'], registers });
    this.admission = new Histogram({
      name: 'metallb_admission_duration_seconds',
      help: 'Time to answer an admission review, by handler and verdict (allowed="error" when the handler failed).',
      labelNames: ['handler', 'allowed'],
      // Admission has a 5 s timeout; most answers should take milliseconds.
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.configState = new Gauge({
      name: 'metallb_config_state',
      help: '1 if the last configuration loaded was valid, 0 if it was rejected (the last good one stays in use).',
      registers,
    });
    this.lastReload = new Gauge({
      name: 'metallb_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last successful configuration load.',
      registers,
    });
  }

  /** Sets the usage of one pool. */
  setPoolUsage(pool: string, used: number, total: number): void {
    this.inUse.set({ pool }, used);
    this.total.set({ pool }, total);
  }

  /** Forgets a pool that no longer exists (its series disappear). */
  removePool(pool: string): void {
    this.inUse.remove({ pool });
    this.total.remove({ pool });
  }

  /** Counts one address allocated from the pool. */
  countAllocation(pool: string): void {
    this.allocations.inc({ pool });
  }

  /** Counts one failed allocation (e.g. "pool-full", "ip-taken", "unknown-pool"). */
  countFailure(reason: string): void {
    this.failures.inc({ reason });
  }

  /** Records how long an admission review took, and its verdict. */
  observeAdmission(handler: string, seconds: number, allowed: boolean | 'error'): void {
    this.admission.observe({ handler, allowed: String(allowed) }, seconds);
  }

  /**
   * Records whether the last configuration was valid. A valid one also stamps the reload time,
   * marks the configuration loaded and not stale; an invalid one marks it stale (the controller
   * keeps the last good one).
   */
  setConfigValid(valid: boolean): void {
    this.configState.set(valid ? 1 : 0);
    if (valid) {
      this.lastReload.set(this.now() / 1000);
      this.setConfigLoaded(true);
    }
    this.setConfigStale(!valid);
  }

  /** Whether the controller runs on an earlier configuration because the current one is invalid or could not be read. */
  setConfigStale(stale: boolean): void {
    this.configStale.set(stale ? 1 : 0);
  }

  /** Whether a valid configuration has been loaded since start. */
  setConfigLoaded(loaded: boolean): void {
    this.configLoaded.set(loaded ? 1 : 0);
  }

  /** Counts one processed change of a watched object; `ok` false counts it as an error too. */
  countUpdate(ok: boolean): void {
    this.updates.inc();
    if (!ok) this.updateErrors.inc();
  }

  /** Whether the leader has reconciled every Service since it took the lead. */
  setSynced(synced: boolean): void {
    this.synced.set(synced ? 1 : 0);
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
