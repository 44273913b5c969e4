/**
 * Validating admission of the configuration: the ConfigMap `<namespace>/config` and every
 * metallb.io configuration kind, CREATE/UPDATE/DELETE. The change is merged into the current
 * configuration (listed from the API) and run through the one parser; a change that adds
 * errors is denied with all of them, and a change that would take IPs away from Services
 * (a pool removed or shrunk under them) is denied unless the object carries
 * `metallb.io/force: "true"`, in which case it is admitted with a warning naming the Services
 * (the reconcile loop then revokes and re-assigns them).
 */
import { Allocator, type Revocation } from '../core/allocator/index.js';
import { formatConfigError, type ConfigResult } from '../core/config/index.js';
import { formatIP } from '../core/ip/index.js';
import type { Ledger } from './claims.js';
import { CONFIG_KINDS, CONFIG_MAP_NAME, type KubeApi, type KubeObject } from '../kube/client.js';
import { parseObjects, readConfigObjects, type ConfigObjects } from '../kube/config.js';
import type { AdmissionHandler, AdmissionRequest, AdmissionVerdict } from './review.js';

/** The annotation that lets a configuration change strand IPs in use. */
export const FORCE_ANNOTATION = 'metallb.io/force';

export { CONFIG_MAP_NAME, LAST_GOOD_CONFIG_MAP, parseObjects, readConfigObjects, type ConfigObjects } from '../kube/config.js';

/** Who would lose IPs if the pools became `result`'s (empty when nobody). */
export function stranded(ledger: Ledger, result: ConfigResult): Revocation[] {
  const trial = new Allocator(result.config.pools);
  return trial.restore(ledger.allocator.allocations().map((c) => ({ request: c.request, ips: c.ips, pool: c.pool })));
}

export interface ConfigAdmissionOptions {
  kube: KubeApi;
  ledger: Ledger;
  /** Where the configuration lives (metallb-system). */
  namespace: string;
}

const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

/** The validating handler for configuration objects. */
export class ConfigAdmission {
  constructor(private readonly options: ConfigAdmissionOptions) {}

  readonly validate: AdmissionHandler = async (request) => {
    const { namespace } = this.options;
    const isConfigMap = request.kind.group === '' && request.kind.kind === 'ConfigMap';
    const isResource = request.kind.group === 'metallb.io' && request.kind.kind in CONFIG_KINDS;
    if (!isConfigMap && !isResource) return { allowed: true };
    if ((request.namespace ?? namespace) !== namespace) return { allowed: true }; // not read by MetalLB
    if (isConfigMap && request.name !== CONFIG_MAP_NAME) return { allowed: true };
    if (request.operation === 'CONNECT') return { allowed: true };

    const current = await readConfigObjects(this.options.kube, namespace);
    const next = merge(current, request, namespace);
    const before = parseObjects(current);
    const after = parseObjects(next);
    const known = new Set(before.errors.map(formatConfigError));
    const added = after.errors.map(formatConfigError).filter((e) => !known.has(e));
    if (added.length > 0) return { allowed: false, code: 400, message: added.join('; ') };
    // Errors that were there before and remain are not this change's fault: the loop reports them.

    const lost = stranded(this.options.ledger, after);
    if (lost.length === 0) return { allowed: true };
    const changed = (request.object ?? request.oldObject) as KubeObject | undefined;
    const forced = changed?.metadata?.annotations?.[FORCE_ANNOTATION] === 'true';
    const list = lost.map((r) => `${r.service} (${r.ips.map(formatIP).join(', ')})`);
    const shown = list.length > 10 ? [...list.slice(0, 10), `and ${list.length - 10} more`] : list;
    if (forced) return { allowed: true, warnings: [`${lost.length} Service(s) will lose their IPs: ${shown.join(', ')}`] };
    return denyStranding(lost.length, shown);
  };
}

function denyStranding(count: number, shown: string[]): AdmissionVerdict {
  return {
    allowed: false,
    code: 422,
    message: `this change would take IPs away from ${count} Service(s) in use: ${shown.join(', ')}; move them first, or annotate the object ${FORCE_ANNOTATION}="true" to revoke them`,
  };
}

/** The configuration objects after the request's change. */
function merge(current: ConfigObjects, request: AdmissionRequest, namespace: string): ConfigObjects {
  if (request.kind.kind === 'ConfigMap') {
    if (request.operation === 'DELETE') return { resources: current.resources };
    const text = ((request.object as KubeObject | undefined)?.data as Record<string, string> | undefined)?.config;
    // A ConfigMap without the key is an empty configuration (the parser reports a non-string).
    return { configMap: { namespace, name: CONFIG_MAP_NAME, text: text ?? '' }, resources: current.resources };
  }
  const changed = (request.object ?? request.oldObject) as KubeObject;
  const obj: KubeObject = {
    ...changed,
    kind: request.kind.kind,
    apiVersion: `${request.kind.group}/${request.kind.version}`,
    metadata: { ...changed.metadata, namespace, name: changed.metadata?.name || request.name },
  };
  const rest = current.resources.filter((o) => key(o) !== key(obj));
  return { ...current, resources: request.operation === 'DELETE' ? rest : [...rest, obj] };
}
