/**
 * Reading Services, EndpointSlices and Nodes as the API server sends them (JSON).
 */
import { endpointsFromSlices, nodeFromKube, serviceFromKube, sliceServiceKey, type AnnounceEndpoint } from './index.js';

const slice = (service: string, endpoints: unknown[], namespace = 'default'): unknown => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${service}-abcde`, namespace, labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  endpoints,
});

const service = (fields: { type?: string; policy?: string; ingress?: unknown[] } = {}): unknown => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { type: fields.type ?? 'LoadBalancer', ...(fields.policy ? { externalTrafficPolicy: fields.policy } : {}) },
  status: { loadBalancer: { ingress: fields.ingress ?? [{ ip: '192.0.2.10' }] } },
});

describe('endpoint conditions', () => {
  const rows: [string, unknown, AnnounceEndpoint][] = [
    ['no conditions: ready (nil ready means ready)', { addresses: ['10.1.0.1'], nodeName: 'n1' }, { nodeName: 'n1', ready: true, serving: true, terminating: false }],
    ['empty conditions: ready', { addresses: ['10.1.0.1'], nodeName: 'n1', conditions: {} }, { nodeName: 'n1', ready: true, serving: true, terminating: false }],
    ['ready false, serving nil: serving defers to ready', { nodeName: 'n1', conditions: { ready: false } }, { nodeName: 'n1', ready: false, serving: false, terminating: false }],
    [
      'terminating, still serving',
      { nodeName: 'n1', conditions: { ready: false, serving: true, terminating: true } },
      { nodeName: 'n1', ready: false, serving: true, terminating: true },
    ],
    ['no nodeName', { addresses: ['10.1.0.1'], conditions: { ready: true } }, { ready: true, serving: true, terminating: false }],
    ['empty nodeName', { nodeName: '', conditions: { ready: true } }, { ready: true, serving: true, terminating: false }],
    [
      'conditions of the wrong type read as absent',
      { nodeName: 7, conditions: { ready: 'yes', serving: null, terminating: 1 } },
      { ready: true, serving: true, terminating: false },
    ],
  ];
  it.each(rows)('%s', (_name, endpoint, expected) => {
    expect(endpointsFromSlices([slice('web', [endpoint])])).toEqual([expected]);
  });

  it('every slice contributes; malformed slices and endpoints are skipped', () => {
    const slices = [slice('web', [{ nodeName: 'n1' }, 'junk', null]), slice('web', [{ nodeName: 'n2' }]), { endpoints: 'none' }, null, 42];
    expect(endpointsFromSlices(slices).map((e) => e.nodeName)).toEqual(['n1', 'n2']);
  });
});

describe('serviceFromKube', () => {
  const slices = [
    slice('web', [{ nodeName: 'n1', conditions: { ready: true } }], 'shop'),
    slice('web', [{ nodeName: 'n2', conditions: { ready: false, serving: true, terminating: true } }], 'shop'),
    slice('api', [{ nodeName: 'n3' }], 'shop'),
    slice('web', [{ nodeName: 'n4' }], 'other-namespace'),
    { metadata: { namespace: 'shop', name: 'orphan' }, endpoints: [{ nodeName: 'n5' }] },
  ];

  it('joins the slices labelled with its name, in its namespace', () => {
    expect(serviceFromKube(service(), slices)).toEqual({
      namespace: 'shop',
      name: 'web',
      ips: ['192.0.2.10'],
      trafficPolicy: 'Cluster',
      endpoints: [
        { nodeName: 'n1', ready: true, serving: true, terminating: false },
        { nodeName: 'n2', ready: false, serving: true, terminating: true },
      ],
    });
  });

  it('reads externalTrafficPolicy Local', () => {
    expect(serviceFromKube(service({ policy: 'Local' }), [])?.trafficPolicy).toBe('Local');
    expect(serviceFromKube(service({ policy: 'Cluster' }), [])?.trafficPolicy).toBe('Cluster');
  });

  it('dual-stack ingress in canonical text, hostnames and garbage left out, duplicates once', () => {
    const ingress = [{ ip: '192.0.2.10' }, { ip: '2001:DB8:0:0::10' }, { hostname: 'lb.example.com' }, { ip: 'not-an-ip' }, { ip: '192.0.2.10' }, 'junk'];
    expect(serviceFromKube(service({ ingress }), [])?.ips).toEqual(['192.0.2.10', '2001:db8::10']);
  });

  it('a Service that is not of type LoadBalancer has nothing to announce', () => {
    expect(serviceFromKube(service({ type: 'ClusterIP' }), [])?.ips).toEqual([]);
  });

  it('a Service without a name is not read; no input throws', () => {
    expect(serviceFromKube({ metadata: {} }, [])).toBeUndefined();
    for (const junk of [undefined, null, 1, 'x', [], { metadata: 'x', spec: [], status: 1 }]) {
      expect(() => serviceFromKube(junk, [junk])).not.toThrow();
    }
  });

  it('a missing namespace reads as default', () => {
    expect(serviceFromKube({ metadata: { name: 'web' }, spec: { type: 'LoadBalancer' } }, [])).toMatchObject({ namespace: 'default', name: 'web' });
  });
});

describe('sliceServiceKey', () => {
  it('is namespace/service from the label, or undefined', () => {
    expect(sliceServiceKey(slice('web', [], 'shop'))).toBe('shop/web');
    expect(sliceServiceKey({ metadata: { name: 'x', namespace: 'shop' } })).toBeUndefined();
    expect(sliceServiceKey(null)).toBeUndefined();
  });
});

describe('nodeFromKube', () => {
  const node = (conditions: unknown[], labels: unknown = { 'kubernetes.io/hostname': 'n1' }): unknown => ({
    metadata: { name: 'n1', labels },
    status: { conditions },
  });

  it.each([
    ['NetworkUnavailable True', [{ type: 'NetworkUnavailable', status: 'True' }], true],
    ['NetworkUnavailable False', [{ type: 'NetworkUnavailable', status: 'False' }], false],
    ['NetworkUnavailable Unknown', [{ type: 'NetworkUnavailable', status: 'Unknown' }], false],
    ['only Ready', [{ type: 'Ready', status: 'True' }], false],
    ['no conditions', [], false],
  ])('%s', (_name, conditions, networkUnavailable) => {
    expect(nodeFromKube(node(conditions))).toEqual({ name: 'n1', labels: { 'kubernetes.io/hostname': 'n1' }, networkUnavailable });
  });

  it('labels that are not strings are left out; "__proto__" stays a label', () => {
    const labels = JSON.parse('{"a": "1", "b": 2, "__proto__": "x"}') as unknown;
    const read = nodeFromKube(node([], labels))!;
    expect(Object.keys(read.labels).sort()).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(read.labels)).toBe(Object.prototype);
  });

  it('a Node without a name is not read', () => {
    expect(nodeFromKube({ metadata: {} })).toBeUndefined();
    expect(nodeFromKube(undefined)).toBeUndefined();
  });
});
