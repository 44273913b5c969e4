/**
 * The controller under faults and refusals, against the API server double with injected
 * failures: a failed configuration read, a restart under an invalid configuration, an update
 * refused after the mutating webhook answered, forged reservation annotations. After each, no
 * Service loses or changes its IP, and every IP shown is claimed by the Service showing it.
 */
import { CoreV1Api, type V1Service } from '@kubernetes/client-node';
import type { IPClaim } from '../../webhook/claims.js';
import { LAST_GOOD_CONFIG_MAP } from '../../webhook/config-admission.js';
import { RESOURCES, type KubeObject } from '../../kube/client.js';
import { NamespaceLabels } from '../../webhook/namespaces.js';
import type { AdmissionRequest } from '../../webhook/review.js';
import { ASSIGNMENT, ServiceAdmission } from '../../webhook/services.js';
import { applyJsonPatch } from '../apiserver/patch.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';
import { LeadingReplica, startCluster, type Cluster } from './support.js';

const GRACE_MS = 1500;
const NS = 'metallb-system';

let cluster: Cluster;
let core: CoreV1Api;

const pool = (name: string, addresses: string[]) =>
  cluster.api.store.create({ apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace: NS }, spec: { addresses } } as never);

/** One leading controller with its ledger. */
type Replica = LeadingReplica;

const running: Replica[] = [];
async function replica(): Promise<Replica> {
  const r = await new LeadingReplica(cluster, { reservationGraceMs: GRACE_MS }).start();
  running.push(r);
  return r;
}

beforeAll(async () => {
  cluster = await startCluster();
  core = kubeConfigFor(cluster.api).makeApiClient(CoreV1Api);
  await cluster.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } } as never).catch(() => undefined);
  await pool('main', ['192.0.2.0/28']);
});
afterEach(async () => {
  cluster.api.faults.clear();
  for (const r of running.splice(0)) await r.stop();
});
afterAll(async () => {
  await cluster.stop();
});

const lb = (name: string, annotations: Record<string, string> = {}): V1Service => ({
  metadata: { name, annotations },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80 }] },
});
const read = (name: string) => core.readNamespacedService({ name, namespace: 'default' });
const ingressOf = async (name: string) => (await read(name)).status?.loadBalancer?.ingress?.map((i) => i.ip).join(',');
const claims = async () => (await cluster.kube.list(RESOURCES.ipClaims)).items as IPClaim[];

/** Every Service's IPs, by name, once each shows one in status and annotation alike. */
async function assigned(names: string[]): Promise<Record<string, string>> {
  return eventually(
    async () => {
      const out: Record<string, string> = {};
      for (const n of names) {
        const s = await read(n);
        const ips = s.status?.loadBalancer?.ingress?.map((i) => i.ip).join(',');
        if (!ips || s.metadata?.annotations?.[ASSIGNMENT.ips] !== ips) return undefined;
        out[n] = ips;
      }
      return out;
    },
    5000,
    `${names.join(', ')} assigned`,
  );
}

/** Invariant 1: each IP a Service shows is claimed by it (own hold, not only a reservation). */
async function everyShownIPClaimed(names: string[]): Promise<void> {
  const all = await claims();
  for (const n of names) {
    const s = await read(n);
    const shown = new Set([...(s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? ''), ...(s.metadata?.annotations?.[ASSIGNMENT.ips]?.split(',') ?? [])]);
    shown.delete('');
    for (const ip of shown) {
      const c = all.find((x) => x.spec.ip === ip);
      expect({ service: n, ip, holders: c?.spec.holders.map((h) => h.name) }).toEqual({ service: n, ip, holders: expect.arrayContaining([n]) });
    }
  }
}

describe('configuration read failures', () => {
  it('an HTTP 500 while listing IPAddressPools changes nothing, and the reload is retried until it succeeds', async () => {
    const r = await replica();
    await core.createNamespacedService({ namespace: 'default', body: lb('keep-1') });
    await core.createNamespacedService({ namespace: 'default', body: lb('keep-2') });
    const before = await assigned(['keep-1', 'keep-2']);
    const fault = cluster.api.faults.inject({ verb: 'list', resource: 'ipaddresspools', count: 3, fault: { status: 500, message: 'etcdserver: leader changed' } });
    await pool('later', ['198.51.100.0/28']);
    await fault.hit(3);
    // The failed reads applied nothing: no revocation, every IP still shown and claimed.
    expect(r.ledger.currentPools().map((p) => p.name)).toEqual(['main']);
    expect({ 'keep-1': await ingressOf('keep-1'), 'keep-2': await ingressOf('keep-2') }).toEqual(before);
    await everyShownIPClaimed(['keep-1', 'keep-2']);
    // Then the reload goes through on its own (no further change needed).
    await eventually(() => r.ledger.currentPools().some((p) => p.name === 'later') || undefined, 8000, 'pool "later" loaded after the faults');
    expect(await assigned(['keep-1', 'keep-2'])).toEqual(before);
    const state = (await cluster.kube.get(RESOURCES.configurationStates, 'controller', NS)) as KubeObject & { status?: { result?: string } };
    expect(state.status?.result).toBe('Valid');
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'later', NS);
    for (const n of ['keep-1', 'keep-2']) await core.deleteNamespacedService({ name: n, namespace: 'default' });
  });
});

describe('forced configuration changes', () => {
  it('revokes exactly what is no longer allowed: a dual-stack Service keeps its IPv6 address when the IPv4 range goes', async () => {
    const r = await replica();
    await pool('dual', ['203.0.113.0/29', '2001:db8:d::/125']);
    await eventually(() => r.ledger.currentPools().some((p) => p.name === 'dual') || undefined, 3000, 'dual pool');
    const body = lb('dual-svc', { 'metallb.io/address-pool': 'dual' });
    body.spec = { ...body.spec, ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] };
    await core.createNamespacedService({ namespace: 'default', body });
    const before = (await assigned(['dual-svc']))['dual-svc'] ?? '';
    const [v4, v6] = before.split(',');
    expect(v4).toMatch(/^203\.0\.113\./);
    expect(v6).toMatch(/^2001:db8:d::/);
    // The IPv4 range is replaced (forced: the webhook is not in this test).
    const current = (await r.kube.get({ group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true }, 'dual', NS)) as KubeObject;
    await cluster.api.store.update({ ...current, spec: { addresses: ['198.51.100.64/29', '2001:db8:d::/125'] } } as never);
    const after = await eventually(
      async () => {
        const ips = await ingressOf('dual-svc');
        return ips && ips.startsWith('198.51.100.') ? ips : undefined;
      },
      5000,
      'a new IPv4 address',
    );
    expect(after.split(',')[1]).toBe(v6);
    await everyShownIPClaimed(['dual-svc']);
    expect((await claims()).some((c) => c.spec.ip === v4)).toBe(false);
    const events = (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=dual-svc' })).items;
    expect(events.map((e) => `${e.reason}: ${e.message}`).join('\n')).toMatch(new RegExp(`ClearAssignment: current IP \\[.*${v4?.replaceAll('.', '\\.')}`));
    await core.deleteNamespacedService({ name: 'dual-svc', namespace: 'default' });
    await eventually(async () => (await claims()).length === 0 || undefined, 5000, 'claims released');
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'dual', NS);
  });
});

describe('restart under an invalid configuration', () => {
  const names = ['r-0', 'r-1', 'r-2', 'r-3', 'r-4'];

  async function fill(): Promise<Record<string, string>> {
    const first = await replica();
    for (const n of names) await core.createNamespacedService({ namespace: 'default', body: lb(n) });
    const before = await assigned(names);
    // The leader has recorded the configuration it applied.
    await eventually(() => cluster.kube.get(RESOURCES.configMaps, LAST_GOOD_CONFIG_MAP, NS), 3000, 'last good configuration recorded');
    await first.stop();
    running.splice(running.indexOf(first), 1);
    // Two overlapping pools land together (each admitted against what was stored before).
    await pool('clash', ['192.0.2.8/29']);
    return before;
  }

  async function cleanup(): Promise<void> {
    for (const n of names) await core.deleteNamespacedService({ name: n, namespace: 'default' }).catch(() => undefined);
    await eventually(async () => (await claims()).length === 0 || undefined, 5000, 'claims released');
  }

  it('starts from the recorded last good configuration: every Service keeps its IP and claim, also after the fix', async () => {
    const before = await fill();
    const second = await replica();
    const state = await eventually(
      async () => {
        const s = (await cluster.kube.get(RESOURCES.configurationStates, 'controller', NS)) as (KubeObject & { status?: { result?: string; errors?: string[] } }) | undefined;
        return s?.status?.result === 'Invalid' ? s : undefined;
      },
      3000,
      'the configuration reported invalid',
    );
    expect(state.status?.errors?.join(' ')).toMatch(/clash|overlap/);
    expect(second.ledger.currentPools().map((p) => p.name)).toEqual(['main']);
    // A resync's worth of work has been done: a new Service is assigned meanwhile.
    await core.createNamespacedService({ namespace: 'default', body: lb('r-new') });
    await assigned(['r-new']);
    expect(await assigned(names)).toEqual(before);
    expect((await claims()).length).toBe(names.length + 1);
    await everyShownIPClaimed([...names, 'r-new']);
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'clash', NS);
    await eventually(
      async () => ((await cluster.kube.get(RESOURCES.configurationStates, 'controller', NS)) as { status?: { result?: string } }).status?.result === 'Valid' || undefined,
      3000,
      'valid again',
    );
    expect(await assigned(names)).toEqual(before);
    await core.deleteNamespacedService({ name: 'r-new', namespace: 'default' });
    await cleanup();
  });

  it('with nothing recorded, judges no Service until the configuration is fixed: nothing is revoked or released', async () => {
    const before = await fill();
    await cluster.api.store.delete('v1', 'ConfigMap', LAST_GOOD_CONFIG_MAP, NS);
    const second = await replica();
    await eventually(
      async () => ((await cluster.kube.get(RESOURCES.configurationStates, 'controller', NS)) as { status?: { result?: string } }).status?.result === 'Invalid' || undefined,
      3000,
      'reported invalid',
    );
    expect(second.ledger.currentPools()).toEqual([]);
    // Past the reaper's grace: claims are all still there, the Services unchanged.
    await new Promise((r) => setTimeout(r, GRACE_MS + 500));
    expect((await claims()).length).toBe(names.length);
    expect(await assigned(names)).toEqual(before);
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'clash', NS);
    await eventually(() => second.ledger.currentPools().length === 1 || undefined, 3000, 'fixed configuration applied');
    expect(await assigned(names)).toEqual(before);
    await everyShownIPClaimed(names);
    await cleanup();
  });
});

describe('refused requests and forged annotations', () => {
  let admission: ServiceAdmission;
  let labels: NamespaceLabels;
  let counter = 0;

  function review(obj: KubeObject, old?: KubeObject): AdmissionRequest {
    return {
      uid: `u-${++counter}`,
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      name: obj.metadata.name ?? '',
      namespace: 'default',
      operation: old ? 'UPDATE' : 'CREATE',
      userInfo: { username: 'someone' },
      object: obj,
      ...(old ? { oldObject: old } : {}),
      dryRun: false,
    };
  }

  async function mutated(obj: KubeObject, old?: KubeObject): Promise<KubeObject> {
    const v = await admission.mutate(review(obj, old));
    return (v.patch ? applyJsonPatch(structuredClone(obj), v.patch) : obj) as KubeObject;
  }

  afterEach(() => labels?.stop());

  it('an update refused after the mutating webhook moves and frees nothing; the same update stored moves the IP', async () => {
    const r = await replica();
    await pool('second', ['198.51.100.16/28']);
    await eventually(() => r.ledger.currentPools().length === 2 || undefined, 3000, 'two pools');
    labels = new NamespaceLabels(r.kube);
    await labels.start();
    admission = new ServiceAdmission({ ledger: r.ledger, namespaces: labels });
    await core.createNamespacedService({ namespace: 'default', body: lb('mover') });
    const { mover: ip } = await assigned(['mover']);
    const stored = (await r.kube.get(RESOURCES.services, 'mover', 'default')) as KubeObject;
    const wants = structuredClone(stored);
    wants.metadata.annotations = { ...wants.metadata.annotations, 'metallb.io/address-pool': 'second' };
    // Mutating admission answers with a new IP under a reservation, then the request is refused
    // (port 70000, a conflict, another webhook): the object is never stored.
    const answer = await mutated(wants, stored);
    const newIP = answer.metadata.annotations?.[ASSIGNMENT.ips];
    expect(newIP).toMatch(/^198\.51\.100\./);
    expect(answer.metadata.annotations?.[ASSIGNMENT.reservation]).toMatch(/^mover\*/);
    // The old claim is the Service's still; the new one is only a reservation, gone after the grace.
    const held = (await claims()).find((c) => c.spec.ip === ip);
    // (A create's claim names its Service; no write is spent recording the UID alone.)
    expect(held?.spec.holders).toEqual([{ namespace: 'default', name: 'mover' }]);
    await eventually(async () => !(await claims()).some((c) => c.spec.ip === newIP) || undefined, GRACE_MS + 3000, 'the unused reservation released');
    expect(await ingressOf('mover')).toBe(ip);
    await everyShownIPClaimed(['mover']);

    // The same change accepted: stored with the mutator's answer, the loop adopts it and lets the old IP go.
    const again = await mutated(wants, stored);
    const moved = again.metadata.annotations?.[ASSIGNMENT.ips] ?? '';
    await r.kube.replace(RESOURCES.services, again);
    await eventually(async () => ((await ingressOf('mover')) === moved ? true : undefined), 3000, 'status shows the new IP');
    await eventually(async () => !(await claims()).some((c) => c.spec.ip === ip) || undefined, 3000, 'old IP released');
    const now = (await claims()).find((c) => c.spec.ip === moved);
    expect(now?.spec.holders).toEqual([{ namespace: 'default', name: 'mover', uid: stored.metadata.uid }]);
    expect((await read('mover')).metadata?.annotations?.[ASSIGNMENT.reservation]).toBeUndefined();
    await core.deleteNamespacedService({ name: 'mover', namespace: 'default' });
    await cluster.api.store.delete('metallb.io/v1beta1', 'IPAddressPool', 'second', NS);
  });

  it('a create refused after the mutating webhook frees its claim after the grace; one refused as AlreadyExists moves nothing of the existing Service', async () => {
    const r = await replica();
    labels = new NamespaceLabels(r.kube);
    await labels.start();
    admission = new ServiceAdmission({ ledger: r.ledger, namespaces: labels });
    await core.createNamespacedService({ namespace: 'default', body: lb('existing') });
    const { existing: ip } = await assigned(['existing']);
    // A create admitted then refused (never stored): claimed under its name, no UID.
    const ghost = await mutated({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ghost', namespace: 'default' }, spec: lb('ghost').spec } as unknown as KubeObject);
    const ghostIP = ghost.metadata.annotations?.[ASSIGNMENT.ips] ?? '';
    expect((await claims()).find((c) => c.spec.ip === ghostIP)?.spec.holders).toEqual([{ namespace: 'default', name: 'ghost' }]);
    // A create of a name that exists, with another pool's worth of request: refused by the API server as AlreadyExists.
    const again = await mutated({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'existing', namespace: 'default', annotations: { 'metallb.io/loadBalancerIPs': '192.0.2.14' } },
      spec: lb('existing').spec,
    } as unknown as KubeObject);
    expect(again.metadata.annotations?.[ASSIGNMENT.ips]).toBe('192.0.2.14');
    await eventually(async () => !(await claims()).some((c) => c.spec.ip === ghostIP || c.spec.ip === '192.0.2.14') || undefined, GRACE_MS + 4000, 'the refused creates let go');
    expect(await ingressOf('existing')).toBe(ip);
    await everyShownIPClaimed(['existing']);
    await core.deleteNamespacedService({ name: 'existing', namespace: 'default' });
    await eventually(async () => (await claims()).length === 0 || undefined, 5000, 'claims released');
  });

  it("a Service carrying another Service's reservation or assignment annotations gets nothing of its", async () => {
    const r = await replica();
    labels = new NamespaceLabels(r.kube);
    await labels.start();
    admission = new ServiceAdmission({ ledger: r.ledger, namespaces: labels });
    // The victim's create, admitted, not yet stored: its claim is not bound to a UID yet.
    const victimIn = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'victim', namespace: 'default' }, spec: lb('victim').spec } as unknown as KubeObject;
    const victimOut = await mutated(victimIn);
    const victimIP = victimOut.metadata.annotations?.[ASSIGNMENT.ips] ?? '';
    expect(victimIP).toMatch(/^192\.0\.2\./);
    // A reservation text as a victim's update would carry it.
    const reservation = 'victim*0123456789';
    // The forger copies every annotation we own, and also names the victim itself as its reservation.
    const forgeries: [string, string][] = [
      ['forger', reservation],
      ['forger-2', 'victim'],
    ];
    for (const [name, forged] of forgeries) {
      const obj = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: 'default', annotations: { [ASSIGNMENT.ips]: victimIP, [ASSIGNMENT.pool]: 'main', [ASSIGNMENT.reservation]: forged } },
        spec: lb(name).spec,
      } as unknown as KubeObject;
      const out = await mutated(obj);
      expect({ name, ip: out.metadata.annotations?.[ASSIGNMENT.ips] }).not.toEqual({ name, ip: victimIP });
      expect(out.metadata.annotations?.[ASSIGNMENT.ips]).toMatch(/^192\.0\.2\./);
      // Even stored as forged (the webhook down), the loop adopts nothing for it.
      await r.kube.create(RESOURCES.services, obj);
    }
    await r.kube.create(RESOURCES.services, victimOut);
    const ips = await assigned(['victim', 'forger', 'forger-2']);
    expect(ips.victim).toBe(victimIP);
    expect(new Set(Object.values(ips)).size).toBe(3);
    await everyShownIPClaimed(['victim', 'forger', 'forger-2']);
    for (const n of ['victim', 'forger', 'forger-2']) await core.deleteNamespacedService({ name: n, namespace: 'default' });
  });
});
