import * as Flags from '@oclif/core/flags';
import { clusterFlags, useColor, type OutputFormat } from '../base.js';
import { ClusterCommand } from '../cluster-command.js';
import { listPeers } from '../services/diagnose.js';

/** `kubectl metallb peers`: every node x BGP peer session. */
export default class Peers extends ClusterCommand {
  static override summary = 'List BGP sessions: every node x peer, state, uptime, prefixes, hold time, BFD, last error.';
  static override description =
    'Every BGP session the configuration asks for (each BGPPeer on the nodes its nodeSelectors select), with what the ' +
    "node's speaker publishes in its BGPSessionState object: state and for how long, prefixes sent and received, " +
    'negotiated hold time, BFD state and the last error; a session with no status is shown as unknown. Then how many ' +
    'are established.';
  static override examples = [
    { command: 'kubectl metallb peers', description: 'Every session.' },
    { command: 'kubectl metallb peers --node node-2 -o json', description: "One node's sessions as data." },
  ];
  static override flags = { ...clusterFlags, node: Flags.string({ summary: "Only this node's sessions." }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(Peers);
    const report = await this.withCluster(flags, (c) => listPeers(c.kube, { metallbNamespace: flags['metallb-namespace'], ...(flags.node !== undefined && { node: flags.node }) }));
    this.warnConfiguration(report.configuration);
    await this.print(flags.output as OutputFormat, report, async () => {
      const { drawPeers } = await import('../views/lists.js');
      return drawPeers({ sessions: report.sessions, established: report.established, total: report.total, now: report.readAt, color: useColor() });
    });
  }
}
