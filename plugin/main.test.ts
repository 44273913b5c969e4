import { COMMANDS, hoistFlags } from './main.js';

describe('hoistFlags: global flags before the command, as kubectl users type them', () => {
  it.each([
    [
      ['--kubeconfig', 'k', 'pools'],
      ['pools', '--kubeconfig', 'k'],
    ],
    [
      ['--context=prod', '-n', 'shop', 'explain', 'svc', 'web'],
      ['explain', 'svc', 'web', '--context=prod', '-n', 'shop'],
    ],
    [
      ['-A', 'services', '-o', 'json'],
      ['services', '-o', 'json', '-A'],
    ],
    [
      ['-o', 'yaml', '--request-timeout', '5s', 'simulate', 'drain', 'node-1'],
      ['simulate', 'drain', 'node-1', '-o', 'yaml', '--request-timeout', '5s'],
    ],
    [
      ['--help', 'pools'],
      ['pools', '--help'],
    ],
  ])('%j -> %j', (argv, hoisted) => expect(hoistFlags(argv, COMMANDS)).toEqual(hoisted));

  it.each([[['pools', '--kubeconfig', 'k']], [['--help']], [['--version']], [['--kubeconfig']], [['--kubeconfig', 'k']], [[]], [['--', 'pools']]])('leaves %j as it is', (argv) =>
    expect(hoistFlags(argv, COMMANDS)).toEqual(argv),
  );
});
