import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { clusterFlags, useColor, type OutputFormat } from '../base.js';
import { ClusterCommand } from '../cluster-command.js';
import { listPools } from '../services/diagnose.js';

/** `kubectl metallb pools [NAME]`: every address pool, its size and use. */
export default class Pools extends ClusterCommand {
  static override summary = 'List address pools: ranges, protocol, size, used and free addresses.';
  static override description =
    'Every address pool MetalLB runs on, from the metallb.io IPAddressPool objects and from the legacy ConfigMap alike, ' +
    'with its ranges, protocols (the advertisements selecting it), auto-assign, the namespaces it serves, and its size, ' +
    'used and free addresses counted as the controller counts them (without .0/.255 when it avoids buggy IPs; huge IPv6 ' +
    'ranges as powers of two). With -v, which Service holds which address (shared addresses with all holders).';
  static override examples = [
    { command: 'kubectl metallb pools', description: 'Every pool, sorted by name.' },
    { command: 'kubectl metallb pools production -v', description: 'One pool and who holds each of its addresses.' },
    { command: 'kubectl metallb pools -n shop', description: 'The pools Services in namespace shop may use.' },
    { command: 'kubectl metallb pools -o json', description: 'The same as data (sizes as exact decimal strings).' },
  ];
  static override args = { name: Args.string({ description: 'Only this pool.' }) };
  static override flags = {
    ...clusterFlags,
    verbose: Flags.boolean({ char: 'v', summary: 'List the held addresses and their holders.' }),
    namespace: Flags.string({ char: 'n', summary: 'Only the pools Services of this namespace may use.' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pools);
    const report = await this.withCluster(flags, (c) =>
      listPools(c.kube, {
        metallbNamespace: flags['metallb-namespace'],
        ...(args.name !== undefined && { name: args.name }),
        ...(flags.namespace !== undefined && { namespace: flags.namespace }),
        verbose: flags.verbose,
      }),
    );
    this.warnConfiguration(report.configuration);
    await this.print(flags.output as OutputFormat, report, async () => {
      const { drawPools } = await import('../views/lists.js');
      return drawPools({ pools: report.pools, verbose: flags.verbose, bar: process.stdout.isTTY === true, color: useColor() });
    });
  }
}
