/**
 * Wall time of `kubectl metallb pools`, `services -A` and `explain svc` against `kubectl get svc -A`
 * on one cluster (the API server double, a controller that assigned every Service, an
 * EndpointSlice per Service on one of three nodes), at 100 and then 1,000 Services; each command
 * run through kubectl's plugin lookup, as a user runs it, several times, median reported.
 *
 *   npm run build && node dist/test/plugin/bench.js [runs]
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ClientKube, RESOURCES, type KubeObject } from '../../kube/client.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';
import { E2ECluster, lbService, NAMESPACE, percentile, repoRoot, waitForPool } from '../e2e/support.js';
import { NODES, nodeObject, POOLS, SLICES } from './cluster.js';

const RUNS = Number(process.argv[2] ?? 5);
const NS = 'bench';
const PATH = `${join(repoRoot, 'plugin/bin')}:${process.env.PATH ?? ''}`;

function time(kubeconfig: string, args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    execFile('kubectl', args, { env: { ...process.env, PATH, KUBECONFIG: kubeconfig, NODE_OPTIONS: '' }, maxBuffer: 64 << 20 }, (err) =>
      err ? reject(err) : resolve(Number(process.hrtime.bigint() - start) / 1e6),
    ),
  );
}

async function median(kubeconfig: string, args: string[]): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) samples.push(await time(kubeconfig, args));
  return percentile(
    samples.sort((a, b) => a - b),
    50,
  );
}

const cluster = await E2ECluster.start({ serviceCidr: '10.96.0.0/16' });
const kube = new ClientKube(kubeConfigFor(cluster.api));
try {
  await cluster.startController();
  await cluster.leader();
  for (const n of ['node-1', 'node-2', 'node-3']) await kube.create(NODES, nodeObject(n, true));
  await kube.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  // Not announced anywhere: no traffic leaves; a private /20 holds 1,000 Services.
  await kube.create(POOLS, { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'bench', namespace: NAMESPACE }, spec: { addresses: ['10.200.0.0/20'] } });
  await kube.create(
    { group: 'metallb.io', version: 'v1beta1', plural: 'l2advertisements', namespaced: true },
    {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'L2Advertisement',
      metadata: { name: 'bench', namespace: NAMESPACE },
      spec: {},
    },
  );
  const { CoreV1Api } = await import('@kubernetes/client-node');
  await waitForPool(cluster.kubeConfig().makeApiClient(CoreV1Api), NS, 'bench', 10_000);

  let created = 0;
  const rows: string[] = [];
  for (const target of [100, 1000]) {
    const names: string[] = [];
    for (let i = created; i < target; i++) names.push(`svc-${String(i).padStart(4, '0')}`);
    // 20 in flight, through the webhook as kubectl would create them.
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(
        names.slice(i, i + 20).map(async (name, k) => {
          await kube.create(RESOURCES.services, lbService(name, NS) as KubeObject);
          await kube.create(SLICES, {
            apiVersion: 'discovery.k8s.io/v1',
            kind: 'EndpointSlice',
            metadata: { name: `${name}-x`, namespace: NS, labels: { 'kubernetes.io/service-name': name } },
            addressType: 'IPv4',
            endpoints: [{ addresses: ['10.0.0.1'], nodeName: `node-${((i + k) % 3) + 1}`, conditions: { ready: true } }],
          });
        }),
      );
    }
    created = target;
    await eventually(
      async () =>
        (await kube.list(RESOURCES.services, { namespace: NS })).items.every(
          (s) => ((s.status as { loadBalancer?: { ingress?: unknown[] } })?.loadBalancer?.ingress ?? []).length > 0,
        ),
      120_000,
      `${target} Services assigned`,
    );
    const kc = cluster.api.kubeconfigPath;
    const get = await median(kc, ['get', 'svc', '-A']);
    const pools = await median(kc, ['metallb', 'pools']);
    const services = await median(kc, ['metallb', 'services', '-A']);
    const servicesJson = await median(kc, ['metallb', 'services', '-A', '-o', 'json']);
    const explain = await median(kc, ['metallb', 'explain', 'svc', '-n', NS, 'svc-0042']);
    const help = await median(kc, ['metallb', '--help']);
    const ratio = (ms: number) => `${(ms / get).toFixed(1)}x`;
    rows.push(
      `${target} Services: kubectl get svc -A ${get.toFixed(0)} ms; metallb pools ${pools.toFixed(0)} ms (${ratio(pools)}), services -A ${services.toFixed(0)} ms (${ratio(services)}), ` +
        `services -A -o json ${servicesJson.toFixed(0)} ms (${ratio(servicesJson)}), explain svc ${explain.toFixed(0)} ms (${ratio(explain)}); metallb --help (start-up alone) ${help.toFixed(0)} ms`,
    );
    process.stdout.write(`${rows[rows.length - 1]}\n`);
  }
} finally {
  kube.close();
  await cluster.stop();
}
