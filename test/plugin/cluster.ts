/**
 * A cluster for `kubectl metallb`'s end-to-end tests (and the README's examples): the API server
 * double with the project's manifests and a real controller process, configured with
 * metallb.io pools and a legacy ConfigMap pool, nodes, and Services in every state the plugin
 * tells apart. EndpointSlices and ServiceL2Status objects are written directly, as the
 * endpoint controller and the node agents would.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ClientKube, RESOURCES, type KubeObject, type Resource } from '../../kube/client.js';
import { announceAll, nodeFromKube, prepareLayer2, serviceFromKube } from '../../core/announce/index.js';
import { parseObjects, readConfigObjects } from '../../kube/config.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';
import { E2ECluster, ingressIPs, lbService, NAMESPACE, repoRoot } from '../e2e/support.js';

export const NODES: Resource = { group: '', version: 'v1', plural: 'nodes', namespaced: false };
export const POOLS: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true };
export const L2ADS: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'l2advertisements', namespaced: true };
export const SLICES: Resource = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true };
export const L2STATUS: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'servicel2statuses', namespaced: true };

export const SHOP = 'shop';

/** The legacy ConfigMap: one layer-2 pool. */
export const LEGACY_CONFIG = 'address-pools:\n- name: legacy\n  protocol: layer2\n  addresses:\n  - 192.0.2.0/28\n';

export function nodeObject(name: string, ready: boolean): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

/** An EndpointSlice of a Service with one endpoint per node given. */
export function slice(service: string, endpoints: { node: string; ready: boolean }[]): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-abcde`, namespace: SHOP, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: endpoints.map((e, i) => ({ addresses: [`10.0.0.${i + 1}`], nodeName: e.node, conditions: { ready: e.ready, serving: e.ready, terminating: false } })),
  };
}

/** A ServiceL2Status as an agent publishes it. */
export function l2Status(service: string, node: string): KubeObject {
  return {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'ServiceL2Status',
    metadata: {
      name: `${SHOP}.${service}.${node}`,
      namespace: NAMESPACE,
      labels: { 'metallb.io/node': node, 'metallb.io/service-name': service, 'metallb.io/service-namespace': SHOP },
    },
    status: { node, serviceName: service, serviceNamespace: SHOP },
  };
}

/** The addresses status shows for a Service of shop. */
async function ipsOf(kube: ClientKube, name: string): Promise<string[]> {
  return ingressIPs(((await kube.get(RESOURCES.services, name, SHOP)) ?? {}) as Parameters<typeof ingressIPs>[0]);
}

export interface PluginCluster {
  cluster: E2ECluster;
  kube: ClientKube;
  /** `kubectl metallb ARGS` through kubectl's plugin lookup, KUBECONFIG pointing at the double. */
  metallb(args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The IP status shows for a Service, once it has one. */
  ipOf(name: string): Promise<string>;
  /** The node core/announce puts in charge of a Service's first IP (as an agent computes it). */
  ownerOf(name: string): Promise<string>;
  stop(): Promise<void>;
}

const PATH = `${join(repoRoot, 'plugin/bin')}:${process.env.PATH ?? ''}`;

export function runMetallb(kubeconfig: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'kubectl',
      ['metallb', ...args],
      { env: { ...process.env, PATH, KUBECONFIG: kubeconfig, NODE_OPTIONS: '', ...env }, timeout: 60_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/**
 * Starts the cluster and creates every object; resolves when the controller has assigned every
 * Service it can. The Services of namespace `shop`:
 *
 * - `web`: assigned from `lan`, a ready endpoint on node-1 (healthy);
 * - `filler`: takes the one address of pool `small` (autoAssign false, named);
 * - `full`: asks for `small` too (pending, pool full);
 * - `thief`: requests web's address; created past the webhook (as while it is down), so the
 *   controller finds the address held (pending, ip-in-use);
 * - `dns-tcp` and `dns-udp`: one address, shared under key `dns`;
 * - `local`: externalTrafficPolicy Local, its only endpoint on node-2 not ready (not announced);
 * - `old`: from the legacy ConfigMap pool `legacy`, named with the deprecated annotation;
 * - `db`: a ClusterIP Service.
 */
export async function startPluginCluster(): Promise<PluginCluster> {
  const cluster = await E2ECluster.start();
  const kube = new ClientKube(kubeConfigFor(cluster.api));
  try {
    await cluster.startController();
    await cluster.leader();
    for (const n of ['node-1', 'node-2', 'node-3']) await kube.create(NODES, nodeObject(n, true));
    await kube.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: SHOP } });
    await kube.create(RESOURCES.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config', namespace: NAMESPACE }, data: { config: LEGACY_CONFIG } });
    const pool = (name: string, addresses: string[], spec: Record<string, unknown> = {}) =>
      kube.create(POOLS, { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace: NAMESPACE }, spec: { addresses, ...spec } });
    await pool('lan', ['203.0.113.0/25'], { avoidBuggyIPs: true });
    await pool('small', ['203.0.113.200/32'], { autoAssign: false });
    await pool('v6', ['2001:db8:1::/64'], { autoAssign: false });
    await kube.create(L2ADS, { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'everywhere', namespace: NAMESPACE }, spec: {} });
    // The controller follows the configuration through a watch: wait until it allocates from every pool.
    const { waitForPool } = await import('../e2e/support.js');
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    for (const p of ['lan', 'small', 'legacy']) await waitForPool(core, SHOP, p, 10_000);

    const create = (name: string, extra: Parameters<typeof lbService>[2] = {}) => kube.create(RESOURCES.services, lbService(name, SHOP, extra) as KubeObject);
    await create('web', { annotations: { 'metallb.io/address-pool': 'lan' } });
    await create('filler', { annotations: { 'metallb.io/address-pool': 'small' } });
    await eventually(async () => (await ipsOf(kube, 'filler')).length > 0, 10_000, 'filler to get its address');
    await create('full', { annotations: { 'metallb.io/address-pool': 'small' } });
    await create('dns-tcp', { annotations: { 'metallb.io/allow-shared-ip': 'dns' }, spec: { ports: [{ name: 'dns', port: 53, protocol: 'TCP' }] } });
    await create('dns-udp', { annotations: { 'metallb.io/allow-shared-ip': 'dns' }, spec: { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] } });
    await create('local', { spec: { externalTrafficPolicy: 'Local' } });
    await create('old', { annotations: { 'metallb.universe.tf/address-pool': 'legacy' } });
    await kube.create(RESOURCES.services, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'db', namespace: SHOP },
      spec: { selector: { app: 'db' }, ports: [{ port: 5432 }] },
    });
    const web = await eventually(async () => (await ipsOf(kube, 'web'))[0], 10_000, 'web to get its address');
    // Past the webhook, as while it is down (failurePolicy Ignore): the controller finds the address taken.
    await cluster.api.store.create(lbService('thief', SHOP, { annotations: { 'metallb.io/loadBalancerIPs': web } }) as KubeObject);

    await kube.create(SLICES, slice('web', [{ node: 'node-1', ready: true }]));
    await kube.create(SLICES, slice('filler', [{ node: 'node-1', ready: true }]));
    await kube.create(SLICES, slice('dns-tcp', [{ node: 'node-3', ready: true }]));
    await kube.create(SLICES, slice('dns-udp', [{ node: 'node-3', ready: true }]));
    await kube.create(SLICES, slice('local', [{ node: 'node-2', ready: false }]));
    await kube.create(SLICES, slice('old', [{ node: 'node-2', ready: true }]));
    for (const name of ['web', 'dns-tcp', 'dns-udp', 'local', 'old']) {
      await eventually(async () => (await ipsOf(kube, name)).length > 0, 10_000, `${name} to get its address`);
    }
    // The controller reports the failures with events: wait for them, so explain has them.
    for (const name of ['full', 'thief']) {
      await eventually(
        async () => (await kube.list(RESOURCES.events, { namespace: SHOP, fieldSelector: `involvedObject.name=${name}` })).items.length > 0,
        10_000,
        `an event about ${name}`,
      );
    }
  } catch (e) {
    kube.close();
    await cluster.stop();
    throw e;
  }

  const ownerOf = async (name: string): Promise<string> => {
    const objects = await readConfigObjects(kube, NAMESPACE);
    const { config } = parseObjects(objects);
    const nodes = (await kube.list(NODES)).items;
    const ready = new Set(nodes.filter((n) => JSON.stringify(n.status).includes('"Ready","status":"True"')).map((n) => n.metadata.name ?? ''));
    const ctx = prepareLayer2(
      config,
      nodes.flatMap((n) => nodeFromKube(n) ?? []),
      ready,
    );
    const slices = (await kube.list(SLICES, { namespace: SHOP })).items;
    const services = (await kube.list(RESOURCES.services, { namespace: SHOP })).items.flatMap((s) => serviceFromKube(s, slices) ?? []);
    const answer = announceAll(ctx, services).find((a) => a.name === name);
    const owner = answer?.ips[0]?.owner;
    if (!owner) throw new Error(`no owner for ${name}`);
    return owner;
  };

  return {
    cluster,
    kube,
    metallb: (args, env) => runMetallb(cluster.api.kubeconfigPath, args, env),
    ipOf: (name) => eventually(async () => (await ipsOf(kube, name))[0], 10_000, `${name}'s address`),
    ownerOf,
    stop: async () => {
      kube.close();
      await cluster.stop();
    },
  };
}

export const BGP_SESSIONS: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'bgpsessionstates', namespaced: true };

/** A BGPSessionState as a node's speaker publishes it (created, then its status written). */
export async function publishSession(kube: ClientKube, node: string, peer: string, status: Record<string, unknown>): Promise<void> {
  const name = `${node}-${peer.replaceAll('.', '-')}`;
  await kube.create(BGP_SESSIONS, { apiVersion: 'metallb.io/v1beta1', kind: 'BGPSessionState', metadata: { name, namespace: NAMESPACE, labels: { 'metallb.io/node': node } } });
  await kube.patch(BGP_SESSIONS, name, NAMESPACE, { status: { node, peer, vrf: '', ...status } }, { subresource: 'status' });
}
