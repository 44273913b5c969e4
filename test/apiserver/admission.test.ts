/**
 * Admission webhooks end to end: a tiny HTTPS webhook server with its own CA, registered
 * through Mutating/ValidatingWebhookConfiguration objects, called by the double with real
 * AdmissionReviews; and the same seen through kubectl (mutation, rejection, warning).
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { AdmissionregistrationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Service } from '@kubernetes/client-node';
import { createCertificateAuthority, issueCertificate, startApiServer, type ApiServer, type KubeObject } from './index.js';
import { failure, kubeConfigFor, kubectl, rawRequest } from './testing.js';

interface Review {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: string;
  userInfo: { username: string };
  object: KubeObject | null;
  oldObject: KubeObject | null;
  dryRun: boolean;
  options: { kind: string };
}

/** What the test webhook does with one request. */
type Handler = (review: Review) => Record<string, unknown> | Promise<Record<string, unknown>>;

const ca = createCertificateAuthority('webhook test CA');
const serving = issueCertificate(ca, { commonName: 'webhook', dnsNames: ['webhook.hooks.svc'], ipAddresses: ['127.0.0.1'] });
const caBundle = Buffer.from(ca.certPem).toString('base64');

let api: ApiServer;
let core: CoreV1Api;
let admission: AdmissionregistrationV1Api;
let hookServer: Server;
let hookPort: number;
const calls: { path: string; review: Review }[] = [];
const handlers = new Map<string, Handler>();

function patchOf(ops: unknown[]): { patchType: string; patch: string } {
  return { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') };
}

beforeAll(async () => {
  hookServer = createServer({ key: serving.keyPem, cert: serving.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: Review };
        const path = new URL(req.url ?? '/', 'https://x').pathname;
        calls.push({ path, review: body.request });
        const handler = handlers.get(path) ?? (() => ({ allowed: true }));
        const response = { uid: body.request.uid, ...(await handler(body.request)) };
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
      })();
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
  hookPort = (hookServer.address() as AddressInfo).port;
  api = await startApiServer();
  api.routeService('hooks', 'webhook', 443, { host: '127.0.0.1', port: hookPort });
  const kc = kubeConfigFor(api);
  core = kc.makeApiClient(CoreV1Api);
  admission = kc.makeApiClient(AdmissionregistrationV1Api);
  for (const name of ['apps', 'other', 'hooks']) await core.createNamespace({ body: { metadata: { name } } });

  // The shape of MetalLB's own configuration: Services only, LoadBalancer only (matchConditions),
  // not kube-system, fail-open; mutating before validating.
  handlers.set('/mutate', (r) => {
    const annotations = r.object?.metadata.annotations;
    if (annotations?.['example.com/allocated']) return { allowed: true };
    const ops = annotations
      ? [{ op: 'add', path: '/metadata/annotations/example.com~1allocated', value: '192.0.2.10' }]
      : [{ op: 'add', path: '/metadata/annotations', value: { 'example.com/allocated': '192.0.2.10' } }];
    return { allowed: true, ...patchOf(ops), warnings: r.object?.metadata.labels?.warn ? ['pool "default" is almost full'] : [] };
  });
  handlers.set('/validate', (r) => {
    if (r.object?.metadata.labels?.reject) return { allowed: false, status: { code: 403, reason: 'Forbidden', message: `192.0.2.99 is outside every pool` } };
    if (r.object?.metadata.labels?.plainreject) return { allowed: false, status: { message: 'nope' } };
    return { allowed: true };
  });
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: 'metallb-mutating' },
      webhooks: [
        {
          name: 'mutate.example.com',
          admissionReviewVersions: ['v1'],
          sideEffects: 'NoneOnDryRun',
          failurePolicy: 'Ignore',
          clientConfig: { service: { namespace: 'hooks', name: 'webhook', path: '/mutate' }, caBundle },
          rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] }],
          namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'hooks'] }] },
          matchConditions: [{ name: 'load-balancers', expression: "object.spec.type == 'LoadBalancer'" }],
        },
      ],
    },
  });
  await admission.createValidatingWebhookConfiguration({
    body: {
      metadata: { name: 'metallb-validating' },
      webhooks: [
        {
          name: 'validate.example.com',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          clientConfig: { url: `https://127.0.0.1:${hookPort}/validate`, caBundle },
          rules: [{ operations: ['CREATE', 'UPDATE', 'DELETE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] }],
          objectSelector: { matchExpressions: [{ key: 'skip-validation', operator: 'DoesNotExist' }] },
        },
      ],
    },
  });
});

afterAll(async () => {
  await api.stop();
  await new Promise((resolve) => hookServer.close(resolve));
});

beforeEach(() => {
  calls.length = 0;
});

const svc = (name: string, labels: Record<string, string> = {}, type = 'LoadBalancer'): V1Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, labels },
  spec: { type, ports: [{ port: 80 }] },
});

describe('mutating and validating webhooks', () => {
  it('sends real AdmissionReviews and applies the returned JSON patch before validating', async () => {
    const created = await core.createNamespacedService({ namespace: 'apps', body: svc('web') });
    expect(created.metadata?.annotations).toEqual({ 'example.com/allocated': '192.0.2.10' });
    expect(calls.map((c) => c.path)).toEqual(['/mutate', '/validate']);
    const [mutate, validate] = calls.map((c) => c.review);
    expect(mutate).toMatchObject({
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      name: 'web',
      namespace: 'apps',
      operation: 'CREATE',
      userInfo: { username: 'kubernetes-admin' },
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions' },
    });
    expect(mutate?.uid).toMatch(/^[0-9a-f-]{36}$/);
    // Mutating webhooks see the object before allocation; validating ones after, with the patch applied.
    expect((mutate?.object?.spec as { clusterIP?: string }).clusterIP).toBeUndefined();
    expect(validate?.object?.metadata.annotations).toEqual({ 'example.com/allocated': '192.0.2.10' });
    expect((validate?.object?.spec as { clusterIP?: string }).clusterIP).toMatch(/^198\.51\.100\./);
  });

  it('skips webhooks whose matchConditions, namespaceSelector or objectSelector do not match', async () => {
    const clusterIp = await core.createNamespacedService({ namespace: 'apps', body: svc('internal', {}, 'ClusterIP') });
    expect(clusterIp.metadata?.annotations).toBeUndefined();
    const system = await core.createNamespacedService({ namespace: 'kube-system', body: svc('dns') });
    expect(system.metadata?.annotations).toBeUndefined();
    await core.createNamespacedService({ namespace: 'other', body: svc('quiet', { 'skip-validation': 'yes' }) });
    expect(calls.map((c) => `${c.path} ${c.review.name ?? ''}`)).toEqual(['/validate internal', '/validate dns', '/mutate quiet']);
  });

  it("rejects with the webhook's message and code", async () => {
    const denied = await failure(core.createNamespacedService({ namespace: 'apps', body: svc('bad', { reject: 'yes' }) }));
    expect(denied).toMatchObject({ httpCode: 403, reason: 'Forbidden', message: 'admission webhook "validate.example.com" denied the request: 192.0.2.99 is outside every pool' });
    const plain = await failure(core.createNamespacedService({ namespace: 'apps', body: svc('bad2', { plainreject: 'yes' }) }));
    expect(plain).toMatchObject({ httpCode: 400, message: 'admission webhook "validate.example.com" denied the request: nope' });
    await expect(core.readNamespacedService({ name: 'bad', namespace: 'apps' })).rejects.toMatchObject({ code: 404 });
  });

  it('returns webhook warnings as Warning headers', async () => {
    const res = await rawRequest(api, 'POST', '/api/v1/namespaces/apps/services', { body: svc('warned', { warn: 'yes' }) });
    expect(res.status).toBe(201);
    expect(res.headers.warning).toBe('299 - "pool \\"default\\" is almost full"');
  });

  it('calls webhooks on update and delete with the old object', async () => {
    await core.createNamespacedService({ namespace: 'other', body: svc('upd') });
    calls.length = 0;
    await core.patchNamespacedService({ name: 'upd', namespace: 'other', body: { metadata: { labels: { v: '2' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(calls.map((c) => [c.path, c.review.operation, c.review.oldObject?.metadata.labels])).toEqual([
      ['/mutate', 'UPDATE', {}],
      ['/validate', 'UPDATE', {}],
    ]);
    calls.length = 0;
    await core.deleteNamespacedService({ name: 'upd', namespace: 'other' });
    expect(calls.map((c) => [c.path, c.review.operation, c.review.object, c.review.oldObject?.metadata.name, c.review.options.kind])).toEqual([
      ['/validate', 'DELETE', null, 'upd', 'DeleteOptions'],
    ]);
  });

  it('passes dryRun to webhooks that declare no side effects on dry run', async () => {
    await core.createNamespacedService({ namespace: 'apps', body: svc('dry'), dryRun: 'All' });
    expect(calls.map((c) => c.review.dryRun)).toEqual([true, true]);
    await expect(core.readNamespacedService({ name: 'dry', namespace: 'apps' })).rejects.toMatchObject({ code: 404 });
  });

  it('does not call webhooks for the status subresource unless a rule names it', async () => {
    await core.createNamespacedService({ namespace: 'other', body: svc('st') });
    calls.length = 0;
    await core.patchNamespacedServiceStatus(
      { name: 'st', namespace: 'other', body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(calls).toEqual([]);
  });

  it('refuses a configuration whose matchConditions are outside the CEL subset', async () => {
    const bad = await failure(
      admission.createValidatingWebhookConfiguration({
        body: {
          metadata: { name: 'bad-cel' },
          webhooks: [
            {
              name: 'bad.example.com',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              clientConfig: { url: `https://127.0.0.1:${hookPort}/validate` },
              matchConditions: [{ name: 'x', expression: 'authorizer.requestResource.check("get").allowed()' }],
            },
          ],
        },
      }),
    );
    expect(bad.httpCode).toBe(422);
    expect(bad.message).toContain('webhooks[0].matchConditions[0].expression');
  });
});

describe('failure policies, timeouts, TLS and reinvocation', () => {
  async function withConfig(kind: 'mutating' | 'validating', webhook: Record<string, unknown>, run: () => Promise<void>): Promise<void> {
    const name = `tmp-${String(webhook.name)}`;
    const body = {
      metadata: { name },
      webhooks: [
        { admissionReviewVersions: ['v1'], sideEffects: 'None', rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }], ...webhook },
      ],
    };
    if (kind === 'mutating') await admission.createMutatingWebhookConfiguration({ body: body as never });
    else await admission.createValidatingWebhookConfiguration({ body: body as never });
    try {
      await run();
    } finally {
      if (kind === 'mutating') await admission.deleteMutatingWebhookConfiguration({ name });
      else await admission.deleteValidatingWebhookConfiguration({ name });
    }
  }
  let n = 0;
  const cm = (): { metadata: { name: string } } => ({ metadata: { name: `cm-${++n}` } });

  it('fails closed or open on an unreachable webhook, as failurePolicy says', async () => {
    const closed = { clientConfig: { url: 'https://127.0.0.1:1/nothing', caBundle } };
    await withConfig('validating', { name: 'down.example.com', failurePolicy: 'Fail', ...closed }, async () => {
      const e = await failure(core.createNamespacedConfigMap({ namespace: 'apps', body: cm() }));
      expect(e).toMatchObject({ httpCode: 500, reason: 'InternalError' });
      expect(e.message).toMatch(
        /^Internal error occurred: failed calling webhook "down.example.com": failed to call webhook: Post "https:\/\/127.0.0.1:1\/nothing\?timeout=10s": .*ECONNREFUSED/,
      );
    });
    await withConfig('validating', { name: 'down-ignored.example.com', failurePolicy: 'Ignore', ...closed }, async () => {
      await expect(core.createNamespacedConfigMap({ namespace: 'apps', body: cm() })).resolves.toBeDefined();
    });
  });

  it('gives up on a slow webhook after timeoutSeconds', async () => {
    handlers.set('/slow', () => new Promise((resolve) => setTimeout(() => resolve({ allowed: true }), 1500)));
    await withConfig('validating', { name: 'slow.example.com', timeoutSeconds: 1, clientConfig: { url: `https://127.0.0.1:${hookPort}/slow`, caBundle } }, async () => {
      const started = Date.now();
      const e = await failure(core.createNamespacedConfigMap({ namespace: 'apps', body: cm() }));
      expect(e.message).toContain('context deadline exceeded');
      expect(Date.now() - started).toBeLessThan(1400);
    });
  });

  it('verifies the webhook against caBundle', async () => {
    const stranger = createCertificateAuthority('someone else');
    await withConfig(
      'validating',
      { name: 'untrusted.example.com', clientConfig: { url: `https://127.0.0.1:${hookPort}/validate`, caBundle: Buffer.from(stranger.certPem).toString('base64') } },
      async () => {
        const e = await failure(core.createNamespacedConfigMap({ namespace: 'apps', body: cm() }));
        expect(e.message).toMatch(/failed calling webhook "untrusted.example.com".*(self-signed|unable to verify|certificate)/);
      },
    );
  });

  it('reinvokes an IfNeeded webhook once when a later webhook changed the object', async () => {
    handlers.set('/first', (r) => ({
      allowed: true,
      ...patchOf([
        {
          op: 'add',
          path: '/data',
          value: { ...((r.object?.data as Record<string, string> | undefined) ?? {}), first: String(Object.keys((r.object?.data as object | undefined) ?? {}).length) },
        },
      ]),
    }));
    handlers.set('/second', () => ({ allowed: true, ...patchOf([{ op: 'add', path: '/data/second', value: 'x' }]) }));
    await withConfig('mutating', { name: 'a-first.example.com', reinvocationPolicy: 'IfNeeded', clientConfig: { url: `https://127.0.0.1:${hookPort}/first`, caBundle } }, () =>
      withConfig('mutating', { name: 'b-second.example.com', clientConfig: { url: `https://127.0.0.1:${hookPort}/second`, caBundle } }, async () => {
        const created = await core.createNamespacedConfigMap({ namespace: 'apps', body: cm() });
        expect(calls.map((c) => c.path)).toEqual(['/first', '/second', '/first']);
        // The second run of /first saw what /second added.
        expect(created.data).toEqual({ first: '2', second: 'x' });
      }),
    );
  });
});

describe('through kubectl', () => {
  it('shows the mutation, the rejection and the warning', async () => {
    const manifest = (name: string, labels: Record<string, string>): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'apps', labels }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
    const warned = await kubectl(api, ['create', '--validate=false', '-f', '-'], manifest('kc-warned', { warn: 'yes' }));
    if (warned.code !== 0) throw new Error(warned.stderr);
    expect(warned.stdout).toBe('service/kc-warned created\n');
    expect(warned.stderr).toContain('Warning: pool "default" is almost full');
    const got = await kubectl(api, ['get', 'svc', 'kc-warned', '-n', 'apps', '-o', 'jsonpath={.metadata.annotations}']);
    expect(JSON.parse(got.stdout)).toEqual({ 'example.com/allocated': '192.0.2.10' });
    const rejected = await kubectl(api, ['apply', '--validate=false', '-f', '-'], manifest('kc-bad', { reject: 'yes' }));
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toContain('admission webhook "validate.example.com" denied the request: 192.0.2.99 is outside every pool');
  });
});
