/**
 * A layer-2 lab on this machine, for `npm start`, the network tests and the failover bench (needs
 * root and iproute2): a Linux bridge in the root namespace is the LAN; each node and the client
 * get a network namespace joined to it by a veth pair whose inside end is `eth0`. The root
 * namespace holds the LAN's first address (the API server double listens there, as a cluster's
 * API server on the node network), nodes follow from .11, the client is .100, further hosts (a
 * router) from .200. Documentation ranges only: 198.51.100.0/24 and 2001:db8:2::/64 on the LAN.
 *
 * Names carry this process's pid (`mlb-<pid>-<lab>-...` namespaces, `mlb<pid>-<lab>..` links), so
 * `removeLeftovers()` can tell a crashed earlier run's leftovers from a live run's and remove them.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// Not 192.0.2.0/24: machines here (CI's too) use it for their own network in the root namespace,
// where the bridge lives; a route to it over the bridge would send lab traffic out of eth0.
export const LAN4_PREFIX = '198.51.100';
export const LAN6_PREFIX = '2001:db8:2';
export const LAN4 = `${LAN4_PREFIX}.0/24`;
export const LAN6 = `${LAN6_PREFIX}::/64`;
/** The root namespace's address on the LAN (the API server double listens there). */
export const HOST4 = `${LAN4_PREFIX}.1`;
export const HOST6 = `${LAN6_PREFIX}::1`;

/** One host on the LAN: a network namespace with `eth0` on the bridge. */
export interface LabHost {
  name: string;
  netns: string;
  /** The bridge-side end of its veth pair (set down to cut the host off the LAN). */
  port: string;
  address4: string;
  address6: string;
  /** eth0's MAC address. */
  mac: string;
}

export interface LabOptions {
  /** Node names, e.g. ['node-1', 'node-2', 'node-3']. */
  nodes: string[];
  /** Prefixes the client reaches on-link, without a router (the Service pools, when they are not the LAN's). */
  clientOnLink?: string[];
  /** How long to wait for another process's lab to go (default 10 minutes). */
  waitMs?: number;
}

let labs = 0;

/**
 * Labs share the LAN's addresses (and the root namespace's route to it), so one runs at a time
 * on a machine: jest runs test files in parallel, and a bench may run beside the tests. The lock
 * file holds the owner's pid; a lab waits for it, and takes it over from a process that is gone.
 * Labs of one process (created one after another) share it.
 */
const LOCK = join(tmpdir(), 'metallb-ts-lab.lock');
let lockHeld = 0;

async function acquireLock(timeoutMs: number): Promise<void> {
  if (lockHeld > 0) {
    lockHeld++;
    return;
  }
  const deadline = Date.now() + timeoutMs;
  let waited = false;
  for (;;) {
    try {
      await writeFile(LOCK, String(process.pid), { flag: 'wx' });
      lockHeld = 1;
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number((await readFile(LOCK, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(owner) || owner <= 0 || !alive(owner)) {
      await unlink(LOCK).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another lab (pid ${owner}) has held ${LOCK} for ${timeoutMs / 1000} s`);
    if (!waited && process.env.LAB_VERBOSE) process.stderr.write(`lab: waiting for the lab of pid ${owner}\n`);
    waited = true;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function releaseLock(): Promise<void> {
  if (lockHeld === 0) return;
  if (--lockHeld === 0) await unlink(LOCK).catch(() => {});
}

/** Whether this process can build a lab (root, iproute2), and if not, why. */
export async function labUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, veth pairs, a bridge)';
  try {
    await run('ip', ['-V']);
  } catch {
    return 'the lab needs iproute2 (`ip`): apt-get install iproute2';
  }
  return undefined;
}

/** Runs `ip ARGS...` (or a command in a namespace); a failure says which command and why. */
async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills every process in a namespace (SIGKILL), then deletes it. Never throws. */
async function deleteNetns(netns: string): Promise<void> {
  const pids = await ip(['netns', 'pids', netns]).catch(() => '');
  for (const p of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await ip(['netns', 'del', netns]).catch(() => '');
}

/**
 * Removes the namespaces and links of labs whose process is gone (a run that crashed or was
 * killed before it could clean up). Live runs' labs are left alone.
 */
export async function removeLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  const namespaces = (await ip(['netns', 'list']).catch(() => '')).split('\n').map((l) => l.split(' ')[0] ?? '');
  for (const ns of namespaces) {
    const m = /^mlb-(\d+)-/.exec(ns);
    if (m && !alive(Number(m[1]))) {
      await deleteNetns(ns);
      removed.push(ns);
    }
  }
  const links = (await ip(['-o', 'link', 'show']).catch(() => '')).split('\n');
  for (const line of links) {
    const m = /^\d+: (mlb(\d+)-[^:@]+)[:@]/.exec(line);
    if (m && !alive(Number(m[2]))) {
      await ip(['link', 'del', m[1] as string]).catch(() => '');
      removed.push(m[1] as string);
    }
  }
  return removed;
}

/** A running lab. Create with `Lab.create`, always `destroy()` (also on failure). */
export class Lab {
  readonly nodes: LabHost[] = [];
  client!: LabHost;
  readonly others: LabHost[] = [];
  private readonly processes = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(
    /** Short id of this lab within the process (one base-36 character). */
    readonly id: string,
    /** The bridge: the LAN. */
    readonly bridge: string,
  ) {}

  private get nsPrefix(): string {
    return `mlb-${process.pid}-${this.id}`;
  }

  private get linkPrefix(): string {
    return `mlb${process.pid}-${this.id}`;
  }

  /** Builds the LAN, the node namespaces and the client namespace. */
  static async create(options: LabOptions): Promise<Lab> {
    const why = await labUnavailable();
    if (why) throw new Error(why);
    if (options.nodes.length > 80) throw new Error('at most 80 nodes on the lab LAN (.11-.90)');
    await acquireLock(options.waitMs ?? 600_000);
    const id = (labs++ % 36).toString(36);
    const lab = new Lab(id, `mlb${process.pid}-${id}br`);
    try {
      await removeLeftovers();
      await ip(['link', 'add', 'name', lab.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
      await ip(['addr', 'add', `${HOST4}/24`, 'dev', lab.bridge]);
      await ip(['-6', 'addr', 'add', `${HOST6}/64`, 'dev', lab.bridge, 'nodad']);
      await ip(['link', 'set', lab.bridge, 'up']);
      for (const [i, name] of options.nodes.entries()) lab.nodes.push(await lab.attach(name, `n${i + 1}`, 11 + i));
      lab.client = await lab.attach('client', 'c', 100, options.clientOnLink);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  /**
   * A further host on the LAN (a router, say) at `.N` / `::N`, in a namespace of its own.
   * `short` is a 1-3 character tag for its link name.
   */
  async addHost(name: string, short: string, n: number, onLink: string[] = []): Promise<LabHost> {
    const h = await this.attach(name, short, n, onLink);
    this.others.push(h);
    return h;
  }

  private async attach(name: string, short: string, n: number, onLink: string[] = []): Promise<LabHost> {
    const netns = `${this.nsPrefix}-${name}`;
    const port = `${this.linkPrefix}${short}`;
    if (port.length > 15) throw new Error(`link name ${port} is longer than 15 characters`);
    const inside = `${port}i`.slice(0, 15);
    await ip(['netns', 'add', netns]);
    await ip(['link', 'add', port, 'type', 'veth', 'peer', 'name', inside]);
    await ip(['link', 'set', inside, 'netns', netns]);
    await ip(['link', 'set', port, 'master', this.bridge]);
    await ip(['link', 'set', port, 'up']);
    const address4 = `${LAN4_PREFIX}.${n}`;
    const address6 = `${LAN6_PREFIX}::${n.toString(16)}`;
    const inNs = (args: string[]) => ip(['-n', netns, ...args]);
    await inNs(['link', 'set', inside, 'name', 'eth0']);
    await inNs(['link', 'set', 'lo', 'up']);
    await inNs(['addr', 'add', `${address4}/24`, 'dev', 'eth0']);
    await inNs(['-6', 'addr', 'add', `${address6}/64`, 'dev', 'eth0', 'nodad']);
    await inNs(['link', 'set', 'eth0', 'up']);
    for (const prefix of onLink) await inNs([...(prefix.includes(':') ? ['-6'] : []), 'route', 'add', prefix, 'dev', 'eth0']);
    const link = await inNs(['-o', 'link', 'show', 'eth0']);
    const mac = /link\/ether ([0-9a-f:]{17})/.exec(link)?.[1];
    if (!mac) throw new Error(`no MAC address on eth0 in ${netns}: ${link}`);
    return { name, netns, port, address4, address6, mac };
  }

  /** The host (node, client or other) called `name`. */
  host(name: string): LabHost {
    const h = [...this.nodes, this.client, ...this.others].find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in the lab`);
    return h;
  }

  /** Runs a command in a host's namespace and returns its output (rejects on a non-zero exit, with its output). */
  async exec(host: LabHost, command: string, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
    try {
      return await run('ip', ['netns', 'exec', host.netns, command, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; code?: number | string; message: string };
      const error = new Error(`${command} ${args.join(' ')} in ${host.name}: exit ${String(err.code)}: ${(err.stderr || err.stdout || err.message).trim()}`, { cause: e });
      Object.assign(error, { stdout: err.stdout ?? '', stderr: err.stderr ?? '', exitCode: err.code });
      throw error;
    }
  }

  /** Starts a process in a host's namespace (`ip netns exec` execs it: the child's pid is the program's). Killed by destroy(). */
  spawn(host: LabHost, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', host.netns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.processes.add(child);
    child.on('exit', () => this.processes.delete(child));
    return child;
  }

  /** Cuts a host off the LAN (its bridge port down: its process runs on, its packets go nowhere) or puts it back. */
  async setConnected(host: LabHost, connected: boolean): Promise<void> {
    await ip(['link', 'set', host.port, connected ? 'up' : 'down']);
  }

  /** The MAC the client's neighbour table has for `address` now, if any (a REACHABLE/STALE/... entry with an lladdr). */
  async neighbour(address: string, from: LabHost = this.client): Promise<string | undefined> {
    const out = await ip(['-n', from.netns, ...(address.includes(':') ? ['-6'] : []), 'neigh', 'show', address, 'dev', 'eth0']);
    return /lladdr ([0-9a-f:]{17})/.exec(out)?.[1];
  }

  /** Forgets a neighbour entry in a host (so the next packet asks again). */
  async flushNeighbour(address: string, from: LabHost = this.client): Promise<void> {
    await ip(['-n', from.netns, ...(address.includes(':') ? ['-6'] : []), 'neigh', 'flush', 'to', address, 'dev', 'eth0']).catch(() => '');
  }

  /** Kills every process this lab started, then removes the namespaces and links. Never throws. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.processes) p.kill('SIGKILL');
    await Promise.all([...this.processes].map((p) => new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve())))));
    for (const h of [...this.nodes, ...(this.client ? [this.client] : []), ...this.others]) await deleteNetns(h.netns);
    // Namespaces whose attach failed half-way, and the links left in the root namespace.
    const namespaces = (await ip(['netns', 'list']).catch(() => '')).split('\n').map((l) => l.split(' ')[0] ?? '');
    for (const ns of namespaces) if (ns.startsWith(`${this.nsPrefix}-`)) await deleteNetns(ns);
    const links = (await ip(['-o', 'link', 'show']).catch(() => '')).split('\n');
    for (const line of links) {
      const m = /^\d+: ([^:@]+)[:@]/.exec(line);
      if (m && m[1]!.startsWith(this.linkPrefix) && m[1] !== this.bridge) await ip(['link', 'del', m[1]!]).catch(() => '');
    }
    await ip(['link', 'del', this.bridge]).catch(() => '');
    await releaseLock();
  }
}
