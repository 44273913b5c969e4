/**
 * 500 Services created concurrently (50 in flight) through two controller processes, the API
 * server double calling their webhooks round-robin; halfway through, the leader is killed with
 * SIGKILL (no lease release). The other replica takes the lease over, and in the end every
 * Service has an IP in status, no IP is held by two Services, and no claim is leaked (claims ==
 * Services with an IP). The pool is 512 addresses (two documentation /24s), so the replicas
 * really compete for the last free ones.
 */
import { CoreV1Api, CustomObjectsApi, type V1Service } from '@kubernetes/client-node';
import { eventually } from '../apiserver/testing.js';
import { ASSIGNED_IPS, E2ECluster, ingressIPs, lbService, NAMESPACE, percentile, waitForPool, type ControllerProcess } from './support.js';

const SERVICES = 500;
const IN_FLIGHT = 50;
const KILL_AFTER = 250;

let cluster: E2ECluster;
let core: CoreV1Api;

beforeAll(async () => {
  // ClusterIPs for 500 Services: the double's default service range is a /24.
  cluster = await E2ECluster.start({ serviceCidr: '10.96.0.0/16' });
  core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'load' } } });
  await cluster.api.store.create({
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name: 'load', namespace: NAMESPACE },
    spec: { addresses: ['192.0.2.0/24', '203.0.113.0/24'] },
  });
  await Promise.all([cluster.startController(), cluster.startController()]);
  await cluster.leader();
  await waitForPool(core, 'load', 'load');
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
}, 30_000);

test(`${SERVICES} Services through two replicas, the leader killed halfway: every Service gets one IP, none twice, none leaked`, async () => {
  const leader = await cluster.leader();
  const follower = cluster.replicas.find((r) => r !== leader) as ControllerProcess;
  const latencies: number[] = [];
  let createdWithIP = 0;
  let killedAt = 0;
  const started = Date.now();
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < SERVICES) {
      const i = next++;
      const t0 = performance.now();
      const s: V1Service = await core.createNamespacedService({ namespace: 'load', body: lbService(`svc-${String(i).padStart(3, '0')}`, 'load') });
      latencies.push(performance.now() - t0);
      if (s.metadata?.annotations?.[ASSIGNED_IPS]) createdWithIP++;
      if (++done === KILL_AFTER) {
        leader.kill('SIGKILL');
        killedAt = Date.now();
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const createdAllMs = Date.now() - started;

  await follower.waitUntil(() => follower.leading, 'the follower to take the lease over', 15_000);
  const failoverMs = (follower.ledAt ?? 0) - killedAt;

  const services = await eventually(
    async () => {
      const list = await core.listNamespacedService({ namespace: 'load' });
      return list.items.length === SERVICES && list.items.every((s) => ingressIPs(s).length === 1) && list.items;
    },
    30_000,
    'every Service to have an IP in status',
  );
  const allAssignedMs = Date.now() - started;

  // No IP twice; annotations agree with status.
  const holder = new Map<string, string>();
  for (const s of services) {
    const [ip] = ingressIPs(s);
    const name = s.metadata?.name ?? '';
    expect(holder.get(ip ?? '')).toBeUndefined();
    holder.set(ip ?? '', name);
    expect(s.metadata?.annotations?.[ASSIGNED_IPS]).toBe(ip);
  }
  expect(holder.size).toBe(SERVICES);

  // No claim leaked: one claim per Service IP, each naming that Service (bound to its UID).
  const uids = new Map(services.map((s) => [s.metadata?.name ?? '', s.metadata?.uid ?? '']));
  const claims = await eventually(
    async () => {
      const list = (await cluster.kubeConfig().makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims' })) as {
        items: { spec: { ip: string; holders: { namespace: string; name: string; uid?: string }[] } }[];
      };
      // Claims made by the dead replica for requests the API server had already given up on are
      // reaped after the grace period; wait for a steady state that matches.
      return list.items.length === SERVICES && list.items.every((c) => c.spec.holders.length === 1 && c.spec.holders[0]?.uid) && list.items;
    },
    40_000,
    'one bound claim per Service',
  );
  for (const c of claims) {
    const h = c.spec.holders[0];
    expect(holder.get(c.spec.ip)).toBe(h?.name);
    expect(h?.uid).toBe(uids.get(h?.name ?? ''));
  }

  latencies.sort((a, b) => a - b);
  process.stderr.write(
    `e2e scale: ${SERVICES} creates (${IN_FLIGHT} in flight) in ${createdAllMs} ms, ${createdWithIP} returned with their IP; ` +
      `create latency p50 ${percentile(latencies, 50).toFixed(0)} ms p99 ${percentile(latencies, 99).toFixed(0)} ms; ` +
      `leader SIGKILLed after ${KILL_AFTER}, failover ${failoverMs} ms; all ${SERVICES} with status after ${allAssignedMs} ms\n`,
  );
  expect(failoverMs).toBeLessThan(5000);
  // Most creates went through a live webhook and came back with their IP.
  expect(createdWithIP).toBeGreaterThan(SERVICES / 2);
}, 90_000);
