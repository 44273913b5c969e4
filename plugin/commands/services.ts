import * as Flags from '@oclif/core/flags';
import { clusterFlags, namespaceFlag, useColor, type OutputFormat } from '../base.js';
import { ClusterCommand } from '../cluster-command.js';
import { listServices } from '../services/diagnose.js';

/** `kubectl metallb services`: every LoadBalancer Service and its state in one word. */
export default class Services extends ClusterCommand {
  static override aliases = ['svc'];
  static override summary = 'List LoadBalancer Services: IPs, pool, announcing node and status.';
  static override description =
    'Every LoadBalancer Service MetalLB handles: its addresses, pool, protocol, the node announcing it over layer 2 ' +
    '(computed as the agents compute it, and what its ServiceL2Status says when that differs) or the nodes advertising ' +
    'it over BGP (and whether their sessions are up), its sharing key, and a ' +
    'status word: ok, pending, not announced or config error, with the reason below the table.';
  static override examples = [
    { command: 'kubectl metallb services', description: "The Services of the context's namespace." },
    { command: 'kubectl metallb svc -A', description: 'Every namespace.' },
    { command: 'kubectl metallb services -n shop -o yaml', description: 'As data.' },
  ];
  static override flags = {
    ...clusterFlags,
    namespace: namespaceFlag,
    'all-namespaces': Flags.boolean({ char: 'A', summary: 'Services of every namespace.', exclusive: ['namespace'] }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Services);
    const report = await this.withCluster(flags, (c) =>
      listServices(c.kube, { metallbNamespace: flags['metallb-namespace'], warn: this.warnLine, ...(!flags['all-namespaces'] && { namespace: flags.namespace ?? c.namespace }) }),
    );
    this.warnConfiguration(report.configuration);
    await this.print(flags.output as OutputFormat, report, async () => {
      const { drawServices } = await import('../views/lists.js');
      return drawServices({ services: report.services, namespace: report.namespace, color: useColor() });
    });
  }
}
