// Bundles the compiled plugin (dist/plugin/main.js, from `tsc`) into dist/plugin/bundle/: one
// module for oclif, the commands, the core and their libraries, plus chunks for what only some
// runs need (ink and the views, loaded when a table is drawn). Run by `npm run build`.
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
  // React's production build: its development build checks every element and costs twice the time.
  define: { 'process.env.NODE_ENV': '"production"' },
  // React's production build: its development build checks every element and costs twice the time.
  // client-node is loaded only for kubeconfigs the light reader does not handle (exec plugins and
  // the like), from node_modules; typescript and the devtools are never loaded at run time.
  external: ['@kubernetes/client-node', 'typescript', 'react-devtools-core'],
  // CommonJS packages inside an ES module bundle still call require() for Node's own modules.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
