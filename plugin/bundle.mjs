// Bundles the compiled plugin (dist/plugin/main.js, from `tsc`) into one CommonJS file,
// dist/plugin/bundle/main.cjs: oclif, the commands, the core and their libraries. Run by
// `npm run build`.
//
// CommonJS, not an ES module: Node 20 reads an ES module's source through TextDecoder, which took
// about 25 ms for this 1.2 MB file at every start; require() reads it natively. (Node 20 keeps no
// compiled code between runs; a V8 code cache made by hand through vm.Script cost as much to load
// as it saved. Node 22.1 and later cache it themselves, see plugin/bin/kubectl-metallb.)
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist/plugin/bundle', { recursive: true, force: true });

await build({
  entryPoints: ['dist/plugin/main.js'],
  outfile: 'dist/plugin/bundle/main.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  // client-node is loaded only for kubeconfigs the light reader does not handle (exec plugins and
  // the like), from node_modules; typescript (oclif's reader of tsconfig files, for plugins in
  // development) is never loaded at run time.
  external: ['@kubernetes/client-node', 'typescript'],
  // main.ts hands oclif its own location (import.meta.url), which CommonJS spells differently.
  define: { 'import.meta.url': '__bundleURL' },
  banner: { js: "const __bundleURL = require('node:url').pathToFileURL(__filename).href;" },
});
