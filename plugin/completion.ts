/**
 * Shell completion for `kubectl metallb`, through kubectl's own (kubectl >= 1.26 runs
 * `kubectl_complete-metallb ARGS...` for `kubectl metallb ARGS<TAB>` and reads Cobra's answer:
 * one candidate a line, then `:<directive>`). Kept apart from oclif so a TAB costs one small
 * module; names from the cluster (Services, nodes, namespaces, contexts) come from kubectl.
 */

/** Cobra's ShellCompDirective values. */
export const DIRECTIVE = { default: 0, noSpace: 2, noFileComp: 4 } as const;

interface Node {
  children?: Record<string, Node>;
  flags?: readonly string[];
  /** What the positional argument is. */
  argument?: 'service' | 'node' | 'pool' | 'file';
}

const CLUSTER = ['--kubeconfig', '--context', '--metallb-namespace', '--request-timeout', '-o', '--output'];

/** The commands, their flags and arguments (kept in step with plugin/commands by the completion test). */
export const TREE: Node = {
  children: {
    config: {
      children: {
        check: { flags: ['--metallb-namespace', '-o', '--output'], argument: 'file' },
        convert: { flags: ['--metallb-namespace', '-o', '--output'], argument: 'file' },
      },
    },
    explain: {
      children: {
        svc: { flags: [...CLUSTER, '-n', '--namespace'], argument: 'service' },
        service: { flags: [...CLUSTER, '-n', '--namespace'], argument: 'service' },
      },
    },
    peers: { flags: [...CLUSTER, '--node'] },
    pools: { flags: [...CLUSTER, '-v', '--verbose', '-n', '--namespace'], argument: 'pool' },
    services: { flags: [...CLUSTER, '-n', '--namespace', '-A', '--all-namespaces'] },
    svc: { flags: [...CLUSTER, '-n', '--namespace', '-A', '--all-namespaces'] },
    simulate: { children: { drain: { flags: CLUSTER, argument: 'node' } } },
  },
};

/** Names from the cluster, as kubectl lists them. */
export type Lookup = (
  what: 'services' | 'nodes' | 'pools' | 'namespaces' | 'contexts',
  options: { namespace?: string; context?: string; kubeconfig?: string },
) => Promise<string[]>;

/** Flags taking a value: the word after them is that value, not a positional argument. */
const VALUED = new Set(['-o', '--output', '-n', '--namespace', '--context', '--kubeconfig', '--metallb-namespace', '--request-timeout', '--node']);

/** Candidates for the last word of `words` (the words after `kubectl metallb`, the last one being typed). */
export async function complete(words: readonly string[], lookup: Lookup): Promise<{ items: string[]; directive: number }> {
  const typed = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  let node = TREE;
  let positional = 0;
  const options: { namespace?: string; context?: string; kubeconfig?: string } = {};
  for (let i = 0; i < before.length; i++) {
    const w = before[i]!;
    if (w.startsWith('-')) {
      const [flag, inline] = w.split('=', 2);
      if (VALUED.has(flag!) && inline === undefined) {
        const value = before[++i];
        if (value !== undefined) {
          if (flag === '-n' || flag === '--namespace') options.namespace = value;
          if (flag === '--context') options.context = value;
          if (flag === '--kubeconfig') options.kubeconfig = value;
        }
      }
      continue;
    }
    const child = node.children?.[w];
    if (child) node = child;
    else positional++;
  }
  const previous = before[before.length - 1];
  const match = (list: readonly string[]) => ({ items: list.filter((x) => x.startsWith(typed)), directive: DIRECTIVE.noFileComp });
  if (previous === '-o' || previous === '--output') return match(['table', 'json', 'yaml']);
  if (previous === '-n' || previous === '--namespace') return match(await lookup('namespaces', options).catch(() => []));
  if (previous === '--context') return match(await lookup('contexts', options).catch(() => []));
  if (previous === '--node') return match(await lookup('nodes', options).catch(() => []));
  if (previous === '--kubeconfig') return { items: [], directive: DIRECTIVE.default };
  if (typed.startsWith('-')) return match(node.flags ?? []);
  if (node.children) return match(Object.keys(node.children).sort());
  if (positional > 0 && node.argument !== 'file') return match([]);
  switch (node.argument) {
    case 'service':
      return match(await lookup('services', options).catch(() => []));
    case 'node':
      return match(await lookup('nodes', options).catch(() => []));
    case 'pool':
      return match(await lookup('pools', options).catch(() => []));
    case 'file':
      return { items: [], directive: DIRECTIVE.default };
    default:
      return match([]);
  }
}

/** Cobra's output: the candidates, then the directive. */
export function formatCompletion(result: { items: string[]; directive: number }): string {
  return [...result.items, `:${result.directive}`].join('\n') + '\n';
}
