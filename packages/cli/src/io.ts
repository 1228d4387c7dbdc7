/**
 * CliIo - where a command writes and where it runs, so tests drive the command line in process.
 */
export interface CliIo {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** The working directory (relative paths and the repository root are found from it). */
  cwd: string;
  /**
   * Environment variables the commands read (SVASIM_DURATION, SVASIM_SEEDS, SVASIM_WORKERS; see
   * run-command.ts). Default: none.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Whether standard error is a terminal: `run` shows a progress bar there only then. */
  errIsTTY?: boolean;
}

/** processIo - the real process's stdout, stderr, cwd and environment. */
export function processIo(): CliIo {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    cwd: process.cwd(),
    env: process.env,
    errIsTTY: process.stderr.isTTY === true,
  };
}
