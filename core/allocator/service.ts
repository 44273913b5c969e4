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

/**
 * Read a Service's request for load-balancer IPs. Malformed input (a bad IP, two IPs of one
 * family, loadBalancerIP contradicting the annotation, an old and a new annotation name with
 * different values) is returned as a failure naming the field, never thrown.
 */
export function serviceToRequest(svc: ServiceShape, namespaceLabels: Readonly<Record<string, string>>): ServiceRequest {
  const deprecated: DeprecatedAnnotation[] = [];
  const fail = (message: string): ServiceRequest => ({ ok: false, failure: { code: 'malformed-annotation', message }, deprecated });
  const meta = svc.metadata ?? {};
  const spec = svc.spec ?? {};
  const namespace = meta.namespace ?? 'default';
  const name = meta.name ?? '';
  const where = `${namespace}/${name}`;
  const annotations = meta.annotations ?? {};

  const read = (preferred: string): { value?: string; error?: string } => {
    const old = DEPRECATED_PREFIX + preferred.slice(preferred.indexOf('/') + 1);
    const now = annotations[preferred];
    const then = annotations[old];
    if (then !== undefined) deprecated.push({ used: old, preferred });
    if (now !== undefined && then !== undefined && now !== then) {
      return { error: `${where}: annotations ${preferred}="${now}" and ${old}="${then}" disagree; keep only ${preferred}` };
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
  if (spec.ipFamilyPolicy) {
    const policy = POLICIES.find((p) => p === spec.ipFamilyPolicy);
    if (!policy) return fail(`${where}: spec.ipFamilyPolicy "${spec.ipFamilyPolicy}" is not one of ${POLICIES.join(', ')}`);
    familyPolicy = policy;
  }
  const families: Family[] = [];
  for (const f of spec.ipFamilies ?? []) {
    if (f !== 'IPv4' && f !== 'IPv6') return fail(`${where}: spec.ipFamilies entry "${f}" is not IPv4 or IPv6`);
    if (!families.includes(f)) families.push(f);
  }

  let requestedIPs: IP[] = [];
  if (ipsAnnotation.value !== undefined) {
    const name = ANNOTATIONS.loadBalancerIPs;
    for (const part of ipsAnnotation.value.split(',')) {
      const parsed = parseIP(part.trim());
      if (!parsed.ok) return fail(`${where}: annotation ${name}: ${parsed.error}; write one IP, or one IPv4 and one IPv6, comma-separated`);
      const twin = requestedIPs.find((ip) => ip.family === parsed.value.family);
      if (twin) {
        return fail(`${where}: annotation ${name} lists two ${twin.family} addresses (${formatIP(twin)}, ${formatIP(parsed.value)}); give at most one per family`);
      }
      requestedIPs.push(parsed.value);
    }
  }
  const lbIP = spec.loadBalancerIP?.trim();
  if (lbIP) {
    const parsed = parseIP(lbIP);
    if (!parsed.ok) return fail(`${where}: spec.loadBalancerIP: ${parsed.error}`);
    if (requestedIPs.length === 0) {
      requestedIPs = [parsed.value];
    } else if (!requestedIPs.some((ip) => ip.family === parsed.value.family && ip.value === parsed.value.value)) {
      return fail(
        `${where}: spec.loadBalancerIP ${formatIP(parsed.value)} is not among ${ANNOTATIONS.loadBalancerIPs} (${requestedIPs.map(formatIP).join(', ')}); set only the annotation`,
      );
    }
  }

  const ports: ServicePort[] = [];
  for (const p of spec.ports ?? []) {
    if (typeof p.port !== 'number') continue;
    ports.push({ port: p.port, protocol: p.protocol || 'TCP' });
  }

  const request: Request = {
    namespace,
    name,
    labels: meta.labels ?? {},
    namespaceLabels,
    families,
    familyPolicy,
    requestedIPs,
    ports,
    trafficPolicy: spec.externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
    selector: spec.selector ?? {},
    ...(pool.value !== undefined && { pool: pool.value }),
    ...(sharing.value !== undefined && { sharingKey: sharing.value }),
  };
  return { ok: true, request, deprecated };
}
