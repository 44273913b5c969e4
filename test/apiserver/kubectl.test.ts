/**
 * The real kubectl binary against the double, with nothing but --kubeconfig: create, apply,
 * get (tables, -o yaml/json/jsonpath, -w), describe (with events), patch, delete, on
 * Services, ConfigMaps and custom resources whose CRDs are installed with kubectl apply
 * (one of them the project's IPClaim CRD, for its printer columns).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { startApiServer, type ApiServer } from './index.js';
import { eventually, kubectl, spawnKubectl, type KubectlResult } from './testing.js';

let api: ApiServer;

beforeAll(async () => {
  api = await startApiServer();
});

afterAll(async () => {
  await api.stop();
});

/** Runs kubectl and fails with its stderr when it exits non-zero. */
async function ok(args: string[], input?: string): Promise<string> {
  const r: KubectlResult = await kubectl(api, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Splits a kubectl table into rows of cells. */
function table(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s{2,}/));
}

const service = (port: number, extra = ''): string => `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
  labels: {app: web}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - name: http
    port: ${port}
    targetPort: 8080
${extra}`;

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ipaddresspools.metallb.io
spec:
  group: metallb.io
  scope: Namespaced
  names: {plural: ipaddresspools, singular: ipaddresspool, kind: IPAddressPool, listKind: IPAddressPoolList}
  versions:
  - name: v1beta1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Auto Assign, type: boolean, jsonPath: .spec.autoAssign}
    - {name: Addresses, type: string, jsonPath: .spec.addresses}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [addresses]
            properties:
              addresses: {type: array, items: {type: string}}
              autoAssign: {type: boolean, default: true}
          status: {type: object}
    subresources: {status: {}}
`;

const pool = (addresses: string[]): string => `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: default
  namespace: demo
spec:
  addresses: [${addresses.join(', ')}]
`;

describe('kubectl', () => {
  beforeAll(async () => {
    await ok(['create', 'namespace', 'demo']);
  });

  it('creates, applies, gets and describes a Service', async () => {
    expect(await ok(['apply', '--validate=false', '-f', '-'], service(80))).toBe('service/web created\n');
    expect(await ok(['apply', '--validate=false', '-f', '-'], service(80))).toBe('service/web unchanged\n');
    expect(await ok(['apply', '--validate=false', '-f', '-'], service(81))).toBe('service/web configured\n');
    const rows = table(await ok(['get', 'svc', '-n', 'demo']));
    expect(rows[0]).toEqual(['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE']);
    expect(rows[1]?.slice(0, 5)).toEqual(['web', 'LoadBalancer', expect.stringMatching(/^198\.51\.100\.\d+$/), '<pending>', expect.stringMatching(/^81:3\d{4}\/TCP$/)]);
    const wide = table(await ok(['get', 'svc', 'web', '-n', 'demo', '-o', 'wide']));
    expect(wide[0]?.at(-1)).toBe('SELECTOR');
    expect(wide[1]?.at(-1)).toBe('app=web');
    const yaml = parseYaml(await ok(['get', 'svc', 'web', '-n', 'demo', '-o', 'yaml'])) as {
      metadata: { annotations: Record<string, string> };
      spec: { ports: { port: number }[] };
    };
    expect(yaml.spec.ports.map((p) => p.port)).toEqual([81]);
    expect(JSON.parse(yaml.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] ?? '{}')).toMatchObject({ spec: { ports: [{ port: 81 }] } });
    expect(await ok(['get', 'svc', 'web', '-n', 'demo', '-o', 'jsonpath={.spec.ipFamilies[0]}'])).toBe('IPv4');
    // describe lists the Service's events, found with an involvedObject field selector.
    const uid = await ok(['get', 'svc', 'web', '-n', 'demo', '-o', 'jsonpath={.metadata.uid}']);
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'web.allocated', namespace: 'demo' },
      involvedObject: { apiVersion: 'v1', kind: 'Service', name: 'web', namespace: 'demo', uid },
      reason: 'IPAllocated',
      message: 'Assigned IP ["192.0.2.10"]',
      type: 'Normal',
      source: { component: 'metallb-controller' },
      firstTimestamp: new Date().toISOString(),
      lastTimestamp: new Date().toISOString(),
      count: 1,
    };
    await ok(['create', '--validate=false', '-f', '-'], JSON.stringify(event));
    const described = await ok(['describe', 'svc', 'web', '-n', 'demo']);
    expect(described).toMatch(/^Name:\s+web$/m);
    expect(described).toMatch(/^Type:\s+LoadBalancer$/m);
    expect(described).toMatch(/^Port:\s+http\s+81\/TCP$/m);
    expect(described).toMatch(/Normal\s+IPAllocated\s+\S+\s+metallb-controller\s+Assigned IP \["192\.0\.2\.10"\]/);
  });

  it('patches with every patch type and reports validation errors', async () => {
    expect(await ok(['patch', 'svc', 'web', '-n', 'demo', '-p', '{"metadata":{"labels":{"tier":"edge"}}}'])).toBe('service/web patched\n');
    expect(await ok(['patch', 'svc', 'web', '-n', 'demo', '--type=merge', '-p', '{"spec":{"loadBalancerIP":"192.0.2.10"}}'])).toBe('service/web patched\n');
    expect(await ok(['patch', 'svc', 'web', '-n', 'demo', '--type=json', '-p', '[{"op":"remove","path":"/spec/loadBalancerIP"}]'])).toBe('service/web patched\n');
    expect(await ok(['patch', 'svc', 'web', '-n', 'demo', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}'])).toBe(
      'service/web patched\n',
    );
    expect(table(await ok(['get', 'svc', 'web', '-n', 'demo']))[1]?.[3]).toBe('192.0.2.10');
    const bad = await kubectl(api, ['patch', 'svc', 'web', '-n', 'demo', '--type=merge', '-p', '{"spec":{"loadBalancerIP":"nope"}}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('The Service "web" is invalid: spec.loadBalancerIP: Invalid value: "nope": must be a valid IP address');
    expect(await ok(['get', 'svc', 'web', '-n', 'demo', '-o', 'jsonpath={.metadata.labels.tier}'])).toBe('edge');
  });

  it('streams changes to kubectl get -w', async () => {
    const watcher = spawnKubectl(api, ['get', 'svc', '-n', 'demo', '-w']);
    try {
      await eventually(() => watcher.output().includes('web'), 10_000, 'the initial listing');
      await eventually(() => api.openWatches > 0, 10_000, 'kubectl to start watching');
      await ok(['patch', 'svc', 'web', '-n', 'demo', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.11"}]}}}']);
      await eventually(() => watcher.output().includes('192.0.2.11'), 10_000, 'the change to show up');
      const lines = watcher.output().trim().split('\n');
      expect(lines[0]).toMatch(/^NAME\s+TYPE/);
      expect(lines.at(-1)).toMatch(/^web\s+LoadBalancer\s+\S+\s+192\.0\.2\.11\s+81:\d+\/TCP/);
    } finally {
      watcher.child.kill();
    }
  });

  it('creates, gets, patches and deletes ConfigMaps', async () => {
    expect(await ok(['create', 'configmap', 'config', '-n', 'demo', '--from-literal=config=peers: []'])).toBe('configmap/config created\n');
    expect(table(await ok(['get', 'cm', '-n', 'demo']))).toEqual([
      ['NAME', 'DATA', 'AGE'],
      ['config', '1', expect.any(String)],
    ]);
    await ok(['patch', 'configmap', 'config', '-n', 'demo', '-p', '{"data":{"extra":"x"}}']);
    expect(await ok(['get', 'cm', 'config', '-n', 'demo', '-o', 'jsonpath={.data.extra}'])).toBe('x');
    const applied = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: demo}\ndata: {a: "1"}\n`;
    expect(await ok(['apply', '--validate=false', '-f', '-'], applied)).toBe('configmap/applied created\n');
    expect(await ok(['apply', '--validate=false', '-f', '-'], applied.replace('a: "1"', 'b: "2"'))).toBe('configmap/applied configured\n');
    // apply removes what the last applied configuration had and the new one does not.
    expect(JSON.parse(await ok(['get', 'cm', 'applied', '-n', 'demo', '-o', 'jsonpath={.data}']))).toEqual({ b: '2' });
    expect(await ok(['delete', 'cm', 'config', 'applied', '-n', 'demo'])).toBe('configmap "config" deleted\nconfigmap "applied" deleted\n');
    const missing = await kubectl(api, ['get', 'cm', 'config', '-n', 'demo']);
    expect(missing.stderr).toContain('Error from server (NotFound): configmaps "config" not found');
  });

  it("creates objects with kubectl's generators, which send protobuf", async () => {
    expect(await ok(['create', 'service', 'loadbalancer', 'gen', '--tcp=53:5353', '-n', 'demo'])).toBe('service/gen created\n');
    expect(await ok(['get', 'svc', 'gen', '-n', 'demo', '-o', 'jsonpath={.spec.ports[0].targetPort} {.spec.selector.app} {.spec.type}'])).toBe('5353 gen LoadBalancer');
    expect(await ok(['create', 'secret', 'generic', 'memberlist', '-n', 'demo', '--from-literal=secretkey=s3cr3t'])).toBe('secret/memberlist created\n');
    expect(Buffer.from(await ok(['get', 'secret', 'memberlist', '-n', 'demo', '-o', 'jsonpath={.data.secretkey}']), 'base64').toString()).toBe('s3cr3t');
    expect(await ok(['create', 'serviceaccount', 'controller', '-n', 'demo'])).toBe('serviceaccount/controller created\n');
    expect(await ok(['delete', 'svc', 'gen', '-n', 'demo'])).toBe('service "gen" deleted\n');
  });

  it('installs a CRD and manages its custom resources', async () => {
    expect(await ok(['apply', '--validate=false', '-f', '-'], crd)).toBe('customresourcedefinition.apiextensions.k8s.io/ipaddresspools.metallb.io created\n');
    await ok(['wait', '--for=condition=Established', 'crd/ipaddresspools.metallb.io', '--timeout=10s']);
    expect(await ok(['apply', '--validate=false', '-f', '-'], pool(['192.0.2.0/24']))).toBe('ipaddresspool.metallb.io/default created\n');
    expect(table(await ok(['get', 'ipaddresspools', '-n', 'demo']))).toEqual([
      ['NAME', 'AUTO ASSIGN', 'ADDRESSES'],
      ['default', 'true', '["192.0.2.0/24"]'],
    ]);
    // Custom resources are applied with a JSON merge patch.
    expect(await ok(['apply', '--validate=false', '-f', '-'], pool(['192.0.2.0/24', '2001:db8::/120']))).toBe('ipaddresspool.metallb.io/default configured\n');
    expect(await ok(['get', 'ipaddresspool', 'default', '-n', 'demo', '-o', 'jsonpath={.spec.addresses[1]}'])).toBe('2001:db8::/120');
    await ok(['patch', 'ipaddresspool', 'default', '-n', 'demo', '--type=merge', '-p', '{"spec":{"autoAssign":false}}']);
    const described = await ok(['describe', 'ipaddresspool', 'default', '-n', 'demo']);
    expect(described).toMatch(/^Name:\s+default$/m);
    expect(described).toMatch(/Auto Assign:\s+false/);
    const smp = await kubectl(api, ['patch', 'ipaddresspool', 'default', '-n', 'demo', '--type=strategic', '-p', '{"spec":{"autoAssign":true}}']);
    expect(smp.code).toBe(1);
    expect(smp.stderr).toContain('application/strategic-merge-patch+json is not supported by metallb.io/v1beta1, Kind=IPAddressPool');
    expect(await ok(['delete', 'ipaddresspool', 'default', '-n', 'demo'])).toBe('ipaddresspool.metallb.io "default" deleted\n');
  });

  it("prints the IPClaim CRD's columns: HOLDERS lists every holder of a shared IP (a [*] column would show the first only)", async () => {
    const manifest = readFileSync(new URL('../../manifests/crds/metallb.io_ipclaims.yaml', import.meta.url), 'utf8');
    expect(await ok(['apply', '-f', '-'], manifest)).toBe('customresourcedefinition.apiextensions.k8s.io/ipclaims.metallb.io created\n');
    await ok(['wait', '--for=condition=Established', 'crd/ipclaims.metallb.io', '--timeout=10s']);
    const claim = {
      apiVersion: 'metallb.io/v1beta1',
      kind: 'IPClaim',
      metadata: { name: '192.0.2.7' },
      spec: {
        ip: '192.0.2.7',
        pool: 'main',
        family: 'IPv4',
        sharingKey: 'dns',
        holders: [
          { namespace: 'demo', name: 'dns-tcp', uid: 'u-1' },
          { namespace: 'demo', name: 'dns-udp', uid: 'u-2' },
        ],
        // What the controller writes with every change of holders, for the HOLDERS column.
        holderNames: 'demo/dns-tcp,demo/dns-udp',
      },
    };
    expect(await ok(['create', '-f', '-'], JSON.stringify(claim))).toBe('ipclaim.metallb.io/192.0.2.7 created\n');
    expect(table(await ok(['get', 'ipclaims']))).toEqual([
      ['NAME', 'IP', 'POOL', 'HOLDERS', 'AGE'],
      ['192.0.2.7', '192.0.2.7', 'main', 'demo/dns-tcp,demo/dns-udp', expect.any(String)],
    ]);
    expect(table(await ok(['get', 'ipc', '-o', 'wide']))).toEqual([
      ['NAME', 'IP', 'POOL', 'HOLDERS', 'FAMILY', 'SHARING KEY', 'AGE'],
      ['192.0.2.7', '192.0.2.7', 'main', 'demo/dns-tcp,demo/dns-udp', 'IPv4', 'dns', expect.any(String)],
    ]);
    // Every holder: kubectl's own (client-side) JSONPath joins the values of [*] with ",".
    expect(table(await ok(['get', 'ipc', '-o', 'custom-columns=IP:.spec.ip,HOLDERS:.spec.holders[*].name']))).toEqual([
      ['IP', 'HOLDERS'],
      ['192.0.2.7', 'dns-tcp,dns-udp'],
    ]);
    expect(await ok(['delete', 'crd', 'ipclaims.metallb.io'])).toBe('customresourcedefinition.apiextensions.k8s.io "ipclaims.metallb.io" deleted\n');
  });

  it('works without --validate=false: validation happens on the server (fieldValidation=Strict)', async () => {
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: strict, namespace: demo}\ndata: {a: "1"}\n';
    expect(await ok(['apply', '-f', '-'], cm)).toBe('configmap/strict created\n');
    expect(await ok(['apply', '-f', '-'], cm.replace('"1"', '"2"'))).toBe('configmap/strict configured\n');
    const typo = await kubectl(
      api,
      ['create', '-f', '-'],
      pool(['192.0.2.0/24']).replace('metadata:\n  name: default', 'metadata:\n  name: typo').replace('spec:\n', 'spec:\n  autoAsign: false\n'),
    );
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('IPAddressPool in version "v1beta1" cannot be handled as a IPAddressPool: strict decoding error: unknown field "spec.autoAsign"');
  });

  it('deletes a Service and waits until it is gone', async () => {
    expect(await ok(['delete', 'svc', 'web', '-n', 'demo'])).toBe('service "web" deleted\n');
    expect((await kubectl(api, ['get', 'svc', 'web', '-n', 'demo'])).code).toBe(1);
  });

  it('lists API resources from discovery', async () => {
    const rows = table(await ok(['api-resources', '--api-group=metallb.io']));
    expect(rows[1]).toEqual(['ipaddresspools', 'metallb.io/v1beta1', 'true', 'IPAddressPool']);
  });
});
