/**
 * Reading the configuration from the API, shared by the controller and the node agents: the
 * ConfigMap `<namespace>/config` and every metallb.io configuration kind in our namespace, run
 * through the one parser (core/config). Only "this kind is not installed" (404) reads as no
 * objects of a kind; any other error rejects, so a partial read is never taken for the
 * configuration. `LAST_GOOD_CONFIG_MAP` is where the controller's leader records the last good
 * configuration, which a process starting while the current one is invalid starts from.
 */
import { parseConfig, type ConfigResult } from '../core/config/index.js';
import { CONFIG_KINDS, isKubeError, RESOURCES, type KubeApi, type KubeObject } from './client.js';
import { CONFIG_MAP_NAME } from './names.js';

export { CONFIG_MAP_NAME } from './names.js';

/** The ConfigMap where the leader records the last configuration it applied (read by a process that starts while the current one is invalid). */
export const LAST_GOOD_CONFIG_MAP = 'metallb-last-good-config';

/** The configuration as the API holds it: the ConfigMap's text and the metallb.io objects. */
export interface ConfigObjects {
  configMap?: { namespace: string; name: string; text: string };
  resources: KubeObject[];
}

/**
 * Lists the current configuration objects in `namespace`. Only "this kind is not installed"
 * (404) reads as no objects of that kind; any other error rejects, so that a partial read is
 * never taken for the configuration (an HTTP 500 while listing pools is not "no pools").
 */
export async function readConfigObjects(kube: KubeApi, namespace: string): Promise<ConfigObjects> {
  // All at once: the ConfigMap need not arrive before the lists are asked for.
  const [cm, lists] = await Promise.all([
    kube.get(RESOURCES.configMaps, CONFIG_MAP_NAME, namespace),
    Promise.all(
      Object.entries(CONFIG_KINDS).map(async ([kind, r]) => {
        try {
          return (await kube.list(r, { namespace })).items.map((o) => ({ ...o, kind, apiVersion: `${r.group}/${r.version}` }));
        } catch (e) {
          if (isKubeError(e, 404)) return []; // the CRD is not installed: no objects of that kind
          throw new Error(`listing ${r.plural}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
      }),
    ),
  ]);
  const text = (cm?.data as Record<string, string> | undefined)?.config;
  return { ...(cm && typeof text === 'string' ? { configMap: { namespace, name: CONFIG_MAP_NAME, text } } : {}), resources: lists.flat() };
}

/** Parses configuration objects (the one parser). */
export function parseObjects(objects: ConfigObjects): ConfigResult {
  return parseConfig({ ...(objects.configMap ? { configMap: objects.configMap } : {}), resources: objects.resources });
}

/**
 * The configuration the controller's leader recorded as last good, parsed; undefined when none
 * is recorded. Rejects when it cannot be read (an API error) or is unusable (it no longer parses).
 */
export async function readRecordedConfig(kube: KubeApi, namespace: string): Promise<{ objects: ConfigObjects; text: string; result: ConfigResult } | undefined> {
  const cm = await kube.get(RESOURCES.configMaps, LAST_GOOD_CONFIG_MAP, namespace);
  const text = (cm?.data as Record<string, unknown> | undefined)?.objects;
  if (typeof text !== 'string') return undefined;
  const objects = JSON.parse(text) as ConfigObjects;
  const result = parseObjects(objects);
  if (result.errors.length > 0) throw new Error(`${result.errors.length} error(s), e.g. ${result.errors[0]?.message ?? ''}`);
  return { objects, text, result };
}
