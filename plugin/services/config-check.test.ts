import { checkFiles, formatFinding } from './config-check.js';

const pool = (name: string, address: string, ns = 'metallb-system') => `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ${name}, namespace: ${ns}}
spec: {addresses: ["${address}"]}
`;
const peerWithSecret = `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: r1, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, passwordSecret: {name: bgp-auth}}
`;
const secret = `
apiVersion: v1
kind: Secret
metadata: {name: bgp-auth, namespace: metallb-system}
type: kubernetes.io/basic-auth
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
      [/^b\.yaml document 1 \(IPAddressPool metallb-system\/two\): spec\.addresses\[0\]: .*overlap/],
    ],
    [
      'a name defined in the ConfigMap and as an object',
      [
        { path: 'cm.yaml', text: configMap('    - {name: one, protocol: layer2, addresses: [192.0.2.0/28]}') },
        { path: 'crd.yaml', text: pool('one', '203.0.113.0/28') },
      ],
      [/crd\.yaml document 1 \(IPAddressPool metallb-system\/one\).*one.*(defined|already)/],
    ],
    [
      'the ConfigMap twice',
      [
        {
          path: 'cm.yaml',
          text: `${configMap('    - {name: a, protocol: layer2, addresses: [192.0.2.0/28]}')}---${configMap('    - {name: b, protocol: layer2, addresses: [203.0.113.0/28]}')}`,
        },
      ],
      [/^cm\.yaml document 2 .*metadata\.name: ConfigMap metallb-system\/config is also defined in cm\.yaml document 1/],
    ],
    ['a document that is a list', [{ path: 'l.yaml', text: '- a\n- b\n' }], [/^l\.yaml document 1: document is not a Kubernetes object/]],
  ])('reports %s', (_name, files, expected) => {
    const report = checkFiles(files);
    const lines = report.errors.map(formatFinding);
    for (const e of expected) expect(lines).toEqual(expect.arrayContaining([typeof e === 'string' ? e : expect.stringMatching(e)]));
  });

  it('keeps a missing password Secret pending, and resolves one given in another file', () => {
    const alone = checkFiles([{ path: 'peer.yaml', text: peerWithSecret }]);
    expect(alone.errors).toEqual([]);
    expect(alone.pending.map(formatFinding)).toEqual([expect.stringMatching(/^peer\.yaml document 1 \(BGPPeer metallb-system\/r1\): spec\.passwordSecret.*bgp-auth/)]);

    const withSecret = checkFiles([
      { path: 'peer.yaml', text: peerWithSecret },
      { path: 'secret.yaml', text: secret },
    ]);
    expect(withSecret.errors).toEqual([]);
    expect(withSecret.pending).toEqual([]);
    expect(withSecret.summary.peers).toHaveLength(1);
  });
});
