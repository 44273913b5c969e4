/**
 * The V8 code cache the plugin keeps between runs (plugin/start.ts): written after a successful
 * run, used by the next one, and never trusted when it does not fit: a damaged file, one made
 * from another build of the bundle, or a directory that cannot be written must cost at most the
 * time the cache would have saved, never a wrong answer or a failed command.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir, cacheName } from '../../plugin/start.js';
import { copyBuiltPlugin } from './copy.js';

const exec = promisify(execFile);
const root = process.cwd();
let dir: string;
let cache: string;
const bundle = () => join(dir, 'dist/plugin/bundle/main.cjs');
const sha1 = (path: string) => createHash('sha1').update(readFileSync(path)).digest();

beforeAll(() => {
  dir = copyBuiltPlugin('metallb-ts-cache-');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(() => {
  cache = join(dir, `cache-${Math.random().toString(36).slice(2)}`);
});

function plugin(args: string[], env: Record<string, string> = { METALLB_PLUGIN_CACHE_DIR: cache }) {
  return exec(process.execPath, [join(dir, 'plugin/bin/kubectl-metallb'), ...args], {
    cwd: join(root, 'test/fixtures/config'),
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
}

const CHECK = ['config', 'check', 'docs-basic.yaml'];

describe('the code cache', () => {
  it('is written by a successful run, then used as it is', async () => {
    const first = await plugin(CHECK);
    const file = join(cache, 'config.v8cache');
    const written = statSync(file);
    expect(readFileSync(file).subarray(0, 20)).toEqual(sha1(bundle()));
    expect(written.mode & 0o777).toBe(0o600);

    const second = await plugin(CHECK);
    expect(second.stdout).toBe(first.stdout);
    // Used, not written again: a new file would have been renamed into place (a new inode).
    expect(statSync(file).ino).toBe(written.ino);
    expect(readdirSync(cache)).toEqual(['config.v8cache']);
  });

  it('keeps each command apart', async () => {
    await plugin(CHECK);
    await plugin(['--version']);
    expect(readdirSync(cache).sort()).toEqual(['config.v8cache', 'other.v8cache']);
  });

  it('is rewritten when damaged: V8 refuses it, the run compiles and answers as before', async () => {
    const expected = (await plugin(CHECK)).stdout;
    const file = join(cache, 'config.v8cache');
    const header = readFileSync(file).subarray(0, 20);
    writeFileSync(file, Buffer.concat([header, Buffer.alloc(5000, 0x5a)]));
    const damaged = statSync(file).ino;

    expect((await plugin(CHECK)).stdout).toBe(expected);
    expect(statSync(file).ino).not.toBe(damaged);
    expect(statSync(file).size).toBeGreaterThan(5020);
  });

  it('is not used for another build of the bundle, even one of the same length', async () => {
    await plugin(CHECK);
    const file = join(cache, 'config.v8cache');
    const original = readFileSync(bundle(), 'latin1');
    try {
      // V8 checks only the length of the source: a different build of equal length must not take the cache.
      const rebuilt = original.replace('const __bundleURL', 'const __bundleURI').replaceAll('__bundleURL', '__bundleURI');
      expect(rebuilt.length).toBe(original.length);
      writeFileSync(bundle(), rebuilt, 'latin1');
      const before = statSync(file).ino;
      await plugin(CHECK);
      expect(statSync(file).ino).not.toBe(before);
      expect(readFileSync(file).subarray(0, 20)).toEqual(sha1(bundle()));
    } finally {
      writeFileSync(bundle(), original, 'latin1');
    }
  });

  it('is not written by a failed run', async () => {
    await expect(plugin(['config', 'check', 'no-such-file.yaml'])).rejects.toMatchObject({ code: 1 });
    expect(existsSync(join(cache, 'config.v8cache'))).toBe(false);
  });

  it('cannot fail a run: a cache directory that cannot be made costs only the cache', async () => {
    writeFileSync(cache, 'a file where the directory would be');
    const { stdout, stderr } = await plugin(CHECK);
    expect(stdout).toMatch(/valid/i);
    expect(stderr).toBe('');
    rmSync(cache);
  });

  it('is off with METALLB_PLUGIN_CACHE_DIR empty', async () => {
    const home = mkdtempSync(join(tmpdir(), 'metallb-ts-home-'));
    try {
      await plugin(CHECK, { METALLB_PLUGIN_CACHE_DIR: '', HOME: home, XDG_CACHE_HOME: join(home, 'xdg') });
      expect(readdirSync(home)).toEqual([]);
      await plugin(CHECK, { HOME: home, XDG_CACHE_HOME: join(home, 'xdg') });
      expect(readdirSync(join(home, 'xdg/kubectl-metallb'))).toEqual(['config.v8cache']);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('cacheName and cacheDir', () => {
  it.each([
    [['services', '-A'], 'services'],
    [['svc', '-n', 'shop'], 'services'],
    [['--kubeconfig', '/tmp/pools', 'explain', 'svc', 'web'], 'explain'],
    [['--context', 'prod', 'pools'], 'pools'],
    [['--help'], 'other'],
    [[], 'other'],
  ])('%j uses the cache of %s', (argv, name) => {
    expect(cacheName(argv)).toBe(name);
  });

  it('follows METALLB_PLUGIN_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(cacheDir({ METALLB_PLUGIN_CACHE_DIR: '/c' })).toBe('/c');
    expect(cacheDir({ METALLB_PLUGIN_CACHE_DIR: '' })).toBeUndefined();
    expect(cacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/kubectl-metallb');
    expect(cacheDir({})).toMatch(/\/\.cache\/kubectl-metallb$/);
  });
});
