/**
 * What `svasim` does with no command (and `npm start`). Today: boot the default machine and run
 * the memory-model demo. This is the seam issue 7 replaces with the flagship experiment (every
 * pinning strategy on the same workload, the report): change runDefault's body, nothing else.
 */
import { runDemo } from './demo';
import type { CliIo } from './io';

/** runDefault - the no-argument command. Return: the exit code (0 when every invariant holds). */
export function runDefault(io: CliIo): number {
  const violations = runDemo((line) => io.out(line + '\n'));
  return violations.length === 0 ? 0 : 1;
}
