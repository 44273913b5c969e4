// Packs the built plugin for krew: dist/krew/metallb-ts-plugin.tar.gz (what a user's machine
// needs: package.json for oclif, plugin/bin, the bundle, the completion module) and
// dist/krew/metallb.yaml, plugin/krew/metallb.yaml with this archive's sha256 and version filled
// in (and its uri from METALLB_PLUGIN_URI, when a release gives one). Run by `npm run package`,
// after `npm run build`. The archive is the same bytes for the same build (sorted, owner 0,
// mtime 0), so the checksum says what was built.
//
//   kubectl krew install --manifest=dist/krew/metallb.yaml --archive=dist/krew/metallb-ts-plugin.tar.gz
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { gzipSync } from 'node:zlib';
import { parseDocument } from 'yaml';

/** What the archive holds, relative to the repository (and to where krew unpacks it). */
export const ARCHIVE_FILES = [
  'package.json',
  'plugin/bin/package.json',
  'plugin/bin/kubectl-metallb',
  'plugin/bin/kubectl_complete-metallb',
  'dist/plugin/bundle',
  'dist/plugin/completion.js',
];

for (const f of ARCHIVE_FILES) if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first`);

mkdirSync('dist/krew', { recursive: true });
const tar = execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--mode=u+rw,go+r-w', '-cf', '-', ...ARCHIVE_FILES], {
  maxBuffer: 256 << 20,
});
const archive = gzipSync(tar, { level: 9 });
writeFileSync('dist/krew/metallb-ts-plugin.tar.gz', archive);
const sha256 = createHash('sha256').update(archive).digest('hex');

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
const manifest = parseDocument(readFileSync('plugin/krew/metallb.yaml', 'utf8'));
manifest.setIn(['spec', 'version'], `v${version}`);
manifest.setIn(['spec', 'platforms', 0, 'sha256'], sha256);
if (process.env.METALLB_PLUGIN_URI) manifest.setIn(['spec', 'platforms', 0, 'uri'], process.env.METALLB_PLUGIN_URI);
writeFileSync('dist/krew/metallb.yaml', manifest.toString());
process.stdout.write(`dist/krew/metallb-ts-plugin.tar.gz (${archive.length} bytes, sha256 ${sha256})\ndist/krew/metallb.yaml\n`);
