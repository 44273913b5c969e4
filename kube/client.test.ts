/**
 * ClientKube's deadlines: every request times out (per client, per call), a watch that is not
 * accepted in time or goes silent ends, and the socket goes with it. Against a bare HTTP server
 * that never answers, and against the API server double.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from '../test/apiserver/index.js';
import { eventually, kubeConfigFor } from '../test/apiserver/testing.js';
import { ClientKube, isKubeError, KubeError, KubeTimeoutError, RESOURCES, type KubeObject, type WatchEventType } from './client.js';

/** An HTTP server that lets `handle` answer (or not); it records request URLs and open sockets. */
async function rawServer(handle: (req: IncomingMessage, res: ServerResponse) => void = () => {}) {
  const urls: string[] = [];
  const sockets = new Set<Socket>();
  let closed = 0;
  const server: Server = createServer((req, res) => {
    urls.push(req.url ?? '');
    handle(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      closed++;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return {
    kc,
    urls,
    get open() {
      return sockets.size;
    },
    get closed() {
      return closed;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('ClientKube deadlines', () => {
  it("rejects a request with no answer after the client's deadline with a KubeTimeoutError (504 Timeout), and destroys its socket", async () => {
    const srv = await rawServer();
    const kube = new ClientKube(srv.kc, { timeoutMs: 150 });
    try {
      const t0 = performance.now();
      const e = await rejection(kube.get(RESOURCES.services, 'a', 'default'));
      const took = performance.now() - t0;
      expect(e).toBeInstanceOf(KubeTimeoutError);
      expect(e).toBeInstanceOf(KubeError);
      expect(e).toMatchObject({ code: 504, reason: 'Timeout' });
      expect(isKubeError(e, 504, 'Timeout')).toBe(true);
      expect(String(e)).toMatch(/GET \/api\/v1\/namespaces\/default\/services\/a: no answer within 150 ms/);
      expect(took).toBeGreaterThanOrEqual(140);
      expect(took).toBeLessThan(2000);
      await eventually(() => srv.closed === 1 && srv.open === 0, 2000, 'the socket closed');
    } finally {
      kube.close();
      await srv.stop();
    }
  });

  it('takes a per-call deadline over the client default, for every verb', async () => {
    const srv = await rawServer();
    const kube = new ClientKube(srv.kc, { timeoutMs: 60_000 });
    const r = RESOURCES.configMaps;
    const obj: KubeObject = { metadata: { name: 'x', namespace: 'default' } };
    const t = { timeoutMs: 100 };
    try {
      const t0 = performance.now();
      const errors = await Promise.all([
        rejection(kube.get(r, 'x', 'default', t)),
        rejection(kube.list(r, { namespace: 'default', ...t })),
        rejection(kube.create(r, obj, t)),
        rejection(kube.replace(r, obj, t)),
        rejection(kube.patch(r, 'x', 'default', {}, t)),
        rejection(kube.delete(r, 'x', 'default', undefined, t)),
      ]);
      expect(performance.now() - t0).toBeLessThan(5000);
      for (const e of errors) expect(e).toBeInstanceOf(KubeTimeoutError);
      await eventually(() => srv.open === 0, 2000, 'every socket closed');
    } finally {
      kube.close();
      await srv.stop();
    }
  });

  it('times out a response whose body never ends', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"items": [');
    });
    const kube = new ClientKube(srv.kc, { timeoutMs: 150 });
    try {
      expect(await rejection(kube.list(RESOURCES.services))).toBeInstanceOf(KubeTimeoutError);
      await eventually(() => srv.open === 0, 2000, 'the socket closed');
    } finally {
      kube.close();
      await srv.stop();
    }
  });

  it('rejects a watch the server does not accept in time, and asks for a random server-side timeout of 5-10 minutes with bookmarks', async () => {
    const srv = await rawServer();
    const kube = new ClientKube(srv.kc, { timeoutMs: 120, random: () => 0.5 });
    try {
      const e = await rejection(
        kube.watch(
          RESOURCES.services,
          { namespace: 'default', resourceVersion: '42' },
          () => {},
          () => {},
        ),
      );
      expect(e).toBeInstanceOf(KubeTimeoutError);
      await eventually(() => srv.open === 0, 2000, 'the socket closed');
      const q = new URL(srv.urls[0] ?? '', 'http://x').searchParams;
      expect(Object.fromEntries(q)).toEqual({ watch: 'true', resourceVersion: '42', allowWatchBookmarks: 'true', timeoutSeconds: '450' });
    } finally {
      kube.close();
      await srv.stop();
    }
    // The draw covers 300-600 s.
    const srv2 = await rawServer((_req, res) => res.writeHead(200).end());
    try {
      for (const draw of [0, 0.9999]) {
        const k = new ClientKube(srv2.kc, { random: () => draw });
        await new Promise<void>(
          (resolve, reject) =>
            void k
              .watch(
                RESOURCES.services,
                { resourceVersion: '1' },
                () => {},
                () => resolve(),
              )
              .catch(reject),
        );
        k.close();
      }
      expect(srv2.urls.map((u) => new URL(u, 'http://x').searchParams.get('timeoutSeconds'))).toEqual(['300', '599']);
    } finally {
      await srv2.stop();
    }
  });

  it('ends a silent watch after its idle timeout with a KubeTimeoutError, and closes the socket', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '7' } } })}\n`);
    });
    const kube = new ClientKube(srv.kc, { watchIdleTimeoutMs: 60_000 });
    try {
      const events: string[] = [];
      let stopped: unknown;
      const ended = new Promise<unknown>((resolve) => {
        void kube.watch(
          RESOURCES.services,
          { resourceVersion: '1', idleTimeoutMs: 200 },
          (type, o) => events.push(`${type} ${o.metadata.name ?? ''}`),
          (e) => resolve((stopped = e)),
        );
      });
      const e = await ended;
      expect(events).toEqual(['ADDED a']);
      expect(e).toBeInstanceOf(KubeTimeoutError);
      expect(String(stopped)).toMatch(/nothing received for 200 ms/);
      await eventually(() => srv.open === 0, 2000, 'the socket closed');
    } finally {
      kube.close();
      await srv.stop();
    }
  });

  it('rejects a watch refused with an error status with the Status as a KubeError', async () => {
    const srv = await rawServer((_req, res) => {
      res.writeHead(403, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'services is forbidden' }));
    });
    const kube = new ClientKube(srv.kc);
    try {
      const e = await rejection(
        kube.watch(
          RESOURCES.services,
          { resourceVersion: '1' },
          () => {},
          () => {},
        ),
      );
      expect(e).toMatchObject({ code: 403, reason: 'Forbidden', message: 'services is forbidden' });
    } finally {
      kube.close();
      await srv.stop();
    }
  });
});

describe('ClientKube watches against the API server double', () => {
  let api: ApiServer;
  beforeAll(async () => {
    api = await startApiServer({ tls: false, bookmarkIntervalMs: 50 });
  });
  afterAll(async () => {
    await api.stop();
  });

  /** Watches config maps in `default`; `ended` settles with onEnd's argument. */
  async function watch(kube: ClientKube, options: { timeoutSeconds?: number; idleTimeoutMs?: number; resourceVersion?: string } = {}) {
    const events: { type: WatchEventType; obj: KubeObject }[] = [];
    let onEnd: (e: unknown) => void = () => {};
    const ended = new Promise<{ error: unknown }>((resolve) => (onEnd = (error) => resolve({ error })));
    let done = false;
    void ended.then(() => (done = true));
    const { resourceVersion } = await kube.list(RESOURCES.configMaps, { namespace: 'default' });
    const stop = await kube.watch(RESOURCES.configMaps, { namespace: 'default', resourceVersion, ...options }, (type, obj) => events.push({ type, obj }), onEnd);
    return { events, ended, stop, isDone: () => done };
  }

  it('keeps a quiet watch open past its idle timeout while BOOKMARKs arrive, and ends it normally at timeoutSeconds', async () => {
    const kube = new ClientKube(kubeConfigFor(api));
    try {
      const w = await watch(kube, { idleTimeoutMs: 250, timeoutSeconds: 1 });
      await new Promise((r) => setTimeout(r, 700));
      expect(w.isDone()).toBe(false);
      expect(w.events.some((e) => e.type === 'BOOKMARK')).toBe(true);
      expect((await w.ended).error).toBeUndefined();
    } finally {
      kube.close();
    }
  });

  it('ends a watch with a 410 Expired KubeError when history is compacted', async () => {
    const kube = new ClientKube(kubeConfigFor(api));
    try {
      const w = await watch(kube);
      api.forceWatchExpiry();
      const { error } = await w.ended;
      expect(error).toBeInstanceOf(KubeError);
      expect(error).toMatchObject({ code: 410 });
    } finally {
      kube.close();
    }
  });

  it('stop() closes the stream on the server and calls no onEnd', async () => {
    const kube = new ClientKube(kubeConfigFor(api));
    try {
      const before = api.openWatches;
      const w = await watch(kube);
      await eventually(() => api.openWatches === before + 1);
      w.stop();
      await eventually(() => api.openWatches === before, 2000, 'the watch closed on the server');
      await new Promise((r) => setTimeout(r, 50));
      expect(w.isDone()).toBe(false);
    } finally {
      kube.close();
    }
  });

  it('still does plain calls within the deadline', async () => {
    const kube = new ClientKube(kubeConfigFor(api), { timeoutMs: 5000 });
    try {
      const cm = await kube.create(RESOURCES.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'deadline', namespace: 'default' } });
      expect((await kube.get(RESOURCES.configMaps, 'deadline', 'default', { timeoutMs: 1000 }))?.metadata.uid).toBe(cm.metadata.uid);
      expect(await kube.delete(RESOURCES.configMaps, 'deadline', 'default')).toBe(true);
      expect(await kube.get(RESOURCES.configMaps, 'deadline', 'default')).toBeUndefined();
    } finally {
      kube.close();
    }
  });
});
