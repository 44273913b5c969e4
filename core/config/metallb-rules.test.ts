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

describe('references that wait, alike', () => {
  const pending = (yaml: string) => parseConfig(inputOf({ name: '', from: '', metallb: 'waits', docs: yaml.split('\n---\n') }));

  it('a peer waiting for its BFD profile or Secret runs without it', () => {
    const {
      config,
      errors,
      pending: waiting,
    } = pending(`apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, bfdProfile: fast, passwordSecret: {name: auth}}`);
    expect(errors).toEqual([]);
    expect(waiting.map((p) => p.path)).toEqual(['spec.passwordSecret', 'spec.bfdProfile']);
    expect(config.peers).toEqual([expect.objectContaining({ name: 'tor', passwordSecret: { namespace: 'metallb-system', name: 'auth' } })]);
    expect(config.peers[0]?.bfdProfile).toBeUndefined();
    expect(config.peers[0]?.password).toBeUndefined();
  });

  it('an advertisement waiting for a pool covers the pools that exist', () => {
    const { config, pending: waiting } = pending(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: now, namespace: metallb-system}
spec: {addresses: [198.51.100.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec: {ipAddressPools: [now, later]}`);
    expect(waiting.map((p) => p.message)).toEqual([expect.stringContaining('pool "later" does not exist yet')]);
    expect(config.l2Advertisements.map((a) => a.ipAddressPools)).toEqual([['now', 'later']]);
  });

  it('an advertisement waiting for a community alias is left out until it is defined', () => {
    const adv = `apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: tagged, namespace: metallb-system}
spec: {communities: [no-export]}`;
    const waiting = pending(adv);
    expect(waiting.errors).toEqual([]);
    expect(waiting.config.bgpAdvertisements).toEqual([]);
    const defined = pending(`${adv}\n---\napiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: aliases, namespace: metallb-system}
spec: {communities: [{name: no-export, value: "65535:65281"}]}`);
    expect(defined.pending).toEqual([]);
    expect(defined.config.bgpAdvertisements.map((a) => a.communities)).toEqual([[{ kind: 'standard', asn: 65535, value: 65281 }]]);
  });
});
