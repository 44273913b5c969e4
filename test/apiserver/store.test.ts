import { ApiError } from './errors.js';
import type { KubeObject } from './object.js';
import { ObjectStore, type Change } from './store.js';

const cm = (name: string, data: Record<string, string> = {}, namespace = 'default'): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });

describe('ObjectStore', () => {
  it('stamps every write with the next global revision', () => {
    const s = new ObjectStore();
    const a = s.create('configmaps', cm('a'));
    const b = s.create('secrets', cm('b'));
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(Number(b.object.metadata.resourceVersion)).toBe(Number(a.object.metadata.resourceVersion) + 1);
    expect(s.resourceVersion).toBe(Number(b.object.metadata.resourceVersion));
  });

  it('refuses duplicates and stale compare-and-swap updates', () => {
    const s = new ObjectStore();
    const a = s.create('configmaps', cm('a'));
    if (!a.ok) throw new Error('create failed');
    expect(s.create('configmaps', cm('a'))).toEqual({ ok: false, why: 'exists' });
    const rv = a.object.metadata.resourceVersion as string;
    expect(s.update('configmaps', cm('a', { k: '1' }), rv).ok).toBe(true);
    expect(s.update('configmaps', cm('a', { k: '2' }), rv)).toEqual({ ok: false, why: 'conflict' });
    expect(s.update('configmaps', cm('zzz'), rv)).toEqual({ ok: false, why: 'missing' });
  });

  it('hands out copies, never its own objects', () => {
    const s = new ObjectStore();
    s.create('configmaps', cm('a', { k: 'v' }));
    const got = s.get('configmaps', 'default', 'a') as KubeObject;
    (got.data as Record<string, string>).k = 'changed';
    expect(s.get('configmaps', 'default', 'a')?.data).toEqual({ k: 'v' });
  });

  it('shares its objects with a list that is only serialized: a later write replaces them, never changes them', () => {
    const s = new ObjectStore();
    const a = s.create('configmaps', cm('a', { k: 'v' }));
    if (!a.ok) throw new Error('create failed');
    const [before] = s.listShared('configmaps');
    s.update('configmaps', cm('a', { k: 'w' }), a.object.metadata.resourceVersion as string);
    expect(before?.data).toEqual({ k: 'v' });
    expect(s.listShared('configmaps')[0]?.data).toEqual({ k: 'w' });
    expect(s.listShared('configmaps')[0]).not.toBe(before);
  });

  it('lists in key order, per namespace or all', () => {
    const s = new ObjectStore();
    s.create('configmaps', cm('b', {}, 'ns2'));
    s.create('configmaps', cm('a', {}, 'ns2'));
    s.create('configmaps', cm('z', {}, 'ns1'));
    expect(s.list('configmaps').map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['ns1/z', 'ns2/a', 'ns2/b']);
    expect(s.list('configmaps', 'ns2').map((o) => o.metadata.name)).toEqual(['a', 'b']);
  });

  it('tells subscribers about every change, DELETED carrying the deletion revision', () => {
    const s = new ObjectStore();
    const seen: Change[] = [];
    s.subscribe((c) => seen.push(c));
    const a = s.create('configmaps', cm('a'));
    if (!a.ok) throw new Error('create failed');
    s.update('configmaps', cm('a', { x: 'y' }), a.object.metadata.resourceVersion as string);
    const d = s.remove('configmaps', 'default', 'a');
    expect(seen.map((c) => c.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(d.ok && d.object.metadata.resourceVersion).toBe(String(s.resourceVersion));
    expect(seen[2]?.oldObject?.data).toEqual({ x: 'y' });
  });

  it('rebuilds a past state from history, and reports 410 beyond it', () => {
    const s = new ObjectStore({ historyLimit: 3 });
    s.create('configmaps', cm('a', { v: '1' }));
    const rv1 = s.resourceVersion;
    const b = s.create('configmaps', cm('b'));
    if (!b.ok) throw new Error('create failed');
    s.update('configmaps', cm('b', { v: '2' }), b.object.metadata.resourceVersion as string);
    s.remove('configmaps', 'default', 'a');
    expect(s.listAt('configmaps', undefined, rv1).map((o) => [o.metadata.name, o.data])).toEqual([['a', { v: '1' }]]);
    expect(() => s.listAt('configmaps', undefined, rv1 - 1)).toThrow(ApiError);
    expect(s.changesSince(rv1 - 1)).toBe('gone');
    expect((s.changesSince(rv1) as Change[]).map((c) => c.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('forgets history on compaction and tells listeners', () => {
    const s = new ObjectStore();
    s.create('configmaps', cm('a'));
    const before = s.resourceVersion;
    let told = 0;
    s.onCompaction(() => told++);
    s.create('configmaps', cm('b'));
    s.compact();
    expect(told).toBe(1);
    expect(s.changesSince(before)).toBe('gone');
    expect(s.changesSince(s.resourceVersion)).toEqual([]);
  });
});
