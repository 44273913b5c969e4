/**
 * Kubernetes label selectors: reading them from either source, with Kubernetes' own rules on
 * keys, values and operators, and matching them against labels.
 */
import { at, describe, type Reader } from './read.js';
import type { LabelSelector, SelectorRequirement } from './types.js';

/** Field spellings: the ConfigMap used kebab-case, the CRDs use Kubernetes' camelCase. */
export type Spelling = 'kebab' | 'camel';

const OPERATORS: readonly SelectorRequirement['operator'][] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a valid label key (Kubernetes qualified name), or undefined if it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `label key ${JSON.stringify(key)} has an invalid prefix (a DNS subdomain such as "example.com")`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `${JSON.stringify(key)} is not a valid label key (up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit, with an optional "prefix/")`;
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined if it is. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !NAME.test(value)) {
    return `${JSON.stringify(value)} is not a valid label value (up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit)`;
  }
  return undefined;
}

/**
 * Read one selector at `path`. Returns undefined (after reporting) when it is malformed: a
 * selector that half-parsed would select the wrong nodes or Services, which is worse than none.
 */
export function readSelector(r: Reader, value: unknown, path: string, spelling: Spelling): LabelSelector | undefined {
  const before = r.errorCount;
  const m = r.fields(value, path);
  if (m === undefined) {
    if (value === undefined || value === null) r.fail(path, 'must be a label selector, got nothing');
    return undefined;
  }
  const labelsKey = spelling === 'camel' ? 'matchLabels' : 'match-labels';
  const exprsKey = spelling === 'camel' ? 'matchExpressions' : 'match-expressions';
  r.onlyKnown(m, path, [labelsKey, exprsKey]);
  const matchLabels = r.stringMap(m, labelsKey, path);
  for (const [k, v] of Object.entries(matchLabels)) {
    const problem = labelKeyProblem(k) ?? labelValueProblem(v);
    if (problem) r.fail(at(at(path, labelsKey), k), problem);
  }
  const matchExpressions: SelectorRequirement[] = [];
  const written = new Map<string, number>();
  (r.list(m, exprsKey, path) ?? []).forEach((item, i) => {
    const req = readRequirement(r, item, at(at(path, exprsKey), i));
    if (!req) return;
    // MetalLB refuses a selector that repeats an expression (values in any order).
    const key = requirementKey(req);
    const first = written.get(key);
    if (first !== undefined) r.fail(at(at(path, exprsKey), i), `duplicate match expression: the same as ${exprsKey}[${first}]; remove one`);
    else written.set(key, i);
    matchExpressions.push(req);
  });
  return r.errorCount === before ? { matchLabels, matchExpressions } : undefined;
}

/** Read a list of selectors; malformed ones are reported and left out. */
export function readSelectors(r: Reader, value: unknown, path: string, spelling: Spelling): LabelSelector[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    r.fail(path, `must be a list of label selectors, got ${describe(value)}`);
    return [];
  }
  const out: LabelSelector[] = [];
  const written = new Map<string, number>();
  value.forEach((item, i) => {
    const sel = readSelector(r, item, at(path, i), spelling);
    if (!sel) return;
    // A repeated selector selects nothing more; MetalLB refuses it as the slip it always is.
    const key = selectorKey(sel);
    const first = written.get(key);
    if (first !== undefined) {
      r.fail(at(path, i), `duplicate selector: it selects the same as ${at(path, first)}; remove one`);
      return;
    }
    written.set(key, i);
    out.push(sel);
  });
  return out;
}

function readRequirement(r: Reader, value: unknown, path: string): SelectorRequirement | undefined {
  const m = r.fields(value, path);
  if (m === undefined) {
    if (value === undefined || value === null) r.fail(path, 'must be a match expression (key, operator, values), got nothing');
    return undefined;
  }
  r.onlyKnown(m, path, ['key', 'operator', 'values']);
  const key = r.required(m, 'key', path, r.string(m, 'key', path));
  const operator = r.required(m, 'operator', path, r.string(m, 'operator', path));
  const values = r.strings(m, 'values', path);
  if (key === undefined || operator === undefined) return undefined;
  const keyProblem = labelKeyProblem(key);
  if (keyProblem) r.fail(at(path, 'key'), keyProblem);
  const op = OPERATORS.find((o) => o === operator);
  if (op === undefined) {
    r.fail(at(path, 'operator'), `unknown operator ${JSON.stringify(operator)} (use In, NotIn, Exists or DoesNotExist)`);
    return undefined;
  }
  if ((op === 'In' || op === 'NotIn') && values.length === 0) {
    r.fail(path, `operator ${op} needs at least one value`);
    return undefined;
  }
  if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) {
    r.fail(at(path, 'values'), `operator ${op} takes no values`);
    return undefined;
  }
  const seen = new Set<string>();
  let duplicate = false;
  values.forEach((v, i) => {
    const problem = labelValueProblem(v);
    if (problem) r.fail(at(at(path, 'values'), i), problem);
    if (seen.has(v)) {
      r.fail(at(at(path, 'values'), i), `duplicate value ${JSON.stringify(v)}; remove one`);
      duplicate = true;
    }
    seen.add(v);
  });
  return keyProblem || duplicate ? undefined : { key, operator: op, values };
}

/**
 * Kubernetes label selector semantics: every matchLabels pair and every expression must hold;
 * the empty selector matches everything.
 */
export function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(labels, k);
  for (const [k, v] of Object.entries(sel.matchLabels)) {
    if (!has(k) || labels[k] !== v) return false;
  }
  for (const req of sel.matchExpressions) {
    const present = has(req.key);
    const value = present ? labels[req.key] : undefined;
    switch (req.operator) {
      case 'In':
        if (value === undefined || !req.values.includes(value)) return false;
        break;
      case 'NotIn':
        if (value !== undefined && req.values.includes(value)) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
    }
  }
  return true;
}

/** A canonical text of a selector: equal for selectors written differently that say the same. */
export function selectorKey(sel: LabelSelector): string {
  const labels = Object.entries(sel.matchLabels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const exprs = sel.matchExpressions.map(requirementKey).sort();
  return JSON.stringify([labels, exprs]);
}

function requirementKey(e: SelectorRequirement): string {
  return JSON.stringify([e.key, e.operator, [...e.values].sort()]);
}

/**
 * Whether some set of labels satisfies both selectors: the question "can one node be selected
 * by both?" answered from the selectors alone, for nodes that exist now or later. Label values
 * are an open set, so only what the selectors say excludes a node: `zone In (a)` against
 * `zone In (b)`, `zone Exists` against `zone DoesNotExist`, `zone=a` against `zone NotIn (a)`.
 */
export function selectorsCanMatchTogether(a: LabelSelector, b: LabelSelector): boolean {
  const byKey = new Map<string, SelectorRequirement[]>();
  const add = (req: SelectorRequirement): void => {
    const list = byKey.get(req.key);
    if (list) list.push(req);
    else byKey.set(req.key, [req]);
  };
  for (const sel of [a, b]) {
    for (const [key, value] of Object.entries(sel.matchLabels)) add({ key, operator: 'In', values: [value] });
    for (const req of sel.matchExpressions) add(req);
  }
  for (const reqs of byKey.values()) {
    let allowed: Set<string> | undefined;
    const excluded = new Set<string>();
    let present = false;
    let absent = false;
    for (const req of reqs) {
      switch (req.operator) {
        case 'In':
          present = true;
          allowed = new Set(allowed ? req.values.filter((v) => allowed!.has(v)) : req.values);
          break;
        case 'NotIn':
          for (const v of req.values) excluded.add(v);
          break;
        case 'Exists':
          present = true;
          break;
        case 'DoesNotExist':
          absent = true;
          break;
      }
    }
    if (present && absent) return false;
    if (allowed && ![...allowed].some((v) => !excluded.has(v))) return false;
  }
  return true;
}

/**
 * Whether one object can be selected by both lists of selectors. A list selects what any of
 * its selectors does (OR); an empty list selects everything.
 */
export function selectorListsOverlap(a: readonly LabelSelector[], b: readonly LabelSelector[]): boolean {
  const all: LabelSelector[] = [{ matchLabels: {}, matchExpressions: [] }];
  const left = a.length > 0 ? a : all;
  const right = b.length > 0 ? b : all;
  return left.some((x) => right.some((y) => selectorsCanMatchTogether(x, y)));
}
