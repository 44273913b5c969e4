/**
 * MetalLB's configuration rules, one row each (test/fixtures/config/metallb-rules.ts), through the
 * parser: exactly the errors, warnings and pending references the row expects, nothing more.
 * The same rows run through `config check` (plugin/services) and the webhook (test/controller).
 */
import { inputOf, RULES, type Expect } from '../../test/fixtures/config/metallb-rules.js';
import { formatConfigError, parseConfig, type ConfigError, type ConfigWarning, type Pending } from './index.js';

/** `actual` holds exactly the expected findings: each expected one once, in any order, and no other. */
export function expectFindings(what: string, actual: readonly (ConfigError | ConfigWarning | Pending)[], expected: readonly Expect[] = []): void {
  const left = [...actual];
  const missing: Expect[] = [];
  for (const e of expected) {
    const i = left.findIndex((a) => a.source === e.source && a.path === e.path && a.message.includes(e.message));
    if (i < 0) missing.push(e);
    else left.splice(i, 1);
  }
  if (missing.length > 0 || left.length > 0) {
    throw new Error(
      `${what}:\n` +
        missing.map((m) => `  missing: ${m.source}: ${m.path}: ...${m.message}...`).join('\n') +
        (missing.length && left.length ? '\n' : '') +
        left.map((a) => `  unexpected: ${formatConfigError(a)}`).join('\n'),
    );
  }
}

describe('MetalLB rules through the parser', () => {
  it('has rows', () => {
    expect(RULES.length).toBeGreaterThan(80);
    expect(new Set(RULES.map((r) => r.name)).size).toBe(RULES.length);
  });

  it.each(RULES.map((r) => [r.name, r] as const))('%s', (_name, rule) => {
    const result = parseConfig(inputOf(rule));
    expectFindings('errors', result.errors, rule.errors);
    expectFindings('warnings', result.warnings, rule.warnings);
    expectFindings('pending', result.pending, rule.pending);
  });

  it('says why wherever we do not do what MetalLB does', () => {
    const undisclosed = RULES.filter((r) => {
      const refused = (r.errors ?? []).length > 0;
      const agrees = r.metallb === 'refuses' ? refused : !refused;
      return !agrees && !r.differs;
    });
    expect(undisclosed.map((r) => r.name)).toEqual([]);
  });
});
