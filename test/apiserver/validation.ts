/**
 * The generic validation the API server applies to every object (names, labels, annotations,
 * finalizers, owner references), with apimachinery's messages, so a test that sends a bad
 * object sees the same 422 a cluster would give.
 */
import { isIP } from 'node:net';
import type { FieldError } from './errors.js';
import type { KubeObject, ObjectMeta } from './object.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Messages of k8s.io/apimachinery/pkg/util/validation, verbatim. */
export const NAME_MESSAGES = {
  dns1123Label:
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
  dns1123Subdomain:
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
  dns1035Label:
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
  labelValue:
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
  qualifiedName:
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
} as const;

/** How a resource's names are checked (each built-in type picks one, like its ValidateXName). */
export type NameRule = 'dns1123Label' | 'dns1123Subdomain' | 'dns1035Label' | 'pathSegment';

/** RFC 1123 label: at most 63 characters. */
export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

/** RFC 1123 subdomain: at most 253 characters. */
export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** RFC 1035 label (Service names): starts with a letter. */
export function isDns1035Label(s: string): boolean {
  return s.length <= 63 && DNS1035_LABEL.test(s);
}

/** A label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name at most 63. */
export function isQualifiedName(s: string): boolean {
  const parts = s.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1] as string;
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    if (prefix === '' || !isDns1123Subdomain(prefix)) return false;
  }
  return name.length > 0 && name.length <= 63 && QUALIFIED_NAME_PART.test(name);
}

/** A label value: empty, or at most 63 alphanumerics with `-_.` inside. */
export function isLabelValue(s: string): boolean {
  return s.length <= 63 && LABEL_VALUE.test(s);
}

/** An IPv4 or IPv6 address in canonical-enough form (Go's netip rejects leading zeros too). */
export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** `ip/prefix` with a prefix length valid for the family. */
export function isCidr(s: string): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(s);
  if (!m) return false;
  const family = isIP(m[1] as string);
  const bits = Number(m[2]);
  return family !== 0 && bits <= (family === 4 ? 32 : 128);
}

/** Errors for a name under the given rule (empty list when valid). */
export function validateName(name: string, rule: NameRule, field = 'metadata.name'): FieldError[] {
  const errs: FieldError[] = [];
  // Every name is a path segment in a URL, whatever else the type asks.
  if (name === '.' || name === '..') errs.push({ type: 'Invalid', field, value: name, detail: `may not be '${name}'` });
  for (const bad of ['/', '%']) {
    if (name.includes(bad)) errs.push({ type: 'Invalid', field, value: name, detail: `may not contain '${bad}'` });
  }
  if (errs.length || rule === 'pathSegment') return errs;
  const ok = rule === 'dns1123Label' ? isDns1123Label(name) : rule === 'dns1035Label' ? isDns1035Label(name) : isDns1123Subdomain(name);
  if (!ok) {
    const max = rule === 'dns1123Subdomain' ? 253 : 63;
    const detail = name.length > max ? `must be no more than ${max} characters` : NAME_MESSAGES[rule];
    errs.push({ type: 'Invalid', field, value: name, detail });
  }
  return errs;
}

function validateLabels(labels: unknown, field: string): FieldError[] {
  if (labels === undefined || labels === null) return [];
  if (typeof labels !== 'object' || Array.isArray(labels)) return [{ type: 'TypeInvalid', field, value: labels, detail: 'must be a map of strings' }];
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    if (!isQualifiedName(k)) errs.push({ type: 'Invalid', field, value: k, detail: NAME_MESSAGES.qualifiedName });
    if (typeof v !== 'string' || !isLabelValue(v)) errs.push({ type: 'Invalid', field, value: v, detail: NAME_MESSAGES.labelValue });
  }
  return errs;
}

const ANNOTATIONS_MAX_BYTES = 256 * 1024;

function validateAnnotations(annotations: unknown, field: string): FieldError[] {
  if (annotations === undefined || annotations === null) return [];
  if (typeof annotations !== 'object' || Array.isArray(annotations)) return [{ type: 'TypeInvalid', field, value: annotations, detail: 'must be a map of strings' }];
  const errs: FieldError[] = [];
  let size = 0;
  for (const [k, v] of Object.entries(annotations as Record<string, unknown>)) {
    if (!isQualifiedName(k.toLowerCase())) errs.push({ type: 'Invalid', field, value: k, detail: NAME_MESSAGES.qualifiedName });
    if (typeof v !== 'string') errs.push({ type: 'TypeInvalid', field: `${field}.${k}`, value: v, detail: 'must be a string' });
    size += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  }
  if (size > ANNOTATIONS_MAX_BYTES) errs.push({ type: 'TooLong', field, detail: `: must have at most ${ANNOTATIONS_MAX_BYTES} bytes` });
  return errs;
}

function validateOwnerReferences(refs: ObjectMeta['ownerReferences'], field: string): FieldError[] {
  if (!refs) return [];
  const errs: FieldError[] = [];
  let controllers = 0;
  refs.forEach((r, i) => {
    const f = `${field}[${i}]`;
    if (!r.apiVersion) errs.push({ type: 'Invalid', field: `${f}.apiVersion`, value: r.apiVersion ?? '', detail: 'version must not be empty' });
    if (!r.kind) errs.push({ type: 'Invalid', field: `${f}.kind`, value: r.kind ?? '', detail: 'kind must not be empty' });
    if (!r.name) errs.push({ type: 'Invalid', field: `${f}.name`, value: r.name ?? '', detail: 'name must not be empty' });
    if (!r.uid) errs.push({ type: 'Invalid', field: `${f}.uid`, value: r.uid ?? '', detail: 'uid must not be empty' });
    if (r.controller) controllers++;
  });
  if (controllers > 1) {
    errs.push({ type: 'Invalid', field, value: refs, detail: 'Only one reference can have Controller set to true' });
  }
  return errs;
}

/**
 * ValidateObjectMeta: name (or generateName), labels, annotations, finalizers, owner
 * references. `namespaced` decides whether a namespace is required or forbidden.
 */
export function validateObjectMeta(obj: KubeObject, rule: NameRule, namespaced: boolean): FieldError[] {
  const m = obj.metadata;
  const errs: FieldError[] = [];
  if (!m.name) {
    errs.push({ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' });
  } else {
    errs.push(...validateName(m.name, rule));
  }
  if (namespaced && !m.namespace) errs.push({ type: 'Required', field: 'metadata.namespace' });
  errs.push(...validateLabels(m.labels, 'metadata.labels'));
  errs.push(...validateAnnotations(m.annotations, 'metadata.annotations'));
  (m.finalizers ?? []).forEach((f, i) => {
    if (typeof f !== 'string' || !isQualifiedName(f)) {
      errs.push({ type: 'Invalid', field: `metadata.finalizers[${i}]`, value: f, detail: NAME_MESSAGES.qualifiedName });
    }
  });
  errs.push(...validateOwnerReferences(m.ownerReferences, 'metadata.ownerReferences'));
  return errs;
}

/** Checks a label map embedded in a spec (e.g. a Service selector). */
export function validateLabelMap(labels: unknown, field: string): FieldError[] {
  return validateLabels(labels, field);
}
