/**
 * Dynamic admission: the MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins.
 * On create, update and delete the server finds the webhooks registered in
 * Mutating/ValidatingWebhookConfiguration objects whose rules, namespaceSelector,
 * objectSelector and matchConditions match, POSTs them a real `admission.k8s.io/v1`
 * AdmissionReview over TLS (verifying the server against the `caBundle`), applies returned
 * JSON patches (mutating webhooks run one after another, then reinvocation), calls validating
 * webhooks in parallel, turns `warnings` into Warning headers and denials into the Status
 * errors kube-apiserver returns.
 */
import { randomUUID } from 'node:crypto';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { ApiError, badRequest, internalError, type FieldError, type Status } from './errors.js';
import { compileCel, CelError, type CelProgram } from './cel.js';
import { isObject, type KubeObject } from './object.js';
import { applyJsonPatch } from './patch.js';
import type { ResourceType, Strategy } from './resources.js';
import { labelSelectorFromObject, matchesLabels, type LabelSelectorObject } from './selectors.js';
import type { ObjectStore } from './store.js';
import { isQualifiedName } from './validation.js';

/** Who is making a request (authentication.k8s.io/v1 UserInfo). */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
}

/** Where a webhook Service reference is reached: always a loopback address in the double. */
export interface ServiceTarget {
  host: string;
  port: number;
}

/** Maps a webhook's `clientConfig.service` onto a loopback address. */
export type ServiceResolver = (namespace: string, name: string, port: number) => ServiceTarget | undefined;

/** The facts of one admission request. Objects are in the request's version. */
export interface AdmissionAttributes {
  operation: 'CREATE' | 'UPDATE' | 'DELETE';
  type: ResourceType;
  subresource: string;
  namespace: string;
  name: string;
  object: KubeObject | null;
  oldObject: KubeObject | null;
  dryRun: boolean;
  /** CreateOptions / UpdateOptions / DeleteOptions as sent. */
  options: Record<string, unknown>;
  user: UserInfo;
}

/** admissionregistration.k8s.io/v1 RuleWithOperations. */
export interface Rule {
  operations?: string[];
  apiGroups?: string[];
  apiVersions?: string[];
  resources?: string[];
  scope?: string;
}

interface Webhook {
  name: string;
  clientConfig?: { url?: string; service?: { namespace?: string; name?: string; path?: string; port?: number }; caBundle?: string };
  rules?: Rule[];
  failurePolicy?: string;
  namespaceSelector?: LabelSelectorObject;
  objectSelector?: LabelSelectorObject;
  sideEffects?: string;
  timeoutSeconds?: number;
  admissionReviewVersions?: string[];
  reinvocationPolicy?: string;
  matchConditions?: { name: string; expression: string }[];
}

interface AdmissionResponse {
  uid?: string;
  allowed?: boolean;
  status?: Partial<Status>;
  patch?: string;
  patchType?: string;
  warnings?: string[];
}

const MUTATING = 'mutatingwebhookconfigurations.admissionregistration.k8s.io';
const VALIDATING = 'validatingwebhookconfigurations.admissionregistration.k8s.io';
const MATCH_CONDITION_VARIABLES = ['object', 'oldObject', 'request'];

/** SetDefaults_(Mutating|Validating)Webhook, shared by both configuration strategies. */
function defaultWebhooks(config: KubeObject, mutating: boolean): void {
  for (const w of Array.isArray(config.webhooks) ? config.webhooks.filter(isObject) : []) {
    w.failurePolicy ??= 'Fail';
    w.matchPolicy ??= 'Equivalent';
    w.namespaceSelector ??= {};
    w.objectSelector ??= {};
    w.timeoutSeconds ??= 10;
    if (mutating) w.reinvocationPolicy ??= 'Never';
    for (const r of Array.isArray(w.rules) ? w.rules.filter(isObject) : []) r.scope ??= '*';
    const cc = isObject(w.clientConfig) ? w.clientConfig : undefined;
    if (cc && isObject(cc.service)) cc.service.port ??= 443;
  }
}

function validateWebhooks(config: KubeObject, mutating: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const hooks = Array.isArray(config.webhooks) ? config.webhooks : [];
  const names = new Set<string>();
  hooks.forEach((raw, i) => {
    const f = `webhooks[${i}]`;
    const w = (isObject(raw) ? raw : {}) as unknown as Webhook;
    if (!w.name) errs.push({ type: 'Required', field: `${f}.name` });
    else if (w.name.split('.').length < 3 || !isQualifiedName(w.name)) {
      errs.push({ type: 'Invalid', field: `${f}.name`, value: w.name, detail: 'should be a domain with at least three segments separated by dots' });
    } else if (names.has(w.name)) errs.push({ type: 'Duplicate', field: `${f}.name`, value: w.name });
    names.add(w.name);
    const versions = w.admissionReviewVersions ?? [];
    if (!versions.includes('v1') && !versions.includes('v1beta1')) {
      errs.push({ type: 'Required', field: `${f}.admissionReviewVersions`, detail: 'must specify one of v1, v1beta1' });
    }
    if (w.sideEffects === undefined) errs.push({ type: 'Required', field: `${f}.sideEffects`, detail: 'must specify one of None, NoneOnDryRun' });
    else if (w.sideEffects !== 'None' && w.sideEffects !== 'NoneOnDryRun') {
      errs.push({ type: 'NotSupported', field: `${f}.sideEffects`, value: w.sideEffects, supported: ['None', 'NoneOnDryRun'] });
    }
    const cc = w.clientConfig ?? {};
    if ((cc.url === undefined) === (cc.service === undefined)) {
      errs.push({ type: 'Required', field: `${f}.clientConfig`, detail: 'exactly one of url or service is required' });
    } else if (cc.url !== undefined && !cc.url.startsWith('https://')) {
      errs.push({ type: 'Invalid', field: `${f}.clientConfig.url`, value: cc.url, detail: "'https' is the only allowed URL scheme" });
    } else if (cc.service && (!cc.service.name || !cc.service.namespace)) {
      errs.push({ type: 'Required', field: `${f}.clientConfig.service`, detail: 'service name and namespace are required' });
    }
    if (w.timeoutSeconds !== undefined && (w.timeoutSeconds < 1 || w.timeoutSeconds > 30)) {
      errs.push({ type: 'Invalid', field: `${f}.timeoutSeconds`, value: w.timeoutSeconds, detail: 'the timeout value must be between 1 and 30 seconds' });
    }
    if (w.failurePolicy !== undefined && w.failurePolicy !== 'Fail' && w.failurePolicy !== 'Ignore') {
      errs.push({ type: 'NotSupported', field: `${f}.failurePolicy`, value: w.failurePolicy, supported: ['Fail', 'Ignore'] });
    }
    if (mutating && w.reinvocationPolicy !== undefined && w.reinvocationPolicy !== 'Never' && w.reinvocationPolicy !== 'IfNeeded') {
      errs.push({ type: 'NotSupported', field: `${f}.reinvocationPolicy`, value: w.reinvocationPolicy, supported: ['IfNeeded', 'Never'] });
    }
    (w.rules ?? []).forEach((r, j) => {
      for (const op of r.operations ?? []) {
        if (!['*', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT'].includes(op)) {
          errs.push({ type: 'NotSupported', field: `${f}.rules[${j}].operations`, value: op, supported: ['*', 'CONNECT', 'CREATE', 'DELETE', 'UPDATE'] });
        }
      }
      if (!r.resources?.length) errs.push({ type: 'Required', field: `${f}.rules[${j}].resources` });
    });
    const conditionNames = new Set<string>();
    (w.matchConditions ?? []).forEach((c, j) => {
      const cf = `${f}.matchConditions[${j}]`;
      if (!c.name) errs.push({ type: 'Required', field: `${cf}.name` });
      else if (conditionNames.has(c.name)) errs.push({ type: 'Duplicate', field: `${cf}.name`, value: c.name });
      conditionNames.add(c.name);
      try {
        compileCel(c.expression ?? '', MATCH_CONDITION_VARIABLES);
      } catch (e) {
        errs.push({ type: 'Invalid', field: `${cf}.expression`, value: c.expression ?? '', detail: `compilation failed: ${(e as Error).message}` });
      }
    });
  });
  return errs;
}

/** The strategies of the two webhook configuration types (defaults and validation). */
export const webhookConfigurationStrategies: { mutatingWebhooks: Strategy; validatingWebhooks: Strategy } = {
  mutatingWebhooks: { defaults: (o) => defaultWebhooks(o, true), validate: (o) => validateWebhooks(o, true) },
  validatingWebhooks: { defaults: (o) => defaultWebhooks(o, false), validate: (o) => validateWebhooks(o, false) },
};

/** Whether one of a webhook's rules covers the request (operation, group, version, resource/subresource, scope). */
export function ruleMatches(r: Rule, a: AdmissionAttributes): boolean {
  const any = (list: string[] | undefined, v: string): boolean => (list ?? []).some((x) => x === '*' || x === v);
  if (!any(r.operations, a.operation) || !any(r.apiGroups, a.type.group) || !any(r.apiVersions, a.type.version)) return false;
  const scope = r.scope ?? '*';
  if (scope === 'Cluster' && a.type.namespaced) return false;
  if (scope === 'Namespaced' && !a.type.namespaced) return false;
  return (r.resources ?? []).some((spec) => {
    const [res, sub] = spec.split('/');
    const resourceOk = res === '*' || res === a.type.resource;
    const subOk = sub === undefined ? a.subresource === '' : sub === '*' || sub === a.subresource;
    return resourceOk && subOk;
  });
}

/** Options of the admission chain. */
export interface AdmissionOptions {
  store: ObjectStore;
  resolveService: ServiceResolver;
  /** Applies the type's defaults to an object of the request's version (after each patch). */
  normalize: (type: ResourceType, obj: KubeObject) => KubeObject;
}

/** Webhook-based admission for the double's requests; see the file comment. */
export class Admission {
  private readonly compiled = new Map<string, CelProgram>();
  /**
   * Connections to webhooks are kept alive and reused, as kube-apiserver does: a TLS handshake
   * (and a new secure context for the caBundle) per call made the double the bottleneck of
   * tests with hundreds of admissions. The agent pools per host, port, servername and CA, so a
   * changed caBundle still gets a fresh, verified connection.
   */
  private readonly agent = new HttpsAgent({ keepAlive: true, maxSockets: 32 });

  constructor(private readonly options: AdmissionOptions) {}

  /** Closes the kept-alive connections to webhooks. */
  close(): void {
    this.agent.destroy();
  }

  private webhooks(storage: string): Webhook[] {
    // Configurations apply in name order, webhooks in their listed order, as the apiserver sorts them.
    return this.options.store
      .list(storage)
      .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1))
      .flatMap((c) => (Array.isArray(c.webhooks) ? (c.webhooks.filter(isObject) as unknown as Webhook[]) : []));
  }

  private static excluded(a: AdmissionAttributes): boolean {
    // Webhooks are never called for the objects that configure admission, so they cannot lock themselves out.
    return a.type.group === 'admissionregistration.k8s.io';
  }

  private selectorsMatch(w: Webhook, a: AdmissionAttributes): boolean {
    const objectSelector = labelSelectorFromObject(w.objectSelector);
    const labelsOf = (o: KubeObject | null): Record<string, string> | undefined => o?.metadata.labels;
    // An absent object (no oldObject on create, no object on delete) never matches, as in the apiserver.
    const objectMatches = (o: KubeObject | null): boolean => o !== null && matchesLabels(objectSelector, labelsOf(o));
    if (objectSelector.length && !objectMatches(a.object) && !objectMatches(a.oldObject)) return false;
    const nsSelector = labelSelectorFromObject(w.namespaceSelector);
    if (nsSelector.length === 0) return true;
    if (a.type.group === '' && a.type.resource === 'namespaces') {
      return matchesLabels(nsSelector, labelsOf(a.object ?? a.oldObject));
    }
    if (!a.type.namespaced) return true;
    const ns = this.options.store.get('namespaces', undefined, a.namespace);
    return matchesLabels(nsSelector, ns?.metadata.labels);
  }

  private program(expression: string): CelProgram {
    let p = this.compiled.get(expression);
    if (!p) {
      p = compileCel(expression, MATCH_CONDITION_VARIABLES);
      this.compiled.set(expression, p);
    }
    return p;
  }

  /** Evaluates matchConditions: all true to call; an error is a call failure (failurePolicy decides). */
  private conditionsMatch(w: Webhook, request: Record<string, unknown>): boolean {
    for (const c of w.matchConditions ?? []) {
      let result: unknown;
      try {
        result = this.program(c.expression).evaluate({ object: request.object ?? null, oldObject: request.oldObject ?? null, request });
      } catch (e) {
        const why = e instanceof CelError ? e.message : String(e);
        throw new WebhookCallError(`failed to evaluate match condition "${c.name}": ${why}`);
      }
      if (result !== true && result !== false) throw new WebhookCallError(`match condition "${c.name}" did not evaluate to a bool`);
      if (!result) return false;
    }
    return true;
  }

  private review(a: AdmissionAttributes, object: KubeObject | null): Record<string, unknown> {
    const gvk = { group: a.type.group, version: a.type.version, kind: a.type.kind };
    const gvr = { group: a.type.group, version: a.type.version, resource: a.type.resource };
    const optionsKind = { CREATE: 'CreateOptions', UPDATE: 'UpdateOptions', DELETE: 'DeleteOptions' }[a.operation];
    const request: Record<string, unknown> = {
      uid: randomUUID(),
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      operation: a.operation,
      userInfo: a.user,
      object,
      oldObject: a.oldObject,
      dryRun: a.dryRun,
      options: { ...a.options, apiVersion: 'meta.k8s.io/v1', kind: optionsKind },
    };
    if (a.subresource) {
      request.subResource = a.subresource;
      request.requestSubResource = a.subresource;
    }
    if (a.name) request.name = a.name;
    if (a.namespace) request.namespace = a.namespace;
    return request;
  }

  /**
   * Runs the mutating webhooks in order and returns the (possibly patched) object. Webhooks
   * with reinvocationPolicy IfNeeded run once more if a later webhook changed the object.
   */
  async mutate(a: AdmissionAttributes, warnings: string[]): Promise<KubeObject | null> {
    if (Admission.excluded(a)) return a.object;
    const hooks = this.webhooks(MUTATING);
    let object = a.object;
    const after = new Map<Webhook, string>();
    const runOne = async (w: Webhook): Promise<void> => {
      const request = this.review(a, object);
      const response = await this.invoke(w, a, request, warnings);
      if (!response) return;
      if (response.patch && object) {
        if (response.patchType !== undefined && response.patchType !== 'JSONPatch') {
          throw this.failure(w, `unsupported patch type ${JSON.stringify(response.patchType)}`);
        }
        let patched: unknown;
        try {
          patched = applyJsonPatch(object, JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')));
        } catch (e) {
          throw internalError(`admission webhook "${w.name}" returned an invalid patch: ${(e as Error).message}`);
        }
        if (!isObject(patched) || !isObject(patched.metadata)) throw internalError(`admission webhook "${w.name}" returned a patch that removed metadata`);
        object = this.options.normalize(a.type, patched as KubeObject);
      }
      after.set(w, JSON.stringify(object));
    };
    for (const w of hooks) await runOne(w);
    const final = JSON.stringify(object);
    for (const w of hooks) {
      if (w.reinvocationPolicy === 'IfNeeded' && after.has(w) && after.get(w) !== final) await runOne(w);
    }
    return object;
  }

  /** Runs the validating webhooks in parallel; the first denial (in order) rejects the request. */
  async validate(a: AdmissionAttributes, warnings: string[]): Promise<void> {
    if (Admission.excluded(a)) return;
    const request = (): Record<string, unknown> => this.review(a, a.object);
    const results = await Promise.allSettled(this.webhooks(VALIDATING).map((w) => this.invoke(w, a, request(), warnings)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /**
   * Calls one webhook if it matches. Returns its allowed response, undefined when it did not
   * apply (or failed under failurePolicy Ignore); throws the denial or the call failure.
   */
  private async invoke(w: Webhook, a: AdmissionAttributes, request: Record<string, unknown>, warnings: string[]): Promise<AdmissionResponse | undefined> {
    if (!(w.rules ?? []).some((r) => ruleMatches(r, a))) return undefined;
    if (!this.selectorsMatch(w, a)) return undefined;
    try {
      if (!this.conditionsMatch(w, request)) return undefined;
      if (a.dryRun && w.sideEffects !== 'None' && w.sideEffects !== 'NoneOnDryRun') {
        throw badRequest(`admission webhook "${w.name}" does not support dry run`);
      }
      const version = (w.admissionReviewVersions ?? []).includes('v1') ? 'v1' : 'v1beta1';
      const body = { apiVersion: `admission.k8s.io/${version}`, kind: 'AdmissionReview', request };
      const review = await this.post(w, body);
      if (!isObject(review) || review.apiVersion !== body.apiVersion || review.kind !== 'AdmissionReview') {
        throw new WebhookCallError(
          `expected webhook response of admission.k8s.io/${version}, Kind=AdmissionReview, got ${isObject(review) ? `${String(review.apiVersion)}, Kind=${String(review.kind)}` : 'something else'}`,
        );
      }
      const response = (isObject(review.response) ? review.response : undefined) as AdmissionResponse | undefined;
      if (!response) throw new WebhookCallError('webhook response was absent');
      if (response.uid !== request.uid) throw new WebhookCallError(`expected response.uid=${JSON.stringify(request.uid)}, got ${JSON.stringify(response.uid ?? '')}`);
      for (const text of response.warnings ?? []) warnings.push(text);
      if (!response.allowed) throw denial(w.name, response.status);
      return response;
    } catch (e) {
      if (!(e instanceof WebhookCallError)) throw e;
      if (w.failurePolicy === 'Ignore') return undefined;
      throw this.failure(w, e.message);
    }
  }

  private failure(w: Webhook, why: string): ApiError {
    return internalError(`failed calling webhook "${w.name}": ${why}`);
  }

  private target(w: Webhook): { url: URL; servername: string; host: string; port: number } {
    const cc = w.clientConfig ?? {};
    if (cc.url) {
      const url = new URL(cc.url);
      return { url, servername: url.hostname, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443) };
    }
    const svc = cc.service ?? {};
    const port = svc.port ?? 443;
    const resolved = this.options.resolveService(svc.namespace ?? '', svc.name ?? '', port);
    if (!resolved) {
      throw new WebhookCallError(
        `failed to call webhook: service "${svc.namespace ?? ''}/${svc.name ?? ''}:${port}" has no route in the API server double (give startApiServer a resolveService, or call api.routeService)`,
      );
    }
    const servername = `${svc.name ?? ''}.${svc.namespace ?? ''}.svc`;
    const url = new URL(`https://${servername}:${port}${svc.path ?? '/'}`);
    return { url, servername, host: resolved.host, port: resolved.port };
  }

  private post(w: Webhook, body: unknown): Promise<unknown> {
    const t = this.target(w);
    const timeoutSeconds = Math.min(w.timeoutSeconds ?? 10, 30);
    t.url.searchParams.set('timeout', `${timeoutSeconds}s`);
    const shown = `Post "${t.url.toString()}"`;
    if (!isLoopback(t.host)) {
      return Promise.reject(new WebhookCallError(`failed to call webhook: ${shown}: the API server double only calls webhooks on loopback addresses`));
    }
    const payload = Buffer.from(JSON.stringify(body));
    const ca = w.clientConfig?.caBundle ? Buffer.from(w.clientConfig.caBundle, 'base64').toString('utf8') : undefined;
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: t.host,
          port: t.port,
          method: 'POST',
          path: `${t.url.pathname}${t.url.search}`,
          servername: isIP(t.servername) ? undefined : t.servername,
          ca,
          headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Content-Length': payload.length, Host: t.url.host },
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) {
              reject(new WebhookCallError(`failed to call webhook: the server responded with the status code ${String(res.statusCode)}: ${text.slice(0, 200)}`));
              return;
            }
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(new WebhookCallError(`failed to call webhook: the response body is not JSON: ${text.slice(0, 200)}`));
            }
          });
          res.on('error', (e) => reject(new WebhookCallError(`failed to call webhook: ${shown}: ${e.message}`)));
        },
      );
      const timer = setTimeout(() => req.destroy(new Error('context deadline exceeded')), timeoutSeconds * 1000);
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(new WebhookCallError(`failed to call webhook: ${shown}: ${e.message}`));
      });
      req.end(payload);
    });
  }
}

/** Why a webhook could not be consulted; failurePolicy decides what it means. */
class WebhookCallError extends Error {}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** ToStatusErr of apiserver's webhook errors: code at least 400, message naming the webhook. */
function denial(webhook: string, status: Partial<Status> | undefined): ApiError {
  const deniedBy = `admission webhook "${webhook}" denied the request`;
  const s = status ?? {};
  const message = s.message ? `${deniedBy}: ${s.message}` : s.reason ? `${deniedBy}: ${s.reason}` : `${deniedBy} without explanation`;
  const out: Status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    code: typeof s.code === 'number' && s.code >= 400 ? s.code : 400,
  };
  if (s.reason) out.reason = s.reason;
  if (s.details) out.details = s.details;
  return new ApiError(out);
}
