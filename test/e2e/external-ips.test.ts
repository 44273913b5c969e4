/**
 * CVE-2020-8554 and the claims ledger's integrity, end to end: real controller processes
 * (`dist/webhook/main.js`, authenticating as their ServiceAccount) behind the manifests'
 * webhook configurations in the API server double, driven by client-node and the real kubectl
 * as the admin.
 *
 * - a Service of any type may not take, as an external IP, another Service's load-balancer IP
 *   or an address of a pool its namespace may not use; kubectl shows the one-line reason;
 * - what the namespace may use, and addresses outside every pool, are admitted;
 * - IPClaims are written by the controller only: the admin's writes are refused, while the
 *   controller's own claims keep working (every Service above got its IP).
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { eventually, failure, kubectl } from '../apiserver/testing.js';
import { ASSIGNED_IPS, E2ECluster, lbService, NAMESPACE, waitForPool } from './support.js';

let cluster: E2ECluster;
let core: CoreV1Api;
let objects: CustomObjectsApi;
/** The load-balancer IP of shop/web. */
let webIP: string;

const pool = (name: string, spec: Record<string, unknown>) =>
  objects.createNamespacedCustomObject({
    group: 'metallb.io',
    version: 'v1beta1',
    namespace: NAMESPACE,
    plural: 'ipaddresspools',
    body: { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name }, spec },
  });

const clusterIPService = (name: string, namespace: string, externalIPs: string[]) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], externalIPs },
});

beforeAll(async () => {
  cluster = await E2ECluster.start();
  const kc = cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  objects = kc.makeApiClient(CustomObjectsApi);
  for (const name of ['shop', 'team-a', 'team-b']) await core.createNamespace({ body: { metadata: { name } } });
  await cluster.startController();
  await cluster.startController();
  await cluster.leader();
  await pool('open', { addresses: ['192.0.2.0/28'] });
  await pool('team-a', { addresses: ['198.51.100.0/28'], serviceAllocation: { namespaces: ['team-a'] } });
  await waitForPool(core, 'shop', 'open');
  await waitForPool(core, 'team-a', 'team-a');
  const web = await core.createNamespacedService({ namespace: 'shop', body: lbService('web', 'shop', { annotations: { 'metallb.io/address-pool': 'open' } }) });
  webIP = web.metadata?.annotations?.[ASSIGNED_IPS] ?? '';
  expect(webIP).toMatch(/^192\.0\.2\./);
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
}, 30_000);

describe('spec.externalIPs (CVE-2020-8554)', () => {
  test("a ClusterIP Service may not take another Service's load-balancer IP; kubectl shows why in one line", async () => {
    const yaml = JSON.stringify(clusterIPService('sneaky', 'team-b', [webIP]));
    const r = await kubectl(cluster.api, ['create', '-f', '-'], yaml);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `Error from server (Forbidden): error when creating "STDIN": admission webhook "validate.externalips.metallb.io" denied the request: ` +
        `spec.externalIPs[0] ${webIP} is the load-balancer IP of shop/web (pool "open"); ` +
        'an external IP receives all traffic for its address, so one inside a MetalLB pool must be free and from a pool the namespace may use (CVE-2020-8554)',
    );
    expect((await failure(core.readNamespacedService({ name: 'sneaky', namespace: 'team-b' }))).httpCode).toBe(404);
  });

  test('nor an address of a pool its namespace may not use, even a free one, and not by an update either', async () => {
    const refused = await failure(core.createNamespacedService({ namespace: 'team-b', body: clusterIPService('grab', 'team-b', ['198.51.100.7']) }));
    expect(refused).toMatchObject({ httpCode: 403, reason: 'Forbidden' });
    expect(refused.message).toBe(
      'admission webhook "validate.externalips.metallb.io" denied the request: spec.externalIPs[0] 198.51.100.7 is in a MetalLB pool team-b/grab may not use: ' +
        'pool "team-a" serves only namespaces team-a, not namespace "team-b" of team-b/grab; ' +
        'an external IP receives all traffic for its address, so one inside a MetalLB pool must be free and from a pool the namespace may use (CVE-2020-8554)',
    );
    // Created without, then patched to have it.
    await core.createNamespacedService({ namespace: 'team-b', body: clusterIPService('later', 'team-b', []) });
    const patched = await failure(core.patchNamespacedService({ name: 'later', namespace: 'team-b', body: [{ op: 'add', path: '/spec/externalIPs', value: ['198.51.100.8'] }] }));
    expect(patched.message).toContain('spec.externalIPs[0] 198.51.100.8 is in a MetalLB pool team-b/later may not use');
  });

  test("a LoadBalancer Service may not list another Service's IP among its external IPs either", async () => {
    const body = lbService('lb-sneaky', 'team-b', { spec: { externalIPs: [webIP] } });
    const refused = await failure(core.createNamespacedService({ namespace: 'team-b', body }));
    expect(refused.message).toContain(`spec.externalIPs[0] ${webIP} is the load-balancer IP of shop/web`);
  });

  test('admits what the namespace may use, and addresses outside every pool', async () => {
    const own = await core.createNamespacedService({ namespace: 'team-a', body: clusterIPService('mine', 'team-a', ['198.51.100.9']) });
    expect(own.spec?.externalIPs).toEqual(['198.51.100.9']);
    const outside = await core.createNamespacedService({ namespace: 'team-b', body: clusterIPService('outside', 'team-b', ['203.0.113.50']) });
    expect(outside.spec?.externalIPs).toEqual(['203.0.113.50']);
  });
});

describe('IPClaims are written by the controller only', () => {
  const claims = () => cluster.kubeConfig().makeApiClient(CustomObjectsApi);

  test("the admin's create, change and delete of a claim are refused; the controller's claims stand", async () => {
    const name = webIP;
    const claim = (await objects.getClusterCustomObject({ group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims', name })) as {
      spec: { holders: { namespace: string; name: string }[] };
    };
    expect(claim.spec.holders).toEqual([expect.objectContaining({ namespace: 'shop', name: 'web' })]);

    const moved = await failure(
      claims().patchClusterCustomObject({
        group: 'metallb.io',
        version: 'v1beta1',
        plural: 'ipclaims',
        name,
        body: [{ op: 'replace', path: '/spec/holders', value: [{ namespace: 'team-b', name: 'thief' }] }],
      }),
    );
    expect(moved).toMatchObject({ httpCode: 403, reason: 'Forbidden' });
    expect(moved.message).toMatch(
      /^admission webhook "validate.ipclaims.metallb.io" denied the request: IPClaims are written only by the MetalLB controller \(system:serviceaccount:metallb-system:controller\): kubernetes-admin may not change IPClaim /,
    );
    const freed = await failure(claims().deleteClusterCustomObject({ group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims', name }));
    expect(freed.message).toContain(`kubernetes-admin may not delete IPClaim "${name}"`);
    const taken = await failure(
      claims().createClusterCustomObject({
        group: 'metallb.io',
        version: 'v1beta1',
        plural: 'ipclaims',
        body: {
          apiVersion: 'metallb.io/v1beta1',
          kind: 'IPClaim',
          metadata: { name: '192.0.2.14' },
          spec: { ip: '192.0.2.14', pool: 'open', family: 'IPv4', holders: [{ namespace: 'team-b', name: 'thief' }] },
        },
      }),
    );
    expect(taken.message).toContain('kubernetes-admin may not create IPClaim "192.0.2.14"');

    // The controller's own writes go on: a new Service gets its IP, and deleting it frees the claim.
    const next = await core.createNamespacedService({ namespace: 'shop', body: lbService('next', 'shop', { annotations: { 'metallb.io/address-pool': 'open' } }) });
    const nextIP = next.metadata?.annotations?.[ASSIGNED_IPS] ?? '';
    expect(nextIP).toMatch(/^192\.0\.2\./);
    await core.deleteNamespacedService({ name: 'next', namespace: 'shop' });
    await eventually(
      async () => {
        const gone = await failure(objects.getClusterCustomObject({ group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims', name: nextIP })).catch(() => undefined);
        return gone?.httpCode === 404;
      },
      10_000,
      `the controller to delete the claim of ${nextIP}`,
    );
  }, 30_000);
});
