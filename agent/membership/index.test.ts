/**
 * The wiring, with real UDP sockets on loopback: several Membership instances in this process,
 * each on its own port. Timings are asserted loosely (a loaded 2-core machine must not fail
 * them); the measured figures are printed.
 */
import dgram from 'node:dgram';
import { Registry } from 'prom-client';
import { Membership, type MembershipOptions } from './index.js';

const key = Buffer.alloc(32, 0x5a);
const running: Membership[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop({ leave: false })));
});

function member(name: string, options: Partial<MembershipOptions> = {}): Membership {
  const m = new Membership({ nodeName: name, bindAddress: '127.0.0.1', port: 0, key, ...options });
  running.push(m);
  return m;
}

/** Starts `members` and seeds each with all of them (as the agent does from Node objects). */
async function join(members: Membership[], address = '127.0.0.1'): Promise<void> {
  await Promise.all(members.map((m) => m.start()));
  const seeds = members.map((m) => ({ name: name(m), address, port: m.port }));
  for (const m of members) m.setSeeds(seeds);
}

function name(m: Membership): string {
  return m.members()[0]!.name;
}

async function waitFor(what: string, done: () => boolean, limitMs = 5000): Promise<number> {
  const start = performance.now();
  while (!done()) {
    if (performance.now() - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - start;
}

const sees = (m: Membership, names: string[]) => {
  const alive = m.alive();
  return alive.size === names.length && names.every((n) => alive.has(n));
};

test('four agents converge; a killed one is detected by the others; metrics count it', async () => {
  const registry = new Registry();
  const changes: Set<string>[] = [];
  const ms = ['n-0', 'n-1', 'n-2', 'n-3'].map((n, i) => member(n, i === 0 ? { registry, onChange: (alive) => changes.push(alive) } : {}));
  await join(ms);
  const converged = await waitFor('convergence', () => ms.every((m) => sees(m, ['n-0', 'n-1', 'n-2', 'n-3'])));
  expect(changes.at(-1)).toEqual(new Set(['n-0', 'n-1', 'n-2', 'n-3']));

  // Let a few probe rounds pass, then kill n-3 (socket closed, no leave).
  await new Promise((r) => setTimeout(r, 600));
  const killedAt = performance.now();
  await ms[3]!.stop({ leave: false });
  const detected: number[] = [];
  await Promise.all(
    ms.slice(0, 3).map(async (m) => {
      await waitFor('detection', () => !m.alive().has('n-3'));
      detected.push(performance.now() - killedAt);
    }),
  );
  process.stderr.write(`UDP, 4 agents: converged in ${converged.toFixed(0)} ms; n-3 killed, gone for all three others after ${detected.map((d) => d.toFixed(0)).join(', ')} ms\n`);
  expect(Math.max(...detected)).toBeLessThan(5000);
  expect(changes.at(-1)).toEqual(new Set(['n-0', 'n-1', 'n-2']));

  const text = await registry.metrics();
  expect(text).toMatch(/metallb_membership_members\{state="alive"\} 3/);
  expect(text).toMatch(/metallb_membership_members\{state="dead"\} 1/);
  expect(text).toMatch(/metallb_membership_probes_total\{result="ack"\} [1-9]/);
  expect(text).toMatch(/metallb_membership_messages_received_total\{type="ping"\} [1-9]/);
  expect(text).toMatch(/metallb_membership_transitions_total\{state="dead"\} 1/);
});

test('a graceful leave is seen at once', async () => {
  const ms = ['a', 'b', 'c'].map((n) => member(n));
  await join(ms);
  await waitFor('convergence', () => ms.every((m) => sees(m, ['a', 'b', 'c'])));
  const start = performance.now();
  await ms[2]!.stop();
  const seen = await waitFor('leave', () => !ms[0]!.alive().has('c') && !ms[1]!.alive().has('c'), 2000);
  process.stderr.write(`UDP: a graceful leave seen by both others after ${(performance.now() - start).toFixed(1)} ms (${seen.toFixed(1)} ms after stop() returned)\n`);
  expect(ms[0]!.members().find((m) => m.name === 'c')!.state).toBe('left');
});

test('an agent with another key never joins; garbage is refused and counted; nothing crashes', async () => {
  const registry = new Registry();
  const ms = [member('a', { registry }), member('b')];
  const intruder = member('mallory', { key: Buffer.alloc(32, 1) });
  await join([...ms, intruder]);
  const raw = dgram.createSocket('udp4');
  await new Promise<void>((r) => raw.bind(0, '127.0.0.1', () => r()));
  for (const bytes of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(2000, 1), Buffer.concat([Buffer.from([0x6d, 0x6c, 0x01, 0x01]), Buffer.alloc(100)])]) {
    await new Promise<void>((r) => raw.send(bytes, ms[0]!.port, '127.0.0.1', () => r()));
  }
  raw.close();
  await new Promise((r) => setTimeout(r, 1500));
  expect(ms[0]!.alive()).toEqual(new Set(['a', 'b']));
  expect(intruder.alive()).toEqual(new Set(['mallory']));
  const text = await registry.metrics();
  const count = (reason: string) => Number(new RegExp(`metallb_membership_messages_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(text)?.[1]);
  expect(count('bad-mac')).toBeGreaterThan(1); // mallory's joins and probes, and the all-zero packet
  expect(count('too-short')).toBe(2);
  expect(count('too-long')).toBe(1);
  expect(count('replay')).toBe(0);
});

test('IPv6 on ::1, and a dual-stack socket on :: talking to an IPv4 agent', async () => {
  const v6 = [member('six-a', { bindAddress: '::1' }), member('six-b', { bindAddress: '::1' })];
  await join(v6, '::1');
  await waitFor('IPv6 convergence', () => v6.every((m) => sees(m, ['six-a', 'six-b'])));

  // Bound to ::, no advertise address: it takes its own seed entry's address.
  const dual = member('dual', { bindAddress: '::' });
  const four = member('four');
  await Promise.all([dual.start(), four.start()]);
  expect(dual.members()[0]!.address).toBe('');
  const seeds = [
    { name: 'dual', address: '127.0.0.1', port: dual.port },
    { name: 'four', address: '127.0.0.1', port: four.port },
  ];
  dual.setSeeds(seeds);
  four.setSeeds(seeds);
  await waitFor('dual-stack convergence', () => sees(dual, ['dual', 'four']) && sees(four, ['dual', 'four']));
  expect(four.members().find((m) => m.name === 'dual')).toMatchObject({ address: '127.0.0.1', port: dual.port, state: 'alive' });
});

test('a port already taken: start() fails with a message naming it', async () => {
  const first = member('first');
  await first.start();
  await expect(member('second', { port: first.port }).start()).rejects.toThrow(new RegExp(`cannot listen on 127.0.0.1 port ${first.port}`));
});

test('bad options are refused at construction', () => {
  expect(() => new Membership({ nodeName: 'a b', bindAddress: '127.0.0.1', key })).toThrow(/node name/);
  expect(() => new Membership({ nodeName: 'a', bindAddress: 'localhost', key })).toThrow(/bind address/);
  expect(() => new Membership({ nodeName: 'a', bindAddress: '127.0.0.1', key: Buffer.alloc(8) })).toThrow(/16 bytes/);
  expect(() => new Membership({ nodeName: 'a', bindAddress: '0.0.0.0', advertiseAddress: '0.0.0.0', key })).toThrow(/advertise/);
});
