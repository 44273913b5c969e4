/**
 * The double over real HTTPS with @kubernetes/client-node: discovery, CRUD, validation and
 * defaulting, optimistic concurrency, patches, status subresource, selectors, pagination,
 * dry run, finalizers, garbage collection, namespaces, events in both APIs, leases.
 */
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, EventsV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type V1Service } from '@kubernetes/client-node';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from './index.js';
import { eventually, failure, kubeConfigFor, kubectl, rawRequest } from './testing.js';

let api: ApiServer;
let core: CoreV1Api;
let custom: CustomObjectsApi;

beforeAll(async () => {
  api = await startApiServer();
  const kc = kubeConfigFor(api);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
});

afterAll(async () => {
  await api.stop();
});

let nsCounter = 0;
/** A fresh namespace per test keeps tests independent. */
async function namespace(): Promise<string> {
  const name = `t${++nsCounter}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

const lbService = (name: string, extra: Partial<V1Service['spec']> = {}): V1Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, labels: { app: name } },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'http', port: 80 }], ...extra },
});

describe('discovery and authentication', () => {
  it('serves on further addresses with them in its certificate (the lab reaches it from network namespaces)', async () => {
    const other = await startApiServer({ alsoListenOn: ['127.0.0.2'] });
    try {
      const port = new URL(other.url).port;
      const kc = kubeConfigFor(other);
      kc.clusters[0] = { ...kc.clusters[0]!, server: `https://127.0.0.2:${port}` };
      // Verified against the CA: a certificate without 127.0.0.2 would fail here.
      const ns = await kc.makeApiClient(CoreV1Api).readNamespace({ name: 'default' });
      expect(ns.metadata?.name).toBe('default');
    } finally {
      await other.stop();
    }
  });

  it('serves /version without a token and everything else only with it', async () => {
    const version = await rawRequest(api, 'GET', '/version', { anonymous: true });
    expect(version.status).toBe(200);
    expect(version.json).toMatchObject({ major: '1', minor: '32' });
    const denied = await rawRequest(api, 'GET', '/api/v1/namespaces', { anonymous: true });
    expect(denied.status).toBe(401);
    expect(denied.json).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
  });

  it('lists resources with their kinds, verbs, short names and subresources', async () => {
    const v1 = (await rawRequest(api, 'GET', '/api/v1')).json as { resources: Record<string, unknown>[] };
    const byName = new Map(v1.resources.map((r) => [r.name, r]));
    expect(byName.get('services')).toMatchObject({ kind: 'Service', namespaced: true, shortNames: ['svc'], verbs: expect.arrayContaining(['watch', 'patch']) });
    expect(byName.get('services/status')).toMatchObject({ kind: 'Service', verbs: ['get', 'patch', 'update'] });
    expect(byName.get('nodes')).toMatchObject({ namespaced: false });
    for (const r of ['namespaces', 'endpoints', 'configmaps', 'secrets', 'events', 'pods']) expect(byName.has(r)).toBe(true);
    const groups = (await rawRequest(api, 'GET', '/apis')).json as { groups: { name: string }[] };
    expect(groups.groups.map((g) => g.name)).toEqual(
      expect.arrayContaining(['events.k8s.io', 'discovery.k8s.io', 'coordination.k8s.io', 'apiextensions.k8s.io', 'admissionregistration.k8s.io']),
    );
    const admission = (await rawRequest(api, 'GET', '/apis/admissionregistration.k8s.io/v1')).json as { resources: { name: string; namespaced: boolean }[] };
    expect(admission.resources.map((r) => r.name)).toEqual(['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']);
  });

  it('answers aggregated discovery when asked, plain lists otherwise', async () => {
    const accept = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json';
    const res = await rawRequest(api, 'GET', '/apis', { headers: { Accept: accept } });
    expect(res.headers['content-type']).toBe('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    const doc = res.json as { items: { metadata: { name: string }; versions: { resources: { resource: string; scope: string }[] }[] }[] };
    const coordination = doc.items.find((i) => i.metadata.name === 'coordination.k8s.io');
    expect(coordination?.versions[0]?.resources).toEqual([expect.objectContaining({ resource: 'leases', scope: 'Namespaced' })]);
    const legacy = await rawRequest(api, 'GET', '/api', { headers: { Accept: 'application/json' } });
    expect(legacy.json).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
  });

  it('serves an OpenAPI v3 stub with the operations kubectl checks, and no v2', async () => {
    const root = (await rawRequest(api, 'GET', '/openapi/v3')).json as { paths: Record<string, { serverRelativeURL: string }> };
    const core = root.paths['api/v1']?.serverRelativeURL ?? '';
    expect(core).toMatch(/^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]+$/);
    const doc = (await rawRequest(api, 'GET', core)).json as { paths: Record<string, { patch?: { 'x-kubernetes-group-version-kind': unknown; parameters: { name: string }[] } }> };
    const patch = doc.paths['/api/v1/namespaces/{namespace}/services/{name}']?.patch;
    expect(patch?.['x-kubernetes-group-version-kind']).toEqual({ group: '', version: 'v1', kind: 'Service' });
    expect(patch?.parameters.map((p) => p.name)).toContain('fieldValidation');
    expect(root.paths['apis/coordination.k8s.io/v1']).toBeDefined();
  });

  it('says 404 for OpenAPI v2 and unknown resources', async () => {
    expect((await rawRequest(api, 'GET', '/openapi/v2')).status).toBe(404);
    expect((await rawRequest(api, 'GET', '/apis/example.com/v1/widgets')).status).toBe(404);
    expect((await rawRequest(api, 'GET', '/api/v1/namespaces/default/nosuchthings')).status).toBe(404);
  });
});

describe('Services', () => {
  it('defaults and allocates like kube-apiserver, and clears status on create', async () => {
    const ns = await namespace();
    const body = lbService('web');
    body.status = { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } };
    const svc = await core.createNamespacedService({ namespace: ns, body });
    expect(svc.spec?.clusterIP).toMatch(/^198\.51\.100\.\d+$/);
    expect(svc.spec?.clusterIPs).toEqual([svc.spec?.clusterIP]);
    expect(svc.spec?.ipFamilies).toEqual(['IPv4']);
    expect(svc.spec?.ipFamilyPolicy).toBe('SingleStack');
    expect(svc.spec?.ports?.[0]).toMatchObject({ protocol: 'TCP', targetPort: 80, nodePort: expect.any(Number) });
    expect(svc.spec?.externalTrafficPolicy).toBe('Cluster');
    expect(svc.spec?.allocateLoadBalancerNodePorts).toBe(true);
    expect(svc.spec?.sessionAffinity).toBe('None');
    expect(svc.status).toEqual({ loadBalancer: {} });
    expect(svc.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(svc.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(Number(svc.metadata?.resourceVersion)).toBeGreaterThan(0);
  });

  it('allocates both families for RequireDualStack and honours a requested ClusterIP', async () => {
    const ns = await namespace();
    const dual = await core.createNamespacedService({ namespace: ns, body: lbService('dual', { ipFamilyPolicy: 'RequireDualStack' }) });
    expect(dual.spec?.ipFamilies).toEqual(['IPv4', 'IPv6']);
    expect(dual.spec?.clusterIPs?.[1]).toMatch(/^2001:db8:1::/);
    const fixed = await core.createNamespacedService({ namespace: ns, body: lbService('fixed', { clusterIP: '198.51.100.200', externalTrafficPolicy: 'Local' }) });
    expect(fixed.spec?.clusterIP).toBe('198.51.100.200');
    expect(fixed.spec?.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    const taken = await failure(core.createNamespacedService({ namespace: ns, body: lbService('again', { clusterIP: '198.51.100.200' }) }));
    expect(taken.httpCode).toBe(422);
    expect(taken.message).toContain('provided IP is already allocated');
    const outside = await failure(core.createNamespacedService({ namespace: ns, body: lbService('outside', { clusterIP: '192.0.2.1' }) }));
    expect(outside.message).toContain('is not in the valid range');
  });

  it('rejects what the real validation rejects, with its messages', async () => {
    const ns = await namespace();
    const badIp = await failure(core.createNamespacedService({ namespace: ns, body: lbService('web', { loadBalancerIP: 'not-an-ip' }) }));
    expect(badIp).toMatchObject({ httpCode: 422, reason: 'Invalid' });
    expect(badIp.message).toBe('Service "web" is invalid: spec.loadBalancerIP: Invalid value: "not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)');
    expect(badIp.details).toMatchObject({ name: 'web', kind: 'Service', causes: [{ reason: 'FieldValueInvalid', field: 'spec.loadBalancerIP' }] });
    const badName = await failure(core.createNamespacedService({ namespace: ns, body: lbService('Web_1') }));
    expect(badName.message).toContain('metadata.name: Invalid value: "Web_1": a DNS-1035 label must consist of lower case alphanumeric characters');
    const badType = await failure(core.createNamespacedService({ namespace: ns, body: lbService('x', { type: 'Magic' }) }));
    expect(badType.message).toContain('spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"');
    const twoPorts = await failure(core.createNamespacedService({ namespace: ns, body: lbService('y', { ports: [{ port: 80 }, { port: 81 }] }) }));
    expect(twoPorts.message).toContain('spec.ports[0].name: Required value');
    const notLb = await failure(core.createNamespacedService({ namespace: ns, body: lbService('z', { type: 'ClusterIP', loadBalancerIP: '192.0.2.1' }) }));
    expect(notLb.message).toContain("spec.loadBalancerIP: Forbidden: may only be used when `type` is 'LoadBalancer'");
  });

  it('needs an existing namespace and reports conflicts on names', async () => {
    const missing = await failure(core.createNamespacedService({ namespace: 'nowhere', body: lbService('web') }));
    expect(missing).toMatchObject({ httpCode: 404, reason: 'NotFound', message: 'namespaces "nowhere" not found' });
    const ns = await namespace();
    await core.createNamespacedService({ namespace: ns, body: lbService('web') });
    const dup = await failure(core.createNamespacedService({ namespace: ns, body: lbService('web') }));
    expect(dup).toMatchObject({ httpCode: 409, reason: 'AlreadyExists', message: 'services "web" already exists' });
  });

  it('detects stale writes (409) and keeps allocated values a client leaves out', async () => {
    const ns = await namespace();
    const created = await core.createNamespacedService({ namespace: ns, body: lbService('web') });
    const first = structuredClone(created);
    first.metadata = { ...first.metadata, labels: { app: 'web', v: '1' } };
    const updated = await core.replaceNamespacedService({ name: 'web', namespace: ns, body: first });
    expect(updated.metadata?.labels).toEqual({ app: 'web', v: '1' });
    const stale = structuredClone(created);
    stale.metadata = { ...stale.metadata, labels: { v: 'stale' } };
    const conflict = await failure(core.replaceNamespacedService({ name: 'web', namespace: ns, body: stale }));
    expect(conflict).toMatchObject({ httpCode: 409, reason: 'Conflict' });
    expect(conflict.message).toBe(`Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again`);
    // A PUT without resourceVersion, clusterIP and nodePort is unconditional and keeps allocations.
    const blind = lbService('web');
    const replaced = await core.replaceNamespacedService({ name: 'web', namespace: ns, body: blind });
    expect(replaced.spec?.clusterIP).toBe(created.spec?.clusterIP);
    expect(replaced.spec?.ports?.[0]?.nodePort).toBe(created.spec?.ports?.[0]?.nodePort);
    const changedIp = { ...replaced, spec: { ...replaced.spec, clusterIP: '198.51.100.250', clusterIPs: ['198.51.100.250'] } };
    const immutable = await failure(core.replaceNamespacedService({ name: 'web', namespace: ns, body: changedIp }));
    expect(immutable.message).toContain('spec.clusterIPs[0]: Invalid value: []string{"198.51.100.250"}: may not change once set');
  });

  it('separates spec and status writes', async () => {
    const ns = await namespace();
    const created = await core.createNamespacedService({ namespace: ns, body: lbService('web') });
    const withStatus = { ...created, status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } }, spec: { ...created.spec, selector: { app: 'other' } } };
    const afterStatus = await core.replaceNamespacedServiceStatus({ name: 'web', namespace: ns, body: withStatus });
    expect(afterStatus.status?.loadBalancer?.ingress).toEqual([{ ip: '203.0.113.10', ipMode: 'VIP' }]);
    expect(afterStatus.spec?.selector).toEqual({ app: 'web' });
    const mainWrite = { ...afterStatus, status: { loadBalancer: {} }, spec: { ...afterStatus.spec, selector: { app: 'other' } } };
    const afterMain = await core.replaceNamespacedService({ name: 'web', namespace: ns, body: mainWrite });
    expect(afterMain.spec?.selector).toEqual({ app: 'other' });
    expect(afterMain.status?.loadBalancer?.ingress).toEqual([{ ip: '203.0.113.10', ipMode: 'VIP' }]);
    const badStatus = await failure(
      core.patchNamespacedServiceStatus(
        { name: 'web', namespace: ns, body: { status: { loadBalancer: { ingress: [{ ip: 'nope' }] } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(badStatus.message).toContain('status.loadBalancer.ingress[0].ip: Invalid value: "nope"');
  });

  it('applies JSON, merge and strategic merge patches', async () => {
    const ns = await namespace();
    await core.createNamespacedService({
      namespace: ns,
      body: lbService('web', {
        ports: [
          { name: 'http', port: 80 },
          { name: 'https', port: 443 },
        ],
      }),
    });
    const json = await core.patchNamespacedService({ name: 'web', namespace: ns, body: [{ op: 'add', path: '/metadata/annotations', value: { a: 'b' } }] });
    expect(json.metadata?.annotations).toEqual({ a: 'b' });
    const merge = await core.patchNamespacedService(
      { name: 'web', namespace: ns, body: { metadata: { annotations: { a: null, c: 'd' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(merge.metadata?.annotations).toEqual({ c: 'd' });
    const smp = await core.patchNamespacedService(
      { name: 'web', namespace: ns, body: { spec: { ports: [{ port: 443, targetPort: 8443 }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    expect(smp.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ['http', 80, 80],
      ['https', 443, 8443],
    ]);
    const badPatch = await failure(core.patchNamespacedService({ name: 'web', namespace: ns, body: [{ op: 'test', path: '/spec/type', value: 'ClusterIP' }] }));
    expect(badPatch.httpCode).toBe(422);
    const stale = await failure(
      core.patchNamespacedService({ name: 'web', namespace: ns, body: { metadata: { resourceVersion: '1' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
    expect(stale.httpCode).toBe(409);
  });

  it('does nothing under dryRun=All, but answers as if it had', async () => {
    const ns = await namespace();
    const dry = await core.createNamespacedService({ namespace: ns, body: lbService('web'), dryRun: 'All' });
    expect(dry.spec?.clusterIP).toMatch(/^198\.51\.100\./);
    await expect(core.readNamespacedService({ name: 'web', namespace: ns })).rejects.toMatchObject({ code: 404 });
    await core.createNamespacedService({ namespace: ns, body: lbService('web') });
    const rvBefore = (await core.readNamespacedService({ name: 'web', namespace: ns })).metadata?.resourceVersion;
    await core.patchNamespacedService(
      { name: 'web', namespace: ns, body: { metadata: { labels: { x: 'y' } } }, dryRun: 'All' },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const current = await core.readNamespacedService({ name: 'web', namespace: ns });
    const replaced = await core.replaceNamespacedService({
      name: 'web',
      namespace: ns,
      body: { ...current, metadata: { ...current.metadata, labels: { replaced: 'yes' } } },
      dryRun: 'All',
    });
    expect(replaced.metadata?.labels).toEqual({ replaced: 'yes' });
    await core.deleteNamespacedService({ name: 'web', namespace: ns, dryRun: 'All' });
    const after = await core.readNamespacedService({ name: 'web', namespace: ns });
    expect(after.metadata?.resourceVersion).toBe(rvBefore);
    expect(after.metadata?.labels).toEqual({ app: 'web' });
  });

  it('fills generateName', async () => {
    const ns = await namespace();
    const svc = await core.createNamespacedService({ namespace: ns, body: { ...lbService(''), metadata: { generateName: 'web-' } } });
    expect(svc.metadata?.name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });

  it('frees ClusterIPs and node ports when a Service is deleted', async () => {
    const ns = await namespace();
    const a = await core.createNamespacedService({ namespace: ns, body: lbService('a', { clusterIP: '198.51.100.77', ports: [{ port: 80, nodePort: 31777 }] }) });
    expect(a.spec?.ports?.[0]?.nodePort).toBe(31777);
    // Services answer DELETE with the deleted object (ConfigMaps with a Status).
    const deleted = await core.deleteNamespacedService({ name: 'a', namespace: ns });
    expect(deleted).toMatchObject({ kind: 'Service', metadata: { name: 'a' } });
    const b = await core.createNamespacedService({ namespace: ns, body: lbService('b', { clusterIP: '198.51.100.77', ports: [{ port: 80, nodePort: 31777 }] }) });
    expect(b.spec?.clusterIP).toBe('198.51.100.77');
  });
});

describe('lists and selectors', () => {
  it('filters by label and field selectors', async () => {
    const ns = await namespace();
    for (const [name, tier] of [
      ['a', 'web'],
      ['b', 'db'],
      ['c', 'web'],
    ]) {
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels: { tier: tier as string } }, data: { k: 'v' } } });
    }
    const web = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'tier=web' });
    expect(web.items.map((i) => i.metadata?.name)).toEqual(['a', 'c']);
    const notWeb = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'tier notin (web)' });
    expect(notWeb.items.map((i) => i.metadata?.name)).toEqual(['b']);
    const byName = await core.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=b,metadata.namespace=${ns}` });
    expect(byName.items.map((i) => i.metadata?.name)).toEqual(['b']);
    const bad = await failure(core.listNamespacedConfigMap({ namespace: ns, fieldSelector: 'data.k=v' }));
    expect(bad).toMatchObject({ httpCode: 400, message: 'field label not supported: data.k' });
    const raw = (await rawRequest(api, 'GET', `/api/v1/namespaces/${ns}/configmaps`)).json as { items: Record<string, unknown>[] };
    expect(raw.items[0]).not.toHaveProperty('kind');
  });

  it('selects pods by spec.nodeName and events by involvedObject', async () => {
    const ns = await namespace();
    const pod = (name: string, nodeName?: string): Parameters<CoreV1Api['createNamespacedPod']>[0] => ({
      namespace: ns,
      body: { metadata: { name }, spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: 'c', image: 'speaker:v1' }] } },
    });
    await core.createNamespacedPod(pod('p1', 'node-a'));
    await core.createNamespacedPod(pod('p2', 'node-b'));
    await core.createNamespacedPod(pod('p3'));
    const onA = await core.listNamespacedPod({ namespace: ns, fieldSelector: 'spec.nodeName=node-a' });
    expect(onA.items.map((p) => p.metadata?.name)).toEqual(['p1']);
    const unscheduled = await core.listNamespacedPod({ namespace: ns, fieldSelector: 'spec.nodeName=' });
    expect(unscheduled.items.map((p) => p.metadata?.name)).toEqual(['p3']);
    const svc = await core.createNamespacedService({ namespace: ns, body: lbService('web') });
    await core.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { name: 'web.1' },
        involvedObject: { kind: 'Service', name: 'web', namespace: ns, uid: svc.metadata?.uid ?? '', apiVersion: 'v1' },
        reason: 'IPAllocated',
        message: 'Assigned IP ["192.0.2.10"]',
        type: 'Normal',
        source: { component: 'metallb-controller' },
      },
    });
    const events = await core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: `involvedObject.kind=Service,involvedObject.name=web,involvedObject.uid=${svc.metadata?.uid ?? ''}`,
    });
    expect(events.items.map((e) => e.reason)).toEqual(['IPAllocated']);
    const none = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=other' });
    expect(none.items).toEqual([]);
  });

  it('paginates with limit/continue on a consistent snapshot, and expires old tokens', async () => {
    const ns = await namespace();
    for (let i = 0; i < 7; i++) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `cm-${i}` } } });
    const first = await core.listNamespacedConfigMap({ namespace: ns, limit: 3 });
    expect(first.items.map((i) => i.metadata?.name)).toEqual(['cm-0', 'cm-1', 'cm-2']);
    expect(first.metadata?.remainingItemCount).toBe(4);
    // Changes after the first page do not show up in later pages.
    await core.deleteNamespacedConfigMap({ name: 'cm-4', namespace: ns });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cm-5a' } } });
    const second = await core.listNamespacedConfigMap({ namespace: ns, limit: 3, _continue: first.metadata?._continue ?? '' });
    expect(second.items.map((i) => i.metadata?.name)).toEqual(['cm-3', 'cm-4', 'cm-5']);
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    const third = await core.listNamespacedConfigMap({ namespace: ns, limit: 3, _continue: second.metadata?._continue ?? '' });
    expect(third.items.map((i) => i.metadata?.name)).toEqual(['cm-6']);
    expect(third.metadata?._continue).toBeUndefined();
    api.forceWatchExpiry();
    const gone = await failure(core.listNamespacedConfigMap({ namespace: ns, limit: 3, _continue: first.metadata?._continue ?? '' }));
    expect(gone).toMatchObject({ httpCode: 410, reason: 'Expired' });
  });

  it('prints Tables for kubectl get', async () => {
    const ns = await namespace();
    const svc = await core.createNamespacedService({ namespace: ns, body: lbService('web') });
    await core.patchNamespacedServiceStatus(
      { name: 'web', namespace: ns, body: { status: { loadBalancer: { ingress: [{ ip: '203.0.113.5' }] } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const res = await rawRequest(api, 'GET', `/api/v1/namespaces/${ns}/services`, { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } });
    const table = res.json as { kind: string; columnDefinitions: { name: string; priority: number }[]; rows: { cells: unknown[]; object: { kind: string } }[] };
    expect(table.kind).toBe('Table');
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(['Name', 'Type', 'Cluster-IP', 'External-IP', 'Port(s)', 'Age', 'Selector']);
    expect(table.rows[0]?.cells.slice(0, 5)).toEqual(['web', 'LoadBalancer', svc.spec?.clusterIP, '203.0.113.5', `80:${String(svc.spec?.ports?.[0]?.nodePort)}/TCP`]);
    expect(table.rows[0]?.object.kind).toBe('PartialObjectMetadata');
  });
});

describe('deletion', () => {
  it('holds an object with finalizers until they are removed', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'held', finalizers: ['example.com/keep'] } } });
    // While it stays, DELETE answers with the object itself.
    const marked = await rawRequest(api, 'DELETE', `/api/v1/namespaces/${ns}/configmaps/held`);
    expect(marked.json).toMatchObject({ kind: 'ConfigMap', metadata: { deletionTimestamp: expect.any(String) } });
    const still = await core.readNamespacedConfigMap({ name: 'held', namespace: ns });
    expect(still.metadata?.deletionTimestamp).toBeDefined();
    const addMore = await failure(
      core.patchNamespacedConfigMap(
        { name: 'held', namespace: ns, body: { metadata: { finalizers: ['example.com/keep', 'example.com/more'] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
    expect(addMore.message).toContain('no new finalizers can be added if the object is being deleted');
    await core.patchNamespacedConfigMap({ name: 'held', namespace: ns, body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await expect(core.readNamespacedConfigMap({ name: 'held', namespace: ns })).rejects.toMatchObject({ code: 404 });
  });

  it('collects dependents in the background, and orphans them on request', async () => {
    const ns = await namespace();
    const owner = await core.createNamespacedService({ namespace: ns, body: lbService('owner') });
    const ref = { apiVersion: 'v1', kind: 'Service', name: 'owner', uid: owner.metadata?.uid ?? '', controller: true };
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'dep', ownerReferences: [ref] } } });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'two-owners', ownerReferences: [ref, { apiVersion: 'v1', kind: 'Namespace', name: ns, uid: 'not-this-one' }] } },
    });
    await core.deleteNamespacedService({ name: 'owner', namespace: ns });
    await eventually(async () => (await core.listNamespacedConfigMap({ namespace: ns })).items.length === 0, 5000, 'dependents to be collected');

    const orphanOwner = await core.createNamespacedService({ namespace: ns, body: lbService('keeper') });
    const ref2 = { apiVersion: 'v1', kind: 'Service', name: 'keeper', uid: orphanOwner.metadata?.uid ?? '' };
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'orphan', ownerReferences: [ref2] } } });
    await core.deleteNamespacedService({ name: 'keeper', namespace: ns, propagationPolicy: 'Orphan' });
    await eventually(async () => {
      const cm = await core.readNamespacedConfigMap({ name: 'orphan', namespace: ns });
      return cm.metadata?.ownerReferences === undefined;
    });
    await api.settle();
    await expect(core.readNamespacedService({ name: 'keeper', namespace: ns })).rejects.toMatchObject({ code: 404 });
    await expect(core.readNamespacedConfigMap({ name: 'orphan', namespace: ns })).resolves.toBeDefined();
  });

  it('deletes dependents first under Foreground propagation', async () => {
    const ns = await namespace();
    const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'owner' } } });
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '', blockOwnerDeletion: true };
    // The dependent's own finalizer keeps it (and so the owner) around until we release it.
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'dep', ownerReferences: [ref], finalizers: ['example.com/keep'] } } });
    await core.deleteNamespacedConfigMap({ name: 'owner', namespace: ns, propagationPolicy: 'Foreground' });
    await eventually(async () => (await core.readNamespacedConfigMap({ name: 'dep', namespace: ns })).metadata?.deletionTimestamp !== undefined);
    const waiting = await core.readNamespacedConfigMap({ name: 'owner', namespace: ns });
    expect(waiting.metadata).toMatchObject({ deletionTimestamp: expect.anything(), finalizers: ['foregroundDeletion'] });
    await core.patchNamespacedConfigMap({ name: 'dep', namespace: ns, body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await eventually(async () => (await core.listNamespacedConfigMap({ namespace: ns })).items.length === 0, 5000, 'the owner to go once its dependent is gone');
  });

  it('deletes collections by selector', async () => {
    const ns = await namespace();
    for (const [name, app] of [
      ['a', 'x'],
      ['b', 'x'],
      ['c', 'y'],
    ])
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels: { app: app as string } } } });
    await core.deleteCollectionNamespacedConfigMap({ namespace: ns, labelSelector: 'app=x' });
    expect((await core.listNamespacedConfigMap({ namespace: ns })).items.map((c) => c.metadata?.name)).toEqual(['c']);
  });

  it('never lets a namespaced owner collect a cluster-scoped dependent, and says so in an event', async () => {
    const ns = await namespace();
    const owner = await core.createNamespacedService({ namespace: ns, body: lbService('owner') });
    await core.createNode({ body: { metadata: { name: `claim-${ns}`, ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'owner', uid: owner.metadata?.uid ?? '' }] } } });
    await core.deleteNamespacedService({ name: 'owner', namespace: ns });
    await api.settle();
    await expect(core.readNode({ name: `claim-${ns}` })).resolves.toBeDefined();
    const events = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=claim-${ns}` });
    expect(events.items.map((e) => e.reason)).toEqual(['OwnerRefInvalidNamespace']);
  });

  it('deletes a namespace with its contents', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cm' } } });
    await core.createNamespacedService({ namespace: ns, body: lbService('web') });
    // A finalizer holds the namespace in Terminating until it is removed.
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'held', finalizers: ['example.com/keep'] } } });
    const terminating = await core.deleteNamespace({ name: ns });
    expect(terminating).toMatchObject({ status: { phase: 'Terminating' } });
    const refused = await failure(core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'late' } } }));
    expect(refused).toMatchObject({ httpCode: 403, reason: 'Forbidden' });
    expect(refused.message).toContain(`unable to create new content in namespace ${ns} because it is being terminated`);
    await eventually(async () => (await core.listNamespacedConfigMap({ namespace: ns })).items.map((c) => c.metadata?.name).join() === 'held');
    await core.patchNamespacedConfigMap({ name: 'held', namespace: ns, body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await eventually(async () => {
      try {
        await core.readNamespace({ name: ns });
        return false;
      } catch (e) {
        return (e as { code: number }).code === 404;
      }
    });
  });

  it('labels namespaces with their name', async () => {
    const ns = await namespace();
    expect((await core.readNamespace({ name: ns })).metadata?.labels).toEqual({ 'kubernetes.io/metadata.name': ns });
  });
});

describe('events and leases', () => {
  it('stores events once and serves them through core/v1 and events.k8s.io/v1', async () => {
    const ns = await namespace();
    const events = kubeConfigFor(api).makeApiClient(EventsV1Api);
    const now = new Date();
    await events.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { name: 'web.2' },
        eventTime: now,
        reportingController: 'metallb.io/controller',
        reportingInstance: 'controller-0',
        action: 'Allocate',
        reason: 'IPAllocated',
        regarding: { kind: 'Service', name: 'web', namespace: ns, apiVersion: 'v1' },
        note: 'Assigned IP ["192.0.2.20"]',
        type: 'Normal',
      },
    });
    const coreView = await core.readNamespacedEvent({ name: 'web.2', namespace: ns });
    expect(coreView.involvedObject).toMatchObject({ kind: 'Service', name: 'web' });
    expect(coreView.message).toBe('Assigned IP ["192.0.2.20"]');
    expect(coreView.reportingComponent).toBe('metallb.io/controller');
    const listed = await events.listNamespacedEvent({ namespace: ns, fieldSelector: 'regarding.name=web,reportingController=metallb.io/controller' });
    expect(listed.items.map((e) => e.note)).toEqual(['Assigned IP ["192.0.2.20"]']);
    const invalid = await failure(events.createNamespacedEvent({ namespace: ns, body: { metadata: { name: 'bad' }, eventTime: now, reason: 'X', type: 'Normal' } }));
    expect(invalid.message).toContain('reportingController: Required value');
  });

  it('creates leases on PUT, as leader election does', async () => {
    const ns = await namespace();
    const coordination = kubeConfigFor(api).makeApiClient(CoordinationV1Api);
    const lease = await coordination.replaceNamespacedLease({
      name: 'metallb-controller',
      namespace: ns,
      body: { metadata: { name: 'metallb-controller' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } },
    });
    expect(lease.spec?.holderIdentity).toBe('a');
  });
});

describe('custom resources', () => {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.metallb.io' },
    spec: {
      group: 'example.metallb.io',
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', shortNames: ['wd'] },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [{ name: 'Size', type: 'integer', jsonPath: '.spec.size' }],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 }, color: { type: 'string', default: 'blue' } } },
                status: { type: 'object', properties: { ready: { type: 'boolean' } } },
              },
            },
          },
        },
      ],
    },
  };

  it('serves a CRD as soon as it is created, with schema defaults, pruning and validation', async () => {
    const created = await rawRequest(api, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd });
    expect(created.status).toBe(201);
    const established = await eventually(async () => {
      const got = (await rawRequest(api, 'GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.metallb.io')).json as {
        status: { conditions: { type: string; status: string }[] };
      };
      return got.status.conditions.some((c) => c.type === 'Established' && c.status === 'True') && got;
    });
    expect(established).toBeTruthy();
    const ns = await namespace();
    const w = { apiVersion: 'example.metallb.io/v1', kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 3, typo: true }, status: { ready: true } };
    const res = await rawRequest(api, 'POST', `/apis/example.metallb.io/v1/namespaces/${ns}/widgets`, { body: w });
    expect(res.status).toBe(201);
    expect(res.headers.warning).toBe('299 - "unknown field \\"spec.typo\\""');
    expect(res.json).toMatchObject({ spec: { size: 3, color: 'blue' }, metadata: { generation: 1 } });
    expect(res.json).not.toHaveProperty('status');
    const got = (await custom.getNamespacedCustomObject({ group: 'example.metallb.io', version: 'v1', namespace: ns, plural: 'widgets', name: 'w1' })) as {
      spec: Record<string, unknown>;
    };
    expect(got.spec).toEqual({ size: 3, color: 'blue' });
    const invalid = await failure(
      custom.createNamespacedCustomObject({
        group: 'example.metallb.io',
        version: 'v1',
        namespace: ns,
        plural: 'widgets',
        body: { ...w, metadata: { name: 'w2' }, spec: { size: 0 } },
      }),
    );
    expect(invalid.httpCode).toBe(422);
    expect(invalid.message).toBe('Widget.example.metallb.io "w2" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1');
    const v1 = (await rawRequest(api, 'GET', '/apis/example.metallb.io/v1')).json as { resources: { name: string; shortNames?: string[] }[] };
    expect(v1.resources.map((r) => r.name)).toEqual(['widgets', 'widgets/status']);
  });

  it('takes merge patches but not strategic merge patches, bumps generation on spec changes only', async () => {
    const ns = await namespace();
    const base = { group: 'example.metallb.io', version: 'v1', namespace: ns, plural: 'widgets' };
    await custom.createNamespacedCustomObject({ ...base, body: { apiVersion: 'example.metallb.io/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } } });
    const smp = await rawRequest(api, 'PATCH', `/apis/example.metallb.io/v1/namespaces/${ns}/widgets/w`, {
      body: { spec: { size: 2 } },
      headers: { 'Content-Type': 'application/strategic-merge-patch+json' },
    });
    expect(smp.status).toBe(415);
    expect(smp.json).toMatchObject({ reason: 'UnsupportedMediaType' });
    const merged = (await custom.patchNamespacedCustomObject({ ...base, name: 'w', body: { spec: { size: 2 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))) as {
      metadata: { generation: number };
    };
    expect(merged.metadata.generation).toBe(2);
    const status = (await custom.patchNamespacedCustomObjectStatus(
      { ...base, name: 'w', body: { status: { ready: true }, spec: { size: 9 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as { metadata: { generation: number }; spec: { size: number }; status: unknown };
    expect(status).toMatchObject({ metadata: { generation: 2 }, spec: { size: 2 }, status: { ready: true } });
    const noRv = await failure(
      custom.replaceNamespacedCustomObject({ ...base, name: 'w', body: { apiVersion: 'example.metallb.io/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 5 } } }),
    );
    expect(noRv.message).toContain('metadata.resourceVersion: Invalid value: 0: must be specified for an update');
    const table = (await rawRequest(api, 'GET', `/apis/example.metallb.io/v1/namespaces/${ns}/widgets`, { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } }))
      .json as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(['Name', 'Size']);
    expect(table.rows.map((r) => r.cells)).toEqual([['w', 2]]);
  });

  it('deletes custom objects with their CRD and stops serving them', async () => {
    const ns = await namespace();
    const tmp = structuredClone(crd);
    tmp.metadata.name = 'gadgets.example.metallb.io';
    tmp.spec.names = { plural: 'gadgets', singular: 'gadget', kind: 'Gadget', shortNames: [] };
    await rawRequest(api, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: tmp });
    await custom.createNamespacedCustomObject({
      group: 'example.metallb.io',
      version: 'v1',
      namespace: ns,
      plural: 'gadgets',
      body: { apiVersion: 'example.metallb.io/v1', kind: 'Gadget', metadata: { name: 'g' }, spec: { size: 1 } },
    });
    const del = await rawRequest(api, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.metallb.io');
    expect(del.status).toBe(200);
    await eventually(async () => (await rawRequest(api, 'GET', `/apis/example.metallb.io/v1/namespaces/${ns}/gadgets`)).status === 404);
    expect(api.store.raw.list('gadgets.example.metallb.io')).toEqual([]);
  });
});

describe('the generic KubernetesObjectApi', () => {
  // Uses the Widget CRD installed by the custom resource tests above.
  it('finds resources through discovery and works on built-in and custom objects', async () => {
    const ns = await namespace();
    const objects = KubernetesObjectApi.makeApiClient(kubeConfigFor(api));
    const svc = await objects.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'generic', namespace: ns },
      spec: { type: 'LoadBalancer', ports: [{ port: 80 }] },
    } as V1Service);
    expect(svc.metadata?.uid).toBeDefined();
    const patched = await objects.patch({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'generic', namespace: ns, labels: { a: 'b' } } });
    expect(patched.metadata?.labels).toEqual({ a: 'b' });
    const w = { apiVersion: 'example.metallb.io/v1', kind: 'Widget', metadata: { name: 'g', namespace: ns }, spec: { size: 2 } };
    await objects.create(w);
    const read = (await objects.read({ apiVersion: 'example.metallb.io/v1', kind: 'Widget', metadata: { name: 'g', namespace: ns } })) as unknown as { spec: { size: number } };
    expect(read.spec.size).toBe(2);
    const merged = (await objects.patch({ ...w, spec: { size: 4 } }, undefined, undefined, undefined, undefined, PatchStrategy.MergePatch)) as unknown as {
      spec: { size: number };
    };
    expect(merged.spec.size).toBe(4);
    const listed = await objects.list('example.metallb.io/v1', 'Widget', ns);
    expect(listed.items.map((i) => i.metadata?.name)).toEqual(['g']);
    await objects.delete({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'generic', namespace: ns } });
  });
});

describe('the test store', () => {
  it('reads and writes without HTTP, with the same defaults', async () => {
    const ns = await namespace();
    const svc = await api.store.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'direct', namespace: ns },
      spec: { type: 'LoadBalancer', ports: [{ port: 53, protocol: 'UDP' }] },
    });
    expect((svc.spec as { clusterIP: string }).clusterIP).toMatch(/^198\.51\.100\./);
    await api.store.updateStatus({ ...svc, status: { loadBalancer: { ingress: [{ ip: '192.0.2.53' }] } } });
    const fromApi = await core.readNamespacedService({ name: 'direct', namespace: ns });
    expect(fromApi.status?.loadBalancer?.ingress?.[0]?.ip).toBe('192.0.2.53');
    expect(api.store.list('v1', 'Service', { namespace: ns }).map((s) => s.metadata.name)).toEqual(['direct']);
    await api.store.delete('v1', 'Service', 'direct', ns);
    expect(api.store.get('v1', 'Service', 'direct', ns)).toBeUndefined();
  });
});

describe('plain HTTP', () => {
  it('serves without TLS, with a kubeconfig in the given directory that client-node and kubectl use', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'apiserver-http-'));
    const plain = await startApiServer({ tls: false, dir });
    try {
      expect(plain.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(plain.caPem).toBeUndefined();
      const kubeconfig = await readFile(join(dir, 'kubeconfig'), 'utf8');
      expect(kubeconfig).toContain(`server: ${plain.url}`);
      expect(kubeconfig).not.toContain('certificate-authority-data');
      const client = kubeConfigFor(plain).makeApiClient(CoreV1Api);
      expect((await client.listNamespace()).items.map((n) => n.metadata?.name)).toEqual(['default', 'kube-node-lease', 'kube-public', 'kube-system']);
      const got = await kubectl(plain, ['get', 'svc', 'kubernetes', '-o', 'jsonpath={.spec.clusterIP}']);
      expect(got).toMatchObject({ code: 0, stdout: '198.51.100.1' });
      const wrongToken = await rawRequest(plain, 'GET', '/api/v1/namespaces', { anonymous: true, headers: { Authorization: 'Bearer wrong' } });
      expect(wrongToken.status).toBe(401);
    } finally {
      await plain.stop();
    }
    // A directory the caller gave is the caller's: it stays.
    await expect(stat(join(dir, 'kubeconfig'))).resolves.toBeDefined();
    await rm(dir, { recursive: true, force: true });
  });
});
