/**
 * JSON lines between a test and a helper process it runs inside a network namespace (the test
 * itself stays in the root namespace): requests `{ seq, op, ...args }` on the helper's stdin,
 * answers `{ seq, ok, result | error, code }` and events `{ event, ... }` on its stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type Message = Record<string, unknown>;

/** The helper's side: answers requests with `handlers[op]`, and emits events. */
export function serve(handlers: Record<string, (request: Message) => unknown>): { emit(event: string, fields?: Message): void } {
  const write = (m: Message): void => {
    process.stdout.write(`${JSON.stringify(m)}\n`);
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    const request = JSON.parse(line) as Message;
    const seq = request.seq;
    void (async () => {
      try {
        const handler = handlers[String(request.op)];
        if (!handler) throw new Error(`unknown op ${String(request.op)}`);
        write({ seq, ok: true, result: (await handler(request)) ?? null });
      } catch (e) {
        const error = e as Error & { code?: string };
        write({ seq, ok: false, error: error.message, code: error.code ?? null, name: error.name });
      }
    })();
  });
  // The test went away: so do we.
  process.stdin.on('end', () => process.exit(0));
  return { emit: (event, fields = {}) => write({ event, ...fields }) };
}

/** An error the helper answered with. */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
    readonly remoteName: string,
  ) {
    super(message);
  }
}

/** The test's side: a helper process run with `ip netns exec NS node SCRIPT ARGS`. */
export class Helper {
  readonly events: Message[] = [];
  stderr = '';
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly waiters = new Set<() => void>();
  private exited = false;

  private constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let m: Message;
      try {
        m = JSON.parse(line) as Message;
      } catch {
        this.stderr += `(stdout) ${line}\n`;
        return;
      }
      if (typeof m.seq === 'number' && 'ok' in m) {
        const p = this.pending.get(m.seq);
        this.pending.delete(m.seq);
        if (m.ok) p?.resolve(m.result);
        else p?.reject(new RemoteError(String(m.error), (m.code as string | null) ?? null, String(m.name)));
      } else {
        this.events.push(m);
        for (const w of [...this.waiters]) w();
      }
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`helper exited (${code ?? signal}): ${this.stderr}`));
      this.pending.clear();
      for (const w of [...this.waiters]) w();
    });
  }

  /** Starts `node script ...args` in network namespace `ns` and waits for its `ready` event. */
  static async start(ns: string, script: string, args: string[] = []): Promise<Helper> {
    const helper = new Helper(spawn('ip', ['netns', 'exec', ns, process.execPath, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await helper.waitFor((e) => e.event === 'ready', 10_000);
    return helper;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  call<T = unknown>(op: string, args: Message = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`helper has exited: ${this.stderr}`));
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ seq, op, ...args })}\n`);
    });
  }

  /** The first event (already received or to come) that matches. */
  waitFor(match: (e: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.events.find(match);
        if (found) resolve(found);
        else if (this.exited) reject(new Error(`helper exited before the event came: ${this.stderr}`));
        else return false;
        return true;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no matching event within ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  /** Ends the helper: closes its stdin (it exits), then SIGKILLs it by pid if it lingers. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(timer);
  }
}
