/**
 * -o json|yaml: the same data either way, whatever the strings hold; YAML safe for YAML 1.1
 * readers (kubectl's, go-yaml) as well as 1.2 ones.
 */
import { load } from 'js-yaml';
import { parse } from 'yaml';
import { formatData } from './base.js';

const tricky = {
  words: ['yes', 'no', 'on', 'off', 'y', 'n', 'true', 'null', '~', ''],
  numbers: ['1.0', '0x1F', '012', '1e3', '.inf'],
  marks: ['a: b', '- x', '#c', ' lead', 'trail ', '*', '&a', '!t', '{x}', '[y]', '%p', '@q', '`r', '|', '>'],
  text: ['multi\nline', 'tab\there', '\u00e9t\u00e9', 'x'.repeat(200), 'ctl\u0007'],
  addresses: ['2001:db8::1', '192.0.2.10', '10.0.0.0/8'],
  values: [0, -1, 2.5, true, false, null],
  empty: { list: [], map: {} },
  nested: [{ a: [{ b: 'c' }] }],
};

describe('formatData', () => {
  it('writes YAML that reads back as the JSON does, with YAML 1.2 and 1.1-style readers', () => {
    const json = JSON.parse(formatData('json', tricky));
    const yaml = formatData('yaml', tricky);
    expect(parse(yaml)).toEqual(json);
    expect(load(yaml)).toEqual(json);
  });

  it('quotes what a YAML 1.1 reader would take for a boolean or null', () => {
    const yaml = formatData('yaml', { a: 'yes', b: 'on', c: 'n', d: '~' });
    expect(yaml).toBe("a: 'yes'\nb: 'on'\nc: 'n'\nd: '~'\n");
  });

  it('leaves undefined fields out, as JSON does, and never folds a long line', () => {
    const yaml = formatData('yaml', { kept: 'x', gone: undefined, long: 'word '.repeat(40).trim() });
    expect(parse(yaml)).toEqual({ kept: 'x', long: 'word '.repeat(40).trim() });
    expect(yaml.split('\n').filter(Boolean)).toHaveLength(2);
  });
});
