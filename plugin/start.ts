/**
 * How plugin/bin/kubectl-metallb starts the plugin: it loads the bundle (main.cjs) with a V8 code
 * cache, as Node 22's module.enableCompileCache does, which Node 20 lacks. A kubectl plugin
 * starts afresh at every call, and V8 compiles each function the first time it runs: for
 * `services -A` on 1,000 Services that was about 50 ms of a 0.5 s run. The cache is made at the
 * end of a successful run, so it holds every function that run compiled, and is kept per
 * command (`services`, `explain`, ...), each of which compiles different code.
 *
 * The cache lives in $METALLB_PLUGIN_CACHE_DIR, else $XDG_CACHE_HOME/kubectl-metallb, else
 * ~/.cache/kubectl-metallb (an empty METALLB_PLUGIN_CACHE_DIR turns it off). Each file starts with
 * the SHA-1 of the bundle it was made from: V8 checks its own version, flags and the source's
 * length, not its content, so a rebuilt bundle of the same length must not take an old cache.
 * A file that is missing, stale, damaged or refused by V8 costs only the compilation it would
 * have saved; the run then writes a fresh one (atomically: a file of its own, renamed).
 *
 * Bundled alone into dist/plugin/bundle/start.cjs (plugin/bundle.mjs), so that loading it
 * costs nothing beyond this file.
 */
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

/** The words that start a command: the cache of each is kept apart. */
const COMMAND_WORDS: Readonly<Record<string, string>> = {
  config: 'config',
  explain: 'explain',
  peers: 'peers',
  pools: 'pools',
  services: 'services',
  svc: 'services',
  simulate: 'simulate',
};

/** Which command's cache a command line uses: the first word that names a command, else `other`. */
export function cacheName(argv: readonly string[]): string {
  for (const word of argv) {
    const command = COMMAND_WORDS[word];
    if (command) return command;
  }
  return 'other';
}

/** Where the caches are kept, or undefined when turned off. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const own = env.METALLB_PLUGIN_CACHE_DIR;
  if (own !== undefined) return own === '' ? undefined : own;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kubectl-metallb');
}

const HASH_BYTES = 20;

interface ModuleInternals {
  wrap(source: string): string;
  _nodeModulePaths(dir: string): string[];
  _cache: Record<string, unknown>;
}

export interface Loaded {
  exports: unknown;
  /** Writes the cache of what has been compiled by now, unless it was used; never throws. */
  save(): void;
}

/**
 * Loads the CommonJS `file` as require() would (into require's cache, so a later require of it
 * finds this module), compiled with the cache `name` from `dir` when it fits.
 */
export function loadCached(file: string, dir: string | undefined, name: string): Loaded {
  const bytes = readFileSync(file);
  const hash = createHash('sha1').update(bytes).digest();
  // plugin/bundle.mjs writes ASCII: read so, V8 gets a one-byte string without decoding UTF-8.
  const source = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  const cachePath = dir === undefined ? undefined : join(dir, `${name}.v8cache`);
  let cachedData: Buffer | undefined;
  if (cachePath !== undefined) {
    try {
      const data = readFileSync(cachePath);
      // Made from another build of the bundle: compiled afresh, and the cache rewritten.
      if (data.length > HASH_BYTES && data.subarray(0, HASH_BYTES).equals(hash)) cachedData = data.subarray(HASH_BYTES);
    } catch {
      // None yet (or unreadable): the same.
    }
  }
  const M = Module as unknown as ModuleInternals & (new (id: string, parent?: unknown) => Module);
  const script = new Script(M.wrap(source), {
    filename: file,
    ...(cachedData && { cachedData }),
  });
  const hit = cachedData !== undefined && script.cachedDataRejected !== true;

  const mod = new M(file, undefined);
  mod.filename = file;
  mod.paths = M._nodeModulePaths(dirname(file));
  M._cache[file] = mod;
  try {
    (script.runInThisContext() as (...args: unknown[]) => void).call(mod.exports, mod.exports, (id: string) => mod.require(id), mod, file, dirname(file));
  } catch (e) {
    delete M._cache[file];
    throw e;
  }
  mod.loaded = true;

  return {
    exports: mod.exports,
    save() {
      if (cachePath === undefined || hit) return;
      const temp = `${cachePath}.${process.pid}.tmp`;
      try {
        mkdirSync(dirname(cachePath), { recursive: true, mode: 0o700 });
        writeFileSync(temp, Buffer.concat([hash, script.createCachedData()]), { mode: 0o600 });
        renameSync(temp, cachePath);
      } catch {
        // No cache this time (a read-only home, a full disk): the next run compiles again.
        try {
          rmSync(temp, { force: true });
        } catch {
          // Nothing was written there.
        }
      }
    },
  };
}

/** Runs the plugin from `bundle` (main.cjs) with `argv`; the cache is written when the run succeeds. */
export async function start(bundle: string, argv: string[] = process.argv.slice(2)): Promise<void> {
  // The launcher moved NODE_EXTRA_CA_CERTS aside so that this Node would not read it at start;
  // the programs the plugin starts (exec credential plugins) get it back as the user set it.
  const deferred = process.env.METALLB_NODE_EXTRA_CA_CERTS;
  if (deferred !== undefined && process.env.NODE_EXTRA_CA_CERTS === undefined) process.env.NODE_EXTRA_CA_CERTS = deferred;
  let loaded: Loaded;
  try {
    loaded = loadCached(bundle, cacheDir(), cacheName(argv));
  } catch (e) {
    // A damaged cache cannot get here (V8 refuses it and compiles); this is the bundle itself.
    throw new Error(`cannot load ${bundle}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  process.once('exit', (code) => {
    if (code === 0) loaded.save();
  });
  await (loaded.exports as { run(argv: string[]): Promise<void> }).run(argv);
  // The answer is out: leave once it is written, without waiting for the TLS connections to
  // close and for V8's last collections (10-30 ms after a command's output). Errors do not get
  // here: oclif has exited with their code.
  await Promise.all([process.stdout, process.stderr].map((stream) => new Promise<void>((done) => stream.write('', () => done()))));
  process.exit();
}
