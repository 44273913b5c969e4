/**
 * The RBAC, controller and webhook manifests: least privilege (no '*' anywhere), a hardened
 * controller Deployment, webhook configurations scoped as the design says, and all of it
 * accepted by the API server double (which also compiles the matchConditions' CEL).
 */
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { IPClaimAdmission } from '../../webhook/ipclaims-admission.js';
import type { AdmissionHandler, AdmissionRequest } from '../../webhook/review.js';
import { startWebhookServer, type WebhookServer } from '../../webhook/server.js';
import { Metrics } from '../../webhook/metrics.js';
import { startApiServer, type ApiServer, type KubeObject as ApiObject, type UserInfo } from '../apiserver/index.js';
import { writeKubeconfig } from '../apiserver/kubeconfig.js';
import { failure } from '../apiserver/testing.js';
import { testBundle } from '../webhook/support.js';
import { isKubeObject, loadYaml, manifestsDir, yamlFilesUnder, type KubeObject } from './support.js';

const objects: { file: string; obj: KubeObject }[] = yamlFilesUnder(manifestsDir)
  .filter((f) => /^(rbac|controller|webhooks)\//.test(f))
  .flatMap((file) => loadYaml(join(manifestsDir, file)).filter(isKubeObject).map((obj) => ({ file, obj })));

const one = (kind: string, name: string): KubeObject => {
  const found = objects.find((o) => o.obj.kind === kind && o.obj.metadata.name === name)?.obj;
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
const rulesOf = (o: KubeObject): Rule[] => (o.rules as Rule[] | undefined) ?? [];

/** Whether the role grants verb on group/resource (optionally for one name). */
function grants(role: KubeObject, group: string, resource: string, verb: string, name?: string): boolean {
  return rulesOf(role).some(
    (r) => (r.apiGroups ?? []).includes(group) && (r.resources ?? []).includes(resource) && (r.verbs ?? []).includes(verb) && (!r.resourceNames || (name !== undefined && r.resourceNames.includes(name))),
  );
}

describe('RBAC', () => {
  const roles = objects.filter((o) => o.obj.kind === 'ClusterRole' || o.obj.kind === 'Role');

  it('finds the roles (the checks below are not vacuous)', () => {
    expect(roles.map((r) => `${r.obj.kind}/${r.obj.metadata.name}`).sort()).toEqual(['ClusterRole/metallb-agent', 'ClusterRole/metallb-controller', 'Role/agent', 'Role/controller']);
  });

  it('uses no wildcard in any rule', () => {
    const wild: string[] = [];
    for (const { file, obj } of roles)
      rulesOf(obj).forEach((r, i) => {
        for (const [field, values] of Object.entries(r) as [string, string[]][]) if (values.some((v) => v.includes('*'))) wild.push(`${file} ${obj.metadata.name} rules[${i}].${field}`);
      });
    expect(wild).toEqual([]);
  });

  it('gives the controller what it needs, Secrets and Leases only in its namespace', () => {
    const cluster = one('ClusterRole', 'metallb-controller');
    const local = one('Role', 'controller');
    expect(local.metadata.namespace).toBe('metallb-system');
    for (const v of ['get', 'list', 'watch', 'update', 'patch']) expect(grants(cluster, '', 'services', v)).toBe(true);
    for (const v of ['update', 'patch']) expect(grants(cluster, '', 'services/status', v)).toBe(true);
    for (const v of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']) expect(grants(cluster, 'metallb.io', 'ipclaims', v)).toBe(true);
    expect(grants(cluster, '', 'events', 'create')).toBe(true);
    expect(grants(cluster, 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', 'update', 'metallb-mutating')).toBe(true);
    expect(grants(cluster, 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', 'update', 'someone-elses')).toBe(false);
    expect(grants(cluster, 'admissionregistration.k8s.io', 'validatingwebhookconfigurations', 'patch', 'metallb-validating')).toBe(true);
    expect(grants(cluster, '', 'secrets', 'get')).toBe(false);
    expect(grants(local, '', 'secrets', 'create')).toBe(true);
    expect(grants(local, 'coordination.k8s.io', 'leases', 'update')).toBe(true);
    expect(grants(cluster, '', 'services', 'delete')).toBe(false);
  });

  const WEBHOOK_CERT = 'metallb-webhook-cert';

  it('lets no role but the controller\'s read the webhook certificate Secret', () => {
    const readers = roles
      .filter(({ obj }) => ['get', 'list', 'watch'].some((v) => grants(obj, '', 'secrets', v, WEBHOOK_CERT)))
      .map(({ obj }) => `${obj.kind as string}/${obj.metadata.name}`);
    expect(readers).toEqual(['Role/controller']);
  });

  it("lets no role but the controller's write IPClaims (a claim moves an IP), and aggregates into no built-in role", () => {
    const writers = roles
      .filter(({ obj }) => ['create', 'update', 'patch', 'delete', 'deletecollection'].some((v) => grants(obj, 'metallb.io', 'ipclaims', v) || grants(obj, 'metallb.io', 'ipclaims/status', v)))
      .map(({ obj }) => `${obj.kind as string}/${obj.metadata.name}`);
    expect(writers).toEqual(['ClusterRole/metallb-controller']);
    // ClusterRoles labelled aggregate-to-admin/edit/view would add their rules to every namespace admin and editor.
    const aggregated = roles.filter(({ obj }) => Object.keys(obj.metadata.labels ?? {}).some((k) => k.startsWith('rbac.authorization.k8s.io/aggregate-to-')));
    expect(aggregated).toEqual([]);
    for (const { obj } of roles) expect((obj as { aggregationRule?: unknown }).aggregationRule).toBeUndefined();
  });

  it('binds each role to the right ServiceAccount', () => {
    for (const [kind, name, sa] of [
      ['ClusterRoleBinding', 'metallb-controller', 'controller'],
      ['RoleBinding', 'controller', 'controller'],
      ['ClusterRoleBinding', 'metallb-agent', 'agent'],
      ['RoleBinding', 'agent', 'agent'],
    ] as const) {
      const b = one(kind, name) as KubeObject & { subjects: { kind: string; name: string; namespace: string }[]; roleRef: { kind: string; name: string } };
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: 'metallb-system' }]);
      expect(() => one(b.roleRef.kind, b.roleRef.name)).not.toThrow();
      expect(() => one('ServiceAccount', sa)).not.toThrow();
    }
  });
});

describe('controller Deployment', () => {
  const d = one('Deployment', 'controller') as unknown as Deployment;
  const pod = d.spec?.template.spec;
  const c = pod?.containers[0];

  it('runs 2 replicas of the image as a hardened non-root container', () => {
    expect(d.spec?.replicas).toBe(2);
    expect(pod?.serviceAccountName).toBe('controller');
    expect(c?.image).toBe('metallb-ts:latest');
    expect(c?.command).toEqual(['node', 'dist/webhook/main.js']);
    expect(pod?.securityContext?.runAsNonRoot).toBe(true);
    expect(pod?.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    expect(c?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c?.resources?.requests).toBeDefined();
    expect(c?.ports?.map((p) => p.containerPort).sort()).toEqual([7472, 9443]);
  });

  it('probes /readyz and /healthz over HTTPS on the webhook port', () => {
    expect(c?.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'webhook', scheme: 'HTTPS' });
    expect(c?.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'webhook', scheme: 'HTTPS' });
  });

  it('is selected by the webhook Service, port 443 -> 9443', () => {
    const svc = one('Service', 'metallb-webhook-service') as KubeObject & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] } };
    expect(d.spec?.template.metadata?.labels).toMatchObject(svc.spec.selector);
    expect(svc.spec.ports).toEqual([expect.objectContaining({ port: 443, targetPort: 'webhook' })]);
  });

  it('kubernetes-models rejects a broken Deployment (the schema check is not vacuous)', () => {
    expect(() => new Deployment({ metadata: { name: 'x' }, spec: { template: {} } } as never).validate()).toThrow();
  });
});

interface Webhook {
  name: string;
  failurePolicy: string;
  sideEffects: string;
  timeoutSeconds: number;
  reinvocationPolicy?: string;
  clientConfig: { service: { namespace: string; name: string; path: string; port: number } };
  rules: { apiGroups: string[]; resources: string[]; operations: string[] }[];
  namespaceSelector?: { matchExpressions: { key: string; operator: string; values: string[] }[] };
  matchConditions?: { name: string; expression: string }[];
}
const hooks = (kind: string, name: string): Webhook[] => (one(kind, name) as unknown as { webhooks: Webhook[] }).webhooks;

describe('webhook configurations', () => {
  const mutating = hooks('MutatingWebhookConfiguration', 'metallb-mutating');
  const validating = hooks('ValidatingWebhookConfiguration', 'metallb-validating');

  it('call our Service on the paths the server serves', () => {
    const paths = [...mutating, ...validating].map((w) => w.clientConfig.service);
    for (const s of paths) expect(s).toMatchObject({ namespace: 'metallb-system', name: 'metallb-webhook-service', port: 443 });
    expect(paths.map((s) => s.path).sort()).toEqual(['/mutate/services', '/validate/config', '/validate/config', '/validate/external-ips', '/validate/ipclaims', '/validate/services']);
  });

  it('fail open for Services, outside kube-system and our namespace, only for LoadBalancers', () => {
    const services = [...mutating, ...validating].filter((w) => w.rules.some((r) => r.resources.includes('services')) && w.clientConfig.service.path !== '/validate/external-ips');
    expect(services).toHaveLength(2);
    for (const w of services) {
      expect(w.failurePolicy).toBe('Ignore');
      expect(w.sideEffects).toBe('NoneOnDryRun');
      expect(w.timeoutSeconds).toBe(5);
      expect(w.namespaceSelector?.matchExpressions).toEqual([{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'metallb-system'] }]);
      expect(w.matchConditions?.[0]?.expression).toContain("object.spec.type == 'LoadBalancer'");
    }
    expect(mutating[0]?.reinvocationPolicy).toBe('IfNeeded');
    expect(mutating[0]?.rules[0]?.operations).toEqual(['CREATE', 'UPDATE']);
  });

  it('fail closed for every configuration kind and the ConfigMap', () => {
    const config = validating.filter((w) => w.clientConfig.service.path === '/validate/config');
    for (const w of config) {
      expect(w.failurePolicy).toBe('Fail');
      expect(w.rules[0]?.operations).toEqual(['CREATE', 'UPDATE', 'DELETE']);
    }
    // metallb.io objects from every namespace (refused outside ours), the ConfigMap in ours only.
    expect(config.find((w) => w.name === 'validate.config.metallb.io')?.namespaceSelector).toBeUndefined();
    const kinds = config.flatMap((w) => w.rules.flatMap((r) => r.resources)).sort();
    expect(kinds).toEqual(['bfdprofiles', 'bgpadvertisements', 'bgppeers', 'communities', 'configmaps', 'ipaddresspools', 'l2advertisements']);
  });

  it('check external IPs of Services of every type, fail-open, only for Services that have some', () => {
    const [w, ...more] = validating.filter((x) => x.clientConfig.service.path === '/validate/external-ips');
    expect(more).toEqual([]);
    expect(w).toMatchObject({ name: 'validate.externalips.metallb.io', failurePolicy: 'Ignore', sideEffects: 'None', timeoutSeconds: 5 });
    expect(w?.rules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'], scope: 'Namespaced' }]);
    expect(w?.namespaceSelector?.matchExpressions).toEqual([{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'metallb-system'] }]);
    expect(w?.matchConditions).toEqual([{ name: 'has-external-ips', expression: 'has(object.spec.externalIPs) && size(object.spec.externalIPs) > 0' }]);
    // No condition on the type: a ClusterIP Service's external IPs are the attack.
    expect(JSON.stringify(w)).not.toContain('LoadBalancer');
  });

  it('refuse IPClaim writes fail-closed, and never send the controller\'s own (by its ServiceAccount from the manifests)', () => {
    const [w, ...more] = validating.filter((x) => x.clientConfig.service.path === '/validate/ipclaims');
    expect(more).toEqual([]);
    expect(w).toMatchObject({ name: 'validate.ipclaims.metallb.io', failurePolicy: 'Fail', sideEffects: 'None', timeoutSeconds: 5 });
    expect(w?.rules).toEqual([{ apiGroups: ['metallb.io'], apiVersions: ['v1beta1'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['ipclaims', 'ipclaims/status'], scope: 'Cluster' }]);
    const binding = one('ClusterRoleBinding', 'metallb-controller') as KubeObject & { subjects: { name: string; namespace: string }[] };
    const sa = binding.subjects[0];
    const expression = w?.matchConditions?.[0]?.expression ?? '';
    expect(expression).toContain(`'system:serviceaccount:${sa?.namespace ?? ''}:${sa?.name ?? ''}'`);
    expect(expression).toContain("'system:serviceaccount:kube-system:generic-garbage-collector'");
  });
});

describe('installed into the API server double', () => {
  let api: ApiServer;
  beforeAll(async () => {
    api = await startApiServer();
  });
  afterAll(() => api.stop());

  it('accepts every object, and the webhooks match only what they should', async () => {
    const ns = loadYaml(join(manifestsDir, 'namespace.yaml')).filter(isKubeObject);
    for (const o of [...ns, ...objects.map((x) => x.obj)]) await api.store.create(structuredClone(o) as unknown as ApiObject);
    expect(api.store.get('apps/v1', 'Deployment', 'controller', 'metallb-system')).toBeDefined();
    expect(api.store.get('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', 'metallb-validating')).toBeDefined();
    // Nothing serves the webhooks here, so every call fails: failurePolicy and scoping decide.
    const kc = new KubeConfig();
    kc.loadFromFile(api.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const lb = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'lb' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } } });
    expect(lb.metadata?.name).toBe('lb'); // Services: Ignore
    await core.createNamespacedConfigMap({ namespace: 'metallb-system', body: { metadata: { name: 'other' }, data: {} } }); // not "config": no call
    await expect(core.createNamespacedConfigMap({ namespace: 'metallb-system', body: { metadata: { name: 'config' }, data: { config: '' } } })).rejects.toThrow(
      /failed calling webhook .*validate.configmap.metallb.io/,
    ); // configuration: Fail
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'config' }, data: {} } }); // other namespace: no call
  });
});

describe('the webhook configurations in the API server double, served by the webhook server', () => {
  const CONTROLLER: UserInfo = { username: 'system:serviceaccount:metallb-system:controller', groups: ['system:serviceaccounts', 'system:authenticated'] };
  let api: ApiServer;
  let server: WebhookServer;
  const calls: { path: string; request: AdmissionRequest }[] = [];
  let admin: KubeConfig;
  let controller: KubeConfig;

  const recording =
    (path: string, handler: AdmissionHandler = () => Promise.resolve({ allowed: true })): AdmissionHandler =>
    (request) => {
      calls.push({ path, request });
      return handler(request);
    };

  beforeAll(async () => {
    const token = 'controller-token';
    api = await startApiServer({ users: { [token]: CONTROLLER } });
    const bundle = testBundle();
    const ipClaims = new IPClaimAdmission({ controllerUser: CONTROLLER.username });
    server = await startWebhookServer({
      certificate: bundle,
      host: '127.0.0.1',
      registry: new Metrics().registry,
      handlers: {
        mutateServices: recording('/mutate/services'),
        validateServices: recording('/validate/services'),
        validateConfig: recording('/validate/config'),
        validateExternalIPs: recording('/validate/external-ips'),
        validateIPClaims: recording('/validate/ipclaims', ipClaims.validate),
      },
    });
    api.routeService('metallb-system', 'metallb-webhook-service', 443, { host: '127.0.0.1', port: server.port });
    const caBundle = Buffer.from(bundle.caBundlePem).toString('base64');
    const crd = loadYaml(join(manifestsDir, 'crds', 'metallb.io_ipclaims.yaml')).filter(isKubeObject);
    const ns = loadYaml(join(manifestsDir, 'namespace.yaml')).filter(isKubeObject);
    for (const o of [...ns, ...crd, ...objects.map((x) => x.obj)]) {
      const copy = structuredClone(o) as unknown as ApiObject & { webhooks?: { clientConfig: { caBundle?: string } }[] };
      for (const w of copy.webhooks ?? []) w.clientConfig.caBundle = caBundle; // what the controller does at start
      await api.store.create(copy);
    }
    await api.settle();
    admin = new KubeConfig();
    admin.loadFromFile(api.kubeconfigPath);
    const path = join(api.dir, 'controller.kubeconfig');
    await writeKubeconfig(path, { server: api.url, token, ...(api.caPem ? { caPem: api.caPem } : {}) });
    controller = new KubeConfig();
    controller.loadFromFile(path);
  });
  afterAll(async () => {
    await server?.close();
    await api?.stop();
  });
  beforeEach(() => {
    calls.length = 0;
  });

  const paths = () => calls.map((c) => c.path).sort();
  const claim = (ip: string) => ({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPClaim',
    metadata: { name: ip },
    spec: { ip, pool: 'p', family: 'IPv4', holders: [{ namespace: 'default', name: 'web' }] },
  });
  const createClaim = (kc: KubeConfig, ip: string) =>
    kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({ group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims', body: claim(ip) });

  it('send a Service with externalIPs, of any type, to /validate/external-ips, and none without', async () => {
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'plain' }, spec: { ports: [{ port: 80 }] } } });
    expect(paths()).toEqual([]);
    await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'ext' }, spec: { ports: [{ port: 80 }], externalIPs: ['192.0.2.10'] } } });
    expect(paths()).toEqual(['/validate/external-ips']);
    expect(calls[0]?.request).toMatchObject({ operation: 'CREATE', namespace: 'default', name: 'ext', userInfo: { username: 'kubernetes-admin' } });
    calls.length = 0;
    await core.createNamespacedService({
      namespace: 'default',
      body: { metadata: { name: 'lb-ext' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }], externalIPs: ['192.0.2.11'] } },
    });
    expect(paths()).toEqual(['/mutate/services', '/validate/external-ips', '/validate/services']);
    calls.length = 0;
    await core.createNamespacedService({ namespace: 'kube-system', body: { metadata: { name: 'ext' }, spec: { ports: [{ port: 80 }], externalIPs: ['192.0.2.12'] } } });
    expect(paths()).toEqual([]);
  });

  it("refuse the admin's IPClaim writes through /validate/ipclaims, and never send the controller's", async () => {
    const refused = await failure(createClaim(admin, '192.0.2.20'));
    expect(refused).toMatchObject({ httpCode: 403, reason: 'Forbidden' });
    expect(refused.message).toBe(
      'admission webhook "validate.ipclaims.metallb.io" denied the request: IPClaims are written only by the MetalLB controller (system:serviceaccount:metallb-system:controller): ' +
        'kubernetes-admin may not create IPClaim "192.0.2.20", because a claim decides which Service holds an IP. ' +
        'To repair a claim by hand, act as the controller (kubectl --as=system:serviceaccount:metallb-system:controller)',
    );
    expect(paths()).toEqual(['/validate/ipclaims']);
    calls.length = 0;
    await createClaim(controller, '192.0.2.21');
    expect(paths()).toEqual([]);
    const del = (kc: KubeConfig) => kc.makeApiClient(CustomObjectsApi).deleteClusterCustomObject({ group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims', name: '192.0.2.21' });
    expect((await failure(del(admin))).message).toContain('kubernetes-admin may not delete IPClaim "192.0.2.21"');
    await del(controller);
  });

  it("refuse IPClaim writes while the webhook cannot answer (fail-closed), except the controller's", async () => {
    await server.close();
    expect((await failure(createClaim(admin, '192.0.2.22'))).message).toMatch(/^Internal error occurred: failed calling webhook "validate.ipclaims.metallb.io"/);
    await createClaim(controller, '192.0.2.23');
  });
});
