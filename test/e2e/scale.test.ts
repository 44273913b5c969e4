/**
 * 500 Services created concurrently (50 in flight) through two controller processes, the API
 * server double calling their webhooks round-robin; halfway through, the leader is killed with
 * SIGKILL (no lease release). The other replica takes the lease over, and in the end every
 * Service has an IP in status, no IP is held by two Services, and no claim is leaked (claims ==
 * Services with an IP). The pool is 512 addresses (two documentation /24s), so the replicas
 * really compete for the last free ones. The cluster-wide invariants (test/e2e/invariants.ts)
 * are sampled in flight during the load and checked in full once it has settled.
 *
 * Failover is measured from the SIGKILL to the survivor's first "started leading" after it (its
 * own log timestamp), for the replica that held the Lease at that moment: leadership may have
 * moved during the load (a leader starved of CPU misses its renewals), so the replica that led at
 * the start is not necessarily the one killed.
 */
import { CoreV1Api, CustomObjectsApi, type V1Service } from '@kubernetes/client-node';
import { eventually } from '../apiserver/testing.js';
import { checkInvariants, clusterObjects, formatViolations, waitForInvariants, type Violation } from './invariants.js';
import { ASSIGNED_IPS, E2ECluster, ingressIPs, lbService, NAMESPACE, percentile, waitForPool, type ControllerProcess } from './support.js';

const SERVICES = 500;
const IN_FLIGHT = 50;
const KILL_AFTER = 250;
/** The replicas' --lease-duration (E2ECluster.startController). */
const LEASE_DURATION_MS = 2000;
const LEASE = 'metallb-controller';

/** When `p` logged "started leading" at or after `since` (its own timestamp), if it has. */
function startedLeadingAfter(p: ControllerProcess, since: number): number | undefined {
  for (const m of p.output.matchAll(/^(\S+) leader election: \S+ started leading$/gm)) {
    const t = Date.parse(m[1] ?? '');
    if (t >= since) return t;
  }
  return undefined;
}

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

afterEach(async () => {
  if (cluster) await waitForInvariants(cluster.api, { timeoutMs: 10_000 });
}, 20_000);

test(`${SERVICES} Services through two replicas, the leader killed halfway: every Service gets one IP, none twice, none leaked`, async () => {
  await cluster.leader();
  const latencies: number[] = [];
  /** The IP each create call returned, by Service name. */
  const returned = new Map<string, string>();
  let createdWithIP = 0;
  let kill: { at: number; victim: ControllerProcess; survivor: ControllerProcess; leaseRenewedAt: number } | undefined;
  const started = Date.now();
  let next = 0;
  let done = 0;
  // The in-flight invariants, sampled while Services are created (every distinct violation kept).
  const seen = new Map<string, Violation>();
  const sample = () => {
    const { services, claims } = clusterObjects(cluster.api);
    for (const v of checkInvariants(services, claims, { inFlight: true })) seen.set(`${v.invariant}|${v.service ?? ''}|${v.ip ?? ''}|${v.problem}`, v);
  };
  const sampler = setInterval(sample, 250);
  const killLeader = () => {
    // Whoever holds the Lease now (read synchronously from the double's store) is the leader.
    const lease = cluster.api.store.get('coordination.k8s.io/v1', 'Lease', LEASE, NAMESPACE) as { spec?: { holderIdentity?: string; renewTime?: string } } | undefined;
    const victim = cluster.replicas.find((r) => r.alive && r.identity === lease?.spec?.holderIdentity);
    const survivor = cluster.replicas.find((r) => r.alive && r !== victim);
    if (!victim || !survivor) throw new Error(`no leader to kill: the Lease says ${JSON.stringify(lease?.spec)}`);
    victim.kill('SIGKILL');
    kill = { at: Date.now(), victim, survivor, leaseRenewedAt: Date.parse(lease?.spec?.renewTime ?? '') };
  };
  const worker = async () => {
    while (next < SERVICES) {
      const i = next++;
      const t0 = performance.now();
      const s: V1Service = await core.createNamespacedService({ namespace: 'load', body: lbService(`svc-${String(i).padStart(3, '0')}`, 'load') });
      latencies.push(performance.now() - t0);
      const ip = s.metadata?.annotations?.[ASSIGNED_IPS];
      if (ip) {
        createdWithIP++;
        returned.set(s.metadata?.name ?? '', ip);
      }
      if (++done === KILL_AFTER) killLeader();
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    clearInterval(sampler);
  }
  sample();
  const createdAllMs = Date.now() - started;
  if (!kill) throw new Error('the leader was never killed');
  const { victim, survivor } = kill;
  expect((await victim.exited).signal).toBe('SIGKILL');

  // The survivor takes the Lease once it expires: its first "started leading" after the kill.
  const killedAt = kill.at;
  await survivor.waitUntil(() => startedLeadingAfter(survivor, killedAt) !== undefined, 'the survivor to take the lease over', 15_000);
  const failoverMs = (startedLeadingAfter(survivor, killedAt) as number) - killedAt;
  const lease = cluster.api.store.get('coordination.k8s.io/v1', 'Lease', LEASE, NAMESPACE) as { spec?: { holderIdentity?: string } };
  expect(lease.spec?.holderIdentity).toBe(survivor.identity);

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

  // No claim leaked: one claim per Service IP, each naming that Service.
  const claims = await eventually(
    async () => {
      const list = (await cluster.kubeConfig().makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims' })) as {
        items: { spec: { ip: string; holders: { namespace: string; name: string }[] } }[];
      };
      // Claims made by the dead replica for requests the API server had already given up on are
      // reaped after the grace period; wait for a steady state that matches.
      return list.items.length === SERVICES && list.items.every((c) => c.spec.holders.length === 1 && holder.get(c.spec.ip) === c.spec.holders[0]?.name) && list.items;
    },
    40_000,
    'one claim per Service, naming it',
  );
  for (const c of claims) expect(holder.get(c.spec.ip)).toBe(c.spec.holders[0]?.name);

  latencies.sort((a, b) => a - b);
  process.stderr.write(
    `e2e scale: ${SERVICES} creates (${IN_FLIGHT} in flight) in ${createdAllMs} ms, ${createdWithIP} returned with their IP; ` +
      `create latency p50 ${percentile(latencies, 50).toFixed(0)} ms p99 ${percentile(latencies, 99).toFixed(0)} ms; ` +
      `leader ${victim.identity} SIGKILLed after ${KILL_AFTER}, failover to ${survivor.identity} ${failoverMs} ms; all ${SERVICES} with status after ${allAssignedMs} ms\n`,
  );
  // SIGKILL releases nothing: the survivor may take the Lease only once it has seen it unrenewed
  // for the lease duration, counted from no earlier than the victim's last renewal; and it must
  // not take much longer than that (it retries every --lease-renew, 500 ms).
  const earliest = Math.max(0, kill.leaseRenewedAt + LEASE_DURATION_MS - killedAt);
  expect(failoverMs).toBeGreaterThanOrEqual(earliest - 50); // log timestamps have millisecond resolution
  expect(failoverMs).toBeLessThan(LEASE_DURATION_MS + 3000);
  // Most creates went through a live webhook and came back with their IP.
  expect(createdWithIP).toBeGreaterThan(SERVICES / 2);
  // A Service keeps the IP its create call returned (the allocation is visible, and final, from
  // the instant the Service exists).
  const moved = services.filter((x) => returned.has(x.metadata?.name ?? '') && returned.get(x.metadata?.name ?? '') !== ingressIPs(x)[0]);
  const movedText = moved.map((x) => `  ${x.metadata?.name ?? ''}: created with ${returned.get(x.metadata?.name ?? '') ?? ''}, now ${ingressIPs(x).join(',')}`);
  // Regression (found when this check was added): the leader's mirror could still hold an
  // address for an allocation in flight in that replica after the claim had gone to another
  // Service, and the loop then moved the Service that held the claim (10-14 in 500), freeing
  // the address for a third. The loop now rebuilds the mirror of what a Service shows from the
  // claims and never moves a Service for the mirror's sake.
  const problems = [
    ...(moved.length > 0 ? [`${moved.length} Services do not have the IP their create returned:\n${movedText.join('\n')}`] : []),
    ...(seen.size > 0 ? [`during the load, ${formatViolations([...seen.values()])}`] : []),
  ];
  if (problems.length > 0) throw new Error(problems.join('\n'));
}, 180_000); // a shared 2-core machine has been seen to take 80 s
