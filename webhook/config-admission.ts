/**
 * Validating admission of the configuration: the ConfigMap `<namespace>/config` and every
 * metallb.io configuration kind, CREATE/UPDATE/DELETE. The change is merged into the current
 * configuration (listed from the API) and run through the one parser; a change that adds
 * errors is denied with all of them, and a change that would take IPs away from Services
 * (a pool removed or shrunk under them) is denied unless the object carries
 * `metallb.io/force: "true"`, in which case it is admitted with a warning naming the Services
 * (the reconcile loop then revokes and re-assigns them).
 *
 * As MetalLB's webhook: a metallb.io object is refused outside our namespace (it would be
 * ignored), and a BFD profile in use by a peer cannot be deleted. What the change adds in
 * warnings (a CIDR with host bits, a deprecated field) and pending references (an object
 * named that does not exist yet) comes back as admission warnings: admitted, so that a folder
 * of objects applies in any order, but said.
 */
import { Allocator, type Revocation } from '../core/allocator/index.js';
import { formatConfigError, parseConfig, type ConfigResult } from '../core/config/index.js';
import { formatIP } from '../core/ip/index.js';
import type { Ledger } from './claims.js';
import { CONFIG_KINDS, CONFIG_MAP_NAME, type KubeApi, type KubeObject } from '../kube/client.js';
import { readConfigObjects, type ConfigObjects } from '../kube/config.js';
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
    if (request.operation === 'CONNECT') return { allowed: true };
    if ((request.namespace ?? namespace) !== namespace) {
      // Another namespace's ConfigMap is not ours. A metallb.io object there would be ignored:
      // refused on its way in (the parser words why), let go on its way out.
      if (isConfigMap || request.operation === 'DELETE') return { allowed: true };
      const stray = parseConfig({ resources: [withKind(request.object as KubeObject, request)], namespace });
      return { allowed: false, code: 400, message: stray.errors.map(formatConfigError).join('; ') };
    }
    if (isConfigMap && request.name !== CONFIG_MAP_NAME) return { allowed: true };

    const current = await readConfigObjects(this.options.kube, namespace);
    const before = parse(current, namespace);
    if (request.kind.kind === 'BFDProfile' && request.operation === 'DELETE') {
      const users = before.config.peers.filter((p) => p.bfdProfile === request.name);
      if (users.length > 0) return denyProfileInUse(request.name, users.map(describePeer));
    }
    const after = parse(merge(current, request), namespace);
    const added = news(before.errors, after.errors);
    if (added.length > 0) return { allowed: false, code: 400, message: added.join('; ') };
    // Errors that were there before and remain are not this change's fault: the loop reports them.
    const warnings = [...news(before.warnings, after.warnings), ...news(before.pending, after.pending).map((p) => `pending: ${p}`)];

    const lost = stranded(this.options.ledger, after);
    if (lost.length === 0) return warnings.length > 0 ? { allowed: true, warnings } : { allowed: true };
    const changed = (request.object ?? request.oldObject) as KubeObject | undefined;
    const forced = changed?.metadata?.annotations?.[FORCE_ANNOTATION] === 'true';
    const list = lost.map((r) => `${r.service} (${r.ips.map(formatIP).join(', ')})`);
    const shown = list.length > 10 ? [...list.slice(0, 10), `and ${list.length - 10} more`] : list;
    if (forced) return { allowed: true, warnings: [`${lost.length} Service(s) will lose their IPs: ${shown.join(', ')}`, ...warnings] };
    return denyStranding(lost.length, shown);
  };
}

/** The one parser, told which namespace the configuration must be in. */
function parse(objects: ConfigObjects, namespace: string): ConfigResult {
  return parseConfig({ ...(objects.configMap ? { configMap: objects.configMap } : {}), resources: objects.resources, namespace });
}

/** Findings of `after` that `before` did not have, one line each. */
function news(before: readonly Parameters<typeof formatConfigError>[0][], after: readonly Parameters<typeof formatConfigError>[0][]): string[] {
  const known = new Set(before.map(formatConfigError));
  return after.map(formatConfigError).filter((e) => !known.has(e));
}

function describePeer(p: ConfigResult['config']['peers'][number]): string {
  return p.origin.kind === 'ConfigMap' ? `peer ${p.origin.path} of ConfigMap ${p.origin.namespace}/${p.origin.name}` : `BGPPeer ${p.origin.namespace}/${p.name}`;
}

/** MetalLB's rule: a BFD profile cannot go while a peer uses it (the session would silently lose BFD). */
function denyProfileInUse(name: string, users: string[]): AdmissionVerdict {
  return {
    allowed: false,
    code: 400,
    message: `BFDProfile ${name} is used by ${users.join(', ')}: point ${users.length === 1 ? 'it' : 'them'} at another profile, or remove bfdProfile, before deleting it`,
  };
}

function denyStranding(count: number, shown: string[]): AdmissionVerdict {
  return {
    allowed: false,
    code: 422,
    message: `this change would take IPs away from ${count} Service(s) in use: ${shown.join(', ')}; move them first, or annotate the object ${FORCE_ANNOTATION}="true" to revoke them`,
  };
}

/** The configuration objects after the request's change (made in our namespace: checked before). */
function merge(current: ConfigObjects, request: AdmissionRequest): ConfigObjects {
  const namespace = request.namespace ?? '';
  if (request.kind.kind === 'ConfigMap') {
    if (request.operation === 'DELETE') return { resources: current.resources };
    const text = ((request.object as KubeObject | undefined)?.data as Record<string, string> | undefined)?.config;
    // A ConfigMap without the key is an empty configuration (the parser reports a non-string).
    return { configMap: { namespace, name: CONFIG_MAP_NAME, text: text ?? '' }, resources: current.resources };
  }
  const obj = withKind((request.object ?? request.oldObject) as KubeObject, request);
  const rest = current.resources.filter((o) => key(o) !== key(obj));
  return { ...current, resources: request.operation === 'DELETE' ? rest : [...rest, obj] };
}

/** The object as the request names it: kind and version from the request, namespace and name filled in. */
function withKind(changed: KubeObject | undefined, request: AdmissionRequest): KubeObject {
  const metadata = changed?.metadata ?? {};
  return {
    ...changed,
    kind: request.kind.kind,
    apiVersion: `${request.kind.group}/${request.kind.version}`,
    metadata: { ...metadata, ...(request.namespace ? { namespace: request.namespace } : {}), name: metadata.name || request.name },
  } as KubeObject;
}
