/**
 * What the API server does with a CRD's structural `openAPIV3Schema` for each custom object:
 * prune fields the schema does not declare, apply `default`s, and validate (types, required,
 * enum, pattern, bounds, lengths, item counts, int-or-string, nullable, the combinators).
 * `x-kubernetes-validations` (CEL rules) are not evaluated.
 */
import type { FieldError } from './errors.js';
import { isObject } from './object.js';

/** The subset of JSONSchemaProps the double reads. */
export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  uniqueItems?: boolean;
  nullable?: boolean;
  default?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Whether a level keeps fields it does not declare. */
function preserves(s: Schema): boolean {
  return s['x-kubernetes-preserve-unknown-fields'] === true || s.additionalProperties !== undefined;
}

/**
 * Removes fields the schema does not declare, in place; returns their paths (for the
 * `unknown field "spec.x"` warnings of fieldValidation=Warn). At the root and in embedded
 * resources, apiVersion, kind and metadata are always kept.
 */
export function prune(value: unknown, schema: Schema, path = '', root = true): string[] {
  const dropped: string[] = [];
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((v, i) => dropped.push(...prune(v, schema.items as Schema, `${path}[${i}]`, false)));
    return dropped;
  }
  if (!isObject(value)) return dropped;
  const keepMeta = root || schema['x-kubernetes-embedded-resource'] === true;
  for (const key of Object.keys(value)) {
    if (keepMeta && (key === 'apiVersion' || key === 'kind' || key === 'metadata')) continue;
    const prop = schema.properties?.[key];
    if (prop) {
      dropped.push(...prune(value[key], prop, join(path, key), false));
    } else if (isObject(schema.additionalProperties)) {
      dropped.push(...prune(value[key], schema.additionalProperties, join(path, key), false));
    } else if (!preserves(schema)) {
      delete value[key];
      dropped.push(join(path, key));
    }
  }
  return dropped;
}

/** Fills in `default`s for missing properties (and inside items), in place. */
export function applyDefaults(value: unknown, schema: Schema): void {
  if (Array.isArray(value)) {
    if (schema.items) for (const v of value) applyDefaults(v, schema.items);
    return;
  }
  if (!isObject(value)) return;
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (value[key] === undefined && prop.default !== undefined) value[key] = structuredClone(prop.default);
    if (value[key] !== undefined) applyDefaults(value[key], prop);
  }
  if (isObject(schema.additionalProperties)) {
    for (const key of Object.keys(value)) if (!schema.properties?.[key]) applyDefaults(value[key], schema.additionalProperties);
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function matchesType(v: unknown, s: Schema): boolean {
  if (s['x-kubernetes-int-or-string']) return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
  switch (s.type) {
    case undefined:
      return true;
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

/** Validates a custom object against its schema; paths are rendered as the server renders them. */
export function validateSchema(value: unknown, schema: Schema, path = ''): FieldError[] {
  const errs: FieldError[] = [];
  const here = path || '<root>';
  if (value === null) {
    if (!schema.nullable && schema.type !== undefined) {
      errs.push({ type: 'Invalid', field: here, value: 'null', detail: `${here} in body must be of type ${schema.type}: "null"` });
    }
    return errs;
  }
  if (!matchesType(value, schema)) {
    const expected = schema['x-kubernetes-int-or-string'] ? 'integer,string' : String(schema.type);
    errs.push({ type: 'Invalid', field: here, value: typeName(value), detail: `${here} in body must be of type ${expected}: "${typeName(value)}"` });
    return errs;
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errs.push({ type: 'NotSupported', field: here, value, supported: schema.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))) });
  }
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body should match '${schema.pattern}'` });
    }
    if (schema.maxLength !== undefined && [...value].length > schema.maxLength) {
      errs.push({ type: 'TooLong', field: here, value, detail: `: may not be more than ${schema.maxLength} bytes` });
    }
    if (schema.minLength !== undefined && [...value].length < schema.minLength) {
      errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body should be at least ${schema.minLength} chars long` });
    }
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)) {
      errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}` });
    }
    if (schema.maximum !== undefined && (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum)) {
      errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}` });
    }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      errs.push({ type: 'Invalid', field: here, value: value.length, detail: `${here} in body should have at least ${schema.minItems} items` });
    }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      errs.push({ type: 'TooMany', field: here, value: value.length, detail: `: ${value.length}: must have at most ${schema.maxItems} items` });
    }
    if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) {
      errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body shouldn't contain duplicates` });
    }
    if (schema.items) value.forEach((v, i) => errs.push(...validateSchema(v, schema.items as Schema, `${path}[${i}]`)));
  }
  if (isObject(value)) {
    for (const r of schema.required ?? []) {
      if (value[r] === undefined) errs.push({ type: 'Required', field: join(path, r) });
    }
    const n = Object.keys(value).length;
    if (schema.minProperties !== undefined && n < schema.minProperties) {
      errs.push({ type: 'Invalid', field: here, value: n, detail: `${here} in body should have at least ${schema.minProperties} properties` });
    }
    if (schema.maxProperties !== undefined && n > schema.maxProperties) {
      errs.push({ type: 'TooMany', field: here, value: n, detail: `: must have at most ${schema.maxProperties} items` });
    }
    for (const [k, v] of Object.entries(value)) {
      const prop = schema.properties?.[k] ?? (isObject(schema.additionalProperties) ? schema.additionalProperties : undefined);
      // Metadata of the root object is validated as ObjectMeta, not by the schema.
      if (prop && !(path === '' && (k === 'metadata' || k === 'apiVersion' || k === 'kind'))) errs.push(...validateSchema(v, prop, join(path, k)));
    }
  }
  for (const s of schema.allOf ?? []) errs.push(...validateSchema(value, s, path));
  if (schema.anyOf && !schema.anyOf.some((s) => validateSchema(value, s, path).length === 0)) {
    errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body must be valid against at least one schema (anyOf)` });
  }
  if (schema.oneOf && schema.oneOf.filter((s) => validateSchema(value, s, path).length === 0).length !== 1) {
    errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body must validate one and only one schema (oneOf)` });
  }
  if (schema.not && validateSchema(value, schema.not, path).length === 0) {
    errs.push({ type: 'Invalid', field: here, value, detail: `${here} in body must not validate the schema (not)` });
  }
  return errs;
}
