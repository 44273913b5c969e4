// Bundles the compiled plugin (dist/plugin/main.js, from `tsc`) into dist/plugin/bundle/: one
// module for oclif, the commands, the core and their libraries, plus chunks for what only some
// runs need (each view, loaded when it is drawn). Run by `npm run build`.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// Chunk names carry hashes: clear out the last build's.
rmSync('dist/plugin/bundle', { recursive: true, force: true });

await build({
  entryPoints: ['dist/plugin/main.js'],
  outdir: 'dist/plugin/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  // client-node is loaded only for kubeconfigs the light reader does not handle (exec plugins and
  // the like), from node_modules; typescript (oclif's reader of tsconfig files, for plugins in
  // development) is never loaded at run time.
  external: ['@kubernetes/client-node', 'typescript'],
  // CommonJS packages inside an ES module bundle still call require() for Node's own modules.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
