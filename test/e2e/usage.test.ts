/**
 * Every case of MetalLB's usage documentation (shared/seeds/001), end to end: the real kubectl
 * against the API server double, the double calling a real controller process over HTTPS. The
 * configurations are the documentation's own ConfigMaps, applied with kubectl through the
 * validating webhook; the ranges are the documentation's (no traffic is sent).
 *
 * Order follows the page: the basic configuration and a simple balancer; requesting specific
 * IPs (honoured, outside the pools, already in use); the pool annotation; auto-assign: false;
 * the production/sandbox example. Between configurations the Services of the previous one are
 * deleted (the webhook refuses a configuration that would strand IPs in use, which is checked
 * too).
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { eventually, kubectl } from '../apiserver/testing.js';
import { BASIC_CONFIGMAP, CHEAP_EXPENSIVE, PRODUCTION_SANDBOX } from '../fixtures/metallb-docs.js';
import { waitForInvariants } from './invariants.js';
import { ASSIGNED_IPS, ASSIGNED_POOL, E2ECluster, ingressIPs, NAMESPACE } from './support.js';

let cluster: E2ECluster;
let core: CoreV1Api;

beforeAll(async () => {
  cluster = await E2ECluster.start();
  core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'demo' } } });
  await cluster.startController();
  await cluster.leader();
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
}, 30_000);

// After every scenario, once the controllers have settled: the cluster-wide invariants of test/e2e/invariants.ts.
afterEach(async () => {
  if (cluster) await waitForInvariants(cluster.api, { timeoutMs: 10_000 });
}, 20_000);

function configMap(config: string): string {
  const indented = config
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: metallb-system\n  name: config\ndata:\n  config: |\n${indented}\n`;
}

/** A Service as the documentation writes it, with optional annotations and loadBalancerIP. */
function service(name: string, options: { annotations?: Record<string, string>; loadBalancerIP?: string } = {}): string {
  const ann = Object.entries(options.annotations ?? {})
    .map(([k, v]) => `    ${k}: ${v}`)
    .join('\n');
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    '  namespace: demo',
    ...(ann ? ['  annotations:', ann] : []),
    'spec:',
    '  ports:',
    '  - port: 80',
    '    targetPort: 80',
    '  selector:',
    '    app: nginx',
    '  type: LoadBalancer',
    ...(options.loadBalancerIP ? [`  loadBalancerIP: ${options.loadBalancerIP}`] : []),
    '',
  ].join('\n');
}

async function apply(yaml: string) {
  const r = await kubectl(cluster.api, ['apply', '-f', '-'], yaml);
  if (process.env.E2E_VERBOSE) process.stderr.write(`kubectl apply: ${r.code} ${r.stdout}${r.stderr}\n`);
  return r;
}

/** The Service's IP as kubectl shows it (EXTERNAL-IP), once status has it. */
async function externalIP(name: string): Promise<string> {
  return eventually(
    async () => {
      const r = await kubectl(cluster.api, ['get', 'svc', name, '-n', 'demo', '-o', 'jsonpath={.status.loadBalancer.ingress[*].ip}']);
      return r.code === 0 && r.stdout.trim() !== '' && r.stdout.trim();
    },
    3000,
    `EXTERNAL-IP of ${name}`,
  );
}

async function annotations(name: string): Promise<Record<string, string>> {
  return (await core.readNamespacedService({ name, namespace: 'demo' })).metadata?.annotations ?? {};
}

/** Deletes every Service in demo and waits until their claims are gone (the IPs are free). */
async function deleteAllServices(): Promise<void> {
  const r = await kubectl(cluster.api, ['delete', 'svc', '--all', '-n', 'demo']);
  expect(r.code).toBe(0);
  await eventually(() => cluster.api.store.list('metallb.io/v1beta1', 'IPClaim').length === 0, 10_000, 'the claims to be released');
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/');
  const n = (a: string) => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(base ?? '') / size);
}

describe('MetalLB usage documentation', () => {
  test('the basic configuration, applied with kubectl, and a simple balancer with its events', async () => {
    const r = await apply(BASIC_CONFIGMAP);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await eventually(
      async () => (await kubectl(cluster.api, ['get', 'configurationstate', 'controller', '-n', NAMESPACE, '-o', 'jsonpath={.status.result}'])).stdout === 'Valid',
      5000,
    );
    // The configuration reaches the webhook through a watch; give it the moment it takes.
    await eventually(async () => {
      const dry = await kubectl(cluster.api, ['apply', '--dry-run=server', '-o', 'jsonpath={.metadata.annotations}', '-f', '-'], service('probe'));
      return dry.stdout.includes('192.168.10.');
    }, 5000);

    const created = await kubectl(cluster.api, ['apply', '-o', 'json', '-f', '-'], service('nginx'));
    expect(created.code).toBe(0);
    const ip = (JSON.parse(created.stdout) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[ASSIGNED_IPS] ?? '';
    expect(inCidr(ip, '192.168.10.0/24')).toBe(true);
    expect(await externalIP('nginx')).toBe(ip);
    const get = await kubectl(cluster.api, ['get', 'svc', 'nginx', '-n', 'demo']);
    expect(get.stdout).toMatch(new RegExp(`nginx\\s+LoadBalancer\\s+\\S+\\s+${ip.replaceAll('.', '\\.')}\\s+80:\\d+/TCP`));
    const described = await eventually(async () => {
      const d = await kubectl(cluster.api, ['describe', 'service', 'nginx', '-n', 'demo']);
      return /IPAllocated/.test(d.stdout) && d.stdout;
    }, 5000);
    expect(described).toContain(`Assigned IP ["${ip}"] from pool "default"`);
  });

  describe('requesting specific IPs', () => {
    test('spec.loadBalancerIP is honoured', async () => {
      const r = await apply(service('specific', { loadBalancerIP: '192.168.10.42' }));
      expect(r.code).toBe(0);
      expect((await annotations('specific'))[ASSIGNED_IPS]).toBe('192.168.10.42');
      expect(await externalIP('specific')).toBe('192.168.10.42');
    });

    test('an address MetalLB does not own is refused at create, naming the address', async () => {
      const r = await apply(service('foreign', { loadBalancerIP: '203.0.113.9' }));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/admission webhook "validate\.services\.metallb\.io" denied the request: .*203\.0\.113\.9/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      const get = await kubectl(cluster.api, ['get', 'svc', 'foreign', '-n', 'demo']);
      expect(get.stderr).toMatch(/NotFound/);
    });

    test('an address already in use is refused at create, naming the Service that holds it', async () => {
      const r = await apply(service('thief', { loadBalancerIP: '192.168.10.42' }));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/192\.168\.10\.42 is already in use by demo\/specific/);
      expect(await externalIP('specific')).toBe('192.168.10.42');
    });
  });

  test('a configuration that would strand IPs in use is refused, naming them', async () => {
    const r = await apply(configMap(CHEAP_EXPENSIVE));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/admission webhook "validate\.configmap\.metallb\.io" denied the request: .*demo\/(nginx|specific)/);
  });

  describe('control automatic address pool allocation (auto-assign: false)', () => {
    beforeAll(async () => {
      await deleteAllServices();
      const r = await apply(configMap(CHEAP_EXPENSIVE));
      expect(r.stderr).toBe('');
      await eventually(async () => {
        const dry = await kubectl(cluster.api, ['apply', '--dry-run=server', '-o', 'jsonpath={.metadata.annotations}', '-f', '-'], service('probe'));
        return dry.stdout.includes('"cheap"');
      }, 5000);
    }, 30_000);

    test('Services that do not ask get cheap addresses only', async () => {
      for (let i = 0; i < 6; i++) {
        const r = await apply(service(`cheap-${i}`));
        expect(r.code).toBe(0);
      }
      for (let i = 0; i < 6; i++) {
        const a = await annotations(`cheap-${i}`);
        expect(a[ASSIGNED_POOL]).toBe('cheap');
        expect(inCidr(a[ASSIGNED_IPS] ?? '', '192.168.144.0/20')).toBe(true);
      }
    });

    test('the pool annotation picks the expensive pool; kubectl prints the deprecation warning', async () => {
      const r = await apply(service('wants-expensive', { annotations: { 'metallb.universe.tf/address-pool': 'expensive' } }));
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^Warning: .*metallb\.universe\.tf\/address-pool.*metallb\.io\/address-pool/m);
      const a = await annotations('wants-expensive');
      expect(a[ASSIGNED_POOL]).toBe('expensive');
      expect(inCidr(a[ASSIGNED_IPS] ?? '', '42.176.25.64/30')).toBe(true);
      expect(await externalIP('wants-expensive')).toBe(a[ASSIGNED_IPS]);
      const events = await eventually(async () => {
        const d = await kubectl(cluster.api, ['describe', 'service', 'wants-expensive', '-n', 'demo']);
        return /DeprecatedAnnotation/.test(d.stdout) && d.stdout;
      }, 5000);
      expect(events).toMatch(/metallb\.universe\.tf\/address-pool/);
    });

    test('an expensive address can still be requested with spec.loadBalancerIP', async () => {
      const taken = (await annotations('wants-expensive'))[ASSIGNED_IPS];
      const wanted = ['42.176.25.64', '42.176.25.65', '42.176.25.66', '42.176.25.67'].find((ip) => ip !== taken) ?? '';
      const r = await apply(service('exact-expensive', { loadBalancerIP: wanted }));
      expect(r.code).toBe(0);
      expect(await externalIP('exact-expensive')).toBe(wanted);
    });
  });

  describe('the production/sandbox example', () => {
    beforeAll(async () => {
      await deleteAllServices();
      const r = await apply(configMap(PRODUCTION_SANDBOX));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      await eventually(async () => {
        const dry = await kubectl(
          cluster.api,
          ['apply', '--dry-run=server', '-o', 'jsonpath={.metadata.annotations}', '-f', '-'],
          service('probe', { annotations: { 'metallb.universe.tf/address-pool': 'sandbox' } }),
        );
        return dry.stdout.includes('"sandbox"');
      }, 5000);
    }, 30_000);

    test('sandbox Services, tagged with the pool annotation, come up within 192.168.144.0/20', async () => {
      const ips: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await apply(service(`sandbox-${i}`, { annotations: { 'metallb.universe.tf/address-pool': 'sandbox' } }));
        expect(r.code).toBe(0);
        const a = await annotations(`sandbox-${i}`);
        expect(a[ASSIGNED_POOL]).toBe('sandbox');
        ips.push(a[ASSIGNED_IPS] ?? '');
      }
      for (const ip of ips) expect(inCidr(ip, '192.168.144.0/20')).toBe(true);
      expect(new Set(ips).size).toBe(5);
    });

    test('production Services get exactly the address set in spec.loadBalancerIP', async () => {
      for (const [name, ip] of [
        ['shop-frontend', '42.176.25.65'],
        ['shop-api', '42.176.25.66'],
      ] as const) {
        const r = await apply(service(name, { loadBalancerIP: ip }));
        expect(r.code).toBe(0);
        expect((await annotations(name))[ASSIGNED_POOL]).toBe('production');
        expect(await externalIP(name)).toBe(ip);
      }
    });

    test('“MetalLB will check that it makes sense given its configuration”: a wrong production address is refused', async () => {
      const r = await apply(service('shop-typo', { loadBalancerIP: '42.176.25.68' }));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/42\.176\.25\.68/);
      const taken = await apply(service('shop-dup', { loadBalancerIP: '42.176.25.65' }));
      expect(taken.code).toBe(1);
      expect(taken.stderr).toMatch(/42\.176\.25\.65 is already in use by demo\/shop-frontend/);
    });

    test('the controller reports the configuration valid, and every Service has its IP in status', async () => {
      const state = await kubectl(cluster.api, ['get', 'configurationstate', 'controller', '-n', NAMESPACE, '-o', 'jsonpath={.status.result}']);
      expect(state.stdout).toBe('Valid');
      const list = await core.listNamespacedService({ namespace: 'demo' });
      expect(list.items).toHaveLength(7);
      await eventually(async () => (await core.listNamespacedService({ namespace: 'demo' })).items.every((s) => ingressIPs(s).length === 1), 3000);
    });
  });
});
