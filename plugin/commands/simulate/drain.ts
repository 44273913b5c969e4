import * as Args from '@oclif/core/args';
import { clusterFlags, useColor, type OutputFormat } from '../../base.js';
import { ClusterCommand } from '../../cluster-command.js';
import { drainNode } from '../../services/diagnose.js';

/** `kubectl metallb simulate drain NODE`: what would move if the node went away; changes nothing. */
export default class SimulateDrain extends ClusterCommand {
  static override summary = 'Show what would move if a node went away (changes nothing).';
  static override description =
    'Each layer-2 address the node announces now and the node that would take it over, computed as the agents ' +
    'compute it (the node out, its pods gone); each BGP route the node advertises, to which peer, and the nodes that ' +
    'would still send it (ECMP shrinks) or none (the peer loses the route); and every Service nothing would announce ' +
    'afterwards, with why: its owner or advertisers go, its only ready pods run there, or the node held its only ' +
    'established BGP session.';
  static override examples = [{ command: 'kubectl metallb simulate drain node-2', description: 'Before draining node-2 for maintenance.' }];
  static override args = { node: Args.string({ required: true, description: 'The node name.' }) };
  static override flags = { ...clusterFlags };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SimulateDrain);
    const report = await this.withCluster(flags, (c) => drainNode(c.kube, { metallbNamespace: flags['metallb-namespace'], node: args.node, warn: this.warnLine }));
    this.warnConfiguration(report.configuration);
    await this.print(flags.output as OutputFormat, report, async () => {
      const { drawDrain } = await import('../../views/lists.js');
      return drawDrain({ report, color: useColor() });
    });
  }
}
