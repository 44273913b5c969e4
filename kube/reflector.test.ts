/**
 * Reflector: client-go's reflector semantics against the API server double, with faults
 * injected at the KubeApi level (FaultyKube).
 */
import { startApiServer, type ApiServer } from '../test/apiserver/index.js';
import { eventually, kubeConfigFor } from '../test/apiserver/testing.js';
import { ClientKube, KubeError, KubeTimeoutError, RESOURCES, type KubeObject } from './client.js';
import { Backoff, Reflector, ReflectorStoppedError, type ReflectorOptions } from './reflector.js';
import { FakeClock, FaultyKube, kubeError } from './testing.js';
import { systemTimers, type Timers } from './queue.js';

let api: ApiServer;
let client: ClientKube;

beforeAll(async () => {
  api = await startApiServer({ tls: false, bookmarkIntervalMs: 100 });
  client = new ClientKube(kubeConfigFor(api));
});
afterAll(async () => {
  client.close();
  await api.stop();
});

let nsCount = 0;
/** A fresh namespace per test, so that tests see only their own ConfigMaps. */
async function namespace(server = api): Promise<string> {
  const name = `r${++nsCount}`;
  await server.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as never);
  return name;
}

const configMap = (server: ApiServer, ns: string, name: string, data: Record<string, string> = {}) =>
  server.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data } as never);

/** Fast backoff, so that tests that fail watches many times run in milliseconds. */
const FAST: ReflectorOptions = { backoff: { initialMs: 1, maxMs: 5 } };

/** A reflector keeping a name -> object cache, with what it was told. */
function mirror(kube: FaultyKube, ns: string, options: ReflectorOptions = FAST, handlers: { onEvent?: () => void } = {}) {
  const cache = new Map<string, KubeObject>();
  const syncs: string[][] = [];
  const errors: unknown[] = [];
  const reflector = new Reflector(
    kube,
    RESOURCES.configMaps,
    {
      onSync: (items) => {
        syncs.push(items.map((o) => o.metadata.name ?? '').sort());
        cache.clear();
        for (const o of items) cache.set(o.metadata.name ?? '', o);
      },
      onEvent: (type, o) => {
        handlers.onEvent?.();
        if (type === 'DELETED') cache.delete(o.metadata.name ?? '');
        else cache.set(o.metadata.name ?? '', o);
      },
      onError: (e) => errors.push(e),
    },
    { namespace: ns },
    options,
  );
  return { reflector, cache, syncs, errors };
}

/** The names the server holds in `ns`, sorted. */
const serverNames = (server: ApiServer, ns: string) =>
  server.store
    .list('v1', 'ConfigMap', { namespace: ns })
    .map((o) => o.metadata.name ?? '')
    .sort();
const names = (cache: Map<string, KubeObject>) => [...cache.keys()].sort();

describe('Reflector', () => {
  it('retries a failed first list with backoff; start() resolves after the first successful one, every error reported and counted', async () => {
    const ns = await namespace();
    await configMap(api, ns, 'a');
    const kube = new FaultyKube(client);
    kube.inject({ verb: 'list', resource: 'configmaps', count: 3, fault: { status: 503 } });
    const { reflector, syncs, errors } = mirror(kube, ns);
    try {
      await reflector.start();
      expect(reflector.hasSynced()).toBe(true);
      expect(syncs).toEqual([['a']]);
      expect(kube.count('list', 'configmaps')).toBe(4);
      expect(errors).toHaveLength(3);
      expect(errors.every((e) => e instanceof KubeError && e.code === 503)).toBe(true);
      expect(reflector.stats()).toMatchObject({ lists: 4, listErrors: 3, relists: 0, errors: 3, synced: true });
      expect(reflector.stats().lastError).toBe(errors[2]);
    } finally {
      reflector.stop();
    }
  });

  it('start({ wait: false }) returns at once; synced() resolves once a list succeeds', async () => {
    const ns = await namespace();
    const kube = new FaultyKube(client);
    kube.inject({ verb: 'list', resource: 'configmaps', fault: { hang: true } });
    const { reflector } = mirror(kube, ns);
    try {
      await reflector.start({ wait: false });
      expect(reflector.hasSynced()).toBe(false);
      await eventually(() => kube.hanging === 1);
      kube.releaseHung(new KubeTimeoutError('no answer within 30000 ms')); // as the client's deadline would
      await reflector.synced();
      expect(reflector.stats()).toMatchObject({ lists: 2, listErrors: 1, synced: true });
    } finally {
      reflector.stop();
    }
  });

  it.each([
    ['normally (server timeout)', undefined],
    ['with a transient error', kubeError(500, 'InternalError', 'etcd leader changed')],
    ['with a broken connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ])('a watch ended %s a hundred times in a row is resumed from the last resourceVersion: no relist, nothing missed', async (_how, error) => {
    const ns = await namespace();
    await configMap(api, ns, 'initial');
    const kube = new FaultyKube(client);
    const { reflector, cache, syncs, errors } = mirror(kube, ns);
    await reflector.start();
    try {
      for (let i = 0; i < 100; i++) {
        await eventually(() => kube.openWatches('configmaps') === 1, 5000, `watch #${i + 1}`);
        if (i % 10 === 0) await configMap(api, ns, `cm-${i}`);
        if (i % 10 === 5) await api.store.delete('v1', 'ConfigMap', `cm-${i - 5}`, ns);
        expect(kube.endWatches({ resource: 'configmaps', ...(error ? { error } : {}) })).toBe(1);
      }
      await configMap(api, ns, 'last');
      await eventually(() => cache.has('last'), 5000, 'the last ConfigMap');
      expect(names(cache)).toEqual(serverNames(api, ns));
      // One list, ever: every re-watch started where the previous one stopped.
      expect(kube.count('list', 'configmaps')).toBe(1);
      expect(syncs).toHaveLength(1);
      expect(reflector.stats()).toMatchObject({ lists: 1, relists: 0, watchErrors: error ? 100 : 0, errors: error ? 100 : 0 });
      expect(reflector.stats().watches).toBeGreaterThanOrEqual(101);
      expect(errors).toHaveLength(error ? 100 : 0);
    } finally {
      reflector.stop();
    }
  });

  it('relists on 410 Expired (history compacted) and delivers the whole collection', async () => {
    const ns = await namespace();
    await configMap(api, ns, 'a');
    await configMap(api, ns, 'b');
    const kube = new FaultyKube(client);
    const { reflector, cache, syncs, errors } = mirror(kube, ns);
    await reflector.start();
    try {
      await eventually(() => kube.openWatches('configmaps') === 1);
      // The watch is cut; the next one meets 410 (history compacted); changes made meanwhile
      // reach the reflector only through the relist.
      kube.inject({ verb: 'watch', resource: 'configmaps', fault: { status: 410, reason: 'Expired' } });
      kube.inject({ verb: 'list', resource: 'configmaps', fault: { hang: true } });
      kube.endWatches({ resource: 'configmaps' });
      await eventually(() => kube.hanging === 1, 5000, 'the relist');
      await api.store.delete('v1', 'ConfigMap', 'a', ns);
      await configMap(api, ns, 'c');
      kube.releaseHung();
      await eventually(() => syncs.length === 2, 5000, 'a relist');
      expect(syncs[1]).toEqual(['b', 'c']);
      expect(names(cache)).toEqual(['b', 'c']);
      expect(errors.some((e) => e instanceof KubeError && e.code === 410)).toBe(true);

      // The same through the double: every watch ends with an ERROR event carrying 410.
      await eventually(() => kube.openWatches('configmaps') === 1);
      api.forceWatchExpiry();
      await eventually(() => syncs.length === 3, 5000, 'a second relist');
      expect(syncs[2]).toEqual(['b', 'c']);
      expect(reflector.stats()).toMatchObject({ lists: 3, relists: 2 });
      await eventually(() => kube.openWatches('configmaps') === 1, 5000, 'watching again');
    } finally {
      reflector.stop();
    }
  });

  it('retries a failed watch start with backoff, without relisting', async () => {
    const ns = await namespace();
    const kube = new FaultyKube(client);
    kube.inject({ verb: 'watch', resource: 'configmaps', count: 3, fault: { status: 503 } });
    const { reflector, cache, errors } = mirror(kube, ns);
    await reflector.start();
    try {
      await eventually(() => kube.openWatches('configmaps') === 1);
      await configMap(api, ns, 'x');
      await eventually(() => cache.has('x'));
      expect(kube.count('watch', 'configmaps')).toBe(4);
      expect(kube.count('list', 'configmaps')).toBe(1);
      expect(errors).toHaveLength(3);
      expect(reflector.stats()).toMatchObject({ lists: 1, watches: 1, watchErrors: 3 });
    } finally {
      reflector.stop();
    }
  });

  it('backs off between watches a server closes at once (no hot loop)', async () => {
    const ns = await namespace();
    const kube = new FaultyKube(client);
    // Every watch ends as soon as it starts; backoff 20 ms doubling to 80 ms.
    const { reflector } = mirror(kube, ns, { backoff: { initialMs: 20, maxMs: 80, jitter: 0 } });
    const ending = setInterval(() => kube.endWatches(), 1);
    try {
      await reflector.start();
      await new Promise((r) => setTimeout(r, 600));
      // 20 + 40 + 80 + 80 + ... ms: about 8 watches in 600 ms, not hundreds.
      const watches = kube.count('watch', 'configmaps');
      expect(watches).toBeGreaterThanOrEqual(3);
      expect(watches).toBeLessThanOrEqual(12);
      expect(kube.count('list', 'configmaps')).toBe(1);
    } finally {
      clearInterval(ending);
      reflector.stop();
    }
  });

  it('reports and counts a handler that throws, and keeps going', async () => {
    const ns = await namespace();
    const kube = new FaultyKube(client);
    let calls = 0;
    const { reflector, cache, errors } = mirror(kube, ns, FAST, {
      onEvent: () => {
        if (++calls === 1) throw new Error('handler bug');
      },
    });
    await reflector.start();
    try {
      await configMap(api, ns, 'one');
      await configMap(api, ns, 'two');
      await eventually(() => cache.has('two'));
      expect(errors.map(String)).toEqual(['Error: handler bug']);
      expect(reflector.stats().errors).toBe(1);
    } finally {
      reflector.stop();
    }
  });

  it('stop() leaves no timer and no watch behind, and a start() still waiting rejects', async () => {
    const live = new Set<unknown>();
    const timers: Timers = {
      setTimeout: (fn, ms) => {
        const h: unknown = systemTimers.setTimeout(() => {
          live.delete(h);
          fn();
        }, ms);
        live.add(h);
        return h;
      },
      clearTimeout: (h) => {
        live.delete(h);
        systemTimers.clearTimeout(h);
      },
    };
    const ns = await namespace();
    // Stopped while backing off from failed lists.
    const failing = new FaultyKube(client);
    failing.inject({ verb: 'list', count: Infinity, fault: { status: 500 } });
    const a = mirror(failing, ns, { backoff: { initialMs: 10_000 }, timers });
    const started = a.reflector.start();
    await eventually(() => live.size === 1, 5000, 'a backoff timer');
    a.reflector.stop();
    await expect(started).rejects.toBeInstanceOf(ReflectorStoppedError);
    expect(live.size).toBe(0);

    // Stopped while watching: the stream is closed on both ends.
    const before = api.openWatches;
    const kube = new FaultyKube(client);
    const b = mirror(kube, ns, { ...FAST, timers });
    await b.reflector.start();
    await eventually(() => api.openWatches === before + 1, 5000, 'the watch open on the server');
    b.reflector.stop();
    expect(kube.openWatches()).toBe(0);
    await eventually(() => api.openWatches === before, 5000, 'the watch closed on the server');
    expect(live.size).toBe(0);
    expect(b.reflector.stats().watching).toBe(false);

    // Stopped while a list hangs: nothing happens once it answers.
    const hanging = new FaultyKube(client);
    hanging.inject({ verb: 'list', fault: { hang: true } });
    const c = mirror(hanging, ns, { ...FAST, timers });
    const waiting = c.reflector.start();
    await eventually(() => hanging.hanging === 1);
    c.reflector.stop();
    await expect(waiting).rejects.toBeInstanceOf(ReflectorStoppedError);
    hanging.releaseHung();
    await new Promise((r) => setTimeout(r, 50));
    expect(hanging.count('watch')).toBe(0);
    expect(live.size).toBe(0);
  });
});

describe('Reflector and BOOKMARKs', () => {
  let small: ApiServer;
  let smallClient: ClientKube;
  beforeAll(async () => {
    small = await startApiServer({ tls: false, historyLimit: 20, bookmarkIntervalMs: 50 });
    smallClient = new ClientKube(kubeConfigFor(small));
  });
  afterAll(async () => {
    smallClient.close();
    await small.stop();
  });

  it('a BOOKMARK moves the resourceVersion, so a re-watch after churn elsewhere needs no relist', async () => {
    const quiet = await namespace(small);
    const busy = await namespace(small);
    await configMap(small, quiet, 'q');
    const kube = new FaultyKube(smallClient);
    const { reflector, cache, syncs } = mirror(kube, quiet);
    await reflector.start();
    try {
      await eventually(() => kube.openWatches('configmaps') === 1);
      const listed = Number(reflector.stats().resourceVersion);
      // Far more changes than the history keeps, none of them in the watched namespace.
      for (let i = 0; i < 50; i++) await configMap(small, busy, `b-${i}`);
      const latest = small.store.raw.resourceVersion;
      expect(small.store.raw.oldestRevision).toBeGreaterThan(listed);
      await eventually(() => Number(reflector.stats().resourceVersion) >= latest, 5000, 'a bookmark');
      kube.endWatches();
      await eventually(() => reflector.stats().watches === 2 && kube.openWatches() === 1, 5000, 'the second watch');
      await configMap(small, quiet, 'q2');
      await eventually(() => cache.has('q2'), 5000, 'q2 through the second watch');
      expect(syncs).toHaveLength(1);
      expect(kube.count('list')).toBe(1);
      expect(reflector.stats().watchErrors).toBe(0);
    } finally {
      reflector.stop();
    }
  });
});

describe('Backoff', () => {
  it('doubles from 200 ms to a 30 s cap, with jitter below the nominal delay, and resets after a healthy period', async () => {
    const clock = new FakeClock();
    let r = 0;
    const b = new Backoff({}, clock, () => r);
    const nominal = [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000];
    expect(nominal.map(() => b.next())).toEqual(nominal);
    r = 1; // the most jitter: half the nominal delay
    expect(b.next()).toBe(15000);
    await clock.advance(59_999);
    r = 0;
    expect(b.next()).toBe(30000);
    await clock.advance(60_000);
    expect(b.next()).toBe(200);
    expect(b.next()).toBe(400);
  });
});
