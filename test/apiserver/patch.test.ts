import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError, type PatchMeta } from './patch.js';

describe('JSON patch (RFC 6902)', () => {
  const doc = { metadata: { name: 'a', labels: { x: '1' } }, spec: { ports: [{ port: 80 }, { port: 443 }] } };

  it.each([
    ['add a member', [{ op: 'add', path: '/metadata/labels/y', value: '2' }], { ...doc, metadata: { name: 'a', labels: { x: '1', y: '2' } } }],
    ['add to the end of a list', [{ op: 'add', path: '/spec/ports/-', value: { port: 8080 } }], { ...doc, spec: { ports: [{ port: 80 }, { port: 443 }, { port: 8080 }] } }],
    ['insert into a list', [{ op: 'add', path: '/spec/ports/0', value: { port: 1 } }], { ...doc, spec: { ports: [{ port: 1 }, { port: 80 }, { port: 443 }] } }],
    ['remove a list item', [{ op: 'remove', path: '/spec/ports/0' }], { ...doc, spec: { ports: [{ port: 443 }] } }],
    ['replace a value', [{ op: 'replace', path: '/metadata/name', value: 'b' }], { ...doc, metadata: { ...doc.metadata, name: 'b' } }],
    [
      'escaped pointer tokens',
      [{ op: 'add', path: '/metadata/labels/metallb.io~1pool', value: 'p' }],
      { ...doc, metadata: { name: 'a', labels: { x: '1', 'metallb.io/pool': 'p' } } },
    ],
    ['move', [{ op: 'move', from: '/metadata/labels/x', path: '/metadata/labels/z' }], { ...doc, metadata: { name: 'a', labels: { z: '1' } } }],
    ['copy', [{ op: 'copy', from: '/metadata/name', path: '/metadata/labels/n' }], { ...doc, metadata: { name: 'a', labels: { x: '1', n: 'a' } } }],
    ['a passing test', [{ op: 'test', path: '/metadata/name', value: 'a' }], doc],
  ])('%s', (_name, patch, expected) => {
    expect(applyJsonPatch(doc, patch)).toEqual(expected);
  });

  it('does not modify its input', () => {
    const before = JSON.stringify(doc);
    applyJsonPatch(doc, [{ op: 'remove', path: '/metadata/labels' }]);
    expect(JSON.stringify(doc)).toBe(before);
  });

  it.each([
    ['a failing test', [{ op: 'test', path: '/metadata/name', value: 'b' }], 'apply'],
    ['removing a missing member', [{ op: 'remove', path: '/metadata/annotations' }], 'apply'],
    ['replacing a missing member', [{ op: 'replace', path: '/spec/x', value: 1 }], 'apply'],
    ['adding below a missing parent', [{ op: 'add', path: '/a/b/c', value: 1 }], 'apply'],
    ['an out-of-range index', [{ op: 'add', path: '/spec/ports/5', value: {} }], 'apply'],
    ['a patch that is not a list', { op: 'add' }, 'decode'],
  ])('fails on %s', (_name, patch, stage) => {
    try {
      applyJsonPatch(doc, patch);
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(PatchError);
      expect((e as PatchError).stage).toBe(stage);
    }
  });
});

describe('merge patch (RFC 7386)', () => {
  it.each([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('RFC 7386 example %#', (target, patch, expected) => {
    expect(applyMergePatch(target, patch)).toEqual(expected);
  });
});

describe('strategic merge patch', () => {
  const meta: PatchMeta = {
    'spec.ports': { mergeKey: 'port' },
    'metadata.finalizers': { merge: true },
    'spec.containers': { mergeKey: 'name' },
    'spec.containers.env': { mergeKey: 'name' },
  };
  const svc = {
    metadata: { name: 'web', finalizers: ['a'], labels: { app: 'web' } },
    spec: {
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 },
        { name: 'https', port: 443, protocol: 'TCP', nodePort: 30443 },
      ],
      externalIPs: ['192.0.2.1', '192.0.2.2'],
    },
  };

  it('merges list items by their merge key, keeping server-set fields', () => {
    const out = applyStrategicMergePatch(svc, { spec: { ports: [{ port: 80, targetPort: 8080 }] } }, meta) as typeof svc;
    expect(out.spec.ports).toEqual([
      { name: 'http', port: 80, protocol: 'TCP', nodePort: 30080, targetPort: 8080 },
      { name: 'https', port: 443, protocol: 'TCP', nodePort: 30443 },
    ]);
  });

  it('appends new keys and deletes with $patch: delete', () => {
    const out = applyStrategicMergePatch(
      svc,
      {
        spec: {
          ports: [
            { port: 443, $patch: 'delete' },
            { port: 8443, name: 'alt' },
          ],
        },
      },
      meta,
    ) as typeof svc;
    expect(out.spec.ports.map((p) => p.port)).toEqual([80, 8443]);
  });

  it('replaces a list with a $patch: replace element', () => {
    const out = applyStrategicMergePatch(svc, { spec: { ports: [{ $patch: 'replace' }, { port: 9 }] } }, meta) as typeof svc;
    expect(out.spec.ports).toEqual([{ port: 9 }]);
  });

  it('replaces lists without a strategy (atomic lists)', () => {
    const out = applyStrategicMergePatch(svc, { spec: { externalIPs: ['192.0.2.3'] } }, meta) as typeof svc;
    expect(out.spec.externalIPs).toEqual(['192.0.2.3']);
  });

  it('unions primitive lists with the merge strategy and honours $deleteFromPrimitiveList', () => {
    const out = applyStrategicMergePatch(svc, { metadata: { finalizers: ['b', 'a'], '$deleteFromPrimitiveList/finalizers': ['a'] } }, meta) as typeof svc;
    expect(out.metadata.finalizers).toEqual(['b']);
  });

  it('deletes fields set to null and replaces maps with $patch: replace', () => {
    const out = applyStrategicMergePatch(svc, { metadata: { labels: { $patch: 'replace', tier: 'x' } }, spec: { externalIPs: null } }, meta) as typeof svc;
    expect(out.metadata.labels).toEqual({ tier: 'x' });
    expect(out.spec).not.toHaveProperty('externalIPs');
  });

  it('orders items with $setElementOrder, as kubectl apply sends it', () => {
    const patch = {
      spec: {
        '$setElementOrder/ports': [{ port: 443 }, { port: 80 }, { port: 8080 }],
        ports: [{ port: 8080, name: 'alt' }],
      },
    };
    const out = applyStrategicMergePatch(svc, patch, meta) as typeof svc;
    expect(out.spec.ports.map((p) => p.port)).toEqual([443, 80, 8080]);
  });

  it('keeps $retainKeys-listed fields only', () => {
    const out = applyStrategicMergePatch(
      { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } },
      { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } },
      meta,
    );
    expect(out).toEqual({ spec: { strategy: { type: 'Recreate' } } });
  });

  it('merges nested keyed lists and strips directives from new values', () => {
    const pod = { spec: { containers: [{ name: 'a', image: 'x', env: [{ name: 'A', value: '1' }] }] } };
    const out = applyStrategicMergePatch(
      pod,
      {
        spec: {
          containers: [
            { name: 'a', env: [{ name: 'B', value: '2' }] },
            {
              name: 'b',
              image: 'y',
              env: [
                { name: 'C', $patch: 'delete' },
                { name: 'D', value: '4' },
              ],
            },
          ],
        },
      },
      meta,
    );
    expect(out).toEqual({
      spec: {
        containers: [
          {
            name: 'a',
            image: 'x',
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
          { name: 'b', image: 'y', env: [{ name: 'D', value: '4' }] },
        ],
      },
    });
  });

  it('fails on a list element without its merge key', () => {
    expect(() => applyStrategicMergePatch(svc, { spec: { ports: [{ name: 'x' }] } }, meta)).toThrow(PatchError);
  });
});
