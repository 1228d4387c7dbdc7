/**
 * A captured CliIo for the command line's tests (in the build too: it is small and harmless, and
 * plugin authors' tests can drive `svasim` the same way).
 */
import { runCli } from './cli';
import type { CliIo } from './io';

/** What one command printed and returned. */
export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/**
 * runCaptured - run `svasim @argv` in process, in @cwd, with environment @env, capturing stdout
 * and stderr. Return: the exit code and everything printed.
 */
export async function runCaptured(
  argv: string[],
  cwd: string,
  env: Record<string, string | undefined> = {},
): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (t) => void out.push(t), err: (t) => void err.push(t), cwd, env };
  const code = await runCli(argv, io);
  return { code, out: out.join(''), err: err.join('') };
}
