/**
 * The serving certificate against the API server double, over real TLS with real client-node:
 * Secret sharing between replicas, caBundle patching, rotation under load, the mounted mode,
 * and the API server calling our webhook end to end.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig, type V1Service } from '@kubernetes/client-node';
import { startApiServer, type ApiServer, type KubeObject } from '../apiserver/index.js';
import { CertDirectory, CertManager, KubeCertStore, needsRenewal, splitPems, type Clock } from '../../webhook/certs.js';
import { startWebhookServer, type WebhookServer } from '../../webhook/server.js';
import { httpsCall, NAMESPACE, SERVICE, testBundle } from './support.js';

const SECRET = 'metallb-webhook-cert';
const DAY = 24 * 3600_000;

let api: ApiServer;
let kc: KubeConfig;

function webhookConfiguration(kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration', name: string, failurePolicy: string): KubeObject {
  const hook = (hookName: string, path: string): Record<string, unknown> => ({
    name: hookName,
    admissionReviewVersions: ['v1'],
    sideEffects: 'NoneOnDryRun',
    failurePolicy,
    timeoutSeconds: 5,
    clientConfig: { service: { namespace: NAMESPACE, name: SERVICE, path, port: 443 } },
    namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NAMESPACE] }] },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'], scope: 'Namespaced' }],
  });
  const webhooks =
    kind === 'MutatingWebhookConfiguration'
      ? [{ ...hook('mutate.services.metallb.io', '/mutate/services'), reinvocationPolicy: 'IfNeeded' }]
      : [hook('validate.services.metallb.io', '/validate/services'), hook('validate.services2.metallb.io', '/validate/services')];
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name }, webhooks } as unknown as KubeObject;
}

const caBundles = (kind: string, name: string): string[] =>
  ((api.store.get('admissionregistration.k8s.io/v1', kind, name) as unknown as { webhooks: { clientConfig: { caBundle?: string } }[] }).webhooks ?? []).map((w) =>
    Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'),
  );

class FakeClock implements Clock {
  constructor(public t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  monotonic(): number {
    return this.t;
  }
}

function manager(clock: Clock, validityMs = 300 * DAY): CertManager {
  const store = new KubeCertStore(kc.makeApiClient(CoreV1Api), kc.makeApiClient(AdmissionregistrationV1Api), NAMESPACE, SECRET);
  return new CertManager({
    store,
    clock,
    service: SERVICE,
    namespace: NAMESPACE,
    mutatingWebhookConfiguration: 'metallb-mutating',
    validatingWebhookConfiguration: 'metallb-validating',
    validityMs,
  });
}

beforeAll(async () => {
  api = await startApiServer();
  kc = new KubeConfig();
  kc.loadFromFile(api.kubeconfigPath);
  await api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
});
afterAll(() => api.stop());

/** Webhook servers a test started and has not closed yet: closed after it, even when it fails. */
const openServers = new Set<WebhookServer>();

afterEach(async () => {
  for (const s of openServers) await s.close();
  openServers.clear();
  for (const [kind, name] of [
    ['MutatingWebhookConfiguration', 'metallb-mutating'],
    ['ValidatingWebhookConfiguration', 'metallb-validating'],
  ] as const)
    if (api.store.get('admissionregistration.k8s.io/v1', kind, name)) await api.store.delete('admissionregistration.k8s.io/v1', kind, name);
  if (api.store.get('v1', 'Secret', SECRET, NAMESPACE)) await api.store.delete('v1', 'Secret', SECRET, NAMESPACE);
});

describe('CertManager', () => {
  it('creates one Secret that a second replica reads instead of making its own, and patches every caBundle', async () => {
    await api.store.create(webhookConfiguration('MutatingWebhookConfiguration', 'metallb-mutating', 'Ignore'));
    await api.store.create(webhookConfiguration('ValidatingWebhookConfiguration', 'metallb-validating', 'Ignore'));
    const clock = new FakeClock(Date.now());
    // Both start at once: one creates, the other meets 409 and reads the winner's.
    const [a, b] = await Promise.all([manager(clock).sync(), manager(clock).sync()]);
    expect(a.certPem).toBe(b.certPem);
    expect(a.keyPem).toBe(b.keyPem);

    const secret = api.store.get('v1', 'Secret', SECRET, NAMESPACE) as unknown as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('kubernetes.io/tls');
    const data = (k: string): string => Buffer.from(secret.data[k] ?? '', 'base64').toString('utf8');
    expect(data('tls.crt')).toBe(a.certPem);
    expect(data('ca.crt')).toBe(a.caBundlePem);

    const cert = new X509Certificate(a.certPem);
    const ca = new X509Certificate(a.caCertPem);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    for (const n of [SERVICE, `${SERVICE}.${NAMESPACE}.svc`, `${SERVICE}.${NAMESPACE}.svc.cluster.local`]) expect(cert.checkHost(n)).toBe(n);

    expect(caBundles('MutatingWebhookConfiguration', 'metallb-mutating')).toEqual([a.caBundlePem]);
    expect(caBundles('ValidatingWebhookConfiguration', 'metallb-validating')).toEqual([a.caBundlePem, a.caBundlePem]);
    // A third start changes nothing.
    const rv = api.store.get('v1', 'Secret', SECRET, NAMESPACE)?.metadata.resourceVersion;
    expect((await manager(clock).sync()).certPem).toBe(a.certPem);
    expect(api.store.get('v1', 'Secret', SECRET, NAMESPACE)?.metadata.resourceVersion).toBe(rv);
  });

  it('works before the webhook configurations exist, and patches them on a later sync', async () => {
    const m = manager(new FakeClock(Date.now()));
    const first = await m.sync();
    await api.store.create(webhookConfiguration('MutatingWebhookConfiguration', 'metallb-mutating', 'Ignore'));
    await m.sync();
    expect(caBundles('MutatingWebhookConfiguration', 'metallb-mutating')).toEqual([first.caBundlePem]);
  });

  it('renews when less than a third of the validity is left, trusting old and new CA', () => {
    const { certPem } = testBundle(); // one day of validity, from 5 minutes ago
    expect(needsRenewal(certPem, new Date())).toBe(false);
    expect(needsRenewal(certPem, new Date(Date.now() + 0.7 * DAY))).toBe(true);
    expect(needsRenewal('', new Date())).toBe(true);
  });

  it('rotates under load: the API server keeps calling the webhook and no call fails', async () => {
    // failurePolicy Fail: a TLS failure during the switch would fail the create, not hide.
    await api.store.create(webhookConfiguration('MutatingWebhookConfiguration', 'metallb-mutating', 'Fail'));
    // The fake clock starts 250 days back, so the first certificate (300 days) has 50 days left
    // in real time: valid for real TLS, due for renewal once the fake clock reaches today.
    const clock = new FakeClock(Date.now() - 250 * DAY);
    const replicaA = manager(clock);
    const replicaB = manager(clock);
    const first = await replicaA.sync();
    await replicaB.sync();
    const servers: WebhookServer[] = [];
    for (const replica of [replicaA, replicaB]) {
      const current = replica.current;
      if (!current) throw new Error('no certificate');
      const server = await startWebhookServer({
        certificate: current,
        host: '127.0.0.1',
        registry: new Registry(),
        handlers: {
          mutateServices: async () => ({ allowed: true, patch: [{ op: 'add', path: '/metadata/annotations', value: { 'example.com/seen': 'yes' } }] }),
        },
      });
      openServers.add(server);
      replica.onChange((c) => server.setCertificate(c));
      servers.push(server);
    }
    // The double reaches the Service through replica A, then B, alternating.
    let n = 0;
    api.routeService(NAMESPACE, SERVICE, 443, {
      host: '127.0.0.1',
      get port() {
        return (servers[n++ % 2] as WebhookServer).port;
      },
    } as never);

    const core = kc.makeApiClient(CoreV1Api);
    let stop = false;
    let created = 0;
    const failures: string[] = [];
    let load: Promise<void> | undefined;
    /** Waits until `n` more creates have gone through; fails after 10 s, with the failures so far. */
    const creates = async (n: number) => {
      const target = created + n;
      const deadline = Date.now() + 10_000;
      while (created < target) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${target} creates (${created} so far); failures: ${failures.join('; ') || 'none'}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    let renewedByA: Awaited<ReturnType<CertManager['sync']>>;
    let renewedByB: Awaited<ReturnType<CertManager['sync']>>;
    try {
      load = (async () => {
        while (!stop) {
          try {
            const s = await core.createNamespacedService({
              namespace: 'default',
              body: { metadata: { generateName: 'rot-' }, spec: { type: 'ClusterIP', ports: [{ port: 80 }] } },
            });
            if (s.metadata?.annotations?.['example.com/seen'] !== 'yes') failures.push('not mutated');
            created++;
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
      })();
      await creates(3);
      clock.t = Date.now();
      renewedByA = await replicaA.sync();
      await creates(3);
      renewedByB = await replicaB.sync();
      await creates(3);
    } finally {
      stop = true;
      await load;
      for (const s of servers) {
        openServers.delete(s);
        await s.close();
      }
    }

    expect(failures).toEqual([]);
    expect(renewedByA.certPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(renewedByA.certPem).not.toBe(first.certPem);
    expect(renewedByB.certPem).toBe(renewedByA.certPem); // B took A's renewal, did not make its own
    expect(splitPems(renewedByA.caBundlePem)).toEqual([renewedByA.caCertPem, first.caCertPem]);
    expect(caBundles('MutatingWebhookConfiguration', 'metallb-mutating')).toEqual([renewedByA.caBundlePem]);
    expect(new X509Certificate(renewedByA.certPem).verify(new X509Certificate(renewedByA.caCertPem).publicKey)).toBe(true);
  });
});

describe('the API server calls the webhook', () => {
  it('a Service created through client-node comes back with the annotation our handler added', async () => {
    const bundle = testBundle();
    const server = await startWebhookServer({
      certificate: bundle,
      host: '127.0.0.1',
      registry: new Registry(),
      handlers: {
        mutateServices: async (r) => ({
          allowed: true,
          patch: [{ op: 'add', path: '/metadata/annotations', value: { 'metallb.io/seen-uid': r.uid.length > 0 ? 'yes' : 'no' } }],
          warnings: ['hello from the webhook'],
        }),
      },
    });
    try {
      const config = webhookConfiguration('MutatingWebhookConfiguration', 'metallb-mutating', 'Fail') as unknown as { webhooks: Record<string, unknown>[] };
      const hook = config.webhooks[0] as Record<string, unknown>;
      // By Service reference, as in the manifests: the double verifies the certificate for <service>.<namespace>.svc.
      hook.clientConfig = { service: { namespace: NAMESPACE, name: SERVICE, path: '/mutate/services', port: 443 }, caBundle: Buffer.from(bundle.caCertPem).toString('base64') };
      hook.matchConditions = [
        {
          name: 'loadbalancer',
          expression: "(has(object.spec.type) && object.spec.type == 'LoadBalancer') || (oldObject != null && has(oldObject.spec.type) && oldObject.spec.type == 'LoadBalancer')",
        },
      ];
      await api.store.create(config as unknown as KubeObject);
      api.routeService(NAMESPACE, SERVICE, 443, { host: '127.0.0.1', port: server.port });

      const core = kc.makeApiClient(CoreV1Api);
      const lb: V1Service = { metadata: { name: 'web' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } };
      const created = await core.createNamespacedService({ namespace: 'default', body: lb });
      expect(created.metadata?.annotations?.['metallb.io/seen-uid']).toBe('yes');
      // matchConditions keep other Services away from us.
      const plain = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'plain' }, spec: { type: 'ClusterIP', ports: [{ port: 80 }] } } });
      expect(plain.metadata?.annotations?.['metallb.io/seen-uid']).toBeUndefined();
      // And the health endpoint is reachable with the same CA, by the Service's DNS name.
      expect((await httpsCall(server.port, bundle.caCertPem, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('CertDirectory (cert-manager mode)', () => {
  it('reads tls.crt/tls.key and reports a change, skipping a mismatched pair', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metallb-certdir-'));
    try {
      const one = testBundle();
      const two = testBundle();
      await writeFile(join(dir, 'tls.crt'), one.certPem);
      await writeFile(join(dir, 'tls.key'), one.keyPem);
      const source = new CertDirectory(dir);
      expect((await source.load()).certPem).toBe(one.certPem);
      const seen: string[] = [];
      source.onChange((c) => seen.push(c.certPem));
      expect(await source.check()).toBe(false);
      await writeFile(join(dir, 'tls.crt'), two.certPem); // key not yet replaced: skipped
      expect(await source.check()).toBe(false);
      await writeFile(join(dir, 'tls.key'), two.keyPem);
      expect(await source.check()).toBe(true);
      expect(seen).toEqual([two.certPem]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
