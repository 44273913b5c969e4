/** WorkQueue: client-go's rate-limited work queue, on a fake clock. */
import { ItemExponentialFailureRateLimiter, WorkQueue } from './queue.js';
import { FakeClock, settle } from './testing.js';

function queue(options: { onError?: (key: string, e: unknown) => void } = {}) {
  const clock = new FakeClock();
  const q = new WorkQueue<string>({ clock, timers: clock, ...options });
  return { clock, q };
}

/** A handler whose calls wait until released, recording what runs when. */
function gatedHandler() {
  const running = new Map<string, number>();
  const started: string[] = [];
  const gates: { key: string; release: (fail?: boolean) => void }[] = [];
  let maxSame = 0;
  let maxTotal = 0;
  const handler = (key: string) =>
    new Promise<void>((resolve, reject) => {
      started.push(key);
      running.set(key, (running.get(key) ?? 0) + 1);
      maxSame = Math.max(maxSame, running.get(key) ?? 0);
      maxTotal = Math.max(
        maxTotal,
        [...running.values()].reduce((a, b) => a + b, 0),
      );
      gates.push({
        key,
        release: (fail) => {
          const n = (running.get(key) ?? 1) - 1;
          if (n === 0) running.delete(key);
          else running.set(key, n);
          if (fail) reject(new Error(`${key} failed`));
          else resolve();
        },
      });
    });
  const release = async (key: string, fail = false) => {
    const i = gates.findIndex((g) => g.key === key);
    if (i < 0) throw new Error(`${key} is not running`);
    const [g] = gates.splice(i, 1);
    g?.release(fail);
    await settle();
  };
  return { handler, started, release, stats: () => ({ maxSame, maxTotal, running: gates.length }) };
}

describe('ItemExponentialFailureRateLimiter', () => {
  it.each([
    [1, 5],
    [2, 10],
    [3, 20],
    [4, 40],
    [10, 2560],
    [16, 163_840],
    [17, 300_000],
    [100, 300_000],
    [2000, 300_000],
  ])('failure #%i waits %i ms', (n, ms) => {
    const r = new ItemExponentialFailureRateLimiter<string>();
    let last = 0;
    for (let i = 0; i < n; i++) last = r.when('k');
    expect(last).toBe(ms);
    expect(r.numRequeues('k')).toBe(n);
    expect(r.numRequeues('other')).toBe(0);
    r.forget('k');
    expect(r.numRequeues('k')).toBe(0);
    expect(r.size).toBe(0);
    expect(r.when('k')).toBe(5);
  });
});

describe('WorkQueue', () => {
  it.each<[string, (q: WorkQueue<string>) => void, string[]]>([
    ['keeps arrival order', (q) => ['a', 'b', 'c'].forEach((k) => q.add(k)), ['a', 'b', 'c']],
    ['deduplicates a queued key (it keeps its place)', (q) => ['a', 'b', 'a', 'c', 'b'].forEach((k) => q.add(k)), ['a', 'b', 'c']],
  ])('add: %s', async (_name, fill, expected) => {
    const { q } = queue();
    fill(q);
    expect(q.len()).toBe(expected.length);
    const got: string[] = [];
    for (let i = 0; i < expected.length; i++) got.push((await q.get()) as string);
    expect(got).toEqual(expected);
    expect(q.len()).toBe(0);
  });

  it('re-queues a key added while it is processed, after it is done; never on two workers at once', async () => {
    const { q } = queue();
    const h = gatedHandler();
    const running = q.run(4, h.handler);
    q.add('a');
    q.add('b');
    await settle();
    expect(h.started).toEqual(['a', 'b']);
    q.add('a'); // while a is processed: not started by an idle worker
    q.add('a');
    await settle();
    expect(h.started).toEqual(['a', 'b']);
    expect(q.len()).toBe(0);
    await h.release('a');
    expect(h.started).toEqual(['a', 'b', 'a']); // once more, not twice
    await h.release('a');
    await h.release('b');
    expect(h.started).toEqual(['a', 'b', 'a']);
    expect(h.stats().maxSame).toBe(1);
    await q.shutDown();
    await running;
  });

  it('runs at most `concurrency` keys at once', async () => {
    const { q } = queue();
    const h = gatedHandler();
    const running = q.run(2, h.handler);
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    await settle();
    expect(h.started).toEqual(['a', 'b']);
    expect(q.len()).toBe(2);
    await h.release('b');
    expect(h.started).toEqual(['a', 'b', 'c']);
    await h.release('a');
    await h.release('c');
    await h.release('d');
    expect(h.stats().maxTotal).toBe(2);
    await q.shutDown();
    await running;
  });

  it('retries a rejected key after its backoff (5, 10, 20 ms...), forgets it on success, and reports the error', async () => {
    const errors: string[] = [];
    const { q, clock } = queue({ onError: (k, e) => errors.push(`${k}: ${String(e)}`) });
    const h = gatedHandler();
    const running = q.run(1, h.handler);
    q.add('a');
    await settle();
    const times: number[] = [];
    const t0 = clock.monotonic();
    for (let i = 0; i < 3; i++) {
      await h.release('a', true);
      expect(q.numRequeues('a')).toBe(i + 1);
      // Not retried before its delay...
      await clock.advance(5 * 2 ** i - 1);
      expect(h.started).toHaveLength(i + 1);
      // ...and at it.
      await clock.advance(1);
      expect(h.started).toHaveLength(i + 2);
      times.push(clock.monotonic() - t0);
    }
    expect(times).toEqual([5, 15, 35]);
    await h.release('a');
    expect(q.numRequeues('a')).toBe(0);
    expect(errors).toEqual(['a: Error: a failed', 'a: Error: a failed', 'a: Error: a failed']);
    expect(q.sizes()).toEqual({ queued: 0, processing: 0, delayed: 0, failing: 0 });
    await q.shutDown();
    await running;
  });

  it.each<[string, [number, number][], number]>([
    ['waits its delay', [[100, 0]], 100],
    [
      'takes the earlier of two delays',
      [
        [100, 0],
        [30, 0],
      ],
      30,
    ],
    [
      'keeps an earlier delay over a later one',
      [
        [30, 0],
        [100, 0],
      ],
      30,
    ],
    ['a zero delay adds at once', [[0, 0]], 0],
  ])('addAfter %s', async (_name, adds, at) => {
    const { q, clock } = queue();
    for (const [ms] of adds) q.addAfter('k', ms);
    const got: number[] = [];
    void q.get().then(() => got.push(clock.monotonic() - new Date('2026-01-01T00:00:00Z').getTime()));
    await clock.advance(1000);
    expect(got).toEqual([at]);
    expect(q.sizes().delayed).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('prunes every per-key map: a thousand keys that fail once and then succeed leave nothing behind', async () => {
    const { q, clock } = queue();
    const failed = new Set<string>();
    const running = q.run(8, async (k) => {
      if (!failed.has(k)) {
        failed.add(k);
        throw new Error('first try fails');
      }
    });
    for (let i = 0; i < 1000; i++) q.add(`k${i}`);
    await clock.advance(10);
    await q.idle();
    expect(failed.size).toBe(1000);
    expect(q.sizes()).toEqual({ queued: 0, processing: 0, delayed: 0, failing: 0 });
    expect(clock.pending).toBe(0);
    await q.shutDown();
    await running;
  });

  it('idle() resolves once nothing is queued or processed', async () => {
    const { q } = queue();
    const h = gatedHandler();
    const running = q.run(1, h.handler);
    await q.idle(); // empty: at once
    q.add('a');
    q.add('b');
    await settle();
    let idle = false;
    void q.idle().then(() => (idle = true));
    await h.release('a');
    expect(idle).toBe(false);
    await h.release('b');
    expect(idle).toBe(true);
    await q.shutDown();
    await running;
  });

  it('shutDown() waits for the work in flight, drops queued and delayed keys, refuses new ones, and stops the workers', async () => {
    const { q, clock } = queue();
    const h = gatedHandler();
    let workersDone = false;
    const running = q.run(2, h.handler).then(() => (workersDone = true));
    q.add('a');
    q.add('b');
    q.add('c');
    q.addAfter('later', 1000);
    await settle();
    let down = false;
    const shut = q.shutDown().then(() => (down = true));
    q.add('d');
    q.addRateLimited('e');
    await settle();
    expect(down).toBe(false);
    expect(clock.pending).toBe(0);
    await h.release('a');
    expect(down).toBe(false);
    await h.release('b');
    await shut;
    await running;
    expect(workersDone).toBe(true);
    expect(h.started).toEqual(['a', 'b']);
    expect(q.isShuttingDown()).toBe(true);
    expect(await q.get()).toBeUndefined();
  });

  it('shutDown({ drain: true }) lets the workers finish the queued keys first', async () => {
    const { q } = queue();
    const done: string[] = [];
    q.add('a');
    q.add('b');
    q.add('c');
    const running = q.run(1, async (k) => {
      await settle();
      done.push(k);
    });
    await q.shutDown({ drain: true });
    await running;
    expect(done).toEqual(['a', 'b', 'c']);
  });
});
