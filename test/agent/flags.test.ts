/** The agent's flags: defaults from the downward API, membership on only with a key, one-line errors. */
import { OPTIONS, readFlags, usage, UsageError } from '../../agent/flags.js';

const downward = { NODE_NAME: 'node-1', POD_IP: '192.0.2.11' };

test('defaults: node and address from the downward API, no gossip without a key', () => {
  expect(readFlags([], downward)).toEqual({
    help: false,
    nodeName: 'node-1',
    kubeconfig: undefined,
    namespace: 'metallb-system',
    lbClass: undefined,
    metricsBindAddress: '0.0.0.0',
    metricsPort: 7472,
    memberlist: undefined,
    logLevel: 'info',
    pod: undefined,
  });
});

test.each([
  ['a key file', ['--memberlist-key-file=/etc/k'], {}, { bindAddress: '192.0.2.11', port: 7946, keyFile: '/etc/k' }],
  ['MetalLB’s key path variable', [], { METALLB_ML_SECRET_KEY_PATH: '/etc/ml/secretkey' }, { bindAddress: '192.0.2.11', port: 7946, keyFile: '/etc/ml/secretkey' }],
  ['MetalLB’s key variable', [], { METALLB_ML_SECRET_KEY: 'k'.repeat(32) }, { bindAddress: '192.0.2.11', port: 7946, key: 'k'.repeat(32) }],
  ['HOST_IP when there is no POD_IP', ['--memberlist-key-file=/k'], { POD_IP: '', HOST_IP: '192.0.2.12' }, { bindAddress: '192.0.2.12', port: 7946, keyFile: '/k' }],
  [
    'flags over the environment',
    ['--memberlist-key-file=/k', '--memberlist-bind-address=127.0.0.2', '--memberlist-port=17946'],
    {},
    { bindAddress: '127.0.0.2', port: 17946, keyFile: '/k' },
  ],
])('gossip on with %s', (_what, argv, env, memberlist) => {
  expect(readFlags(argv, { ...downward, ...env }).memberlist).toEqual(memberlist);
});

test('the Pod (owner of the status objects) from POD_NAME and POD_UID, the namespace from POD_NAMESPACE', () => {
  const f = readFlags(['--node-name=n2'], { ...downward, POD_NAME: 'agent-abcde', POD_UID: 'u-1', POD_NAMESPACE: 'lb' });
  expect(f).toMatchObject({ nodeName: 'n2', namespace: 'lb', pod: { name: 'agent-abcde', uid: 'u-1' } });
  expect(readFlags(['--namespace=other'], { ...downward, POD_NAMESPACE: 'lb' }).namespace).toBe('other');
});

test.each([
  [[], {}, /^no node name: pass --node-name or set NODE_NAME/],
  [['--node-name=Node_1'], {}, /--node-name "Node_1" is not a Node name/],
  [['--metrics-port=70000'], downward, /--metrics-port must be a port number 0-65535/],
  [['--memberlist-port=0'], downward, /--memberlist-port must be a port number 1-65535/],
  [['--log-level=loud'], downward, /--log-level must be one of debug, info, warn, error/],
  [['--memberlist-key-file=/k'], { NODE_NAME: 'n' }, /the membership needs the node's address/],
  [['--memberlist-bind-address='], downward, /--memberlist-bind-address must not be empty/],
  [['--no-such-flag'], downward, /Unknown option '--no-such-flag'/],
  [['extra'], downward, /Unexpected argument 'extra'/],
])('%j is refused in one line', (argv, env, message) => {
  let error: unknown;
  try {
    readFlags(argv, env);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UsageError);
  expect((error as Error).message).toMatch(message);
  expect((error as Error).message).not.toContain('\n');
});

test('--help needs no node name and documents every flag', () => {
  expect(readFlags(['--help'], {}).help).toBe(true);
  const text = usage();
  for (const name of Object.keys(OPTIONS)) expect(text).toContain(`--${name}`);
  expect(text).toMatch(/NODE_NAME/);
});
