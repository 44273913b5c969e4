/**
 * The krew archive as a user gets it: `npm run package` (plugin/package.mjs) packs the built
 * plugin and writes the manifest with the archive's checksum; unpacked where no node_modules is,
 * with kubectl finding the plugin on PATH, it reaches a cluster, including through a kubeconfig
 * whose user is an exec credential plugin (what EKS, GKE and OIDC logins use), which our own
 * kubeconfig reader leaves to client-node's: that part of the bundle has to be inside too.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { startApiServer, type ApiServer } from '../apiserver/index.js';
import { KUBECTL } from '../apiserver/testing.js';

const run = promisify(execFile);
const root = process.cwd();
let dir: string;
let unpacked: string;
let api: ApiServer;

interface Manifest {
  spec: { version: string; platforms: { sha256: string; uri: string; bin: string; files: { from: string; to: string }[] }[] };
}

beforeAll(async () => {
  if (!existsSync(join(root, 'dist/plugin/bundle/main.cjs'))) throw new Error('run `npm run build` first');
  await run(process.execPath, ['plugin/package.mjs'], { cwd: root });
  dir = mkdtempSync(join(tmpdir(), 'metallb-ts-krew-'));
  unpacked = join(dir, 'unpacked');
  await run('mkdir', ['-p', unpacked]);
  await run('tar', ['-xzf', join(root, 'dist/krew/metallb-ts-plugin.tar.gz'), '-C', unpacked]);
  api = await startApiServer();
}, 60_000);

afterAll(async () => {
  await api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `kubectl metallb ...` as a user runs it after `krew install`: the unpacked bin directory on PATH. */
function kubectlMetallb(kubeconfig: string, ...args: string[]) {
  return kubectlMetallbWith({}, kubeconfig, ...args);
}

function kubectlMetallbWith(env: Record<string, string>, kubeconfig: string, ...args: string[]) {
  return run(KUBECTL, ['metallb', ...args], {
    env: { PATH: `${join(unpacked, 'plugin/bin')}:${dirname(process.execPath)}:/usr/bin:/bin`, KUBECONFIG: kubeconfig, HOME: dir, ...env },
    timeout: 30_000,
  });
}

/** A kubeconfig for the double that names no certificate authority: the client must trust its certificate some other way. */
function noAuthorityKubeconfig(): string {
  const file = join(dir, 'kubeconfig-no-ca');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'double', cluster: { server: api.url } }],
      users: [{ name: 'admin', user: { token: api.token } }],
      contexts: [{ name: 'plain', context: { cluster: 'double', user: 'admin' } }],
      'current-context': 'plain',
    }),
  );
  return file;
}

/** A kubeconfig for the double whose user gets its token from an exec credential plugin. */
function execKubeconfig(token: string): string {
  const script = join(dir, `credential-${token.slice(0, 6)}.sh`);
  const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token } };
  writeFileSync(script, `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`);
  chmodSync(script, 0o755);
  const file = join(dir, `kubeconfig-exec-${token.slice(0, 6)}`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'double', cluster: { server: api.url, 'certificate-authority-data': Buffer.from(api.caPem ?? '').toString('base64') } }],
      users: [{ name: 'sso', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: script, interactiveMode: 'Never' } } }],
      contexts: [{ name: 'sso', context: { cluster: 'double', user: 'sso' } }],
      'current-context': 'sso',
    }),
  );
  return file;
}

describe('the krew archive and manifest', () => {
  it('the manifest carries the archive checksum and version, and names files the archive holds', async () => {
    const manifest = parse(readFileSync(join(root, 'dist/krew/metallb.yaml'), 'utf8')) as Manifest;
    const platform = manifest.spec.platforms[0]!;
    expect(platform.sha256).toBe(
      createHash('sha256')
        .update(readFileSync(join(root, 'dist/krew/metallb-ts-plugin.tar.gz')))
        .digest('hex'),
    );
    expect(manifest.spec.version).toBe(`v${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version}`);
    const { stdout } = await run('tar', ['-tzf', join(root, 'dist/krew/metallb-ts-plugin.tar.gz')]);
    const entries = stdout.split('\n').filter(Boolean);
    for (const f of platform.files) {
      const pattern = new RegExp(`^${f.from.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]+')}$`);
      expect({ from: f.from, matches: entries.some((e) => pattern.test(e)) }).toEqual({ from: f.from, matches: true });
    }
    expect(statSync(join(unpacked, platform.bin)).mode & 0o111).not.toBe(0);
    // Nothing from the development tree: no node_modules, no sources.
    expect(entries.filter((e) => e.includes('node_modules') || e.endsWith('.ts'))).toEqual([]);
  });

  it('packs the same bytes twice from the same build', async () => {
    const first = readFileSync(join(root, 'dist/krew/metallb-ts-plugin.tar.gz'));
    await run(process.execPath, ['plugin/package.mjs'], { cwd: root });
    expect(readFileSync(join(root, 'dist/krew/metallb-ts-plugin.tar.gz')).equals(first)).toBe(true);
  });

  it('on a cluster without MetalLB, says so in one line', async () => {
    const failed = await kubectlMetallb(api.kubeconfigPath, 'pools').then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(failed?.stderr).toMatch(/^error: the cluster at \S+ \(context \S+\) does not serve [a-z0-9]+\.metallb\.io: MetalLB's CRDs are not installed there/);
    expect(failed?.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('unpacked without node_modules, kubectl finds it and it reaches the cluster with a token', async () => {
    await run(KUBECTL, ['--kubeconfig', api.kubeconfigPath, 'apply', '-f', join(root, 'manifests/crds')]);
    const { stdout } = await kubectlMetallb(api.kubeconfigPath, 'pools', '-o', 'json');
    expect(JSON.parse(stdout)).toMatchObject({ pools: [] });
  });

  it('reaches the cluster through an exec credential plugin (client-node, bundled beside it)', async () => {
    const { stdout } = await kubectlMetallb(execKubeconfig(api.token), 'pools', '-o', 'json');
    expect(JSON.parse(stdout)).toMatchObject({ pools: [] });
  });

  it('trusts NODE_EXTRA_CA_CERTS where the kubeconfig names no authority (the launcher keeps Node from reading it at start)', async () => {
    const caFile = join(dir, 'extra-ca.pem');
    writeFileSync(caFile, api.caPem ?? '');
    const { stdout } = await kubectlMetallbWith({ NODE_EXTRA_CA_CERTS: caFile }, noAuthorityKubeconfig(), 'pools', '-o', 'json');
    expect(JSON.parse(stdout)).toMatchObject({ pools: [] });
    // Without it, that certificate is trusted by nothing: one line says so.
    const failed = await kubectlMetallb(noAuthorityKubeconfig(), 'pools').then(
      () => undefined,
      (e: { stderr: string }) => e,
    );
    expect(failed?.stderr).toMatch(/^error: .*certificate/);
    expect(failed?.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('gives NODE_EXTRA_CA_CERTS back to the credential plugins it starts, and a missing file fails nothing', async () => {
    const seen = join(dir, 'seen-extra-ca');
    const kubeconfig = execKubeconfig(api.token);
    const script = readFileSync(join(dir, `credential-${api.token.slice(0, 6)}.sh`), 'utf8');
    writeFileSync(join(dir, `credential-${api.token.slice(0, 6)}.sh`), script.replace('#!/bin/sh\n', `#!/bin/sh\nprintf '%s' "$NODE_EXTRA_CA_CERTS" > ${seen}\n`));
    const missing = join(dir, 'no-such-ca.pem');
    const { stdout, stderr } = await kubectlMetallbWith({ NODE_EXTRA_CA_CERTS: missing }, kubeconfig, 'pools', '-o', 'json');
    expect(JSON.parse(stdout)).toMatchObject({ pools: [] });
    expect(stderr).toBe('');
    expect(readFileSync(seen, 'utf8')).toBe(missing);
  });

  it('a credential the API server refuses is one line naming the context, not a stack', async () => {
    const failed = await kubectlMetallb(execKubeconfig('f'.repeat(48)), 'pools').then(
      () => undefined,
      (e: { stderr: string; code: number }) => e,
    );
    expect(failed?.stderr).toMatch(/^error: unauthorized: the API server at \S+ refused the credentials of context sso/);
    expect(failed?.stderr.trim().split('\n')).toHaveLength(1);
  });
});
