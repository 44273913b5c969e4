import * as Args from '@oclif/core/args';
import { clusterFlags, namespaceFlag, useColor, type OutputFormat } from '../../base.js';
import { ClusterCommand } from '../../cluster-command.js';
import { explainOne } from '../../services/diagnose.js';

/** `kubectl metallb explain svc NAME`: why a Service has (or has not) its address, and where it is announced. */
export default class ExplainService extends ClusterCommand {
  static override aliases = ['explain:service'];
  static override summary = 'Explain one Service: the verdict first, then the evidence.';
  static override description =
    'The verdict in one line (assigned from which pool and announced by which node, or pending and exactly why), ' +
    'the fix when something is wrong, then the evidence: the request and where each part comes from (deprecated ' +
    'annotations flagged), each pool and why it fits or not, sharing, traffic policy and ready endpoints, the layer-2 ' +
    'owner and the next candidate, BGP advertisements, configuration errors, where the cluster shows otherwise than ' +
    'the controller and agents compute (a stale status, an agent down), and recent events. Computed with the same ' +
    'functions as the controller and the agents.';
  static override examples = [
    { command: 'kubectl metallb explain svc web -n shop', description: 'Why shop/web has its address, and who announces it.' },
    { command: 'kubectl metallb explain service web -o json', description: 'The same as data.' },
  ];
  static override args = { name: Args.string({ required: true, description: 'The Service name.' }) };
  static override flags = { ...clusterFlags, namespace: namespaceFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(ExplainService);
    const report = await this.withCluster(flags, (c) =>
      explainOne(c.kube, { metallbNamespace: flags['metallb-namespace'], warn: this.warnLine, namespace: flags.namespace ?? c.namespace, name: args.name }),
    );
    await this.print(flags.output as OutputFormat, report, async () => {
      const { drawExplain } = await import('../../views/explain.js');
      return drawExplain({ explanation: report, now: report.readAt, color: useColor() });
    });
  }
}
