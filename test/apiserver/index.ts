/**
 * A Kubernetes API server double for integration tests: real REST over HTTP(S) on a loopback
 * port, which `@kubernetes/client-node` and the real `kubectl` use through the kubeconfig it
 * writes, with nothing but `--kubeconfig`.
 *
 * ```ts
 * const api = await startApiServer();
 * const kc = new KubeConfig();
 * kc.loadFromFile(api.kubeconfigPath);
 * // ... run the program under test against kc ...
 * await api.stop();
 * ```
 */
import type { Server } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { Admission, webhookConfigurationStrategies, type ServiceResolver, type ServiceTarget, type UserInfo } from './admission.js';
import { builtinTypes, initialObjects } from './builtins.js';
import { Controllers } from './controllers.js';
import { crdStrategy } from './crds.js';
import { FaultInjector, RequestCounter, type Faults, type RequestCounts } from './faults.js';
import { resourceNotFound } from './errors.js';
import { writeKubeconfig } from './kubeconfig.js';
import type { KubeObject } from './object.js';
import { ResourceRegistry, type ResourceType } from './resources.js';
import { normalizeObject, Rest, type RequestContext } from './rest.js';
import { Router } from './server.js';
import { DEFAULT_SERVICE_NETWORK, ServiceStrategy, type ServiceNetwork } from './services.js';
import { ObjectStore } from './store.js';
import { loopbackServingCertificate } from './tls.js';
import { WatchHub, type WatchFilter } from './watch.js';

export type { KubeObject } from './object.js';
export type { ServiceResolver, ServiceTarget, UserInfo } from './admission.js';
export { createCertificateAuthority, issueCertificate, loopbackServingCertificate } from './tls.js';
export type { Fault, FaultHandle, FaultRule, Faults, RequestCountFilter, RequestCountRow, RequestCounts, StatusFault } from './faults.js';
export type { RequestInfo, Verb } from './server.js';
export type { WatchFilter } from './watch.js';

/** Options of startApiServer. */
export interface ApiServerOptions {
  /**
   * Serve HTTPS (default) or plain HTTP. Over HTTP, requests without credentials are let in as
   * the admin (kubectl sends no bearer token over http); a wrong token is still a 401.
   */
  tls?: boolean;
  /** Where the kubeconfig and CA certificate go (default: a new temporary directory, removed on stop). */
  dir?: string;
  /** Maps a webhook's `clientConfig.service` onto a loopback address (see also `routeService`). */
  resolveService?: ServiceResolver;
  /** Port to listen on (default: any free port). */
  port?: number;
  /**
   * Further addresses to serve on, with the same port, and in the serving certificate: the lab's
   * agents run in network namespaces that reach the double at the host's address on the LAN
   * (`https://192.0.2.1:PORT`), not at 127.0.0.1. `url` and the kubeconfig stay on 127.0.0.1.
   */
  alsoListenOn?: string[];
  /** The bearer token clients must present (default: random). */
  token?: string;
  /**
   * Further identities, bearer token -> the user it authenticates as (the kubeconfig's token is
   * the admin's): for tests where webhooks must tell users apart by userInfo.
   */
  users?: Record<string, UserInfo>;
  /** Changes kept for watches and paginated lists (default 10,000). */
  historyLimit?: number;
  /** Interval of BOOKMARK events on watches that allow them (default 1,000 ms). */
  bookmarkIntervalMs?: number;
  /** Service ClusterIP ranges and node port range (documentation ranges by default). */
  serviceNetwork?: Partial<ServiceNetwork>;
  /** One line per request, for debugging. */
  log?: (line: string) => void;
}

/** Options for listing through the test store. */
export interface StoreListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/**
 * Direct access to the server's objects for tests: the same REST semantics (defaults,
 * validation, allocation, finalizers), without admission webhooks and without HTTP.
 * Objects are identified by apiVersion and kind, as in manifests.
 */
export interface TestStore {
  /** The raw object store (revisions, history, compaction). */
  readonly raw: ObjectStore;
  get(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined;
  list(apiVersion: string, kind: string, options?: StoreListOptions): KubeObject[];
  create(obj: KubeObject): Promise<KubeObject>;
  /** Replaces the object (unconditionally unless it carries a resourceVersion). */
  update(obj: KubeObject): Promise<KubeObject>;
  /** Replaces the object's status through the status subresource. */
  updateStatus(obj: KubeObject): Promise<KubeObject>;
  /** Applies a JSON merge patch. */
  patch(apiVersion: string, kind: string, name: string, namespace: string | undefined, mergePatch: unknown): Promise<KubeObject>;
  delete(apiVersion: string, kind: string, name: string, namespace?: string): Promise<void>;
}

/** A running API server double. */
export interface ApiServer {
  /** `https://127.0.0.1:PORT` (or http). */
  url: string;
  /** A kubeconfig for kubectl and client-node. */
  kubeconfigPath: string;
  /** PEM of the CA that signed the serving certificate (undefined without TLS). */
  caPem: string | undefined;
  /** The bearer token in the kubeconfig. */
  token: string;
  /** The directory holding the kubeconfig. */
  dir: string;
  /** Objects, without admission. */
  store: TestStore;
  /** Open watch streams. */
  readonly openWatches: number;
  /**
   * Makes every open watch end with an ERROR event carrying a 410 Gone Status, and every
   * resourceVersion before now too old to watch or continue a list from, as after etcd
   * compaction.
   */
  forceWatchExpiry(): void;
  /**
   * Compaction: every resourceVersion older than the current one becomes too old. A watch
   * from one gets a 410 Expired ERROR event ("too old resource version"); a list at one
   * (resourceVersionMatch=Exact, or a `limit` without resourceVersionMatch), or the continue
   * token of an older list, gets 410 Expired. Open watches go on, as kube-apiserver's watch
   * cache keeps them through a compaction (`forceWatchExpiry` ends them too).
   */
  expireResourceVersions(): void;
  /**
   * Ends the open watch streams (matching the filter) cleanly, as the server's timeout
   * does: the response just ends, without an ERROR event. Returns how many it ended.
   */
  closeWatches(filter?: WatchFilter): number;
  /** Failures, hangs and delays on demand (see faults.ts and the README). */
  readonly faults: Faults;
  /** Requests received, by verb, resource and User-Agent. */
  readonly requests: RequestCounts;
  /** Sets the request counts back to zero. */
  resetRequestCounts(): void;
  /** Routes a webhook Service (namespace/name:port) to a loopback address. */
  routeService(namespace: string, name: string, port: number, target: ServiceTarget): void;
  /** Resolves once background work (garbage collection, namespace and CRD cleanup) is done. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

/** The user the kubeconfig's token authenticates as. */
export const ADMIN_USER: UserInfo = { username: 'kubernetes-admin', groups: ['kubeadm:cluster-admins', 'system:authenticated'] };

/** Starts an API server double; see the file comment. */
export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const tls = options.tls ?? true;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'metallb-ts-apiserver-')));
  const token = options.token ?? randomBytes(24).toString('hex');
  const store = new ObjectStore({ historyLimit: options.historyLimit ?? 10_000 });
  const registry = new ResourceRegistry();
  const serviceStrategy = new ServiceStrategy(store, { ...DEFAULT_SERVICE_NETWORK, ...(options.serviceNetwork ?? {}) });
  for (const t of builtinTypes(serviceStrategy, { crd: crdStrategy, ...webhookConfigurationStrategies })) registry.add(t);

  const routes = new Map<string, ServiceTarget>();
  const resolveService: ServiceResolver = (ns, name, port) => routes.get(`${ns}/${name}:${port}`) ?? options.resolveService?.(ns, name, port);
  const admission = new Admission({ store, resolveService, normalize: normalizeObject });
  const rest = new Rest({ store, admission });
  const direct = (): RequestContext => ({ user: ADMIN_USER, dryRun: false, admission: false, warnings: [], fieldValidation: 'Ignore' });
  for (const o of initialObjects(new Date())) {
    const t = registry.byKind(o.apiVersion ?? '', o.kind ?? '') as ResourceType;
    await rest.create(t, o.metadata.namespace, o, direct());
  }
  const controllers = new Controllers({ store, registry, rest });
  controllers.start();

  const watches = new WatchHub(store, options.bookmarkIntervalMs ?? 1000);
  const faults = new FaultInjector();
  const requests = new RequestCounter();
  let address = '';
  const routerOptions = {
    registry,
    rest,
    watches,
    token,
    allowAnonymous: !tls,
    user: ADMIN_USER,
    serverAddress: () => address,
    faults,
    requests,
    ...(options.log ? { log: options.log } : {}),
  };
  const router = new Router(routerOptions);
  // One router per further identity: the same API, another userInfo.
  const routers = new Map(Object.entries(options.users ?? {}).map(([t, user]) => [`Bearer ${t}`, new Router({ ...routerOptions, token: t, user })]));
  const handle: Router['handle'] = (req, res) => (routers.get(req.headers.authorization ?? '') ?? router).handle(req, res);
  let caPem: string | undefined;
  let server: Server;
  let keyPair: { key: string; cert: string } | undefined;
  if (tls) {
    const { ca, serving } = loopbackServingCertificate('metallb-ts-apiserver', ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc'], options.alsoListenOn ?? []);
    caPem = ca.certPem;
    await writeFile(join(dir, 'ca.crt'), caPem);
    keyPair = { key: serving.keyPem, cert: serving.certPem };
    server = createHttpsServer(keyPair, handle);
  } else {
    server = createHttpServer(handle);
  }
  // Like kube-apiserver (Go's server closes idle connections only when told to), keep clients'
  // idle keep-alive connections open; Node's 5 s default races clients that reuse them.
  const sockets = new Set<Socket>();
  const servers = [server];
  for (const s of servers) prepare(s);
  function prepare(s: Server): void {
    s.keepAliveTimeout = 120_000;
    s.headersTimeout = 125_000;
    s.on('connection', (c: Socket) => {
      sockets.add(c);
      c.on('close', () => sockets.delete(c));
    });
  }
  const listen = (s: Server, port: number, host: string) =>
    new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => resolve());
    });
  await listen(server, options.port ?? 0, '127.0.0.1');
  const port = (server.address() as AddressInfo).port;
  for (const host of options.alsoListenOn ?? []) {
    const extra = keyPair ? createHttpsServer(keyPair, handle) : createHttpServer(handle);
    prepare(extra);
    servers.push(extra);
    await listen(extra, port, host);
  }
  address = `127.0.0.1:${port}`;
  const url = `${tls ? 'https' : 'http'}://${address}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeKubeconfig(kubeconfigPath, { server: url, token, ...(caPem ? { caPem } : {}) });

  const typeOf = (apiVersion: string, kind: string): ResourceType => {
    const t = registry.byKind(apiVersion, kind);
    if (!t) throw resourceNotFound();
    return t;
  };
  const testStore: TestStore = {
    raw: store,
    get(apiVersion, kind, name, namespace) {
      const t = typeOf(apiVersion, kind);
      const o = store.get(t.storage, t.namespaced ? namespace : undefined, name);
      return o && t.toVersion(o);
    },
    list(apiVersion, kind, opts = {}) {
      return rest.list(typeOf(apiVersion, kind), opts.namespace, opts).items;
    },
    create: (obj) => rest.create(typeOf(obj.apiVersion ?? '', obj.kind ?? ''), obj.metadata.namespace, obj, direct()),
    update: async (obj) => (await rest.update(typeOf(obj.apiVersion ?? '', obj.kind ?? ''), obj.metadata.namespace, obj.metadata.name ?? '', obj, direct())).object,
    updateStatus: async (obj) => (await rest.update(typeOf(obj.apiVersion ?? '', obj.kind ?? ''), obj.metadata.namespace, obj.metadata.name ?? '', obj, direct(), 'status')).object,
    patch: (apiVersion, kind, name, namespace, mergePatch) => rest.patch(typeOf(apiVersion, kind), namespace, name, mergePatch, 'application/merge-patch+json', direct()),
    delete: async (apiVersion, kind, name, namespace) => {
      await rest.delete(typeOf(apiVersion, kind), namespace, name, {}, direct());
    },
  };

  let stopped = false;
  return {
    url,
    kubeconfigPath,
    caPem,
    token,
    dir,
    store: testStore,
    get openWatches() {
      return watches.size;
    },
    forceWatchExpiry: () => store.compact(),
    expireResourceVersions: () => store.compact({ endWatches: false }),
    closeWatches: (filter) => watches.closeMatching(filter),
    faults,
    requests,
    resetRequestCounts: () => requests.reset(),
    routeService: (namespace, name, p, target) => {
      routes.set(`${namespace}/${name}:${p}`, target);
    },
    settle: () => controllers.settle(),
    async stop() {
      if (stopped) return;
      stopped = true;
      await controllers.stop();
      faults.stop();
      watches.closeAll();
      admission.close();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              for (const c of sockets) c.destroy();
            }),
        ),
      );
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
