/**
 * runCli - the `svasim` command line (commander 14, CommonJS):
 *
 *   svasim                                    the default command (default-command.ts)
 *   svasim new-plugin NAME --kind KIND [--dir DIR]
 *                                             a new plugin package from a template
 *
 * It never calls process.exit: it returns the exit code, and writes through a CliIo, so tests
 * run it in process.
 */
import { Command, CommanderError } from 'commander';
import { runDefault } from './default-command';
import { processIo, type CliIo } from './io';
import { NEW_PLUGIN_KINDS, NewPluginError, nextSteps, planNewPlugin, writeNewPlugin } from './new-plugin';

/** buildProgram - the commander program; @setCode receives a command's exit code. */
function buildProgram(io: CliIo, setCode: (code: number) => void): Command {
  const program = new Command('svasim')
    .description(
      'svasim: a deterministic simulator of the Linux stack that lets accelerators share process memory',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(svasim --help lists the commands)');
  program
    .command('new-plugin')
    .description('generate a plugin package (a working device or strategy, with tests) from a template')
    .argument(
      '<name>',
      'the package is @svasim/<name>: lower-case letters, digits and -, starting with a letter',
    )
    .requiredOption('--kind <kind>', `what to generate: ${NEW_PLUGIN_KINDS.join(' or ')}`)
    .option('--dir <dir>', 'where to write it (default: plugins/<name> in the repository)')
    .action((name: string, o: { kind: string; dir?: string }) => {
      const plan = planNewPlugin({ name, kind: o.kind, dir: o.dir, cwd: io.cwd });
      const note = writeNewPlugin(plan);
      io.out(nextSteps(plan));
      if (note) io.err(`svasim new-plugin: ${note}\n`);
      setCode(0);
    });
  return program;
}

/**
 * runCli - run the command line @argv (without node and the script). Return: the exit code: 0 on
 * success, 1 for bad input (the reason on stderr) or a failed default run.
 */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  if (argv.length === 0) return runDefault(io);
  let code = 0;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof NewPluginError) {
      io.err(`svasim new-plugin: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
