/**
 * The built plugin copied where no node_modules can be found (as krew unpacks it): package.json,
 * plugin/bin and the bundle, in a new directory under the system's temporary one.
 */
import { cpSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function copyBuiltPlugin(prefix: string, root = process.cwd()): string {
  if (!existsSync(join(root, 'dist/plugin/bundle/start.cjs'))) throw new Error('run `npm run build` first');
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  cpSync(join(root, 'plugin/bin'), join(dir, 'plugin/bin'), { recursive: true });
  cpSync(join(root, 'dist/plugin/bundle'), join(dir, 'dist/plugin/bundle'), { recursive: true });
  return dir;
}
