/**
 * A node agent process (`dist/agent/main.js`) for end-to-end tests and the demo: spawned with
 * its flags, its lines on stderr read as they come (`metrics listening on`, `ready`,
 * `stopped`), waited on, and stopped.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WatchedProcess } from '../e2e/support.js';

/** The repository, whether this file runs from test/agent (jest) or dist/test/agent (compiled). */
const repoRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/dist\/$/, '');
export const AGENT_MAIN = join(repoRoot, 'dist/agent/main.js');

export class AgentProcess extends WatchedProcess {
  metricsPort: number | undefined;
  /** Where its metrics server is reached from here. */
  readonly metricsHost: string;
  ready = false;

  constructor(
    readonly node: string,
    args: string[],
    private readonly options: { env?: NodeJS.ProcessEnv; prefix?: (line: string) => void; netns?: string; metricsHost?: string } = {},
  ) {
    if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run npm run build first`);
    // In the lab, inside the node's network namespace (`ip netns exec` execs node: the pid is the agent's).
    const [command, argv] = options.netns ? ['ip', ['netns', 'exec', options.netns, process.execPath, AGENT_MAIN, ...args]] : [process.execPath, [AGENT_MAIN, ...args]];
    super(`agent ${node}`, spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', ...(options.env ?? {}) } }));
    this.metricsHost = options.metricsHost ?? '127.0.0.1';
  }

  protected override exitedNow(): void {
    this.ready = false;
  }

  protected override line(line: string): void {
    if (process.env.E2E_VERBOSE) process.stderr.write(`[${this.node}] ${line}\n`);
    this.options.prefix?.(line);
    const m = /metrics listening on .*:(\d+)$/.exec(line);
    if (m) this.metricsPort = Number(m[1]);
    if (/ ready$/.test(line)) this.ready = true;
  }

  /** SIGTERM, SIGKILL after 5 s; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (!this.alive) return this.exitCode ?? null;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), 5000);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Its /metrics text. */
  async metrics(): Promise<string> {
    return (await fetch(`http://${this.metricsHost}:${String(this.metricsPort)}/metrics`)).text();
  }
}

/** Runs the agent to its exit (for flag and start-up errors), collecting output. */
export function runAgent(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<{ code: number | null; output: string; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', NODE_NAME: '', ...env } });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agent ${args.join(' ')} did not exit:\n${output}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, lines: output.split('\n').filter((l) => l !== '') });
    });
  });
}
