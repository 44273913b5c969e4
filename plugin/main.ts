/**
 * The plugin as one module: every command and hook, and oclif's entry point. `npm run build`
 * bundles this (with oclif, yaml and the core; each view a chunk loaded when it is drawn) into
 * dist/plugin/bundle/main.cjs, which plugin/bin/kubectl-metallb runs
 * and package.json's oclif section names (explicit command strategy). A kubectl plugin starts for
 * every call: loading some thousand files of node_modules one by one cost more than the cluster
 * reads (0.45 s for `--version` alone); one file costs a fraction of that (see plugin/bundle.mjs).
 */
import { execute } from '@oclif/core/execute';
import { settings } from '@oclif/core/settings';
import Check from './commands/config/check.js';
import Convert from './commands/config/convert.js';
import ExplainSvc from './commands/explain/svc.js';
import Peers from './commands/peers.js';
import Pools from './commands/pools.js';
import Services from './commands/services.js';
import Drain from './commands/simulate/drain.js';
import commandNotFound from './hooks/command-not-found.js';

export const COMMANDS = {
  'config:check': Check,
  'config:convert': Convert,
  'explain:svc': ExplainSvc,
  peers: Peers,
  pools: Pools,
  services: Services,
  'simulate:drain': Drain,
};

export { commandNotFound };

interface FlagShape {
  type: string;
  char?: string;
}

/**
 * kubectl users put global flags first (`kubectl --context prod get svc`), and kubectl hands a
 * plugin everything after its name as it was typed: `kubectl metallb --kubeconfig k pools`.
 * oclif takes flags only after the command, so the leading ones (and the values of those that
 * take one, as the commands declare them) move behind the rest.
 */
export function hoistFlags(argv: readonly string[], commands: Readonly<Record<string, { flags?: Record<string, FlagShape>; baseFlags?: Record<string, FlagShape> }>>): string[] {
  const takesValue = new Set<string>();
  for (const c of Object.values(commands)) {
    for (const [name, f] of Object.entries({ ...c.baseFlags, ...c.flags })) {
      if (f.type !== 'option') continue;
      takesValue.add(`--${name}`);
      if (f.char) takesValue.add(`-${f.char}`);
    }
  }
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '--') i += takesValue.has(argv[i]!) ? 2 : 1;
  if (i === 0 || i >= argv.length) return [...argv];
  return [...argv.slice(i), ...argv.slice(0, i)];
}

/** Runs the command line `argv` (default: this process's), as kubectl invoked it. */
export async function run(argv: string[] = process.argv.slice(2)): Promise<void> {
  // The plugin runs its compiled bundle, always: left on, oclif looks for TypeScript sources and
  // ts-node whenever NODE_ENV is development or test, and warns on stderr that it found none.
  settings.enableAutoTranspile = false;
  await execute({ args: hoistFlags(argv, COMMANDS), dir: import.meta.url });
}
