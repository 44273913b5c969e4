/**
 * What the cluster commands return: read the cluster (cluster.ts), hand the objects to
 * core/diagnose, and give back data for a presenter. No printing here.
 */
import {
  analyze,
  closest,
  peerRows,
  type PeersReport,
  explainService,
  poolNames,
  poolRows,
  serviceRows,
  simulateDrain,
  type Analysis,
  type DrainReport,
  type Explanation,
  type PoolRow,
  type ServiceRow,
} from '../../core/diagnose/index.js';
import type { KubeApi } from '../../kube/client.js';
import { UserError } from '../base.js';
import { readIPClaims, readSnapshot, type ReadOptions } from '../cluster.js';

/** Which configuration the answer is computed from, and what is wrong with the current one. */
export interface ConfigurationNote {
  /** `current`; `last-good`: the current one is invalid and the components run on the last good one; `none`: invalid and nothing recorded. */
  source: 'current' | 'last-good' | 'none';
  errors: string[];
}

function note(a: Analysis): ConfigurationNote {
  return { source: a.configSource, errors: a.configErrors };
}

export interface PoolsReport {
  configuration: ConfigurationNote;
  pools: PoolRow[];
}

export async function listPools(kube: KubeApi, o: { metallbNamespace: string; name?: string; namespace?: string; verbose: boolean }): Promise<PoolsReport> {
  const a = analyze(await readSnapshot(kube, { metallbNamespace: o.metallbNamespace, namespaces: o.namespace !== undefined, mirror: true }));
  const pools = poolRows(a, { ...(o.name !== undefined && { name: o.name }), ...(o.namespace !== undefined && { namespace: o.namespace }), verbose: o.verbose });
  if (o.name !== undefined && pools.length === 0) {
    const names = poolNames(a);
    if (!names.includes(o.name)) {
      const near = closest(o.name, names);
      throw new UserError(
        `pool "${o.name}" not found${near.length > 0 ? `; did you mean ${near.join(', ')}?` : ''} (pools: ${names.length > 0 ? names.join(', ') : 'none configured'})`,
      );
    }
  }
  return { configuration: note(a), pools };
}

export interface ServicesReport {
  configuration: ConfigurationNote;
  /** The namespace listed, or null for all. */
  namespace: string | null;
  services: ServiceRow[];
}

const everything = (metallbNamespace: string, namespace: string | undefined, warn?: (text: string) => void): ReadOptions => ({
  metallbNamespace,
  ...(namespace !== undefined && { namespace }),
  services: true,
  endpoints: true,
  nodes: true,
  l2Statuses: true,
  namespaces: true,
  // What the BGP speakers publish: whether the sessions carrying a Service's routes are up.
  bgpSessions: 'if-allowed',
  ...(warn && { warn }),
});

export async function listServices(kube: KubeApi, o: { metallbNamespace: string; namespace?: string; warn?: (text: string) => void }): Promise<ServicesReport> {
  const scope = o.namespace !== undefined ? { namespace: o.namespace } : {};
  // The IPClaims (the controller's ledger, the largest list) tell only what the controller would
  // do for a Service that is not ok: a healthy list is judged from the Services, their
  // EndpointSlices and the configuration, as the agents judge them. Read them when one is not.
  const snapshot = await readSnapshot(kube, { ...everything(o.metallbNamespace, o.namespace, o.warn), claims: false });
  let a = analyze(snapshot);
  let services = serviceRows(a, scope);
  if (services.some((s) => s.status !== 'ok')) {
    a = analyze({ ...snapshot, claims: await readIPClaims(kube) });
    services = serviceRows(a, scope);
  }
  return { configuration: note(a), namespace: o.namespace ?? null, services };
}

export interface ExplainReport extends Explanation {
  configuration: ConfigurationNote;
  /** When the snapshot was read (ISO), for the age of events. */
  readAt: string;
}

/**
 * Explain one Service. Services of every namespace are read (sharing can span namespaces);
 * without permission for that, those of its namespace.
 */
export async function explainOne(kube: KubeApi, o: { metallbNamespace: string; namespace: string; name: string; warn?: (text: string) => void }): Promise<ExplainReport> {
  // Read twice when Services of every namespace are forbidden: each warning once.
  const warned = new Set<string>();
  const warn = (text: string): void => {
    if (warned.has(text)) return;
    warned.add(text);
    o.warn?.(text);
  };
  // The pool fits are the allocator's dry run over the mirrored claims.
  const base = { ...everything(o.metallbNamespace, undefined, warn), eventsFor: { namespace: o.namespace, name: o.name }, mirror: true };
  const snapshot = await readSnapshot(kube, base).catch((e: unknown) => {
    if (e instanceof UserError && e.status === 403) return readSnapshot(kube, { ...base, namespace: o.namespace });
    throw e;
  });
  const a = analyze(snapshot);
  const e = explainService(a, o.namespace, o.name);
  if (e) return { ...e, configuration: note(a), readAt: snapshot.now ?? new Date().toISOString() };

  // Not one of ours: say what it is, or which names are close.
  const svc = snapshot.services.find((s) => {
    const m = (s as { metadata?: { name?: string; namespace?: string } }).metadata;
    return m?.name === o.name && m.namespace === o.namespace;
  }) as { spec?: { type?: string; loadBalancerClass?: string } } | undefined;
  if (svc) {
    const type = svc.spec?.type ?? 'ClusterIP';
    if (type !== 'LoadBalancer') throw new UserError(`${o.namespace}/${o.name} is a ${type} Service: MetalLB gives addresses only to Services of type LoadBalancer`);
    throw new UserError(`${o.namespace}/${o.name} has spec.loadBalancerClass ${svc.spec?.loadBalancerClass ?? ''}: another load-balancer implementation handles it, not MetalLB`);
  }
  const inNamespace = snapshot.services.flatMap((s) => {
    const m = (s as { metadata?: { name?: string; namespace?: string } }).metadata;
    return m?.namespace === o.namespace && m.name ? [m.name] : [];
  });
  const near = closest(o.name, inNamespace);
  const elsewhere = snapshot.services.flatMap((s) => {
    const m = (s as { metadata?: { name?: string; namespace?: string } }).metadata;
    return m?.name === o.name && m.namespace ? [m.namespace] : [];
  });
  const hint =
    near.length > 0
      ? `; did you mean ${near.join(', ')}?`
      : elsewhere.length > 0
        ? `; it exists in namespace ${elsewhere.join(', ')} (use -n)`
        : ` (kubectl metallb services -n ${o.namespace} lists them)`;
  throw new UserError(`service "${o.name}" not found in namespace ${o.namespace}${hint}`);
}

export interface DrainResult extends DrainReport {
  configuration: ConfigurationNote;
}

export async function drainNode(kube: KubeApi, o: { metallbNamespace: string; node: string; warn?: (text: string) => void }): Promise<DrainResult> {
  const a = analyze(await readSnapshot(kube, everything(o.metallbNamespace, undefined, o.warn)));
  const report = simulateDrain(a, o.node);
  if (!report.known) {
    const near = closest(
      o.node,
      a.nodes.map((n) => n.name),
    );
    throw new UserError(`node "${o.node}" not found${near.length > 0 ? `; did you mean ${near.join(', ')}?` : ''} (kubectl get nodes)`);
  }
  return { ...report, configuration: note(a) };
}

export interface PeersResult extends PeersReport {
  configuration: ConfigurationNote;
  readAt: string;
}

/** Every node x peer BGP session the configuration asks for, with what the speakers published. */
export async function listPeers(kube: KubeApi, o: { metallbNamespace: string; node?: string }): Promise<PeersResult> {
  // The sessions need the configuration, the nodes and what the speakers publish: not the IPClaims.
  const snapshot = await readSnapshot(kube, { metallbNamespace: o.metallbNamespace, nodes: true, bgpSessions: true, claims: false });
  const a = analyze(snapshot);
  if (o.node !== undefined && !a.nodes.some((n) => n.name === o.node)) {
    const near = closest(
      o.node,
      a.nodes.map((n) => n.name),
    );
    throw new UserError(`node "${o.node}" not found${near.length > 0 ? `; did you mean ${near.join(', ')}?` : ''} (kubectl get nodes)`);
  }
  const report = peerRows(a.config, a.nodes, snapshot.bgpSessions ?? [], o.node !== undefined ? { node: o.node } : {});
  return { ...report, configuration: note(a), readAt: snapshot.now ?? new Date().toISOString() };
}
