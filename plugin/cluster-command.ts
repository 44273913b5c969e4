import { connect, type Connection } from './cluster.js';
import { MetallbCommand, parseTimeout, type ClusterFlags } from './base.js';
import type { ConfigurationNote } from './services/diagnose.js';

/** A command that reads the cluster: connects as kubectl would, and always lets go of the connection. */
export abstract class ClusterCommand extends MetallbCommand {
  /** Runs `body` with a connection from the common flags, closing it afterwards. */
  protected async withCluster<T>(flags: ClusterFlags, body: (c: Connection) => Promise<T>): Promise<T> {
    const connection = await connect({
      ...(flags.kubeconfig !== undefined && { kubeconfig: flags.kubeconfig }),
      ...(flags.context !== undefined && { context: flags.context }),
      timeoutMs: parseTimeout(flags['request-timeout']),
    });
    try {
      return await body(connection);
    } finally {
      connection.kube.close();
    }
  }

  /** A warning on stderr, one line; the answer on stdout stays data alone. */
  protected readonly warnLine = (text: string): void => {
    process.stderr.write(`warning: ${text}\n`);
  };

  /** On stderr: the answer comes from the last good configuration, or from none. */
  protected warnConfiguration(note: ConfigurationNote): void {
    if (note.source === 'current') return;
    const n = note.errors.length;
    const what =
      note.source === 'last-good' ? 'MetalLB keeps running on the last good configuration, shown here' : 'no last good configuration is recorded, so MetalLB applies none';
    process.stderr.write(
      `warning: the current configuration has ${n} error${n === 1 ? '' : 's'} (${note.errors[0] ?? ''}${n > 1 ? ', ...' : ''}); ${what}; kubectl metallb config check\n`,
    );
  }
}
