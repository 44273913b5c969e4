/** Shell completion: the candidates for each place on the command line, and the tree kept in step with the commands. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { complete, DIRECTIVE, formatCompletion, TREE, type Lookup } from './completion.js';

const calls: unknown[] = [];
const lookup: Lookup = async (what, options) => {
  calls.push({ what, options });
  return { services: ['web', 'api'], nodes: ['node-1', 'node-2'], pools: ['lan'], namespaces: ['shop', 'default'], contexts: ['prod'] }[what];
};

describe('complete', () => {
  it.each([
    [[''], ['config', 'explain', 'peers', 'pools', 'services', 'simulate', 'svc']],
    [['p'], ['peers', 'pools']],
    [
      ['explain', ''],
      ['service', 'svc'],
    ],
    [
      ['explain', 'svc', ''],
      ['web', 'api'],
    ],
    [['explain', 'svc', '-n', 'shop', 'w'], ['web']],
    [['explain', 'svc', 'web', ''], []],
    [
      ['simulate', 'drain', 'node-'],
      ['node-1', 'node-2'],
    ],
    [
      ['pools', '-o', ''],
      ['table', 'json', 'yaml'],
    ],
    [
      ['services', '-n', ''],
      ['shop', 'default'],
    ],
    [['services', '--context', ''], ['prod']],
    [['peers', '--node', 'node-2'], ['node-2']],
    [['services', '--a'], ['--all-namespaces']],
    [['pools', ''], ['lan']],
  ])('%j -> %j', async (words, items) => {
    const r = await complete(words, lookup);
    expect(r.items).toEqual(items);
    expect(r.directive).toBe(DIRECTIVE.noFileComp);
  });

  it('passes -n and --context on to the lookup; files for config check', async () => {
    calls.length = 0;
    await complete(['--context', 'prod', 'explain', 'svc', '-n', 'shop', ''], lookup);
    expect(calls).toEqual([{ what: 'services', options: { context: 'prod', namespace: 'shop' } }]);
    expect(await complete(['config', 'check', ''], lookup)).toEqual({ items: [], directive: DIRECTIVE.default });
  });

  it("writes Cobra's format", () => {
    expect(formatCompletion({ items: ['a', 'b'], directive: 4 })).toBe('a\nb\n:4\n');
  });

  it('knows every command there is', () => {
    const dir = join(process.cwd(), 'plugin/commands');
    const ids = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => f.replace(/\.ts$/, '').split('/'))
      .map((parts) => parts.join(' '))
      .sort();
    const leaves: string[] = [];
    const walk = (node: typeof TREE, path: string[]) => {
      if (!node.children) leaves.push(path.join(' '));
      for (const [k, child] of Object.entries(node.children ?? {})) walk(child, [...path, k]);
    };
    walk(TREE, []);
    expect(ids.length).toBeGreaterThan(5);
    // svc and explain service are aliases.
    expect(leaves.filter((l) => l !== 'svc' && l !== 'explain service').sort()).toEqual(ids);
  });
});
