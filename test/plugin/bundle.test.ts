/**
 * The plugin as shipped: `npm run build` bundles it (plugin/bundle.mjs) into dist/plugin/bundle,
 * which must run on its own, with none of node_modules beside it: a dependency that cannot be
 * bundled, or one that reads files next to itself, would break the krew archive and every run.
 */
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { copyBuiltPlugin } from './copy.js';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = process.cwd();
let dir: string;

beforeAll(() => {
  dir = copyBuiltPlugin('metallb-ts-bundle-');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const plugin = (...args: string[]) =>
  run(process.execPath, [join(dir, 'plugin/bin/kubectl-metallb'), ...args], { cwd: join(root, 'test/fixtures/config'), env: { ...process.env, NODE_OPTIONS: '' } });

describe('the bundled plugin, without node_modules', () => {
  it('starts, and knows its commands', async () => {
    const { stdout } = await plugin('--help');
    for (const command of ['config', 'explain', 'peers', 'pools', 'services', 'simulate']) expect(stdout).toContain(command);
  });

  it('checks a configuration file (the parser, yaml and the views are inside)', async () => {
    const { stdout } = await plugin('config', 'check', 'docs-basic.yaml');
    expect(stdout).toMatch(/valid/i);
  });

  it('says nothing on stderr under NODE_ENV development or test (oclif looked for TypeScript sources and warned)', async () => {
    for (const NODE_ENV of ['development', 'test']) {
      const { stderr } = await run(process.execPath, [join(dir, 'plugin/bin/kubectl-metallb'), 'config', 'check', 'docs-basic.yaml'], {
        cwd: join(root, 'test/fixtures/config'),
        env: { ...process.env, NODE_OPTIONS: '', NODE_ENV },
      });
      expect([NODE_ENV, stderr]).toEqual([NODE_ENV, '']);
    }
  });

  it('answers an unknown command with its hook', async () => {
    await expect(plugin('explain', 'pod', 'web')).rejects.toMatchObject({ stderr: expect.stringContaining('did you mean "explain svc"') });
  });

  it('had no node_modules to fall back on, in the copy or above it', () => {
    const above: string[] = [];
    for (let d = dir; d !== dirname(d); d = dirname(d)) above.push(join(d, 'node_modules'));
    expect(above.filter((p) => existsSync(p))).toEqual([]);
  });
});
