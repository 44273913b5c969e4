/**
 * What the manifest tests share: loading the YAML under manifests/, and checking objects against a
 * CRD's openAPIV3Schema the way kube-apiserver does (schema validation with ajv, defaulting,
 * pruning of unknown fields, and the CEL rules of x-kubernetes-validations).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as celParse, run as celRun, type CelInput } from '@bufbuild/cel';
import { strings as celStrings } from '@bufbuild/cel/ext';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parseAllDocuments } from 'yaml';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const manifestsDir = join(repoRoot, 'manifests');

/** A Kubernetes object as read from YAML. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** The parts of an apiextensions.k8s.io/v1 JSONSchemaProps these tests look at. */
export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema | Schema[];
  required?: string[];
  default?: unknown;
  format?: string;
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  [keyword: string]: unknown;
}

export interface Column {
  name: string;
  type: string;
  jsonPath: string;
  priority?: number;
  description?: string;
}

export interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  deprecated?: boolean;
  deprecationWarning?: string;
  subresources?: { status?: object };
  additionalPrinterColumns?: Column[];
  schema: { openAPIV3Schema: Schema };
}

export interface Crd extends KubeObject {
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: { kind: string; listKind?: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] };
    conversion?: { strategy: string };
    versions: CrdVersion[];
  };
}

/** Every *.yaml / *.yml file under dir, as paths relative to dir, sorted. */
export function yamlFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(entry.name)) out.push(relative(dir, full));
    }
  };
  walk(dir);
  return out.sort();
}

/** The non-empty documents of a YAML file; a syntax error or warning fails loudly. */
export function loadYaml(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: unknown[] = [];
  for (const doc of docs) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${file}: ${problems.map((p) => p.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export function isKubeObject(value: unknown): value is KubeObject {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const meta = v.metadata as Record<string, unknown> | undefined;
  return typeof v.apiVersion === 'string' && typeof v.kind === 'string' && typeof meta?.name === 'string';
}

/** Visits every schema node, depth first, with a readable path (spec.holders[].name). */
export function walkSchema(schema: Schema, visit: (node: Schema, path: string) => void, path = ''): void {
  visit(schema, path || '<root>');
  for (const [name, child] of Object.entries(schema.properties ?? {})) walkSchema(child, visit, path ? `${path}.${name}` : name);
  if (typeof schema.additionalProperties === 'object') walkSchema(schema.additionalProperties, visit, `${path}.*`);
  if (Array.isArray(schema.items)) schema.items.forEach((s, i) => walkSchema(s, visit, `${path}[${i}]`));
  else if (schema.items) walkSchema(schema.items, visit, `${path}[]`);
}

/**
 * Why the schema is not structural (or keeps unknown fields where it should not), as messages; empty
 * when it is. The rules are those of Kubernetes' "structural schema": every node has a type, objects
 * list their properties or additionalProperties (not both), arrays have one items schema, metadata
 * is left to the API server, and x-kubernetes-preserve-unknown-fields only where allowed.
 */
export function structuralProblems(root: Schema, preserveUnknownAllowedAt: readonly string[] = []): string[] {
  const problems: string[] = [];
  walkSchema(root, (node, path) => {
    const say = (msg: string): number => problems.push(`${path}: ${msg}`);
    if (typeof node.type !== 'string' || node.type === '') say('has no type');
    for (const junctor of ['allOf', 'anyOf', 'oneOf', 'not']) if (junctor in node) say(`uses ${junctor}`);
    if (node.properties && node.additionalProperties !== undefined) say('has both properties and additionalProperties');
    if ((node.properties || node.additionalProperties !== undefined) && node.type !== 'object') say('has properties but is not an object');
    if (node.type === 'array' && (node.items === undefined || Array.isArray(node.items))) say('is an array without one items schema');
    if (node.items !== undefined && node.type !== 'array') say('has items but is not an array');
    if (node.type === 'object' && !node.properties && node.additionalProperties === undefined && !/^(metadata|status)$/.test(path))
      say('is an object with no properties: everything in it would be pruned');
    if (node['x-kubernetes-preserve-unknown-fields'] !== undefined && !preserveUnknownAllowedAt.includes(path))
      say('keeps unknown fields (x-kubernetes-preserve-unknown-fields) where no one meant to');
    if (node['x-kubernetes-list-type'] === 'map') {
      const keys = node['x-kubernetes-list-map-keys'] ?? [];
      const item = Array.isArray(node.items) ? undefined : node.items;
      if (keys.length === 0) say('is a list-type map without list-map-keys');
      for (const key of keys)
        if (!item?.required?.includes(key) && item?.properties?.[key]?.default === undefined) say(`list-map key ${key} is neither required nor defaulted`);
    }
    for (const key of node.required ?? []) if (!node.properties?.[key]) say(`requires ${key}, which it does not define`);
  });
  const metadata = root.properties?.metadata;
  if (!metadata || JSON.stringify(metadata) !== JSON.stringify({ type: 'object' }))
    problems.push('metadata: must be exactly {type: object} (the API server validates metadata itself)');
  return problems;
}

/** The fields kube-apiserver would silently drop from value (not in the schema), as paths. */
export function prunedFields(schema: Schema, value: unknown, path = ''): string[] {
  if (schema['x-kubernetes-preserve-unknown-fields']) return [];
  if (Array.isArray(value)) {
    const item = Array.isArray(schema.items) ? undefined : schema.items;
    return item ? value.flatMap((v, i) => prunedFields(item, v, `${path}[${i}]`)) : [];
  }
  if (typeof value !== 'object' || value === null || schema.type !== 'object') return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const child = `${path ? `${path}.` : ''}${key}`;
    if (path === '' && key === 'metadata') continue; // the API server's own business
    const sub = schema.properties?.[key] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
    if (sub) out.push(...prunedFields(sub, v, child));
    else out.push(child);
  }
  return out;
}

/**
 * Go's time.ParseDuration syntax, which the API server's "duration" format and metav1.Duration use
 * (ajv-formats' "duration" is ISO 8601, a different thing).
 */
export const goDuration = /^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$/;

/** An ajv set up like the API server's schema validation of custom resources. */
export function kubernetesAjv(): Ajv {
  const ajv = new Ajv({ strict: true, strictRequired: true, allErrors: true, useDefaults: true });
  // A CommonJS module: under NodeNext its default import is module.exports, which holds the plugin
  // both as itself and as .default; TypeScript types only the latter.
  const addFormats = addFormatsModule.default;
  addFormats(ajv, ['date-time', 'ipv4', 'ipv6', 'int32', 'int64']);
  ajv.addFormat('duration', goDuration);
  for (const keyword of [
    'x-kubernetes-validations', // CEL: checked by celViolations below
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
    'x-kubernetes-map-type',
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-int-or-string',
    'x-kubernetes-embedded-resource',
  ])
    ajv.addKeyword({ keyword });
  return ajv;
}

/** Converts JSON to CEL input the way Kubernetes types it: integers are int (int64), objects maps. */
function toCel(value: unknown): CelInput {
  if (Array.isArray(value)) return value.map(toCel);
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'object' && value !== null)
    return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  return value as CelInput;
}

/** Every CEL rule of the schema, with where it sits. */
export function celRules(schema: Schema): { path: string; rule: string }[] {
  const out: { path: string; rule: string }[] = [];
  walkSchema(schema, (node, path) => {
    for (const { rule } of node['x-kubernetes-validations'] ?? []) out.push({ path, rule });
  });
  return out;
}

/** Parses a CEL rule; throws on a syntax error. */
export function parseCel(rule: string): void {
  celParse(rule);
}

/**
 * The messages of the x-kubernetes-validations rules that value breaks, evaluated as the API server
 * does: each rule at its node with `self` bound to the value there, only where that value is present;
 * transition rules (those using oldSelf) only when an old value is given (an update).
 */
export function celViolations(schema: Schema, value: unknown, old?: unknown, path = ''): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const { rule, message } of schema['x-kubernetes-validations'] ?? []) {
    const transition = /\boldSelf\b/.test(rule);
    if (transition && old === undefined) continue;
    const vars: Record<string, CelInput> = { self: toCel(value) };
    if (transition) vars.oldSelf = toCel(old);
    const result = celRun(rule, vars, { funcs: celStrings });
    if (result !== true) out.push(`${path || '<root>'}: ${message ?? rule}${result === false ? '' : ` (${String(result)})`}`);
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const oldObj = (typeof old === 'object' && old !== null ? old : {}) as Record<string, unknown>;
    for (const [key, v] of Object.entries(value)) {
      const sub = schema.properties?.[key] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (sub) out.push(...celViolations(sub, v, old === undefined ? undefined : oldObj[key], path ? `${path}.${key}` : key));
    }
  } else if (Array.isArray(value)) {
    const item = Array.isArray(schema.items) ? undefined : schema.items;
    if (item) value.forEach((v, i) => out.push(...celViolations(item, v, undefined, `${path}[${i}]`)));
  }
  return out;
}

/** One custom resource checked against one CRD version, as the API server would on create/update. */
export interface Verdict {
  ok: boolean;
  /** ajv's complaints, as "instancePath message". */
  errors: string[];
  /** The object after defaulting. */
  defaulted: KubeObject;
  pruned: string[];
  cel: string[];
}

export function verdictFor(validate: ValidateFunction, schema: Schema, obj: KubeObject, old?: KubeObject): Verdict {
  const defaulted = structuredClone(obj);
  const valid = validate(defaulted);
  const errors = valid ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`);
  const cel = valid ? celViolations(schema, defaulted, old) : [];
  return { ok: valid && cel.length === 0, errors, defaulted, pruned: prunedFields(schema, obj), cel };
}

/** The schema node a printer column's JSONPath (.spec.a, .spec.list[*].b) points at, if any. */
export function schemaAtJsonPath(root: Schema, jsonPath: string): Schema | undefined {
  let node: Schema | undefined = root;
  for (const part of jsonPath.replace(/^\./, '').split('.')) {
    const m = /^([A-Za-z0-9_]+)(\[\*\])?$/.exec(part);
    if (!m || !node) return undefined;
    node = node.properties?.[m[1] as string];
    if (m[2]) node = node && !Array.isArray(node.items) ? node.items : undefined;
  }
  return node;
}
