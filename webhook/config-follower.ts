/**
 * Follows the configuration (the ConfigMap `config` and the metallb.io objects in our namespace)
 * in every replica, and applies it to the ledger (so admission allocates from the current pools):
 *
 * - loads are serialized and the last one always reads after the last change;
 * - only a whole, valid read is applied (and only then is anything revoked): a read that fails
 *   (any API error but "kind not installed") or an invalid configuration keeps the last good one,
 *   is reported (log, metrics, the ConfigurationState `<namespace>/controller`, an event) and a
 *   failed read is retried with backoff;
 * - the leader records the last good configuration in the ConfigMap `metallb-last-good-config`,
 *   and a process that starts while the current configuration is invalid applies that one.
 */
import { formatConfigError } from '../core/config/index.js';
import { formatIP } from '../core/ip/index.js';
import type { Revocation } from '../core/allocator/index.js';
import type { Clock } from '../kube/clock.js';
import { apiVersionOf, CONFIG_KINDS, isKubeError, Reflector, RESOURCES, type KubeApi, type KubeObject } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { Ledger } from './claims.js';
import { CONFIG_MAP_NAME, LAST_GOOD_CONFIG_MAP, parseObjects, readConfigObjects, type ConfigObjects } from './config-admission.js';
import { SerialLoad } from '../kube/serial-load.js';

/** What the follower reports to metrics (the webhook's Metrics class satisfies it). */
export interface ConfigMetrics {
  setConfigValid(valid: boolean): void;
  setConfigStale?(stale: boolean): void;
  setConfigLoaded?(loaded: boolean): void;
  countUpdate?(ok: boolean): void;
}

export interface ConfigFollowerOptions {
  kube: KubeApi;
  ledger: Ledger;
  namespace: string;
  clock: Clock;
  recorder: Pick<EventRecorder, 'event'>;
  metrics?: ConfigMetrics;
  /** Whether this replica reports and records (the leader). */
  leading: () => boolean;
  /** After pools were applied, with the Services that lost addresses. */
  onApplied: (revoked: readonly Revocation[]) => void;
  /** An IPAddressPool object listed (all) or changed (one), for its status writer. */
  onPools?: (items: KubeObject[] | undefined, changed?: { type: 'ADDED' | 'MODIFIED' | 'DELETED'; obj: KubeObject }) => void;
  log?: (line: string) => void;
}

/** One line, whatever was thrown. */
function describeError(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
}

/** An object's content apart from its status and bookkeeping metadata. */
function content(o: KubeObject): string {
  const { metadata, status: _status, ...rest } = o;
  return JSON.stringify([metadata.labels ?? {}, metadata.annotations ?? {}, rest]);
}

export class ConfigFollower {
  /** A valid configuration (current or recorded) has been applied: until then no Service is judged. */
  configApplied = false;
  private valid: boolean | undefined;
  private errors: string[] = [];
  private lastValidAt: string | undefined;
  /** Loads never overlap; a failed read keeps the last good configuration and is retried with backoff. */
  private readonly loader = new SerialLoad({
    load: () => this.load(),
    // A read that failed (an API error other than "kind not installed") changes nothing.
    failed: async (e) => {
      this.readError = `could not read the configuration: ${describeError(e)}`;
      this.log(`${this.readError}; keeping the last good one, retrying`);
      this.options.metrics?.setConfigStale?.(true);
      this.options.metrics?.countUpdate?.(false);
      await this.report();
    },
  });
  private readError: string | undefined;
  private lastGood: ConfigObjects | undefined;
  private recordedText: string | undefined;
  private stopped = false;
  private readonly reflectors: Reflector[] = [];
  /** Configuration objects' content (not status), to tell a real change from a status write. */
  private readonly contents = new Map<string, string>();
  private readonly clock: Clock;
  private readonly log: (line: string) => void;

  constructor(private readonly options: ConfigFollowerOptions) {
    this.clock = options.clock;
    this.log = options.log ?? (() => {});
  }

  /** Loads the configuration once, then follows it. */
  async start(): Promise<void> {
    const { kube, namespace } = this.options;
    await this.reload();
    for (const r of [RESOURCES.configMaps, ...Object.values(CONFIG_KINDS)]) {
      const isPools = r === CONFIG_KINDS.IPAddressPool;
      const ref = new Reflector(
        kube,
        r,
        {
          onSync: (items) => {
            for (const k of [...this.contents.keys()]) if (k.startsWith(`${r.plural}/`)) this.contents.delete(k);
            for (const o of items) this.contents.set(`${r.plural}/${o.metadata.name ?? ''}`, content(o));
            if (isPools) this.options.onPools?.(items);
            this.request();
          },
          onEvent: (type, o) => {
            const key = `${r.plural}/${o.metadata.name ?? ''}`;
            if (isPools) this.options.onPools?.(undefined, { type, obj: o });
            if (type === 'DELETED') {
              this.contents.delete(key);
            } else {
              const c = content(o);
              // Our own pool status writes (and other status-only changes) are no configuration change.
              if (this.contents.get(key) === c) return;
              this.contents.set(key, c);
            }
            this.request();
          },
          onError: (e) => this.log(`watching ${r.plural}: ${describeError(e)}`),
        },
        { namespace },
      );
      this.reflectors.push(ref);
      // Not awaited: a kind whose list keeps failing (its CRD not installed yet) is retried by the
      // reflector with backoff, and the configuration is read by list on every load anyway.
      void ref.start({ wait: false }).catch(() => undefined);
    }
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const r of this.reflectors) r.stop();
    return this.loader.stop();
  }

  /** The leader records what is applied (called when this replica takes the lead). */
  async onLeading(): Promise<void> {
    await this.report();
    await this.recordLastGood();
  }

  /**
   * Loads the configuration soon. Loads never overlap and the last one always reads after the
   * last change: a change during a load makes one more load after it (an older read can never
   * land after a newer one).
   */
  request(delayMs?: number): void {
    this.loader.request(delayMs);
  }

  /** Runs loads until no change is pending. */
  reload(): Promise<void> {
    return this.loader.reload();
  }

  private async load(): Promise<void> {
    const { kube, namespace } = this.options;
    const objects = await readConfigObjects(kube, namespace);
    this.readError = undefined;
    const result = parseObjects(objects);
    if (result.errors.length > 0) {
      this.errors = result.errors.map(formatConfigError);
      if (this.valid !== false) this.log(`configuration invalid, keeping the last good one: ${this.errors.join('; ')}`);
      this.valid = false;
      this.options.metrics?.setConfigValid(false);
      this.options.metrics?.setConfigStale?.(true);
      this.options.metrics?.countUpdate?.(false);
      // A process that never saw a good configuration (a restart while an invalid one is in
      // place) starts from the one the leader recorded, never from none: no IP is taken away.
      if (!this.configApplied) await this.applyRecorded();
    } else {
      this.valid = true;
      this.errors = [];
      this.lastValidAt = this.clock
        .now()
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z');
      this.options.metrics?.setConfigValid(true);
      this.options.metrics?.setConfigStale?.(false);
      this.options.metrics?.setConfigLoaded?.(true);
      this.options.metrics?.countUpdate?.(true);
      this.apply(result.config.pools, 'the current configuration');
      this.lastGood = objects;
      await this.recordLastGood();
    }
    await this.report();
  }

  /** Applies pools: the ledger re-checks every claim; the loop learns who lost addresses and why. */
  private apply(pools: Parameters<Ledger['setPools']>[0], source: string): void {
    const revoked = this.options.ledger.setPools(pools);
    if (!this.configApplied) this.log(`configuration applied from ${source}: ${pools.length} pool(s)`);
    this.configApplied = true;
    for (const r of revoked) this.log(`${r.service} loses ${r.ips.map(formatIP).join(', ')}: ${r.failure.message}`);
    this.options.onApplied(revoked);
  }

  /** Leader only: records the configuration just applied, so that a process starting while the current one is invalid can start from it. */
  private async recordLastGood(): Promise<void> {
    if (!this.options.leading() || !this.lastGood) return;
    const text = JSON.stringify(this.lastGood);
    if (text === this.recordedText) return;
    const { kube, namespace } = this.options;
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: LAST_GOOD_CONFIG_MAP, namespace, labels: { 'app.kubernetes.io/managed-by': 'metallb-ts' } },
      data: { objects: text },
    };
    try {
      try {
        await kube.create(RESOURCES.configMaps, body);
      } catch (e) {
        if (!isKubeError(e, 409)) throw e;
        await kube.patch(RESOURCES.configMaps, LAST_GOOD_CONFIG_MAP, namespace, { data: body.data });
      }
      this.recordedText = text;
    } catch (e) {
      this.log(`recording the last good configuration: ${describeError(e)}`);
    }
  }

  /** Applies the configuration the leader last recorded, if there is one and it parses. */
  private async applyRecorded(): Promise<void> {
    const { kube, namespace } = this.options;
    let cm: KubeObject | undefined;
    try {
      cm = await kube.get(RESOURCES.configMaps, LAST_GOOD_CONFIG_MAP, namespace);
    } catch (e) {
      this.log(`reading the last good configuration: ${describeError(e)}`);
      return;
    }
    const text = (cm?.data as Record<string, unknown> | undefined)?.objects;
    if (typeof text !== 'string') {
      this.log('no last good configuration recorded: running with no pools until the configuration is fixed; no IP is revoked meanwhile');
      return;
    }
    try {
      const objects = JSON.parse(text) as ConfigObjects;
      const result = parseObjects(objects);
      if (result.errors.length > 0) throw new Error(result.errors.map(formatConfigError).join('; '));
      this.lastGood = objects;
      this.recordedText = text;
      this.apply(result.config.pools, `the last good configuration recorded in ${namespace}/${LAST_GOOD_CONFIG_MAP}`);
    } catch (e) {
      this.log(`the recorded last good configuration is unusable: ${describeError(e)}`);
    }
  }

  /** Leader only: the ConfigurationState and, when invalid, a Warning event on the ConfigMap. */
  async report(): Promise<void> {
    if (!this.options.leading() || (this.valid === undefined && !this.readError)) return;
    const { kube, namespace } = this.options;
    const status = {
      result: this.readError ? 'Unreadable' : this.valid ? 'Valid' : 'Invalid',
      errors: this.readError ? [this.readError, ...this.errors] : this.errors,
      ...(this.lastValidAt ? { lastValidAt: this.lastValidAt } : {}),
    };
    try {
      const existing = await kube.get(RESOURCES.configurationStates, 'controller', namespace);
      if (!existing) {
        await kube.create(RESOURCES.configurationStates, {
          apiVersion: apiVersionOf(RESOURCES.configurationStates),
          kind: 'ConfigurationState',
          metadata: { name: 'controller', namespace, labels: { 'metallb.io/component-type': 'controller' } },
        });
      }
      await kube.patch(RESOURCES.configurationStates, 'controller', namespace, { status }, { subresource: 'status' });
      if (this.valid === false && !this.readError) {
        const cm = await kube.get(RESOURCES.configMaps, CONFIG_MAP_NAME, namespace);
        const about = cm ?? { apiVersion: apiVersionOf(RESOURCES.configurationStates), kind: 'ConfigurationState', metadata: { name: 'controller', namespace } };
        await this.options.recorder.event(about, 'Warning', 'ConfigInvalid', `configuration invalid, running on the last valid one: ${this.errors.join('; ')}`);
      }
    } catch (e) {
      this.log(`reporting configuration state: ${String(e)}`);
    }
  }
}
