/**
 * A small subset of CEL, enough for webhook `matchConditions` such as
 * `object.spec.type == 'LoadBalancer'`, `has(object.spec.loadBalancerClass)`,
 * `request.operation in ['CREATE', 'UPDATE']` or
 * `!(object.metadata.namespace.startsWith('kube-'))`.
 *
 * Supported: literals (int, double, string, bool, null, lists, maps), field selection and
 * indexing (a missing key is an error, as in CEL), `has()`, `! - * / % + -`, comparisons,
 * `in`, `&&`/`||` with CEL's error-absorbing semantics, `? :`, the functions `size`,
 * `string`, `int`, `startsWith`, `endsWith`, `contains`, `matches`, `lowerAscii`,
 * `upperAscii`, and the macros `all`, `exists`, `exists_one`, `map`, `filter`.
 * Not supported: type checking beyond runtime, bytes, timestamps/durations, optional syntax,
 * and the `authorizer` variable. An expression outside the subset fails to compile, so a
 * webhook configuration using it is rejected instead of being matched wrongly.
 */

/** A compile or evaluation failure. */
export class CelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CelError';
  }
}

type Node =
  | { t: 'lit'; v: unknown }
  | { t: 'id'; name: string }
  | { t: 'sel'; target: Node; field: string }
  | { t: 'idx'; target: Node; index: Node }
  | { t: 'call'; name: string; target?: Node; args: Node[] }
  | { t: 'un'; op: '!' | '-'; arg: Node }
  | { t: 'bin'; op: string; l: Node; r: Node }
  | { t: 'cond'; c: Node; a: Node; b: Node }
  | { t: 'list'; items: Node[] }
  | { t: 'map'; entries: [Node, Node][] };

type Tok = { k: 'num'; v: number } | { k: 'str'; v: string } | { k: 'id'; v: string } | { k: 'op'; v: string } | { k: 'eof' };

const OPS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '?', ':', '.', '[', ']', '(', ')', ',', '{', '}', '+', '-', '*', '/', '%'];

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^(0x[0-9a-fA-F]+|\d+(\.\d+)?([eE][+-]?\d+)?)u?/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ k: 'num', v: Number(m[1]) });
      i += m[0].length;
      continue;
    }
    const raw = (c === 'r' || c === 'R') && (src[i + 1] === '"' || src[i + 1] === "'");
    if (c === '"' || c === "'" || raw) {
      const q = raw ? (src[i + 1] as string) : c;
      let j = raw ? i + 2 : i + 1;
      let s = '';
      while (j < src.length && src[j] !== q) {
        if (src[j] === '\\' && !raw) {
          const e = src[j + 1];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : (e ?? '');
          j += 2;
        } else {
          s += src[j];
          j++;
        }
      }
      if (j >= src.length) throw new CelError(`Syntax error: unterminated string at ${i}`);
      out.push({ k: 'str', v: s });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ k: 'id', v: m[0] });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new CelError(`Syntax error: unexpected character '${c}' at ${i}`);
    out.push({ k: 'op', v: op });
    i += op.length;
  }
  out.push({ k: 'eof' });
  return out;
}

class Parser {
  private pos = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.pos] as Tok;
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.k === 'op' && t.v === v;
  }
  private expect(v: string): void {
    if (!this.isOp(v)) throw new CelError(`Syntax error: expected '${v}'`);
    this.pos++;
  }

  parse(): Node {
    const n = this.expr();
    if (this.peek().k !== 'eof') throw new CelError('Syntax error: unexpected trailing input');
    return n;
  }

  private expr(): Node {
    const c = this.or();
    if (!this.isOp('?')) return c;
    this.pos++;
    const a = this.or();
    this.expect(':');
    return { t: 'cond', c, a, b: this.expr() };
  }
  private or(): Node {
    let l = this.and();
    while (this.isOp('||')) {
      this.pos++;
      l = { t: 'bin', op: '||', l, r: this.and() };
    }
    return l;
  }
  private and(): Node {
    let l = this.rel();
    while (this.isOp('&&')) {
      this.pos++;
      l = { t: 'bin', op: '&&', l, r: this.rel() };
    }
    return l;
  }
  private rel(): Node {
    let l = this.add();
    for (;;) {
      const t = this.peek();
      const op = t.k === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v) ? t.v : t.k === 'id' && t.v === 'in' ? 'in' : undefined;
      if (!op) return l;
      this.pos++;
      l = { t: 'bin', op, l, r: this.add() };
    }
  }
  private add(): Node {
    let l = this.mul();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.toks[this.pos++] as { v: string }).v;
      l = { t: 'bin', op, l, r: this.mul() };
    }
    return l;
  }
  private mul(): Node {
    let l = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = (this.toks[this.pos++] as { v: string }).v;
      l = { t: 'bin', op, l, r: this.unary() };
    }
    return l;
  }
  private unary(): Node {
    if (this.isOp('!') || this.isOp('-')) {
      const op = (this.toks[this.pos++] as { v: string }).v as '!' | '-';
      return { t: 'un', op, arg: this.unary() };
    }
    return this.member();
  }
  private args(): Node[] {
    this.expect('(');
    const args: Node[] = [];
    while (!this.isOp(')')) {
      args.push(this.expr());
      if (!this.isOp(')')) this.expect(',');
    }
    this.pos++;
    return args;
  }
  private member(): Node {
    let n = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.pos++;
        const t = this.toks[this.pos++] as Tok;
        if (t.k !== 'id') throw new CelError('Syntax error: expected a field name after "."');
        n = this.isOp('(') ? { t: 'call', name: t.v, target: n, args: this.args() } : { t: 'sel', target: n, field: t.v };
      } else if (this.isOp('[')) {
        this.pos++;
        const index = this.expr();
        this.expect(']');
        n = { t: 'idx', target: n, index };
      } else {
        return n;
      }
    }
  }
  private primary(): Node {
    const t = this.toks[this.pos++] as Tok;
    if (t.k === 'num' || t.k === 'str') return { t: 'lit', v: t.v };
    if (t.k === 'id') {
      if (t.v === 'true' || t.v === 'false') return { t: 'lit', v: t.v === 'true' };
      if (t.v === 'null') return { t: 'lit', v: null };
      if (this.isOp('(')) return { t: 'call', name: t.v, args: this.args() };
      return { t: 'id', name: t.v };
    }
    if (t.k === 'op' && t.v === '(') {
      const e = this.expr();
      this.expect(')');
      return e;
    }
    if (t.k === 'op' && t.v === '[') {
      const items: Node[] = [];
      while (!this.isOp(']')) {
        items.push(this.expr());
        if (!this.isOp(']')) this.expect(',');
      }
      this.pos++;
      return { t: 'list', items };
    }
    if (t.k === 'op' && t.v === '{') {
      const entries: [Node, Node][] = [];
      while (!this.isOp('}')) {
        const k = this.expr();
        this.expect(':');
        entries.push([k, this.expr()]);
        if (!this.isOp('}')) this.expect(',');
      }
      this.pos++;
      return { t: 'map', entries };
    }
    throw new CelError(`Syntax error: unexpected ${t.k === 'eof' ? 'end of input' : `'${String((t as { v: unknown }).v)}'`}`);
  }
}

const FUNCTIONS = new Set([
  'size',
  'string',
  'int',
  'double',
  'has',
  'startsWith',
  'endsWith',
  'contains',
  'matches',
  'lowerAscii',
  'upperAscii',
  'all',
  'exists',
  'exists_one',
  'map',
  'filter',
]);
const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

/** A compiled expression. */
export interface CelProgram {
  source: string;
  evaluate(vars: Record<string, unknown>): unknown;
}

function checkNode(n: Node, vars: ReadonlySet<string>, bound: ReadonlySet<string>): void {
  switch (n.t) {
    case 'lit':
      return;
    case 'id':
      if (!vars.has(n.name) && !bound.has(n.name)) throw new CelError(`undeclared reference to '${n.name}'`);
      return;
    case 'sel':
      return checkNode(n.target, vars, bound);
    case 'idx':
      checkNode(n.target, vars, bound);
      return checkNode(n.index, vars, bound);
    case 'call': {
      if (!FUNCTIONS.has(n.name)) throw new CelError(`undeclared reference to '${n.name}' (not in the API server double's CEL subset)`);
      if (n.name === 'has' && (n.args.length !== 1 || n.args[0]?.t !== 'sel')) throw new CelError('invalid argument to has() macro');
      if (MACROS.has(n.name)) {
        const v = n.args[0];
        if (!n.target || n.args.length !== 2 || v?.t !== 'id') throw new CelError(`invalid use of the ${n.name} macro`);
        checkNode(n.target, vars, bound);
        return checkNode(n.args[1] as Node, vars, new Set([...bound, v.name]));
      }
      if (n.target) checkNode(n.target, vars, bound);
      for (const a of n.args) checkNode(a, vars, bound);
      return;
    }
    case 'un':
      return checkNode(n.arg, vars, bound);
    case 'bin':
      checkNode(n.l, vars, bound);
      return checkNode(n.r, vars, bound);
    case 'cond':
      checkNode(n.c, vars, bound);
      checkNode(n.a, vars, bound);
      return checkNode(n.b, vars, bound);
    case 'list':
      return n.items.forEach((i) => checkNode(i, vars, bound));
    case 'map':
      return n.entries.forEach(([k, v]) => {
        checkNode(k, vars, bound);
        checkNode(v, vars, bound);
      });
  }
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null_type';
  if (Array.isArray(v)) return 'list';
  if (isMap(v)) return 'map';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'double';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

function equal(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]));
  }
  return a === b;
}

function noOverload(op: string, ...args: unknown[]): CelError {
  return new CelError(`no such overload: ${op}(${args.map(typeOf).join(', ')})`);
}

function evalNode(n: Node, env: Record<string, unknown>): unknown {
  switch (n.t) {
    case 'lit':
      return n.v;
    case 'id':
      return env[n.name];
    case 'sel': {
      const target = evalNode(n.target, env);
      if (!isMap(target)) throw new CelError(target === null ? `no such key: ${n.field}` : `type '${typeOf(target)}' does not support field selection`);
      if (!Object.hasOwn(target, n.field)) throw new CelError(`no such key: ${n.field}`);
      return target[n.field];
    }
    case 'idx': {
      const target = evalNode(n.target, env);
      const index = evalNode(n.index, env);
      if (Array.isArray(target)) {
        if (typeof index !== 'number' || index < 0 || index >= target.length) throw new CelError(`index out of bounds: ${String(index)}`);
        return target[index];
      }
      if (isMap(target)) {
        if (typeof index !== 'string' || !Object.hasOwn(target, index)) throw new CelError(`no such key: ${String(index)}`);
        return target[index];
      }
      throw noOverload('_[_]', target, index);
    }
    case 'un': {
      const v = evalNode(n.arg, env);
      if (n.op === '!') {
        if (typeof v !== 'boolean') throw noOverload('!_', v);
        return !v;
      }
      if (typeof v !== 'number') throw noOverload('-_', v);
      return -v;
    }
    case 'cond': {
      const c = evalNode(n.c, env);
      if (typeof c !== 'boolean') throw noOverload('_?_:_', c);
      return evalNode(c ? n.a : n.b, env);
    }
    case 'list':
      return n.items.map((i) => evalNode(i, env));
    case 'map':
      return Object.fromEntries(n.entries.map(([k, v]) => [String(evalNode(k, env)), evalNode(v, env)]));
    case 'bin':
      return evalBinary(n, env);
    case 'call':
      return evalCall(n, env);
  }
}

function evalBinary(n: Extract<Node, { t: 'bin' }>, env: Record<string, unknown>): unknown {
  if (n.op === '&&' || n.op === '||') {
    // CEL's logical operators are commutative over errors: a decisive side wins.
    const decisive = n.op === '||';
    let leftError: unknown;
    let l: unknown;
    try {
      l = evalNode(n.l, env);
      if (l === decisive) return decisive;
    } catch (e) {
      leftError = e;
    }
    const r = evalNode(n.r, env);
    if (r === decisive) return decisive;
    if (leftError) throw leftError;
    if (typeof l !== 'boolean' || typeof r !== 'boolean') throw noOverload(n.op, l, r);
    return !decisive;
  }
  const l = evalNode(n.l, env);
  const r = evalNode(n.r, env);
  switch (n.op) {
    case '==':
      return equal(l, r);
    case '!=':
      return !equal(l, r);
    case 'in':
      if (Array.isArray(r)) return r.some((x) => equal(x, l));
      if (isMap(r)) return typeof l === 'string' && Object.hasOwn(r, l);
      throw noOverload('@in', l, r);
    case '<':
    case '<=':
    case '>':
    case '>=': {
      if (!((typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string'))) throw noOverload(n.op, l, r);
      return n.op === '<' ? l < r : n.op === '<=' ? l <= r : n.op === '>' ? l > r : l >= r;
    }
    case '+':
      if (typeof l === 'number' && typeof r === 'number') return l + r;
      if (typeof l === 'string' && typeof r === 'string') return l + r;
      if (Array.isArray(l) && Array.isArray(r)) return [...l, ...r];
      throw noOverload('_+_', l, r);
    case '-':
    case '*':
    case '/':
    case '%': {
      if (typeof l !== 'number' || typeof r !== 'number') throw noOverload(n.op, l, r);
      if ((n.op === '/' || n.op === '%') && r === 0) throw new CelError(n.op === '/' ? 'division by zero' : 'modulus by zero');
      if (n.op === '-') return l - r;
      if (n.op === '*') return l * r;
      if (n.op === '%') return l % r;
      return Number.isInteger(l) && Number.isInteger(r) ? Math.trunc(l / r) : l / r;
    }
  }
  throw new CelError(`unsupported operator ${n.op}`);
}

function evalCall(n: Extract<Node, { t: 'call' }>, env: Record<string, unknown>): unknown {
  if (n.name === 'has') {
    const sel = n.args[0] as Extract<Node, { t: 'sel' }>;
    const target = evalNode(sel.target, env);
    if (!isMap(target)) throw new CelError(`invalid type for field selection: ${typeOf(target)}`);
    return Object.hasOwn(target, sel.field);
  }
  if (MACROS.has(n.name)) {
    const list = evalNode(n.target as Node, env);
    const items = Array.isArray(list) ? list : isMap(list) ? Object.keys(list) : undefined;
    if (!items) throw noOverload(n.name, list);
    const name = (n.args[0] as { name: string }).name;
    const body = n.args[1] as Node;
    const run = (x: unknown): unknown => evalNode(body, { ...env, [name]: x });
    switch (n.name) {
      case 'all':
        return items.every((x) => run(x) === true);
      case 'exists':
        return items.some((x) => run(x) === true);
      case 'exists_one':
        return items.filter((x) => run(x) === true).length === 1;
      case 'map':
        return items.map(run);
      case 'filter':
        return items.filter((x) => run(x) === true);
    }
  }
  const recv = n.target ? evalNode(n.target, env) : undefined;
  const args = n.args.map((a) => evalNode(a, env));
  const subject = n.target ? recv : args[0];
  switch (n.name) {
    case 'size':
      if (typeof subject === 'string') return [...subject].length;
      if (Array.isArray(subject)) return subject.length;
      if (isMap(subject)) return Object.keys(subject).length;
      throw noOverload('size', subject);
    case 'string':
      return typeof subject === 'string' ? subject : JSON.stringify(subject);
    case 'int': {
      const v = typeof subject === 'string' ? Number(subject) : subject;
      if (typeof v !== 'number' || Number.isNaN(v)) throw noOverload('int', subject);
      return Math.trunc(v);
    }
    case 'double': {
      const v = typeof subject === 'string' ? Number(subject) : subject;
      if (typeof v !== 'number' || Number.isNaN(v)) throw noOverload('double', subject);
      return v;
    }
  }
  if (typeof recv !== 'string' || (args.length > 0 && typeof args[0] !== 'string')) throw noOverload(n.name, recv, ...args);
  const arg = args[0] as string;
  switch (n.name) {
    case 'startsWith':
      return recv.startsWith(arg);
    case 'endsWith':
      return recv.endsWith(arg);
    case 'contains':
      return recv.includes(arg);
    case 'matches':
      return new RegExp(arg, 'u').test(recv);
    case 'lowerAscii':
      return recv.toLowerCase();
    case 'upperAscii':
      return recv.toUpperCase();
  }
  throw new CelError(`unsupported function ${n.name}`);
}

/**
 * Compiles `source`, checking that it only refers to `variables`; throws CelError when the
 * expression is malformed or outside the subset.
 */
export function compileCel(source: string, variables: readonly string[]): CelProgram {
  const ast = new Parser(lex(source)).parse();
  checkNode(ast, new Set(variables), new Set());
  return { source, evaluate: (vars) => evalNode(ast, vars) };
}
