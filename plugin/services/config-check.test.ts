import { RULES, type Expect } from '../../test/fixtures/config/metallb-rules.js';
import { checkFiles, formatFinding, type Finding } from './config-check.js';

const pool = (name: string, address: string, ns = 'metallb-system', extra = '') => `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ${name}, namespace: ${ns}}
spec:
  addresses: ["${address}"]
${extra}`;
const peerWithSecret = `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: r1, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, passwordSecret: {name: bgp-auth}}
`;
const secret = (type?: string) => `
apiVersion: v1
kind: Secret
metadata: {name: bgp-auth, namespace: metallb-system}
${type ? `type: ${type}` : ''}
stringData: {password: s3cret}
`;
const configMap = (pools: string) => `
apiVersion: v1
kind: ConfigMap
metadata: {name: config, namespace: metallb-system}
data:
  config: |
    address-pools:
${pools}
`;

describe('checkFiles', () => {
  it.each([
    ['an empty file', [{ path: 'a.yaml', text: '' }], ['a.yaml: file holds no YAML documents']],
    [
      'pools overlapping across files',
      [
        { path: 'a.yaml', text: pool('one', '198.51.100.0/24') },
        { path: 'b.yaml', text: pool('two', '198.51.100.128/25') },
      ],
      [/^b\.yaml:6 document 1 \(IPAddressPool metallb-system\/two\): spec\.addresses\[0\]: .*overlap.* \(see a\.yaml:6 document 1\)$/],
    ],
    [
      'a name defined in the ConfigMap and as an object',
      [
        { path: 'cm.yaml', text: configMap('    - {name: one, protocol: layer2, addresses: [192.0.2.0/28]}') },
        { path: 'crd.yaml', text: pool('one', '203.0.113.0/28') },
      ],
      [/^crd\.yaml:4 document 1 \(IPAddressPool metallb-system\/one\): metadata\.name: duplicate pool name "one".* \(see cm\.yaml:8 document 1\)$/],
    ],
    [
      'the ConfigMap twice',
      [
        {
          path: 'cm.yaml',
          text: `${configMap('    - {name: a, protocol: layer2, addresses: [192.0.2.0/28]}')}---${configMap('    - {name: b, protocol: layer2, addresses: [203.0.113.0/28]}')}`,
        },
      ],
      [/^cm\.yaml:\d+ document 2 .*metadata\.name: ConfigMap metallb-system\/config is also defined in cm\.yaml:2 document 1/],
    ],
    ['a document that is a list', [{ path: 'l.yaml', text: '- a\n- b\n' }], [/^l\.yaml:1 document 1: document is not a Kubernetes object/]],
    [
      'a pool outside the namespace MetalLB reads',
      [{ path: 'p.yaml', text: pool('stray', '192.0.2.0/28', 'default') }],
      [/^p\.yaml:4 document 1 \(IPAddressPool default\/stray\): metadata\.namespace: must be created in the metallb-system namespace/],
    ],
    [
      'a password Secret of the wrong type',
      [
        { path: 'peer.yaml', text: peerWithSecret },
        { path: 'secret.yaml', text: secret() },
      ],
      [/^peer\.yaml:5 document 1 \(BGPPeer metallb-system\/r1\): spec\.passwordSecret: Secret metallb-system\/bgp-auth is of type "Opaque"; .*kubernetes\.io\/basic-auth/],
    ],
  ])('reports %s', (_name, files, expected) => {
    const report = checkFiles(files);
    const lines = report.errors.map(formatFinding);
    for (const e of expected) expect(lines).toEqual(expect.arrayContaining([typeof e === 'string' ? e : expect.stringMatching(e)]));
  });

  it('blames a duplicate name on the file that repeats it, naming where it was first defined', () => {
    const report = checkFiles([
      { path: 'first.yaml', text: pool('prod', '192.0.2.0/28') },
      { path: 'second.yaml', text: `${pool('other', '198.51.100.0/28')}---${pool('prod', '203.0.113.0/28')}` },
    ]);
    expect(report.errors.map(formatFinding)).toEqual([
      'second.yaml:10 document 2 (IPAddressPool metallb-system/prod): metadata.name: duplicate pool name "prod": already defined by IPAddressPool metallb-system/prod at metadata.name (see first.yaml:4 document 1)',
    ]);
  });

  it('lists errors in file, document and line order, whatever order the parser found them in', () => {
    const report = checkFiles([
      { path: 'a.yaml', text: `${pool('late', '10.0.0.0/33')}---${pool('early', '10.0.1.9-10.0.1.1')}` },
      {
        path: 'b.yaml',
        text: configMap(
          '    - name: x\n      protocol: bgp\n      addresses: [10.0.2.0/24]\n      bgp-advertisements:\n      - localpref: -1\n    - name: y\n      protocol: arp\n      addresses: [10.0.3.0/24]',
        ),
      },
    ]);
    expect(report.errors.map((e) => [e.location.file, e.location.document, e.location.line, e.path])).toEqual([
      ['a.yaml', 1, 6, 'spec.addresses[0]'],
      ['a.yaml', 2, 12, 'spec.addresses[0]'],
      ['b.yaml', 1, 12, 'address-pools[0].bgp-advertisements[0].localpref'],
      ['b.yaml', 1, 14, 'address-pools[1].protocol'],
    ]);
  });

  it('reports a YAML syntax error in one line with its place, not ending on a colon', () => {
    const report = checkFiles([{ path: 'bad.yaml', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config, namespace: metallb-system\ndata: [\n' }]);
    expect(report.errors.length).toBeGreaterThan(0);
    for (const e of report.errors.map(formatFinding)) {
      expect(e).toMatch(/^bad\.yaml:\d+ document 1: invalid YAML at line \d+, column \d+: \S/);
      expect(e).not.toMatch(/:$/);
      expect(e).not.toContain('\n');
    }
  });

  it('reports YAML whose aliases would expand without bound, in one line', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...Array.from(
        { length: 8 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
            .fill(`*${String.fromCharCode(97 + i)}`)
            .join(', ')}]`,
      ),
    ].join('\n');
    const report = checkFiles([{ path: 'bomb.yaml', text: bomb }]);
    expect(report.errors.map(formatFinding)).toEqual([expect.stringMatching(/^bomb\.yaml:1 document 1: invalid YAML: .*alias/i)]);
  });

  it('keeps a missing password Secret pending, and resolves a basic-auth one given in another file', () => {
    const alone = checkFiles([{ path: 'peer.yaml', text: peerWithSecret }]);
    expect(alone.errors).toEqual([]);
    expect(alone.pending.map(formatFinding)).toEqual([expect.stringMatching(/^peer\.yaml:5 document 1 \(BGPPeer metallb-system\/r1\): spec\.passwordSecret.*bgp-auth/)]);

    const withSecret = checkFiles([
      { path: 'peer.yaml', text: peerWithSecret },
      { path: 'secret.yaml', text: secret('kubernetes.io/basic-auth') },
    ]);
    expect(withSecret.errors).toEqual([]);
    expect(withSecret.pending).toEqual([]);
    expect(withSecret.summary.peers).toHaveLength(1);
  });

  it('counts pool addresses as the pool status does (without .0 and .255 when the pool avoids them)', () => {
    const report = checkFiles([{ path: 'p.yaml', text: pool('p', '192.0.2.0/24', 'metallb-system', '  avoidBuggyIPs: true') }]);
    expect(report.errors).toEqual([]);
    expect(report.summary.pools).toEqual([{ name: 'p', addresses: '254', ranges: ['192.0.2.0/24'], autoAssign: true }]);
  });

  it('warns, at the entry, about a CIDR with host bits set, and accepts it as the network', () => {
    const report = checkFiles([{ path: 'p.yaml', text: pool('p', '192.0.2.77/24') }]);
    expect(report.errors).toEqual([]);
    expect(report.warnings.map(formatFinding)).toEqual([
      expect.stringMatching(/^p\.yaml:6 document 1 \(IPAddressPool metallb-system\/p\): spec\.addresses\[0\]: "192\.0\.2\.77\/24" has host bits set: .*192\.0\.2\.0\/24/),
    ]);
    expect(report.summary.pools[0]?.ranges).toEqual(['192.0.2.0/24']);
  });

  it('checks against another namespace when told MetalLB runs there', () => {
    const report = checkFiles([{ path: 'p.yaml', text: pool('p', '192.0.2.0/28') }], { namespace: 'lb' });
    expect(report.errors.map(formatFinding)).toEqual([expect.stringMatching(/metadata\.namespace: must be created in the lb namespace/)]);
  });
});

/** `actual` holds exactly the expected findings, each once, by object, field and part of the message. */
function expectFindings(what: string, actual: readonly Finding[], expected: readonly Expect[] = []): void {
  const left = [...actual];
  const missing = expected.filter((e) => {
    const i = left.findIndex((f) => f.location.object === e.source && f.path === e.path && f.message.includes(e.message));
    if (i >= 0) left.splice(i, 1);
    return i < 0;
  });
  if (missing.length > 0 || left.length > 0) {
    throw new Error(
      `${what}:\n${[...missing.map((m) => `  missing: ${m.source}: ${m.path}: ...${m.message}...`), ...left.map((f) => `  unexpected: ${formatFinding(f)}`)].join('\n')}`,
    );
  }
}

describe('MetalLB rules through config check (each object in a file of its own, in order)', () => {
  it.each(RULES.map((r) => [r.name, r] as const))('%s', (_name, rule) => {
    const files = rule.docs.map((text, i) => ({ path: `doc-${i + 1}.yaml`, text }));
    const report = checkFiles(files, rule.namespace ? { namespace: rule.namespace } : {});
    expectFindings('errors', report.errors, rule.errors);
    expectFindings('warnings', report.warnings, rule.warnings);
    expectFindings('pending', report.pending, rule.pending);
    expect(report.ignored).toEqual([]);
    // Every finding is traced to the file and line of its object.
    for (const f of [...report.errors, ...report.warnings, ...report.pending]) expect(f.location.file).toMatch(/^doc-\d+\.yaml$/);
    for (const f of [...report.errors, ...report.warnings, ...report.pending]) expect(f.location.line).toBeGreaterThan(0);
  });
});
