/**
 * Label and field selectors, with the syntax and semantics of k8s.io/apimachinery's
 * `labels.Parse` and `fields.ParseSelector`: `a=b,c!=d,e in (x,y),!f` for labels,
 * `metadata.name=x,spec.nodeName!=y` for fields.
 */
import { badRequest } from './errors.js';
import { isQualifiedName, isLabelValue } from './validation.js';

/** One label requirement. `Gt`/`Lt` compare integers, as the Go parser allows. */
export interface LabelRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Equals' | 'NotEquals' | 'Gt' | 'Lt';
  values: string[];
}

/** A parsed label selector: all requirements must hold. An empty list selects everything. */
export type LabelSelector = LabelRequirement[];

/** metav1.LabelSelector, as webhook configurations and other objects embed it. */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

type Token = { kind: 'id'; text: string } | { kind: 'op'; text: '!' | '=' | '==' | '!=' | '(' | ')' | ',' | '>' | '<' };

function lexLabels(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = input.slice(i, i + 2);
    if (two === '==' || two === '!=') {
      tokens.push({ kind: 'op', text: two });
      i += 2;
      continue;
    }
    if ('!=(),<>'.includes(c)) {
      tokens.push({ kind: 'op', text: c as '!' });
      i++;
      continue;
    }
    let j = i;
    while (j < input.length && !/[\s!=(),<>]/.test(input[j] as string)) j++;
    tokens.push({ kind: 'id', text: input.slice(i, j) });
    i = j;
  }
  return tokens;
}

/** Parses the string form of a label selector; throws 400 BadRequest like the real server. */
export function parseLabelSelector(input: string): LabelSelector {
  const tokens = lexLabels(input);
  const reqs: LabelSelector = [];
  let pos = 0;
  const fail = (why: string): never => {
    throw badRequest(`unable to parse requirement: ${why}`);
  };
  const peek = (): Token | undefined => tokens[pos];
  const next = (): Token | undefined => tokens[pos++];
  const identifier = (what: string): string => {
    const t = next();
    if (t?.kind !== 'id') fail(`found '${t?.text ?? ''}', expected: ${what}`);
    return (t as { text: string }).text;
  };
  const checkKey = (key: string): void => {
    if (!isQualifiedName(key)) fail(`invalid label key "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
  };
  const checkValue = (value: string): void => {
    if (!isLabelValue(value)) fail(`invalid label value: "${value}": must be 63 characters or less`);
  };

  while (pos < tokens.length) {
    const first = peek();
    if (first?.kind === 'op' && first.text === '!') {
      next();
      const key = identifier("identifier after '!'");
      checkKey(key);
      reqs.push({ key, operator: 'DoesNotExist', values: [] });
    } else {
      const key = identifier('identifier');
      checkKey(key);
      const op = peek();
      if (op === undefined || (op.kind === 'op' && op.text === ',')) {
        reqs.push({ key, operator: 'Exists', values: [] });
      } else if (op.kind === 'id' && (op.text === 'in' || op.text === 'notin')) {
        next();
        const open = next();
        if (open?.kind !== 'op' || open.text !== '(') fail(`found '${open?.text ?? ''}', expected: '('`);
        // A set is one or more values separated by commas, as in `env in (prod, staging)`.
        const values: string[] = [];
        for (;;) {
          const value = identifier("value or ')'");
          checkValue(value);
          values.push(value);
          const t = next();
          if (t?.kind === 'op' && t.text === ')') break;
          if (t?.kind !== 'op' || t.text !== ',') fail(`found '${t?.text ?? ''}', expected: ',' or ')'`);
        }
        reqs.push({ key, operator: op.text === 'in' ? 'In' : 'NotIn', values: [...new Set(values)] });
      } else if (op.kind === 'op' && ['=', '==', '!=', '>', '<'].includes(op.text)) {
        next();
        const t = peek();
        let value = '';
        if (t?.kind === 'id') {
          next();
          value = t.text;
        } else if (op.text === '>' || op.text === '<') {
          fail(`found '${t?.text ?? ''}', expected: identifier`);
        }
        if (op.text === '>' || op.text === '<') {
          if (!/^-?\d+$/.test(value)) fail(`for 'Gt', 'Lt' operators, the value must be an integer`);
          reqs.push({ key, operator: op.text === '>' ? 'Gt' : 'Lt', values: [value] });
        } else {
          checkValue(value);
          reqs.push({ key, operator: op.text === '!=' ? 'NotEquals' : 'Equals', values: [value] });
        }
      } else {
        fail(`found '${op.text}', expected: in, notin, =, ==, !=, gt, lt`);
      }
    }
    const sep = next();
    if (sep === undefined) break;
    if (sep.kind !== 'op' || sep.text !== ',') fail(`found '${sep.text}', expected: ','`);
    if (pos >= tokens.length) fail(`found '', expected: identifier after ','`);
  }
  return reqs;
}

/** Converts a metav1.LabelSelector object into requirements; throws on an unknown operator. */
export function labelSelectorFromObject(sel: LabelSelectorObject | null | undefined): LabelSelector {
  if (!sel) return [];
  const reqs: LabelSelector = [];
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) reqs.push({ key, operator: 'In', values: [value] });
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator !== 'In' && e.operator !== 'NotIn' && e.operator !== 'Exists' && e.operator !== 'DoesNotExist') {
      throw badRequest(`"${e.operator}" is not a valid label selector operator`);
    }
    reqs.push({ key: e.key, operator: e.operator, values: e.values ?? [] });
  }
  return reqs;
}

/** Whether the labels satisfy every requirement. */
export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const v = l[r.key];
    switch (r.operator) {
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      case 'Equals':
      case 'In':
        return has && r.values.includes(v as string);
      case 'NotEquals':
      case 'NotIn':
        // The Go implementation selects objects that lack the key for != and notin.
        return !has || !r.values.includes(v as string);
      case 'Gt':
      case 'Lt': {
        if (!has || !/^-?\d+$/.test(v as string)) return false;
        const n = Number(v);
        const bound = Number(r.values[0]);
        return r.operator === 'Gt' ? n > bound : n < bound;
      }
    }
  });
}

/** One field requirement: `field=value` or `field!=value`. */
export interface FieldRequirement {
  field: string;
  operator: 'Equals' | 'NotEquals';
  value: string;
}

/** Splits on separators not escaped with a backslash. */
function splitUnescaped(input: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i] as string;
    if (c === '\\' && i + 1 < input.length) {
      cur += c + (input[i + 1] as string);
      i++;
    } else if (c === sep) {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

function unescapeFieldValue(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

/** Parses `a=b,c!=d` (also `==`); values may escape `,`, `=`, `!` and `\` with a backslash. */
export function parseFieldSelector(input: string): FieldRequirement[] {
  if (input.trim() === '') return [];
  return splitUnescaped(input, ',').map((term) => {
    for (const [op, operator] of [
      ['!=', 'NotEquals'],
      ['==', 'Equals'],
      ['=', 'Equals'],
    ] as const) {
      const at = findUnescaped(term, op);
      if (at >= 0) {
        return { field: term.slice(0, at).trim(), operator, value: unescapeFieldValue(term.slice(at + op.length)) };
      }
    }
    throw badRequest(`invalid selector: '${input}'; can't understand '${term}'`);
  });
}

function findUnescaped(term: string, op: string): number {
  for (let i = 0; i < term.length; i++) {
    if (term[i] === '\\') {
      i++;
      continue;
    }
    if (term.startsWith(op, i)) return i;
  }
  return -1;
}

/** Whether the object's selectable fields satisfy every requirement. */
export function matchesFields(reqs: readonly FieldRequirement[], fields: Record<string, string>): boolean {
  return reqs.every((r) => {
    const v = fields[r.field] ?? '';
    return r.operator === 'Equals' ? v === r.value : v !== r.value;
  });
}
