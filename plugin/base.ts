import { Command } from '@oclif/core/command';
import * as Errors from '@oclif/core/errors';
import * as Flags from '@oclif/core/flags';
import type * as Interfaces from '@oclif/core/interfaces';
import { dump } from 'js-yaml';
import { DEFAULT_NAMESPACE } from '../kube/names.js';

/** Output formats every command accepts: a table for people, json/yaml (data only, on stdout) for scripts. */
export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * An error the user can fix. Its message is printed as one line, with no stack trace, and the
 * command exits with `exitCode`. `status` is the HTTP status when an API call failed.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Whether to colour what goes to `stream`: only a terminal, never with NO_COLOR set or TERM=dumb. */
export function useColor(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

/**
 * The data as JSON or YAML text (json: 2-space indented, with a final newline). YAML by js-yaml:
 * about three times as fast as the yaml package's stringify (~0.2 s saved on 1,000 Services),
 * lines never folded, and strings a YAML 1.1 reader would take for something else (yes, on, ~)
 * quoted, as kubectl's own output does; undefined fields left out, as JSON leaves them.
 */
export function formatData(format: 'json' | 'yaml', data: unknown): string {
  return format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : dump(data, { noRefs: true, lineWidth: -1, skipInvalid: true });
}

/** The base of every `kubectl metallb` command: common flags, and the one place errors are rendered. */
export abstract class MetallbCommand extends Command {
  static override baseFlags = {
    output: Flags.string({ char: 'o', options: [...OUTPUT_FORMATS], default: 'table', summary: 'Output format.' }),
  };

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    // oclif's own flag/argument errors and our UserErrors are the user's to fix: one line, no stack.
    if (err instanceof UserError) {
      process.stderr.write(`error: ${err.message}\n`);
      this.exit(err.exitCode);
    }
    if (err instanceof Errors.ExitError) throw err;
    if (err instanceof Errors.CLIError) {
      process.stderr.write(`error: ${firstLine(err.message)}\n`);
      this.exit(2);
    }
    process.stderr.write(`internal error (a bug in kubectl-metallb, please report it): ${firstLine(err.message)}\n`);
    if (process.env.METALLB_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
    this.exit(70);
  }

  /** Data alone on stdout (json/yaml), or the table the view draws. */
  protected async print(format: OutputFormat, data: unknown, table: () => Promise<string> | string): Promise<void> {
    if (format === 'json' || format === 'yaml') process.stdout.write(formatData(format, data));
    else {
      const text = await table();
      process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
    }
  }
}

/** Flags of every command that talks to a cluster, named and resolved as kubectl's. */
export const clusterFlags = {
  kubeconfig: Flags.string({ summary: 'Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).', helpGroup: 'CLUSTER' }),
  context: Flags.string({ summary: 'The kubeconfig context to use.', helpGroup: 'CLUSTER' }),
  'metallb-namespace': Flags.string({
    summary: 'The namespace MetalLB runs in (its configuration, claims and status objects).',
    default: DEFAULT_NAMESPACE,
    env: 'METALLB_NAMESPACE',
    helpGroup: 'CLUSTER',
  }),
  'request-timeout': Flags.string({ summary: 'How long to wait for each API request (e.g. 5s, 1m, 500ms).', default: '30s', helpGroup: 'CLUSTER' }),
};

/** `-n` as kubectl's: the namespace of the Services. */
export const namespaceFlag = Flags.string({ char: 'n', summary: "The Services' namespace (default: the context's namespace)." });

export type ClusterFlags = Interfaces.InferredFlags<typeof clusterFlags>;

/** `30s`, `500ms`, `1m`, `2` (seconds) -> milliseconds. */
export function parseTimeout(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UserError(`--request-timeout ${JSON.stringify(text)} is not a duration such as 10s, 1m or 500ms`, 2);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  return ms === 0 ? 30_000 : ms;
}

/** The first line of a message; a line ending in ':' takes the next one along ("Missing 1 required arg: file"). */
export function firstLine(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const [first = message, second] = lines;
  return first.endsWith(':') && second ? `${first} ${second.split(/\s{2,}/)[0]}` : first;
}
