import { ApiError } from './errors.js';
import { labelSelectorFromObject, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'frontend', version: '3' };

  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['app=db', false],
    ['missing!=x', true], // != selects objects without the key, as in Go
    ['app', true],
    ['!app', false],
    ['!missing', true],
    ['app in (web, db)', true],
    ['app in (db)', false],
    ['app notin (db,cache)', true],
    ['missing notin (a)', true],
    ['app=web,tier=frontend', true],
    ['app=web, tier=backend', false],
    ['version>2', true],
    ['version<3', false],
    ['app=web,!missing,tier in (frontend)', true],
  ])('%j matches: %s', (selector, expected) => {
    expect(matchesLabels(parseLabelSelector(selector), labels)).toBe(expected);
  });

  it.each(['app in ()', 'app in (a', '=x', 'app=web,', 'app=web tier=x', 'app in a', 'bad key!=x', 'version>x'])('rejects %j', (selector) => {
    expect(() => parseLabelSelector(selector)).toThrow(ApiError);
  });

  it('reads `key=` as "the empty value"', () => {
    expect(matchesLabels(parseLabelSelector('app='), { app: '' })).toBe(true);
    expect(matchesLabels(parseLabelSelector('app='), { app: 'web' })).toBe(false);
  });

  it('reports a 400 for a syntax error', () => {
    try {
      parseLabelSelector('a in (b');
      throw new Error('no error');
    } catch (e) {
      expect((e as ApiError).code).toBe(400);
      expect((e as ApiError).status.reason).toBe('BadRequest');
    }
  });

  it('converts metav1.LabelSelector objects', () => {
    const sel = labelSelectorFromObject({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['frontend', 'edge'] },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    });
    expect(matchesLabels(sel, labels)).toBe(true);
    expect(matchesLabels(sel, { ...labels, legacy: 'yes' })).toBe(false);
    expect(matchesLabels(labelSelectorFromObject({}), {})).toBe(true);
    expect(() => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Gt' }] })).toThrow(ApiError);
  });
});

describe('field selectors', () => {
  const fields = { 'metadata.name': 'web', 'metadata.namespace': 'default', 'spec.nodeName': '' };

  it.each([
    ['metadata.name=web', true],
    ['metadata.name==web', true],
    ['metadata.name!=web', false],
    ['metadata.name=web,metadata.namespace=default', true],
    ['metadata.name=web,metadata.namespace!=default', false],
    ['spec.nodeName=', true],
    ['spec.nodeName!=', false],
  ])('%j matches: %s', (selector, expected) => {
    expect(matchesFields(parseFieldSelector(selector), fields)).toBe(expected);
  });

  it('unescapes values and splits only on unescaped commas', () => {
    expect(parseFieldSelector('a=x\\,y,b!=z\\=w')).toEqual([
      { field: 'a', operator: 'Equals', value: 'x,y' },
      { field: 'b', operator: 'NotEquals', value: 'z=w' },
    ]);
  });

  it('rejects a term without an operator', () => {
    expect(() => parseFieldSelector('metadata.name')).toThrow(ApiError);
  });
});
