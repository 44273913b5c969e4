/**
 * The agent's view of the configuration (the ConfigMap `config` and the metallb.io objects in
 * our namespace), read-only:
 *
 * - watches each kind and loads the whole configuration after a change (debounced; loads never
 *   overlap, and the last one always reads after the last change), through kube/config.ts's
 *   reader and the one parser, so the agent and the controller can never disagree;
 * - applies only a whole, valid read. A failed read (any API error but "kind not installed")
 *   or an invalid configuration keeps the last good one; failed reads are retried with backoff;
 * - an agent that starts while the configuration is invalid starts from the one the
 *   controller's leader recorded as last good (`metallb-last-good-config`), never from none;
 * - reports in its ConfigurationState `agent-<node>` (result, errors, lastValidAt), in the
 *   metrics (`metallb_k8s_client_config_loaded_bool`, `..._stale_bool`) and the log. No event:
 *   the controller's leader already puts one on the ConfigMap, and one per node would repeat it.
 */
import { formatConfigError, type Config } from '../core/config/index.js';
import { apiVersionOf, CONFIG_KINDS, isKubeError, Reflector, RESOURCES, type KubeApi, type KubeObject } from '../kube/client.js';
import { systemClock, type Clock } from '../kube/clock.js';
import { parseObjects, readConfigObjects, readRecordedConfig, LAST_GOOD_CONFIG_MAP, type ConfigObjects } from '../kube/config.js';
import { systemTimers, type Timers } from '../kube/queue.js';
import { describeError, silentLogger, type Logger } from './log.js';
import { SerialLoad } from '../kube/serial-load.js';

/** An ownerReference, as the agent puts on what it writes (its Pod). */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/** What the watch reports to metrics (the agent's Metrics satisfies it). */
export interface ConfigMetrics {
  setConfigLoaded(loaded: boolean): void;
  setConfigStale(stale: boolean): void;
  countUpdate(ok: boolean): void;
}

export interface ConfigWatchOptions {
  kube: KubeApi;
  namespace: string;
  nodeName: string;
  /** Called with every configuration applied (the first, and each valid change). */
  onChange: (config: Config) => void;
  /** Owner of the ConfigurationState (the agent's Pod). */
  owner?: OwnerReference;
  metrics?: ConfigMetrics;
  /** Delay between a change and the load (default 50 ms): a `kubectl apply` of many objects costs one load. */
  debounceMs?: number;
  clock?: Clock;
  timers?: Timers;
  log?: Logger;
}

/** An object's content apart from its status and bookkeeping metadata. */
function content(o: KubeObject): string {
  const { metadata, status: _status, ...rest } = o;
  return JSON.stringify([metadata.labels ?? {}, metadata.annotations ?? {}, rest]);
}

/** What the parser reads of a configuration, to tell a real change from a rewrite of the same. */
function fingerprint(objects: ConfigObjects): string {
  const resources = objects.resources
    .map((o) => JSON.stringify([o.kind, o.metadata.name, o.metadata.labels ?? {}, o.spec ?? null]))
    .sort()
    .join('\n');
  return `${objects.configMap?.text ?? ''}\n---\n${resources}`;
}

export type ConfigResultKind = 'Valid' | 'Invalid' | 'Unknown';

export class ConfigWatch {
  /** The configuration in use: the last good one (undefined until one was applied). */
  config: Config | undefined;
  /** What the last load found. */
  result: ConfigResultKind = 'Unknown';
  errors: string[] = [];
  private lastValidAt: string | undefined;
  private applied: string | undefined;
  /** Loads never overlap; a failed read keeps what was loaded and is retried with backoff. */
  private readonly loader: SerialLoad;
  private readonly reflectors: Reflector[] = [];
  private readonly contents = new Map<string, string>();
  private reported = '';
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly log: Logger;
  private resolveLoaded: () => void = () => {};
  /** Resolves once a load has read the configuration (valid or not): the agent knows what to run on. */
  readonly loaded: Promise<void>;

  constructor(private readonly options: ConfigWatchOptions) {
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.log = options.log ?? silentLogger;
    this.loader = new SerialLoad({
      load: () => this.load(),
      failed: (e) => {
        this.log.warn(`could not read the configuration: ${describeError(e)}; keeping the ${this.config ? 'last good one' : 'none (announcing nothing)'}, retrying`);
        this.options.metrics?.setConfigStale(true);
        this.options.metrics?.countUpdate(false);
      },
      debounceMs: options.debounceMs ?? 50,
      timers: this.timers,
    });
    this.loaded = new Promise((r) => (this.resolveLoaded = r));
  }

  /** Starts the watches and the first load; resolves once the configuration was read (retrying meanwhile). */
  async start(): Promise<void> {
    const { kube, namespace } = this.options;
    for (const r of [RESOURCES.configMaps, ...Object.values(CONFIG_KINDS)]) {
      const isConfigMaps = r === RESOURCES.configMaps;
      const relevant = (o: KubeObject) => !isConfigMaps || o.metadata.name === 'config';
      const ref = new Reflector(
        kube,
        r,
        {
          onSync: (items) => {
            for (const k of [...this.contents.keys()]) if (k.startsWith(`${r.plural}/`)) this.contents.delete(k);
            for (const o of items) if (relevant(o)) this.contents.set(`${r.plural}/${o.metadata.name ?? ''}`, content(o));
            this.request();
          },
          onEvent: (type, o) => {
            if (!relevant(o)) return; // other ConfigMaps: the recorded last good one, anyone's
            const key = `${r.plural}/${o.metadata.name ?? ''}`;
            if (type === 'DELETED') this.contents.delete(key);
            else {
              const c = content(o);
              // The controller's pool status writes are no configuration change.
              if (this.contents.get(key) === c) return;
              this.contents.set(key, c);
            }
            this.request();
          },
          onError: (e) => this.log.debug(`watching ${r.plural}: ${describeError(e)}`),
        },
        { namespace },
      );
      this.reflectors.push(ref);
      // Not awaited: a kind whose CRD is not installed keeps failing its list; loads read by list anyway.
      void ref.start({ wait: false }).catch(() => undefined);
    }
    this.request(0);
    await this.loaded;
  }

  stop(): Promise<void> {
    for (const r of this.reflectors) r.stop();
    return this.loader.stop();
  }

  /** Loads soon (coalescing changes that come together). */
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
    const result = parseObjects(objects);
    if (result.errors.length > 0) {
      const errors = result.errors.map(formatConfigError);
      if (this.result !== 'Invalid' || errors.join('\n') !== this.errors.join('\n'))
        this.log.warn(`configuration invalid, ${this.config ? 'keeping the last good one' : 'looking for the recorded last good one'}: ${errors.join('; ')}`);
      this.result = 'Invalid';
      this.errors = errors;
      this.options.metrics?.setConfigStale(true);
      this.options.metrics?.countUpdate(false);
      if (!this.config) await this.applyRecorded();
    } else {
      const print = fingerprint(objects);
      // When the configuration this agent runs on was loaded: stamped when it changes, not on every load.
      if (this.result !== 'Valid' || print !== this.applied)
        this.lastValidAt = this.clock
          .now()
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z');
      this.result = 'Valid';
      this.errors = [];
      this.options.metrics?.setConfigStale(false);
      this.options.metrics?.setConfigLoaded(true);
      this.options.metrics?.countUpdate(true);
      this.apply(result.config, print, 'the current configuration');
    }
    this.resolveLoaded();
    await this.report();
  }

  private apply(config: Config, print: string, source: string): void {
    if (print === this.applied) return;
    const first = this.applied === undefined;
    this.applied = print;
    this.config = config;
    this.log.info(`configuration ${first ? 'applied' : 'changed'} from ${source}: ${config.pools.length} pool(s), ${config.l2Advertisements.length} L2Advertisement(s)`);
    this.options.onChange(config);
  }

  /** Applies the configuration the controller's leader recorded, if there is one and it parses. */
  private async applyRecorded(): Promise<void> {
    const { kube, namespace } = this.options;
    try {
      const recorded = await readRecordedConfig(kube, namespace);
      if (!recorded) {
        this.log.warn('no last good configuration recorded: announcing nothing until the configuration is fixed');
        return;
      }
      this.apply(recorded.result.config, fingerprint(recorded.objects), `the last good configuration recorded in ${namespace}/${LAST_GOOD_CONFIG_MAP}`);
    } catch (e) {
      this.log.warn(`the recorded last good configuration is unusable: ${describeError(e)}`);
    }
  }

  /** The name of this agent's ConfigurationState. */
  get stateName(): string {
    return `agent-${this.options.nodeName}`;
  }

  /** Writes the ConfigurationState when what it says changed. Failures are logged and retried with the next load. */
  private async report(): Promise<void> {
    const { kube, namespace, nodeName, owner } = this.options;
    const status = { result: this.result, errors: this.errors, ...(this.lastValidAt ? { lastValidAt: this.lastValidAt } : {}) };
    const text = JSON.stringify(status);
    if (text === this.reported) return;
    const r = RESOURCES.configurationStates;
    try {
      try {
        await kube.patch(r, this.stateName, namespace, { status }, { subresource: 'status' });
      } catch (e) {
        if (!isKubeError(e, 404)) throw e;
        const created = kube.create(r, {
          apiVersion: apiVersionOf(r),
          kind: 'ConfigurationState',
          metadata: {
            name: this.stateName,
            namespace,
            labels: { 'metallb.io/component-type': 'agent', 'metallb.io/node-name': nodeName },
            ...(owner ? { ownerReferences: [{ ...owner, controller: true }] } : {}),
          },
        });
        // Created meanwhile by an earlier run of this agent: fine, the patch below writes it.
        await created.catch((c: unknown) => {
          if (!isKubeError(c, 409)) throw c;
        });
        await kube.patch(r, this.stateName, namespace, { status }, { subresource: 'status' });
      }
      this.reported = text;
    } catch (e) {
      this.log.warn(`reporting the configuration state in ${namespace}/${this.stateName}: ${describeError(e)}`);
    }
  }
}
