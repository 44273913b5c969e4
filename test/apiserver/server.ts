/**
 * HTTP(S) front end: authentication (bearer token), the URL layout of the Kubernetes API
 * (`/api/v1/namespaces/NS/RESOURCE/NAME/SUBRESOURCE`, `/apis/GROUP/VERSION/...`), content
 * negotiation (JSON, Table, PartialObjectMetadata), request bodies (JSON, YAML, patches),
 * Warning headers and Status errors. Everything behind the routing is in rest.ts, watch.ts,
 * discovery.ts and tables.ts.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import type { UserInfo } from './admission.js';
import { aggregatedDiscovery, apiGroup, apiGroupList, apiResourceList, apiVersions, openApiV3GroupVersion, openApiV3Root, SERVER_VERSION } from './discovery.js';
import { ApiError, badRequest, methodNotAllowed, notAcceptable, resourceNotFound, toApiError, unauthorized, unsupportedMediaType } from './errors.js';
import { isObject, type KubeObject } from './object.js';
import { decodeProtobufObject, PROTOBUF } from './protobuf.js';
import type { ResourceRegistry, ResourceType } from './resources.js';
import { type DeleteOptions, type ListOptions, type RequestContext, type Rest } from './rest.js';
import { partialMetadata, toTable, type IncludeObject } from './tables.js';
import type { FaultInjector, RequestCounter } from './faults.js';
import type { WatchHub, WatchOutput } from './watch.js';

/** The largest request body accepted (the apiserver's limit is 3 MiB). */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** What the router needs. */
export interface RouterOptions {
  registry: ResourceRegistry;
  rest: Rest;
  watches: WatchHub;
  /** The bearer token clients must present. */
  token: string;
  /**
   * Let requests without any Authorization header through as the admin, like the insecure port
   * of old apiservers. For plain HTTP: kubectl never sends a bearer token over http.
   */
  allowAnonymous?: boolean;
  /** Who a request with the token is. */
  user: UserInfo;
  /** host:port, for /api's serverAddressByClientCIDRs. */
  serverAddress: () => string;
  /** Called with one line per request, when set (debugging). */
  log?: (line: string) => void;
  /** Injected faults, applied to resource requests after authentication. */
  faults?: FaultInjector;
  /** Counts every request. */
  requests?: RequestCounter;
}

/** The representation a client asked for. */
type Rendering = { as: 'object' } | { as: 'table'; include: IncludeObject } | { as: 'metadata' };

interface MediaRange {
  type: string;
  params: Record<string, string>;
}

function parseAccept(header: string | undefined): MediaRange[] {
  if (!header) return [{ type: '*/*', params: {} }];
  return header.split(',').map((part) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim());
    return { type: type.toLowerCase(), params: Object.fromEntries(params.map((p) => p.split('=').map((s) => s.trim()) as [string, string])) };
  });
}

/** Content negotiation over JSON renderings; undefined when nothing acceptable is offered. */
function negotiate(accept: string | undefined, collection: boolean): Rendering | undefined {
  for (const r of parseAccept(accept)) {
    const json = r.type === 'application/json' || r.type === '*/*' || r.type === 'application/*';
    if (!json) continue;
    const as = r.params.as;
    if (as === undefined) return { as: 'object' };
    if (r.params.g !== 'meta.k8s.io' || (r.params.v !== 'v1' && r.params.v !== 'v1beta1')) continue;
    if (as === 'Table') return { as: 'table', include: 'Metadata' };
    if (as === 'PartialObjectMetadata' && !collection) return { as: 'metadata' };
    if (as === 'PartialObjectMetadataList' && collection) return { as: 'metadata' };
  }
  return undefined;
}

function wantsAggregatedDiscovery(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  for (const r of parseAccept(accept)) {
    if (r.type !== 'application/json') continue;
    if (r.params.g === 'apidiscovery.k8s.io' && r.params.as === 'APIGroupDiscoveryList' && (r.params.v === 'v2' || r.params.v === 'v2beta1')) return r.params.v;
    if (r.params.as === undefined) return undefined;
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(
          new ApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the request body is too large', reason: 'RequestEntityTooLarge', code: 413 }),
        );
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Decodes a JSON, YAML or (for the kinds kubectl sends that way) protobuf body; others are a 415. */
async function decodeBody(req: IncomingMessage, allowEmpty = false): Promise<unknown> {
  const raw = await readBody(req);
  if (raw.length === 0) {
    if (allowEmpty) return undefined;
    throw badRequest('the request body is empty');
  }
  const type = mediaType(req);
  if (type === PROTOBUF) {
    try {
      return decodeProtobufObject(raw);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
    }
  }
  const text = raw.toString('utf8');
  try {
    if (type === 'application/yaml' || type === 'application/apply-patch+yaml') return parseYaml(text) as unknown;
    if (type === 'application/json' || type.endsWith('+json') || type === '') return JSON.parse(text) as unknown;
  } catch (e) {
    throw badRequest(`the body of the request could not be decoded: ${(e as Error).message}`);
  }
  throw unsupportedMediaType(['application/json', 'application/yaml']);
}

/** Warning header values: `299 - "text"`, with quotes and backslashes escaped. */
function warningHeaders(warnings: string[]): string[] {
  return [...new Set(warnings)].map((w) => `299 - "${w.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
}

/** The parsed location of a resource request. */
interface ResourcePath {
  group: string;
  version: string;
  namespace: string | undefined;
  resource: string;
  name: string | undefined;
  subresource: string;
  /** The deprecated `/watch/` path prefix. */
  legacyWatch: boolean;
}

/** Splits `/api/v1/...` or `/apis/G/V/...`; undefined for anything else. */
export function parseResourcePath(pathname: string): ResourcePath | 'groupVersion' | { group: string } | undefined {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] !== undefined) {
    group = '';
    version = parts[1];
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts[1] !== undefined) {
    if (parts[2] === undefined) return { group: parts[1] };
    group = parts[1];
    version = parts[2];
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  if (rest.length === 0) return 'groupVersion';
  let legacyWatch = false;
  if (rest[0] === 'watch') {
    legacyWatch = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  // `namespaces/NS/RESOURCE...`, except the namespace's own subresources (status, finalize).
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length > 3 || rest[0] === undefined) return undefined;
  return { group, version, namespace, resource: rest[0], name: rest[1], subresource: rest[2] ?? '', legacyWatch };
}

/** The Kubernetes verbs of resource requests. */
export const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] as const;
export type Verb = (typeof VERBS)[number];

/** What a request is, in kube-apiserver's terms (its RequestInfo). */
export interface RequestInfo {
  /** `/api/...` and `/apis/G/V/...` below a group version; false for discovery, /version, /healthz... */
  resourceRequest: boolean;
  /** The Kubernetes verb for resource requests; the lower-cased HTTP method otherwise. */
  verb: string;
  group: string;
  version: string;
  /** Plural resource name ('' for non-resource requests). */
  resource: string;
  subresource: string;
  namespace: string | undefined;
  name: string | undefined;
  /** The URL path. */
  path: string;
}

function selectedName(fieldSelector: string | null): string | undefined {
  for (const term of (fieldSelector ?? '').split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    if (m) return m[1];
  }
  return undefined;
}

/** Describes a request as kube-apiserver's RequestInfoFactory does. */
export function requestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const parsed = parseResourcePath(path);
  const base = { group: '', version: '', resource: '', subresource: '', namespace: undefined, name: undefined, path };
  if (parsed === undefined || typeof parsed === 'string' || !('resource' in parsed)) {
    return { ...base, resourceRequest: false, verb: method.toLowerCase() };
  }
  const watch = parsed.legacyWatch || query.get('watch') === 'true' || query.get('watch') === '1';
  const collection = parsed.name === undefined;
  let verb: string;
  switch (method) {
    case 'GET':
    case 'HEAD':
      verb = watch ? 'watch' : collection ? 'list' : 'get';
      break;
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = collection ? 'deletecollection' : 'delete';
      break;
    default:
      verb = method.toLowerCase();
  }
  let name = parsed.name;
  if (name === undefined && (verb === 'list' || verb === 'watch' || verb === 'deletecollection')) name = selectedName(query.get('fieldSelector'));
  return {
    resourceRequest: true,
    verb,
    group: parsed.group,
    version: parsed.version,
    resource: parsed.resource,
    subresource: parsed.subresource,
    namespace: parsed.namespace,
    name,
    path,
  };
}

function intParam(q: URLSearchParams, key: string): number | undefined {
  const v = q.get(key);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw badRequest(`invalid ${key}: ${JSON.stringify(v)}`);
  return n;
}

function boolParam(q: URLSearchParams, key: string): boolean {
  const v = q.get(key);
  return v === '1' || v === 'true';
}

/** The HTTP request handler; see the file comment. */
export class Router {
  constructor(private readonly o: RouterOptions) {}

  /** Handles one request; never throws. */
  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = Date.now();
    this.route(req, res)
      .catch((e: unknown) => {
        const err = toApiError(e);
        if (res.headersSent) {
          res.end();
          return;
        }
        this.send(res, err.code, err.status, []);
      })
      .finally(() => this.o.log?.(`${req.method ?? ''} ${req.url ?? ''} ${res.statusCode} ${Date.now() - started}ms`));
  };

  private send(res: ServerResponse, code: number, body: unknown, warnings: string[]): void {
    const payload = JSON.stringify(body);
    const headers: Record<string, string | string[] | number> = {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(payload),
      'Cache-Control': 'no-cache, private',
    };
    if (warnings.length) headers.Warning = warningHeaders(warnings);
    res.writeHead(code, headers);
    res.end(payload);
  }

  private authenticate(req: IncomingMessage): void {
    const header = req.headers.authorization;
    if (header === undefined && this.o.allowAnonymous) return;
    if (header !== `Bearer ${this.o.token}`) throw unauthorized();
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const info = requestInfo(method, path, url.searchParams);
    this.o.requests?.record(info, req.headers['user-agent']);
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (path === '/version') return this.send(res, 200, SERVER_VERSION, []);
    this.authenticate(req);
    const accept = req.headers.accept;
    if (path === '/api' || path === '/apis') {
      if (method !== 'GET') throw methodNotAllowed();
      const aggregated = wantsAggregatedDiscovery(accept);
      if (aggregated) {
        const body = JSON.stringify(aggregatedDiscovery(this.o.registry, path === '/api', aggregated));
        res.writeHead(200, { 'Content-Type': `application/json;g=apidiscovery.k8s.io;v=${aggregated};as=APIGroupDiscoveryList`, 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      return this.send(res, 200, path === '/api' ? apiVersions(this.o.serverAddress()) : apiGroupList(this.o.registry), []);
    }
    if (path === '/openapi/v3' || path.startsWith('/openapi/v3/')) return this.openApi(res, path);
    const parsed = parseResourcePath(path);
    if (parsed === undefined) throw resourceNotFound();
    if (parsed === 'groupVersion') {
      const [, , a, b] = path.split('/');
      const group = path.startsWith('/api/') ? '' : (a ?? '');
      const version = path.startsWith('/api/') ? (a ?? '') : (b ?? '');
      const list = apiResourceList(this.o.registry, group, version);
      if (!list) throw resourceNotFound();
      return this.send(res, 200, list, []);
    }
    if (!('resource' in parsed)) {
      const g = apiGroup(this.o.registry, parsed.group);
      if (!g) throw resourceNotFound();
      return this.send(res, 200, g, []);
    }
    const type = this.o.registry.find(parsed.group, parsed.version, parsed.resource);
    if (!type) throw resourceNotFound();
    if (parsed.namespace !== undefined && !type.namespaced) throw resourceNotFound();
    const sub = parsed.subresource;
    if (sub && !(sub === 'status' && type.statusSubresource) && !(sub === 'finalize' && type.storage === 'namespaces')) throw resourceNotFound();
    if (this.o.faults && !(await this.o.faults.intercept(info, req, res))) return;
    await this.resource(req, res, url.searchParams, type, parsed);
  }

  /** The OpenAPI v3 stub (see discovery.ts); v2 stays a 404. */
  private openApi(res: ServerResponse, path: string): void {
    const hash = (doc: unknown): string => createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 64).toUpperCase();
    if (path === '/openapi/v3') return this.send(res, 200, openApiV3Root(this.o.registry, hash), []);
    const rest = path.slice('/openapi/v3/'.length).split('/');
    const [group, version] = rest[0] === 'api' ? ['', rest[1] ?? ''] : rest[0] === 'apis' ? [rest[1] ?? '', rest[2] ?? ''] : ['', ''];
    const doc = version ? openApiV3GroupVersion(this.o.registry, group, version) : undefined;
    if (!doc) throw resourceNotFound();
    return this.send(res, 200, doc, []);
  }

  private context(q: URLSearchParams, warnings: string[], options: Record<string, unknown>): RequestContext {
    const dryRun = q.getAll('dryRun');
    for (const d of dryRun) if (d !== 'All') throw badRequest(`Invalid value: "${d}": supported values: "All"`);
    const fv = q.get('fieldValidation') ?? 'Warn';
    if (fv !== 'Ignore' && fv !== 'Warn' && fv !== 'Strict') throw badRequest(`Invalid value: "${fv}": supported values: "Ignore", "Strict", "Warn"`);
    if (dryRun.length) options.dryRun = dryRun;
    const fieldManager = q.get('fieldManager');
    if (fieldManager) options.fieldManager = fieldManager;
    return { user: this.o.user, dryRun: dryRun.length > 0, admission: true, warnings, fieldValidation: fv, options };
  }

  private listOptions(q: URLSearchParams): ListOptions {
    const opts: ListOptions = {};
    for (const k of ['labelSelector', 'fieldSelector', 'continue', 'resourceVersion', 'resourceVersionMatch'] as const) {
      const v = q.get(k);
      if (v !== null) opts[k] = v;
    }
    const limit = intParam(q, 'limit');
    if (limit !== undefined) opts.limit = limit;
    return opts;
  }

  private render(type: ResourceType, obj: KubeObject, rendering: Rendering): unknown {
    if (rendering.as === 'table')
      return toTable(type, [obj], { include: rendering.include, ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}) });
    if (rendering.as === 'metadata') return partialMetadata(obj);
    return obj;
  }

  private async resource(req: IncomingMessage, res: ServerResponse, q: URLSearchParams, type: ResourceType, p: ResourcePath): Promise<void> {
    const method = req.method ?? 'GET';
    const warnings: string[] = [];
    const collection = p.name === undefined;
    const includeObject = q.get('includeObject');
    const negotiated = negotiate(req.headers.accept, collection);
    if (!negotiated) throw notAcceptable();
    const rendering: Rendering =
      negotiated.as === 'table' && (includeObject === 'None' || includeObject === 'Object' || includeObject === 'Metadata') ? { as: 'table', include: includeObject } : negotiated;
    const ns = p.namespace;
    const watching = method === 'GET' && (p.legacyWatch || boolParam(q, 'watch'));

    if (watching) {
      if (p.subresource) throw methodNotAllowed();
      const opts = this.listOptions(q);
      // Watching one object is watching its collection with a name selector.
      const fieldSelector = p.name ? [opts.fieldSelector, `metadata.name=${p.name}`].filter(Boolean).join(',') : opts.fieldSelector;
      const filter = this.o.rest.filter(type, opts.labelSelector, fieldSelector);
      const output: WatchOutput = rendering;
      this.o.watches.serve(req, res, {
        type,
        namespace: type.namespaced ? ns : undefined,
        filter,
        resourceVersion: opts.resourceVersion,
        allowBookmarks: boolParam(q, 'allowWatchBookmarks'),
        sendInitialEvents: boolParam(q, 'sendInitialEvents'),
        timeoutSeconds: intParam(q, 'timeoutSeconds'),
        output,
      });
      return;
    }

    if (collection) {
      if (type.namespaced && ns === undefined && method !== 'GET') throw methodNotAllowed();
      switch (method) {
        case 'GET': {
          const result = this.o.rest.list(type, ns, this.listOptions(q), 'serialize');
          const meta: Record<string, unknown> = { resourceVersion: result.resourceVersion };
          if (result.continue) meta.continue = result.continue;
          if (result.remainingItemCount !== undefined) meta.remainingItemCount = result.remainingItemCount;
          if (rendering.as === 'table') {
            const table = toTable(type, result.items, {
              include: rendering.include,
              resourceVersion: result.resourceVersion,
              ...(result.continue ? { continue: result.continue } : {}),
              ...(result.remainingItemCount !== undefined ? { remainingItemCount: result.remainingItemCount } : {}),
            });
            return this.send(res, 200, table, warnings);
          }
          if (rendering.as === 'metadata') {
            return this.send(res, 200, { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: meta, items: result.items.map(partialMetadata) }, warnings);
          }
          // Items of built-in lists carry no apiVersion/kind on the wire; custom resources' do.
          const items = type.crd ? result.items : result.items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
          return this.send(res, 200, { kind: type.listKind, apiVersion: type.group ? `${type.group}/${type.version}` : type.version, metadata: meta, items }, warnings);
        }
        case 'POST': {
          const body = await decodeBody(req);
          const options: Record<string, unknown> = {};
          const created = await this.o.rest.create(type, ns, body, this.context(q, warnings, options));
          return this.send(res, 201, this.render(type, created, rendering), warnings);
        }
        case 'DELETE': {
          const body = (await decodeBody(req, true)) ?? {};
          const options = this.deleteOptions(q, body);
          const status = await this.o.rest.deleteCollection(type, ns, this.listOptions(q), options, this.context(q, warnings, { ...options }));
          return this.send(res, 200, status, warnings);
        }
        default:
          throw methodNotAllowed();
      }
    }

    const name = p.name as string;
    if (type.namespaced && ns === undefined) throw resourceNotFound();
    switch (method) {
      case 'GET':
        return this.send(res, 200, this.render(type, this.o.rest.get(type, ns, name), rendering), warnings);
      case 'PUT': {
        if (p.subresource === 'finalize' || p.subresource === 'status' || p.subresource === '') {
          const body = await decodeBody(req);
          const { object, created } = await this.o.rest.update(type, ns, name, body, this.context(q, warnings, {}), p.subresource);
          return this.send(res, created ? 201 : 200, this.render(type, object, rendering), warnings);
        }
        throw methodNotAllowed();
      }
      case 'PATCH': {
        if (p.subresource === 'finalize') throw methodNotAllowed();
        const patchType = mediaType(req);
        const body = await decodeBody(req);
        const updated = await this.o.rest.patch(type, ns, name, body, patchType, this.context(q, warnings, {}), p.subresource);
        return this.send(res, 200, this.render(type, updated, rendering), warnings);
      }
      case 'DELETE': {
        if (p.subresource) throw methodNotAllowed();
        const body = (await decodeBody(req, true)) ?? {};
        const options = this.deleteOptions(q, body);
        const result = await this.o.rest.delete(type, ns, name, options, this.context(q, warnings, { ...options }));
        return this.send(res, 200, result.kind === 'Status' ? result : this.render(type, result as KubeObject, rendering), warnings);
      }
      default:
        throw methodNotAllowed();
    }
  }

  private deleteOptions(q: URLSearchParams, body: unknown): DeleteOptions {
    const b = isObject(body) ? body : {};
    const options: DeleteOptions = {};
    const policy = q.get('propagationPolicy') ?? b.propagationPolicy;
    if (policy !== undefined && policy !== null) {
      if (policy !== 'Orphan' && policy !== 'Background' && policy !== 'Foreground') {
        throw badRequest(`propagationPolicy: Unsupported value: "${String(policy)}": supported values: "Foreground", "Background", "Orphan"`);
      }
      options.propagationPolicy = policy;
    }
    const orphan = q.get('orphanDependents') ?? b.orphanDependents;
    if (orphan !== undefined && orphan !== null) options.orphanDependents = orphan === true || orphan === 'true';
    if (isObject(b.preconditions)) {
      const pre: NonNullable<DeleteOptions['preconditions']> = {};
      if (typeof b.preconditions.uid === 'string') pre.uid = b.preconditions.uid;
      if (typeof b.preconditions.resourceVersion === 'string') pre.resourceVersion = b.preconditions.resourceVersion;
      options.preconditions = pre;
    }
    const grace = intParam(q, 'gracePeriodSeconds') ?? (typeof b.gracePeriodSeconds === 'number' ? b.gracePeriodSeconds : undefined);
    if (grace !== undefined) options.gracePeriodSeconds = grace;
    return options;
  }
}

/** Exported for unit tests. */
export const internals = { negotiate, wantsAggregatedDiscovery, warningHeaders };
