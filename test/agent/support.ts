/**
 * What the agent tests share: an API server double with the metallb.io CRDs and the
 * metallb-system namespace, Nodes, Services with assigned IPs, EndpointSlices and configuration
 * written as the controller and the kubelet would, and in-process agents with a recording fake
 * speaker and, when asked, a gossip membership the test decides for.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { Agent, type MembershipLike } from '../../agent/agent.js';
import { silentLogger, makeLogger } from '../../agent/log.js';
import { Metrics } from '../../agent/metrics.js';
import { SERVICE_L2_STATUSES } from '../../agent/status.js';
import { ClientKube, RESOURCES, type KubeApi, type KubeObject } from '../../kube/client.js';
import { startApiServer, type ApiServer } from '../apiserver/index.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';

export const NS = 'metallb-system';
const crdDir = fileURLToPath(new URL('../../manifests/crds/', import.meta.url));

export interface Cluster {
  api: ApiServer;
  /** The admin's client (what the tests write with). */
  kube: ClientKube;
  newKube(): ClientKube;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<Cluster> {
  const api = await startApiServer({ tls: false });
  const files = readdirSync(crdDir).filter((f) => f.endsWith('.yaml'));
  if (files.length === 0) throw new Error(`no CRDs found in ${crdDir}`);
  for (const f of files) await api.store.create(parse(readFileSync(join(crdDir, f), 'utf8')) as never);
  await api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } } as never);
  await api.settle();
  const clients: ClientKube[] = [];
  const newKube = () => {
    const k = new ClientKube(kubeConfigFor(api));
    clients.push(k);
    return k;
  };
  const kube = newKube();
  await eventually(() => kube.list(SERVICE_L2_STATUSES, { namespace: NS }).then(() => true), 5000, 'the ServiceL2Status CRD to be served');
  return {
    api,
    kube,
    newKube,
    async stop() {
      for (const c of clients) c.close();
      await api.stop();
    },
  };
}

let nsCount = 0;
/** A fresh namespace for one test's Services. */
export async function namespace(c: Cluster): Promise<string> {
  const ns = `t${++nsCount}`;
  await c.kube.create(RESOURCES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  return ns;
}

export const PODS = { group: '', version: 'v1', plural: 'pods', namespaced: true } as const;
export const NODES = { group: '', version: 'v1', plural: 'nodes', namespaced: false } as const;
export const ENDPOINT_SLICES = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true } as const;

/** A Node as the kubelet reports it. */
export function nodeObject(name: string, options: { ready?: boolean; labels?: Record<string, string>; address?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(options.labels ?? {}) } },
    status: {
      conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True', lastHeartbeatTime: new Date().toISOString() }],
      addresses: [
        { type: 'InternalIP', address: options.address ?? '192.0.2.1' },
        { type: 'Hostname', address: name },
      ],
    },
  };
}

/** Creates a Node, or changes its labels and status (as the kubelet and an operator would). */
export async function putNode(c: Cluster, name: string, options: Parameters<typeof nodeObject>[1] = {}): Promise<void> {
  const obj = nodeObject(name, options);
  if (!(await c.kube.get(NODES, name))) {
    await c.kube.create(NODES, obj); // the kubelet registers with its status
    return;
  }
  await c.kube.patch(NODES, name, undefined, { metadata: { labels: obj.metadata.labels } });
  await c.kube.patch(NODES, name, undefined, { status: obj.status }, { subresource: 'status' });
}

/** The configuration: one pool and an L2Advertisement selecting it (interfaces as given). */
export async function configure(c: Cluster, options: { cidr?: string; interfaces?: string[]; nodeSelectors?: unknown[] } = {}): Promise<void> {
  await c.kube.create(CONFIG.pools, {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'IPAddressPool',
    metadata: { name: 'lan', namespace: NS },
    spec: { addresses: [options.cidr ?? '203.0.113.0/24'] },
  });
  await c.kube.create(CONFIG.l2, {
    apiVersion: 'metallb.io/v1beta1',
    kind: 'L2Advertisement',
    metadata: { name: 'lan', namespace: NS },
    spec: {
      ipAddressPools: ['lan'],
      ...(options.interfaces ? { interfaces: options.interfaces } : {}),
      ...(options.nodeSelectors ? { nodeSelectors: options.nodeSelectors } : {}),
    },
  });
}

export const CONFIG = {
  pools: { group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true },
  l2: { group: 'metallb.io', version: 'v1beta1', plural: 'l2advertisements', namespaced: true },
} as const;

/** A LoadBalancer Service with its IP(s) in status, as the controller leaves it. */
export async function lbService(
  c: Cluster,
  ns: string,
  name: string,
  ips: string[],
  options: { policy?: 'Cluster' | 'Local'; class?: string; endpointsOn?: string[] | null } = {},
): Promise<KubeObject> {
  await c.kube.create(RESOURCES.services, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
      ...(options.policy ? { externalTrafficPolicy: options.policy } : {}),
      ...(options.class ? { loadBalancerClass: options.class } : {}),
    },
  });
  if (options.endpointsOn !== null) await endpoints(c, ns, name, options.endpointsOn ?? ['elsewhere']);
  return c.kube.patch(RESOURCES.services, name, ns, { status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } } }, { subresource: 'status' });
}

/** The Service's EndpointSlice: one ready endpoint per node named (replaced when it exists). */
export async function endpoints(c: Cluster, ns: string, service: string, nodes: string[], ready = true): Promise<void> {
  const name = `${service}-slice`;
  const body: KubeObject = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: nodes.map((n, i) => ({ addresses: [`10.0.0.${i + 1}`], nodeName: n, conditions: { ready } })),
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
  const existing = await c.kube.get(ENDPOINT_SLICES, name, ns);
  if (existing) await c.kube.replace(ENDPOINT_SLICES, { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } });
  else await c.kube.create(ENDPOINT_SLICES, body);
}

/** A speaker that records what it is told. */
export class FakeSpeaker {
  current = new Map<string, { interfaces: readonly string[] }>();
  /** The IPs of every set received, in order. */
  readonly history: string[][] = [];
  calls = 0;
  closed = false;

  setAnnouncements(m: ReadonlyMap<string, { readonly interfaces: readonly string[] }>): void {
    if (this.closed) throw new Error('setAnnouncements after close');
    this.current = new Map(m);
    this.history.push([...m.keys()].sort());
    this.calls++;
  }

  close(): void {
    this.closed = true;
    this.current = new Map();
  }

  get ips(): string[] {
    return [...this.current.keys()].sort();
  }
}

/** A gossip membership whose live set the test decides. */
export class FakeMembership implements MembershipLike {
  private live: Set<string>;
  private readonly listeners = new Set<(alive: Set<string>) => void>();
  seeds: readonly { name: string; address: string; port?: number }[] = [];
  started = false;
  left = false;

  constructor(alive: string[]) {
    this.live = new Set(alive);
  }

  start(): Promise<void> {
    this.started = true;
    return Promise.resolve();
  }

  stop(options: { leave?: boolean } = {}): Promise<void> {
    this.left = options.leave !== false;
    return Promise.resolve();
  }

  alive(): Set<string> {
    return new Set(this.live);
  }

  setSeeds(seeds: readonly { name: string; address: string; port?: number }[]): void {
    this.seeds = seeds;
  }

  on(_event: 'change', listener: (alive: Set<string>) => void): this {
    this.listeners.add(listener);
    return this;
  }

  set(alive: string[]): void {
    this.live = new Set(alive);
    for (const l of this.listeners) l(new Set(this.live));
  }
}

/** One agent, in-process. */
export interface TestAgent {
  agent: Agent;
  speaker: FakeSpeaker;
  metrics: Metrics;
  kube: KubeApi;
  stop(): Promise<void>;
}

export async function startAgent(
  c: Cluster,
  nodeName: string,
  options: { kube?: KubeApi; membership?: MembershipLike; loadBalancerClass?: string; verbose?: boolean; wait?: boolean } = {},
): Promise<TestAgent> {
  const kube = options.kube ?? c.newKube();
  // The agent's Pod, as the DaemonSet makes it: the owner of what the agent writes (the garbage
  // collector deletes objects whose owner does not exist, so it must be real).
  const podName = `agent-${nodeName}`;
  const pod =
    (await c.kube.get(PODS, podName, NS)) ??
    (await c.kube.create(PODS, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: podName, namespace: NS },
      spec: { nodeName, containers: [{ name: 'agent', image: 'metallb-ts:latest' }] },
    }));
  const speaker = new FakeSpeaker();
  const metrics = new Metrics();
  const agent = new Agent({
    kube,
    nodeName,
    namespace: NS,
    speaker,
    metrics,
    debounceMs: 5,
    joinTimeoutMs: 200,
    owner: { apiVersion: 'v1', kind: 'Pod', name: podName, uid: pod.metadata.uid ?? '' },
    ...(options.membership ? { membership: options.membership } : {}),
    ...(options.loadBalancerClass ? { loadBalancerClass: options.loadBalancerClass } : {}),
    log: options.verbose || process.env.AGENT_TEST_VERBOSE ? makeLogger('debug', (t) => process.stderr.write(`[${nodeName}] ${t}`)) : silentLogger,
  });
  const started = agent.start();
  if (options.wait ?? true) await started;
  else started.catch(() => undefined);
  return { agent, speaker, metrics, kube, stop: () => agent.stop() };
}

/** The ServiceL2Status objects of a Service. */
export async function statusesOf(c: Cluster, ns: string, name: string): Promise<KubeObject[]> {
  const list = await c.kube.list(SERVICE_L2_STATUSES, { namespace: NS, labelSelector: `metallb.io/service-namespace=${ns},metallb.io/service-name=${name}` });
  return list.items;
}

/** Waits until exactly one ServiceL2Status exists for the Service, on `node`; returns it. */
export function statusOn(c: Cluster, ns: string, name: string, node: string, timeoutMs = 10_000): Promise<KubeObject> {
  return eventually(
    async () => {
      const items = await statusesOf(c, ns, name);
      const o = items[0];
      return items.length === 1 && (o?.status as { node?: string } | undefined)?.node === node ? o : undefined;
    },
    timeoutMs,
    `${ns}/${name}'s ServiceL2Status on ${node}`,
  );
}

/** The value of one series of the agent's metrics (undefined when absent). */
export async function metricValue(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = await m.registry.getSingleMetric(name)?.get();
  // A histogram's series: its _count.
  const wanted = metric?.values.some((x) => (x as { metricName?: string }).metricName === `${name}_count`) ? `${name}_count` : undefined;
  const v = metric?.values.find(
    (x) => Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val) && (wanted === undefined || (x as { metricName?: string }).metricName === wanted),
  );
  return v?.value;
}
