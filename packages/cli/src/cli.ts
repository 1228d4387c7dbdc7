/**
 * runCli - the `svasim` command line (commander 14, CommonJS; API.md "The command line"):
 *
 *   svasim                                    the default command: the flagship experiment
 *   svasim run [scenario] [--strategies a,b] [--seeds N] [--duration T] [--out DIR] [--json] [--trace]
 *   svasim list [--json]                      devices, strategies, IOMMU profiles, workloads, scenarios
 *   svasim validate FILE                      check a scenario file, run nothing
 *   svasim new-plugin NAME --kind KIND [--dir DIR]
 *                                             a new plugin package from a template
 *   svasim demo                               the memory-model walk-through
 *
 * It never calls process.exit: it returns the exit code (0 success, 1 bad input or a usage error,
 * commander's code for the latter), and writes through a CliIo, so tests run it in process.
 */
import { Command, CommanderError } from 'commander';
import { CliError } from './cli-error';
import { runDefault } from './default-command';
import { runDemo } from './demo';
import { processIo, type CliIo } from './io';
import { listCommand } from './list-command';
import { NEW_PLUGIN_KINDS, NewPluginError, nextSteps, planNewPlugin, writeNewPlugin } from './new-plugin';
import { runCommand, type RunCommandOptions } from './run-command';
import { validateCommand } from './validate-command';

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
    .command('run')
    .description(
      'run an experiment: the scenario under each strategy and seed, then the comparison table and the reports',
    )
    .argument(
      '[scenario]',
      'a scenario file, or the name of a shipped one (svasim list); default: the flagship',
    )
    .option('--strategies <list>', 'comma-separated strategies to compare instead of the scenario’s')
    .option('--seeds <n>', 'run seeds 1..n instead of the scenario’s seeds')
    .option('--duration <time>', "simulated time of each run instead of the scenario's ('20ms', '1s')")
    .option('--out <dir>', 'where the reports go (default: ./svasim-out/<scenario name>/)')
    .option('--json', 'print one JSON document (API.md) on stdout instead of the table')
    .option('--trace', 'also write a Perfetto/Chrome trace of the first seed of each strategy')
    .action(async (scenario: string | undefined, o: RunCommandOptions) => {
      setCode(await runCommand(scenario, o, io));
    });
  program
    .command('list')
    .description('list the devices, strategies, IOMMU profiles, workloads and shipped scenarios')
    .option('--json', 'print one JSON document')
    .action((o: { json?: boolean }) => setCode(listCommand(o, io)));
  program
    .command('validate')
    .description('check a scenario file (schema and semantic rules) without running it')
    .argument('<file>', 'the scenario file')
    .action((file: string) => setCode(validateCommand(file, io)));
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
  program
    .command('demo')
    .description('boot a small machine and walk through faults, fork and COW (the memory model)')
    .action(() => {
      const violations = runDemo((line) => io.out(line + '\n'));
      setCode(violations.length === 0 ? 0 : 1);
    });
  return program;
}

/**
 * runCli - run the command line @argv (without node and the script). Return: the exit code: 0 on
 * success (and for --help), 1 for bad input (the reason on stderr) and for a usage error (an
 * unknown command or option, a missing argument: commander's message and exit code).
 */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  try {
    if (argv.length === 0) return await runDefault(io);
    let code = 0;
    const program = buildProgram(io, (c) => (code = c));
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof CliError) {
      for (const line of e.details) io.err(line + '\n');
      io.err(`svasim ${e.command}: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NewPluginError) {
      io.err(`svasim new-plugin: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
