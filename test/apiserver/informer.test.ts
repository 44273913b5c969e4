/**
 * client-node informers (list + watch) against the double: they must stay in sync through a
 * burst of changes and recover (relist) after the double forces 410 Gone.
 */
import { CoreV1Api, makeInformer, type Informer, type KubernetesObject, type ObjectCache, type V1ConfigMap } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from './index.js';
import { eventually, kubeConfigFor } from './testing.js';

let api: ApiServer;
let core: CoreV1Api;
const NS = 'informed';

beforeAll(async () => {
  api = await startApiServer();
  core = kubeConfigFor(api).makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
});

afterAll(async () => {
  await api.stop();
});

/** name -> resourceVersion, as the informer's cache sees it and as the server has it. */
function cacheState(informer: Informer<V1ConfigMap> & ObjectCache<V1ConfigMap>): Map<string, string> {
  return new Map(informer.list(NS).map((o: KubernetesObject) => [o.metadata?.name ?? '', o.metadata?.resourceVersion ?? '']));
}
function serverState(): Map<string, string> {
  return new Map(api.store.list('v1', 'ConfigMap', { namespace: NS }).map((o) => [o.metadata.name ?? '', o.metadata.resourceVersion ?? '']));
}
function inSync(informer: Informer<V1ConfigMap> & ObjectCache<V1ConfigMap>): boolean {
  const a = cacheState(informer);
  const b = serverState();
  return a.size === b.size && [...b].every(([k, v]) => a.get(k) === v);
}

it('stays in sync through 1,000 rapid changes and recovers after a forced 410 Gone', async () => {
  let lists = 0;
  const errors: unknown[] = [];
  const informer = makeInformer(kubeConfigFor(api), `/api/v1/namespaces/${NS}/configmaps`, () => {
    lists++;
    return core.listNamespacedConfigMap({ namespace: NS });
  });
  informer.on('error', (e) => errors.push(e));
  let deletes = 0;
  informer.on('delete', () => deletes++);
  await informer.start();
  expect(lists).toBe(1);

  // 1,000 changes, written straight into the store in bursts: 300 creates, 500 updates, 200 deletes.
  let changes = 0;
  const cm = (i: number, v: number): { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> } => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `cm-${i}`, namespace: NS },
    data: { v: String(v) },
  });
  for (let i = 0; i < 300; i++, changes++) await api.store.create(cm(i, 0));
  for (let round = 1; round <= 5; round++) {
    for (let i = 0; i < 100; i++, changes++) await api.store.update(cm((i * 7 + round) % 300, round));
  }
  for (let i = 0; i < 200; i++, changes++) await api.store.delete('v1', 'ConfigMap', `cm-${i}`, NS);
  expect(changes).toBe(1000);
  await eventually(() => inSync(informer), 20_000, 'the informer to catch up');
  expect(informer.list(NS)).toHaveLength(100);
  expect(deletes).toBe(200);
  expect(lists).toBe(1);

  // Force 410: the open watch ends with an ERROR 410 event; the informer must relist and resync,
  // including what changed while it was not watching.
  api.forceWatchExpiry();
  for (let i = 200; i < 250; i++) await api.store.delete('v1', 'ConfigMap', `cm-${i}`, NS);
  for (let i = 300; i < 320; i++) await api.store.create(cm(i, 9));
  await eventually(() => lists >= 2 && inSync(informer), 20_000, 'the informer to relist');
  expect(informer.list(NS)).toHaveLength(70);

  // And it keeps watching after the relist.
  await api.store.create(cm(999, 1));
  await eventually(() => inSync(informer) && informer.get('cm-999', NS) !== undefined, 10_000, 'the informer to see a change after relisting');
  expect(errors).toEqual([]);
  await informer.stop();
});
