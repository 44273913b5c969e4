import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The pure core must not reach the world: no Kubernetes client, sockets, files or processes. */
const forbiddenInCore = ['@kubernetes/client-node', 'net', 'dgram', 'fs', 'child_process', 'http', 'https', 'tls'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: forbiddenInCore.flatMap((name) => [
            { name, message: 'core/ is pure: pass I/O in through an interface instead.' },
            { name: `node:${name}`, message: 'core/ is pure: pass I/O in through an interface instead.' },
          ]),
          patterns: [{ group: ['@kubernetes/client-node/*', 'fs/*', 'node:fs/*'], message: 'core/ is pure.' }],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'core/ reads no process state; pass it in.' }],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
