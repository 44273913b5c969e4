/**
 * Errors the way the Kubernetes API server reports them: a `Status` object whose `code`,
 * `reason` and `message` follow k8s.io/apimachinery/pkg/api/errors, so that clients
 * (kubectl, client-node) print and classify them exactly as against a real cluster.
 */

/** One field-level problem, rendered like apimachinery's `field.Error`. */
export interface FieldError {
  type: 'Invalid' | 'Required' | 'Forbidden' | 'Duplicate' | 'NotSupported' | 'TooLong' | 'TooMany' | 'TypeInvalid';
  /** Dotted path, e.g. `spec.ports[0].port`. */
  field: string;
  value?: unknown;
  detail?: string;
  /** For NotSupported: the values that would have been accepted. */
  supported?: readonly string[];
}

/** A cause inside `Status.details.causes`. */
export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

/** The `metav1.Status` object. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: StatusCause[];
    retryAfterSeconds?: number;
  };
  code: number;
}

/** A failed API call; `status` is what goes on the wire. */
export class ApiError extends Error {
  constructor(readonly status: Status) {
    super(status.message);
    this.name = 'ApiError';
  }

  get code(): number {
    return this.status.code;
  }
}

/** A resource qualified by its group, as error messages name it (`leases.coordination.k8s.io`). */
export interface GroupResource {
  group: string;
  resource: string;
}

/** `resource.group`, or just `resource` for the core group (apimachinery's GroupResource.String). */
export function qualifiedResource(gr: GroupResource): string {
  return gr.group ? `${gr.resource}.${gr.group}` : gr.resource;
}

function failure(code: number, reason: string, message: string, details?: Status['details']): ApiError {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) status.details = details;
  return new ApiError(status);
}

function details(gr: GroupResource, name: string): NonNullable<Status['details']> {
  const d: NonNullable<Status['details']> = { name, kind: gr.resource };
  if (gr.group) d.group = gr.group;
  return d;
}

/** 404 `services "x" not found`. */
export function notFound(gr: GroupResource, name: string): ApiError {
  return failure(404, 'NotFound', `${qualifiedResource(gr)} "${name}" not found`, details(gr, name));
}

/** 404 for a path that names no resource the server knows. */
export function resourceNotFound(): ApiError {
  return failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** 409 `services "x" already exists`. */
export function alreadyExists(gr: GroupResource, name: string): ApiError {
  return failure(409, 'AlreadyExists', `${qualifiedResource(gr)} "${name}" already exists`, details(gr, name));
}

/** The message of an optimistic-concurrency failure (apiserver's OptimisticLockErrorMsg). */
export const OPTIMISTIC_LOCK_MESSAGE = 'the object has been modified; please apply your changes to the latest version and try again';

/** 409 `Operation cannot be fulfilled on services "x": <why>`. */
export function conflict(gr: GroupResource, name: string, why: string): ApiError {
  return failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(gr)} "${name}": ${why}`, details(gr, name));
}

/** 403 `services "x" is forbidden: <why>`. */
export function forbidden(gr: GroupResource, name: string, why: string): ApiError {
  const subject = name ? `${qualifiedResource(gr)} "${name}"` : qualifiedResource(gr);
  return failure(403, 'Forbidden', `${subject} is forbidden: ${why}`, details(gr, name));
}

/** 400 with a free-form message. */
export function badRequest(message: string): ApiError {
  return failure(400, 'BadRequest', message);
}

/** 401, for requests without the kubeconfig's bearer token. */
export function unauthorized(): ApiError {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

/** 405: the resource exists but does not support this verb. */
export function methodNotAllowed(): ApiError {
  return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

/** 406: the client accepts no representation we can produce. */
export function notAcceptable(): ApiError {
  return failure(406, 'NotAcceptable', 'only the following media types are accepted: application/json, application/yaml');
}

/** 415: e.g. a strategic merge patch sent to a custom resource. */
export function unsupportedMediaType(accepted: readonly string[]): ApiError {
  return failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);
}

/** 410 Expired, for a resourceVersion or continue token older than the retained history. */
export function expired(message: string): ApiError {
  return failure(410, 'Expired', message);
}

/** 500, e.g. a webhook that could not be called under failurePolicy Fail. */
export function internalError(message: string): ApiError {
  return failure(500, 'InternalError', `Internal error occurred: ${message}`, {
    causes: [{ reason: '', message, field: '' }],
  });
}

/** 504, for a webhook or request that ran out of time. */
export function timeout(message: string): ApiError {
  return failure(504, 'Timeout', message);
}

/** Go's %#v-ish rendering of a value inside a field error, as clients see it. */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    return `[]string{${value.map((v) => JSON.stringify(v)).join(', ')}}`;
  }
  return JSON.stringify(value);
}

/** The text after `field: `, as apimachinery's field.Error.ErrorBody renders it. */
export function fieldErrorBody(e: FieldError): string {
  const detail = e.detail ? `: ${e.detail}` : '';
  switch (e.type) {
    case 'Invalid':
      return `Invalid value: ${renderValue(e.value)}${detail}`;
    case 'Required':
      return `Required value${detail}`;
    case 'Forbidden':
      return `Forbidden${detail}`;
    case 'Duplicate':
      return `Duplicate value: ${renderValue(e.value)}`;
    case 'NotSupported':
      return `Unsupported value: ${renderValue(e.value)}: supported values: ${(e.supported ?? []).map((s) => JSON.stringify(s)).join(', ')}`;
    case 'TooLong':
      return `Too long${detail}`;
    case 'TooMany':
      return `Too many${detail}`;
    case 'TypeInvalid':
      return `Invalid value: ${renderValue(e.value)}${detail}`;
  }
}

const CAUSE_REASON: Record<FieldError['type'], string> = {
  Invalid: 'FieldValueInvalid',
  Required: 'FieldValueRequired',
  Forbidden: 'FieldValueForbidden',
  Duplicate: 'FieldValueDuplicate',
  NotSupported: 'FieldValueNotSupported',
  TooLong: 'FieldValueTooLong',
  TooMany: 'FieldValueTooMany',
  TypeInvalid: 'FieldValueTypeInvalid',
};

/**
 * 422 `Service "x" is invalid: spec.a: ...` (or `[a, b]` for several), with one cause per
 * field error, as apierrors.NewInvalid builds it.
 */
export function invalid(kind: { group: string; kind: string }, name: string, errors: readonly FieldError[]): ApiError {
  const rendered = errors.map((e) => `${e.field}: ${fieldErrorBody(e)}`);
  const aggregate = rendered.length === 1 ? rendered[0] : `[${rendered.join(', ')}]`;
  const qualifiedKind = kind.group ? `${kind.kind}.${kind.group}` : kind.kind;
  const d: NonNullable<Status['details']> = {
    name,
    kind: kind.kind,
    causes: errors.map((e) => ({ reason: CAUSE_REASON[e.type], message: fieldErrorBody(e), field: e.field })),
  };
  if (kind.group) d.group = kind.group;
  return failure(422, 'Invalid', `${qualifiedKind} "${name}" is invalid: ${aggregate}`, d);
}

/**
 * Field errors found below the layer that knows the object's kind and name (allocation, schema
 * checks); the request handler turns them into a 422 with `invalid`.
 */
export class FieldErrors extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.field}: ${fieldErrorBody(e)}`).join(', '));
    this.name = 'FieldErrors';
  }
}

/** A Status of success, as returned by delete. */
export function success(d: Status['details']): Status {
  const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 };
  if (d) s.details = d;
  return s;
}

/** Any thrown value as an ApiError (unknown errors become 500, so a bug in the double is visible). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return failure(500, 'InternalError', `Internal error occurred: ${message}`);
}
