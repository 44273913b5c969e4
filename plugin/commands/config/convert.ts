import { readFile } from 'node:fs/promises';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { stringify } from 'yaml';
import { MetallbCommand, UserError } from '../../base.js';
import { DEFAULT_NAMESPACE } from '../../../kube/names.js';
import { convertConfigMap } from '../../services/config-convert.js';

/** `kubectl metallb config convert FILE`: the legacy ConfigMap as metallb.io objects. */
export default class ConfigConvert extends MetallbCommand {
  static override summary = 'Convert the legacy ConfigMap into the equivalent metallb.io objects.';
  static override description =
    'Reads the ConfigMap metallb-system/config (its manifest, or the config text alone) and prints the IPAddressPools, ' +
    "L2Advertisements, BGPAdvertisements, BGPPeers, BFDProfiles and Community that mean the same, named as MetalLB's " +
    "configmaptocrs names them, ready for kubectl apply -f. Parsed with the controller's parser, they yield the same " +
    'configuration. A ConfigMap with errors is not converted: the errors are printed on stderr and the command exits 1.';
  static override examples = [
    { command: 'kubectl metallb config convert configmap.yaml > metallb.yaml', description: 'Convert, then check and apply.' },
    { command: 'kubectl get configmap -n metallb-system config -o yaml | kubectl metallb config convert - | kubectl apply -f -', description: 'Straight from the cluster.' },
    { command: 'kubectl metallb config convert configmap.yaml -o json', description: 'As a v1 List.' },
  ];
  static override args = { file: Args.string({ required: true, description: 'The ConfigMap manifest (or its config text); - reads stdin' }) };
  static override flags = {
    'metallb-namespace': Flags.string({ default: DEFAULT_NAMESPACE, env: 'METALLB_NAMESPACE', summary: 'The namespace the objects go to (where MetalLB runs).' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ConfigConvert);
    const text = await readSource(args.file);
    const converted = convertConfigMap(text, flags['metallb-namespace']);
    if (!converted.ok) {
      for (const e of converted.errors) process.stderr.write(`error: ${e}\n`);
      this.exit(1);
      return;
    }
    for (const w of converted.warnings) process.stderr.write(`warning: ${w}\n`);
    if (flags.output === 'json') process.stdout.write(`${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: converted.objects }, null, 2)}\n`);
    else process.stdout.write(converted.objects.map((o) => stringify(o)).join('---\n'));
  }
}

async function readSource(path: string): Promise<string> {
  try {
    if (path !== '-') return await readFile(path, 'utf8');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`);
  }
}
