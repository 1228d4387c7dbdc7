/**
 * The scenarios svasim ships (the repository's scenarios/ folder): the flagship experiment that
 * `svasim run` runs without a scenario, and the shipped experiments docs/experiments.md lists.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { scenarioHeader } from '@svasim/experiments';

/** SCENARIOS_DIR - the shipped scenarios (packages/cli/{src,dist} -> the repository's scenarios/). */
export const SCENARIOS_DIR = resolve(__dirname, '..', '..', '..', 'scenarios');

/** FLAGSHIP_SCENARIO - the flagship experiment's file. */
export const FLAGSHIP_SCENARIO = join(SCENARIOS_DIR, 'flagship.yaml');

/** A shipped scenario as `svasim list` shows it. */
export interface ShippedScenario {
  /** The file name without .yaml ('flagship', '02-zip-throughput'): what `svasim run NAME` takes. */
  id: string;
  file: string;
  /** Its `name` and `description` fields ('' when the file does not parse). */
  name: string;
  description: string;
}

/**
 * shippedScenarios - every .yaml file of @dir (default SCENARIOS_DIR), sorted, with its name and
 * description read without validating it (`svasim validate` does that).
 *
 * Return: the list; empty when the folder does not exist.
 */
export function shippedScenarios(dir: string = SCENARIOS_DIR): ShippedScenario[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
  } catch {
    return [];
  }
  return files.sort().map((f) => {
    const file = join(dir, f);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // Listed anyway: `svasim validate` says what is wrong with it.
    }
    return { id: basename(f).replace(/\.ya?ml$/, ''), file, ...scenarioHeader(text) };
  });
}

/**
 * resolveScenario - the file `svasim run` reads for @arg: @arg itself (relative to @cwd) when it
 * exists, else the shipped scenario whose id is @arg ('flagship', '02-zip-throughput'), else
 * @arg as given (so reading it reports ENOENT with the user's path).
 */
export function resolveScenario(arg: string, cwd: string): string {
  const direct = resolve(cwd, arg);
  if (existsSync(direct)) return direct;
  if (/^[A-Za-z0-9._-]+$/.test(arg)) {
    for (const ext of ['.yaml', '.yml']) {
      const shipped = join(SCENARIOS_DIR, arg + ext);
      if (existsSync(shipped)) return shipped;
    }
  }
  return direct;
}
