/**
 * Finding the svasim repository a command runs in, and the workspace packages it already has.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

function readJson(path: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * findRepoRoot - the nearest directory at or above @from holding a package.json with npm
 * `workspaces` and a tsconfig.base.json (the svasim repository's root), or null when there is none.
 */
export function findRepoRoot(from: string): string | null {
  let dir = resolve(from);
  for (;;) {
    const pkg = readJson(join(dir, 'package.json'));
    if (pkg && Array.isArray(pkg.workspaces) && existsSync(join(dir, 'tsconfig.base.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/**
 * workspacePackages - package name -> directory (relative to @root) of every workspace matched
 * by the root package.json's `workspaces` entries of the form 'folder/*'.
 */
export function workspacePackages(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const pkg = readJson(join(root, 'package.json'));
  const globs = Array.isArray(pkg?.workspaces) ? (pkg.workspaces as unknown[]) : [];
  for (const g of globs) {
    if (typeof g !== 'string' || !g.endsWith('/*')) continue;
    const folder = g.slice(0, -2);
    let entries: string[];
    try {
      entries = readdirSync(join(root, folder));
    } catch {
      continue;
    }
    for (const e of entries) {
      const name = readJson(join(root, folder, e, 'package.json'))?.name;
      if (typeof name === 'string') out.set(name, `${folder}/${e}`);
    }
  }
  return out;
}
