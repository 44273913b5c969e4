/**
 * Faults on demand and request accounting.
 *
 * Every request is first described the way kube-apiserver's RequestInfoFactory describes it:
 * a Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
 * `deletecollection`; a GET with `?watch=true` is a watch, a GET of a collection a list), the
 * group, resource, subresource, namespace and name (for lists and watches, the name of a
 * `metadata.name=` field selector). `RequestCounter` counts requests by that description and the
 * client's User-Agent; `FaultInjector` holds the rules tests inject and decides, per resource
 * request, whether it fails with a Status, hangs, or is delayed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Status } from './errors.js';
import { VERBS, type RequestInfo, type Verb } from './server.js';

/* ------------------------------------------------------------------ counts */

/** Which requests to count; every given field must match. */
export interface RequestCountFilter {
  verb?: string;
  /** Plural resource, e.g. `services`; '' for non-resource requests (discovery, /version). */
  resource?: string;
  group?: string;
  subresource?: string;
  /** A string matches User-Agents that start with it (`kubectl/` matches every kubectl). */
  userAgent?: string | RegExp;
}

/** One line of the request counts. */
export interface RequestCountRow {
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  /** The client's User-Agent header ('' when it sent none). */
  userAgent: string;
  /** The path, for non-resource requests only. */
  path?: string;
  count: number;
}

/** Requests the server has received since it started or since `resetRequestCounts()`. */
export interface RequestCounts {
  /** Every request, resource or not, whatever its outcome (faulted and failed ones too). */
  readonly total: number;
  /** Requests matching the filter. */
  count(filter?: RequestCountFilter): number;
  /** The counts, one row per (verb, group, resource, subresource, User-Agent[, path]). */
  rows(filter?: RequestCountFilter): RequestCountRow[];
  /**
   * Counts keyed `verb resource[.group][/subresource]` (`create services`, `update
   * services/status`, `watch ipaddresspools.metallb.io`), non-resource requests as `get /api`.
   */
  byVerbAndResource(filter?: RequestCountFilter): Record<string, number>;
  /** Counts keyed by User-Agent ('' for none). */
  byUserAgent(filter?: RequestCountFilter): Record<string, number>;
}

function rowMatches(r: RequestCountRow, f: RequestCountFilter): boolean {
  if (f.verb !== undefined && r.verb !== f.verb) return false;
  if (f.resource !== undefined && r.resource !== f.resource) return false;
  if (f.group !== undefined && r.group !== f.group) return false;
  if (f.subresource !== undefined && r.subresource !== f.subresource) return false;
  if (f.userAgent !== undefined && !(typeof f.userAgent === 'string' ? r.userAgent.startsWith(f.userAgent) : f.userAgent.test(r.userAgent))) return false;
  return true;
}

/** Counts requests; see RequestCounts. */
export class RequestCounter implements RequestCounts {
  private readonly counts = new Map<string, RequestCountRow>();
  private all = 0;

  record(info: RequestInfo, userAgent: string | undefined): void {
    this.all++;
    const row: RequestCountRow = {
      verb: info.verb,
      group: info.group,
      resource: info.resource,
      subresource: info.subresource,
      userAgent: userAgent ?? '',
      count: 0,
      ...(info.resourceRequest ? {} : { path: info.path }),
    };
    const key = JSON.stringify([row.verb, row.group, row.resource, row.subresource, row.userAgent, row.path ?? '']);
    const existing = this.counts.get(key);
    if (existing) existing.count++;
    else this.counts.set(key, { ...row, count: 1 });
  }

  reset(): void {
    this.counts.clear();
    this.all = 0;
  }

  get total(): number {
    return this.all;
  }

  rows(filter: RequestCountFilter = {}): RequestCountRow[] {
    return [...this.counts.values()].filter((r) => rowMatches(r, filter)).map((r) => ({ ...r }));
  }

  count(filter: RequestCountFilter = {}): number {
    return this.rows(filter).reduce((n, r) => n + r.count, 0);
  }

  byVerbAndResource(filter: RequestCountFilter = {}): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.rows(filter)) {
      const what = r.path ?? `${r.resource}${r.group ? `.${r.group}` : ''}${r.subresource ? `/${r.subresource}` : ''}`;
      const key = `${r.verb} ${what}`;
      out[key] = (out[key] ?? 0) + r.count;
    }
    return out;
  }

  byUserAgent(filter: RequestCountFilter = {}): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.rows(filter)) out[r.userAgent] = (out[r.userAgent] ?? 0) + r.count;
    return out;
  }
}

/* ------------------------------------------------------------------ faults */

/** An error answer: a metav1.Status with this HTTP code. */
export interface StatusFault {
  status: number;
  /** Status.reason (default: the one kube-apiserver uses for the code, e.g. 503 ServiceUnavailable). */
  reason?: string;
  message?: string;
  /** Sent as Retry-After and details.retryAfterSeconds (default 1 for 429, none otherwise). */
  retryAfterSeconds?: number;
}

/** What happens to a request a rule catches. */
export type Fault =
  | StatusFault
  /** No answer at all until the client gives up, the rule is removed or cleared (then it is served), or the server stops. */
  | { hang: true }
  /** Served normally after this many milliseconds. */
  | { delayMs: number };

/** Which requests a fault applies to; every given field must match. */
export interface FaultRule {
  verb: Verb | '*';
  /** Plural resource (`services`, `ipaddresspools`); omitted: any resource. */
  resource?: string;
  /** API group ('' is the core group); omitted: any. */
  group?: string;
  /** Omitted: any (a request across all namespaces has none, so matches only rules without one). */
  namespace?: string;
  /** The object's name (for list/watch/deletecollection: a `metadata.name=` field selector's); omitted: any. */
  name?: string;
  /** `status`, `finalize`; '' for the main resource only; omitted: any. */
  subresource?: string;
  /** How many requests it catches (default 1; Infinity for every one until removed). */
  count?: number;
  fault: Fault;
}

/** An injected rule. */
export interface FaultHandle {
  readonly rule: Readonly<FaultRule>;
  /** Requests it has caught so far. */
  readonly hits: number;
  /** Requests it will still catch (Infinity for unlimited rules; 0 once spent or removed). */
  readonly remaining: number;
  /**
   * Resolves once `n` (default 1) requests in total have been caught; rejects if that cannot
   * happen any more (n beyond the count, the rule removed or cleared, the server stopped).
   */
  hit(n?: number): Promise<void>;
  /** Stops catching requests and releases the requests it holds hanging (they are served). */
  remove(): void;
}

/** `api.faults`. */
export interface Faults {
  /**
   * Adds a rule. Rules apply to resource requests (not discovery, /version or /healthz), after
   * authentication; a request meets at most one fault: the first rule, in injection order,
   * that matches it and has requests left to catch.
   */
  inject(rule: FaultRule): FaultHandle;
  /** Removes every rule (releasing the requests they hold hanging). */
  clear(): void;
  /** The rules still catching requests. */
  readonly active: readonly FaultHandle[];
}

const DEFAULTS: Record<number, [string, string]> = {
  400: ['BadRequest', 'the server rejected our request for an unknown reason'],
  401: ['Unauthorized', 'Unauthorized'],
  403: ['Forbidden', 'forbidden'],
  404: ['NotFound', 'the server could not find the requested resource'],
  405: ['MethodNotAllowed', 'the server does not allow this method on the requested resource'],
  409: ['Conflict', 'the object has been modified; please apply your changes to the latest version and try again'],
  410: ['Expired', 'too old resource version'],
  422: ['Invalid', 'the request is invalid'],
  429: ['TooManyRequests', 'Too many requests, please try again later.'],
  500: ['InternalError', 'Internal error occurred: an injected fault'],
  503: ['ServiceUnavailable', 'the server is currently unable to handle the request'],
  504: ['Timeout', 'Timeout: request did not complete within requested timeout - context deadline exceeded'],
};

function qualified(info: RequestInfo): string {
  return info.group ? `${info.resource}.${info.group}` : info.resource;
}

/** The Status kube-apiserver would send for the code, naming the object when the request does. */
export function faultStatus(f: StatusFault, info: RequestInfo): Status {
  const [defaultReason, defaultMessage] = DEFAULTS[f.status] ?? [f.status >= 500 ? 'InternalError' : 'BadRequest', `the server responded with the status code ${f.status}`];
  let message = defaultMessage;
  if (info.name && f.status === 404) message = `${qualified(info)} "${info.name}" not found`;
  else if (info.name && f.status === 409) message = `Operation cannot be fulfilled on ${qualified(info)} "${info.name}": ${defaultMessage}`;
  else if (info.name && f.status === 403) message = `${qualified(info)} "${info.name}" is forbidden`;
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: f.message ?? message, reason: f.reason ?? defaultReason, code: f.status };
  const details: NonNullable<Status['details']> = {};
  if (info.name) details.name = info.name;
  if (info.group) details.group = info.group;
  if (info.resource) details.kind = info.resource;
  const retryAfter = f.retryAfterSeconds ?? (f.status === 429 ? 1 : undefined);
  if (retryAfter !== undefined) details.retryAfterSeconds = retryAfter;
  if (Object.keys(details).length) status.details = details;
  return status;
}

function validate(rule: FaultRule): void {
  if (rule.verb !== '*' && !(VERBS as readonly string[]).includes(rule.verb)) throw new TypeError(`fault rule: unknown verb ${JSON.stringify(rule.verb)}`);
  const count = rule.count ?? 1;
  if (!(count === Infinity || (Number.isInteger(count) && count > 0))) throw new TypeError(`fault rule: count must be a positive integer or Infinity, not ${count}`);
  const f = rule.fault as Partial<StatusFault & { hang: boolean; delayMs: number }>;
  const kinds = [f.status !== undefined, f.hang !== undefined, f.delayMs !== undefined].filter(Boolean).length;
  if (kinds !== 1) throw new TypeError('fault rule: fault must be one of {status}, {hang: true}, {delayMs}');
  if (f.status !== undefined && !(Number.isInteger(f.status) && f.status >= 400 && f.status <= 599)) throw new TypeError(`fault rule: status must be 400-599, not ${f.status}`);
  if (f.hang !== undefined && f.hang !== true) throw new TypeError('fault rule: hang must be true');
  if (f.delayMs !== undefined && !(f.delayMs >= 0 && Number.isFinite(f.delayMs))) throw new TypeError(`fault rule: delayMs must be a finite number >= 0`);
}

/** A request held by a hang or delay: settles with whether to serve it after all. */
interface Held {
  settle(serve: boolean): void;
}

class Rule implements FaultHandle {
  hitCount = 0;
  removed = false;
  readonly held = new Set<Held>();
  private waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    readonly rule: Readonly<FaultRule>,
    private readonly detach: (r: Rule) => void,
  ) {}

  get hits(): number {
    return this.hitCount;
  }

  get remaining(): number {
    return this.removed ? 0 : (this.rule.count ?? 1) - this.hitCount;
  }

  matches(info: RequestInfo): boolean {
    const r = this.rule;
    if (this.remaining <= 0) return false;
    if (r.verb !== '*' && r.verb !== info.verb) return false;
    if (r.resource !== undefined && r.resource !== info.resource) return false;
    if (r.group !== undefined && r.group !== info.group) return false;
    if (r.namespace !== undefined && r.namespace !== info.namespace) return false;
    if (r.name !== undefined && r.name !== info.name) return false;
    if (r.subresource !== undefined && r.subresource !== info.subresource) return false;
    return true;
  }

  caught(): void {
    this.hitCount++;
    this.waiters = this.waiters.filter((w) => {
      if (this.hitCount < w.n) return true;
      w.resolve();
      return false;
    });
  }

  hit(n = 1): Promise<void> {
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const p = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    // A rejection nobody awaits must not become an unhandled rejection.
    p.catch(() => undefined);
    if (this.hitCount >= n) settle.resolve();
    else if (this.hitCount + this.remaining < n) settle.reject(this.unreachable(n));
    else this.waiters.push({ n, ...settle });
    return p;
  }

  private unreachable(n: number): Error {
    return new Error(`fault ${JSON.stringify({ ...this.rule, count: this.rule.count ?? 1 })} caught ${this.hitCount} request(s) and will catch no more: ${n} never comes`);
  }

  /** Ends the rule: held requests are served (`serve`) or dropped; waiters for more hits fail. */
  end(serve: boolean): void {
    if (!this.removed) {
      this.removed = true;
      this.detach(this);
    }
    for (const h of [...this.held]) h.settle(serve);
    this.held.clear();
    for (const w of this.waiters) w.reject(this.unreachable(w.n));
    this.waiters = [];
  }

  remove(): void {
    this.end(true);
  }
}

/** The rules and the requests they hold; see Faults. */
export class FaultInjector implements Faults {
  /** Every rule not removed, spent ones too: they may still hold hanging requests. */
  private rules: Rule[] = [];
  private stopped = false;

  inject(rule: FaultRule): FaultHandle {
    validate(rule);
    const r = new Rule({ ...rule, fault: { ...rule.fault } }, (x) => (this.rules = this.rules.filter((y) => y !== x)));
    this.rules.push(r);
    return r;
  }

  clear(): void {
    for (const r of [...this.rules]) r.end(true);
  }

  get active(): readonly FaultHandle[] {
    return this.rules.filter((r) => r.remaining > 0);
  }

  /** Server shutdown: held requests are dropped (their sockets are destroyed anyway). */
  stop(): void {
    this.stopped = true;
    for (const r of [...this.rules]) r.end(false);
  }

  /**
   * Applies the first matching rule. Resolves true when the request is to be served normally
   * (no rule, a delay that passed, a hang released), false when it was answered (a Status) or
   * must be dropped (client gone, server stopped).
   */
  async intercept(info: RequestInfo, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    if (!info.resourceRequest || this.stopped) return true;
    const rule = this.rules.find((r) => r.matches(info));
    if (!rule) return true;
    rule.caught();
    const f = rule.rule.fault;
    if ('status' in f) {
      const status = faultStatus(f, info);
      const body = JSON.stringify(status);
      const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache, private' };
      if (status.details?.retryAfterSeconds !== undefined) headers['Retry-After'] = status.details.retryAfterSeconds;
      req.resume();
      res.writeHead(f.status, headers);
      res.end(body);
      return false;
    }
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const held: Held = {
        settle: (serve) => {
          if (timer) clearTimeout(timer);
          rule.held.delete(held);
          res.off('close', gone);
          // A client that went away meanwhile gets nothing (kube-apiserver cancels its context).
          resolve(serve && !res.destroyed && !req.socket.destroyed);
        },
      };
      const gone = (): void => held.settle(false);
      rule.held.add(held);
      res.on('close', gone);
      if ('delayMs' in f) timer = setTimeout(() => held.settle(true), f.delayMs);
    });
  }
}
