/**
 * The narrow Kubernetes API the controller needs, and its implementation over client-node's
 * KubeConfig (authentication, TLS) and Watch. Everything else in webhook/ takes a `KubeApi` in
 * its constructor, so tests can hand it a client bound to the API server double.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { Watch, type KubeConfig } from '@kubernetes/client-node';

/** Which REST collection an object lives in. */
export interface Resource {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

/** Any object as the API returns it. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** A watch event; BOOKMARK carries only a resourceVersion. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

/** A failed API call: the HTTP code and the Status reason (AlreadyExists, Conflict, NotFound, ...). */
export class KubeError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

/** Whether `e` is an API error with this HTTP code (409 covers both AlreadyExists and Conflict). */
export function isKubeError(e: unknown, code: number, reason?: string): e is KubeError {
  return e instanceof KubeError && e.code === code && (reason === undefined || e.reason === reason);
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WriteOptions {
  subresource?: 'status';
  dryRun?: boolean;
}

/** The API calls the controller makes, and nothing more. */
export interface KubeApi {
  get(r: Resource, name: string, namespace?: string): Promise<KubeObject | undefined>;
  list(r: Resource, options?: ListOptions): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  create(r: Resource, obj: KubeObject, options?: WriteOptions): Promise<KubeObject>;
  /** PUT: fails with 409 Conflict when obj.metadata.resourceVersion is stale. */
  replace(r: Resource, obj: KubeObject, options?: WriteOptions): Promise<KubeObject>;
  /** JSON merge patch (or RFC 6902 with `json`). */
  patch(r: Resource, name: string, namespace: string | undefined, patch: unknown, options?: WriteOptions & { json?: boolean }): Promise<KubeObject>;
  /** Deletes; false when it did not exist. Preconditions fail with 409. */
  delete(r: Resource, name: string, namespace?: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<boolean>;
  /**
   * Watches from `resourceVersion`; `onEnd` is called once when the stream ends (error or not).
   * Returns a function that stops it.
   */
  watch(
    r: Resource,
    options: ListOptions & { resourceVersion: string },
    onEvent: (type: WatchEventType, obj: KubeObject) => void,
    onEnd: (error?: unknown) => void,
  ): Promise<() => void>;
}

/** The resources the controller uses. */
export const RESOURCES = {
  services: { group: '', version: 'v1', plural: 'services', namespaced: true },
  namespaces: { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', namespaced: true },
  secrets: { group: '', version: 'v1', plural: 'secrets', namespaced: true },
  events: { group: '', version: 'v1', plural: 'events', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true },
  ipClaims: { group: 'metallb.io', version: 'v1beta1', plural: 'ipclaims', namespaced: false },
  configurationStates: { group: 'metallb.io', version: 'v1beta1', plural: 'configurationstates', namespaced: true },
} as const satisfies Record<string, Resource>;

/** The metallb.io configuration kinds, by kind. */
export const CONFIG_KINDS: Readonly<Record<string, Resource>> = {
  IPAddressPool: { group: 'metallb.io', version: 'v1beta1', plural: 'ipaddresspools', namespaced: true },
  L2Advertisement: { group: 'metallb.io', version: 'v1beta1', plural: 'l2advertisements', namespaced: true },
  BGPAdvertisement: { group: 'metallb.io', version: 'v1beta1', plural: 'bgpadvertisements', namespaced: true },
  BGPPeer: { group: 'metallb.io', version: 'v1beta2', plural: 'bgppeers', namespaced: true },
  BFDProfile: { group: 'metallb.io', version: 'v1beta1', plural: 'bfdprofiles', namespaced: true },
  Community: { group: 'metallb.io', version: 'v1beta1', plural: 'communities', namespaced: true },
};

function collectionPath(r: Resource, namespace: string | undefined): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return r.namespaced && namespace !== undefined ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}` : `${base}/${r.plural}`;
}

function objectPath(r: Resource, name: string, namespace: string | undefined, subresource?: string): string {
  return `${collectionPath(r, namespace)}/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}`;
}

function query(params: Record<string, string | undefined>): string {
  const q = Object.entries(params)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
  return q ? `?${q}` : '';
}

/**
 * KubeApi over a KubeConfig: plain REST with keep-alive connections (authentication and TLS
 * from the KubeConfig, refreshed per call), watches through client-node's Watch.
 */
export class ClientKube implements KubeApi {
  private readonly server: URL;
  private agent: HttpsAgent | HttpAgent | undefined;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  private async send(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: unknown }> {
    const opts: RequestOptions = { method, headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const tls = this.server.protocol === 'https:';
    this.agent ??= tls
      ? new HttpsAgent({ keepAlive: true, maxSockets: 64, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized ?? true })
      : new HttpAgent({ keepAlive: true, maxSockets: 64 });
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { Accept: 'application/json', ...(opts.headers as Record<string, string>) };
    if (payload) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = payload.length;
    }
    const url = new URL(path, this.server);
    const send = tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  private async call(method: string, path: string, body?: unknown, contentType?: string): Promise<unknown> {
    let answer: { status: number; json: unknown };
    try {
      answer = await this.send(method, path, body, contentType);
    } catch (e) {
      // A keep-alive connection the server closed just as we reused it: a read is safe to send
      // again (as client-go does); a write is not, it may have been applied.
      if (method !== 'GET' || !isConnectionReset(e)) throw e;
      answer = await this.send(method, path, body, contentType);
    }
    const { status, json } = answer;
    if (status >= 200 && status < 300) return json;
    const s = (json ?? {}) as { reason?: string; message?: string };
    throw new KubeError(status, s.reason ?? 'Unknown', s.message ?? `${method} ${path}: HTTP ${status}`);
  }

  async get(r: Resource, name: string, namespace?: string): Promise<KubeObject | undefined> {
    try {
      return (await this.call('GET', objectPath(r, name, namespace))) as KubeObject;
    } catch (e) {
      if (isKubeError(e, 404)) return undefined;
      throw e;
    }
  }

  async list(r: Resource, options: ListOptions = {}): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const q = query({ labelSelector: options.labelSelector, fieldSelector: options.fieldSelector });
    const list = (await this.call('GET', collectionPath(r, options.namespace) + q)) as { items?: KubeObject[]; metadata?: { resourceVersion?: string } };
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  async create(r: Resource, obj: KubeObject, options: WriteOptions = {}): Promise<KubeObject> {
    const path = collectionPath(r, obj.metadata.namespace) + query({ dryRun: options.dryRun ? 'All' : undefined });
    return (await this.call('POST', path, obj)) as KubeObject;
  }

  async replace(r: Resource, obj: KubeObject, options: WriteOptions = {}): Promise<KubeObject> {
    const path = objectPath(r, obj.metadata.name ?? '', obj.metadata.namespace, options.subresource) + query({ dryRun: options.dryRun ? 'All' : undefined });
    return (await this.call('PUT', path, obj)) as KubeObject;
  }

  async patch(r: Resource, name: string, namespace: string | undefined, patch: unknown, options: WriteOptions & { json?: boolean } = {}): Promise<KubeObject> {
    const path = objectPath(r, name, namespace, options.subresource) + query({ dryRun: options.dryRun ? 'All' : undefined });
    const type = options.json ? 'application/json-patch+json' : 'application/merge-patch+json';
    return (await this.call('PATCH', path, patch, type)) as KubeObject;
  }

  async delete(r: Resource, name: string, namespace?: string, preconditions?: { uid?: string; resourceVersion?: string }): Promise<boolean> {
    const body = preconditions ? { apiVersion: 'v1', kind: 'DeleteOptions', preconditions } : undefined;
    try {
      await this.call('DELETE', objectPath(r, name, namespace), body);
      return true;
    } catch (e) {
      if (isKubeError(e, 404)) return false;
      throw e;
    }
  }

  async watch(
    r: Resource,
    options: ListOptions & { resourceVersion: string },
    onEvent: (type: WatchEventType, obj: KubeObject) => void,
    onEnd: (error?: unknown) => void,
  ): Promise<() => void> {
    const params: Record<string, string | boolean> = { resourceVersion: options.resourceVersion, allowWatchBookmarks: true };
    if (options.labelSelector) params.labelSelector = options.labelSelector;
    if (options.fieldSelector) params.fieldSelector = options.fieldSelector;
    let ended = false;
    const end = (e?: unknown) => {
      if (ended) return;
      ended = true;
      onEnd(e);
    };
    const controller = await new Watch(this.kc).watch(
      collectionPath(r, options.namespace),
      params,
      (type: string, obj: unknown) => {
        if (type === 'ERROR') {
          const s = obj as { code?: number; reason?: string; message?: string };
          end(new KubeError(s.code ?? 500, s.reason ?? 'Unknown', s.message ?? 'watch error'));
          return;
        }
        onEvent(type as WatchEventType, obj as KubeObject);
      },
      (err: unknown) => end(err ?? undefined),
    );
    return () => {
      ended = true;
      controller.abort();
    };
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent?.destroy();
  }
}

function isConnectionReset(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/** Whether resourceVersion `a` is older than `b` (numeric, as etcd's revisions; opaque ones compare as unknown = not older). */
export function olderThan(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

/**
 * Keeps a local copy of a collection: list, then watch from the list's resourceVersion; on any
 * end of the watch (410 Gone included) list again after a short pause. `onSync` runs after
 * every list with the whole collection; `onEvent` for each change.
 */
export class Reflector {
  private stopWatch: (() => void) | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private resourceVersion = '';

  constructor(
    private readonly kube: KubeApi,
    private readonly resource: Resource,
    private readonly handlers: {
      onSync: (items: KubeObject[]) => void;
      onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KubeObject) => void;
      onError?: (e: unknown) => void;
    },
    private readonly options: ListOptions = {},
  ) {}

  /** Resolves after the first list has been delivered. */
  async start(): Promise<void> {
    await this.relist();
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    const { items, resourceVersion } = await this.kube.list(this.resource, this.options);
    if (this.stopped) return;
    this.resourceVersion = resourceVersion;
    this.handlers.onSync(items);
    this.stopWatch = await this.kube.watch(
      this.resource,
      { ...this.options, resourceVersion },
      (type, obj) => {
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (type !== 'BOOKMARK') this.handlers.onEvent(type, obj);
      },
      (e) => {
        if (e) this.handlers.onError?.(e);
        this.schedule();
      },
    );
    if (this.stopped) this.stopWatch();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.relist().catch((e: unknown) => {
        this.handlers.onError?.(e);
        this.schedule();
      });
    }, 200);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopWatch?.();
  }
}
