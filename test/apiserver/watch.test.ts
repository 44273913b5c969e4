/**
 * Watch semantics over HTTPS with client-node's Watch: replay from a resourceVersion, initial
 * state, selector transitions, bookmarks, 410 Gone, timeouts, Table events.
 */
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import { startApiServer, type ApiServer, type KubeObject } from './index.js';
import { eventually, kubeConfigFor, rawRequest } from './testing.js';

let api: ApiServer;
let core: CoreV1Api;
let watch: Watch;

beforeAll(async () => {
  api = await startApiServer({ bookmarkIntervalMs: 100 });
  const kc = kubeConfigFor(api);
  core = kc.makeApiClient(CoreV1Api);
  watch = new Watch(kc);
});

afterAll(async () => {
  await api.stop();
});

interface Recorded {
  events: { type: string; object: KubeObject }[];
  done: Promise<unknown>;
  abort: () => void;
}

/** Starts a watch and records its events until it ends. */
async function record(path: string, params: Record<string, string | number | boolean | undefined>): Promise<Recorded> {
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

let nsCounter = 0;
async function namespace(): Promise<string> {
  const name = `w${++nsCounter}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

const names = (r: Recorded): string[] => r.events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata.name ?? ''}`);

describe('watch', () => {
  it('replays changes after a resourceVersion, then streams new ones', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'before' } } });
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a' } } });
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: list.metadata?.resourceVersion });
    await core.patchNamespacedConfigMap({ name: 'a', namespace: ns, body: [{ op: 'add', path: '/data', value: { k: 'v' } }] });
    await core.deleteNamespacedConfigMap({ name: 'a', namespace: ns });
    await eventually(() => w.events.length >= 3);
    w.abort();
    expect(names(w)).toEqual(['ADDED a', 'MODIFIED a', 'DELETED a']);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    expect(w.events[0]?.object).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1' });
  });

  it('starts with the current state when no resourceVersion is given', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'x' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'y' } } });
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, {});
    await eventually(() => w.events.length >= 2);
    w.abort();
    expect(names(w)).toEqual(['ADDED x', 'ADDED y']);
  });

  it('turns objects entering and leaving a label selection into ADDED and DELETED', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'c', labels: { pick: 'no' } } } });
    const rv = (await core.listNamespacedConfigMap({ namespace: ns })).metadata?.resourceVersion;
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: rv, labelSelector: 'pick=yes' });
    const relabel = (value: string): Promise<unknown> =>
      core.patchNamespacedConfigMap({ name: 'c', namespace: ns, body: [{ op: 'replace', path: '/metadata/labels/pick', value }] });
    await relabel('yes');
    await relabel('yes-still'.slice(0, 3));
    await core.patchNamespacedConfigMap({ name: 'c', namespace: ns, body: [{ op: 'add', path: '/data', value: { a: 'b' } }] });
    await relabel('no');
    await eventually(() => w.events.length >= 3);
    w.abort();
    expect(names(w)).toEqual(['ADDED c', 'MODIFIED c', 'DELETED c']);
  });

  it('watches one object by name', async () => {
    const ns = await namespace();
    const rv = (await core.listNamespacedConfigMap({ namespace: ns })).metadata?.resourceVersion;
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: rv, fieldSelector: 'metadata.name=mine' });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'other' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'mine' } } });
    await eventually(() => w.events.length >= 1);
    w.abort();
    expect(names(w)).toEqual(['ADDED mine']);
  });

  it('sends bookmarks when allowed, and the initial-events-end bookmark', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'x' } } });
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, { allowWatchBookmarks: true, sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan' });
    await eventually(() => w.events.filter((e) => e.type === 'BOOKMARK').length >= 2);
    w.abort();
    expect(w.events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'x' } } });
    expect(w.events[1]).toMatchObject({ type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { annotations: { 'k8s.io/initial-events-end': 'true' } } } });
    expect(Number(w.events[2]?.object.metadata.resourceVersion)).toBeGreaterThan(0);
  });

  it('answers a too-old resourceVersion with a 410 ERROR event and ends the stream', async () => {
    const ns = await namespace();
    const rv = (await core.listNamespacedConfigMap({ namespace: ns })).metadata?.resourceVersion;
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'late' } } });
    api.forceWatchExpiry();
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: rv });
    await w.done;
    expect(w.events).toEqual([
      { type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired', message: expect.stringContaining('too old resource version') }) },
    ]);
  });

  it('answers a resourceVersion from the future (an earlier server) with 410 too', async () => {
    const ns = await namespace();
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: '99999999' });
    await w.done;
    expect(w.events).toEqual([{ type: 'ERROR', object: expect.objectContaining({ code: 410 }) }]);
  });

  it('ends open watches with 410 Gone when forced', async () => {
    const ns = await namespace();
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, {});
    await eventually(() => api.openWatches > 0);
    api.forceWatchExpiry();
    await w.done;
    expect(w.events.at(-1)).toMatchObject({ type: 'ERROR', object: { code: 410 } });
  });

  it('honours timeoutSeconds', async () => {
    const ns = await namespace();
    const started = Date.now();
    const w = await record(`/api/v1/namespaces/${ns}/configmaps`, { timeoutSeconds: 1 });
    await w.done;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('streams Tables for kubectl get -w, with column definitions once', async () => {
    const ns = await namespace();
    const rv = (await core.listNamespacedConfigMap({ namespace: ns })).metadata?.resourceVersion ?? '';
    const streamed = rawRequest(api, 'GET', `/api/v1/namespaces/${ns}/configmaps?watch=1&timeoutSeconds=1&resourceVersion=${rv}`, {
      headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
    });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'a' }, data: { k: 'v' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'b' } } });
    const lines = (await streamed).text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; object: { kind: string; columnDefinitions: unknown[]; rows: { cells: unknown[] }[] } });
    expect(lines.map((l) => l.type)).toEqual(['ADDED', 'ADDED']);
    expect(lines[0]?.object.kind).toBe('Table');
    expect(lines[0]?.object.columnDefinitions).toHaveLength(3);
    expect(lines[1]?.object.columnDefinitions).toEqual([]);
    expect(lines.map((l) => l.object.rows[0]?.cells.slice(0, 2))).toEqual([
      ['a', 1],
      ['b', 0],
    ]);
  });
});
