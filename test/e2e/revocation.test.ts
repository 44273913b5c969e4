/**
 * Revocation through the real webhooks: a forced pool change takes IPs away from Services that
 * requested them, that share them, and from a dual-stack Service. The controller's own clean-up
 * goes through its own validating webhook (the Service's request is now impossible, but the
 * controller's write changes nothing the user controls), so it must succeed: every revoked
 * Service is cleared or moved, told why once, and no IP is shown without its claim. Also: a user
 * update refused by API validation after the mutating webhook answered moves nothing.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { eventually, kubectl } from '../apiserver/testing.js';
import { checkInvariants, clusterObjects, waitForInvariants } from './invariants.js';
import { E2ECluster } from './support.js';

let cluster: E2ECluster;
let core: CoreV1Api;

beforeAll(async () => {
  cluster = await E2ECluster.start();
  core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'rv' } } });
  await cluster.startController();
  await cluster.leader();
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
}, 30_000);

afterEach(async () => {
  if (cluster) await waitForInvariants(cluster.api, { timeoutMs: 10_000 });
}, 20_000);

async function apply(yaml: string) {
  return kubectl(cluster.api, ['apply', '-f', '-'], yaml);
}

function pool(name: string, addresses: string[], annotations: Record<string, string> = {}): string {
  const ann = Object.entries(annotations).map(([k, v]) => `    ${k}: "${v}"`);
  return [
    'apiVersion: metallb.io/v1beta1',
    'kind: IPAddressPool',
    'metadata:',
    `  name: ${name}`,
    '  namespace: metallb-system',
    ...(ann.length ? ['  annotations:', ...ann] : []),
    'spec:',
    '  addresses:',
    ...addresses.map((a) => `  - ${a}`),
    '',
  ].join('\n');
}

function service(name: string, extra: { annotations?: Record<string, string>; spec?: string[]; port?: number } = {}): string {
  const ann = Object.entries(extra.annotations ?? {}).map(([k, v]) => `    ${k}: "${v}"`);
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    '  namespace: rv',
    ...(ann.length ? ['  annotations:', ...ann] : []),
    'spec:',
    '  type: LoadBalancer',
    '  selector:',
    `    app: ${name}`,
    '  ports:',
    `  - port: ${extra.port ?? 80}`,
    ...(extra.spec ?? []),
    '',
  ].join('\n');
}

const ips = async (name: string) => ((await core.readNamespacedService({ name, namespace: 'rv' })).status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(',');
const reasons = async (name: string) =>
  (await core.listNamespacedEvent({ namespace: 'rv', fieldSelector: `involvedObject.name=${name}` })).items.map((e) => `${e.reason}: ${e.message}`);

test('a forced change revokes requested, shared and dual-stack IPs through the controller own webhook; each Service is told once', async () => {
  expect((await apply(pool('rv-pool', ['192.0.2.0/29', '2001:db8:7::/125']))).code).toBe(0);
  expect((await apply(service('wanted', { spec: ['  loadBalancerIP: 192.0.2.3'] }))).code).toBe(0);
  expect((await apply(service('share-a', { annotations: { 'metallb.io/allow-shared-ip': 'k', 'metallb.io/loadBalancerIPs': '192.0.2.4' }, port: 80 }))).code).toBe(0);
  expect((await apply(service('share-b', { annotations: { 'metallb.io/allow-shared-ip': 'k', 'metallb.io/loadBalancerIPs': '192.0.2.4' }, port: 443 }))).code).toBe(0);
  expect((await apply(service('dual', { spec: ['  ipFamilyPolicy: RequireDualStack', '  ipFamilies: [IPv4, IPv6]'] }))).code).toBe(0);
  const dualBefore = await eventually(async () => ((await ips('dual')).includes(',') ? ips('dual') : undefined), 5000, 'dual assigned');
  const v6 = dualBefore.split(',')[1];
  expect(v6).toMatch(/^2001:db8:7::/);
  await eventually(async () => ((await ips('share-b')) === '192.0.2.4' ? true : undefined), 5000, 'shared IP assigned');

  // Without force the change is refused (422, not 409: kubectl apply retried a Conflict six
  // times) and nothing moves.
  cluster.api.resetRequestCounts();
  const refused = await apply(pool('rv-pool', ['198.51.100.0/29', '2001:db8:7::/125']));
  expect(refused.code).toBe(1);
  expect(cluster.api.requests.count({ verb: 'patch', resource: 'ipaddresspools', subresource: '', userAgent: 'kubectl/' })).toBe(1);
  expect(refused.stderr).toMatch(/would take IPs away/);
  expect(await ips('wanted')).toBe('192.0.2.3');

  // Forced: the IPv4 range goes.
  const forced = await apply(pool('rv-pool', ['198.51.100.0/29', '2001:db8:7::/125'], { 'metallb.io/force': 'true' }));
  expect(forced.code).toBe(0);
  // Requested and shared IPs cannot be substituted: cleared, with a reason.
  for (const name of ['wanted', 'share-a', 'share-b']) {
    await eventually(async () => ((await ips(name)) === '' ? true : undefined), 8000, `${name} cleared`);
    const annotations = (await core.readNamespacedService({ name, namespace: 'rv' })).metadata?.annotations ?? {};
    expect(annotations['metallb.io/assigned-ips']).toBeUndefined();
    const told = await eventually(
      async () => {
        const r = await reasons(name);
        return r.some((x) => x.startsWith('ClearAssignment')) ? r : undefined;
      },
      5000,
      `${name} told why`,
    );
    expect(told.filter((x) => x.startsWith('AllocationFailed')).length).toBe(1);
  }
  // The dual-stack Service gets a new IPv4 address and keeps its IPv6 one.
  const dualAfter = await eventually(async () => ((await ips('dual')).startsWith('198.51.100.') ? ips('dual') : undefined), 8000, 'dual moved');
  expect(dualAfter.split(',')[1]).toBe(v6);
  expect(cluster.api.store.list('metallb.io/v1beta1', 'IPClaim').map((c) => (c as unknown as { spec: { ip: string } }).spec.ip)).not.toContain('192.0.2.3');
  // A new Service cannot take the dual-stack Service's IPv6 address.
  expect((await apply(service('late', { spec: ['  ipFamilies: [IPv6]'] }))).code).toBe(0);
  const late = await eventually(async () => (await ips('late')) || undefined, 5000, 'late assigned');
  expect(late).not.toBe(v6);
  // The loop does not spin on the revoked Services: their events stay at one failure each.
  await new Promise((r) => setTimeout(r, 1500));
  for (const name of ['wanted', 'share-a', 'share-b']) expect((await reasons(name)).filter((x) => x.startsWith('AllocationFailed')).length).toBe(1);
  const { services, claims } = clusterObjects(cluster.api);
  expect(checkInvariants(services, claims)).toEqual([]);
}, 60_000);

test('an update the API server refuses after the mutating webhook answered moves nothing', async () => {
  expect((await apply(pool('other', ['203.0.113.0/29']))).code).toBe(0);
  expect((await apply(service('steady', { annotations: { 'metallb.io/address-pool': 'rv-pool' } }))).code).toBe(0);
  const before = await eventually(async () => (await ips('steady')) || undefined, 5000, 'steady assigned');
  // Asks for another pool and an invalid port in one change: mutating admission answers, validation refuses.
  const r = await kubectl(cluster.api, [
    'patch',
    'svc',
    'steady',
    '-n',
    'rv',
    '--type=merge',
    '-p',
    JSON.stringify({ metadata: { annotations: { 'metallb.io/address-pool': 'other' } }, spec: { ports: [{ port: 70000 }] } }),
  ]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/70000/);
  await waitForInvariants(cluster.api, { timeoutMs: 5000 });
  expect(await ips('steady')).toBe(before);
  const annotations = (await core.readNamespacedService({ name: 'steady', namespace: 'rv' })).metadata?.annotations ?? {};
  expect(annotations['metallb.io/assigned-ips']).toBe(before);
  // The reservation the refused request took expires; the address is free again.
  await eventually(
    () => (cluster.api.store.list('metallb.io/v1beta1', 'IPClaim') as unknown as { spec: { ip: string } }[]).every((c) => !c.spec.ip.startsWith('203.0.113.')) || undefined,
    45_000,
    'the refused request reservation released',
  );
}, 60_000);
