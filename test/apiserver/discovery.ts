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

/** `api/v1` or `apis/G/V`: how OpenAPI v3 names a group version. */
function openApiPathOf(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

/**
 * A minimal OpenAPI v3 document for one group version: for each resource, its create (POST)
 * and PATCH operations with `x-kubernetes-group-version-kind` and the query parameters, no
 * schemas. That is what kubectl's field-validation check reads, so `kubectl apply` and
 * `kubectl create -f` work without `--validate=false` (validation then happens here, with
 * `fieldValidation=Strict`). Without request bodies, kubectl computes apply patches from its
 * built-in types, as it does against a server without OpenAPI.
 */
export function openApiV3GroupVersion(registry: ResourceRegistry, group: string, version: string): Record<string, unknown> | undefined {
  const types = registry.inGroupVersion(group, version);
  if (types.length === 0) return undefined;
  const query = (name: string): Record<string, unknown> => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });
  const parameters = [query('dryRun'), query('fieldManager'), query('fieldValidation')];
  const paths: Record<string, unknown> = {};
  for (const t of types) {
    const base = `/${openApiPathOf(group, version)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.resource}`;
    const gvk = { group, version, kind: t.kind };
    paths[base] = { post: { operationId: `create${t.kind}`, 'x-kubernetes-action': 'post', 'x-kubernetes-group-version-kind': gvk, parameters } };
    paths[`${base}/{name}`] = { patch: { operationId: `patch${t.kind}`, 'x-kubernetes-action': 'patch', 'x-kubernetes-group-version-kind': gvk, parameters } };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion }, paths, components: { schemas: {} } };
}

/** `/openapi/v3`: the served group versions and where their documents are, with a content hash. */
export function openApiV3Root(registry: ResourceRegistry, hashOf: (doc: unknown) => string): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const g of registry.groups()) {
    for (const v of g.versions) {
      const path = openApiPathOf(g.name, v);
      paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hashOf(openApiV3GroupVersion(registry, g.name, v))}` };
    }
  }
  return { paths };
}
