/**
 * formatGenerated - run the repository's prettier over generated files, so they pass
 * `prettier --check .` (part of npm test) whatever the plugin's name does to line lengths.
 * Prettier runs in a child process: its API loads ESM on demand, which jest's module system
 * cannot do without --experimental-vm-modules.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * formatGenerated - prettier --write @files (absolute paths) with @root's .prettierrc.json.
 *
 * Return: null when they were formatted, else why not (no prettier installed, no repository
 * root, or prettier failed); the files are then left as generated.
 */
export function formatGenerated(files: string[], root: string | null): string | null {
  if (!root) return 'not formatted: no svasim repository found (run prettier --write on the new files)';
  let bin: string;
  try {
    bin = createRequire(join(root, 'package.json')).resolve('prettier/bin/prettier.cjs');
  } catch {
    return 'not formatted: prettier is not installed (npm install, then npx prettier --write on the new files)';
  }
  const config = join(root, '.prettierrc.json');
  const args = [bin, '--log-level', 'warn', '--write'];
  if (existsSync(config)) args.push('--config', config);
  try {
    execFileSync(process.execPath, [...args, ...files], { cwd: root, stdio: 'pipe' });
    return null;
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim();
    return `not formatted: prettier failed${err ? `: ${err}` : ''}`;
  }
}
