/** @jest-config-loader-options {"transpileOnly": true} */
import type { Config } from 'jest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// One jest project per workspace, built from one base: jest projects do not inherit root options.
const roots = ['packages', 'plugins'];
const workspaces: Array<{ dir: string; name: string }> = [];
for (const root of roots) {
  const abs = join(__dirname, root);
  if (!existsSync(abs)) continue;
  for (const entry of readdirSync(abs, { withFileTypes: true })) {
    const pkg = join(abs, entry.name, 'package.json');
    if (!entry.isDirectory() || !existsSync(pkg)) continue;
    const { name } = JSON.parse(readFileSync(pkg, 'utf8')) as { name: string };
    workspaces.push({ dir: join(abs, entry.name), name });
  }
}

// Every workspace resolves to its sources, so one copy of each class (and of tsyringe tokens) is loaded.
const moduleNameMapper: Record<string, string> = {};
for (const ws of workspaces) moduleNameMapper[`^${ws.name.replace('/', '\\/')}$`] = join(ws.dir, 'src');

const config: Config = {
  projects: workspaces.map((ws) => ({
    displayName: ws.name,
    rootDir: ws.dir,
    testEnvironment: 'node',
    testMatch: ['<rootDir>/src/**/*.test.ts'],
    testPathIgnorePatterns: ['/node_modules/', '/dist/'],
    setupFiles: [require.resolve('reflect-metadata')],
    moduleNameMapper,
    transform: {
      '^.+\\.ts$': ['ts-jest', { tsconfig: join(__dirname, 'tsconfig.test.json') }],
    },
  })),
};

export default config;
