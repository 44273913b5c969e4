/**
 * Network namespaces for the layer-2 tests: created with a per-run name
 * (`mlbt-l2-<pid>-<random>-<role>`), joined by veth pairs, and removed with every process the
 * test started in them, also when a test fails. Namespaces left by a run that crashed (its pid
 * is gone) are removed by the next run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LAB_PREFIX = 'mlbt-l2-';

/** The repository, whether this file runs from test/layer2 (jest) or dist/test/layer2. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/dist\/$/, '');

/** A compiled helper script; the tests need `npm run build` first (`npm test` does it). */
export function distScript(relative: string): string {
  const path = join(repoRoot, 'dist', relative);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first (npm test does)`);
  return path;
}

/** Fails (never skips) when the machine cannot run the lab: root and the packet tools are required, as in CI. */
export function requireLab(tools: string[]): void {
  if (process.getuid?.() !== 0) throw new Error('the layer-2 lab tests need root (network namespaces, AF_PACKET): run them as root, as .ci/run does');
  for (const tool of ['ip', ...tools]) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is not installed (apt-get install arping ndisc6 tcpdump iproute2 iputils-ping; .ci/run does)`);
    }
  }
}

/** Runs a command to completion; throws with its stderr when it fails. */
export function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`, { cause: e });
  }
}

/** Runs a command to completion whatever its exit code, e.g. an arping expected to go unanswered. */
export function tryRun(cmd: string, args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces of earlier runs whose process is gone (a crash or a SIGKILL skipped their cleanup). */
export function removeLeftovers(): void {
  const dir = '/run/netns';
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const m = new RegExp(`^${LAB_PREFIX}(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    // Processes still running in it would keep its interfaces: end them first.
    for (const pid of sh('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    try {
      sh('ip', ['netns', 'del', name]);
    } catch {
      // Another run cleaning up at the same time.
    }
  }
}

/** The namespaces and processes of one test file. */
export class Lab {
  private readonly id = `${LAB_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private readonly cleanups: (() => Promise<void>)[] = [];

  /** A new namespace with its loopback up; returns its name. */
  namespace(role: string): string {
    const name = `${this.id}-${role}`;
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth pair between two namespaces, both ends up, with the MACs given. */
  veth(a: { ns: string; name: string; mac: string }, b: { ns: string; name: string; mac: string }): void {
    sh('ip', ['-n', a.ns, 'link', 'add', a.name, 'address', a.mac, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns, 'address', b.mac]);
    sh('ip', ['-n', a.ns, 'link', 'set', a.name, 'up']);
    sh('ip', ['-n', b.ns, 'link', 'set', b.name, 'up']);
  }

  /** `ip -n NS ...args` */
  ip(ns: string, ...args: string[]): string {
    return sh('ip', ['-n', ns, ...args]);
  }

  /** Runs a command in a namespace to completion, whatever its exit code. */
  exec(ns: string, cmd: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return tryRun('ip', ['netns', 'exec', ns, ...cmd], timeoutMs);
  }

  /** Starts a long-running command in a namespace; it is killed (by pid) in destroy(). */
  spawn(ns: string, cmd: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.processes.push(child);
    return child;
  }

  /** Something to undo in destroy(), before the namespaces go (e.g. stopping a helper). */
  onDestroy(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  /** Stops what was started and removes the namespaces; safe to call after a partial setup. */
  async destroy(): Promise<void> {
    for (const c of this.cleanups.splice(0)) await c().catch(() => {});
    for (const p of this.processes.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of this.namespaces.splice(0)) {
      // Anything else still inside (a helper that did not stop) would hold its interfaces.
      for (const pid of sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      sh('ip', ['netns', 'del', ns]);
    }
  }
}
