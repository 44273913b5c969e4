/**
 * The node agent's command line. No imports beyond node's own and kube/names.ts, so that a typo
 * in a flag is answered at once, before the slow Kubernetes client loads.
 *
 * Defaults come from the downward API where the DaemonSet sets it: NODE_NAME (spec.nodeName),
 * POD_IP / HOST_IP (the node's address, since the agent runs on the host network),
 * POD_NAMESPACE, POD_NAME and POD_UID (the owner of the status objects the agent writes).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_NAMESPACE } from '../kube/names.js';

/** A flag the user got wrong: reported in one line, exit 2. */
export class UsageError extends Error {}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export const OPTIONS = {
  'node-name': { type: 'string', help: 'the node this agent runs on, as its Node object is named (default $NODE_NAME, set from the downward API)' },
  kubeconfig: { type: 'string', help: 'kubeconfig file, to run outside a cluster (default: in-cluster, then $KUBECONFIG / ~/.kube/config)' },
  namespace: { type: 'string', help: 'our namespace: the configuration, and where the ServiceL2Status objects go (default $POD_NAMESPACE or metallb-system)' },
  'lb-class': { type: 'string', help: 'spec.loadBalancerClass we answer to, as the controller was given (default: Services without one)' },
  'metrics-bind-address': { type: 'string', default: '0.0.0.0', help: 'address of the metrics and probe server' },
  'metrics-port': { type: 'string', default: '7472', help: 'HTTP port of /metrics, /healthz and /readyz (0: any free port)' },
  'memberlist-bind-address': {
    type: 'string',
    help: "address the gossip membership listens on and tells the others (default $POD_IP, then $HOST_IP: the node's address)",
  },
  'memberlist-port': { type: 'string', default: '7946', help: 'UDP port of the gossip membership, the same on every node' },
  'memberlist-key-file': {
    type: 'string',
    help: 'file holding the shared membership key (the Secret memberlist, key secretkey, mounted; default $METALLB_ML_SECRET_KEY_PATH). $METALLB_ML_SECRET_KEY may hold the key itself. Without a key there is no gossip: a node counts as alive while its Node is Ready',
  },
  'log-level': { type: 'string', default: 'info', help: 'debug, info, warn or error' },
  help: { type: 'boolean', short: 'h', help: 'print this help' },
} as const;

type Name = keyof typeof OPTIONS;

export interface AgentFlags {
  help: boolean;
  nodeName: string;
  kubeconfig: string | undefined;
  namespace: string;
  lbClass: string | undefined;
  metricsBindAddress: string;
  metricsPort: number;
  /** Undefined: no gossip membership (no key given). */
  memberlist: { bindAddress: string; port: number; keyFile?: string; key?: string } | undefined;
  logLevel: LogLevel;
  /** The agent's Pod, from the downward API (owner of its status objects); undefined outside a cluster. */
  pod: { name: string; uid: string } | undefined;
}

function port(flag: string, value: string, allowZero: boolean): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535 || (!allowZero && Number(value) === 0))
    throw new UsageError(`--${flag} must be a port number ${allowZero ? '0' : '1'}-65535${allowZero ? ' (0: any free port)' : ''}, got "${value}"`);
  return Number(value);
}

/** A Kubernetes object name (RFC 1123 subdomain), as Node names are. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The help text: every flag, its default and where the default comes from. */
export function usage(): string {
  const lines = Object.entries(OPTIONS).map(([name, o]) => {
    const value = o.type === 'string' ? ' VALUE' : '';
    const dflt = 'default' in o ? ` (default ${String(o.default)})` : '';
    return `  --${name}${value}\n      ${o.help}${dflt}`;
  });
  return (
    'usage: node dist/agent/main.js --node-name NODE [flags]\n\n' +
    'The metallb-ts node agent: announces the layer-2 Service IPs this node owns (ARP/NDP) and\n' +
    'publishes ServiceL2Status objects. Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot start,\n' +
    '2 on bad flags.\n\n' +
    `${lines.join('\n')}\n`
  );
}

/** Reads the command line (and the downward-API environment); throws UsageError in one line. */
export function readFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): AgentFlags {
  let values;
  try {
    const options = Object.fromEntries(
      Object.entries(OPTIONS).map(([k, o]) => [k, { type: o.type, ...('short' in o ? { short: o.short } : {}), ...('default' in o ? { default: o.default } : {}) }]),
    );
    ({ values } = parseArgs({ args: argv, options: options as { [K in Name]: { type: (typeof OPTIONS)[K]['type'] } }, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\s+/g, ' ').replace(/\. To specify .*$/, ''), { cause: e });
  }
  const v = values as Partial<Record<Name, string | boolean>>;
  const str = (k: Name): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const required = (k: Name): string => {
    const s = str(k);
    if (s === undefined || s === '') throw new UsageError(`--${k} must not be empty`);
    return s;
  };
  const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);
  const help = v.help === true;

  const nodeName = nonEmpty(str('node-name')) ?? nonEmpty(env.NODE_NAME) ?? '';
  if (!help) {
    if (nodeName === '') throw new UsageError('no node name: pass --node-name or set NODE_NAME (the DaemonSet sets it from spec.nodeName)');
    if (!NODE_NAME.test(nodeName) || nodeName.length > 253) throw new UsageError(`--node-name "${nodeName}" is not a Node name (lower-case RFC 1123 subdomain)`);
  }
  const logLevel = required('log-level') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  const keyFile = nonEmpty(str('memberlist-key-file')) ?? nonEmpty(env.METALLB_ML_SECRET_KEY_PATH);
  const key = keyFile === undefined ? nonEmpty(env.METALLB_ML_SECRET_KEY) : undefined;
  const mlPort = port('memberlist-port', required('memberlist-port'), false);
  const bindFlag = str('memberlist-bind-address');
  if (bindFlag === '') throw new UsageError('--memberlist-bind-address must not be empty');
  const mlBind = bindFlag ?? nonEmpty(env.POD_IP) ?? nonEmpty(env.HOST_IP);
  let memberlist: AgentFlags['memberlist'];
  if (keyFile !== undefined || key !== undefined) {
    if (mlBind === undefined && !help)
      throw new UsageError("the membership needs the node's address: pass --memberlist-bind-address or set POD_IP (the DaemonSet sets it from status.podIP)");
    memberlist = { bindAddress: mlBind ?? '', port: mlPort, ...(keyFile !== undefined ? { keyFile } : { key: key as string }) };
  }

  const podName = nonEmpty(env.POD_NAME);
  const podUID = nonEmpty(env.POD_UID);
  return {
    help,
    nodeName,
    kubeconfig: nonEmpty(str('kubeconfig')),
    namespace: nonEmpty(str('namespace')) ?? nonEmpty(env.POD_NAMESPACE) ?? DEFAULT_NAMESPACE,
    lbClass: nonEmpty(str('lb-class')),
    metricsBindAddress: required('metrics-bind-address'),
    metricsPort: port('metrics-port', required('metrics-port'), true),
    memberlist,
    logLevel,
    pod: podName && podUID ? { name: podName, uid: podUID } : undefined,
  };
}
