/**
 * `kubectl metallb config convert` end to end, through kubectl's plugin lookup: the documentation's
 * ConfigMap becomes objects that `config check` accepts with the same pools and peers.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const root = process.cwd();
const fixtures = join(root, 'test/fixtures/config');
const env = { ...process.env, PATH: `${join(root, 'plugin/bin')}:${process.env.PATH ?? ''}`, NODE_OPTIONS: '' };

function kubectl(args: string[], cwd = fixtures): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', args, { env, cwd }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }));
  });
}

let dir: string;
beforeAll(async () => {
  if (!existsSync(join(root, 'dist/plugin/bundle/main.cjs'))) throw new Error('run `npm run build` first');
  dir = await mkdtemp(join(tmpdir(), 'metallb-convert-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kubectl metallb config convert', () => {
  it('converts the documentation ConfigMap into objects config check accepts, with the same pools and peers', async () => {
    const out = await kubectl(['metallb', 'config', 'convert', 'docs-basic.yaml']);
    expect(out.code).toBe(0);
    const kinds = parseAllDocuments(out.stdout).map((d) => (d.toJS() as { kind: string }).kind);
    expect(kinds).toEqual(['IPAddressPool', 'BGPPeer', 'BGPAdvertisement']);
    const file = join(dir, 'converted.yaml');
    await writeFile(file, out.stdout);
    const before = await kubectl(['metallb', 'config', 'check', 'docs-basic.yaml']);
    const after = await kubectl(['metallb', 'config', 'check', file]);
    expect(after.code).toBe(0);
    expect(after.stdout).toBe(before.stdout);
  });

  it('-o json is a v1 List; a broken ConfigMap is refused in one line per error', async () => {
    const json = JSON.parse((await kubectl(['metallb', 'config', 'convert', 'docs-basic.yaml', '-o', 'json'])).stdout) as { kind: string; items: unknown[] };
    expect(json.kind).toBe('List');
    expect(json.items).toHaveLength(3);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'address-pools:\n- name: x\n  protocol: layer2\n  addresses: [203.0.113.0/33]\n');
    const refused = await kubectl(['metallb', 'config', 'convert', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^error: ConfigMap metallb-system\/config: address-pools\[0\]\.addresses\[0\]: /);
  });
});
