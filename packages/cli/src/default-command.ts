/**
 * What `svasim` does with no command (and `npm start`): `svasim run` with no scenario, i.e. the
 * flagship experiment (scenarios/flagship.yaml) with its table and reports. The memory-model demo
 * that used to be here is `svasim demo`.
 */
import type { CliIo } from './io';
import { runCommand } from './run-command';

/**
 * runDefault - the no-argument command. Return: the exit code (0 when the experiment ran).
 * Throws CliError when the flagship cannot be run (its file missing or invalid, a bad
 * SVASIM_DURATION / SVASIM_SEEDS override).
 */
export function runDefault(io: CliIo): Promise<number> {
  return runCommand(undefined, {}, io);
}
