import { encodePacket, type Message, type Update } from './codec.js';
import { DEFAULT_TIMINGS, Protocol, type Action, type Endpoint } from './protocol.js';
import { seeded, SimCluster } from './testing.js';

const at = (n: number): Endpoint => ({ address: `192.0.2.${n}`, port: 7946 });
const alive = (name: string, n: number, incarnation = 1): Update => ({ type: 'alive', name, incarnation, ...at(n) });
const sends = (actions: Action[], type?: Message['type']) =>
  actions.filter((a): a is Extract<Action, { type: 'send' }> => a.type === 'send' && (type === undefined || a.message.type === type));
const notes = (actions: Action[]) => actions.filter((a): a is Extract<Action, { type: 'member' }> => a.type === 'member');

/** Node `a` at time 0, knowing b, c, d (alive, incarnation 1). random() = 0: no jitter, first member first. */
function machineWithPeers(peers = ['b', 'c', 'd']) {
  const a = new Protocol({ name: 'a', ...at(1), incarnation: 1, random: () => 0 });
  a.handle({ type: 'start' }, 0);
  a.handle({ type: 'receive', from: 'b', source: at(2), message: { type: 'gossip', updates: peers.map((p, i) => alive(p, i + 2)) } }, 0);
  return a;
}

describe('one machine, driven by hand', () => {
  test('a probe without an ack: ping, then ping-req through the others at the timeout, then suspect at the end of the period, then dead', () => {
    const a = machineWithPeers();
    const t0 = a.nextDeadline();
    const first = a.handle({ type: 'tick' }, t0);
    const [ping] = sends(first, 'ping');
    expect(ping).toBeDefined();
    const target = ping!.to;
    const seq = (ping!.message as { seq: number }).seq;

    // Nothing answers. At the probe timeout, k = 3 helpers are asked, but there are only 2 others.
    expect(a.nextDeadline()).toBeLessThanOrEqual(t0 + DEFAULT_TIMINGS.probeTimeoutMs);
    const indirect = sends(a.handle({ type: 'tick' }, t0 + DEFAULT_TIMINGS.probeTimeoutMs), 'ping-req');
    expect(indirect.map((s) => s.to).sort()).toEqual(['b', 'c', 'd'].filter((n) => n !== target).sort());
    for (const s of indirect) expect(s.message).toMatchObject({ type: 'ping-req', seq, target });

    // End of the period: suspect. n = 4, so k = min(3, 4 - 2) = 2 confirmations expected: the
    // suspicion starts at the maximum.
    const end = a.handle({ type: 'tick' }, t0 + DEFAULT_TIMINGS.probeIntervalMs);
    expect(end).toContainEqual({ type: 'probe', target, result: 'failed', indirect: true });
    expect(notes(end)).toEqual([{ type: 'member', name: target, state: 'suspect', previous: 'alive', incarnation: 1, by: 'a' }]);
    // Our own suspicion is gossiped at once.
    const gossip = sends(end, 'gossip');
    expect(gossip.length).toBeGreaterThan(0);
    expect(gossip[0]!.message.updates).toContainEqual({ type: 'suspect', name: target, incarnation: 1, from: 'a' });
    expect(a.alive().has(target)).toBe(true); // a suspect still counts as alive

    const suspectedAt = t0 + DEFAULT_TIMINGS.probeIntervalMs;
    let now = suspectedAt;
    let died: Action[] = [];
    // Keep the others answering (their acks do not matter here); step until the target dies.
    while (now < suspectedAt + 2000 && a.alive().has(target)) {
      now = Math.max(now, a.nextDeadline());
      died = a.handle({ type: 'tick' }, now);
      for (const p of sends(died, 'ping'))
        if (p.to !== target) a.handle({ type: 'receive', from: p.to, source: p.endpoint, message: { type: 'ack', seq: (p.message as { seq: number }).seq, updates: [] } }, now);
    }
    expect(now - suspectedAt).toBe(DEFAULT_TIMINGS.suspicionMaxMs);
    expect(notes(died)).toContainEqual({ type: 'member', name: target, state: 'dead', previous: 'suspect', incarnation: 1, by: 'a' });
    expect(died).toContainEqual({ type: 'changed' });
    expect(a.alive()).toEqual(new Set(['a', 'b', 'c', 'd'].filter((n) => n !== target)));
  });

  test('an ack within the timeout ends the probe: no ping-req, no suspicion', () => {
    const a = machineWithPeers();
    const t0 = a.nextDeadline();
    const [ping] = sends(a.handle({ type: 'tick' }, t0), 'ping');
    const acked = a.handle({ type: 'receive', from: ping!.to, source: ping!.endpoint, message: { type: 'ack', seq: (ping!.message as { seq: number }).seq, updates: [] } }, t0 + 1);
    expect(acked).toContainEqual({ type: 'probe', target: ping!.to, result: 'ack', indirect: false });
    // The next deadline is the next probe (or gossip), not a ping-req.
    const later = a.handle({ type: 'tick' }, t0 + DEFAULT_TIMINGS.probeTimeoutMs);
    expect(sends(later, 'ping-req')).toEqual([]);
  });

  test('an indirect ack relayed by a helper saves the target', () => {
    const a = machineWithPeers();
    const t0 = a.nextDeadline();
    const [ping] = sends(a.handle({ type: 'tick' }, t0), 'ping');
    const seq = (ping!.message as { seq: number }).seq;
    const [req] = sends(a.handle({ type: 'tick' }, t0 + DEFAULT_TIMINGS.probeTimeoutMs), 'ping-req');
    const relayed = a.handle({ type: 'receive', from: req!.to, source: req!.endpoint, message: { type: 'ack', seq, updates: [] } }, t0 + 150);
    expect(relayed).toContainEqual({ type: 'probe', target: ping!.to, result: 'ack', indirect: true });
    expect(notes(a.handle({ type: 'tick' }, t0 + DEFAULT_TIMINGS.probeIntervalMs))).toEqual([]);
  });

  test('as a helper: ping-req -> our own ping to the target -> its ack is forwarded with the origin seq; silence -> a nack', () => {
    const a = machineWithPeers();
    const req: Message = { type: 'ping-req', seq: 77, target: 'c', ...at(3), updates: [] };
    const [ping] = sends(a.handle({ type: 'receive', from: 'b', source: at(2), message: req }, 10), 'ping');
    expect(ping).toMatchObject({ to: 'c', endpoint: at(3) });
    const forwarded = sends(a.handle({ type: 'receive', from: 'c', source: at(3), message: { type: 'ack', seq: (ping!.message as { seq: number }).seq, updates: [] } }, 11), 'ack');
    expect(forwarded).toMatchObject([{ to: 'b', endpoint: at(2), message: { type: 'ack', seq: 77 } }]);

    sends(a.handle({ type: 'receive', from: 'b', source: at(2), message: { ...req, seq: 78 } }, 20), 'ping');
    let nack: ReturnType<typeof sends> = [];
    for (let now = 20; now <= 20 + DEFAULT_TIMINGS.probeTimeoutMs && nack.length === 0; now += 5) nack = sends(a.handle({ type: 'tick' }, now), 'nack');
    expect(nack).toMatchObject([{ to: 'b', message: { type: 'nack', seq: 78 } }]);
  });

  test('suspicion shrinks with each independent confirmation (memberlist formula), not with repeats', () => {
    // n = 6, so k = min(3, 6 - 2) = 3. Every ping is answered (an ack does not end a
    // suspicion: only an alive at a higher incarnation does), so that `a` never confirms itself.
    const deathAfter = (confirmers: string[]): number => {
      const a = machineWithPeers(['b', 'c', 'd', 'e', 'f']);
      const suspect = (from: string) => ({ type: 'suspect' as const, name: 'f', incarnation: 1, from });
      const out = [a.handle({ type: 'receive', from: 'b', source: at(2), message: { type: 'gossip', updates: [suspect('b')] } }, 1000)];
      for (const c of confirmers) out.push(a.handle({ type: 'receive', from: c, source: at(3), message: { type: 'gossip', updates: [suspect(c)] } }, 1000));
      for (let now = 1000; now < 3000; now++) {
        for (const p of out.flatMap((o) => sends(o, 'ping')))
          a.handle({ type: 'receive', from: p.to, source: p.endpoint, message: { type: 'ack', seq: (p.message as { seq: number }).seq, updates: [] } }, now);
        out.length = 0;
        out.push(a.handle({ type: 'tick' }, now));
        if (!a.alive().has('f')) return now - 1000;
      }
      return Infinity;
    };
    const timeline = [[], ['c'], ['c', 'c', 'b'], ['c', 'd'], ['c', 'd', 'e'], ['c', 'd', 'e', 'a']].map(deathAfter);
    // 500; 500 - log(2)/log(4) * 300 = 350; repeats count once; log(3)/log(4) -> 262; three -> the minimum, 200.
    expect(timeline).toEqual([500, 350, 350, 262, 200, 200]);
  });

  test('a suspicion or a death of ourselves is refuted with a higher incarnation, sent at once', () => {
    const a = machineWithPeers();
    const out = a.handle({ type: 'receive', from: 'b', source: at(2), message: { type: 'gossip', updates: [{ type: 'suspect', name: 'a', incarnation: 1, from: 'b' }] } }, 50);
    expect(out).toContainEqual({ type: 'refuted', incarnation: 2, accuser: 'b' });
    expect(a.selfIncarnation).toBe(2);
    const carried = sends(out).flatMap((s) => s.message.updates);
    expect(carried).toContainEqual({ type: 'alive', name: 'a', incarnation: 2, ...at(1) });
    // Old news about us changes nothing.
    expect(
      a.handle({ type: 'receive', from: 'c', source: at(3), message: { type: 'gossip', updates: [{ type: 'dead', name: 'a', incarnation: 1, from: 'c' }] } }, 60),
    ).not.toContainEqual(expect.objectContaining({ type: 'refuted' }));
    // A death at a higher incarnation than ours is outranked.
    a.handle({ type: 'receive', from: 'c', source: at(3), message: { type: 'gossip', updates: [{ type: 'dead', name: 'a', incarnation: 9, from: 'c' }] } }, 70);
    expect(a.selfIncarnation).toBe(10);
  });

  test('incarnation rules: alive overrides suspect/dead only when newer; a leave is final for its incarnation', () => {
    const a = machineWithPeers();
    const gossip = (u: Update, now = 10) => a.handle({ type: 'receive', from: 'c', source: at(3), message: { type: 'gossip', updates: [u] } }, now);
    gossip({ type: 'suspect', name: 'b', incarnation: 1, from: 'c' });
    gossip(alive('b', 2, 1)); // same incarnation: stays suspect
    expect(a.members().find((m) => m.name === 'b')!.state).toBe('suspect');
    gossip(alive('b', 2, 2));
    expect(a.members().find((m) => m.name === 'b')!.state).toBe('alive');
    const out = gossip({ type: 'dead', name: 'b', incarnation: 2, from: 'b' });
    expect(notes(out)).toEqual([{ type: 'member', name: 'b', state: 'left', previous: 'alive', incarnation: 2, by: 'b' }]);
    expect(out).toContainEqual({ type: 'changed' });
    gossip(alive('b', 2, 2));
    expect(a.alive().has('b')).toBe(false);
    // Back with a new incarnation (a restarted agent): alive again.
    gossip(alive('b', 2, 3));
    expect(a.alive().has('b')).toBe(true);
  });

  test('graceful leave: a farewell to every live member, then silence', () => {
    const a = machineWithPeers();
    const out = a.handle({ type: 'leave' }, 100);
    expect(
      sends(out)
        .map((s) => s.to)
        .sort(),
    ).toEqual(['b', 'c', 'd']);
    for (const s of sends(out)) expect(s.message.updates).toEqual([{ type: 'dead', name: 'a', incarnation: 1, from: 'a' }]);
    expect(a.nextDeadline()).toBe(Infinity);
    expect(a.handle({ type: 'tick' }, 1000)).toEqual([]);
  });

  test('joining: a sync to every seed that is not a live member, now and every joinIntervalMs; new seeds at once', () => {
    const a = new Protocol({ name: 'a', ...at(1), incarnation: 5, random: () => 0.5 });
    a.handle(
      {
        type: 'seeds',
        seeds: [
          { name: 'a', ...at(1) },
          { name: 'b', ...at(2) },
        ],
      },
      0,
    );
    const started = sends(a.handle({ type: 'start' }, 0), 'sync');
    expect(started).toEqual([
      { type: 'send', to: 'b', endpoint: at(2), message: { type: 'sync', reply: true, members: [{ name: 'a', ...at(1), incarnation: 5, state: 'alive' }], updates: [] } },
    ]);
    const more = sends(
      a.handle(
        {
          type: 'seeds',
          seeds: [
            { name: 'b', ...at(2) },
            { name: 'c', ...at(3) },
          ],
        },
        10,
      ),
      'sync',
    );
    expect(more.map((s) => s.to)).toEqual(['c']);
    // b answers with its state; it is a member now and no longer asked.
    a.handle(
      { type: 'receive', from: 'b', source: at(2), message: { type: 'sync', reply: false, members: [{ name: 'b', ...at(2), incarnation: 3, state: 'alive' }], updates: [] } },
      20,
    );
    let joins: string[] = [];
    for (let now = 20; now <= 1100; now += 10) {
      const out = a.handle({ type: 'tick' }, now);
      joins = joins.concat(sends(out, 'sync').map((s) => s.to));
      // b answers its probes (else it would die, and a dead seed is asked to sync again).
      for (const p of sends(out, 'ping'))
        a.handle({ type: 'receive', from: p.to, source: p.endpoint, message: { type: 'ack', seq: (p.message as { seq: number }).seq, updates: [] } }, now);
    }
    expect(joins).toContain('c');
    expect(joins).not.toContain('b');
  });

  test('a sync record of dead is taken as a suspicion (the member may refute), of left as left', () => {
    const a = machineWithPeers();
    a.handle(
      {
        type: 'receive',
        from: 'c',
        source: at(3),
        message: {
          type: 'sync',
          reply: false,
          members: [
            { name: 'b', ...at(2), incarnation: 1, state: 'dead' },
            { name: 'd', ...at(4), incarnation: 1, state: 'left' },
          ],
          updates: [],
        },
      },
      10,
    );
    const states = Object.fromEntries(a.members().map((m) => [m.name, m.state]));
    expect(states).toMatchObject({ b: 'suspect', d: 'left' });
  });

  test('the address becomes known later: a new incarnation announces it', () => {
    const a = new Protocol({ name: 'a', address: '', port: 7946, incarnation: 5, random: () => 0.5 });
    a.handle({ type: 'seeds', seeds: [{ name: 'b', ...at(2) }] }, 0);
    expect(sends(a.handle({ type: 'start' }, 0), 'sync')[0]!.message).toMatchObject({ members: [] });
    const out = a.handle({ type: 'address', ...at(1) }, 5);
    expect(a.selfIncarnation).toBe(6);
    expect(sends(out, 'sync')[0]!.message).toMatchObject({ members: [{ name: 'a', ...at(1), incarnation: 6, state: 'alive' }] });
  });

  test('every datagram fits: sync of 200 members with long names is split, piggyback respects the bound', () => {
    const a = machineWithPeers([]);
    const long = (i: number) => `node-${i}-${'x'.repeat(60)}.example.internal`;
    const updates: Update[] = [];
    for (let i = 0; i < 200; i++)
      updates.push({ type: 'alive', name: long(i), incarnation: 2 ** 47 + i, address: `2001:db8:ffff:ffff:ffff:ffff:ffff:${i.toString(16)}`, port: 65000 });
    for (let i = 0; i < 200; i += 20) a.handle({ type: 'receive', from: 'b', source: at(2), message: { type: 'gossip', updates: updates.slice(i, i + 20) } }, 0);
    const syncs = sends(a.handle({ type: 'receive', from: 'b', source: at(2), message: { type: 'sync', reply: true, members: [], updates: [] } }, 1), 'sync');
    expect(syncs.length).toBeGreaterThan(5);
    expect(syncs.filter((s) => (s.message as { reply: boolean }).reply)).toEqual([]);
    expect(syncs.reduce((n, s) => n + (s.message as { members: unknown[] }).members.length, 0)).toBe(201);
    const key = Buffer.alloc(32);
    for (const s of syncs) expect(encodePacket({ from: 'a', to: s.to, timestamp: 1, nonce: 1, message: s.message }, key).length).toBeLessThanOrEqual(1400);
    // A ping piggybacks as much of the queue as fits.
    const [ping] = sends(a.handle({ type: 'tick' }, a.nextDeadline()), 'ping');
    const bytes = encodePacket({ from: 'a', to: ping!.to, timestamp: 1, nonce: 1, message: ping!.message }, key);
    expect(bytes.length).toBeLessThanOrEqual(1400);
    expect(bytes.length).toBeGreaterThan(1200);
  });
});

/** The time until every up node sees `victim` gone, and until the first one does. */
function detect(c: SimCluster, victim: string, limit = 10_000): { all: number; first: number } {
  const start = c.now;
  let first: number | undefined;
  const all = c.runUntilTrue(() => {
    const others = [...c.nodes.values()].filter((n) => n.up);
    const gone = others.filter((n) => !n.protocol.alive().has(victim)).length;
    if (gone > 0 && first === undefined) first = c.now - start;
    return gone === others.length;
  }, limit);
  if (all === undefined || first === undefined) throw new Error(`${victim} never detected`);
  return { all, first };
}

function cluster(size: number, seed: number, options: ConstructorParameters<typeof SimCluster>[0] = {}): SimCluster {
  const c = new SimCluster({ seed, ...options });
  for (let i = 0; i < size; i++) c.add(`node-${i}`);
  c.start();
  if (c.runUntilTrue(() => c.converged(), 10_000) === undefined) throw new Error('no convergence');
  return c;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('a simulated LAN (real codec, fake clock)', () => {
  test('join: five nodes seeded with each other converge within a second', () => {
    const c = new SimCluster({ seed: 3 });
    for (let i = 0; i < 5; i++) c.add(`node-${i}`);
    c.start();
    const t = c.runUntilTrue(() => c.converged(), 5000);
    expect(t).toBeDefined();
    expect(t!).toBeLessThan(1000);
  });

  test('join through a single seed: 50 nodes who know only node-0 converge, in datagrams below 1400 bytes', () => {
    const c = new SimCluster({ seed: 4 });
    for (let i = 0; i < 50; i++) c.add(`node-${i}-${'n'.repeat(40)}`);
    const seed = [c.seeds()[0]!];
    for (const n of c.nodes.values()) {
      c.handle(n, { type: 'seeds', seeds: seed });
      c.handle(n, { type: 'start' });
    }
    const t = c.runUntilTrue(() => c.converged(), 20_000);
    process.stderr.write(`50 nodes through one seed: converged after ${t} ms (simulated), largest datagram ${c.largest} bytes\n`);
    expect(t).toBeDefined();
    expect(c.largest).toBeLessThanOrEqual(1400);
    // And they stay converged, with nobody suspected falsely.
    c.run(10_000);
    expect(c.converged()).toBe(true);
    expect([...c.nodes.keys()].reduce((n, name) => n + c.transitions(name, 'dead'), 0)).toBe(0);
  });

  test('a crash is detected by every member within the bound, over 20 seeds', () => {
    for (const size of [3, 5, 10]) {
      const all: number[] = [];
      const first: number[] = [];
      for (let seed = 1; seed <= 20; seed++) {
        const c = cluster(size, seed);
        c.run(2000);
        c.crash('node-0');
        const t = detect(c, 'node-0');
        all.push(t.all);
        first.push(t.first);
      }
      // Bound: the victim is probed within (n - 1) periods (round robin), the probe takes one
      // period, the suspicion at most suspicionMaxMs, the news one gossip interval.
      const bound = (size - 1) * 200 + 200 + 500 + 100;
      process.stderr.write(
        `crash of 1 in ${size}: all others know after median ${median(all)} ms, max ${Math.max(...all)} ms; the first after median ${median(first)} ms (simulated; bound ${bound})\n`,
      );
      expect(Math.max(...all)).toBeLessThanOrEqual(bound);
    }
  });

  test('the suspicion is reached through a failed indirect probe, and dead only after suspect', () => {
    const c = cluster(4, 9);
    c.run(1000);
    c.crash('node-3');
    detect(c, 'node-3');
    const events = [...c.nodes.values()]
      .filter((n) => n.up)
      .flatMap((n) => n.log.map((l) => ({ at: l.at, node: n.name, action: l.action })))
      .filter((e) => (e.action.type === 'probe' && e.action.target === 'node-3') || (e.action.type === 'member' && e.action.name === 'node-3'))
      .sort((x, y) => x.at - y.at);
    const firstSuspect = events.find((e) => e.action.type === 'member' && e.action.state === 'suspect')!;
    const firstDead = events.find((e) => e.action.type === 'member' && e.action.state === 'dead')!;
    const failed = events.find((e) => e.action.type === 'probe' && e.action.result === 'failed')!;
    expect(failed.action).toMatchObject({ indirect: true });
    expect(failed.at).toBeLessThanOrEqual(firstSuspect.at);
    expect(firstDead.at - firstSuspect.at).toBeGreaterThanOrEqual(DEFAULT_TIMINGS.suspicionMinMs);
    expect(firstDead.at - firstSuspect.at).toBeLessThanOrEqual(DEFAULT_TIMINGS.suspicionMaxMs);
  });

  test('refutation: a node silent for 300 ms is suspected, refutes when it hears, and is never declared dead', () => {
    const c = cluster(5, 11);
    c.run(1000);
    let silent = false;
    c.lose = (from, to) => silent && (from === 'node-2' || to === 'node-2');
    silent = true;
    const start = c.now;
    c.runUntilTrue(() => c.transitions('node-2', 'suspect') > 0, 2000);
    const suspectedAfter = c.now - start;
    silent = false;
    c.run(2000);
    expect(c.transitions('node-2', 'suspect')).toBeGreaterThan(0);
    expect(c.transitions('node-2', 'dead')).toBe(0);
    expect(c.node('node-2').log.some((l) => l.action.type === 'refuted')).toBe(true);
    expect(c.node('node-2').protocol.selfIncarnation).toBeGreaterThan(c.wall() - c.now - 1);
    expect(c.converged()).toBe(true);
    process.stderr.write(`refutation: suspected ${suspectedAfter} ms into the silence, refuted, never dead\n`);
  });

  test('a partitioned node: each side drops the other; after the partition heals everyone converges through the seeds', () => {
    const c = cluster(5, 12);
    c.run(1000);
    let cut = true;
    c.lose = (from, to) => cut && (from === 'node-4') !== (to === 'node-4');
    c.run(2000);
    expect(c.aliveAt('node-0').has('node-4')).toBe(false);
    // node-4 hears no ack and no nack: Lifeguard blames itself and slows down, so it takes longer
    // to give up on the others.
    expect(c.node('node-4').protocol.healthScore).toBeGreaterThan(0);
    c.run(10_000);
    expect(c.aliveAt('node-4')).toEqual(new Set(['node-4']));
    cut = false;
    const healed = c.runUntilTrue(() => c.converged(), 10_000);
    process.stderr.write(`partition of 1 in 5 healed: converged ${healed} ms after the network returned\n`);
    expect(healed).toBeDefined();
    expect(healed!).toBeLessThan(3000);
  });

  test('graceful leave is seen by every member at once (one datagram latency), as left, not dead', () => {
    const c = cluster(6, 13);
    c.run(1000);
    c.leave('node-5');
    const t = c.runUntilTrue(() => [...c.nodes.values()].filter((n) => n.up).every((n) => !n.protocol.alive().has('node-5')), 1000);
    expect(t).toBeDefined();
    expect(t!).toBeLessThanOrEqual(5);
    for (let i = 0; i < 5; i++)
      expect(
        c
          .node(`node-${i}`)
          .protocol.members()
          .find((m) => m.name === 'node-5')!.state,
      ).toBe('left');
    expect(c.transitions('node-5', 'dead')).toBe(0);
  });

  test('a crashed node that restarts rejoins at a higher incarnation', () => {
    const c = cluster(4, 14);
    c.run(1000);
    c.crash('node-1');
    detect(c, 'node-1');
    c.run(3000);
    c.restart('node-1');
    expect(c.runUntilTrue(() => c.converged(), 3000)).toBeDefined();
  });

  test('message loss: with 5% of datagrams lost, 10 nodes stay converged for a simulated minute (no false deaths); a crash is still detected', () => {
    const c = cluster(10, 15);
    const random = seeded(99);
    c.lose = () => random() < 0.05;
    c.run(60_000);
    const falseDeaths = [...c.nodes.keys()].reduce((n, name) => n + c.transitions(name, 'dead'), 0);
    const suspicions = [...c.nodes.keys()].reduce((n, name) => n + c.transitions(name, 'suspect'), 0);
    process.stderr.write(`5% loss, 10 nodes, 60 s: ${c.dropped} of ${c.sent} datagrams lost, ${suspicions} suspicions (all refuted), ${falseDeaths} false deaths\n`);
    expect(falseDeaths).toBe(0);
    expect(c.converged()).toBe(true);
    c.crash('node-3');
    expect(detect(c, 'node-3').all).toBeLessThan(3000);
  });

  test('heavy loss (20%): members may flap but the cluster converges once the loss stops', () => {
    const c = cluster(8, 16);
    const random = seeded(7);
    let lossy = true;
    c.lose = () => lossy && random() < 0.2;
    c.run(30_000);
    lossy = false;
    expect(c.runUntilTrue(() => c.converged(), 5000)).toBeDefined();
  });

  test('forgeries are refused and counted: no key, a wrong key, a replay, a misdirected copy, truncated bytes, random bytes', () => {
    const c = cluster(3, 17);
    const victim = c.node('node-1');
    const before = victim.protocol.members();
    // A replay: capture a real datagram to node-1 and send it again.
    let captured: Buffer | undefined;
    const transmit = c.transmit.bind(c);
    c.transmit = (from, address, port, bytes) => {
      if (!captured && address === victim.address) captured = Buffer.from(bytes);
      transmit(from, address, port, bytes);
    };
    c.run(500);
    c.transmit = transmit;
    expect(captured).toBeDefined();
    c.transmit('mallory', victim.address, 7946, captured!);
    // The same bytes to another node: bound to node-1, refused.
    c.transmit('mallory', c.node('node-2').address, 7946, captured!);
    // "node-2 is dead", signed with another key.
    const lie = (key: Buffer) =>
      encodePacket(
        {
          from: 'node-2',
          to: 'node-1',
          timestamp: c.wall(),
          nonce: 1,
          message: { type: 'gossip', updates: [{ type: 'dead', name: 'node-2', incarnation: 2 ** 48 - 1, from: 'node-2' }] },
        },
        key,
      );
    c.transmit('mallory', victim.address, 7946, lie(Buffer.alloc(32, 8)));
    c.transmit('mallory', victim.address, 7946, lie(Buffer.alloc(32, 7)).subarray(0, 40));
    const random = seeded(5);
    for (let i = 0; i < 50; i++) c.transmit('mallory', victim.address, 7946, Buffer.from(Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256))));
    c.run(100);
    const rejected = Object.fromEntries(victim.rejected);
    process.stderr.write(`refused by node-1: ${JSON.stringify(rejected)}, node-2: ${JSON.stringify(Object.fromEntries(c.node('node-2').rejected))}\n`);
    expect(rejected.replay).toBe(1);
    expect(rejected['bad-mac']).toBe(1);
    expect(rejected['too-short']).toBeGreaterThanOrEqual(1);
    expect(c.node('node-2').rejected.get('misdirected')).toBe(1);
    expect(Object.values(rejected).reduce((a, b) => a + b, 0)).toBe(53);
    expect(c.converged()).toBe(true);
    expect(victim.protocol.members().map((m) => m.state)).toEqual(before.map((m) => m.state));
  });

  test('a node with the wrong key never joins, and the others count its datagrams as bad-mac', () => {
    const c = new SimCluster({ seed: 18 });
    for (let i = 0; i < 3; i++) c.add(`node-${i}`);
    c.add('intruder', Buffer.alloc(32, 1));
    c.start();
    c.run(3000);
    for (let i = 0; i < 3; i++) expect(c.aliveAt(`node-${i}`)).toEqual(new Set(['node-0', 'node-1', 'node-2']));
    expect(c.aliveAt('intruder')).toEqual(new Set(['intruder']));
    expect(c.node('node-0').rejected.get('bad-mac')).toBeGreaterThan(0);
  });
});
