/**
 * Faults on demand (`api.faults`), ending watches (`api.closeWatches`), compaction
 * (`api.expireResourceVersions`) and request counts (`api.requests`), seen from client-node, raw
 * HTTP and kubectl.
 */
import { createHook } from 'node:async_hooks';
import { CoordinationV1Api, CoreV1Api, Watch } from '@kubernetes/client-node';
import { startApiServer, type ApiServer, type KubeObject } from './index.js';
import { eventually, failure, kubeConfigFor, kubectl, rawRequest } from './testing.js';

let api: ApiServer;
let core: CoreV1Api;
let watch: Watch;

beforeAll(async () => {
  api = await startApiServer();
  const kc = kubeConfigFor(api);
  core = kc.makeApiClient(CoreV1Api);
  watch = new Watch(kc);
});

afterEach(() => {
  api.faults.clear();
});

afterAll(async () => {
  await api.stop();
});

let nsCounter = 0;
async function namespace(): Promise<string> {
  const name = `f${++nsCounter}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

const configMap = (name: string): { metadata: { name: string } } => ({ metadata: { name } });

interface Recorded {
  events: { type: string; object: KubeObject }[];
  /** Resolves with done's argument when the watch ends. */
  done: Promise<unknown>;
  abort: () => void;
}

async function record(path: string, params: Record<string, string | number | boolean | undefined> = {}): Promise<Recorded> {
  const events: Recorded['events'] = [];
  let finished: (err: unknown) => void = () => undefined;
  const done = new Promise((resolve) => (finished = resolve));
  const controller = await watch.watch(
    path,
    params,
    (type, object) => events.push({ type, object: object as KubeObject }),
    (err) => finished(err),
  );
  return { events, done, abort: () => controller.abort() };
}

describe('status faults', () => {
  it('fail the next `count` matching requests with a metav1 Status, then stop', async () => {
    const ns = await namespace();
    const fault = api.faults.inject({ verb: 'create', resource: 'configmaps', count: 2, fault: { status: 503 } });
    expect(fault.remaining).toBe(2);
    for (const name of ['a', 'b']) {
      expect(await failure(core.createNamespacedConfigMap({ namespace: ns, body: configMap(name) }))).toMatchObject({
        httpCode: 503,
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'ServiceUnavailable',
        code: 503,
        message: 'the server is currently unable to handle the request',
      });
    }
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('c') });
    expect([fault.hits, fault.remaining]).toEqual([2, 0]);
    expect(api.faults.active).toEqual([]);
    // Nothing was written by the failed requests.
    expect((await core.listNamespacedConfigMap({ namespace: ns })).items.map((c) => c.metadata?.name)).toEqual(['c']);
  });

  it('take the reason and message given, and answer raw HTTP like kube-apiserver', async () => {
    const ns = await namespace();
    api.faults.inject({ verb: 'get', resource: 'configmaps', name: 'x', fault: { status: 500, reason: 'InternalError', message: 'etcdserver: request timed out' } });
    const r = await rawRequest(api, 'GET', `/api/v1/namespaces/${ns}/configmaps/x`);
    expect(r.status).toBe(500);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'etcdserver: request timed out',
      reason: 'InternalError',
      details: { name: 'x', kind: 'configmaps' },
      code: 500,
    });
  });

  it('name the object in default messages, and send Retry-After with 429', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('cm') });
    api.faults.inject({ verb: 'update', resource: 'configmaps', fault: { status: 409 } });
    expect(await failure(core.replaceNamespacedConfigMap({ name: 'cm', namespace: ns, body: configMap('cm') }))).toMatchObject({
      httpCode: 409,
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on configmaps "cm": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'cm', kind: 'configmaps' },
    });
    api.faults.inject({ verb: 'list', resource: 'leases', group: 'coordination.k8s.io', fault: { status: 429 } });
    const r = await rawRequest(api, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`);
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json).toMatchObject({ reason: 'TooManyRequests', code: 429, details: { group: 'coordination.k8s.io', kind: 'leases', retryAfterSeconds: 1 } });
  });

  it('keep catching with count Infinity until removed; hit(n) waits for the nth', async () => {
    const ns = await namespace();
    const fault = api.faults.inject({ verb: 'get', resource: 'configmaps', count: Infinity, fault: { status: 500 } });
    const third = fault.hit(3);
    for (let i = 0; i < 3; i++) await failure(core.readNamespacedConfigMap({ name: 'any', namespace: ns }));
    await third;
    await expect(fault.hit(2)).resolves.toBeUndefined();
    expect([fault.hits, fault.remaining]).toEqual([3, Infinity]);
    fault.remove();
    expect((await failure(core.readNamespacedConfigMap({ name: 'any', namespace: ns }))).httpCode).toBe(404);
    expect(fault.hits).toBe(3);
  });

  it('reject hit(n) that can never come, and rules that make no sense', async () => {
    const once = api.faults.inject({ verb: 'get', resource: 'pods', fault: { status: 500 } });
    await expect(once.hit(2)).rejects.toThrow(/will catch no more/);
    const pending = once.hit(1);
    api.faults.clear();
    await expect(pending).rejects.toThrow(/caught 0 request/);
    expect(() => api.faults.inject({ verb: 'read' as 'get', fault: { status: 500 } })).toThrow(TypeError);
    expect(() => api.faults.inject({ verb: 'get', count: 0, fault: { status: 500 } })).toThrow(TypeError);
    expect(() => api.faults.inject({ verb: 'get', fault: { status: 200 } })).toThrow(TypeError);
    expect(() => api.faults.inject({ verb: 'get', fault: { status: 500, delayMs: 5 } as never })).toThrow(TypeError);
  });
});

describe('matching', () => {
  it('tells get, list and watch apart as Kubernetes verbs', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('cm') });
    const list = api.faults.inject({ verb: 'list', resource: 'configmaps', count: Infinity, fault: { status: 503 } });
    await core.readNamespacedConfigMap({ name: 'cm', namespace: ns });
    expect((await failure(core.listNamespacedConfigMap({ namespace: ns }))).httpCode).toBe(503);
    // A GET with ?watch=true is a watch, not a list.
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`);
    await eventually(() => w.events.length > 0);
    w.abort();
    expect(list.hits).toBe(1);
    list.remove();
    const watchFault = api.faults.inject({ verb: 'watch', resource: 'configmaps', fault: { status: 500 } });
    const failed = await record(`/api/v1/namespaces/${ns}/configmaps`);
    expect(await failed.done).toMatchObject({ statusCode: 500 });
    expect(watchFault.hits).toBe(1);
    await core.listNamespacedConfigMap({ namespace: ns });
  });

  it('filters by name (a metadata.name field selector names a list or watch too), namespace and subresource', async () => {
    const [ns1, ns2] = [await namespace(), await namespace()];
    for (const ns of [ns1, ns2]) for (const n of ['a', 'b']) await core.createNamespacedConfigMap({ namespace: ns, body: configMap(n) });
    const byName = api.faults.inject({ verb: '*', resource: 'configmaps', name: 'a', namespace: ns1, count: Infinity, fault: { status: 500 } });
    expect((await failure(core.readNamespacedConfigMap({ name: 'a', namespace: ns1 }))).httpCode).toBe(500);
    await core.readNamespacedConfigMap({ name: 'b', namespace: ns1 });
    await core.readNamespacedConfigMap({ name: 'a', namespace: ns2 });
    expect((await failure(core.listNamespacedConfigMap({ namespace: ns1, fieldSelector: 'metadata.name=a' }))).httpCode).toBe(500);
    await core.listNamespacedConfigMap({ namespace: ns1, fieldSelector: 'metadata.name=b' });
    await core.listNamespacedConfigMap({ namespace: ns1 });
    expect(byName.hits).toBe(2);
    byName.remove();

    await core.createNamespacedService({ namespace: ns1, body: { metadata: { name: 'svc' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } } });
    const status = api.faults.inject({ verb: 'patch', resource: 'services', subresource: 'status', count: Infinity, fault: { status: 500 } });
    const patch = [{ op: 'add', path: '/metadata/labels', value: { x: 'y' } }];
    const statusPatch = [{ op: 'add', path: '/status/loadBalancer/ingress', value: [{ ip: '192.0.2.1' }] }];
    await core.patchNamespacedService({ name: 'svc', namespace: ns1, body: patch });
    expect((await failure(core.patchNamespacedServiceStatus({ name: 'svc', namespace: ns1, body: statusPatch }))).httpCode).toBe(500);
    status.remove();
    const main = api.faults.inject({ verb: 'patch', resource: 'services', subresource: '', count: Infinity, fault: { status: 500 } });
    await core.patchNamespacedServiceStatus({ name: 'svc', namespace: ns1, body: statusPatch });
    expect((await failure(core.patchNamespacedService({ name: 'svc', namespace: ns1, body: patch }))).httpCode).toBe(500);
    expect(main.hits).toBe(1);
  });

  it('leaves other resources and groups alone', async () => {
    const ns = await namespace();
    const kc = kubeConfigFor(api);
    const coordination = kc.makeApiClient(CoordinationV1Api);
    const services = api.faults.inject({ verb: '*', resource: 'services', count: Infinity, fault: { status: 503 } });
    const coreLeases = api.faults.inject({ verb: '*', resource: 'leases', group: '', count: Infinity, fault: { status: 503 } });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('cm') });
    await core.listNamespacedConfigMap({ namespace: ns });
    await coordination.createNamespacedLease({ namespace: ns, body: { metadata: { name: 'l' }, spec: {} } });
    expect((await failure(core.listNamespacedService({ namespace: ns }))).httpCode).toBe(503);
    expect([services.hits, coreLeases.hits]).toEqual([1, 0]);
    // Discovery and /version are not resource requests: never faulted.
    const catchAll = api.faults.inject({ verb: '*', count: Infinity, fault: { status: 500 } });
    expect((await rawRequest(api, 'GET', '/api/v1')).status).toBe(200);
    expect((await rawRequest(api, 'GET', '/version')).status).toBe(200);
    expect(catchAll.hits).toBe(0);
  });
});

describe('delays and hangs', () => {
  it('delays a request, then serves it', async () => {
    const ns = await namespace();
    const fault = api.faults.inject({ verb: 'create', resource: 'configmaps', fault: { delayMs: 300 } });
    const started = Date.now();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('slow') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(fault.hits).toBe(1);
    await core.readNamespacedConfigMap({ name: 'slow', namespace: ns });
  });

  it('hangs a request until the client gives up, or until the fault is removed (then serves it)', async () => {
    const ns = await namespace();
    const fault = api.faults.inject({ verb: 'create', resource: 'configmaps', count: 2, fault: { hang: true } });
    const abort = new AbortController();
    const givenUp = rawRequest(api, 'POST', `/api/v1/namespaces/${ns}/configmaps`, { body: configMap('gave-up'), signal: abort.signal });
    await fault.hit(1);
    await new Promise((r) => setTimeout(r, 200));
    abort.abort();
    await expect(givenUp).rejects.toThrow();

    let answered = false;
    const held = rawRequest(api, 'POST', `/api/v1/namespaces/${ns}/configmaps`, { body: configMap('held') }).finally(() => (answered = true));
    await fault.hit(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(false);
    // The rule is spent but still holds its request; other requests go through meanwhile.
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('meanwhile') });
    fault.remove();
    expect((await held).status).toBe(201);
    const names = (await core.listNamespacedConfigMap({ namespace: ns })).items.map((c) => c.metadata?.name);
    expect(names.sort()).toEqual(['held', 'meanwhile']);
  });

  it('hangs watches too; stop() drops hung requests and leaves nothing running', async () => {
    const resources = trackResources();
    try {
      const own = await startApiServer();
      const kc = kubeConfigFor(own);
      const ownCore = kc.makeApiClient(CoreV1Api);
      const hang = own.faults.inject({ verb: '*', resource: 'configmaps', count: Infinity, fault: { hang: true } });
      const delay = own.faults.inject({ verb: '*', resource: 'secrets', fault: { delayMs: 60_000 } });
      const get = ownCore.readNamespacedConfigMap({ name: 'x', namespace: 'default' }).then(
        () => 'answered',
        () => 'failed',
      );
      const ended = new Promise<unknown>((resolve) => void new Watch(kc).watch('/api/v1/namespaces/default/configmaps', {}, () => undefined, resolve));
      const slow = ownCore.readNamespacedSecret({ name: 'x', namespace: 'default' }).then(
        () => 'answered',
        () => 'failed',
      );
      await hang.hit(2);
      await delay.hit(1);
      expect(own.openWatches).toBe(0);
      const started = Date.now();
      await own.stop();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(await get).toBe('failed');
      expect(await slow).toBe('failed');
      expect(await ended).toBeTruthy();
      // Nothing this test started keeps the process alive: no timer (the delay's), no socket.
      await eventually(() => resources.alive().length === 0 || undefined, 5000, `nothing left: ${resources.alive().join(', ')}`);
    } finally {
      resources.disable();
    }
  });
});

/**
 * Tracks the timers, sockets and servers created from now on, to tell which would keep the
 * process alive (pending or open, and referenced).
 */
function trackResources(): { alive(): string[]; disable(): void } {
  type Resource = { hasRef?: () => boolean; _destroyed?: boolean };
  const live = new Map<number, { type: string; resource: Resource }>();
  const hook = createHook({
    init(id, type, _trigger, resource: Resource) {
      if (['Timeout', 'TCPWRAP', 'TCPSERVERWRAP'].includes(type)) live.set(id, { type, resource });
    },
    destroy(id) {
      live.delete(id);
    },
  });
  hook.enable();
  // A timer that fired or was cleared is _destroyed (its destroy hook may come later); a closed
  // handle has no ref.
  const pending = (r: Resource): boolean => r._destroyed !== true && r.hasRef?.() !== false;
  return {
    alive: () => [...live.values()].filter((r) => pending(r.resource)).map((r) => r.type),
    disable: () => hook.disable(),
  };
}

describe('closeWatches', () => {
  it('ends the selected open watches cleanly and says how many', async () => {
    const ns = await namespace();
    const cms = await record(`/api/v1/namespaces/${ns}/configmaps`);
    const svcs = await record(`/api/v1/namespaces/${ns}/services`);
    await eventually(() => api.openWatches >= 2);
    const open = api.openWatches;
    expect(api.closeWatches({ resource: 'configmaps' })).toBe(1);
    expect(await cms.done).toBeNull();
    expect(cms.events.filter((e) => e.type === 'ERROR')).toEqual([]);
    expect(api.openWatches).toBe(open - 1);
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'still' }, spec: { ports: [{ port: 80 }] } } });
    await eventually(() => svcs.events.some((e) => e.object.metadata.name === 'still'));
    expect(api.closeWatches({ resource: 'configmaps' })).toBe(0);
    expect(api.closeWatches()).toBe(open - 1);
    expect(await svcs.done).toBeNull();
    expect(api.openWatches).toBe(0);
  });
});

describe('expireResourceVersions', () => {
  it('answers a watch or list from an older resourceVersion with 410 Expired, and keeps open watches', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('one') });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('two') });
    const first = await core.listNamespacedConfigMap({ namespace: ns, limit: 1 });
    const old = first.metadata?.resourceVersion as string;
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('three') });
    const open = await record(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: old });
    await eventually(() => open.events.length === 1);

    api.expireResourceVersions();

    const gone = await record(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: old });
    await gone.done;
    expect(gone.events).toEqual([
      { type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired', message: expect.stringContaining('too old resource version') }) },
    ]);
    const base = `/api/v1/namespaces/${ns}/configmaps`;
    for (const query of [`resourceVersion=${old}&resourceVersionMatch=Exact`, `resourceVersion=${old}&limit=10`]) {
      const r = await rawRequest(api, 'GET', `${base}?${query}`);
      expect([query, r.status, r.json]).toEqual([
        query,
        410,
        expect.objectContaining({ kind: 'Status', reason: 'Expired', code: 410, message: expect.stringContaining('too old resource version') }),
      ]);
    }
    expect((await failure(core.listNamespacedConfigMap({ namespace: ns, limit: 1, _continue: first.metadata?._continue as string }))).httpCode).toBe(410);
    // Served from the watch cache: a list not older than the version is the current state.
    const current = await rawRequest(api, 'GET', `${base}?resourceVersion=${old}`);
    expect([current.status, (current.json as { items: KubeObject[] }).items.length]).toEqual([200, 3]);
    // The current resourceVersion is not too old.
    const now = (await core.listNamespacedConfigMap({ namespace: ns })).metadata?.resourceVersion as string;
    const fresh = await record(base, { resourceVersion: now });
    await core.createNamespacedConfigMap({ namespace: ns, body: configMap('four') });
    await eventually(() => fresh.events.some((e) => e.object.metadata.name === 'four'));
    // The watch opened before the compaction goes on.
    await eventually(() => open.events.some((e) => e.object.metadata.name === 'four'));
    expect(open.events.map((e) => e.type)).not.toContain('ERROR');
    open.abort();
    fresh.abort();
  });
});

describe('request counts', () => {
  it('counts by verb, resource and User-Agent, faulted requests included, until reset', async () => {
    const ns = await namespace();
    api.resetRequestCounts();
    expect(api.requests.total).toBe(0);
    for (let i = 0; i < 3; i++) await core.createNamespacedConfigMap({ namespace: ns, body: configMap(`c${i}`) });
    api.faults.inject({ verb: 'create', resource: 'configmaps', fault: { status: 500 } });
    await failure(core.createNamespacedConfigMap({ namespace: ns, body: configMap('failed') }));
    await core.patchNamespacedConfigMap({ name: 'c0', namespace: ns, body: [{ op: 'add', path: '/data', value: { a: 'b' } }] });
    await rawRequest(api, 'PUT', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/l`, {
      body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l' }, spec: {} },
      headers: { 'User-Agent': 'bench/1.0' },
    });
    await rawRequest(api, 'GET', `/api/v1/namespaces/${ns}/services/x/status`, { headers: { 'User-Agent': 'bench/1.0' } });
    const out = await kubectl(api, ['get', 'configmaps', '-n', ns]);
    expect(out.code).toBe(0);

    expect(api.requests.count({ verb: 'create', resource: 'configmaps' })).toBe(4);
    expect(api.requests.byVerbAndResource({ userAgent: 'bench/' })).toEqual({ 'update leases.coordination.k8s.io': 1, 'get services/status': 1 });
    expect(api.requests.byUserAgent()['bench/1.0']).toBe(2);
    expect(api.requests.count({ verb: 'list', resource: 'configmaps', userAgent: 'kubectl/' })).toBe(1);
    expect(api.requests.count({ userAgent: /^kubectl\// })).toBeGreaterThanOrEqual(1);
    expect(api.requests.rows({ verb: 'patch' })).toEqual([expect.objectContaining({ verb: 'patch', group: '', resource: 'configmaps', subresource: '', count: 1 })]);
    const sum = api.requests.rows().reduce((n, r) => n + r.count, 0);
    expect(api.requests.total).toBe(sum);
    expect(api.requests.count()).toBe(sum);
    api.resetRequestCounts();
    expect([api.requests.total, api.requests.rows()]).toEqual([0, []]);
  });
});
