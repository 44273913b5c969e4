/**
 * `kubectl metallb config check` end to end: the real kubectl finds our executable on PATH
 * (its plugin lookup), which runs the built plugin against fixture files.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = process.cwd();
const fixtures = join(root, 'test/fixtures/config');
const env = { ...process.env, PATH: `${join(root, 'plugin/bin')}:${process.env.PATH ?? ''}` };

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function kubectl(...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run('kubectl', args, { env, cwd: fixtures });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(() => {
  // npm test builds first (pretest); a missing build is a setup fault, not a pass.
  if (!existsSync(join(root, 'dist/plugin/bundle/main.cjs'))) throw new Error('run `npm run build` first');
});

describe('kubectl metallb config check', () => {
  it('is found by kubectl plugin list', async () => {
    const out = await kubectl('plugin', 'list');
    expect(out.stdout).toContain(join(root, 'plugin/bin/kubectl-metallb'));
  });

  it('accepts the documentation example and summarises it in one line', async () => {
    const out = await kubectl('metallb', 'config', 'check', 'docs-basic.yaml');
    expect(out.code).toBe(0);
    expect(out.stdout.trim().split('\n')).toHaveLength(1);
    expect(out.stdout).toMatch(/configuration is valid: 1 pool \[default \(256 addresses\)\], 1 BGP peer \[10\.0\.0\.1 AS100\]/);
  });

  it('checks several files and documents together', async () => {
    const out = await kubectl('metallb', 'config', 'check', 'docs-basic.yaml', 'crds.yaml', 'unrelated.yaml');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/3 pools .*production \(16 addresses, manual\).*sandbox \(91 addresses\)/);
    expect(out.stdout).toMatch(/2 BGP peers/);
    expect(out.stderr).toMatch(/unrelated\.yaml:1 document 1 \(Service .*\/nginx\): not MetalLB configuration/);
  });

  it('prints every error with its file, document and place, and exits 1', async () => {
    const out = await kubectl('metallb', 'config', 'check', 'broken.yaml');
    expect(out.code).toBe(1);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^broken\.yaml:8 document 1 \(IPAddressPool metallb-system\/first\): spec\.addresses\[0\]: .*203\.0\.113\.0\/33/),
        expect.stringMatching(/^broken\.yaml:17 document 2 \(IPAddressPool metallb-system\/second\): spec\.addresses\[0\]: .*start is after its end/),
        expect.stringMatching(/^broken\.yaml:26 document 3 \(BGPPeer metallb-system\/router\): spec\.peerASN: .*4294967296/),
        expect.stringMatching(/^broken\.yaml:27 document 3 \(BGPPeer metallb-system\/router\): spec\.peerAddress: .*not-an-ip/),
        expect.stringMatching(/^broken\.yaml:28 document 3 \(BGPPeer metallb-system\/router\): spec\.holdTime: /),
      ]),
    );
    expect(lines[lines.length - 1]).toMatch(/^\d+ errors found$/);
    // In file, document and line order.
    const places = lines.slice(0, -1).map((l) => Number(/^broken\.yaml:(\d+) /.exec(l)?.[1]));
    expect(places).toEqual([...places].sort((a, b) => a - b));
    expect(out.stderr).not.toMatch(/at .*\.js:\d+/); // no stack traces
  });

  it('reports a YAML syntax error with its file and document', async () => {
    const out = await kubectl('metallb', 'config', 'check', 'bad-yaml.yaml');
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^bad-yaml\.yaml:\d+ document 1: invalid YAML at line \d+, column \d+: \S/m);
    expect(out.stdout).not.toMatch(/:\n/);
  });

  it('prints data alone with -o json', async () => {
    const out = await kubectl('metallb', 'config', 'check', 'crds.yaml', '-o', 'json');
    expect(out.code).toBe(0);
    const data = JSON.parse(out.stdout) as { valid: boolean; summary: { pools: { name: string }[] } };
    expect(data.valid).toBe(true);
    expect(data.summary.pools.map((p) => p.name)).toEqual(['production', 'sandbox']);
  });

  it('prints warnings on stderr, and in the data with -o json', async () => {
    const text = await kubectl('metallb', 'config', 'check', 'host-bits.yaml');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^configuration is valid: 1 pool \[lab \(254 addresses\)\]/);
    expect(text.stderr).toMatch(/^warning: host-bits\.yaml:\d+ document 1 \(IPAddressPool metallb-system\/lab\): spec\.addresses\[0\]: "192\.0\.2\.10\/24" has host bits set/m);
    const json = await kubectl('metallb', 'config', 'check', 'host-bits.yaml', '-o', 'json');
    const data = JSON.parse(json.stdout) as { valid: boolean; warnings: { path: string; location: { file: string } }[] };
    expect(data.valid).toBe(true);
    expect(data.warnings).toEqual([expect.objectContaining({ path: 'spec.addresses[0]', location: expect.objectContaining({ file: 'host-bits.yaml' }) })]);
  });

  it('does not count a metallb.io object outside metallb-system as configuration', async () => {
    const out = await kubectl('metallb', 'config', 'check', 'crds.yaml', 'other-namespace.yaml');
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/^other-namespace\.yaml:\d+ document 1 \(IPAddressPool default\/stray\): metadata\.namespace: must be created in the metallb-system namespace/m);
    // Where MetalLB runs elsewhere, that namespace is the one.
    const elsewhere = await kubectl('metallb', 'config', 'check', 'other-namespace.yaml', '--metallb-namespace', 'default');
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.stdout).toMatch(/^configuration is valid: 1 pool \[stray/);
  });

  it.each([
    [['metallb', 'config', 'check', 'missing.yaml'], /^error: cannot read missing\.yaml: no such file$/, 1],
    [['metallb', 'config', 'check', 'crds.yaml', '-o', 'xml'], /^error: .*xml/, 2],
    [['metallb', 'config', 'check'], /^error: .*file/i, 2],
  ])('kubectl %j fails with one clear line', async (args, message, code) => {
    const out = await kubectl(...args);
    expect(out.code).toBe(code);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect(out.stderr.trim()).toMatch(message);
  });
});
