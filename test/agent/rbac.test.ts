/**
 * manifests/rbac/agent.yaml against the calls the agent really makes: an agent runs through
 * everything it does (start under an invalid configuration, announce, publish, stop announcing,
 * announce again) with a client that records every call, and then
 *
 * - every call is granted: by the ClusterRole, or, inside the agents' namespace, by the Role;
 * - every grant is used: nothing is granted "just in case".
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { CallOptions, KubeApi, KubeObject, ListOptions, Resource, WatchEventType, WatchOptions, WriteOptions } from '../../kube/client.js';
import { RESOURCES } from '../../kube/client.js';
import { eventually } from '../apiserver/testing.js';
import { CONFIG, FakeMembership, lbService, namespace, NS, putNode, startAgent, startCluster, statusesOf, statusOn, type Cluster } from './support.js';
import { repoRoot } from '../manifests/support.js';

/** One call: verb, group/resource[/subresource], and the namespace it was made in ('' for cluster-wide). */
interface Call {
  verb: string;
  group: string;
  resource: string;
  namespace: string;
}

class RecordingKube implements KubeApi {
  readonly calls = new Map<string, Call>();
  constructor(private readonly inner: KubeApi) {}

  private note(verb: string, r: Resource, namespace: string | undefined, subresource?: string): void {
    const call = { verb, group: r.group, resource: subresource ? `${r.plural}/${subresource}` : r.plural, namespace: r.namespaced ? (namespace ?? '') : '' };
    this.calls.set(JSON.stringify(call), call);
  }

  get(r: Resource, name: string, namespace?: string, options?: CallOptions): Promise<KubeObject | undefined> {
    this.note('get', r, namespace);
    return this.inner.get(r, name, namespace, options);
  }
  list(r: Resource, options?: ListOptions & CallOptions): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    this.note('list', r, options?.namespace);
    return this.inner.list(r, options);
  }
  create(r: Resource, obj: KubeObject, options?: WriteOptions & CallOptions): Promise<KubeObject> {
    this.note('create', r, obj.metadata.namespace, options?.subresource);
    return this.inner.create(r, obj, options);
  }
  replace(r: Resource, obj: KubeObject, options?: WriteOptions & CallOptions): Promise<KubeObject> {
    this.note('update', r, obj.metadata.namespace, options?.subresource);
    return this.inner.replace(r, obj, options);
  }
  patch(r: Resource, name: string, namespace: string | undefined, patch: unknown, options?: WriteOptions & CallOptions & { json?: boolean }): Promise<KubeObject> {
    this.note('patch', r, namespace, options?.subresource);
    return this.inner.patch(r, name, namespace, patch, options);
  }
  delete(r: Resource, name: string, namespace?: string, preconditions?: { uid?: string; resourceVersion?: string }, options?: CallOptions): Promise<boolean> {
    this.note('delete', r, namespace);
    return this.inner.delete(r, name, namespace, preconditions, options);
  }
  watch(r: Resource, options: WatchOptions, onEvent: (type: WatchEventType, obj: KubeObject) => void, onEnd: (error?: unknown) => void): Promise<() => void> {
    this.note('watch', r, options.namespace);
    return this.inner.watch(r, options, onEvent, onEnd);
  }
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Role {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules: Rule[];
}

const roles = parseAllDocuments(readFileSync(join(repoRoot, 'manifests/rbac/agent.yaml'), 'utf8'))
  .map((d) => d.toJS() as Role)
  .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');

/** Every (role, verb, group, resource) a rule grants. */
const grantsOf = (role: Role) => role.rules.flatMap((r) => r.apiGroups.flatMap((group) => r.resources.flatMap((resource) => r.verbs.map((verb) => ({ verb, group, resource })))));

function grantedBy(call: Call): string | undefined {
  for (const role of roles) {
    if (role.kind === 'Role' && call.namespace !== role.metadata.namespace) continue;
    if (grantsOf(role).some((g) => g.verb === call.verb && g.group === call.group && g.resource === call.resource)) return `${role.kind}/${role.metadata.name}`;
  }
  return undefined;
}

let c: Cluster;
beforeAll(async () => {
  c = await startCluster();
  for (const n of ['node-a', 'node-b']) await putNode(c, n);
}, 30_000);
afterAll(() => c?.stop());

test('the agent makes only calls its RBAC grants, and uses every grant', async () => {
  expect(roles.map((r) => `${r.kind}/${r.metadata.name}`).sort()).toEqual(['ClusterRole/metallb-agent', 'Role/agent']);
  // An invalid configuration at start: the agent reads the recorded last good one.
  await c.kube.create(CONFIG.pools, { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'lan', namespace: NS }, spec: { addresses: ['not-an-address'] } });
  const kube = new RecordingKube(c.newKube());
  const gossip = new FakeMembership(['node-a']);
  const a = await startAgent(c, 'node-a', { kube, membership: gossip });
  try {
    await c.kube.patch(CONFIG.pools, 'lan', NS, { spec: { addresses: ['203.0.113.0/24'] } });
    await c.kube.create(CONFIG.l2, { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'lan', namespace: NS }, spec: {} });
    const ns = await namespace(c);
    await lbService(c, ns, 'web', ['203.0.113.10']);
    await statusOn(c, ns, 'web', 'node-a');
    // Another node takes over (our status goes), then we again (a second nodeAssigned: a patch of the first).
    gossip.set(['node-b']);
    await eventually(async () => (await statusesOf(c, ns, 'web')).length === 0, 5000, 'the status deleted');
    gossip.set(['node-a']);
    await statusOn(c, ns, 'web', 'node-a');
    await eventually(async () => (await c.kube.list(RESOURCES.events, { namespace: ns })).items.some((e) => (e as { count?: number }).count === 2), 5000, 'the repeated event');
  } finally {
    await a.stop();
  }

  const calls = [...kube.calls.values()];
  const ungranted = calls.filter((call) => !grantedBy(call));
  expect(ungranted).toEqual([]);
  const used = (role: Role, g: { verb: string; group: string; resource: string }) =>
    calls.some(
      (call) => call.verb === g.verb && call.group === g.group && call.resource === g.resource && (role.kind === 'ClusterRole' || call.namespace === role.metadata.namespace),
    );
  const unused = roles.flatMap((role) =>
    grantsOf(role)
      .filter((g) => !used(role, g))
      .map((g) => `${role.kind}/${role.metadata.name}: ${g.verb} ${g.group}/${g.resource}`),
  );
  // The configuration kinds other than pools and L2Advertisements are listed and watched like them.
  expect(unused).toEqual([]);
});
