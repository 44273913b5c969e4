/**
 * API discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/GROUP` and
 * `/apis/GROUP/VERSION`, in the legacy form (APIVersions, APIGroupList, APIResourceList) and
 * in the aggregated form (apidiscovery.k8s.io v2 / v2beta1 APIGroupDiscoveryList) that kubectl
 * 1.30+ asks for first. Both are computed from the registry on every request, so a new CRD is
 * discoverable at once.
 */
import type { ResourceRegistry, ResourceType } from './resources.js';

/** The version the double claims (kubectl warns about skew beyond one minor version). */
export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-metallb-ts-double',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2024-12-11T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
} as const;

const STATUS_VERBS = ['get', 'patch', 'update'];

/** `/api`: the legacy core group's versions. */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(name: string, versions: string[]): Record<string, unknown> {
  const list = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: list, preferredVersion: list[0] };
}

/** `/apis`: every named group. */
export function apiGroupList(registry: ResourceRegistry): Record<string, unknown> {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: registry
      .groups()
      .filter((g) => g.name !== '')
      .map((g) => groupEntry(g.name, g.versions)),
  };
}

/** `/apis/GROUP`, or undefined for an unknown group. */
export function apiGroup(registry: ResourceRegistry, name: string): Record<string, unknown> | undefined {
  const g = registry.groups().find((x) => x.name === name && name !== '');
  return g && { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.name, g.versions) };
}

/** `/api/v1` or `/apis/GROUP/VERSION`, or undefined when nothing is served there. */
export function apiResourceList(registry: ResourceRegistry, group: string, version: string): Record<string, unknown> | undefined {
  const types = registry.inGroupVersion(group, version);
  if (types.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of types) {
    const r: Record<string, unknown> = { name: t.resource, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs };
    if (t.shortNames.length) r.shortNames = t.shortNames;
    if (t.categories.length) r.categories = t.categories;
    resources.push(r);
    if (t.statusSubresource) resources.push({ name: `${t.resource}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: STATUS_VERBS });
    if (t.storage === 'namespaces') resources.push({ name: 'namespaces/finalize', singularName: '', namespaced: false, kind: 'Namespace', verbs: ['update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

function discoveryResource(t: ResourceType): Record<string, unknown> {
  const responseKind = { group: t.group, version: t.version, kind: t.kind };
  const r: Record<string, unknown> = {
    resource: t.resource,
    responseKind,
    scope: t.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: t.singular,
    verbs: t.verbs,
  };
  if (t.shortNames.length) r.shortNames = t.shortNames;
  if (t.categories.length) r.categories = t.categories;
  const subresources: Record<string, unknown>[] = [];
  if (t.statusSubresource) subresources.push({ subresource: 'status', responseKind, verbs: STATUS_VERBS });
  if (t.storage === 'namespaces') subresources.push({ subresource: 'finalize', responseKind, verbs: ['update'] });
  if (subresources.length) r.subresources = subresources;
  return r;
}

/**
 * The aggregated discovery document of `/api` (legacy: the core group) or `/apis` (every
 * named group), version v2 or v2beta1 (same shape).
 */
export function aggregatedDiscovery(registry: ResourceRegistry, legacy: boolean, version: 'v2' | 'v2beta1'): Record<string, unknown> {
  const groups = registry.groups().filter((g) => (g.name === '') === legacy);
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: groups.map((g) => ({
      metadata: { name: g.name, creationTimestamp: null },
      versions: g.versions.map((v) => ({
        version: v,
        resources: registry.inGroupVersion(g.name, v).map(discoveryResource),
        freshness: 'Current',
      })),
    })),
  };
}
