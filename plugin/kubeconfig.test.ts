/** The kubeconfig read as kubectl reads it: merging, contexts, credentials, and who needs client-node. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { chooseContext, kubeconfigFiles, lightKubeConfig, needsClientNode, readKubeconfig } from './kubeconfig.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
  writeFileSync(join(dir, 'ca.crt'), 'CA-PEM');
  writeFileSync(join(dir, 'token'), 'from-file\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: Record<string, unknown>): string {
  const path = join(dir, name);
  writeFileSync(path, stringify(content));
  return path;
}

const config = (ctx: string, user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://a:6443' }, current: string | null = ctx) => ({
  apiVersion: 'v1',
  kind: 'Config',
  clusters: [{ name: `${ctx}-cluster`, cluster }],
  users: [{ name: `${ctx}-user`, user }],
  contexts: [{ name: ctx, context: { cluster: `${ctx}-cluster`, user: `${ctx}-user`, namespace: `${ctx}-ns` } }],
  ...(current ? { 'current-context': current } : {}),
});

describe('kubeconfig', () => {
  it('merges KUBECONFIG files: the first file wins for each name and for the current context', () => {
    const a = file('a', config('one', { token: 't1' }));
    const b = file('b', { ...config('two', { token: 't2' }), 'current-context': 'two' });
    const files = kubeconfigFiles({ env: { KUBECONFIG: `${a}:/nonexistent:${b}` } });
    expect(files).toEqual([a, b]);
    const kc = readKubeconfig(files!);
    expect(chooseContext(kc).name).toBe('one');
    expect(chooseContext(kc, 'two')).toMatchObject({ name: 'two', namespace: 'two-ns' });
    expect(() => chooseContext(kc, 'three')).toThrow('context "three" does not exist in the kubeconfig (contexts: one, two)');
  });

  it.each([
    ['a token', { token: 'abc' }, {}, { Authorization: 'Bearer abc' }],
    ['a token file, read per request', { tokenFile: 'token' }, {}, { Authorization: 'Bearer from-file' }],
    ['basic auth', { username: 'u', password: 'p' }, {}, { Authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }],
    [
      'client certificate data, a CA file relative to the kubeconfig',
      { 'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key-data': Buffer.from('KEY').toString('base64') },
      { 'certificate-authority': 'ca.crt' },
      {},
    ],
  ])('%s', async (_, user, cluster, headers) => {
    const kc = readKubeconfig([file('c', config('x', user, { server: 'https://a:6443', ...cluster }))]);
    const chosen = chooseContext(kc);
    expect(needsClientNode(chosen.user, chosen.cluster)).toBe(false);
    const light = lightKubeConfig(chosen.cluster, chosen.user);
    const opts: { headers?: Record<string, string>; ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
    await light.applyToHTTPSOptions(opts);
    expect(opts.headers).toEqual(headers);
    expect(light.getCurrentCluster().server).toBe('https://a:6443');
    if ('certificate-authority' in cluster) expect(opts.ca?.toString()).toBe('CA-PEM');
    if ('client-certificate-data' in user) expect([opts.cert?.toString(), opts.key?.toString()]).toEqual(['CERT', 'KEY']);
  });

  it('leaves exec plugins and auth providers to client-node', () => {
    for (const user of [{ exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } }, { 'auth-provider': { name: 'oidc' } }]) {
      const chosen = chooseContext(readKubeconfig([file('d', config('y', user))]));
      expect(needsClientNode(chosen.user, chosen.cluster)).toBe(true);
    }
  });

  it('says what is missing', () => {
    expect(() => kubeconfigFiles({ kubeconfig: '/nonexistent' })).toThrow('kubeconfig /nonexistent does not exist (--kubeconfig)');
    expect(() => kubeconfigFiles({ env: { HOME: dir } })).toThrow(/no kubeconfig: .* does not exist and KUBECONFIG is not set/);
    expect(() => chooseContext(readKubeconfig([file('e', config('z', { token: 'x' }, { server: 'https://a' }, null))]))).toThrow(
      'the kubeconfig names no current context; pass --context',
    );
  });
});
