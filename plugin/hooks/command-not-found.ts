/**
 * An unknown command: one line naming what was typed as the user typed it (not oclif's internal
 * `explain:svc:web`), the closest commands, and every command there is.
 */
import type { Hook } from '@oclif/core';
import { closest } from '../../core/diagnose/closest.js';

const hook: Hook<'command_not_found'> = async function (options) {
  const typed = options.id.split(':');
  // oclif lists an alias as a command of its own: keep the real ones, aliases beside them.
  const aliasIds = new Set(options.config.commands.flatMap((c) => c.aliases));
  const visible = options.config.commands.filter((c) => !c.hidden && !aliasIds.has(c.id));
  const names = visible.map((c) => c.id.split(':').join(' ')).sort();
  const aliases = visible.flatMap((c) => c.aliases.map((a) => ({ alias: a.split(':').join(' '), name: c.id.split(':').join(' ') })));
  // Compare with as many words as each command has: "explain pod web" is near "explain svc".
  const score = (name: string) => typed.slice(0, name.split(' ').length).join(' ');
  const near = new Set<string>();
  for (const n of [...names, ...aliases.map((a) => a.alias)]) {
    if (closest(score(n), [n], 1).length > 0) near.add(aliases.find((a) => a.alias === n)?.name ?? n);
  }
  const suggestion = near.size > 0 ? `; did you mean ${[...near].map((n) => `"${n}"`).join(' or ')}?` : '';
  const words = [...typed, ...(options.argv ?? [])].join(' ');
  process.stderr.write(`error: unknown command "${words}" for "kubectl metallb"${suggestion} (commands: ${names.join(', ')}; kubectl metallb --help)\n`);
  this.exit(1);
};

export default hook;
