import { formatCommunity, parseCommunity } from './community.js';
import { formatSeconds, parseDuration } from './duration.js';
import { selectorMatches } from './selector.js';
import type { Community, LabelSelector } from './types.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['1m30s', 90_000],
    ['300ms', 300],
    ['1h', 3_600_000],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['0', 0],
    ['0s', 0],
    ['+3s', 3000],
    ['1h2m3s4ms', 3_723_004],
    ['1500us', 1.5],
    ['2µs', 0.002],
  ])('%s is %d ms', (text, ms) => {
    const d = parseDuration(text);
    if (!d.ok) throw new Error(d.error);
    expect(d.value.milliseconds).toBeCloseTo(ms, 9);
    expect(d.value.seconds).toBeCloseTo(ms / 1000, 12);
  });

  it.each([
    ['ten seconds', /not a duration/],
    ['-5s', /negative/],
    ['', /not a duration/],
    ['5', /units/],
    ['5 s', /units/],
    ['s', /units/],
    ['.s', /units/],
    ['5d', /units/],
    ['1s2', /units/],
    ['9'.repeat(30) + 'h', /too long/],
    [90, /is not a duration/],
    [null, /is not a duration/],
  ])('rejects %p', (text, why) => {
    const d = parseDuration(text);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error).toMatch(why);
  });

  it.each([
    [0, '0s'],
    [90, '1m30s'],
    [3600, '1h0m0s'],
    [5, '5s'],
  ])('formats %d seconds as %s', (s, text) => expect(formatSeconds(s)).toBe(text));
});

describe('parseCommunity', () => {
  it.each<[string, Community]>([
    ['1234:1', { kind: 'standard', asn: 1234, value: 1 }],
    ['0:0', { kind: 'standard', asn: 0, value: 0 }],
    ['65535:65282', { kind: 'standard', asn: 65535, value: 65282 }],
    ['large:123:456:789', { kind: 'large', global: 123, local1: 456, local2: 789 }],
    ['large:4294967295:0:4294967295', { kind: 'large', global: 4294967295, local1: 0, local2: 4294967295 }],
  ])('%s', (text, expected) => {
    const c = parseCommunity(text);
    if (!c.ok) throw new Error(c.error);
    expect(c.value).toEqual(expected);
    expect(formatCommunity(c.value)).toBe(text);
  });

  it.each([
    ['1234', /"asn:value"/],
    ['70000:1', /0 to 65535/],
    ['1:70000', /0 to 65535/],
    ['large:1:2', /three parts/],
    ['large:1:2:4294967296', /0 to 4294967295/],
    ['1:2:3', /"asn:value"/],
    ['-1:2', /0 to 65535/],
    ['0x10:1', /0 to 65535/],
    [' 1:2', /0 to 65535/],
    ['', /"asn:value"/],
    [1234, /is not a community/],
    [undefined, /is not a community/],
  ])('rejects %p', (text, why) => {
    const c = parseCommunity(text);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.error).toMatch(why);
  });
});

describe('selectorMatches', () => {
  const sel = (matchLabels: Record<string, string>, matchExpressions: LabelSelector['matchExpressions'] = []): LabelSelector => ({
    matchLabels,
    matchExpressions,
  });
  const labels = { zone: 'a', rack: '1', 'kubernetes.io/hostname': 'node1' };
  it.each<[string, LabelSelector, boolean]>([
    ['empty matches all', sel({}), true],
    ['matching label', sel({ zone: 'a' }), true],
    ['other value', sel({ zone: 'b' }), false],
    ['missing label', sel({ dc: 'x' }), false],
    ['In hit', sel({}, [{ key: 'rack', operator: 'In', values: ['1', '2'] }]), true],
    ['In miss', sel({}, [{ key: 'rack', operator: 'In', values: ['3'] }]), false],
    ['In on absent key', sel({}, [{ key: 'dc', operator: 'In', values: ['x'] }]), false],
    ['NotIn hit', sel({}, [{ key: 'rack', operator: 'NotIn', values: ['1'] }]), false],
    ['NotIn miss', sel({}, [{ key: 'rack', operator: 'NotIn', values: ['2'] }]), true],
    ['NotIn on absent key', sel({}, [{ key: 'dc', operator: 'NotIn', values: ['x'] }]), true],
    ['Exists', sel({}, [{ key: 'zone', operator: 'Exists', values: [] }]), true],
    ['Exists absent', sel({}, [{ key: 'dc', operator: 'Exists', values: [] }]), false],
    ['DoesNotExist', sel({}, [{ key: 'dc', operator: 'DoesNotExist', values: [] }]), true],
    ['DoesNotExist present', sel({}, [{ key: 'zone', operator: 'DoesNotExist', values: [] }]), false],
    ['labels AND expressions', sel({ zone: 'a' }, [{ key: 'rack', operator: 'In', values: ['2'] }]), false],
    ['prototype keys are not labels', sel({}, [{ key: 'constructor', operator: 'Exists', values: [] }]), false],
  ])('%s', (_name, s, expected) => expect(selectorMatches(s, labels)).toBe(expected));
});
