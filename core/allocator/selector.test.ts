import type { LabelSelector } from '../config/types.js';
import { matches } from './selector.js';

const sel = (matchLabels: Record<string, string>, matchExpressions: LabelSelector['matchExpressions'] = []): LabelSelector => ({
  matchLabels,
  matchExpressions,
});

describe('matches', () => {
  test.each<{ name: string; sel: LabelSelector; labels: Record<string, string>; want: boolean }>([
    { name: 'empty selector matches anything', sel: sel({}), labels: {}, want: true },
    { name: 'matchLabels equal', sel: sel({ app: 'web' }), labels: { app: 'web', x: 'y' }, want: true },
    { name: 'matchLabels different value', sel: sel({ app: 'web' }), labels: { app: 'db' }, want: false },
    { name: 'matchLabels missing key', sel: sel({ app: 'web' }), labels: {}, want: false },
    { name: 'In hit', sel: sel({}, [{ key: 'tier', operator: 'In', values: ['a', 'b'] }]), labels: { tier: 'b' }, want: true },
    { name: 'In miss', sel: sel({}, [{ key: 'tier', operator: 'In', values: ['a'] }]), labels: { tier: 'c' }, want: false },
    { name: 'In on absent key', sel: sel({}, [{ key: 'tier', operator: 'In', values: ['a'] }]), labels: {}, want: false },
    { name: 'NotIn on absent key', sel: sel({}, [{ key: 'tier', operator: 'NotIn', values: ['a'] }]), labels: {}, want: true },
    { name: 'NotIn hit', sel: sel({}, [{ key: 'tier', operator: 'NotIn', values: ['a'] }]), labels: { tier: 'a' }, want: false },
    { name: 'Exists', sel: sel({}, [{ key: 'tier', operator: 'Exists', values: [] }]), labels: { tier: '' }, want: true },
    { name: 'Exists absent', sel: sel({}, [{ key: 'tier', operator: 'Exists', values: [] }]), labels: {}, want: false },
    { name: 'DoesNotExist', sel: sel({}, [{ key: 'tier', operator: 'DoesNotExist', values: [] }]), labels: {}, want: true },
    { name: 'DoesNotExist present', sel: sel({}, [{ key: 'tier', operator: 'DoesNotExist', values: [] }]), labels: { tier: 'a' }, want: false },
    { name: 'labels and expressions are ANDed', sel: sel({ app: 'web' }, [{ key: 'tier', operator: 'Exists', values: [] }]), labels: { app: 'web' }, want: false },
    { name: 'inherited keys are not labels', sel: sel({}, [{ key: 'toString', operator: 'Exists', values: [] }]), labels: {}, want: false },
  ])('$name', ({ sel, labels, want }) => {
    expect(matches(sel, labels)).toBe(want);
  });
});
