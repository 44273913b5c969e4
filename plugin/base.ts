import { Command, Errors, Flags } from '@oclif/core';

/** Output formats every command accepts: a table for people, json/yaml (data only, on stdout) for scripts. */
export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * An error the user can fix. Its message is printed as one line, with no stack trace, and the
 * command exits with `exitCode`.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
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
}

/** The first line of a message; a line ending in ':' takes the next one along ("Missing 1 required arg: file"). */
function firstLine(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const [first = message, second] = lines;
  return first.endsWith(':') && second ? `${first} ${second.split(/\s{2,}/)[0]}` : first;
}
