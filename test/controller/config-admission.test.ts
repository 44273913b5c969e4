/**
 * Configuration admission against the API server double: merged with what is there, parsed by
 * the one parser, and refused when it would strand IPs in use unless forced.
 */
import { newRequest } from '../../core/allocator/index.js';
import { Ledger } from '../../webhook/claims.js';
import { ConfigAdmission, FORCE_ANNOTATION, parseObjects, readConfigObjects } from '../../webhook/config-admission.js';
import type { AdmissionRequest } from '../../webhook/review.js';
import { startCluster, type Cluster } from './support.js';

let cluster: Cluster;
let ledger: Ledger;
let admission: ConfigAdmission;

const pool = (name: string, addresses: string[], annotations?: Record<string, string>) => ({
  apiVersion: 'metallb.io/v1beta1',
  kind: 'IPAddressPool',
  metadata: { name, namespace: 'metallb-system', ...(annotations ? { annotations } : {}) },
  spec: { addresses },
});

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.api.store.create(pool('main', ['192.0.2.0/28']) as never);
  const { config } = parseObjects(await readConfigObjects(cluster.kube, 'metallb-system'));
  ledger = new Ledger(cluster.kube, config.pools);
  await ledger.start();
  const r = await ledger.allocate(newRequest({ namespace: 'default', name: 'web', requestedIPs: [{ family: 'IPv4', value: 0xc000020an }] }));
  expect(r.ok).toBe(true);
  admission = new ConfigAdmission({ kube: cluster.kube, ledger, namespace: 'metallb-system' });
});
afterAll(async () => {
  ledger.stop();
  await cluster.stop();
});

function review(operation: 'CREATE' | 'UPDATE' | 'DELETE', obj: Record<string, unknown> & { kind: string; metadata: { name: string } }): AdmissionRequest {
  const isCM = obj.kind === 'ConfigMap';
  const change = operation === 'DELETE' ? { oldObject: obj } : { object: obj };
  return {
    uid: 'u',
    kind: isCM ? { group: '', version: 'v1', kind: 'ConfigMap' } : { group: 'metallb.io', version: 'v1beta1', kind: obj.kind },
    resource: isCM ? { group: '', version: 'v1', resource: 'configmaps' } : { group: 'metallb.io', version: 'v1beta1', resource: 'ipaddresspools' },
    name: obj.metadata.name,
    namespace: 'metallb-system',
    operation,
    userInfo: {},
    dryRun: false,
    ...change,
  };
}

describe('configuration admission', () => {
  it('admits a valid new pool', async () => {
    expect(await admission.validate(review('CREATE', pool('more', ['198.51.100.0/24'])))).toEqual({ allowed: true });
  });

  it('denies a pool overlapping an existing one, naming both, and a malformed CIDR', async () => {
    const v = await admission.validate(review('CREATE', pool('overlap', ['192.0.2.8/29'])));
    expect(v.allowed).toBe(false);
    expect(v.message).toMatch(/overlap/);
    const bad = await admission.validate(review('CREATE', pool('bad', ['192.0.2.0/33'])));
    expect(bad.allowed).toBe(false);
    expect(bad.message).toMatch(/192\.0\.2\.0\/33/);
  });

  it('denies the legacy ConfigMap when its YAML is wrong', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config' }, data: { config: 'address-pools:\n- name: x\n  protocol: layer2\n  addresses: [nope]\n' } };
    const v = await admission.validate(review('CREATE', cm));
    expect(v.allowed).toBe(false);
    expect(v.message).toMatch(/nope/);
  });

  it('denies removing or shrinking a pool under a Service, unless forced', async () => {
    const del = await admission.validate(review('DELETE', pool('main', ['192.0.2.0/28'])));
    expect(del).toMatchObject({ allowed: false, code: 422 });
    expect(del.message).toMatch(/default\/web \(192\.0\.2\.10\)/);
    const shrink = await admission.validate(review('UPDATE', pool('main', ['192.0.2.0/29'])));
    expect(shrink.allowed).toBe(false);
    const forced = await admission.validate(review('UPDATE', pool('main', ['192.0.2.0/29'], { [FORCE_ANNOTATION]: 'true' })));
    expect(forced.allowed).toBe(true);
    expect(forced.warnings?.[0]).toMatch(/default\/web/);
    // Growing it is fine.
    expect((await admission.validate(review('UPDATE', pool('main', ['192.0.2.0/27'])))).allowed).toBe(true);
  });

  it('ignores other ConfigMaps and other namespaces', async () => {
    const other = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated' }, data: { config: 'garbage: [' } };
    expect((await admission.validate(review('CREATE', other))).allowed).toBe(true);
  });
});
