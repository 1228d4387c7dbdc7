/**
 * `svasim validate FILE`: check a scenario file against the schema and the semantic rules with
 * the shipped plugins, as `svasim run` would before running it. Prints 'ok' (exit 0), or every
 * problem on stderr as `file:line: field: message` (exit 1). Nothing runs.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ScenarioError, defaultRegistry, loadScenario } from '@svasim/experiments';
import { CliError } from './cli-error';
import type { CliIo } from './io';
import { scenarioErrorLines } from './run-command';

/**
 * validateCommand - validate @file (relative to io.cwd; messages name it as given).
 *
 * Return: 0 when valid. Throws CliError (exit 1) with each problem, or when the file cannot be read.
 */
export function validateCommand(file: string, io: CliIo): number {
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, file), 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'ENOENT: no such file or directory' : err.message;
    throw new CliError(`cannot read scenario '${file}': ${why}`, 'validate');
  }
  try {
    loadScenario(text, file, defaultRegistry());
  } catch (e) {
    if (e instanceof ScenarioError) {
      const n = e.issues.length;
      throw new CliError(`${file}: ${n} problem${n === 1 ? '' : 's'}`, 'validate', scenarioErrorLines(e));
    }
    throw e;
  }
  io.out(`${file}: ok\n`);
  return 0;
}
