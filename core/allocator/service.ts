/**
 * The one adapter from a Kubernetes Service to a Request. It reads a plain structural shape
 * (what the API server sends as JSON, and what client-node's V1Service also satisfies), so
 * core stays free of the Kubernetes client.
 */
import { parseIP, formatIP, type Family, type IP } from '../ip/index.js';
import type { Failure, IPFamilyPolicy, Request, ServicePort } from './request.js';

/** The annotations MetalLB reads on a Service; each has a deprecated `metallb.universe.tf/` alias. */
export const ANNOTATIONS = {
  addressPool: 'metallb.io/address-pool',
  loadBalancerIPs: 'metallb.io/loadBalancerIPs',
  allowSharedIP: 'metallb.io/allow-shared-ip',
} as const;

const DEPRECATED_PREFIX = 'metallb.universe.tf/';

/** The parts of a Service the allocator needs; every field optional, as in JSON. */
export interface ServiceShape {
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string> | null;
    annotations?: Record<string, string> | null;
  } | null;
  spec?: {
    type?: string | null;
    loadBalancerIP?: string | null;
    loadBalancerClass?: string | null;
    ipFamilies?: string[] | null;
    ipFamilyPolicy?: string | null;
    ports?: { port?: number | null; protocol?: string | null }[] | null;
    externalTrafficPolicy?: string | null;
    selector?: Record<string, string> | null;
  } | null;
}

/** A deprecated annotation name found on the Service, for the webhook's warning. */
export interface DeprecatedAnnotation {
  used: string;
  preferred: string;
}

/** The Request for a Service, or a `malformed-annotation` failure; deprecated names either way. */
export type ServiceRequest = { ok: true; request: Request; deprecated: DeprecatedAnnotation[] } | { ok: false; failure: Failure; deprecated: DeprecatedAnnotation[] };

const POLICIES: readonly IPFamilyPolicy[] = ['SingleStack', 'PreferDualStack', 'RequireDualStack'];
const PROTOCOLS: readonly string[] = ['TCP', 'UDP', 'SCTP'];

type Fields = Record<string, unknown>;

const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const absent = (v: unknown): v is null | undefined => v === undefined || v === null;

/** A bad value, shortly: `5`, `"x"`, `a list`, `a map`. */
function shown(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isMap(v)) return 'a map';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  return String(v);
}

/** The problem with a map that must hold only strings (labels, annotations, a selector), if any. */
function stringMapProblem(v: unknown, field: string, entry: (key: string) => string): string | undefined {
  if (absent(v)) return undefined;
  if (!isMap(v)) return `${field} must be a map of strings, got ${shown(v)}`;
  for (const key of Object.keys(v)) {
    const value = v[key];
    if (typeof value !== 'string') return `${entry(key)} must be a string, got ${shown(value)}`;
  }
  return undefined;
}

/**
 * Read a Service's request for load-balancer IPs. Malformed input (a bad IP, two IPs of one
 * family, loadBalancerIP contradicting the annotation, an old and a new annotation name with
 * different values, a field of the wrong type) is returned as a failure naming the field,
 * never thrown: the object comes from the wire as untyped JSON, whatever ServiceShape says.
 */
export function serviceToRequest(svc: ServiceShape | object, namespaceLabels: Readonly<Record<string, string>>): ServiceRequest {
  const deprecated: DeprecatedAnnotation[] = [];
  const rawMeta: unknown = (svc as unknown as Fields | null)?.metadata;
  const rawSpec: unknown = (svc as unknown as Fields | null)?.spec;
  const metaFields: Fields = isMap(rawMeta) ? rawMeta : {};
  const namespace = typeof metaFields.namespace === 'string' && metaFields.namespace ? metaFields.namespace : 'default';
  const name = typeof metaFields.name === 'string' ? metaFields.name : '';
  const where = `${namespace}/${name}`;
  const fail = (message: string): ServiceRequest => ({ ok: false, failure: { code: 'malformed-annotation', message: `${where}: ${message}` }, deprecated });

  // Shapes first: every later read may then use string and list methods.
  if (!absent(rawMeta) && !isMap(rawMeta)) return fail(`metadata must be a map, got ${shown(rawMeta)}`);
  if (!absent(rawSpec) && !isMap(rawSpec)) return fail(`spec must be a map, got ${shown(rawSpec)}`);
  const spec: Fields = isMap(rawSpec) ? rawSpec : {};
  const shapeProblem =
    stringMapProblem(metaFields.annotations, 'metadata.annotations', (k) => `annotation ${k}`) ??
    stringMapProblem(metaFields.labels, 'metadata.labels', (k) => `label ${k}`) ??
    stringMapProblem(spec.selector, 'spec.selector', (k) => `spec.selector.${k}`) ??
    scalarProblem(spec, 'loadBalancerIP') ??
    scalarProblem(spec, 'ipFamilyPolicy') ??
    scalarProblem(spec, 'externalTrafficPolicy');
  if (shapeProblem) return fail(shapeProblem);
  const annotations = (metaFields.annotations ?? {}) as Record<string, string>;
  const labels = (metaFields.labels ?? {}) as Record<string, string>;
  const selector = (spec.selector ?? {}) as Record<string, string>;
  const loadBalancerIP = spec.loadBalancerIP as string | null | undefined;
  const ipFamilyPolicy = spec.ipFamilyPolicy as string | null | undefined;
  const externalTrafficPolicy = spec.externalTrafficPolicy as string | null | undefined;

  const read = (preferred: string): { value?: string; error?: string } => {
    const old = DEPRECATED_PREFIX + preferred.slice(preferred.indexOf('/') + 1);
    const now = annotations[preferred];
    const then = annotations[old];
    if (then !== undefined) deprecated.push({ used: old, preferred });
    if (now !== undefined && then !== undefined && now !== then) {
      return { error: `annotations ${preferred}="${now}" and ${old}="${then}" disagree; keep only ${preferred}` };
    }
    const value = (now ?? then)?.trim();
    return value ? { value } : {};
  };

  const pool = read(ANNOTATIONS.addressPool);
  if (pool.error) return fail(pool.error);
  const sharing = read(ANNOTATIONS.allowSharedIP);
  if (sharing.error) return fail(sharing.error);
  const ipsAnnotation = read(ANNOTATIONS.loadBalancerIPs);
  if (ipsAnnotation.error) return fail(ipsAnnotation.error);

  let familyPolicy: IPFamilyPolicy = 'SingleStack';
  if (ipFamilyPolicy) {
    const policy = POLICIES.find((p) => p === ipFamilyPolicy);
    if (!policy) return fail(`spec.ipFamilyPolicy "${ipFamilyPolicy}" is not one of ${POLICIES.join(', ')}`);
    familyPolicy = policy;
  }
  const families: Family[] = [];
  if (!absent(spec.ipFamilies) && !Array.isArray(spec.ipFamilies)) return fail(`spec.ipFamilies must be a list such as [IPv4], got ${shown(spec.ipFamilies)}`);
  for (const f of (spec.ipFamilies ?? []) as unknown[]) {
    if (f !== 'IPv4' && f !== 'IPv6') return fail(`spec.ipFamilies entry ${shown(f)} is not IPv4 or IPv6`);
    if (!families.includes(f)) families.push(f);
  }

  let requestedIPs: IP[] = [];
  if (ipsAnnotation.value !== undefined) {
    const name = ANNOTATIONS.loadBalancerIPs;
    for (const part of ipsAnnotation.value.split(',')) {
      const parsed = parseIP(part.trim());
      if (!parsed.ok) return fail(`annotation ${name}: ${parsed.error}; write one IP, or one IPv4 and one IPv6, comma-separated`);
      const twin = requestedIPs.find((ip) => ip.family === parsed.value.family);
      if (twin) {
        return fail(`annotation ${name} lists two ${twin.family} addresses (${formatIP(twin)}, ${formatIP(parsed.value)}); give at most one per family`);
      }
      requestedIPs.push(parsed.value);
    }
  }
  const lbIP = loadBalancerIP?.trim();
  if (lbIP) {
    const parsed = parseIP(lbIP);
    if (!parsed.ok) return fail(`spec.loadBalancerIP: ${parsed.error}`);
    if (requestedIPs.length === 0) {
      requestedIPs = [parsed.value];
    } else if (!requestedIPs.some((ip) => ip.family === parsed.value.family && ip.value === parsed.value.value)) {
      return fail(`spec.loadBalancerIP ${formatIP(parsed.value)} is not among ${ANNOTATIONS.loadBalancerIPs} (${requestedIPs.map(formatIP).join(', ')}); set only the annotation`);
    }
  }

  const ports: ServicePort[] = [];
  if (!absent(spec.ports) && !Array.isArray(spec.ports)) return fail(`spec.ports must be a list of ports such as [{port: 80}], got ${shown(spec.ports)}`);
  const portList = (spec.ports ?? []) as unknown[];
  // Indexed, not entries(): this runs for every Service the plugin lists (an iterator and a pair per port).
  for (let i = 0; i < portList.length; i++) {
    const p = portList[i];
    const at = `spec.ports[${i}]`;
    if (!isMap(p)) return fail(`${at} must be a map such as {port: 80, protocol: TCP}, got ${shown(p)}`);
    // A port the API server will refuse anyway (missing) is skipped; one of the wrong type is refused.
    if (absent(p.port)) continue;
    if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      return fail(`${at}.port must be a port number from 1 to 65535, got ${shown(p.port)}`);
    }
    if (!absent(p.protocol) && typeof p.protocol !== 'string') return fail(`${at}.protocol must be a string (TCP, UDP or SCTP), got ${shown(p.protocol)}`);
    const protocol = p.protocol || 'TCP';
    if (!PROTOCOLS.includes(protocol)) return fail(`${at}.protocol ${shown(protocol)} is not TCP, UDP or SCTP`);
    ports.push({ port: p.port, protocol });
  }

  if (externalTrafficPolicy && externalTrafficPolicy !== 'Cluster' && externalTrafficPolicy !== 'Local') {
    return fail(`spec.externalTrafficPolicy "${externalTrafficPolicy}" is not Cluster or Local`);
  }

  const request: Request = {
    namespace,
    name,
    labels,
    namespaceLabels,
    families,
    familyPolicy,
    requestedIPs,
    ports,
    trafficPolicy: externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
    selector,
    ...(pool.value !== undefined && { pool: pool.value }),
    ...(sharing.value !== undefined && { sharingKey: sharing.value }),
  };
  return { ok: true, request, deprecated };
}

/** The problem with a spec field that must be a string when set, if any. */
function scalarProblem(spec: Fields, key: string): string | undefined {
  const v = spec[key];
  return absent(v) || typeof v === 'string' ? undefined : `spec.${key} must be a string, got ${shown(v)}`;
}
