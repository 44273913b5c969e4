/**
 * Service admission, handlers called directly with AdmissionRequests (no HTTP), against claims
 * in the API server double: the cases of MetalLB's usage documentation and the webhook's own.
 */
import { Ledger, type IPClaim } from '../../webhook/claims.js';
import { RESOURCES, type KubeApi } from '../../kube/client.js';
import { NamespaceLabels } from '../../webhook/namespaces.js';
import type { AdmissionRequest, AdmissionVerdict } from '../../webhook/review.js';
import { ASSIGNMENT, ServiceAdmission } from '../../webhook/services.js';
import { applyJsonPatch } from '../apiserver/patch.js';
import { pools, startCluster, type Cluster } from './support.js';

let cluster: Cluster;
let ledger: Ledger;
let admission: ServiceAdmission;
let namespaceLabels: NamespaceLabels;
let counter = 0;
/** Namespace GETs made through the admission's client. */
const namespaceGets: string[] = [];

/** The cluster's client, counting namespace GETs. */
function counting(kube: KubeApi): KubeApi {
  return new Proxy(kube, {
    get(target, prop) {
      if (prop === 'get') {
        return (r: Parameters<KubeApi['get']>[0], name: string, namespace?: string) => {
          if (r.plural === 'namespaces') namespaceGets.push(name);
          return target.get(r, name, namespace);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

beforeAll(async () => {
  cluster = await startCluster();
  for (const name of ['default', 'tenant-a', 'tenant-b', 'tenant-c']) {
    if (name !== 'default') await cluster.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { tenant: name } } } as never);
  }
  ledger = new Ledger(
    cluster.kube,
    pools({
      sandbox: { addresses: ['198.51.100.0/29'] },
      production: { addresses: ['203.0.113.0/30'], autoAssign: false },
      'tenant-a': { addresses: ['192.0.2.0/28'], serviceAllocation: { namespaces: ['tenant-a'] } },
      granted: { addresses: ['192.0.2.64/28'], serviceAllocation: { namespaceSelectors: [{ matchLabels: { 'lb-access': 'granted' } }] } },
    }),
  );
  await ledger.start();
  namespaceLabels = new NamespaceLabels(counting(cluster.kube));
  await namespaceLabels.start();
  admission = new ServiceAdmission({ ledger, namespaces: namespaceLabels, random: () => `r${++counter}` });
});
afterAll(async () => {
  namespaceLabels.stop();
  ledger.stop();
  await cluster.stop();
});

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> & { annotations?: Record<string, string> } };

function service(name: string, extra: { annotations?: Record<string, string>; spec?: Record<string, unknown>; namespace?: string; generateName?: string } = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      ...(name ? { name } : { generateName: extra.generateName }),
      namespace: extra.namespace ?? 'default',
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    },
    spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80, protocol: 'TCP' }], ...(extra.spec ?? {}) },
  };
}

function review(obj: Obj, operation: 'CREATE' | 'UPDATE' = 'CREATE', oldObject?: Obj, dryRun = false): AdmissionRequest {
  return {
    uid: `uid-${++counter}`,
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
    name: (obj.metadata.name as string | undefined) ?? '',
    namespace: (obj.metadata.namespace as string | undefined) ?? 'default',
    operation,
    userInfo: { username: 'someone' },
    object: obj,
    ...(oldObject ? { oldObject } : {}),
    dryRun,
  };
}

/** Mutate then validate, as the API server does; the object as stored, and both verdicts. */
async function admit(
  obj: Obj,
  operation: 'CREATE' | 'UPDATE' = 'CREATE',
  old?: Obj,
  dryRun = false,
): Promise<{ obj: Obj; mutated: AdmissionVerdict; validated: AdmissionVerdict }> {
  const mutated = await admission.mutate(review(obj, operation, old, dryRun));
  const after = (mutated.patch ? applyJsonPatch(structuredClone(obj), mutated.patch) : obj) as Obj;
  const validated = await admission.validate(review(after, operation, old, dryRun));
  return { obj: after, mutated, validated };
}

const assigned = (o: Obj) => o.metadata.annotations?.[ASSIGNMENT.ips];
const poolOf = (o: Obj) => o.metadata.annotations?.[ASSIGNMENT.pool];
const claims = async () => (await cluster.kube.list(RESOURCES.ipClaims)).items as IPClaim[];

describe('Service admission', () => {
  it('auto-assigns from the auto-assign pool, never from an autoAssign: false one', async () => {
    const { obj, validated } = await admit(service('web'));
    expect(validated.allowed).toBe(true);
    expect(poolOf(obj)).toBe('sandbox');
    expect(assigned(obj)).toBe('198.51.100.0');
    // A create claims under the Service's own name (no UID until the loop sees it stored): it
    // holds nothing yet that a refusal could move, so no reservation is needed.
    expect(obj.metadata.annotations?.[ASSIGNMENT.reservation]).toBeUndefined();
    expect((await claims()).find((c) => c.spec.ip === '198.51.100.0')?.spec.holders).toEqual([{ namespace: 'default', name: 'web' }]);
  });

  it('honours a specific IP (spec.loadBalancerIP and metallb.io/loadBalancerIPs)', async () => {
    const a = await admit(service('specific', { spec: { loadBalancerIP: '198.51.100.5' } }));
    expect(assigned(a.obj)).toBe('198.51.100.5');
    expect(a.obj.spec).toMatchObject({ loadBalancerIP: '198.51.100.5' }); // the user's field stays
    const b = await admit(service('specific2', { annotations: { 'metallb.io/loadBalancerIPs': '203.0.113.2' } }));
    expect(b.validated.allowed).toBe(true);
    expect(poolOf(b.obj)).toBe('production');
  });

  it('refuses an IP outside every pool with a clear reason', async () => {
    const { validated } = await admit(service('outside', { spec: { loadBalancerIP: '10.9.9.9' } }));
    expect(validated.allowed).toBe(false);
    expect(validated.message).toMatch(/10\.9\.9\.9 is not in any address pool/);
  });

  it('refuses an IP already used, naming the holder', async () => {
    await admit(service('first', { spec: { loadBalancerIP: '198.51.100.6' } }));
    const { validated } = await admit(service('second', { spec: { loadBalancerIP: '198.51.100.6' } }));
    expect(validated).toMatchObject({ allowed: false, code: 422 });
    expect(validated.message).toMatch(/198\.51\.100\.6 is already in use by default\/first/);
  });

  it('the pool annotation picks the pool; an unknown pool is refused', async () => {
    const { obj } = await admit(service('prod', { annotations: { 'metallb.io/address-pool': 'production' } }));
    expect(poolOf(obj)).toBe('production');
    const bad = await admit(service('nopool', { annotations: { 'metallb.io/address-pool': 'nope' } }));
    expect(bad.validated.allowed).toBe(false);
    expect(bad.validated.message).toMatch(/pool "nope" does not exist/);
  });

  it('production/sandbox: production only when asked, and a full pool is admitted with a warning', async () => {
    for (let i = 0; i < 3; i++) await admit(service(`prod-${i}`, { annotations: { 'metallb.io/address-pool': 'production' } }));
    const full = await admit(service('prod-full', { annotations: { 'metallb.io/address-pool': 'production' } }));
    expect(full.validated.allowed).toBe(true);
    expect(full.mutated.warnings?.[0]).toMatch(/pool "production" is full/);
    expect(assigned(full.obj)).toBeUndefined();
  });

  it('a tenant cannot take an address of a pool that serves another namespace', async () => {
    const theirs = await admit(service('steal', { namespace: 'tenant-b', spec: { loadBalancerIP: '192.0.2.3' } }));
    expect(theirs.validated).toMatchObject({ allowed: false, code: 403 });
    expect(theirs.validated.message).toMatch(/serves only namespaces tenant-a/);
    const ours = await admit(service('mine', { namespace: 'tenant-a', spec: { loadBalancerIP: '192.0.2.3' } }));
    expect(assigned(ours.obj)).toBe('192.0.2.3');
  });

  it('makes no namespace GET for a namespace the watch has delivered', async () => {
    namespaceGets.length = 0;
    const theirs = await admit(service('steal-again', { namespace: 'tenant-b', spec: { loadBalancerIP: '192.0.2.4' } }));
    expect(theirs.validated).toMatchObject({ allowed: false, code: 403 });
    const ours = await admit(service('web-a', { namespace: 'tenant-a' }));
    expect(ours.validated.allowed).toBe(true);
    expect(namespaceGets).toEqual([]);
  });

  it('honours a namespace label change (namespaceSelectors) at the next admission once the watch delivers it', async () => {
    /** Sets tenant-c's lb-access label (null removes it) and waits for the watch to deliver it. */
    const label = async (value: string | null) => {
      const delivered = new Promise<void>((resolve) => namespaceLabels.onChange((ns) => ns === 'tenant-c' && resolve()));
      await cluster.kube.patch(RESOURCES.namespaces, 'tenant-c', undefined, { metadata: { labels: { 'lb-access': value } } });
      await delivered;
    };
    const before = await admit(service('wants-granted', { namespace: 'tenant-c', spec: { loadBalancerIP: '192.0.2.65' } }), 'CREATE', undefined, true);
    expect(before.validated).toMatchObject({ allowed: false, code: 403 });
    await label('granted');
    const after = await admit(service('wants-granted', { namespace: 'tenant-c', spec: { loadBalancerIP: '192.0.2.65' } }));
    expect(after.validated.allowed).toBe(true);
    expect(assigned(after.obj)).toBe('192.0.2.65');
    // Revoked: another Service of the namespace can no longer ask for the pool.
    await label(null);
    const revoked = await admit(service('wants-granted-2', { namespace: 'tenant-c', spec: { loadBalancerIP: '192.0.2.66' } }));
    expect(revoked.validated).toMatchObject({ allowed: false, code: 403 });
    expect(assigned(revoked.obj)).toBeUndefined();
  });

  it('reads a namespace created a moment ago (before the watch has it) with its labels', async () => {
    await cluster.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant-new', labels: { 'lb-access': 'granted' } } } as never);
    const { obj, validated } = await admit(service('fresh', { namespace: 'tenant-new', spec: { loadBalancerIP: '192.0.2.67' } }));
    expect(validated.allowed).toBe(true);
    expect(assigned(obj)).toBe('192.0.2.67');
  });

  it('warns about deprecated annotations and rejects malformed ones', async () => {
    const old = await admit(service('olds', { annotations: { 'metallb.universe.tf/address-pool': 'sandbox' } }));
    expect(old.validated.warnings?.join()).toMatch(/metallb\.universe\.tf\/address-pool is deprecated/);
    const bad = await admit(service('malformed', { annotations: { 'metallb.io/loadBalancerIPs': 'not-an-ip' } }));
    expect(bad.validated.allowed).toBe(false);
    expect(bad.validated.message).toMatch(/not-an-ip/);
  });

  it('is idempotent under reinvocation and keeps IPs on unrelated updates', async () => {
    const first = await admit(service('stable'));
    const again = await admission.mutate(review(first.obj));
    expect(again.patch).toBeUndefined();
    const relabelled = { ...first.obj, metadata: { ...first.obj.metadata, labels: { x: 'y' } } };
    const upd = await admit(relabelled, 'UPDATE', first.obj);
    expect(assigned(upd.obj)).toBe(assigned(first.obj));
  });

  it('a type change away from LoadBalancer strips the annotations and frees nothing at admission (the loop does, once stored)', async () => {
    const first = await admit(service('goes-away'));
    const ip = assigned(first.obj);
    expect(ip).toMatch(/^198\.51\.100\.\d+$/);
    const clusterIP = { ...first.obj, spec: { ...(first.obj.spec as object), type: 'ClusterIP' } };
    const upd = await admit(clusterIP, 'UPDATE', first.obj);
    expect(assigned(upd.obj)).toBeUndefined();
    // The update may still be refused after us: the claim stays until the loop sees it stored.
    expect((await claims()).some((c) => c.spec.ip === ip)).toBe(true);
  });

  it('never trusts a user-written assignment without a claim', async () => {
    const { obj } = await admit(service('liar', { annotations: { [ASSIGNMENT.ips]: '203.0.113.3', [ASSIGNMENT.pool]: 'production' } }));
    expect(poolOf(obj)).toBe('sandbox');
    expect(assigned(obj)).toMatch(/^198\.51\.100\.[0-7]$/);
    const all = await claims();
    expect(all.find((c) => c.spec.ip === assigned(obj))?.spec.holders.map((h) => h.name)).toEqual(['liar']);
    expect(all.find((c) => c.spec.ip === '203.0.113.3')?.spec.holders.some((h) => h.name === 'liar') ?? false).toBe(false);
  });

  it('dry run shows the answer and claims nothing', async () => {
    const before = await claims();
    const { obj, validated } = await admit(service('dry'), 'CREATE', undefined, true);
    expect(validated.allowed).toBe(true);
    expect(poolOf(obj)).toBe('sandbox');
    expect(assigned(obj)).toMatch(/^198\.51\.100\.[0-7]$/);
    expect(await claims()).toEqual(before); // nothing written, not even a resourceVersion
    // Nothing reserved either: the same request for real gets the address the dry run showed.
    const real = await admit(service('dry'));
    expect(assigned(real.obj)).toBe(assigned(obj));
    // Give the address back (no loop runs here to expire the reservation).
    expect(real.obj.metadata.annotations?.[ASSIGNMENT.reservation]).toBeUndefined();
    expect(await ledger.release('default/dry')).toBeTruthy();
    expect(await claims()).toEqual(before);
  });

  it('generateName: claims under a reservation, kept on reinvocation', async () => {
    const { obj } = await admit(service('', { generateName: 'gen-' }));
    const reservation = obj.metadata.annotations?.[ASSIGNMENT.reservation];
    expect(reservation).toMatch(/^gen-\*/);
    const again = await admission.mutate(review(obj));
    expect(again.patch).toBeUndefined();
    const c = (await claims()).find((x) => x.spec.ip === assigned(obj));
    expect(c?.spec.holders).toEqual([{ namespace: 'default', name: reservation }]);
    // Once named, an update keeps the IP and the reservation: only the loop adopts it.
    const named = { ...obj, metadata: { ...obj.metadata, name: 'gen-abcde', uid: 'u-1' } };
    const upd = await admit(named, 'UPDATE', named);
    expect(assigned(upd.obj)).toBe(assigned(obj));
    expect(upd.validated.allowed).toBe(true);
    expect(upd.obj.metadata.annotations?.[ASSIGNMENT.reservation]).toBe(reservation);
    const still = (await claims()).find((x) => x.spec.ip === assigned(obj));
    expect(still?.spec.holders).toEqual([{ namespace: 'default', name: reservation }]);
  });

  it('refuses an IPv6 loadBalancerIP on a Service that sets no ipFamilies (the cluster defaults it to IPv4), naming the fix', async () => {
    const { validated, obj } = await admit(service('v6-no-families', { spec: { loadBalancerIP: '2001:db8::5' } }));
    expect(validated).toMatchObject({ allowed: false, code: 422 });
    expect(validated.message).toMatch(/2001:db8::5 is IPv6, but the Service will be IPv4.*set spec\.ipFamilies: \[IPv6\]/);
    expect(assigned(obj)).toBeUndefined();
    expect((await claims()).some((c) => c.spec.ip === '2001:db8::5')).toBe(false);
    // Said explicitly, the family is no problem (no IPv6 pool here: admitted as a shortage or refused as outside every pool, never as a family mismatch).
    const explicit = await admit(service('v6-families', { spec: { loadBalancerIP: '2001:db8::5', ipFamilies: ['IPv6'] } }));
    expect(explicit.validated.message ?? '').not.toMatch(/ipFamilies/);
  });

  it('denies with 403 for a pool the namespace may not use and 422 for a field error, never 409', async () => {
    const theirs = await admit(service('steal-403', { namespace: 'tenant-b', spec: { loadBalancerIP: '192.0.2.5' } }));
    expect(theirs.validated).toMatchObject({ allowed: false, code: 403 });
    const outside = await admit(service('outside-422', { spec: { loadBalancerIP: '10.9.9.9' } }));
    expect(outside.validated).toMatchObject({ allowed: false, code: 422 });
  });

  it('hostile values in the annotations we own (not strings) are answered, never thrown', async () => {
    for (const value of [5, { a: 1 }, ['198.51.100.1'], null]) {
      const obj = service('hostile', { generateName: 'h-' });
      obj.metadata.annotations = { [ASSIGNMENT.ips]: value, [ASSIGNMENT.reservation]: value, [ASSIGNMENT.pool]: value } as never;
      const generated = { ...obj, metadata: { ...obj.metadata, name: undefined, generateName: 'h-' } } as Obj;
      for (const o of [obj, generated]) {
        const { mutated, validated } = await admit(o);
        expect(mutated.allowed).toBe(true);
        expect(typeof validated.allowed).toBe('boolean');
      }
      const upd = await admit(obj, 'UPDATE', obj);
      expect(upd.mutated.allowed).toBe(true);
    }
  });

  it('ignores Services of another loadBalancerClass', async () => {
    const { mutated } = await admit(service('other', { spec: { loadBalancerClass: 'example.com/other' } }));
    expect(mutated.patch).toBeUndefined();
  });
});
