import { readFile } from 'node:fs/promises';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { stringify } from 'yaml';
import { MetallbCommand, UserError } from '../../base.js';
import { DEFAULT_NAMESPACE } from '../../../kube/names.js';
import { checkFiles, formatFinding, formatSummary, type SourceFile } from '../../services/config-check.js';

/** `kubectl metallb config check FILE...`: validate configuration files offline. */
export default class ConfigCheck extends MetallbCommand {
  static override summary = 'Validate MetalLB configuration files offline.';
  static override description =
    'Reads the legacy ConfigMap metallb-system/config and/or metallb.io objects (IPAddressPool, L2Advertisement, ' +
    'BGPAdvertisement, BGPPeer, BFDProfile, Community) from YAML files, several documents per file, and checks them ' +
    'together with the same parser the controller uses. Errors come in file, document and line order; references to ' +
    'objects not among the files are pending, not errors; warnings (accepted as MetalLB accepts them) go to stderr. ' +
    'Exits 1 when anything is wrong.';
  static override examples = ['kubectl metallb config check config.yaml', 'kubectl metallb config check pools.yaml peers.yaml -o json'];
  static override strict = false;
  static override args = { file: Args.string({ required: true, description: 'YAML file(s) to check; - reads stdin' }) };
  static override flags = {
    // Named as the cluster commands name it (kubectl's -n is the Services' namespace there).
    'metallb-namespace': Flags.string({ default: DEFAULT_NAMESPACE, env: 'METALLB_NAMESPACE', summary: 'The namespace MetalLB runs in: its configuration must be there.' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(ConfigCheck);
    const files = await Promise.all((argv as string[]).map(readSource));
    const report = checkFiles(files, { namespace: flags['metallb-namespace'] });

    if (flags.output === 'json' || flags.output === 'yaml') {
      const data = { valid: report.errors.length === 0, ...report };
      process.stdout.write(flags.output === 'json' ? `${JSON.stringify(data, null, 2)}\n` : stringify(data));
    } else {
      for (const e of report.errors) process.stdout.write(`${formatFinding(e)}\n`);
      for (const p of report.pending) process.stdout.write(`pending: ${formatFinding(p)}\n`);
      for (const w of report.warnings) process.stderr.write(`warning: ${formatFinding(w)}\n`);
      for (const i of report.ignored) process.stderr.write(`note: ${formatFinding(i)}\n`);
      if (report.errors.length === 0) process.stdout.write(`${formatSummary(report.summary)}\n`);
      else process.stdout.write(`${report.errors.length} error${report.errors.length === 1 ? '' : 's'} found\n`);
    }
    if (report.errors.length > 0) this.exit(1);
  }
}

async function readSource(path: string): Promise<SourceFile> {
  try {
    const text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
    return { path: path === '-' ? '(stdin)' : path, text };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new UserError(`cannot read ${path}: ${why}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
