/**
 * The one configuration parser. The webhook, the controller, the agents and `kubectl metallb`
 * all call parseConfig, so they can never disagree about what the configuration means or
 * whether it is valid.
 */
import { readConfigMap } from './configmap.js';
import { readResources } from './crds.js';
import type { Declarations } from './declarations.js';
import type { Report } from './read.js';
import type { Config, ConfigError, ConfigWarning, Pending } from './types.js';
import { merge } from './validate.js';

/**
 * A Secret a peer may name: as the API returns it (`type`, base64 `data`). A bare `data` map is
 * still accepted from older callers; its type is then unknown and not checked.
 */
export type SecretInput = { type?: string; data?: Record<string, string> } | Record<string, string>;

/** Everything the configuration is made of, as the cluster (or a set of files) holds it. */
export interface ConfigInput {
  /** ConfigMap metallb-system/config key `config` text, if present. */
  configMap?: { namespace: string; name: string; text: string };
  /**
   * metallb.io objects as the API returns them / as written in YAML (apiVersion, kind,
   * metadata{name,namespace,labels}, spec). Unknown kinds -> error. A missing namespace reads
   * as `namespace` (metallb-system when that is not given either).
   */
  resources: unknown[];
  /**
   * The namespace the controller reads its configuration from. When given, an object in another
   * namespace is an error naming it (MetalLB's webhook refuses those) and not configuration.
   * Leave it out only for objects already listed from that one namespace.
   */
  namespace?: string;
  /**
   * Secrets the peers may reference, key `${namespace}/${name}`. Absent key = the Secret does not
   * exist yet -> Pending, not an error. MetalLB requires type kubernetes.io/basic-auth.
   */
  secrets?: Record<string, SecretInput>;
}

/**
 * `config` is trustworthy only when `errors` is empty. Otherwise it holds the objects that
 * were valid on their own (for `explain` and status), but guarantees that span objects (no
 * overlaps, resolved references) do not hold: programs keep running on their last good Config.
 *
 * `pending` lists references to separate objects that do not exist yet (a BFD profile, a
 * community alias, a pool, a password Secret): not errors, so that applying a folder of objects
 * works in any order. Until they resolve, a peer runs without its password or BFD profile, an
 * advertisement covers the pools that exist, and an advertisement missing a community alias is
 * left out (its routes would otherwise go out without the community asked for).
 *
 * `warnings` are accepted as MetalLB accepts them, with what to write instead.
 */
export interface ConfigResult {
  config: Config;
  errors: ConfigError[];
  pending: Pending[];
  warnings: ConfigWarning[];
}

/**
 * Parse and validate both sources into one Config, reporting every problem at once. Total:
 * no input makes it throw.
 */
export function parseConfig(input: ConfigInput): ConfigResult {
  const report: Report = { errors: [], warnings: [], pending: [] };
  const { errors, pending, warnings } = report;
  try {
    const sources: Declarations[] = [];
    const given = input as Partial<ConfigInput> | null | undefined;
    const namespace = typeof given?.namespace === 'string' && given.namespace !== '' ? given.namespace : undefined;
    const cm: unknown = given?.configMap;
    if (cm !== undefined && cm !== null) {
      const { namespace: cmNamespace, name, text } = cm as Partial<NonNullable<ConfigInput['configMap']>>;
      const source = {
        namespace: typeof cmNamespace === 'string' ? cmNamespace : (namespace ?? 'metallb-system'),
        name: typeof name === 'string' ? name : 'config',
      };
      if (typeof text === 'string') sources.push(readConfigMap({ ...source, text }, report));
      else errors.push({ source: `ConfigMap ${source.namespace}/${source.name}`, path: 'data.config', message: 'must be the configuration text' });
    }
    const resources: unknown = given?.resources;
    if (Array.isArray(resources)) sources.push(readResources(resources, given?.secrets, report, namespace));
    else if (resources !== undefined) errors.push({ source: 'input', path: 'resources', message: 'must be a list of metallb.io objects' });
    return { config: merge(sources, report), errors, pending, warnings };
  } catch (e) {
    // Unreachable by design; if a bug lands here the operator still gets a message, not a crash.
    const message = `internal error in the configuration parser (a bug, please report it): ${e instanceof Error ? e.message : String(e)}`;
    return { config: emptyConfig(), errors: [...errors, { source: 'metallb-ts', path: '', message }], pending, warnings };
  }
}

/** One line for logs, events and the CLI: `source: path: message` (the path left out when empty). */
export function formatConfigError(e: ConfigError | Pending | ConfigWarning): string {
  return e.path ? `${e.source}: ${e.path}: ${e.message}` : `${e.source}: ${e.message}`;
}

/** A Config with nothing in it: what a cluster without configuration runs on. */
export function emptyConfig(): Config {
  return { pools: [], peers: [], bfdProfiles: [], communities: {}, l2Advertisements: [], bgpAdvertisements: [] };
}

export { parseCommunity, formatCommunity } from './community.js';
export { selectorListsOverlap, selectorMatches, selectorsCanMatchTogether } from './selector.js';
export { selectedPools } from './validate.js';
export { parseDuration, type Duration } from './duration.js';
export { BGP_SPEAKER_RELEASE } from './objects.js';
export { BASIC_AUTH } from './crds.js';
export * from './types.js';
