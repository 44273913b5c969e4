/**
 * Configuration admission against the API server double: merged with what is there, parsed by
 * the one parser, and refused when it would strand IPs in use unless forced. MetalLB's rules
 * (test/fixtures/config/metallb-rules.ts) are applied object by object, as `kubectl apply`
 * of a folder would, in their order and, when admitted, in the reverse order too.
 */
import { newRequest } from '../../core/allocator/index.js';
import { CONFIG_KINDS, RESOURCES, type KubeObject } from '../../kube/client.js';
import { objectsOf, prefixOf, RULES, type Expect, type Rule } from '../fixtures/config/metallb-rules.js';
import { Ledger } from '../../webhook/claims.js';
import { ConfigAdmission, FORCE_ANNOTATION, parseObjects, readConfigObjects } from '../../webhook/config-admission.js';
import type { AdmissionRequest, AdmissionVerdict } from '../../webhook/review.js';
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

describe('MetalLB rules through the webhook', () => {
  let rules: Cluster;
  let emptyLedger: Ledger;
  const NAMESPACES = ['metallb-system', 'lb-system'];

  beforeAll(async () => {
    rules = await startCluster();
    await rules.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lb-system' } } as never);
    await rules.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } } as never).catch(() => undefined);
    emptyLedger = new Ledger(rules.kube, []);
    await emptyLedger.start();
  });
  afterAll(async () => {
    emptyLedger.stop();
    await rules.stop();
  });

  /** Nothing configured, in any namespace the rules use. */
  async function reset(): Promise<void> {
    for (const ns of NAMESPACES) {
      await rules.kube.delete(RESOURCES.configMaps, 'config', ns);
      for (const r of Object.values(CONFIG_KINDS)) {
        for (const o of (await rules.kube.list(r, { namespace: ns })).items) await rules.kube.delete(r, o.metadata.name ?? '', ns);
      }
    }
  }

  function requestFor(o: Record<string, unknown>, operation: 'CREATE' | 'DELETE', namespace: string): AdmissionRequest {
    const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', String(o.apiVersion)];
    const meta = o.metadata as { name: string; namespace?: string };
    const kind = String(o.kind);
    return {
      uid: 'u',
      kind: { group: group ?? '', version: version ?? '', kind },
      resource: { group: group ?? '', version: version ?? '', resource: `${kind.toLowerCase()}s` },
      name: meta.name,
      namespace: meta.namespace ?? namespace,
      operation,
      userInfo: { username: 'kubectl' },
      dryRun: false,
      ...(operation === 'DELETE' ? { oldObject: o } : { object: o }),
    };
  }

  /** Applies the objects one by one through the webhook; an admitted one is stored. Stops at the first denial. */
  async function apply(rule: Rule, objects: Record<string, unknown>[]): Promise<{ verdicts: AdmissionVerdict[]; warnings: string[] }> {
    const namespace = rule.namespace ?? 'metallb-system';
    const admission = new ConfigAdmission({ kube: rules.kube, ledger: emptyLedger, namespace });
    const verdicts: AdmissionVerdict[] = [];
    for (const o of objects) {
      if (o.kind === 'Secret') continue; // not sent to this webhook; the controller never reads Secrets
      const verdict = await admission.validate(requestFor(o, 'CREATE', namespace));
      verdicts.push(verdict);
      if (!verdict.allowed) break;
      const meta = o.metadata as { namespace?: string };
      await rules.api.store.create({ ...o, metadata: { ...meta, namespace: meta.namespace ?? namespace } } as KubeObject);
    }
    return { verdicts, warnings: verdicts.flatMap((v) => v.warnings ?? []) };
  }

  const says = (line: string, e: Expect): boolean => line.includes(prefixOf(e)) && line.includes(e.message);
  const webhookErrors = (rule: Rule): Expect[] => (rule.webhook ? (rule.webhook.errors ?? []) : (rule.errors ?? []));
  const webhookPending = (rule: Rule): Expect[] => (rule.webhook ? (rule.webhook.pending ?? []) : (rule.pending ?? []));

  it.each(RULES.map((r) => [r.name, r] as const))('%s', async (_name, rule) => {
    await reset();
    const objects = objectsOf(rule);
    const { verdicts, warnings } = await apply(rule, objects);
    const errors = webhookErrors(rule);
    const sent = objects.filter((o) => o.kind !== 'Secret').length;
    if (errors.length > 0) {
      // Every object before the one at fault is admitted; that one is denied with each error.
      expect(verdicts.map((v) => v.allowed)).toEqual([...Array<boolean>(sent - 1).fill(true), false]);
      const denial = verdicts[verdicts.length - 1]!;
      expect(denial.code).toBe(400);
      for (const e of errors) {
        expect(denial.message).toContain(prefixOf(e));
        expect(denial.message).toContain(e.message);
      }
    } else {
      expect(verdicts.filter((v) => !v.allowed).map((v) => v.message)).toEqual([]);
      for (const w of rule.warnings ?? []) expect(warnings.filter((line) => says(line, w))).not.toEqual([]);
      for (const p of webhookPending(rule)) expect(warnings.filter((line) => line.startsWith('pending: ') && says(line, p))).not.toEqual([]);

      // `kubectl apply` of a folder takes its files in any order: the reverse is admitted too.
      await reset();
      const reversed = await apply(rule, [...objects].reverse());
      expect(reversed.verdicts.filter((v) => !v.allowed).map((v) => v.message)).toEqual([]);
    }
  });

  it('refuses to delete a BFD profile a peer uses, and lets it go once the peer is gone', async () => {
    await reset();
    const profile = { apiVersion: 'metallb.io/v1beta1', kind: 'BFDProfile', metadata: { name: 'fast', namespace: 'metallb-system' }, spec: {} };
    const peer = {
      apiVersion: 'metallb.io/v1beta2',
      kind: 'BGPPeer',
      metadata: { name: 'tor', namespace: 'metallb-system' },
      spec: { myASN: 64500, peerASN: 64500, peerAddress: '192.0.2.1', bfdProfile: 'fast' },
    };
    const admission = new ConfigAdmission({ kube: rules.kube, ledger: emptyLedger, namespace: 'metallb-system' });
    await rules.api.store.create(profile as never);
    await rules.api.store.create(peer as never);
    const denied = await admission.validate(requestFor(profile, 'DELETE', 'metallb-system'));
    expect(denied).toMatchObject({ allowed: false, code: 400 });
    expect(denied.message).toBe('BFDProfile fast is used by BGPPeer metallb-system/tor: point it at another profile, or remove bfdProfile, before deleting it');
    await rules.api.store.delete('metallb.io/v1beta2', 'BGPPeer', 'tor', 'metallb-system');
    expect(await admission.validate(requestFor(profile, 'DELETE', 'metallb-system'))).toEqual({ allowed: true });
  });

  it('lets a stray object in another namespace be deleted, and refuses updating it', async () => {
    const admission = new ConfigAdmission({ kube: rules.kube, ledger: emptyLedger, namespace: 'metallb-system' });
    const stray = { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'stray', namespace: 'default' }, spec: { addresses: ['198.51.100.0/24'] } };
    expect(await admission.validate(requestFor(stray, 'DELETE', 'metallb-system'))).toEqual({ allowed: true });
    const update = await admission.validate({ ...requestFor(stray, 'CREATE', 'metallb-system'), operation: 'UPDATE', oldObject: stray });
    expect(update.allowed).toBe(false);
    expect(update.message).toMatch(/^IPAddressPool default\/stray: metadata\.namespace: must be created in the metallb-system namespace/);
  });

  it('says what a change leaves pending, and only what it adds', async () => {
    await reset();
    const admission = new ConfigAdmission({ kube: rules.kube, ledger: emptyLedger, namespace: 'metallb-system' });
    const adv = { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'l2', namespace: 'metallb-system' }, spec: { ipAddressPools: ['later'] } };
    const first = await admission.validate(requestFor(adv, 'CREATE', 'metallb-system'));
    expect(first).toEqual({
      allowed: true,
      warnings: ['pending: L2Advertisement metallb-system/l2: spec.ipAddressPools[0]: pool "later" does not exist yet; this advertisement covers it once it is created'],
    });
    await rules.api.store.create(adv as never);
    const again = await admission.validate({ ...requestFor(adv, 'CREATE', 'metallb-system'), operation: 'UPDATE', oldObject: adv });
    expect(again).toEqual({ allowed: true });
  });
});
