/**
 * `svasim new-plugin NAME --kind accelerator|pin-strategy [--dir DIR]`: plan a new workspace
 * package (check every input first, so bad input writes nothing), write it, format it, and say
 * what to do next.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { acceleratorIndex, acceleratorTest } from './templates/accelerator';
import { packageJson, readme, tsconfig } from './templates/common';
import { pinStrategyIndex, pinStrategyTest } from './templates/pin-strategy';
import { formatGenerated } from './format';
import {
  NEW_PLUGIN_KINDS,
  pluginNames,
  validatePluginName,
  type NewPluginKind,
  type PluginNames,
} from './names';
import { findRepoRoot, workspacePackages } from './repo-root';

/** What the command was asked. */
export interface NewPluginOptions {
  /** NAME: the package is @svasim/NAME (see validatePluginName). */
  name: string;
  /** 'accelerator' or 'pin-strategy'. */
  kind: string;
  /** Target directory (relative to @cwd); default <repo root>/plugins/NAME. */
  dir?: string;
  /** Where the command runs: the repository root is searched from here. */
  cwd: string;
}

/** One file to write, its path relative to the package directory. */
export interface PlannedFile {
  path: string;
  text: string;
}

/** NewPluginPlan - everything about the package before anything is written. */
export interface NewPluginPlan {
  names: PluginNames;
  kind: NewPluginKind;
  /** Absolute package directory. */
  dir: string;
  /** The svasim repository root, when the command runs inside one. */
  root: string | null;
  /** The package directory as the root's tsconfig references it (relative, '/'-separated). */
  dirFromRoot: string;
  files: PlannedFile[];
}

/** NewPluginError - bad input: the message says what is wrong; nothing was written. */
export class NewPluginError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NewPluginError';
  }
}

const posix = (p: string) => p.split(sep).join('/');

/**
 * planNewPlugin - check @opts and lay out the package. Throws NewPluginError for an invalid
 * name, an unknown kind, a name an existing workspace package has, no repository root without
 * --dir, or a target that exists and is not an empty directory.
 */
export function planNewPlugin(opts: NewPluginOptions): NewPluginPlan {
  const bad = validatePluginName(opts.name);
  if (bad) throw new NewPluginError(`invalid plugin name: ${bad}`);
  if (!(NEW_PLUGIN_KINDS as readonly string[]).includes(opts.kind))
    throw new NewPluginError(`unknown --kind '${opts.kind}' (one of: ${NEW_PLUGIN_KINDS.join(', ')})`);
  const kind = opts.kind as NewPluginKind;
  const names = pluginNames(opts.name);
  const root = findRepoRoot(opts.cwd);
  if (root) {
    const taken = workspacePackages(root).get(names.pkg);
    if (taken) throw new NewPluginError(`${names.pkg} already exists in the repository (${taken})`);
  }
  let dir: string;
  if (opts.dir !== undefined) {
    if (opts.dir.trim() === '') throw new NewPluginError('--dir is empty');
    dir = isAbsolute(opts.dir) ? resolve(opts.dir) : resolve(opts.cwd, opts.dir);
  } else if (root) dir = join(root, 'plugins', names.name);
  else throw new NewPluginError(`no svasim repository at or above ${opts.cwd}: run inside one or pass --dir`);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new NewPluginError(`${dir} exists and is not a directory`);
    if (readdirSync(dir).length > 0) throw new NewPluginError(`${dir} exists and is not empty`);
  }
  // Relative paths from the package to the repository (plugins/NAME's when there is none).
  const up = root ? posix(relative(dir, root)) || '.' : '../..';
  const inside = root !== null && !relative(root, dir).startsWith('..') && !isAbsolute(relative(root, dir));
  const dirFromRoot = inside ? posix(relative(root, dir)) : posix(dir);
  const files: PlannedFile[] = [
    { path: 'package.json', text: packageJson(names, kind) },
    { path: 'tsconfig.json', text: tsconfig(up) },
    {
      path: 'README.md',
      text: readme(names, kind, { dir: dirFromRoot, docs: `${up}/docs/plugin-authoring.md` }),
    },
    {
      path: 'src/index.ts',
      text: kind === 'accelerator' ? acceleratorIndex(names) : pinStrategyIndex(names),
    },
    {
      path: `src/${names.name}.test.ts`,
      text: kind === 'accelerator' ? acceleratorTest(names) : pinStrategyTest(names),
    },
  ];
  return { names, kind, dir, root, dirFromRoot, files };
}

/**
 * writeNewPlugin - write @plan's files (creating the directory) and format them with the
 * repository's prettier. On a write error it removes what it created and throws NewPluginError.
 *
 * Return: null, or a note when the files could not be formatted.
 */
export function writeNewPlugin(plan: NewPluginPlan): string | null {
  const created = !existsSync(plan.dir);
  const written: string[] = [];
  try {
    for (const f of plan.files) {
      const abs = join(plan.dir, f.path);
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, f.text, { flag: 'wx' });
      written.push(abs);
    }
  } catch (e) {
    if (created) rmSync(plan.dir, { recursive: true, force: true });
    else for (const abs of written) rmSync(abs, { force: true });
    throw new NewPluginError(`cannot write ${plan.dir}: ${(e as Error).message}`);
  }
  return formatGenerated(
    written.filter((f) => /\.(ts|json)$/.test(f)),
    plan.root,
  );
}

/** nextSteps - what the user does after the package is written. */
export function nextSteps(plan: NewPluginPlan): string {
  const what = plan.kind === 'accelerator' ? 'an accelerator plugin' : 'a pin-strategy plugin';
  const lines = [
    `Created ${plan.dirFromRoot} (${plan.names.pkg}, ${what}):`,
    ...plan.files.map((f) => `  ${f.path}`),
    '',
    'Next:',
    `  1. add { "path": "${plan.dirFromRoot}" } to the "references" of tsconfig.json at the repository root`,
    `  2. npm install   (links ${plan.names.pkg} into node_modules)`,
    `  3. npm test      (or: npx jest ${plan.dirFromRoot})`,
    '',
    'docs/plugin-authoring.md explains every file and the conformance suite.',
  ];
  if (!plan.root || plan.dirFromRoot.startsWith('/'))
    lines.push(
      'Note: the package is outside the repository; npm workspaces and tsc -b only see plugins/* and packages/*.',
    );
  return lines.join('\n') + '\n';
}
