/**
 * The lab itself (root): hosts on one LAN reach each other, a host cut off is unreachable, and
 * nothing is left behind, neither by destroy() nor by a run that died without it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Lab, removeLeftovers } from './lab.js';

const run = promisify(execFile);

async function namespaces(): Promise<string[]> {
  return (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
}

async function links(): Promise<string[]> {
  return (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '');
}

let lab: Lab | undefined;
/** Labs run one at a time on a machine: a test may wait for another file's lab first. */
const LAB_TIMEOUT = 600_000;

afterEach(async () => {
  await lab?.destroy();
  lab = undefined;
}, 60_000);

it(
  'puts nodes and the client on one LAN, with the host at .1, and cuts a node off on demand',
  async () => {
    lab = await Lab.create({ nodes: ['node-1', 'node-2'] });
    const [n1, n2] = lab.nodes;
    expect(n1?.address4).toBe('198.51.100.11');
    expect(n2?.address6).toBe('2001:db8:2::c');
    expect(lab.client.address4).toBe('198.51.100.100');
    await lab.exec(lab.client, 'ping', ['-c', '1', '-W', '2', n1!.address4]);
    await lab.exec(n2!, 'ping', ['-c', '1', '-W', '2', '198.51.100.1']);
    await lab.exec(lab.client, 'ping', ['-6', '-c', '1', '-W', '2', n2!.address6]);
    expect(await lab.neighbour(n1!.address4)).toBe(n1!.mac);
    await lab.setConnected(n1!, false);
    await expect(lab.exec(lab.client, 'ping', ['-c', '1', '-W', '1', n1!.address4])).rejects.toThrow(/exit 1/);
    await lab.setConnected(n1!, true);
    await lab.exec(lab.client, 'ping', ['-c', '1', '-W', '2', n1!.address4]);
  },
  LAB_TIMEOUT,
);

it(
  'destroy() kills its processes and removes every namespace and link it made',
  async () => {
    lab = await Lab.create({ nodes: ['node-1'], clientOnLink: ['203.0.113.0/24', '2001:db8:100::/64'] });
    const routes = await lab.exec(lab.client, 'ip', ['route', 'show', '203.0.113.0/24']);
    expect(routes.stdout).toMatch(/dev eth0/);
    const sleeper = lab.spawn(lab.nodes[0]!, 'sleep', ['300']);
    const exited = new Promise((resolve) => sleeper.once('exit', resolve));
    const ns = lab.nodes[0]!.netns;
    const bridge = lab.bridge;
    await lab.destroy();
    await exited;
    expect(await namespaces()).not.toContain(ns);
    expect((await links()).filter((l) => l.startsWith(bridge.slice(0, -2)))).toEqual([]);
  },
  LAB_TIMEOUT,
);

it(
  'removes what a crashed run left, and only that',
  async () => {
    // A pid that is not running: what a run killed by SIGKILL leaves.
    let dead = 4_000_000;
    for (;;) {
      try {
        process.kill(dead, 0);
        dead--;
      } catch {
        break;
      }
    }
    const stale = `mlb-${dead}-0-node-1`;
    const staleLink = `mlb${dead}-0n1`;
    await run('ip', ['netns', 'add', stale]);
    await run('ip', ['link', 'add', staleLink, 'type', 'veth', 'peer', 'name', `${staleLink}x`]);
    lab = await Lab.create({ nodes: ['node-1'] });
    // Lab.create removed them; its own are there.
    expect(await namespaces()).not.toContain(stale);
    expect(await links()).not.toContain(staleLink);
    expect(await namespaces()).toContain(lab.nodes[0]!.netns);
    expect(await removeLeftovers()).toEqual([]);
    expect(await namespaces()).toContain(lab.nodes[0]!.netns);
  },
  LAB_TIMEOUT,
);
