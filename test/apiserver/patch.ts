/**
 * The three patch formats of PATCH requests:
 * - JSON Patch (RFC 6902), `application/json-patch+json`;
 * - JSON Merge Patch (RFC 7386), `application/merge-patch+json`;
 * - Strategic Merge Patch, `application/strategic-merge-patch+json`: a merge patch whose lists
 *   merge by a key (Service ports by `port`, containers by `name`) according to per-type
 *   metadata, with the `$patch`, `$retainKeys`, `$setElementOrder/` and
 *   `$deleteFromPrimitiveList/` directives that `kubectl apply` and `kubectl patch` emit.
 */
import { isObject, jsonEqual } from './object.js';

/** A patch that could not be decoded (`decode`, 400) or applied (`apply`, 422). */
export class PatchError extends Error {
  constructor(
    readonly stage: 'decode' | 'apply',
    message: string,
  ) {
    super(message);
    this.name = 'PatchError';
  }
}

/* ---------------------------------------------------------------- JSON Patch */

interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError('apply', `JSON pointer must start with '/': ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Finds the container of the pointer's last token, failing like evanphx/json-patch. */
function parentOf(doc: unknown, tokens: string[], pointer: string): { parent: unknown; last: string } {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else cur = undefined;
    if (cur === undefined) throw new PatchError('apply', `doc is missing path: "${pointer}": missing value`);
  }
  return { parent: cur, last: tokens[tokens.length - 1] as string };
}

function arrayIndex(arr: unknown[], token: string, pointer: string, forInsert: boolean): number {
  if (forInsert && token === '-') return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new PatchError('apply', `invalid array index "${token}" in "${pointer}"`);
  const i = Number(token);
  if (i > arr.length || (!forInsert && i === arr.length)) throw new PatchError('apply', `Unable to access invalid index: ${i}: invalid index referenced`);
  return i;
}

function readPointer(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const t of parsePointer(pointer)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = Object.hasOwn(cur, t) ? cur[t] : undefined;
    else cur = undefined;
    if (cur === undefined) throw new PatchError('apply', `doc is missing path: "${pointer}": missing value`);
  }
  return cur;
}

function addAt(doc: unknown, pointer: string, value: unknown): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, pointer, true), 0, value);
  else if (isObject(parent)) parent[last] = value;
  else throw new PatchError('apply', `doc is missing path: "${pointer}": missing value`);
  return doc;
}

function removeAt(doc: unknown, pointer: string, op: string): unknown {
  const tokens = parsePointer(pointer);
  const { parent, last } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    parent.splice(arrayIndex(parent, last, pointer, false), 1);
  } else if (isObject(parent) && Object.hasOwn(parent, last)) {
    delete parent[last];
  } else {
    throw new PatchError('apply', `${op} operation does not apply: doc is missing path: "${pointer}": missing value`);
  }
  return doc;
}

/** Applies an RFC 6902 JSON Patch; `patch` is the decoded request body. */
export function applyJsonPatch(doc: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw new PatchError('decode', 'json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let result = structuredClone(doc);
  for (const raw of patch) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw new PatchError('decode', `invalid JSON patch operation: ${JSON.stringify(raw)}`);
    }
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case 'add':
        result = addAt(result, op.path, structuredClone(op.value));
        break;
      case 'remove':
        result = removeAt(result, op.path, 'remove');
        break;
      case 'replace':
        if (op.path === '') {
          result = structuredClone(op.value);
          break;
        }
        readPointerFor('replace', result, op.path);
        result = removeAt(result, op.path, 'replace');
        result = addAt(result, op.path, structuredClone(op.value));
        break;
      case 'move': {
        if (op.from === undefined) throw new PatchError('apply', 'move operation requires "from"');
        const value = readPointer(result, op.from);
        result = removeAt(result, op.from, 'move');
        result = addAt(result, op.path, value);
        break;
      }
      case 'copy': {
        if (op.from === undefined) throw new PatchError('apply', 'copy operation requires "from"');
        result = addAt(result, op.path, structuredClone(readPointer(result, op.from)));
        break;
      }
      case 'test': {
        let actual: unknown;
        try {
          actual = readPointer(result, op.path);
        } catch {
          actual = undefined;
        }
        if (!jsonEqual(actual, op.value)) throw new PatchError('apply', `testing value ${op.path} failed: test failed`);
        break;
      }
      default:
        throw new PatchError('apply', `Unexpected kind: ${String((op as { op: unknown }).op)}`);
    }
  }
  return result;
}

function readPointerFor(op: string, doc: unknown, pointer: string): void {
  try {
    readPointer(doc, pointer);
  } catch {
    throw new PatchError('apply', `${op} operation does not apply: doc is missing key: ${pointer}: missing value`);
  }
}

/* --------------------------------------------------------------- Merge Patch */

/** Applies an RFC 7386 JSON Merge Patch: objects merge, `null` deletes, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = applyMergePatch(result[k], v);
  }
  return result;
}

/* ----------------------------------------------------- Strategic Merge Patch */

/**
 * How one list field merges: by `mergeKey` (a list of objects), as a set (`merge`, a list of
 * primitives with patchStrategy "merge", e.g. finalizers), or, when absent from the table,
 * atomically (the patch's list replaces the original).
 */
export interface ListStrategy {
  mergeKey?: string;
  merge?: boolean;
}

/**
 * Strategic-merge metadata for one type: dotted field paths, with list items adding no
 * segment, e.g. `spec.template.spec.containers.ports` for every container's ports.
 */
export type PatchMeta = Readonly<Record<string, ListStrategy>>;

const ORDER = '$setElementOrder/';
const DELETE_FROM = '$deleteFromPrimitiveList/';

/** Applies a strategic merge patch to `original` using the type's list metadata. */
export function applyStrategicMergePatch(original: unknown, patch: unknown, meta: PatchMeta): unknown {
  if (!isObject(patch)) throw new PatchError('decode', 'a strategic merge patch must be a JSON object');
  const merged = mergeMap(isObject(original) ? structuredClone(original) : {}, patch, '', meta);
  return merged ?? {};
}

function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** A patch value with no original to merge into: directives are stripped, deletes dropped. */
function fresh(value: unknown, path: string, meta: PatchMeta): unknown {
  if (isObject(value)) return mergeMap({}, value, path, meta);
  if (Array.isArray(value)) return mergeList([], value, path, meta);
  return value;
}

function mergeMap(orig: Record<string, unknown>, patch: Record<string, unknown>, path: string, meta: PatchMeta): Record<string, unknown> | undefined {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') {
    const rest = { ...patch };
    delete rest.$patch;
    return mergeMap({}, rest, path, meta);
  }
  if (directive !== undefined && directive !== 'merge') throw new PatchError('apply', `Unknown patch type: ${String(directive)}`);

  const result: Record<string, unknown> = { ...orig };
  const retain = patch.$retainKeys;
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw new PatchError('apply', '$retainKeys must be a list of strings');
    for (const k of Object.keys(result)) if (!retain.includes(k)) delete result[k];
  }
  const orders: [string, unknown[]][] = [];
  const deletions: [string, unknown[]][] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith(ORDER)) {
      if (!Array.isArray(v)) throw new PatchError('apply', `${k} must be a list`);
      orders.push([k.slice(ORDER.length), v]);
      continue;
    }
    if (k.startsWith(DELETE_FROM)) {
      if (!Array.isArray(v)) throw new PatchError('apply', `${k} must be a list`);
      deletions.push([k.slice(DELETE_FROM.length), v]);
      continue;
    }
    const p = childPath(path, k);
    const cur = result[k];
    if (v === null) {
      delete result[k];
    } else if (isObject(v)) {
      const m = mergeMap(isObject(cur) ? cur : {}, v, p, meta);
      if (m === undefined) delete result[k];
      else result[k] = m;
    } else if (Array.isArray(v)) {
      result[k] = mergeList(Array.isArray(cur) ? cur : [], v, p, meta);
    } else {
      result[k] = v;
    }
  }
  for (const [k, values] of deletions) {
    const cur = result[k];
    if (Array.isArray(cur)) result[k] = cur.filter((x) => !values.some((d) => jsonEqual(d, x)));
  }
  for (const [k, order] of orders) {
    const cur = result[k];
    if (Array.isArray(cur)) result[k] = applyOrder(cur, order, meta[childPath(path, k)]?.mergeKey);
  }
  return result;
}

function isDirectiveElement(e: unknown): boolean {
  return isObject(e) && e.$patch !== undefined;
}

function mergeList(orig: unknown[], patch: unknown[], path: string, meta: PatchMeta): unknown[] {
  const strategy = meta[path];
  const replaceAll = patch.some((e) => isObject(e) && e.$patch === 'replace');
  if (!strategy || replaceAll) {
    // Atomic list: the patch's elements replace the original ones.
    return patch.filter((e) => !(isObject(e) && e.$patch === 'replace')).map((e) => fresh(e, path, meta));
  }
  const key = strategy.mergeKey;
  if (key === undefined) {
    // A set of primitives (patchStrategy merge): union, original order first.
    const result = [...orig];
    for (const v of patch) if (!isDirectiveElement(v) && !result.some((o) => jsonEqual(o, v))) result.push(v);
    return result;
  }
  const result: unknown[] = orig.map((o) => structuredClone(o));
  for (const item of patch) {
    if (!isObject(item)) {
      throw new PatchError('apply', `unable to find api field in struct for the list element ${JSON.stringify(item)} (merge key "${key}")`);
    }
    if (!Object.hasOwn(item, key)) {
      throw new PatchError('apply', `map: ${JSON.stringify(item)} does not contain declared merge key: ${key}`);
    }
    const matches = (o: unknown): boolean => isObject(o) && jsonEqual(o[key], item[key]);
    if (item.$patch === 'delete') {
      for (let i = result.length - 1; i >= 0; i--) if (matches(result[i])) result.splice(i, 1);
      continue;
    }
    const at = result.findIndex(matches);
    if (at >= 0) {
      const merged = mergeMap(result[at] as Record<string, unknown>, item, path, meta);
      if (merged === undefined) result.splice(at, 1);
      else result[at] = merged;
    } else {
      result.push(fresh(item, path, meta));
    }
  }
  return result;
}

/**
 * `$setElementOrder`: elements named in `order` take the slots that such elements occupy, in
 * the order given; elements the patch does not mention (added on the server by someone else)
 * keep their slots. A simplification of apimachinery's merge-by-index, exact when the order
 * names every element, which is what `kubectl apply` sends.
 */
function applyOrder(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const ident = (e: unknown): unknown => (key !== undefined && isObject(e) ? e[key] : e);
  const wanted = order.map(ident);
  const rank = (e: unknown): number => wanted.findIndex((w) => jsonEqual(w, ident(e)));
  const slots = list.map((e, i) => [i, rank(e)] as const).filter(([, r]) => r >= 0);
  const ordered = slots.map(([i]) => list[i]).sort((a, b) => rank(a) - rank(b));
  const result = [...list];
  slots.forEach(([i], n) => {
    result[i] = ordered[n];
  });
  return result;
}
