/**
 * The REST semantics of every resource: what get, list, create, update, patch and delete do,
 * in the order kube-apiserver does it (decode and default, namespace lifecycle, mutating
 * admission, system fields, allocation, PrepareForCreate/Update, validation, validating
 * admission, compare-and-swap write). HTTP is not here: the server maps requests onto these
 * calls, and tests may call them directly.
 */
import { randomUUID } from 'node:crypto';
import type { Admission, UserInfo } from './admission.js';
import {
  alreadyExists,
  ApiError,
  badRequest,
  conflict,
  expired,
  FieldErrors,
  forbidden,
  invalid,
  notFound,
  OPTIMISTIC_LOCK_MESSAGE,
  success,
  unsupportedMediaType,
  type FieldError,
  type Status,
} from './errors.js';
import { clone, isObject, jsonEqual, timestamp, type KubeObject } from './object.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from './patch.js';
import { apiVersionOfType, type ResourceType } from './resources.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector, type FieldRequirement, type LabelSelector } from './selectors.js';
import type { ObjectStore } from './store.js';
import { validateObjectMeta } from './validation.js';

/** Per-request context. */
export interface RequestContext {
  user: UserInfo;
  dryRun: boolean;
  /** Whether admission webhooks run (off for the test-facing store). */
  admission: boolean;
  /** Warnings for the client (Warning headers), appended to by every layer. */
  warnings: string[];
  /** What to do with fields a custom resource schema does not declare. */
  fieldValidation: 'Ignore' | 'Warn' | 'Strict';
  /** The request's options object (CreateOptions etc.), passed on to webhooks. */
  options?: Record<string, unknown>;
}

/** The list options the server understands. */
export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

/** A list result before it is wrapped as a `XList` or a Table. */
export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** metav1.DeleteOptions as far as the double honours them. */
export interface DeleteOptions {
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
  gracePeriodSeconds?: number;
}

/** The media types of PATCH. */
export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** Compiled selectors of a list or watch. */
export interface ObjectFilter {
  labels: LabelSelector;
  fields: FieldRequirement[];
  matches(stored: KubeObject): boolean;
}

/** Applies a type's defaults to an object of its version (after each webhook patch, as decoding does). */
export function normalizeObject(t: ResourceType, obj: KubeObject): KubeObject {
  const stored = t.fromVersion(clone(obj));
  t.strategy.defaults?.(stored);
  return t.toVersion(stored);
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

/** generateName's suffix: five characters from the apiserver's consonant-and-digit alphabet. */
function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)];
  return s;
}

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: t.rv, start: t.start })).toString('base64');
}

function decodeContinue(token: string): ContinueToken {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
    if (isObject(parsed) && parsed.v === 'meta.k8s.io/v1' && typeof parsed.rv === 'number' && typeof parsed.start === 'string') {
      return { rv: parsed.rv, start: parsed.start };
    }
  } catch {
    // fall through
  }
  throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

function storageKey(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}

/** The fields whose change bumps metadata.generation: everything but metadata (and status when it is a subresource). */
function specPart(o: KubeObject, withoutStatus: boolean): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...o };
  delete rest.metadata;
  delete rest.apiVersion;
  delete rest.kind;
  if (withoutStatus) delete rest.status;
  return rest;
}

/** Everything but the resourceVersion, for detecting no-op writes (which write nothing, as in a cluster). */
function withoutVersion(o: KubeObject): KubeObject {
  return { ...o, metadata: { ...o.metadata, resourceVersion: undefined } };
}

/** Options of the REST layer. */
export interface RestOptions {
  store: ObjectStore;
  admission: Admission;
  now?: () => Date;
}

/** See the file comment. */
export class Rest {
  private readonly store: ObjectStore;
  private readonly admission: Admission;
  private readonly now: () => Date;

  constructor(options: RestOptions) {
    this.store = options.store;
    this.admission = options.admission;
    this.now = options.now ?? ((): Date => new Date());
  }

  /* ------------------------------------------------------------------ reads */

  /** GET of one object, in the type's version. */
  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(t.storage, t.namespaced ? namespace : undefined, name);
    if (!o) throw notFound(t, name);
    return t.toVersion(o);
  }

  /** Compiles label and field selectors for a type; unknown field labels are a 400. */
  filter(t: ResourceType, labelSelector: string | undefined, fieldSelector: string | undefined): ObjectFilter {
    const labels = parseLabelSelector(labelSelector ?? '');
    const fields = parseFieldSelector(fieldSelector ?? '').map((r) => ({ ...r, field: t.fieldAlias?.[r.field] ?? r.field }));
    const known = new Set(['metadata.name', 'metadata.namespace', ...Object.keys(t.fields?.({ metadata: {} }) ?? {})]);
    for (const r of fields) {
      if (!known.has(r.field)) throw badRequest(`field label not supported: ${r.field}`);
    }
    return {
      labels,
      fields,
      matches: (o) => {
        if (!matchesLabels(labels, o.metadata.labels)) return false;
        if (fields.length === 0) return true;
        const values = { 'metadata.name': o.metadata.name ?? '', 'metadata.namespace': o.metadata.namespace ?? '', ...(t.fields?.(o) ?? {}) };
        return matchesFields(fields, values);
      },
    };
  }

  /**
   * LIST with selectors and pagination. Pages after the first read the state as of the first
   * page's resourceVersion (410 Expired once that is out of the history), as etcd does.
   * `serialize`: the caller writes the result out at once and changes nothing in it.
   */
  list(t: ResourceType, namespace: string | undefined, opts: ListOptions, use: 'copy' | 'serialize' = 'copy'): ListResult {
    const filter = this.filter(t, opts.labelSelector, opts.fieldSelector);
    const ns = t.namespaced ? namespace : undefined;
    let rv = this.store.resourceVersion;
    let start = '';
    let objects: KubeObject[];
    if (opts.continue) {
      const token = decodeContinue(opts.continue);
      if (token.rv < this.store.oldestRevision) {
        throw expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
        );
      }
      rv = token.rv;
      start = token.start;
      objects = this.store.listAt(t.storage, ns, rv);
    } else if (opts.resourceVersion && (opts.resourceVersionMatch === 'Exact' || this.legacyExactList(opts))) {
      rv = Number(opts.resourceVersion);
      if (!Number.isInteger(rv)) throw badRequest(`invalid resource version: ${opts.resourceVersion}`);
      objects = this.store.listAt(t.storage, ns, rv);
    } else {
      // Objects the caller only serializes need no copy (see Store.listShared).
      objects = use === 'serialize' ? this.store.listShared(t.storage, ns) : this.store.list(t.storage, ns);
    }
    const matching = objects.filter((o) => storageKey(o) > start && filter.matches(o));
    const result: ListResult = { items: [], resourceVersion: String(rv) };
    let page = matching;
    if (opts.limit && opts.limit > 0 && matching.length > opts.limit) {
      page = matching.slice(0, opts.limit);
      result.continue = encodeContinue({ rv, start: storageKey(page[page.length - 1] as KubeObject) });
      if (filter.labels.length === 0 && filter.fields.length === 0) result.remainingItemCount = matching.length - page.length;
    }
    result.items = page.map((o) => t.toVersion(o));
    return result;
  }

  /**
   * Whether a list reads at exactly its resourceVersion although it does not say Exact: a
   * paginated list (limit) from a resourceVersion other than "0" without resourceVersionMatch.
   * kube-apiserver sends those past its watch cache to etcd at that revision, so after a
   * compaction they fail with 410 Expired (client-go's reflector then relists from "").
   * Without a limit the watch cache answers with its current state.
   */
  private legacyExactList(opts: ListOptions): boolean {
    return !opts.resourceVersionMatch && opts.resourceVersion !== '0' && (opts.limit ?? 0) > 0;
  }

  /* ----------------------------------------------------------------- writes */

  private checkBody(t: ResourceType, body: unknown): KubeObject {
    if (!isObject(body)) throw badRequest('the body of the request must be a JSON object');
    const expected = apiVersionOfType(t);
    // Like the apiserver's decoder, a body without apiVersion/kind takes them from the URL.
    body = { ...body, apiVersion: body.apiVersion ?? expected, kind: body.kind ?? t.kind };
    if (!isObject(body)) throw badRequest('the body of the request must be a JSON object');
    if (body.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`);
    }
    if (body.kind !== t.kind) throw badRequest(`${String(body.kind)} in version "${t.version}" cannot be handled as a ${t.kind}: the kind does not match the URL`);
    if (body.metadata !== undefined && !isObject(body.metadata)) throw badRequest('metadata must be an object');
    const obj = clone(body) as KubeObject;
    obj.metadata ??= {};
    return obj;
  }

  private placeNamespace(t: ResourceType, obj: KubeObject, namespace: string | undefined): void {
    if (!t.namespaced) {
      delete obj.metadata.namespace;
      return;
    }
    if (!obj.metadata.namespace) obj.metadata.namespace = namespace;
    else if (namespace !== undefined && obj.metadata.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
  }

  /** Decode-time defaulting (and, for custom resources, pruning with fieldValidation). */
  private decode(t: ResourceType, obj: KubeObject, ctx: RequestContext): KubeObject {
    const stored = t.fromVersion(obj);
    const dropped = t.strategy.defaults?.(stored) ?? [];
    if (dropped.length && ctx.fieldValidation === 'Strict') {
      throw badRequest(`${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}: strict decoding error: ${dropped.map((p) => `unknown field "${p}"`).join(', ')}`);
    }
    if (ctx.fieldValidation === 'Warn') for (const p of dropped) ctx.warnings.push(`unknown field "${p}"`);
    return t.toVersion(stored);
  }

  /** NamespaceLifecycle: namespaced objects need an existing namespace that is not terminating. */
  private checkNamespace(t: ResourceType, namespace: string, name: string): void {
    const ns = this.store.get('namespaces', undefined, namespace);
    if (!ns) throw notFound({ group: '', resource: 'namespaces' }, namespace);
    if (ns.metadata.deletionTimestamp) {
      throw forbidden(t, name, `unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  private invalid(t: ResourceType, name: string, errors: FieldError[]): ApiError {
    return invalid({ group: t.group, kind: t.kind }, name, errors);
  }

  private validation(t: ResourceType, stored: KubeObject, old: KubeObject | undefined, subresource: string): FieldError[] {
    const errs = validateObjectMeta(stored, t.nameRule, t.namespaced);
    if (subresource === 'status') errs.push(...((t.strategy.validateStatus ?? t.strategy.validate)?.call(t.strategy, stored, old as KubeObject) ?? []));
    else errs.push(...(t.strategy.validate?.(stored, old) ?? []));
    if (old?.metadata.deletionTimestamp) {
      const before = new Set(old.metadata.finalizers ?? []);
      if ((stored.metadata.finalizers ?? []).some((f) => !before.has(f))) {
        errs.push({ type: 'Forbidden', field: 'metadata.finalizers', detail: 'no new finalizers can be added if the object is being deleted' });
      }
    }
    return errs;
  }

  private allocate(t: ResourceType, stored: KubeObject, old: KubeObject | undefined, ctx: RequestContext): () => void {
    if (!t.strategy.allocate) return () => undefined;
    try {
      const r = t.strategy.allocate(stored, old, { dryRun: ctx.dryRun });
      return () => r.release();
    } catch (e) {
      if (e instanceof FieldErrors) throw this.invalid(t, stored.metadata.name ?? '', e.errors);
      throw e;
    }
  }

  /** POST: creates an object; returns it as stored (or as it would be, under dryRun). */
  async create(t: ResourceType, namespace: string | undefined, body: unknown, ctx: RequestContext): Promise<KubeObject> {
    let obj = this.checkBody(t, body);
    this.placeNamespace(t, obj, namespace);
    obj = this.decode(t, obj, ctx);
    const ns = obj.metadata.namespace;
    if (t.namespaced) this.checkNamespace(t, ns ?? '', obj.metadata.name ?? '');
    if (ctx.admission) {
      obj = (await this.admission.mutate(
        {
          operation: 'CREATE',
          type: t,
          subresource: '',
          namespace: ns ?? '',
          name: obj.metadata.name ?? '',
          object: obj,
          oldObject: null,
          dryRun: ctx.dryRun,
          options: ctx.options ?? {},
          user: ctx.user,
        },
        ctx.warnings,
      )) as KubeObject;
    }
    const stored = t.fromVersion(obj);
    const m = stored.metadata;
    // FillObjectMetaSystemFields: whatever the client sent for these is replaced.
    m.uid = randomUUID();
    m.creationTimestamp = timestamp(this.now());
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    delete m.resourceVersion;
    delete m.selfLink;
    if (t.tracksGeneration) m.generation = 1;
    else delete m.generation;
    const generated = !m.name && !!m.generateName;
    if (generated) m.name = `${m.generateName}${randomSuffix()}`;
    const release = this.allocate(t, stored, undefined, ctx);
    try {
      t.strategy.prepareForCreate?.(stored);
      const errs = this.validation(t, stored, undefined, '');
      if (errs.length) throw this.invalid(t, m.name ?? '', errs);
      ctx.warnings.push(...(t.strategy.warnings?.(stored, undefined) ?? []));
      if (ctx.admission) {
        await this.admission.validate(
          {
            operation: 'CREATE',
            type: t,
            subresource: '',
            namespace: ns ?? '',
            name: m.name ?? '',
            object: t.toVersion(stored),
            oldObject: null,
            dryRun: ctx.dryRun,
            options: ctx.options ?? {},
            user: ctx.user,
          },
          ctx.warnings,
        );
      }
      if (ctx.dryRun) return t.toVersion(stored);
      for (let attempt = 0; ; attempt++) {
        const r = this.store.create(t.storage, stored);
        if (r.ok) return t.toVersion(r.object);
        if (!generated || attempt >= 8) throw alreadyExists(t, m.name ?? '');
        m.name = `${m.generateName}${randomSuffix()}`;
      }
    } finally {
      release();
    }
  }

  /** PUT: replaces an object (or its status); may create when the type allows it. */
  async update(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    ctx: RequestContext,
    subresource = '',
  ): Promise<{ object: KubeObject; created: boolean }> {
    let obj = this.checkBody(t, body);
    if (obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name ?? ''}) does not match the name on the URL (${name})`);
    }
    this.placeNamespace(t, obj, namespace);
    obj = this.decode(t, obj, ctx);
    const ns = t.namespaced ? obj.metadata.namespace : undefined;
    for (;;) {
      const existing = this.store.get(t.storage, ns, name);
      if (!existing) {
        if (t.allowCreateOnUpdate && subresource === '') return { object: await this.create(t, ns, obj, ctx), created: true };
        throw notFound(t, name);
      }
      const result = await this.updateFrom(t, existing, obj, ctx, subresource);
      if (result !== 'retry') return { object: result, created: false };
    }
  }

  /**
   * The update path shared by PUT and PATCH, against the stored object `existing`. Returns
   * 'retry' when the object changed underneath an unconditional update (the caller re-reads
   * and tries again, as GuaranteedUpdate does).
   */
  private async updateFrom(t: ResourceType, existing: KubeObject, requested: KubeObject, ctx: RequestContext, subresource: string): Promise<KubeObject | 'retry'> {
    const name = existing.metadata.name ?? '';
    const current = t.toVersion(existing);
    let obj = clone(requested);
    if (subresource === 'status') {
      // ResetObjectMetaForStatus: only status (and the precondition) comes from the request.
      const status = obj.status;
      obj = { ...clone(current), metadata: { ...clone(current.metadata), resourceVersion: obj.metadata.resourceVersion } };
      if (status === undefined) delete obj.status;
      else obj.status = status;
    } else if (subresource === 'finalize') {
      const finalizers = isObject(obj.spec) ? obj.spec.finalizers : undefined;
      obj = {
        ...clone(current),
        metadata: { ...clone(current.metadata), resourceVersion: obj.metadata.resourceVersion },
        spec: { ...(isObject(current.spec) ? current.spec : {}), finalizers },
      };
    }
    if (ctx.admission) {
      obj = (await this.admission.mutate(
        {
          operation: 'UPDATE',
          type: t,
          subresource,
          namespace: existing.metadata.namespace ?? '',
          name,
          object: obj,
          oldObject: current,
          dryRun: ctx.dryRun,
          options: ctx.options ?? {},
          user: ctx.user,
        },
        ctx.warnings,
      )) as KubeObject;
    }
    const requestedRv = obj.metadata.resourceVersion;
    if (!requestedRv) {
      if (!t.allowUnconditionalUpdate) {
        throw invalid({ group: t.group, kind: t.kind }, name, [{ type: 'Invalid', field: 'metadata.resourceVersion', value: 0, detail: 'must be specified for an update' }]);
      }
    } else if (requestedRv !== existing.metadata.resourceVersion) {
      throw conflict(t, name, OPTIMISTIC_LOCK_MESSAGE);
    }
    // Admission may have taken a while; if the object moved meanwhile, start over (or conflict).
    const latest = this.store.get(t.storage, existing.metadata.namespace, name);
    if (latest?.metadata.resourceVersion !== existing.metadata.resourceVersion) {
      if (requestedRv) throw conflict(t, name, OPTIMISTIC_LOCK_MESSAGE);
      return 'retry';
    }
    const stored = t.fromVersion(obj);
    const m = stored.metadata;
    const om = existing.metadata;
    m.name = om.name;
    if (om.namespace !== undefined) m.namespace = om.namespace;
    m.uid = om.uid;
    m.creationTimestamp = om.creationTimestamp;
    if (om.deletionTimestamp) m.deletionTimestamp = om.deletionTimestamp;
    else delete m.deletionTimestamp;
    if (om.deletionGracePeriodSeconds !== undefined) m.deletionGracePeriodSeconds = om.deletionGracePeriodSeconds;
    else delete m.deletionGracePeriodSeconds;
    if (om.generation !== undefined) m.generation = om.generation;
    else delete m.generation;
    delete m.selfLink;
    let release = (): void => undefined;
    if (subresource === '') {
      release = this.allocate(t, stored, existing, ctx);
      t.strategy.prepareForUpdate?.(stored, existing);
    } else if (subresource === 'status') {
      t.strategy.prepareForStatusUpdate?.(stored, existing);
    }
    try {
      const errs = this.validation(t, stored, existing, subresource);
      if (errs.length) throw this.invalid(t, name, errs);
      ctx.warnings.push(...(t.strategy.warnings?.(stored, existing) ?? []));
      if (t.tracksGeneration && !jsonEqual(specPart(stored, t.statusSubresource), specPart(existing, t.statusSubresource))) {
        m.generation = (om.generation ?? 0) + 1;
      }
      if (ctx.admission) {
        await this.admission.validate(
          {
            operation: 'UPDATE',
            type: t,
            subresource,
            namespace: om.namespace ?? '',
            name,
            object: t.toVersion(stored),
            oldObject: current,
            dryRun: ctx.dryRun,
            options: ctx.options ?? {},
            user: ctx.user,
          },
          ctx.warnings,
        );
      }
      m.resourceVersion = om.resourceVersion;
      if (jsonEqual(withoutVersion(stored), withoutVersion(existing))) return current;
      if (ctx.dryRun) return t.toVersion(stored);
      if (m.deletionTimestamp && (m.finalizers ?? []).length === 0 && !this.heldBySpecFinalizers(t, stored)) {
        // Removing the last finalizer of a deleting object deletes it.
        const r = this.store.remove(t.storage, om.namespace, name, om.resourceVersion);
        if (!r.ok) {
          if (requestedRv) throw conflict(t, name, OPTIMISTIC_LOCK_MESSAGE);
          return 'retry';
        }
        return t.toVersion({ ...stored, metadata: { ...stored.metadata, resourceVersion: r.object.metadata.resourceVersion } });
      }
      const r = this.store.update(t.storage, stored, om.resourceVersion ?? '');
      if (!r.ok) {
        if (r.why === 'missing') throw notFound(t, name);
        if (requestedRv) throw conflict(t, name, OPTIMISTIC_LOCK_MESSAGE);
        return 'retry';
      }
      return t.toVersion(r.object);
    } finally {
      release();
    }
  }

  /** Namespaces stay while spec.finalizers (the namespace controller's) remain. */
  private heldBySpecFinalizers(t: ResourceType, stored: KubeObject): boolean {
    return t.storage === 'namespaces' && isObject(stored.spec) && Array.isArray(stored.spec.finalizers) && stored.spec.finalizers.length > 0;
  }

  /** PATCH with a JSON, merge or strategic merge patch (the body already parsed as JSON). */
  async patch(t: ResourceType, namespace: string | undefined, name: string, patch: unknown, patchType: string, ctx: RequestContext, subresource = ''): Promise<KubeObject> {
    const accepted = t.patchMeta ? [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.strategic, PATCH_TYPES.apply] : [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply];
    if (patchType === PATCH_TYPES.apply) throw unsupportedMediaType(accepted.filter((a) => a !== PATCH_TYPES.apply));
    if (!accepted.includes(patchType as (typeof accepted)[number])) throw unsupportedMediaType(accepted);
    const ns = t.namespaced ? namespace : undefined;
    for (;;) {
      const existing = this.store.get(t.storage, ns, name);
      if (!existing) throw notFound(t, name);
      const current = t.toVersion(existing);
      let patched: unknown;
      try {
        if (patchType === PATCH_TYPES.json) patched = applyJsonPatch(current, patch);
        else if (patchType === PATCH_TYPES.merge) patched = applyMergePatch(current, patch);
        else patched = applyStrategicMergePatch(current, patch, t.patchMeta ?? {});
      } catch (e) {
        if (!(e instanceof PatchError)) throw e;
        if (e.stage === 'decode') throw badRequest(e.message);
        throw new ApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: 'Invalid', code: 422 });
      }
      if (!isObject(patched) || !isObject(patched.metadata)) throw badRequest('the patch removed metadata');
      const obj = patched as KubeObject;
      if (obj.metadata.name !== name) throw badRequest(`the name of the object (${String(obj.metadata.name)}) does not match the name on the URL (${name})`);
      if (obj.apiVersion !== current.apiVersion || obj.kind !== current.kind) throw badRequest('the patch changed apiVersion or kind');
      const decoded = this.decode(t, obj, ctx);
      const result = await this.updateFrom(t, existing, decoded, ctx, subresource);
      if (result !== 'retry') return result;
    }
  }

  /**
   * DELETE: runs admission, then either removes the object or, when finalizers hold it (or
   * the propagation policy adds one), marks it with a deletionTimestamp. Returns the HTTP
   * body: the object when it stays, a success Status when it is gone.
   */
  async delete(t: ResourceType, namespace: string | undefined, name: string, options: DeleteOptions, ctx: RequestContext): Promise<KubeObject | Status> {
    const ns = t.namespaced ? namespace : undefined;
    for (;;) {
      const existing = this.store.get(t.storage, ns, name);
      if (!existing) throw notFound(t, name);
      const m = existing.metadata;
      const pre = options.preconditions ?? {};
      if (pre.uid !== undefined && pre.uid !== m.uid) {
        throw conflict(t, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${m.uid ?? ''}`);
      }
      if (pre.resourceVersion !== undefined && pre.resourceVersion !== m.resourceVersion) {
        throw conflict(t, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${m.resourceVersion ?? ''}`);
      }
      const current = t.toVersion(existing);
      if (ctx.admission) {
        const attrs = {
          operation: 'DELETE' as const,
          type: t,
          subresource: '',
          namespace: m.namespace ?? '',
          name,
          object: null,
          oldObject: current,
          dryRun: ctx.dryRun,
          options: { ...options, ...(ctx.options ?? {}) },
          user: ctx.user,
        };
        await this.admission.mutate(attrs, ctx.warnings);
        await this.admission.validate(attrs, ctx.warnings);
      }
      if (ctx.dryRun) return current;
      if (m.deletionTimestamp) return current;
      const policy = options.propagationPolicy ?? (options.orphanDependents === true ? 'Orphan' : 'Background');
      const finalizers = [...(m.finalizers ?? [])];
      for (const f of t.finalizersOnDelete ?? []) if (!finalizers.includes(f)) finalizers.push(f);
      if (policy === 'Orphan' && !finalizers.includes('orphan')) finalizers.push('orphan');
      if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');
      const isNamespace = t.storage === 'namespaces';
      if (finalizers.length || isNamespace) {
        const marked: KubeObject = { ...existing, metadata: { ...m, finalizers, deletionTimestamp: timestamp(this.now()), deletionGracePeriodSeconds: 0 } };
        if (finalizers.length === 0) delete marked.metadata.finalizers;
        if (isNamespace) marked.status = { ...(isObject(existing.status) ? existing.status : {}), phase: 'Terminating' };
        const r = this.store.update(t.storage, marked, m.resourceVersion ?? '');
        if (!r.ok) continue;
        return t.toVersion(r.object);
      }
      const r = this.store.remove(t.storage, m.namespace, name, m.resourceVersion);
      if (!r.ok) continue;
      if (t.returnDeletedObject) return t.toVersion(r.object);
      const details: NonNullable<Status['details']> = { name, kind: t.resource, uid: m.uid ?? '' };
      if (t.group) details.group = t.group;
      return success(details);
    }
  }

  /** DELETE on a collection: deletes each selected object (admission runs per object). */
  async deleteCollection(t: ResourceType, namespace: string | undefined, opts: ListOptions, options: DeleteOptions, ctx: RequestContext): Promise<Status> {
    const { items } = this.list(t, namespace, { ...opts, limit: 0, continue: '' });
    for (const o of items) {
      try {
        await this.delete(t, o.metadata.namespace, o.metadata.name ?? '', options, ctx);
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    const details: NonNullable<Status['details']> = { kind: t.resource };
    if (t.group) details.group = t.group;
    return success(details);
  }
}
