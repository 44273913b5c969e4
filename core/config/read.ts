/**
 * Reading untyped input (parsed YAML, objects from the API) field by field. Every mismatch
 * becomes a ConfigError at the exact path and the reader carries on, so one pass reports
 * everything that is wrong; nothing here throws.
 */
import type { ConfigError, ConfigWarning, Pending, Place } from './types.js';

/** Where everything found while reading goes: errors, warnings and references still pending. */
export interface Report {
  errors: ConfigError[];
  warnings: ConfigWarning[];
  pending: Pending[];
}

/** A map as it came in: keys known, values not yet checked. */
export type Fields = Record<string, unknown>;

/** `a.b` for keys, `a[0]` for list positions; the root has the empty path. */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** A map (not null, not a list): what every object of either source must be. */
export function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A short rendering of a bad value for messages: values quoted, containers named. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (isFields(v)) return 'a map';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (typeof v === 'bigint') return `${v}`;
  return String(v);
}

/** `ebgpMultiHop` vs `ebgp-multihop` vs `EBGPMultihop`: the same field to a human. */
const squash = (k: string): string => k.toLowerCase().replace(/[-_]/g, '');

/** Reads the fields of one source, reporting each problem against that source. */
export class Reader {
  private errorsHere = 0;

  private readonly scalarText: ReadonlyMap<string, string>;
  private readonly goYaml: boolean;

  /**
   * @param source e.g. `ConfigMap metallb-system/config`
   * @param report where errors, warnings and pending references go
   * @param options `resource`: the object's index in the input's resources, stamped on every
   *   finding. `legacy`: set for the ConfigMap, which go-yaml decoded: it read `rack: 1` into a
   *   string field as "1" (hence the source text of non-string scalars, by path) and took YAML
   *   1.1 booleans (`yes`, `off`). Operators' existing ConfigMaps rely on both.
   */
  constructor(
    readonly source: string,
    private readonly report: Report,
    private readonly options: { resource?: number; legacy?: { scalarText: ReadonlyMap<string, string> } } = {},
  ) {
    this.scalarText = options.legacy?.scalarText ?? new Map();
    this.goYaml = options.legacy !== undefined;
  }

  /** The object's index in the input's resources, when it is one of them. */
  get resource(): number | undefined {
    return this.options.resource;
  }

  /** A place in this reader's object. */
  place(path: string): Place {
    return { source: this.source, path, ...(this.options.resource !== undefined ? { resource: this.options.resource } : {}) };
  }

  /** Errors reported through this reader so far: compare before/after to judge one object. */
  get errorCount(): number {
    return this.errorsHere;
  }

  fail(path: string, message: string): void {
    this.report.errors.push({ ...this.place(path), message });
    this.errorsHere++;
  }

  /** Accepted, but the operator should change it: the message says to what. */
  warn(path: string, message: string): void {
    this.report.warnings.push({ ...this.place(path), message });
  }

  /** A reference to something that does not exist yet: not an error, the object waits for it. */
  waitFor(path: string, message: string): void {
    this.report.pending.push({ ...this.place(path), message });
  }

  /** The value as a map, or an error; null and absent read as absent. */
  fields(value: unknown, path: string): Fields | undefined {
    if (value === undefined || value === null) return undefined;
    if (isFields(value)) return value;
    this.fail(path, `must be a map, got ${describe(value)}`);
    return undefined;
  }

  /**
   * Refuse keys we do not know (MetalLB's YAML was strict, and a silently ignored typo is a
   * misconfiguration nobody sees). Keys MetalLB has but we do not implement yet are refused with
   * their own message (`unsupported`: key -> why) when set to anything but an empty value.
   */
  onlyKnown(m: Fields, path: string, known: readonly string[], unsupported: Readonly<Record<string, string>> = {}): void {
    for (const key of Object.keys(m)) {
      if (known.includes(key)) continue;
      const why = Object.prototype.hasOwnProperty.call(unsupported, key) ? unsupported[key] : undefined;
      if (why !== undefined) {
        if (!isEmptyValue(m[key])) this.fail(at(path, key), why);
        continue;
      }
      const near = known.find((k) => squash(k) === squash(key)) ?? known.find((k) => editDistance(squash(k), squash(key)) <= 2);
      this.fail(path, `unknown field ${JSON.stringify(key)}${near ? ` (did you mean "${near}"?)` : ''}`);
    }
  }

  /** Report a missing required field at its parent, where the operator has to add it. */
  required<T>(m: Fields, key: string, path: string, value: T | undefined): T | undefined {
    if (value === undefined && (m[key] === undefined || m[key] === null)) this.fail(path, `missing required field "${key}"`);
    return value;
  }

  string(m: Fields, key: string, path: string): string | undefined {
    return this.stringValue(m[key], at(path, key));
  }

  stringValue(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    const text = this.scalarText.get(path);
    if (text !== undefined && (typeof v === 'number' || typeof v === 'boolean')) return text;
    this.fail(path, `must be a string, got ${describe(v)}`);
    return undefined;
  }

  /** A whole number within [min, max]. */
  int(m: Fields, key: string, path: string, min: number, max: number): number | undefined {
    const v = m[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    const why = typeof v === 'number' && Number.isInteger(v) ? 'out of range' : 'not a whole number';
    this.fail(at(path, key), `must be a whole number from ${min} to ${max}, got ${describe(v)} (${why})`);
    return undefined;
  }

  bool(m: Fields, key: string, path: string): boolean | undefined {
    const v = m[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    if (this.goYaml) {
      if (typeof v === 'string' && /^(y|Y|yes|Yes|YES|on|On|ON)$/.test(v)) return true;
      if (typeof v === 'string' && /^(n|N|no|No|NO|off|Off|OFF)$/.test(v)) return false;
    }
    this.fail(at(path, key), `must be true or false, got ${describe(v)}`);
    return undefined;
  }

  list(m: Fields, key: string, path: string): unknown[] | undefined {
    const v = m[key];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v;
    this.fail(at(path, key), `must be a list, got ${describe(v)}`);
    return undefined;
  }

  /** A list of strings; bad entries are reported and left out. */
  strings(m: Fields, key: string, path: string): string[] {
    const items = this.list(m, key, path) ?? [];
    const out: string[] = [];
    items.forEach((item, i) => {
      const s = this.stringValue(item, at(at(path, key), i));
      if (s !== undefined) out.push(s);
    });
    return out;
  }

  /** A string -> string map, as labels are. */
  stringMap(m: Fields, key: string, path: string): Record<string, string> {
    const p = at(path, key);
    const f = this.fields(m[key], p);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(f ?? {})) {
      const s = this.stringValue(v, at(p, k));
      // defineProperty: a plain assignment of "__proto__" would vanish instead of being checked.
      if (s !== undefined) Object.defineProperty(out, k, { value: s, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  /** Flag repeated entries of a list (MetalLB refuses them: they are always copy-paste slips). */
  noDuplicates(values: readonly string[], path: string, what: string): void {
    const seen = new Set<string>();
    for (const v of values) {
      if (seen.has(v)) this.fail(path, `duplicate ${what} ${JSON.stringify(v)}`);
      seen.add(v);
    }
  }
}

function isEmptyValue(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === '' || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  return isFields(v) && Object.keys(v).length === 0;
}

/** Levenshtein distance, for "did you mean" on misspelt field names (short strings only). */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64 || b.length > 64) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
