/**
 * Wall time of `kubectl metallb pools`, `services -A` and `explain svc` against `kubectl get svc -A`
 * on one cluster (the API server double, a controller that assigned every Service, an
 * EndpointSlice per Service on one of three nodes), at 100 and then 1,000 Services; each command
 * run through kubectl's plugin lookup, as a user runs it, in turns with the others, median reported.
 *
 *   npm run build && node dist/test/plugin/bench.js [runs]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientKube, RESOURCES, type KubeObject } from '../../kube/client.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';
import { E2ECluster, lbService, NAMESPACE, percentile, repoRoot, waitForPool } from '../e2e/support.js';
import { NODES, nodeObject, POOLS, SLICES } from './cluster.js';

const RUNS = Number(process.argv[2] ?? 5);
const NS = 'bench';
const PATH = `${join(repoRoot, 'plugin/bin')}:${process.env.PATH ?? ''}`;

/** The plugin's V8 code cache (plugin/start.ts), kept apart from the user's; its first run writes it. */
const CACHE = mkdtempSync(join(tmpdir(), 'metallb-ts-bench-cache-'));

function time(kubeconfig: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    execFile('kubectl', args, { env: { ...process.env, PATH, KUBECONFIG: kubeconfig, NODE_OPTIONS: '', METALLB_PLUGIN_CACHE_DIR: CACHE, ...env }, maxBuffer: 64 << 20 }, (err) =>
      err ? reject(err) : resolve(Number(process.hrtime.bigint() - start) / 1e6),
    ),
  );
}

/**
 * The median of each command line, run in turns (one run of each, RUNS times) so that a busy
 * spell of this shared machine falls on all of them alike, after one uncounted run of each (it
 * writes the code cache a user's first run writes).
 */
async function medians(kubeconfig: string, commands: readonly { args: string[]; env?: Record<string, string> }[]): Promise<number[]> {
  for (const c of commands) await time(kubeconfig, c.args, c.env);
  const samples: number[][] = commands.map(() => []);
  for (let i = 0; i < RUNS; i++) for (const [k, c] of commands.entries()) samples[k]!.push(await time(kubeconfig, c.args, c.env));
  return samples.map((s) =>
    percentile(
      s.sort((a, b) => a - b),
      50,
    ),
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
    const [get, pools, services, servicesJson, servicesYaml, explain, help, uncached] = (await medians(kc, [
      { args: ['get', 'svc', '-A'] },
      { args: ['metallb', 'pools'] },
      { args: ['metallb', 'services', '-A'] },
      { args: ['metallb', 'services', '-A', '-o', 'json'] },
      { args: ['metallb', 'services', '-A', '-o', 'yaml'] },
      { args: ['metallb', 'explain', 'svc', '-n', NS, 'svc-0042'] },
      { args: ['metallb', '--help'] },
      // Without the code cache (METALLB_PLUGIN_CACHE_DIR empty): a user's very first run, and Node 20's own speed.
      { args: ['metallb', 'services', '-A'], env: { METALLB_PLUGIN_CACHE_DIR: '' } },
    ])) as [number, number, number, number, number, number, number, number];
    const ratio = (ms: number) => `${(ms / get).toFixed(1)}x`;
    rows.push(
      `${target} Services: kubectl get svc -A ${get.toFixed(0)} ms; metallb pools ${pools.toFixed(0)} ms (${ratio(pools)}), services -A ${services.toFixed(0)} ms (${ratio(services)}), ` +
        `services -A -o json ${servicesJson.toFixed(0)} ms (${ratio(servicesJson)}), -o yaml ${servicesYaml.toFixed(0)} ms (${ratio(servicesYaml)}), explain svc ${explain.toFixed(0)} ms (${ratio(explain)}); metallb --help (start-up alone) ${help.toFixed(0)} ms; ` +
        `services -A without the code cache ${uncached.toFixed(0)} ms (${ratio(uncached)})`,
    );
    process.stdout.write(`${rows[rows.length - 1]}\n`);
  }
} finally {
  kube.close();
  await cluster.stop();
  rmSync(CACHE, { recursive: true, force: true });
}
if (process.env.NODE_EXTRA_CA_CERTS) {
  // Node 20 reads that file at every start; the plugin's launcher keeps it from doing so (plugin/bin/kubectl-metallb).
  const nodeStart = async (env: NodeJS.ProcessEnv): Promise<number> => {
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const start = process.hrtime.bigint();
      await new Promise((resolve, reject) => execFile(process.execPath, ['-e', '0'], { env }, (err) => (err ? reject(err) : resolve(undefined))));
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    return percentile(
      samples.sort((a, b) => a - b),
      50,
    );
  };
  const { NODE_EXTRA_CA_CERTS: file, ...without } = process.env;
  const withIt = await nodeStart(process.env);
  const withoutIt = await nodeStart(without);
  process.stdout.write(
    `note: NODE_EXTRA_CA_CERTS=${file} is set here: node -e 0 takes ${withIt.toFixed(0)} ms with it, ${withoutIt.toFixed(0)} ms without; the plugin's launcher moves it aside, to the connections that would use it\n`,
  );
}
