/**
 * NamespaceLabels: labels from the namespace watch, one GET for a namespace the watch has not
 * delivered yet, against the API server double.
 */
import type { KubeApi } from '../../kube/client.js';
import { NamespaceLabels } from '../../webhook/namespaces.js';
import { startCluster, type Cluster } from './support.js';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster.stop();
});

/** The cluster's client, counting namespace GETs; with `silent`, watches deliver nothing. */
function wrapped(silent: boolean): { kube: KubeApi; gets: string[] } {
  const gets: string[] = [];
  const kube = new Proxy(cluster.kube as KubeApi, {
    get(target, prop) {
      if (prop === 'get') {
        return (r: Parameters<KubeApi['get']>[0], name: string, namespace?: string) => {
          if (r.plural === 'namespaces') gets.push(name);
          return target.get(r, name, namespace);
        };
      }
      if (prop === 'watch' && silent) return () => Promise.resolve(() => {});
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { kube, gets };
}

/** `p`, or a failure naming `what` after `ms` (instead of hanging until jest's timeout). */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const namespace = (name: string, labels: Record<string, string>) => cluster.api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } } as never);

describe('NamespaceLabels', () => {
  it('answers from the list and the watch, with no GET', async () => {
    await namespace('listed', { team: 'a' });
    const { kube, gets } = wrapped(false);
    const cache = new NamespaceLabels(kube);
    await cache.start();
    try {
      expect(await cache.labels('listed')).toMatchObject({ team: 'a' });
      const changed = new Promise<void>((resolve) => cache.onChange((ns) => ns === 'watched' && resolve()));
      await namespace('watched', { team: 'b' });
      await within(5000, 'the watch to deliver namespace "watched"', changed);
      expect(await cache.labels('watched')).toMatchObject({ team: 'b' });
      expect(gets).toEqual([]);
    } finally {
      cache.stop();
    }
  });

  it('reads a namespace the watch has not delivered once (concurrent reads share the GET), then keeps it', async () => {
    const { kube, gets } = wrapped(true);
    const cache = new NamespaceLabels(kube);
    await cache.start();
    try {
      await namespace('fresh', { team: 'c' });
      const answers = await Promise.all(Array.from({ length: 10 }, () => cache.labels('fresh')));
      expect(answers.map((l) => l.team)).toEqual(Array.from({ length: 10 }, () => 'c'));
      expect(await cache.labels('fresh')).toMatchObject({ team: 'c' });
      expect(gets).toEqual(['fresh']);
      // A namespace that does not exist: no labels, and nothing kept.
      expect(await cache.labels('missing')).toEqual({});
      expect(await cache.labels('missing')).toEqual({});
      expect(gets).toEqual(['fresh', 'missing', 'missing']);
    } finally {
      cache.stop();
    }
  });

  it('keeps nothing read by GET before its first list has landed', async () => {
    await namespace('unsynced', { team: 'd' });
    const { kube, gets } = wrapped(true);
    const cache = new NamespaceLabels(kube); // never started: nothing keeps a kept answer current
    expect(await cache.labels('unsynced')).toMatchObject({ team: 'd' });
    expect(await cache.labels('unsynced')).toMatchObject({ team: 'd' });
    expect(gets).toEqual(['unsynced', 'unsynced']);
  });
});
