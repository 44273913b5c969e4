/**
 * The one configuration parser. The webhook, the controller, the agents and `kubectl metallb`
 * all call parseConfig, so they can never disagree about what the configuration means or
 * whether it is valid.
 */
import { readConfigMap } from './configmap.js';
import { readResources } from './crds.js';
import type { Declarations } from './declarations.js';
import type { Config, ConfigError, Pending } from './types.js';
import { merge } from './validate.js';

/** Everything the configuration is made of, as the cluster (or a set of files) holds it. */
export interface ConfigInput {
  /** ConfigMap metallb-system/config key `config` text, if present. */
  configMap?: { namespace: string; name: string; text: string };
  /**
   * metallb.io objects as the API returns them / as written in YAML (apiVersion, kind,
   * metadata{name,namespace,labels}, spec). Unknown kinds -> error. A missing namespace reads
   * as metallb-system.
   */
  resources: unknown[];
  /**
   * Secrets the peers may reference, key `${namespace}/${name}` -> Secret `data` (base64
   * values, as the API returns). Absent key = Secret does not exist yet -> Pending, not error.
   */
  secrets?: Record<string, Record<string, string>>;
}

/**
 * `config` is trustworthy only when `errors` is empty. Otherwise it holds the objects that
 * were valid on their own (for `explain` and status), but guarantees that span objects (no
 * overlaps, resolved references) do not hold: programs keep running on their last good Config.
 * `pending` lists references that cannot be resolved yet; those peers are in `config` without
 * their password.
 */
export interface ConfigResult {
  config: Config;
  errors: ConfigError[];
  pending: Pending[];
}

/**
 * Parse and validate both sources into one Config, reporting every problem at once. Total:
 * no input makes it throw.
 */
export function parseConfig(input: ConfigInput): ConfigResult {
  const errors: ConfigError[] = [];
  const pending: Pending[] = [];
  try {
    const sources: Declarations[] = [];
    const cm: unknown = (input as Partial<ConfigInput> | null | undefined)?.configMap;
    if (cm !== undefined && cm !== null) {
      const { namespace, name, text } = cm as Partial<NonNullable<ConfigInput['configMap']>>;
      const source = { namespace: typeof namespace === 'string' ? namespace : 'metallb-system', name: typeof name === 'string' ? name : 'config' };
      if (typeof text === 'string') sources.push(readConfigMap({ ...source, text }, errors));
      else errors.push({ source: `ConfigMap ${source.namespace}/${source.name}`, path: 'data.config', message: 'must be the configuration text' });
    }
    const resources: unknown = (input as Partial<ConfigInput> | null | undefined)?.resources;
    if (Array.isArray(resources)) sources.push(readResources(resources, input.secrets, errors, pending));
    else if (resources !== undefined) errors.push({ source: 'input', path: 'resources', message: 'must be a list of metallb.io objects' });
    return { config: merge(sources, errors), errors, pending };
  } catch (e) {
    // Unreachable by design; if a bug lands here the operator still gets a message, not a crash.
    const message = `internal error in the configuration parser (a bug, please report it): ${e instanceof Error ? e.message : String(e)}`;
    return { config: emptyConfig(), errors: [...errors, { source: 'metallb-ts', path: '', message }], pending };
  }
}

/** One line for logs, events and the CLI: `source: path: message` (the path left out when empty). */
export function formatConfigError(e: ConfigError | Pending): string {
  return e.path ? `${e.source}: ${e.path}: ${e.message}` : `${e.source}: ${e.message}`;
}

/** A Config with nothing in it: what a cluster without configuration runs on. */
export function emptyConfig(): Config {
  return { pools: [], peers: [], bfdProfiles: [], communities: {}, l2Advertisements: [], bgpAdvertisements: [] };
}

export { parseCommunity, formatCommunity } from './community.js';
export { selectorMatches } from './selector.js';
export { selectedPools } from './validate.js';
export { parseDuration, type Duration } from './duration.js';
export * from './types.js';
