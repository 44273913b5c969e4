// Bundles the compiled plugin (dist/plugin/main.js, from `tsc`) into dist/plugin/bundle/, which
// needs nothing from node_modules at run time. Run by `npm run build`.
//
// - main.cjs: oclif, the commands, the core and their libraries, in one CommonJS file. CommonJS,
//   not an ES module: Node 20 reads an ES module's source through TextDecoder, which took about
//   25 ms for this 1.2 MB file at every start; start.cjs compiles it with a V8 code cache kept
//   between runs (Node 20 has no such cache of its own).
// - client-node.cjs: client-node's KubeConfig, for the kubeconfigs our own reader leaves to it
//   (exec plugins, auth providers, proxies: plugin/kubeconfig.ts). 1.5 MB and about 0.1 s to
//   load, so only those runs load it.
// - start.cjs: plugin/start.ts, which plugin/bin/kubectl-metallb loads first.
// - All are ASCII: a file with one character beyond it (a regular expression of ansis, our 'µs'
//   duration unit) is read into a two-byte string and scanned as one, which cost ~10 ms at start.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { build } from 'esbuild';

const CLIENT_NODE_CONFIG = '@kubernetes/client-node/dist/config.js';

rmSync('dist/plugin/bundle', { recursive: true, force: true });

const common = { bundle: true, format: 'cjs', platform: 'node', target: 'node20', logLevel: 'warning' };

await build({
  ...common,
  entryPoints: ['dist/plugin/main.js'],
  outfile: 'dist/plugin/bundle/main.cjs',
  // typescript is oclif's reader of tsconfig files, for plugins in development: never loaded here.
  external: ['typescript'],
  plugins: [
    {
      // oclif sorts the command ids with localeCompare, whose first call builds an ICU collator:
      // ~10 ms of every start, to order seven ASCII ids. Compared by code units instead (the same
      // order for them); the build fails if oclif's code changes under this.
      name: 'oclif-sort-without-icu',
      setup(b) {
        b.onLoad({ filter: /@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/ }, (args) => {
          const code = readFileSync(args.path, 'utf8');
          const from = '.sort((a, b) => a.id.localeCompare(b.id))';
          if (code.split(from).length !== 2) throw new Error(`${args.path}: expected one "${from}" (plugin/bundle.mjs patches it)`);
          return { contents: code.replace(from, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'), loader: 'js' };
        });
      },
    },
    {
      name: 'client-node-beside',
      setup(b) {
        // cluster.ts imports client-node's config module lazily: from the file built below.
        b.onResolve({ filter: /^@kubernetes\/client-node\/dist\/config\.js$/ }, () => ({ path: './client-node.cjs', external: true }));
      },
    },
  ],
  // main.ts hands oclif its own location (import.meta.url), which CommonJS spells differently.
  define: { 'import.meta.url': '__bundleURL' },
  // import() of client-node.cjs as require(): start.cjs compiles this file through node:vm, where
  // a real import() needs --experimental-vm-modules on Node 20.
  supported: { 'dynamic-import': false },
  banner: { js: "const __bundleURL = require('node:url').pathToFileURL(__filename).href;" },
});

await build({
  ...common,
  stdin: { contents: `export { KubeConfig } from '${CLIENT_NODE_CONFIG}';`, resolveDir: process.cwd(), loader: 'js' },
  outfile: 'dist/plugin/bundle/client-node.cjs',
});

// start.cjs: what plugin/bin/kubectl-metallb loads first; it loads main.cjs with a V8 code cache (plugin/start.ts).
await build({ ...common, entryPoints: ['dist/plugin/start.js'], outfile: 'dist/plugin/bundle/start.cjs' });

// esbuild escapes what is beyond ASCII in strings, not in regular expression literals; an escape
// means the same there (and in strings, identifiers and comments), so escape what it left.
for (const file of ['dist/plugin/bundle/main.cjs', 'dist/plugin/bundle/client-node.cjs', 'dist/plugin/bundle/start.cjs']) {
  const text = readFileSync(file, 'utf8');
  // eslint-disable-next-line no-control-regex
  const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) writeFileSync(file, ascii);
}
