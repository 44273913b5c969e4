/**
 * The controller's HTTPS server: admission webhooks, health and metrics.
 *
 * Routes:
 * - `POST /mutate/services`, `POST /validate/services`, `POST /validate/config`,
 *   `POST /validate/external-ips`, `POST /validate/ipclaims`: an
 *   `admission.k8s.io/v1` AdmissionReview in, one out. The server checks the review, hands the
 *   request to the route's AdmissionHandler, and wraps its verdict (uid echoed, patch as base64
 *   JSONPatch, denial as `allowed: false` with a Status). A review it cannot read gets HTTP 400
 *   with a one-line message; a body that is not `application/json` (charset utf-8 allowed) gets
 *   HTTP 415 Unsupported Media Type, also with one line.
 * - `GET /healthz`: the process serves. `GET /readyz`: the `ready()` option says so (e.g. after
 *   the first configuration sync). `GET /metrics`: the Prometheus registry passed in.
 *
 * A handler that throws is a bug, not a verdict: the server answers HTTP 500 for every route,
 * so the webhook's failurePolicy decides, as the operator configured it: `Ignore` for Services
 * (an outage or a bug never blocks Service creation; the reconcile loop assigns later) and
 * `Fail` for our configuration (nothing unchecked lands). Answering `allowed: false` instead
 * would turn a controller bug into a cluster-wide block on Services.
 *
 * The serving certificate can be replaced at any time (`setCertificate`): new connections get
 * the new one, established connections and requests in flight are untouched.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import type { ServingCertificate } from './certs.js';
import type { AdmissionHandler, AdmissionRequest, AdmissionVerdict, Operation } from './review.js';

/** The largest AdmissionReview accepted; Kubernetes objects are capped at 1.5 MiB, a review holds two. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

/** The admission routes and the handler names used in metrics and logs. */
export const ADMISSION_ROUTES = {
  mutateServices: { path: '/mutate/services', mutating: true },
  validateServices: { path: '/validate/services', mutating: false },
  validateConfig: { path: '/validate/config', mutating: false },
  /** spec.externalIPs of Services of every type (CVE-2020-8554): webhook/external-ips.ts. */
  validateExternalIPs: { path: '/validate/external-ips', mutating: false },
  /** Writes of IPClaims by anyone but the controller: webhook/ipclaims-admission.ts. */
  validateIPClaims: { path: '/validate/ipclaims', mutating: false },
} as const;

export type AdmissionRouteName = keyof typeof ADMISSION_ROUTES;

/** Options of startWebhookServer. */
export interface WebhookServerOptions {
  certificate: ServingCertificate;
  /** Handlers by route; a route without a handler answers 404. */
  handlers: Partial<Record<AdmissionRouteName, AdmissionHandler>>;
  /** Whether /readyz reports ready (default: always). */
  ready?: () => boolean;
  /** What /metrics serves. */
  registry: Registry;
  /** Called with each admission's duration and verdict ('error' when the handler threw). */
  observeAdmission?: (handler: AdmissionRouteName, seconds: number, allowed: boolean | 'error') => void;
  /** Monotonic time in seconds, for the latency metric (default performance.now()/1000). */
  monotonicSeconds?: () => number;
  port?: number;
  host?: string;
  log?: (line: string) => void;
}

/** A running webhook server. */
export interface WebhookServer {
  readonly server: Server;
  readonly port: number;
  /** Serves this certificate to new connections from now on. */
  setCertificate(cert: ServingCertificate): void;
  close(): Promise<void>;
}

/** A review the server cannot read: answered with HTTP 400 and this message. */
export class BadReviewError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadReviewError';
  }
}

const OPERATIONS: readonly Operation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function groupVersionKind(v: unknown, field: string, last: 'kind' | 'resource'): { group: string; version: string } & Record<typeof last, string> {
  if (!isObject(v) || typeof v.version !== 'string' || typeof v[last] !== 'string' || (v.group !== undefined && typeof v.group !== 'string')) {
    throw new BadReviewError(`request.${field} must be an object with string group, version and ${last}`);
  }
  return { group: (v.group as string | undefined) ?? '', version: v.version, [last]: v[last] } as { group: string; version: string } & Record<typeof last, string>;
}

/** Checks a parsed body and returns the request it carries; throws BadReviewError. */
export function parseReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new BadReviewError('body must be a JSON object (an AdmissionReview)');
  if (body.apiVersion !== 'admission.k8s.io/v1') {
    throw new BadReviewError(`unsupported apiVersion ${JSON.stringify(body.apiVersion)}: only admission.k8s.io/v1 is served (set admissionReviewVersions: [v1])`);
  }
  if (body.kind !== 'AdmissionReview') throw new BadReviewError(`unexpected kind ${JSON.stringify(body.kind)}: expected AdmissionReview`);
  const r = body.request;
  if (!isObject(r)) throw new BadReviewError('AdmissionReview has no request');
  if (typeof r.uid !== 'string' || r.uid === '') throw new BadReviewError('request.uid is missing');
  if (typeof r.operation !== 'string' || !OPERATIONS.includes(r.operation as Operation)) {
    throw new BadReviewError(`request.operation ${JSON.stringify(r.operation)} is not one of ${OPERATIONS.join(', ')}`);
  }
  const operation = r.operation as Operation;
  const kind = groupVersionKind(r.kind, 'kind', 'kind');
  const resource = groupVersionKind(r.resource, 'resource', 'resource');
  if (r.object !== undefined && r.object !== null && !isObject(r.object)) throw new BadReviewError('request.object must be an object');
  if (r.oldObject !== undefined && r.oldObject !== null && !isObject(r.oldObject)) throw new BadReviewError('request.oldObject must be an object');
  const object = isObject(r.object) ? r.object : undefined;
  const oldObject = isObject(r.oldObject) ? r.oldObject : undefined;
  if ((operation === 'CREATE' || operation === 'UPDATE') && !object) throw new BadReviewError(`request.object is missing for ${operation}`);
  if (operation === 'UPDATE' && !oldObject) throw new BadReviewError('request.oldObject is missing for UPDATE');
  if (r.name !== undefined && typeof r.name !== 'string') throw new BadReviewError('request.name must be a string');
  if (r.namespace !== undefined && typeof r.namespace !== 'string') throw new BadReviewError('request.namespace must be a string');
  if (r.subResource !== undefined && typeof r.subResource !== 'string') throw new BadReviewError('request.subResource must be a string');
  if (r.dryRun !== undefined && typeof r.dryRun !== 'boolean') throw new BadReviewError('request.dryRun must be a boolean');
  const user = isObject(r.userInfo) ? r.userInfo : {};
  const userInfo: AdmissionRequest['userInfo'] = {};
  if (typeof user.username === 'string') userInfo.username = user.username;
  if (Array.isArray(user.groups)) userInfo.groups = user.groups.filter((g): g is string => typeof g === 'string');
  return {
    uid: r.uid,
    kind,
    resource,
    ...(typeof r.subResource === 'string' && r.subResource !== '' ? { subResource: r.subResource } : {}),
    // Empty with generateName: the API server names the object after admission.
    name: typeof r.name === 'string' ? r.name : '',
    ...(typeof r.namespace === 'string' && r.namespace !== '' ? { namespace: r.namespace } : {}),
    operation,
    userInfo,
    ...(object ? { object } : {}),
    ...(oldObject ? { oldObject } : {}),
    dryRun: r.dryRun === true,
  };
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Gone',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** Wraps a verdict in an admission.k8s.io/v1 AdmissionReview response. */
export function reviewResponse(uid: string, verdict: AdmissionVerdict, mutating: boolean): Record<string, unknown> {
  const response: Record<string, unknown> = { uid, allowed: verdict.allowed };
  if (!verdict.allowed) {
    const code = verdict.code ?? 400;
    response.status = { metadata: {}, status: 'Failure', code, reason: REASONS[code] ?? 'Unknown', message: verdict.message ?? 'denied by metallb' };
  }
  // Only an allowed, mutating answer may patch; a validating webhook's patch would be an API error.
  if (verdict.allowed && mutating && verdict.patch && verdict.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
  }
  if (verdict.warnings && verdict.warnings.length > 0) response.warnings = verdict.warnings;
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/**
 * Why a Content-Type is not an AdmissionReview's, or undefined when it is: `application/json`
 * (what the API server sends), with any parameters, but a charset only if it is UTF-8 (JSON is
 * UTF-8, RFC 8259).
 */
export function contentTypeProblem(header: string | undefined): string | undefined {
  const shown = header === undefined || header.trim() === '' ? 'none' : JSON.stringify(oneLine(header).slice(0, 100));
  if (header === undefined) return `no Content-Type: an AdmissionReview must be sent as application/json`;
  const [mediaType = '', ...params] = header.split(';').map((p) => p.trim());
  if (mediaType.toLowerCase() !== 'application/json') return `unsupported Content-Type ${shown}: an AdmissionReview must be sent as application/json`;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') return `unsupported Content-Type ${shown}: an AdmissionReview must be UTF-8 JSON (application/json; charset=utf-8)`;
  }
  return undefined;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The express application (exported for tests that do not need TLS). */
export function webhookApp(options: Omit<WebhookServerOptions, 'certificate' | 'port' | 'host'>): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const log = options.log ?? (() => {});
  const clock = options.monotonicSeconds ?? (() => performance.now() / 1000);
  const ready = options.ready ?? (() => true);

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    if (ready()) res.type('text/plain').send('ok');
    else res.status(503).type('text/plain').send('not ready: waiting for the first sync');
  });
  app.get('/metrics', (_req, res, next) => {
    options.registry
      .metrics()
      .then((text) => res.type(options.registry.contentType).send(text))
      .catch(next);
  });

  // Every body as raw bytes, whatever the Content-Type: a wrong header is reported as such below.
  const body = express.raw({ type: () => true, limit: MAX_REVIEW_BYTES });
  // Only JSON is an AdmissionReview: anything else is refused before the body is read.
  const jsonOnly = (req: Request, res: Response, next: NextFunction): void => {
    const problem = contentTypeProblem(req.headers['content-type']);
    if (problem === undefined) {
      next();
      return;
    }
    log(`${req.path}: 415 ${problem}`);
    // The body is left unread: close the connection rather than drain up to MAX_REVIEW_BYTES.
    res.set('Connection', 'close').status(415).type('text/plain').send(`${problem}\n`);
  };
  for (const [name, route] of Object.entries(ADMISSION_ROUTES) as [AdmissionRouteName, (typeof ADMISSION_ROUTES)[AdmissionRouteName]][]) {
    const handler = options.handlers[name];
    if (!handler) continue;
    app.post(route.path, jsonOnly, body, (req, res) => {
      const started = clock();
      let request: AdmissionRequest;
      try {
        const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch (e) {
          throw new BadReviewError(`body is not JSON: ${(e as Error).message}`);
        }
        request = parseReview(parsed);
      } catch (e) {
        const message = oneLine(e instanceof BadReviewError ? e.message : `cannot read the request: ${(e as Error).message}`);
        log(`${route.path}: 400 ${message}`);
        res.status(400).type('text/plain').send(`${message}\n`);
        return;
      }
      handler(request).then(
        (verdict) => {
          options.observeAdmission?.(name, clock() - started, verdict.allowed);
          res.json(reviewResponse(request.uid, verdict, route.mutating));
        },
        (e: unknown) => {
          options.observeAdmission?.(name, clock() - started, 'error');
          const message = oneLine(`internal error: ${e instanceof Error ? e.message : String(e)}`);
          log(`${route.path} uid=${request.uid}: 500 ${message}`);
          res.status(500).type('text/plain').send(`${message}\n`);
        },
      );
    });
  }

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  // Errors of the body reader (too large, aborted, bad encoding) and of /metrics.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large') {
      res.status(400).type('text/plain').send(`request body too large: the limit is ${MAX_REVIEW_BYTES} bytes\n`);
    } else if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      res
        .status(400)
        .type('text/plain')
        .send(`${oneLine(`cannot read the request: ${e.message ?? 'unknown error'}`)}\n`);
    } else {
      log(`internal error: ${e.message ?? String(err)}`);
      res
        .status(500)
        .type('text/plain')
        .send(`${oneLine(`internal error: ${e.message ?? String(err)}`)}\n`);
    }
  });
  return app;
}

/** Starts the HTTPS server. */
export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const app = webhookApp(options);
  const server = createServer({ cert: options.certificate.certPem, key: options.certificate.keyPem, minVersion: 'TLSv1.2' }, app);
  // The API server keeps idle connections to webhooks for up to 90 s (Go's default) and does not
  // retry a POST whose reused connection we closed under it; closing first (Node's default is
  // 5 s) turns into a failed admission call, and with failurePolicy Ignore, a Service admitted
  // without its IP. So we keep idle connections longer than any client does.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    setCertificate(cert) {
      server.setSecureContext({ cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive connections would hold close() open.
        server.closeIdleConnections();
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 1000).unref();
      });
    },
  };
}
