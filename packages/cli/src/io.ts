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
}

/** processIo - the real process's stdout, stderr and cwd. */
export function processIo(): CliIo {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    cwd: process.cwd(),
  };
}
