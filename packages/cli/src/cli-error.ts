/**
 * CliError - bad input a command refuses before doing anything (a missing file, an invalid
 * scenario, an unknown strategy): runCli prints each line of the message on stderr, prefixed
 * with the command, and returns exit code 1.
 */
export class CliError extends Error {
  constructor(
    message: string,
    /** The command that refused ('run', 'validate'...), for the 'svasim run: ' prefix. */
    readonly command: string,
    /** Lines printed as they are, without the prefix (a scenario's file:line: field: message). */
    readonly details: readonly string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}
