/**
 * `npm start` (dist/test/demo/start.js): it comes up with two controller replicas whose logs it
 * prefixes and whose metrics URLs it prints, and a signal to that one process (not to its
 * process group) stops everything: the controller children exit and the temp directory (the
 * kubeconfigs) is gone. Also when the signal goes to the shell between npm and it, which dies
 * without passing it on (npm runs scripts under `sh -c`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { eventually } from '../apiserver/testing.js';
import { repoRoot } from './support.js';

const START = join(repoRoot, 'dist/test/demo/start.js');

/** Whether a process runs (a zombie does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** start.js under `launcher`, its output collected; `closed` resolves when its stdout and stderr have ended. */
class Demo {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly closed: Promise<void>;

  constructor(launcher: 'node' | 'sh') {
    const env = { ...process.env, NODE_OPTIONS: '' };
    this.child =
      launcher === 'node'
        ? spawn(process.execPath, [START], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
        : // Two commands, as `npm start`'s "npm run build && node ...": the shell stays between.
          spawn('/bin/sh', ['-c', `true && '${process.execPath}' '${START}'`], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (c: Buffer) => (this.stdout += c.toString('utf8')));
    this.child.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString('utf8')));
    this.closed = Promise.all([new Promise((r) => this.child.stdout?.on('close', r)), new Promise((r) => this.child.stderr?.on('close', r))]).then(() => undefined);
  }

  /** Resolves when `check` holds, polling; fails after `timeoutMs` with the output so far. */
  async until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Leaves nothing behind, whatever failed: asks what still runs to stop (start.js removes its
   * directory), kills what is left after 10 s, and removes the directory if it is still there.
   */
  async cleanup(pids: number[], dir: string | undefined): Promise<void> {
    const all = [this.child.pid ?? 0, ...pids].filter((pid) => pid > 0);
    if (all.some(running)) {
      for (const pid of all) if (running(pid)) process.kill(pid, 'SIGTERM');
      await this.until(() => !all.some(running), 'everything to stop', 10_000).catch(() => {});
      for (const pid of all) if (running(pid)) process.kill(pid, 'SIGKILL');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

const cases: [string, 'node' | 'sh', NodeJS.Signals][] = [
  ['SIGTERM to start.js alone', 'node', 'SIGTERM'],
  ['SIGINT to start.js alone', 'node', 'SIGINT'],
  ['SIGTERM to the shell between npm and start.js (npm forwards signals to it; it dies without passing them on)', 'sh', 'SIGTERM'],
];

describe('npm start', () => {
  beforeAll(() => {
    if (!existsSync(START)) throw new Error(`${START} is missing: run npm run build first`);
  });

  test.each(cases)(
    '%s stops the controllers and removes the temp directory',
    async (_, launcher, signal) => {
      const demo = new Demo(launcher);
      let pids: number[] = [];
      let dir: string | undefined;
      try {
        // As root, its lab may first wait for another test file's (labs run one at a time).
        await demo.until(() => /^metallb-ts is running/m.test(demo.stdout), 'the ready line', 600_000);
        const replicas = [...demo.stdout.matchAll(/^(controller-\d+): pid (\d+), metrics (http:\/\/127\.0\.0\.1:\d+\/metrics)$/gm)].map((m) => ({
          identity: m[1] ?? '',
          pid: Number(m[2]),
          metrics: m[3] ?? '',
        }));
        expect(replicas.map((r) => r.identity)).toEqual(['controller-0', 'controller-1']);
        pids = replicas.map((r) => r.pid);
        for (const pid of pids) expect(running(pid)).toBe(true);
        const kubeconfig = /export KUBECONFIG=(\S+)$/m.exec(demo.stdout)?.[1] ?? '';
        expect(existsSync(kubeconfig)).toBe(true);
        const tempDir = dirname(kubeconfig);
        dir = tempDir;
        expect(tempDir).toMatch(/metallb-ts-apiserver-/);

        // Each printed URL serves that replica's metrics; the leader's come to show the example pool (16 + 256 addresses).
        const metrics = () => Promise.all(replicas.map(async (r) => ({ status: (await fetch(r.metrics)).status, text: await (await fetch(r.metrics)).text() })));
        for (const m of await metrics()) {
          expect(m.status).toBe(200);
          expect(m.text).toMatch(/^metallb_k8s_client_config_loaded_bool 1$/m);
        }
        await eventually(async () => (await metrics()).some((m) => /^metallb_allocator_addresses_total\{pool="demo"\} 272$/m.test(m.text)), 5000, 'the demo pool in the metrics');
        // The replicas' logs, each line prefixed by its replica.
        for (const r of replicas) expect(demo.stderr).toMatch(new RegExp(`^\\[${r.identity}\\] \\S+ ready$`, 'm'));
        expect(demo.stderr.split('\n').filter((l) => / (webhook|metrics) listening on /.test(l) && !/^\[(controller-\d|agent node-\d)\] /.test(l))).toEqual([]);

        // As root (here and in CI), the layer-2 lab: an agent per node namespace, the client
        // namespace and the LAN printed, the agents' logs prefixed, all of it gone after the signal.
        const agents = [...demo.stdout.matchAll(/^agent (node-\d): pid (\d+), namespace (\S+), /gm)].map((m) => ({ node: m[1], pid: Number(m[2]), netns: m[3] ?? '' }));
        expect(agents.map((a) => a.node)).toEqual(['node-1', 'node-2', 'node-3']);
        for (const a of agents) expect(running(a.pid)).toBe(true);
        pids.push(...agents.map((a) => a.pid));
        const client = /^client namespace: (\S+)$/m.exec(demo.stdout)?.[1] ?? '';
        expect(/^LAN: (\S+) 198\.51\.100\.0\/24 2001:db8:2::\/64$/m.test(demo.stdout)).toBe(true);
        const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
        for (const ns of [client, ...agents.map((a) => a.netns)]) expect(namespaces()).toContain(ns);
        expect(demo.stderr).toMatch(/^\[agent node-1\] \S+ info ready$/m);

        // The signal to that one process; nothing else is signalled.
        const startedAt = Date.now();
        process.kill(demo.child.pid as number, signal);
        await demo.until(() => pids.every((pid) => !running(pid)), 'the controllers to exit', 15_000);
        await demo.until(() => !existsSync(tempDir), 'the temp directory to be removed', 15_000);
        await demo.closed; // start.js itself has exited: its output has ended
        expect(agents.filter((a) => running(a.pid))).toEqual([]);
        for (const ns of [client, ...agents.map((a) => a.netns)]) expect(namespaces()).not.toContain(ns);
        process.stderr.write(`e2e demo (${signal} to ${launcher}): everything stopped in ${Date.now() - startedAt} ms\n`);
        expect(demo.stderr).toMatch(/^stopped$/m);
        for (const r of replicas) expect(demo.stderr).toMatch(new RegExp(`^\\[${r.identity}\\] \\S+ stopped$`, 'm'));
      } finally {
        await demo.cleanup(pids, dir);
      }
    },
    720_000,
  );
});
