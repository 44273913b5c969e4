/**
 * The plugin's way to the cluster: the kubeconfig resolved as kubectl resolves it (--kubeconfig,
 * else every file of KUBECONFIG merged with the first one winning, else ~/.kube/config;
 * --context; the context's namespace), a KubeApi over it, and every failure turned into one line
 * a user can act on (unreachable, forbidden with the verb and resource, credentials refused).
 */
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { rootCertificates } from 'node:tls';
import { ClientKube, CONFIG_KINDS, KubeError, RESOURCES, type KubeApi, type KubeObject, type ListOptions, type Resource } from '../kube/client.js';
import { readConfigObjects, readRecordedConfig, parseObjects } from '../kube/config.js';
import { prepareClaims, type NamespaceInfo, type Snapshot } from '../core/diagnose/index.js';
import type { ConfigResult } from '../core/config/index.js';
import { UserError } from './base.js';
import { chooseContext, kubeconfigFiles, lightKubeConfig, needsClientNode, readKubeconfig } from './kubeconfig.js';

export const SERVICE_L2_STATUSES: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'servicel2statuses', namespaced: true };
export const ENDPOINT_SLICES: Resource = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true };
/** MetalLB's per node and peer BGP session status (group metallb.io; frr-k8s has the same kind in frrk8s.metallb.io). */
export const BGP_SESSION_STATES: Resource = { group: 'metallb.io', version: 'v1beta1', plural: 'bgpsessionstates', namespaced: true };
export const NODES: Resource = { group: '', version: 'v1', plural: 'nodes', namespaced: false };

/** How to reach the cluster, from the common flags. */
export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
  /** Per request, milliseconds. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** A connection: the API, where it points, and the namespace `-n` defaults to. */
export interface Connection {
  kube: KubeApi & { close(): void };
  server: string;
  context: string;
  /** The context's namespace, else `default` (kubectl's rule). */
  namespace: string;
}

/**
 * The certificates of NODE_EXTRA_CA_CERTS, which plugin/bin/kubectl-metallb keeps this Node from
 * reading at start (METALLB_NODE_EXTRA_CA_CERTS then names the file), given to a connection whose
 * kubeconfig names no certificate authority, with Node's own roots: what Node would have trusted.
 * A kubeconfig's authority replaces both, in Node as here. An unreadable file is skipped, as
 * Node skips it (with a warning).
 */
export function withDeferredCAs(kc: ClientKubeConfig, env: NodeJS.ProcessEnv = process.env): ClientKubeConfig {
  const file = env.METALLB_NODE_EXTRA_CA_CERTS;
  if (!file) return kc;
  let extra: string | undefined;
  const apply = async (opts: RequestOptions): Promise<void> => {
    await kc.applyToHTTPSOptions(opts);
    if (opts.ca !== undefined || opts.rejectUnauthorized === false) return;
    try {
      extra ??= readFileSync(file, 'utf8');
    } catch {
      return;
    }
    opts.ca = [...rootCertificates, extra];
  };
  return { getCurrentCluster: () => kc.getCurrentCluster(), applyToHTTPSOptions: apply };
}

/** What ClientKube reads of a KubeConfig. */
type ClientKubeConfig = Pick<KubeConfig, 'getCurrentCluster' | 'applyToHTTPSOptions'>;

/**
 * Connect as kubectl would. Users with a token, a client certificate or a password are served by
 * our own reading of the kubeconfig (kubeconfig.ts); exec plugins, auth providers, proxies and
 * the in-cluster configuration by client-node's KubeConfig, loaded only then (it costs most of a
 * second at start).
 */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const files = kubeconfigFiles(options);
  const timeoutMs = options.timeoutMs ?? 30_000;
  // A command reads some 17 lists at once: over 4 connections, not 17 TLS handshakes.
  const maxSockets = 4;
  if (files) {
    const chosen = chooseContext(readKubeconfig(files), options.context);
    if (!needsClientNode(chosen.user, chosen.cluster)) {
      const light = lightKubeConfig(chosen.cluster, chosen.user);
      const server = light.getCurrentCluster().server;
      // ClientKube reads only getCurrentCluster() and applyToHTTPSOptions() of a KubeConfig.
      const kube = new ClientKube(withDeferredCAs(light as unknown as ClientKubeConfig) as KubeConfig, { timeoutMs, maxSockets });
      return { kube: translating(kube, server, chosen.name), server, context: chosen.name, namespace: chosen.namespace };
    }
  }
  const kc = await clientNodeConfig(files, options.context);
  const cluster = kc.getCurrentCluster()!;
  const context = kc.getContextObject(kc.currentContext);
  const kube = new ClientKube(withDeferredCAs(kc) as KubeConfig, { timeoutMs, maxSockets });
  return { kube: translating(kube, cluster.server, kc.currentContext), server: cluster.server, context: kc.currentContext, namespace: context?.namespace || 'default' };
}

/** client-node's KubeConfig over the same files (merged the same way), or the in-cluster one. */
async function clientNodeConfig(files: string[] | undefined, context: string | undefined): Promise<KubeConfig> {
  // The config module alone: the package's index loads every generated API client too.
  const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
  const kc = new KubeConfig();
  const load = (into: KubeConfig, file: string) => {
    try {
      into.loadFromFile(file);
    } catch (e) {
      throw new UserError(`cannot read kubeconfig ${file}: ${firstLine(e)}`);
    }
  };
  if (!files) kc.loadFromCluster();
  else {
    load(kc, files[0]!);
    for (const file of files.slice(1)) {
      const more = new KubeConfig();
      load(more, file);
      for (const c of more.clusters) if (!kc.clusters.some((x) => x.name === c.name)) kc.addCluster(c);
      for (const u of more.users) if (!kc.users.some((x) => x.name === u.name)) kc.addUser(u);
      for (const c of more.contexts) if (!kc.contexts.some((x) => x.name === c.name)) kc.addContext(c);
      if (!kc.currentContext && more.currentContext) kc.setCurrentContext(more.currentContext);
    }
  }
  if (context) kc.setCurrentContext(context);
  if (!kc.getCurrentCluster()) throw new UserError(`context "${kc.currentContext}" names a cluster the kubeconfig does not define`);
  return kc;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}

/** `services`, `ipclaims.metallb.io`: how kubectl names a resource. */
function resourceName(r: Resource): string {
  return r.group === '' ? r.plural : `${r.plural}.${r.group}`;
}

const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name cannot be resolved now',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed and not trusted by the kubeconfig',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate is not signed by the certificate authority of the kubeconfig',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its certificate is not signed by the certificate authority of the kubeconfig',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate is not valid for this address',
  CERT_HAS_EXPIRED: 'its certificate has expired',
};

/** One line for a failed call: what was asked, and what to do. */
export function describeFailure(e: unknown, verb: string, r: Resource, namespace: string | undefined, server: string, context: string): UserError {
  const where = r.namespaced ? (namespace !== undefined ? `in namespace ${namespace}` : 'in any namespace') : 'at the cluster scope';
  if (e instanceof UserError) return e;
  if (e instanceof KubeError) {
    if (e.code === 403)
      return new UserError(
        `forbidden: you may not ${verb} ${resourceName(r)} ${where} (context ${context}); ask for RBAC that allows it (the API server said: ${firstLine(e)})`,
        1,
        403,
      );
    if (e.code === 401) return new UserError(`unauthorized: the API server at ${server} refused the credentials of context ${context}; log in again or fix the kubeconfig`, 1, 401);
    if (e.code === 404 && verb === 'list' && r.group === 'metallb.io')
      return new UserError(
        `the cluster at ${server} (context ${context}) does not serve ${resourceName(r)}: MetalLB's CRDs are not installed there (kubectl apply -k manifests/crds), or --context points elsewhere`,
        1,
        404,
      );
    if (e.code === 504 && e.reason === 'Timeout')
      return new UserError(`the API server at ${server} did not answer in time (${verb} ${resourceName(r)}); retry, or raise --request-timeout`, 1, 504);
    return new UserError(`${verb} ${resourceName(r)} ${where}: ${e.message} (HTTP ${e.code})`, 1, e.code);
  }
  const code = (e as { code?: unknown } | undefined)?.code;
  const why = typeof code === 'string' ? NETWORK[code] : undefined;
  if (why) return new UserError(`cannot reach the cluster at ${server} (context ${context}): ${why}; is it running, and is --context/--kubeconfig right?`, 1);
  return new UserError(`cannot reach the cluster at ${server} (context ${context}): ${firstLine(e)}`, 1);
}

/** A KubeApi whose failures are one-line UserErrors naming the verb and resource. */
function translating(kube: ClientKube, server: string, context: string): KubeApi & { close(): void } {
  const wrap = async <T>(verb: string, r: Resource, namespace: string | undefined, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (e) {
      throw describeFailure(e, verb, r, namespace, server, context);
    }
  };
  return {
    get: (r, name, namespace, options) => wrap('get', r, namespace, () => kube.get(r, name, namespace, options)),
    list: (r, options) => wrap('list', r, options?.namespace, () => kube.list(r, options)),
    create: (r, obj, options) => wrap('create', r, obj.metadata.namespace, () => kube.create(r, obj, options)),
    replace: (r, obj, options) => wrap('update', r, obj.metadata.namespace, () => kube.replace(r, obj, options)),
    patch: (r, name, namespace, patch, options) => wrap('patch', r, namespace, () => kube.patch(r, name, namespace, patch, options)),
    delete: (r, name, namespace, pre, options) => wrap('delete', r, namespace, () => kube.delete(r, name, namespace, pre, options)),
    watch: (r, options, onEvent, onEnd) => wrap('watch', r, options.namespace, () => kube.watch(r, options, onEvent, onEnd)),
    close: () => kube.close(),
  };
}

/** What a command needs read. */
export interface ReadOptions {
  /** Where MetalLB runs (its configuration, ServiceL2Status). */
  metallbNamespace: string;
  /** Services (and their EndpointSlices) of one namespace; undefined: all. */
  namespace?: string;
  services?: boolean;
  endpoints?: boolean;
  nodes?: boolean;
  l2Statuses?: boolean;
  /**
   * The BGPSessionState objects. `if-allowed`: where they only add to the answer (services,
   * explain, drain), a user without permission to list them gets the rest, the sessions shown as
   * unknown, and a warning.
   */
  bgpSessions?: boolean | 'if-allowed';
  /** Where a warning goes (one line, no prefix). */
  warn?: (text: string) => void;
  namespaces?: boolean;
  /** Events about this Service. */
  eventsFor?: { namespace: string; name: string };
  /** The IPClaims (default: read). Only what the controller would do for a Service needs them. */
  claims?: boolean;
  /**
   * The claims will be mirrored into an allocator (explain's pool fits, the pools' usage): do it
   * as soon as they and the configuration are in, while the other lists are still on their way.
   * Not for a command that may never need the mirror (simulate drain: only for a waiting Service).
   */
  mirror?: boolean;
}

/** A list that reads "not installed" (404) as nothing; any other failure stands. */
async function listOrNone(kube: KubeApi, r: Resource, options: ListOptions = {}): Promise<KubeObject[]> {
  try {
    return (await kube.list(r, options)).items;
  } catch (e) {
    if (e instanceof UserError && e.status === 404) return [];
    throw e;
  }
}

/** Reads what the command needs, at once, into a Snapshot for core/diagnose. */
export async function readSnapshot(kube: KubeApi, o: ReadOptions): Promise<Snapshot> {
  const scoped = o.namespace !== undefined ? { namespace: o.namespace } : {};
  const configRead = readConfigObjects(kube, o.metallbNamespace)
    .catch((e: unknown) => {
      // readConfigObjects wraps list failures with the kind; the translated error is the cause.
      throw (e as { cause?: unknown }).cause instanceof UserError ? (e as { cause: UserError }).cause : e;
    })
    .then(parseObjects);
  const claimsRead = o.claims === false ? Promise.resolve([]) : readIPClaims(kube);
  // The configuration and the claims come in before the Services and their EndpointSlices:
  // mirror the claims while those are on their way (the mirror is most of `explain`'s work).
  const preparing = o.mirror
    ? Promise.all([configRead, claimsRead]).then(([config, claims]) => (config.errors.length === 0 && claims.length > 0 ? prepareClaims(claims, config.config.pools) : undefined))
    : Promise.resolve(undefined);
  const [config, claims, preparedClaims, services, slices, nodes, l2Statuses, namespaces, events, bgpSessions] = await Promise.all([
    configRead,
    claimsRead,
    preparing,
    o.services ? kube.list(RESOURCES.services, scoped).then((l) => l.items) : Promise.resolve([]),
    o.endpoints ? listOrNone(kube, ENDPOINT_SLICES, scoped) : Promise.resolve([]),
    o.nodes ? listOrNone(kube, NODES) : Promise.resolve([]),
    o.l2Statuses ? listOrNone(kube, SERVICE_L2_STATUSES, { namespace: o.metallbNamespace }) : Promise.resolve([]),
    o.namespaces ? readNamespaces(kube) : Promise.resolve([]),
    o.eventsFor
      ? listOrNone(kube, RESOURCES.events, { namespace: o.eventsFor.namespace, fieldSelector: `involvedObject.kind=Service,involvedObject.name=${o.eventsFor.name}` })
      : Promise.resolve([]),
    o.bgpSessions === 'if-allowed'
      ? listOrNone(kube, BGP_SESSION_STATES, { namespace: o.metallbNamespace }).catch((e: unknown) => {
          if (!(e instanceof UserError) || e.status !== 403) throw e;
          o.warn?.(`you may not list bgpsessionstates.metallb.io in namespace ${o.metallbNamespace}: BGP sessions are shown as unknown`);
          return [];
        })
      : o.bgpSessions
        ? listOrNone(kube, BGP_SESSION_STATES, { namespace: o.metallbNamespace })
        : Promise.resolve([]),
  ]);
  let lastGood: ConfigResult | undefined;
  if (config.errors.length > 0) lastGood = (await readRecordedConfig(kube, o.metallbNamespace).catch(() => undefined))?.result;
  return {
    config,
    ...(lastGood ? { lastGood } : {}),
    services,
    namespaces,
    claims,
    ...(preparedClaims && { preparedClaims }),
    endpointSlices: slices,
    nodes,
    l2Statuses,
    events,
    bgpSessions,
    now: new Date().toISOString(),
  };
}

/** The IPClaims, the controller's ledger (none when the CRD is not installed). */
export function readIPClaims(kube: KubeApi): Promise<KubeObject[]> {
  return listOrNone(kube, RESOURCES.ipClaims);
}

/** Namespaces and their labels; without permission to list them, none (only namespaceSelectors need them). */
async function readNamespaces(kube: KubeApi): Promise<NamespaceInfo[]> {
  try {
    return (await kube.list(RESOURCES.namespaces)).items.map((n) => ({ name: n.metadata.name ?? '', labels: n.metadata.labels ?? {} }));
  } catch (e) {
    if (e instanceof UserError && e.status === 403) return [];
    throw e;
  }
}

export { CONFIG_KINDS };
