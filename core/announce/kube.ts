/**
 * The one adapter from Kubernetes objects to what core/announce reads. It takes plain JSON
 * shapes (what the API server sends, and what client-node's V1Service, V1EndpointSlice and
 * V1Node also satisfy) and never throws: a field of the wrong type reads as absent.
 */
import { formatIP, parseIP } from '../ip/index.js';
import type { AnnounceEndpoint, AnnounceNode, AnnounceService } from './model.js';

/** The label an EndpointSlice names its Service with. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

type Fields = Record<string, unknown>;

const isMap = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const mapAt = (m: unknown, key: string): Fields => (isMap(m) && isMap(m[key]) ? m[key] : {});
const listAt = (m: unknown, key: string): unknown[] => (isMap(m) && Array.isArray(m[key]) ? m[key] : []);
const textAt = (m: unknown, key: string): string | undefined => (isMap(m) && typeof m[key] === 'string' ? m[key] : undefined);
const boolAt = (m: unknown, key: string): boolean | undefined => (isMap(m) && typeof m[key] === 'boolean' ? m[key] : undefined);

/** A Node, or undefined when it has no name. NetworkUnavailable counts only when its status is "True". */
export function nodeFromKube(node: unknown): AnnounceNode | undefined {
  const meta = mapAt(node, 'metadata');
  const name = textAt(meta, 'name');
  if (!name) return undefined;
  const conditions = listAt(mapAt(node, 'status'), 'conditions');
  const networkUnavailable = conditions.some((c) => textAt(c, 'type') === 'NetworkUnavailable' && textAt(c, 'status') === 'True');
  return { name, labels: stringMap(meta.labels), networkUnavailable };
}

/** `namespace/name` of the Service an EndpointSlice belongs to, from its label; undefined without one. */
export function sliceServiceKey(slice: unknown): string | undefined {
  const meta = mapAt(slice, 'metadata');
  const service = textAt(mapAt(meta, 'labels'), SERVICE_NAME_LABEL);
  if (!service) return undefined;
  return `${textAt(meta, 'namespace') || 'default'}/${service}`;
}

/**
 * The endpoints of EndpointSlices, with the API's defaults for absent conditions: ready nil
 * means ready; serving nil defers to ready; terminating nil means not terminating.
 */
export function endpointsFromSlices(slices: Iterable<unknown>): AnnounceEndpoint[] {
  const out: AnnounceEndpoint[] = [];
  for (const slice of slices) {
    for (const e of listAt(slice, 'endpoints')) {
      if (!isMap(e)) continue;
      const conditions = mapAt(e, 'conditions');
      const ready = boolAt(conditions, 'ready') ?? true;
      const serving = boolAt(conditions, 'serving') ?? ready;
      const terminating = boolAt(conditions, 'terminating') ?? false;
      const nodeName = textAt(e, 'nodeName');
      // Two literals, not a spread of a conditional object: this runs for every endpoint the plugin reads.
      out.push(nodeName ? { nodeName, ready, serving, terminating } : { ready, serving, terminating });
    }
  }
  return out;
}

/**
 * A Service and its endpoints, or undefined when it has no name. `slices` may be every
 * EndpointSlice at hand: only those labelled with this Service's name, in its namespace, are
 * read. A Service that is not of type LoadBalancer has no IPs to announce; ingress entries
 * that are not addresses (hostnames, garbage) are left out, and addresses are written in
 * canonical text, so that Services sharing an address name it alike.
 */
export function serviceFromKube(svc: unknown, slices: Iterable<unknown>): AnnounceService | undefined {
  const meta = mapAt(svc, 'metadata');
  const name = textAt(meta, 'name');
  if (!name) return undefined;
  const namespace = textAt(meta, 'namespace') || 'default';
  const spec = mapAt(svc, 'spec');
  const ips: string[] = [];
  if (textAt(spec, 'type') === 'LoadBalancer') {
    for (const ingress of listAt(mapAt(mapAt(svc, 'status'), 'loadBalancer'), 'ingress')) {
      const parsed = parseIP(textAt(ingress, 'ip'));
      if (!parsed.ok) continue;
      const text = formatIP(parsed.value);
      if (!ips.includes(text)) ips.push(text);
    }
  }
  const key = `${namespace}/${name}`;
  const mine: unknown[] = [];
  for (const slice of slices) if (sliceServiceKey(slice) === key) mine.push(slice);
  return {
    namespace,
    name,
    ips,
    trafficPolicy: textAt(spec, 'externalTrafficPolicy') === 'Local' ? 'Local' : 'Cluster',
    endpoints: endpointsFromSlices(mine),
  };
}

/** Labels as a string map; entries that are not strings are left out. */
function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isMap(v)) return out;
  for (const [k, value] of Object.entries(v)) {
    // defineProperty: a label named "__proto__" must stay a label, not change the prototype.
    if (typeof value === 'string') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
