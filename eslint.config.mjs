import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import { defineConfig, globalIgnores } from 'eslint/config';

export default defineConfig([
  globalIgnores(['**/dist/**', '**/node_modules/**', '.nx/**', 'coverage/**', 'out/**']),
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // DI classes must keep value imports so decorator metadata names the class (see ECOSYSTEM.md 1.3).
      '@typescript-eslint/consistent-type-imports': 'off',
      // Determinism: the simulated kernel and plugins never read the wall clock or Math.random.
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'use a named RNG stream (kernel.rng)' },
        { object: 'Date', property: 'now', message: 'use simulated time (kernel.now())' },
      ],
    },
  },
  {
    // Plain Node scripts (CommonJS).
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['packages/kernel/src/**/*.ts', 'plugins/*/src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'schedule a simulated event instead' },
        { name: 'setInterval', message: 'schedule a simulated event instead' },
        { name: 'performance', message: 'no wall clock in the simulated kernel' },
      ],
    },
  },
]);
