/**
 * The narrow Kubernetes API the controller needs, and its implementation over client-node's
 * KubeConfig (authentication, TLS). Everything else takes a `KubeApi` in its constructor, so
 * tests can hand it a client bound to the API server double (or a FaultyKube, kube/testing.ts).
 *
 * Every request has a deadline (default 30 s, per client and per call); a watch has a
 * server-side `timeoutSeconds` (random 5-10 min, as client-go) and a client-side idle timeout
 * (default 3 min; BOOKMARKs count as activity). A request past its deadline rejects with a
 * `KubeTimeoutError` (a KubeError with code 504, reason 'Timeout') and its socket is destroyed.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export { Reflector, ReflectorStoppedError, Backoff, type ReflectorHandlers, type ReflectorOptions, type ReflectorStats, type BackoffOptions } from './reflector.js';

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

/**
 * A request that got no (complete) answer within its deadline, or a watch that stayed silent
 * for longer than its idle timeout. Code 504 and reason 'Timeout' (as the API server's own
 * timeouts), so `isKubeError(e, 504)` matches it too.
 */
export class KubeTimeoutError extends KubeError {
  constructor(message: string) {
    super(504, 'Timeout', message);
    this.name = 'KubeTimeoutError';
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

/** Per call: the deadline of this request (default: the client's, 30 s). */
export interface CallOptions {
  timeoutMs?: number;
}

/** What a watch is asked for. */
export interface WatchOptions extends ListOptions, CallOptions {
  /** Where to start; '' (or '0') means "the current state as ADDED events, then changes". */
  resourceVersion: string;
  /** Server-side end of the stream (default: random 300-600 s, as client-go's reflector). */
  timeoutSeconds?: number;
  /** Client-side: end the stream with a KubeTimeoutError after this long without a line (default: the client's, 3 min). */
  idleTimeoutMs?: number;
}

/** The API calls the controller makes, and nothing more. */
export interface KubeApi {
  get(r: Resource, name: string, namespace?: string, options?: CallOptions): Promise<KubeObject | undefined>;
  list(r: Resource, options?: ListOptions & CallOptions): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  create(r: Resource, obj: KubeObject, options?: WriteOptions & CallOptions): Promise<KubeObject>;
  /** PUT: fails with 409 Conflict when obj.metadata.resourceVersion is stale. */
  replace(r: Resource, obj: KubeObject, options?: WriteOptions & CallOptions): Promise<KubeObject>;
  /** JSON merge patch (or RFC 6902 with `json`). */
  patch(r: Resource, name: string, namespace: string | undefined, patch: unknown, options?: WriteOptions & CallOptions & { json?: boolean }): Promise<KubeObject>;
  /** Deletes; false when it did not exist. Preconditions fail with 409. */
  delete(r: Resource, name: string, namespace?: string, preconditions?: { uid?: string; resourceVersion?: string }, options?: CallOptions): Promise<boolean>;
  /**
   * Watches from `options.resourceVersion`. Resolves, with a function that stops the stream,
   * once the server has accepted the watch; rejects when it could not start (an error status,
   * a connection error, no answer within `timeoutMs`). Once started, `onEnd` is called exactly
   * once when the stream ends: without an argument when the server closed it normally
   * (timeoutSeconds), with the error otherwise (an ERROR event's Status as a KubeError, 410
   * Expired/Gone included; a broken connection; a KubeTimeoutError when idle too long). Not
   * called after the returned stop function.
   */
  watch(r: Resource, options: WatchOptions, onEvent: (type: WatchEventType, obj: KubeObject) => void, onEnd: (error?: unknown) => void): Promise<() => void>;
}

export { CONFIG_MAP_NAME, DEFAULT_NAMESPACE } from './names.js';

/** `group/version` of a resource, as an object's apiVersion. */
export function apiVersionOf(r: Resource): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
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

/** Options of a ClientKube. */
export interface ClientKubeOptions {
  /** Deadline of every request (a watch: until the server accepts it), default 30 s; a call may pass its own. */
  timeoutMs?: number;
  /** A watch that delivers nothing (no event, no BOOKMARK) for this long ends with a KubeTimeoutError; default 3 min. */
  watchIdleTimeoutMs?: number;
  /** Server-side watch timeout range in seconds, drawn at random per watch (default 300-600, as client-go). */
  watchTimeoutSeconds?: { min: number; max: number };
  /** Randomness for the watch timeout (tests). */
  random?: () => number;
  /**
   * Connections for requests other than watches, default 64. A short-lived program (the plugin)
   * asks for few: each new TLS connection costs a handshake, a burst of 17 lists cost 17.
   */
  maxSockets?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 180_000;

/**
 * KubeApi over a KubeConfig: plain REST with keep-alive connections (authentication and TLS
 * from the KubeConfig, refreshed per call), watches as streamed GETs on their own connection
 * pool (so long-lived watches never hold the sockets REST calls need).
 */
export class ClientKube implements KubeApi {
  private readonly server: URL;
  private readonly tls: boolean;
  private agent: HttpsAgent | HttpAgent | undefined;
  private watchAgent: HttpsAgent | HttpAgent | undefined;
  private readonly timeoutMs: number;
  private readonly watchIdleTimeoutMs: number;
  private readonly watchTimeoutSeconds: { min: number; max: number };
  private readonly random: () => number;
  private readonly maxSockets: number;

  constructor(
    private readonly kc: KubeConfig,
    options: ClientKubeOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    this.tls = this.server.protocol === 'https:';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.watchIdleTimeoutMs = options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? { min: 300, max: 600 };
    this.random = options.random ?? Math.random;
    this.maxSockets = options.maxSockets ?? 64;
  }

  /** Authentication headers for one request, and the agent (made on first use, with the kubeconfig's TLS material). */
  private async prepare(kind: 'rest' | 'watch'): Promise<{ headers: Record<string, string>; agent: HttpsAgent | HttpAgent }> {
    const opts: RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(opts);
    const make = (maxSockets: number) =>
      this.tls
        ? new HttpsAgent({ keepAlive: true, maxSockets, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized ?? true })
        : new HttpAgent({ keepAlive: true, maxSockets });
    const agent = kind === 'rest' ? (this.agent ??= make(this.maxSockets)) : (this.watchAgent ??= make(Infinity));
    return { headers: { ...(opts.headers as Record<string, string>) }, agent };
  }

  private async send(method: string, path: string, body: unknown, contentType: string, timeoutMs: number): Promise<{ status: number; json: unknown }> {
    const { headers: auth, agent } = await this.prepare('rest');
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { Accept: 'application/json', ...auth };
    if (payload) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = payload.length;
    }
    const url = new URL(path, this.server);
    const send = this.tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const req = send(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => settle(() => reject(e)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          settle(() => resolve({ status: res.statusCode ?? 0, json }));
        });
      });
      // The deadline covers the whole exchange, body included; the socket goes (never back to the pool).
      const timer = setTimeout(() => {
        const e = new KubeTimeoutError(`${method} ${path}: no answer within ${timeoutMs} ms`);
        settle(() => reject(e));
        req.destroy(e);
      }, timeoutMs);
      req.on('error', (e) => settle(() => reject(e)));
      req.end(payload);
    });
  }

  private async call(method: string, path: string, options: CallOptions = {}, body?: unknown, contentType = 'application/json'): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let answer: { status: number; json: unknown };
    try {
      answer = await this.send(method, path, body, contentType, timeoutMs);
    } catch (e) {
      // A keep-alive connection the server closed just as we reused it: a read is safe to send
      // again (as client-go does); a write is not, it may have been applied.
      if (method !== 'GET' || !isConnectionReset(e)) throw e;
      answer = await this.send(method, path, body, contentType, timeoutMs);
    }
    const { status, json } = answer;
    if (status >= 200 && status < 300) return json;
    throw statusError(status, json, `${method} ${path}`);
  }

  async get(r: Resource, name: string, namespace?: string, options: CallOptions = {}): Promise<KubeObject | undefined> {
    try {
      return (await this.call('GET', objectPath(r, name, namespace), options)) as KubeObject;
    } catch (e) {
      if (isKubeError(e, 404)) return undefined;
      throw e;
    }
  }

  async list(r: Resource, options: ListOptions & CallOptions = {}): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const q = query({ labelSelector: options.labelSelector, fieldSelector: options.fieldSelector });
    const list = (await this.call('GET', collectionPath(r, options.namespace) + q, options)) as { items?: KubeObject[]; metadata?: { resourceVersion?: string } };
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  async create(r: Resource, obj: KubeObject, options: WriteOptions & CallOptions = {}): Promise<KubeObject> {
    const path = collectionPath(r, obj.metadata.namespace) + query({ dryRun: options.dryRun ? 'All' : undefined });
    return (await this.call('POST', path, options, obj)) as KubeObject;
  }

  async replace(r: Resource, obj: KubeObject, options: WriteOptions & CallOptions = {}): Promise<KubeObject> {
    const path = objectPath(r, obj.metadata.name ?? '', obj.metadata.namespace, options.subresource) + query({ dryRun: options.dryRun ? 'All' : undefined });
    return (await this.call('PUT', path, options, obj)) as KubeObject;
  }

  async patch(r: Resource, name: string, namespace: string | undefined, patch: unknown, options: WriteOptions & CallOptions & { json?: boolean } = {}): Promise<KubeObject> {
    const path = objectPath(r, name, namespace, options.subresource) + query({ dryRun: options.dryRun ? 'All' : undefined });
    const type = options.json ? 'application/json-patch+json' : 'application/merge-patch+json';
    return (await this.call('PATCH', path, options, patch, type)) as KubeObject;
  }

  async delete(r: Resource, name: string, namespace?: string, preconditions?: { uid?: string; resourceVersion?: string }, options: CallOptions = {}): Promise<boolean> {
    const body = preconditions ? { apiVersion: 'v1', kind: 'DeleteOptions', preconditions } : undefined;
    try {
      await this.call('DELETE', objectPath(r, name, namespace), options, body);
      return true;
    } catch (e) {
      if (isKubeError(e, 404)) return false;
      throw e;
    }
  }

  async watch(r: Resource, options: WatchOptions, onEvent: (type: WatchEventType, obj: KubeObject) => void, onEnd: (error?: unknown) => void): Promise<() => void> {
    const { min, max } = this.watchTimeoutSeconds;
    const timeoutSeconds = options.timeoutSeconds ?? Math.floor(min + (max - min) * this.random());
    const q = query({
      watch: 'true',
      resourceVersion: options.resourceVersion || undefined,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
      labelSelector: options.labelSelector || undefined,
      fieldSelector: options.fieldSelector || undefined,
    });
    const path = collectionPath(r, options.namespace) + q;
    const startMs = options.timeoutMs ?? this.timeoutMs;
    const idleMs = options.idleTimeoutMs ?? this.watchIdleTimeoutMs;
    const { headers, agent } = await this.prepare('watch');
    const url = new URL(path, this.server);
    const send = this.tls ? httpsRequest : httpRequest;

    return new Promise((resolve, reject) => {
      let started = false;
      let ended = false;
      let failedToStart = false;
      let idle: NodeJS.Timeout | undefined;
      const end = (e?: unknown) => {
        if (ended) return;
        ended = true;
        clearTimeout(startTimer);
        if (idle) clearTimeout(idle);
        if (e !== undefined) req.destroy();
        onEnd(e);
      };
      const fail = (e: unknown) => {
        if (started || failedToStart) return;
        failedToStart = true;
        clearTimeout(startTimer);
        req.destroy();
        reject(e);
      };
      const stop = () => {
        ended = true;
        clearTimeout(startTimer);
        if (idle) clearTimeout(idle);
        req.destroy();
      };

      const req: ClientRequest = send(url, { method: 'GET', headers: { Accept: 'application/json', ...headers }, agent }, (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', fail);
          res.on('end', () => {
            let json: unknown;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              json = undefined;
            }
            fail(statusError(res.statusCode ?? 0, json, `watch ${path}`));
          });
          return;
        }
        if (failedToStart) {
          res.destroy();
          return;
        }
        started = true;
        clearTimeout(startTimer);
        const quiet = () => end(new KubeTimeoutError(`watch ${path}: nothing received for ${idleMs} ms`));
        idle = setTimeout(quiet, idleMs);
        resolve(stop);
        let buffer = '';
        const line = (text: string) => {
          if (ended || text.trim() === '') return;
          let event: { type?: string; object?: unknown };
          try {
            event = JSON.parse(text) as typeof event;
          } catch {
            end(new Error(`watch ${path}: undecodable event: ${text.slice(0, 200)}`));
            return;
          }
          if (event.type === 'ERROR') {
            end(statusError(500, event.object, `watch ${path}`, true));
            return;
          }
          onEvent(event.type as WatchEventType, event.object as KubeObject);
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (ended) return;
          idle?.refresh();
          buffer += chunk;
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0 && !ended) {
            const text = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            line(text);
          }
        });
        res.on('end', () => {
          line(buffer);
          buffer = '';
          end();
        });
        res.on('error', (e) => end(e));
        res.on('close', () => end(res.complete ? undefined : new Error(`watch ${path}: connection closed`)));
      });
      const startTimer = setTimeout(() => fail(new KubeTimeoutError(`watch ${path}: not accepted within ${startMs} ms`)), startMs);
      req.on('error', (e) => (started ? end(e) : fail(e)));
      req.end();
    });
  }

  /** Closes idle keep-alive connections (and open watches, which end with an error). */
  close(): void {
    this.agent?.destroy();
    this.watchAgent?.destroy();
  }
}

/** The KubeError for a non-2xx answer (or an ERROR watch event's Status, when `event`). */
function statusError(status: number, json: unknown, what: string, event = false): KubeError {
  const s = (json ?? {}) as { code?: number; reason?: string; message?: string };
  const code = event ? (s.code ?? status) : status;
  return new KubeError(code, s.reason ?? 'Unknown', s.message ?? `${what}: HTTP ${code}`);
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
