/**
 * The controller process end to end: `node dist/webhook/main.js` against the API server double
 * with the project's manifests installed, reached by the double over HTTPS with the certificate
 * the controller made itself and the caBundle it patched into the webhook configurations.
 *
 * - a Service comes back from its create call with its IP; status follows; kubectl shows it;
 * - flags: bad ones exit 2 in one line, an unreachable API server exits 1 in one line,
 *   SIGTERM stops cleanly and releases the lease;
 * - webhook down (failurePolicy Ignore): Services are created anyway and the loop assigns them;
 * - a bad configuration written past admission keeps the last good one and is reported.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type V1Service } from '@kubernetes/client-node';
import { eventually, kubectl } from '../apiserver/testing.js';
import { waitForInvariants } from './invariants.js';
import { ASSIGNED_IPS, ASSIGNED_POOL, E2ECluster, ingressIPs, lbService, MAIN, NAMESPACE, stopAll, waitForPool, WEBHOOK_SERVICE } from './support.js';

let cluster: E2ECluster;
let core: CoreV1Api;

beforeAll(async () => {
  cluster = await E2ECluster.start();
  core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'shop' } } });
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
}, 30_000);

// After every scenario, once the controllers have settled: the cluster-wide invariants of test/e2e/invariants.ts.
afterEach(async () => {
  if (cluster) await waitForInvariants(cluster.api, { timeoutMs: 10_000 });
}, 20_000);

/** Runs main.js to its exit, collecting output. */
function runMain(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; output: string; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`main.js ${args.join(' ')} did not exit:\n${output}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, lines: output.split('\n').filter((l) => l !== '') });
    });
  });
}

describe('flags and start-up errors', () => {
  test.each([
    [['--webhook-port=99999'], /--webhook-port must be a port number/],
    [['--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['--lease-duration=soon'], /--lease-duration must be a duration/],
    [['--lease-duration=1s', '--lease-renew=2s'], /--lease-renew must be shorter than --lease-duration/],
    [['--kubeconfig=/nonexistent/kubeconfig'], /cannot load the kubeconfig \/nonexistent\/kubeconfig/],
  ])('%j exits 2 with one line', async (args, message) => {
    const r = await runMain(args);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(message);
  });

  test('--help prints every flag and exits 0', async () => {
    const r = await runMain(['--help']);
    expect(r.code).toBe(0);
    for (const f of ['--kubeconfig', '--webhook-port', '--metrics-port', '--bind-address', '--lease-duration']) expect(r.output).toContain(f);
  });

  test.concurrent('an unreachable API server: one clear line, exit 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metallb-e2e-'));
    try {
      const path = join(dir, 'kubeconfig');
      // Port 1 on loopback: nothing listens there.
      await writeFile(
        path,
        'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
      );
      const r = await runMain([`--kubeconfig=${path}`, '--webhook-port=0', '--metrics-port=0']);
      expect(r.code).toBe(1);
      expect(r.lines).toHaveLength(1);
      expect(r.lines[0]).toMatch(/cannot reach the API server https:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('with one controller', () => {
  let svc: V1Service;
  let createdAt: number;

  beforeAll(async () => {
    const c = await cluster.startController();
    await cluster.leader();
    expect(c.webhookPort).toBeGreaterThan(0);
    // Through the validating webhook (failurePolicy Fail): the controller must answer it.
    await cluster
      .kubeConfig()
      .makeApiClient(CustomObjectsApi)
      .createNamespacedCustomObject({
        group: 'metallb.io',
        version: 'v1beta1',
        namespace: NAMESPACE,
        plural: 'ipaddresspools',
        body: { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'web' }, spec: { addresses: ['192.0.2.0/28'] } },
      });
    await waitForPool(core, 'shop', 'web');
  }, 30_000);

  test('the caBundle of both webhook configurations is the CA of the certificate the controller made and serves', async () => {
    const secret = await core.readNamespacedSecret({ name: 'metallb-webhook-cert', namespace: NAMESPACE });
    const ca = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
    expect(ca).toMatch(/BEGIN CERTIFICATE/);
    for (const [kind, name] of [
      ['MutatingWebhookConfiguration', 'metallb-mutating'],
      ['ValidatingWebhookConfiguration', 'metallb-validating'],
    ] as const) {
      const cfg = cluster.api.store.get('admissionregistration.k8s.io/v1', kind, name) as unknown as { webhooks: { clientConfig?: { caBundle?: string } }[] };
      expect(cfg.webhooks.length).toBeGreaterThan(0);
      for (const w of cfg.webhooks) expect(Buffer.from(w.clientConfig?.caBundle ?? '', 'base64').toString('utf8')).toBe(ca);
    }
    // The webhook port presents a certificate for the Service's DNS name that this CA verifies.
    const port = cluster.replicas.find((r) => r.alive)?.webhookPort ?? 0;
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/readyz', ca, servername: `${WEBHOOK_SERVICE}.${NAMESPACE}.svc`, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve(`${String(res.statusCode)} ${text}`));
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('200 ok');
  });

  test('the Service returned by create already carries its IP; status follows within a second', async () => {
    createdAt = Date.now();
    svc = await core.createNamespacedService({ namespace: 'shop', body: lbService('web', 'shop') });
    const ip = svc.metadata?.annotations?.[ASSIGNED_IPS];
    expect(ip).toMatch(/^192\.0\.2\.\d+$/);
    expect(svc.metadata?.annotations?.[ASSIGNED_POOL]).toBe('web');
    const withStatus = await eventually(
      async () => {
        const s = await core.readNamespacedServiceStatus({ name: 'web', namespace: 'shop' });
        return ingressIPs(s).length > 0 && s;
      },
      1000,
      'status.loadBalancer.ingress',
    );
    const latency = Date.now() - createdAt;
    process.stderr.write(`e2e: create -> status latency ${latency} ms (create call included)\n`);
    expect(ingressIPs(withStatus)).toEqual([ip]);
    expect(withStatus.status?.loadBalancer?.ingress?.[0]?.ipMode).toBe('VIP');
  });

  test('kubectl get svc shows the EXTERNAL-IP', async () => {
    const r = await kubectl(cluster.api, ['get', 'svc', 'web', '-n', 'shop']);
    expect(r.code).toBe(0);
    const [header, row] = r.stdout.trim().split('\n');
    expect(header).toMatch(/EXTERNAL-IP/);
    const column = (header ?? '').split(/\s{2,}/).indexOf('EXTERNAL-IP');
    expect(row?.split(/\s+/)[column]).toBe(svc.metadata?.annotations?.[ASSIGNED_IPS]);
  });

  test('a metallb.io object outside metallb-system is refused with the namespace to use (kubectl apply)', async () => {
    const pool = JSON.stringify({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'stray', namespace: 'shop' },
      spec: { addresses: ['198.51.100.0/28'] },
    });
    const r = await kubectl(cluster.api, ['apply', '-f', '-'], pool);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/denied the request: .*metallb-system/);
    expect(cluster.api.store.get('metallb.io/v1beta1', 'IPAddressPool', 'stray', 'shop')).toBeUndefined();
  });

  test('kubectl describe shows the IPAllocated event', async () => {
    await eventually(async () => {
      const r = await kubectl(cluster.api, ['describe', 'svc', 'web', '-n', 'shop']);
      return /IPAllocated/.test(r.stdout) && r;
    }, 5000);
  });

  test('the metrics port serves /metrics', async () => {
    const c = cluster.replicas.find((r) => r.alive);
    const res = await fetch(`http://127.0.0.1:${String(c?.metricsPort)}/metrics`);
    expect(res.status).toBe(200);
    // Pool usage is written by the leader, coalesced (at most every 500 ms).
    const text = await eventually(
      async () => {
        const t = await (await fetch(`http://127.0.0.1:${String(c?.metricsPort)}/metrics`)).text();
        return /^metallb_allocator_addresses_in_use_total\{pool="web"\} 1$/m.test(t) && t;
      },
      3000,
      'the pool usage in /metrics',
    );
    expect(text).toMatch(/metallb_admission_duration_seconds_count\{handler="mutateServices",allowed="true"\} [1-9]/);
    expect(text).toMatch(/^metallb_config_state 1$/m);
    // MetalLB's names: the configuration loaded and current; the pool's usage.
    expect(text).toMatch(/^metallb_k8s_client_config_loaded_bool 1$/m);
    expect(text).toMatch(/^metallb_k8s_client_config_stale_bool 0$/m);
    expect(text).toMatch(/^metallb_allocator_addresses_total\{pool="web"\} 16$/m);
  });

  test('a bad configuration landing past admission keeps the last good one and is reported', async () => {
    // Written straight into the store: no webhook saw it.
    await cluster.api.store.create({
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPAddressPool',
      metadata: { name: 'broken', namespace: NAMESPACE },
      spec: { addresses: ['203.0.113.0/33'] },
    });
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    const state = await eventually(
      async () => {
        const s = (await custom.getNamespacedCustomObject({
          group: 'metallb.io',
          version: 'v1beta1',
          namespace: NAMESPACE,
          plural: 'configurationstates',
          name: 'controller',
        })) as {
          status?: { result?: string; errors?: string[] };
        };
        return s.status?.result === 'Invalid' && s;
      },
      5000,
      'ConfigurationState Invalid',
    );
    expect(state.status?.errors?.join('\n')).toMatch(/broken.*203\.0\.113\.0\/33/);
    const events = await eventually(async () => {
      const list = await core.listNamespacedEvent({ namespace: NAMESPACE });
      const found = list.items.filter((e) => e.reason === 'ConfigInvalid');
      return found.length > 0 && found;
    }, 5000);
    expect(events[0]?.type).toBe('Warning');
    expect(events[0]?.message).toMatch(/last valid/);
    // Still allocating from the last good configuration.
    const s = await core.createNamespacedService({ namespace: 'shop', body: lbService('after-bad-config', 'shop') });
    expect(s.metadata?.annotations?.[ASSIGNED_IPS]).toMatch(/^192\.0\.2\.\d+$/);
    const metrics = await (await fetch(`http://127.0.0.1:${String(cluster.replicas.find((r) => r.alive)?.metricsPort)}/metrics`)).text();
    expect(metrics).toMatch(/^metallb_config_state 0$/m);
    // Running on the last good configuration: stale, still loaded.
    expect(metrics).toMatch(/^metallb_k8s_client_config_stale_bool 1$/m);
    expect(metrics).toMatch(/^metallb_k8s_client_config_loaded_bool 1$/m);
    // Repair: back to Valid.
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'broken', NAMESPACE);
    await eventually(async () => {
      const s2 = (await custom.getNamespacedCustomObject({ group: 'metallb.io', version: 'v1beta1', namespace: NAMESPACE, plural: 'configurationstates', name: 'controller' })) as {
        status?: { result?: string };
      };
      return s2.status?.result === 'Valid';
    }, 5000);
  });

  test('SIGTERM stops cleanly and releases the lease', async () => {
    const leader = await cluster.leader();
    leader.kill('SIGTERM');
    const { code } = await leader.exited;
    expect(code).toBe(0);
    expect(leader.output).toMatch(/ stopped\n/);
    const lease = cluster.api.store.get('coordination.k8s.io/v1', 'Lease', 'metallb-controller', NAMESPACE) as { spec?: { holderIdentity?: string } };
    expect(lease.spec?.holderIdentity ?? '').toBe('');
  });
});

describe('webhook down', () => {
  test('Services are created anyway and get their IP from the reconcile loop once a controller runs', async () => {
    await stopAll(cluster.replicas);
    expect(cluster.replicas.filter((r) => r.alive)).toHaveLength(0);
    const names = ['down-1', 'down-2', 'down-3'];
    for (const n of names) {
      const s = await core.createNamespacedService({ namespace: 'shop', body: lbService(n, 'shop') });
      expect(s.metadata?.annotations?.[ASSIGNED_IPS]).toBeUndefined();
    }
    const started = Date.now();
    await cluster.startController();
    const ips = await eventually(
      async () => {
        const list = await core.listNamespacedService({ namespace: 'shop' });
        const got = list.items.filter((s) => names.includes(s.metadata?.name ?? '')).map(ingressIPs);
        return got.length === names.length && got.every((i) => i.length === 1) && got.flat();
      },
      10_000,
      'IPs from the reconcile loop',
    );
    process.stderr.write(`e2e: webhook down -> controller start -> 3 Services assigned in ${Date.now() - started} ms\n`);
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) expect(ip).toMatch(/^192\.0\.2\.\d+$/);
  }, 30_000);
});

describe('graceful hand-over', () => {
  test('SIGTERM on the leader hands the lease to the other replica at once', async () => {
    const other = await cluster.startController();
    const leader = await cluster.leader();
    const follower = leader === other ? cluster.replicas.find((r) => r.alive && r !== leader) : other;
    if (!follower) throw new Error('no follower');
    expect(follower.leading).toBe(false);
    const t0 = Date.now();
    leader.kill('SIGTERM');
    // Its first "started leading" after the SIGTERM, by its own log timestamp.
    const ledAfter = () => [...follower.output.matchAll(/^(\S+) leader election: \S+ started leading$/gm)].map((m) => Date.parse(m[1] ?? '')).find((t) => t >= t0);
    await follower.waitUntil(() => ledAfter() !== undefined, 'the follower to lead', 5000);
    const handOverMs = (ledAfter() as number) - t0;
    process.stderr.write(`e2e: SIGTERM hand-over ${handOverMs} ms (lease duration 2 s)\n`);
    // Well under the 2 s lease duration: the lease was released, not left to expire.
    expect(handOverMs).toBeGreaterThanOrEqual(0);
    expect(handOverMs).toBeLessThan(1500);
    expect((await leader.exited).code).toBe(0);
    // The new leader serves: a Service gets its IP at create and in status.
    const s = await core.createNamespacedService({ namespace: 'shop', body: lbService('after-handover', 'shop') });
    expect(s.metadata?.annotations?.[ASSIGNED_IPS]).toMatch(/^192\.0\.2\.\d+$/);
    await eventually(async () => ingressIPs(await core.readNamespacedServiceStatus({ name: 'after-handover', namespace: 'shop' })).length === 1, 2000);
  }, 30_000);
});
