import type { KubeObject } from './object.js';
import { BUILTIN_TABLES, customResourceTable, evalJsonPath, humanDuration, parseJsonPath } from './tables.js';

const now = new Date('2025-01-01T12:00:00Z');
const minutesAgo = (m: number): string => new Date(now.getTime() - m * 60_000).toISOString();

describe('humanDuration (apimachinery duration.HumanDuration)', () => {
  it.each([
    [-3000, '<invalid>'],
    [-500, '0s'],
    [45_000, '45s'],
    [119_000, '119s'],
    [200_000, '3m20s'],
    [300_000, '5m'],
    [45 * 60_000, '45m'],
    [(5 * 60 + 10) * 60_000, '5h10m'],
    [30 * 3600_000, '30h'],
    [(3 * 24 + 4) * 3600_000, '3d4h'],
    [40 * 24 * 3600_000, '40d'],
    [(3 * 365 + 10) * 24 * 3600_000, '3y10d'],
    [9 * 365 * 24 * 3600_000, '9y'],
  ])('%i ms is %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

describe('the Service printer', () => {
  const service = (spec: Record<string, unknown>, status: Record<string, unknown> = {}): KubeObject => ({
    metadata: { name: 'web', creationTimestamp: minutesAgo(5) },
    spec: { clusterIPs: ['198.51.100.7'], ports: [{ port: 80, protocol: 'TCP' }], ...spec },
    status,
  });
  const cells = (o: KubeObject): unknown[] => (BUILTIN_TABLES.services?.cells(o, now) ?? []).slice(1, 6);

  it.each([
    ['a ClusterIP Service', service({ type: 'ClusterIP' }), ['ClusterIP', '198.51.100.7', '<none>', '80/TCP', '5m']],
    [
      'a ClusterIP Service with external IPs',
      service({ type: 'ClusterIP', externalIPs: ['192.0.2.1', '192.0.2.2'] }),
      ['ClusterIP', '198.51.100.7', '192.0.2.1,192.0.2.2', '80/TCP', '5m'],
    ],
    [
      'a pending LoadBalancer',
      service({ type: 'LoadBalancer', ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] }),
      ['LoadBalancer', '198.51.100.7', '<pending>', '80:30080/TCP', '5m'],
    ],
    [
      'an assigned dual-stack LoadBalancer (addresses sorted)',
      service({ type: 'LoadBalancer' }, { loadBalancer: { ingress: [{ ip: '2001:db8::1' }, { ip: '192.0.2.9' }] } }),
      ['LoadBalancer', '198.51.100.7', '192.0.2.9,2001:db8::1', '80/TCP', '5m'],
    ],
    [
      'an ExternalName Service',
      service({ type: 'ExternalName', clusterIPs: undefined, externalName: 'db.example.com', ports: [] }),
      ['ExternalName', '<none>', 'db.example.com', '<none>', '5m'],
    ],
  ])('prints %s', (_name, obj, expected) => {
    expect(cells(obj)).toEqual(expected);
  });
});

describe('custom resource columns', () => {
  it.each(['.spec.addresses', '.spec.addresses[0]', '.status.conditions[?(@.type=="Ready")].status', '{.metadata.name}', "['metadata']['name']"])('parses %s', (path) => {
    expect(parseJsonPath(path)).toBeDefined();
  });

  it('rejects what is not a simple path', () => {
    expect(parseJsonPath('.spec[')).toBeUndefined();
    expect(parseJsonPath('.spec..x')).toBeUndefined();
  });

  it('evaluates fields, indexes, wildcards and filters', () => {
    const obj = {
      status: {
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'Synced', status: 'False' },
        ],
      },
      spec: { a: [1, 2] },
    };
    expect(evalJsonPath(obj, parseJsonPath('.status.conditions[?(@.type=="Ready")].status') ?? [])).toEqual(['True']);
    expect(evalJsonPath(obj, parseJsonPath('.spec.a[*]') ?? [])).toEqual([1, 2]);
    expect(evalJsonPath(obj, parseJsonPath('.spec.a[1]') ?? [])).toEqual([2]);
    expect(evalJsonPath(obj, parseJsonPath('.spec.missing') ?? [])).toEqual([]);
  });

  it('types cells by column type, ages dates, and defaults to an Age column', () => {
    const table = customResourceTable([
      { name: 'Auto', type: 'boolean', jsonPath: '.spec.autoAssign' },
      { name: 'Addresses', type: 'string', jsonPath: '.spec.addresses' },
      { name: 'Count', type: 'integer', jsonPath: '.status.count' },
      { name: 'Since', type: 'date', jsonPath: '.status.since' },
      { name: 'Missing', type: 'string', jsonPath: '.spec.nothing' },
    ]);
    const obj: KubeObject = { metadata: { name: 'p' }, spec: { autoAssign: false, addresses: ['192.0.2.0/24'] }, status: { count: 3.7, since: minutesAgo(90) } };
    expect(table.cells(obj, now)).toEqual(['p', false, '["192.0.2.0/24"]', 3, '90m', null]);
    expect(customResourceTable([]).columns.map((c) => c.name)).toEqual(['Name', 'Age']);
  });
});

describe('custom resource columns over arrays, as kube-apiserver prints them', () => {
  const claim: KubeObject = {
    metadata: { name: '192.0.2.7' },
    spec: {
      ip: '192.0.2.7',
      holders: [
        { namespace: 'dns', name: 'dns-tcp', uid: 'u1' },
        { name: 'dns-udp', namespace: 'dns' },
      ],
    },
  };

  it('shows only the first value a [*] path selects (the apiserver keeps results[0][0])', () => {
    const table = customResourceTable([{ name: 'Holders', type: 'string', jsonPath: '.spec.holders[*].name' }]);
    expect(evalJsonPath(claim, parseJsonPath('.spec.holders[*].name') ?? [])).toEqual(['dns-tcp', 'dns-udp']);
    expect(table.cells(claim, now)).toEqual(['192.0.2.7', 'dns-tcp']);
  });

  it('prints an array or object as Go marshals it: compact, keys sorted, HTML characters escaped', () => {
    const table = customResourceTable([
      { name: 'Holders', type: 'string', jsonPath: '.spec.holders' },
      { name: 'Odd', type: 'string', jsonPath: '.spec.odd' },
    ]);
    const odd: KubeObject = { ...claim, spec: { ...(claim.spec as object), odd: { b: '<&>', a: 1 } } };
    expect(table.cells(odd, now)).toEqual([
      '192.0.2.7',
      '[{"name":"dns-tcp","namespace":"dns","uid":"u1"},{"name":"dns-udp","namespace":"dns"}]',
      '{"a":1,"b":"\\u003c\\u0026\\u003e"}',
    ]);
  });

  it('describes columns as the apiserver does when the CRD does not', () => {
    const table = customResourceTable([{ name: 'IP', type: 'string', jsonPath: '.spec.ip' }]);
    expect(table.columns[1]?.description).toBe('Custom resource definition column (in JSONPath format): .spec.ip');
    expect(customResourceTable([]).columns[1]?.description).toMatch(/^CreationTimestamp is a timestamp/);
  });
});

describe('workload printers', () => {
  it('prints a Deployment as kubectl does', () => {
    const d: KubeObject = {
      metadata: { name: 'controller', creationTimestamp: minutesAgo(2) },
      spec: { replicas: 2, selector: { matchLabels: { app: 'metallb' } }, template: { spec: { containers: [{ name: 'controller', image: 'metallb-ts:dev' }] } } },
      status: { readyReplicas: 1, updatedReplicas: 2, availableReplicas: 1 },
    };
    expect(BUILTIN_TABLES['deployments.apps']?.cells(d, now)).toEqual(['controller', '1/2', 2, 1, '2m', 'controller', 'metallb-ts:dev', 'app=metallb']);
  });
});
