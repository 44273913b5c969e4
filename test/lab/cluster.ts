/**
 * metallb-ts whole on the lab (root): the API server double with the manifests, a real controller,
 * and a real agent (`dist/agent/main.js`) in each node's network namespace, reaching the double at
 * the host's LAN address with the agent's ServiceAccount, gossiping with the key the controller
 * made. The client namespace asks with the real tools (arping, ndisc6, ping, tcpdump).
 *
 * No kubelet or kube-proxy runs: endpoints are EndpointSlices written as the endpoint controller
 * would, and each node accepts traffic for the pool (an AnyIP route on lo, with arp_ignore=1 so
 * that the kernel itself never answers ARP for it), which is what kube-proxy's rules would do.
 * Only the agent answers ARP/NDP for a Service IP.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClientKube, RESOURCES, type KubeObject } from '../../kube/client.js';
import { MEMBERLIST_SECRET, MEMBERLIST_SECRET_KEY } from '../../kube/memberlist.js';
import { eventually, kubeConfigFor } from '../apiserver/testing.js';
import { AgentProcess } from '../agent/process.js';
import { E2ECluster, ingressIPs, NAMESPACE, type ControllerProcess } from '../e2e/support.js';
import { HOST4, Lab, type LabHost } from './lab.js';

export const POOL4 = '203.0.113.0/28';
export const POOL6 = '2001:db8:100::/120';
const NODES = { group: '', version: 'v1', plural: 'nodes', namespaced: false } as const;
const POOLS = { group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true } as const;
const L2ADS = { group: 'metallb.io', version: 'v1beta1', plural: 'l2advertisements', namespaced: true } as const;
export const ENDPOINT_SLICES = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true } as const;
const MEMBERLIST_PORT = 7946;

export interface LabClusterOptions {
  nodes?: string[];
  /** Controller replicas (default 1). */
  controllers?: number;
  /** Each controller process, as soon as it is spawned (`npm start` prefixes its logs). */
  onController?: (p: ControllerProcess) => void;
  /** Lines from the agents, for `npm start` (default: kept in each process's output only). */
  log?: (who: string, line: string) => void;
}

/** A Node as the kubelet reports it, at its lab address. */
export function nodeObject(host: LabHost, ready = true): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: host.name, labels: { 'kubernetes.io/hostname': host.name } },
    status: {
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastHeartbeatTime: new Date().toISOString() }],
      addresses: [
        { type: 'InternalIP', address: host.address4 },
        { type: 'InternalIP', address: host.address6 },
        { type: 'Hostname', address: host.name },
      ],
    },
  };
}

export class LabCluster {
  readonly agents = new Map<string, AgentProcess>();
  readonly kube: ClientKube;
  private agentKubeconfig = '';
  private keyFile = '';

  private constructor(
    readonly lab: Lab,
    readonly cluster: E2ECluster,
    private readonly options: LabClusterOptions,
  ) {
    this.kube = new ClientKube(kubeConfigFor(cluster.api));
  }

  /** Builds the lab, starts the double, a controller and an agent per node, and configures the pool. Cleans up on failure. */
  static async start(options: LabClusterOptions = {}): Promise<LabCluster> {
    const lab = await Lab.create({ nodes: options.nodes ?? ['node-1', 'node-2', 'node-3'], clientOnLink: ['203.0.113.0/24', '2001:db8:100::/64'] });
    let cluster: E2ECluster | undefined;
    let lc: LabCluster | undefined;
    try {
      for (const n of lab.nodes) {
        // kube-proxy's part: the node takes traffic for Service IPs, and its kernel answers no ARP for them.
        // (/proc/sys/net is the namespace's own; no dependency on procps' sysctl)
        await lab.exec(n, 'sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore && echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_ignore']);
        await lab.exec(n, 'ip', ['route', 'add', 'local', POOL4, 'dev', 'lo']);
        await lab.exec(n, 'ip', ['-6', 'route', 'add', 'local', POOL6, 'dev', 'lo']);
      }
      // ClusterIPs apart from the LAN and the pool, so that no address means two things.
      cluster = await E2ECluster.start({ alsoListenOn: [HOST4], serviceCidr: '203.0.113.128/25' });
      lc = new LabCluster(lab, cluster, options);
      const controllers: ControllerProcess[] = [];
      for (let i = 0; i < (options.controllers ?? 1); i++) {
        const p = await cluster.startController([], { identity: `controller-${i}`, wait: false });
        options.onController?.(p);
        controllers.push(p);
      }
      await Promise.all(controllers.map((p) => p.waitUntil(() => p.ready && p.metricsPort !== undefined, 'ready', 30_000)));
      await cluster.leader();
      for (const n of lab.nodes) await lc.kube.create(NODES, nodeObject(n));
      await lc.kube.create(POOLS, {
        apiVersion: 'metallb.io/v1beta1',
        kind: 'IPAddressPool',
        metadata: { name: 'demo', namespace: NAMESPACE },
        spec: { addresses: [POOL4, POOL6] },
      });
      await lc.kube.create(L2ADS, { apiVersion: 'metallb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'demo', namespace: NAMESPACE } });
      const secret = await eventually(() => lc!.kube.get(RESOURCES.secrets, MEMBERLIST_SECRET, NAMESPACE), 10_000, 'the controller to create the memberlist Secret');
      lc.keyFile = join(cluster.api.dir, 'memberlist-secretkey');
      await writeFile(lc.keyFile, Buffer.from((secret.data as Record<string, string>)[MEMBERLIST_SECRET_KEY] ?? '', 'base64'), { mode: 0o600 });
      lc.agentKubeconfig = await cluster.agentKubeconfig(`https://${HOST4}:${new URL(cluster.api.url).port}`);
      await Promise.all(lab.nodes.map((n) => lc!.startAgent(n.name)));
      return lc;
    } catch (e) {
      if (lc) await lc.stop();
      else {
        await cluster?.stop();
        await lab.destroy();
      }
      throw e;
    }
  }

  /** Starts (or restarts) the agent of a node in its namespace and waits until it is ready. */
  async startAgent(node: string): Promise<AgentProcess> {
    const host = this.lab.host(node);
    const old = this.agents.get(node);
    if (old?.alive) throw new Error(`the agent of ${node} is running`);
    const args = [
      `--kubeconfig=${this.agentKubeconfig}`,
      `--node-name=${node}`,
      `--namespace=${NAMESPACE}`,
      `--metrics-bind-address=${host.address4}`,
      '--metrics-port=7472',
      `--memberlist-key-file=${this.keyFile}`,
      `--memberlist-bind-address=${host.address4}`,
      `--memberlist-port=${MEMBERLIST_PORT}`,
    ];
    const log = this.options.log;
    const p = new AgentProcess(node, args, {
      netns: host.netns,
      metricsHost: host.address4,
      env: { METALLB_ML_SECRET_KEY: '', METALLB_ML_SECRET_KEY_PATH: '', POD_IP: '', HOST_IP: '', NODE_NAME: '' },
      ...(log ? { prefix: (line: string) => log(node, line) } : {}),
    });
    this.agents.set(node, p);
    await p.waitUntil(() => p.ready, 'ready', 30_000);
    return p;
  }

  /** A LoadBalancer Service (through the webhooks) and its EndpointSlice with a ready endpoint on each of `endpointsOn`; resolves with its IPs. */
  async createService(
    name: string,
    options: { namespace?: string; local?: boolean; endpointsOn?: string[]; dualStack?: boolean; family?: 'IPv4' | 'IPv6' } = {},
  ): Promise<string[]> {
    const namespace = options.namespace ?? 'default';
    const families = options.dualStack ? ['IPv4', 'IPv6'] : [options.family ?? 'IPv4'];
    await this.kube.create(RESOURCES.services, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: {
        type: 'LoadBalancer',
        selector: { app: name },
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
        ipFamilies: families,
        ipFamilyPolicy: options.dualStack ? 'RequireDualStack' : 'SingleStack',
        ...(options.local ? { externalTrafficPolicy: 'Local' } : {}),
      },
    });
    await this.setEndpoints(name, options.endpointsOn ?? this.lab.nodes.map((n) => n.name), namespace);
    return eventually(
      async () => {
        const ips = ingressIPs((await this.kube.get(RESOURCES.services, name, namespace)) as never);
        return ips.length === families.length ? ips : undefined;
      },
      10_000,
      `${name} to get its IPs`,
    );
  }

  /** The Service's EndpointSlice: one ready endpoint on each node named (none: no endpoint at all). */
  async setEndpoints(service: string, nodes: string[], namespace = 'default'): Promise<void> {
    const slice: KubeObject = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${service}-lab`, namespace, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      endpoints: nodes.map((node, i) => ({ addresses: [`192.0.2.${10 + i}`], conditions: { ready: true, serving: true, terminating: false }, nodeName: node })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    };
    const existing = await this.kube.get(ENDPOINT_SLICES, slice.metadata.name as string, namespace);
    if (existing) await this.kube.replace(ENDPOINT_SLICES, { ...slice, metadata: { ...slice.metadata, resourceVersion: existing.metadata.resourceVersion } });
    else await this.kube.create(ENDPOINT_SLICES, slice);
  }

  /** The MACs that answered `count` ARP requests from the client (Habets' arping). */
  async arping(ip: string, count = 3): Promise<string[]> {
    const out = await this.lab
      .exec(this.lab.client, 'arping', ['-c', String(count), '-W', '0.3', '-i', 'eth0', ip])
      .catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    return [...out.stdout.matchAll(new RegExp(`bytes from ([0-9a-f:]{17}) \\(${ip.replaceAll('.', '\\.')}\\)`, 'g'))].map((m) => m[1]!);
  }

  /** The MAC ndisc6 learns for an IPv6 address from the client, if anyone answers. */
  async ndisc6(ip: string): Promise<string | undefined> {
    const out = await this.lab.exec(this.lab.client, 'ndisc6', ['-r', '3', '-w', '300', ip, 'eth0']).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    return /Target link-layer address: ([0-9A-Fa-f:]{17})/.exec(out.stdout)?.[1]?.toLowerCase();
  }

  /** The node whose eth0 has this MAC. */
  nodeOfMac(mac: string | undefined): string | undefined {
    return this.lab.nodes.find((n) => n.mac === mac)?.name;
  }

  /** Which node answers ARP for `ip` now (undefined: nobody; throws if two do). */
  async owner(ip: string): Promise<string | undefined> {
    const macs = new Set(ip.includes(':') ? [await this.ndisc6(ip)].filter((m): m is string => m !== undefined) : await this.arping(ip, 2));
    if (macs.size > 1) throw new Error(`${ip} answered by ${[...macs].map((m) => this.nodeOfMac(m) ?? m).join(' and ')}`);
    return this.nodeOfMac([...macs][0]);
  }

  /** Stops the agents, the controller, the double and the lab. Never throws. */
  async stop(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop().catch(() => null)));
    this.kube.close();
    await this.cluster.stop();
    await this.lab.destroy();
  }
}
