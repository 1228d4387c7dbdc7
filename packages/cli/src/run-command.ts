/**
 * `svasim run [scenario] [--strategies a,b] [--seeds N] [--duration T] [--out DIR] [--json] [--trace]`
 * (API.md): load and validate the scenario (the flagship when none is given) against the shipped
 * plugins, apply the overrides, run every strategy x seed (in worker threads when svasim is
 * built), write the reports and print the comparison table, or with --json exactly one JSON
 * document on stdout.
 *
 * Everything the user can get wrong is refused before anything runs, with the reason on stderr
 * and exit code 1 (CliError): a scenario file that cannot be read (the errno message), an invalid
 * scenario (each problem as file:line: field: message), an unknown or repeated strategy, seeds
 * that are not a positive integer, a duration that is not one, an output folder that cannot be
 * made. A run that fails inside the simulation is not an error of the command: the table and the
 * JSON report it (exit code 0).
 *
 * Overrides for tests and quick looks, from the environment (CliIo.env): SVASIM_DURATION (a
 * duration, like --duration), SVASIM_SEEDS (like --seeds), SVASIM_WORKERS (worker threads; 0
 * runs everything in this thread). Options win over the environment.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import {
  ScenarioError,
  chromeTrace,
  comparisonTable,
  defaultRegistry,
  defaultRegistryModule,
  experimentJson,
  htmlReport,
  loadScenario,
  parseDuration,
  runExperiment,
  terminalProgress,
  validateScenario,
  type ExperimentResult,
  type PluginRegistry,
  type Scenario,
} from '@svasim/experiments';
import { CliError } from './cli-error';
import type { CliIo } from './io';
import { FLAGSHIP_SCENARIO, resolveScenario } from './scenarios';

/** The options of `svasim run` as commander hands them over (strings, unparsed). */
export interface RunCommandOptions {
  strategies?: string;
  seeds?: string;
  duration?: string;
  out?: string;
  json?: boolean;
  trace?: boolean;
}

/** What `svasim run` wrote. */
export interface RunOutputs {
  dir: string;
  report: string;
  json: string;
  trace?: string;
}

/** displayPath - @p relative to @cwd when it is below it, else absolute. */
function displayPath(p: string, cwd: string): string {
  const rel = relative(cwd, p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

/** readScenarioFile - the text of @file; CliError with the errno message when it cannot be read. */
function readScenarioFile(file: string, shown: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'ENOENT: no such file or directory'
        : err.code === 'EISDIR'
          ? 'EISDIR: is a directory, not a scenario file'
          : err.message;
    throw new CliError(`cannot read scenario '${shown}': ${why}`, 'run');
  }
}

/** scenarioErrorLines - every problem of a ScenarioError, one per line, as file:line: field: message. */
export function scenarioErrorLines(e: ScenarioError): string[] {
  return e.message.split('\n');
}

/** parseStrategies - the --strategies list, checked against @registry. */
function parseStrategies(list: string, registry: PluginRegistry): string[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new CliError('--strategies: give at least one strategy name', 'run');
  const known = ['none', ...[...registry.strategies.keys()].filter((n) => n !== 'none')];
  for (const n of names) {
    if (!known.includes(n))
      throw new CliError(`--strategies: unknown strategy '${n}' (known: ${known.join(', ')})`, 'run');
  }
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new CliError(`--strategies: strategy '${dup}' is listed twice`, 'run');
  return names;
}

/** parseSeeds - a positive integer count of seeds, from @what (--seeds or SVASIM_SEEDS). */
function parseSeeds(v: string, what: string): number {
  if (!/^\s*[1-9][0-9]*\s*$/.test(v) || Number(v) > 1000)
    throw new CliError(`${what}: expected a positive integer (1 to 1000), got '${v}'`, 'run');
  return Number(v);
}

/** parseRunDuration - a positive duration ('50ms', '1s', ns), from @what. */
function parseRunDuration(v: string, what: string): string | number {
  const value: string | number = /^\s*[0-9]+\s*$/.test(v) ? Number(v) : v.trim();
  let ns: number;
  try {
    ns = parseDuration(value);
  } catch (e) {
    throw new CliError(`${what}: ${(e as Error).message}`, 'run');
  }
  if (ns <= 0) throw new CliError(`${what}: the run must last some time`, 'run');
  return value;
}

/**
 * prepareRun - everything `svasim run` checks before running: the scenario read, validated and
 * overridden, the registry and the output folder's path.
 *
 * Return: what to run. Throws CliError for bad input (nothing has run, nothing was written).
 */
export function prepareRun(
  scenarioArg: string | undefined,
  opts: RunCommandOptions,
  io: CliIo,
): { scenario: Scenario; registry: PluginRegistry; outDir: string; workers?: number } {
  const env = io.env ?? {};
  const registry = defaultRegistry();
  const file = scenarioArg === undefined ? FLAGSHIP_SCENARIO : resolveScenario(scenarioArg, io.cwd);
  const shown = scenarioArg ?? displayPath(file, io.cwd);
  const text = readScenarioFile(file, shown);
  let scenario: Scenario;
  try {
    scenario = loadScenario(text, shown, registry);
  } catch (e) {
    if (e instanceof ScenarioError)
      throw new CliError(`scenario '${shown}' is invalid`, 'run', scenarioErrorLines(e));
    throw e;
  }
  const over: Partial<Scenario> = {};
  if (opts.strategies !== undefined) over.strategies = parseStrategies(opts.strategies, registry);
  const seeds = opts.seeds ?? env.SVASIM_SEEDS;
  if (seeds !== undefined)
    over.seeds = parseSeeds(seeds, opts.seeds !== undefined ? '--seeds' : 'SVASIM_SEEDS');
  const duration = opts.duration ?? env.SVASIM_DURATION;
  if (duration !== undefined)
    over.duration = parseRunDuration(
      duration,
      opts.duration !== undefined ? '--duration' : 'SVASIM_DURATION',
    );
  if (Object.keys(over).length > 0) {
    try {
      scenario = validateScenario({ ...scenario, ...over }, shown, registry);
    } catch (e) {
      if (e instanceof ScenarioError)
        throw new CliError(`the overrides make scenario '${shown}' invalid`, 'run', scenarioErrorLines(e));
      throw e;
    }
  }
  let workers: number | undefined;
  if (env.SVASIM_WORKERS !== undefined) {
    if (!/^[0-9]+$/.test(env.SVASIM_WORKERS))
      throw new CliError(`SVASIM_WORKERS: expected a number of threads, got '${env.SVASIM_WORKERS}'`, 'run');
    workers = Number(env.SVASIM_WORKERS);
  }
  const outDir = resolve(io.cwd, opts.out ?? join('svasim-out', scenario.name));
  return { scenario, registry, outDir, workers };
}

/** writeOutputs - the HTML report, the full JSON (with time series) and, with @trace, the trace. */
function writeOutputs(result: ExperimentResult, dir: string, trace: boolean): RunOutputs {
  const out: RunOutputs = {
    dir,
    report: join(dir, 'report.html'),
    json: join(dir, 'results.json'),
  };
  writeFileSync(out.report, htmlReport(result));
  writeFileSync(out.json, JSON.stringify(experimentJson(result, { series: true }), null, 2) + '\n');
  if (trace) {
    out.trace = join(dir, 'trace.json');
    writeFileSync(out.trace, JSON.stringify(chromeTrace(result)));
  }
  return out;
}

/**
 * runCommand - `svasim run` (and the default command, with @scenarioArg undefined).
 *
 * Return: the exit code: 0 when the experiment ran (runs that failed inside the simulation are
 * in its results). Throws CliError for bad input, before anything runs.
 */
export async function runCommand(
  scenarioArg: string | undefined,
  opts: RunCommandOptions,
  io: CliIo,
): Promise<number> {
  const { scenario, registry, outDir, workers } = prepareRun(scenarioArg, opts, io);
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new CliError(`cannot create the output folder '${outDir}': ${(e as Error).message}`, 'run');
  }
  const result = await runExperiment(scenario, {
    registry,
    registryModule: defaultRegistryModule(),
    workers,
    trace: opts.trace === true,
    progress: io.errIsTTY ? terminalProgress() : false,
  });
  const files = writeOutputs(result, outDir, opts.trace === true);
  if (opts.json) {
    io.out(JSON.stringify(experimentJson(result), null, 2) + '\n');
    return 0;
  }
  const shown = (p: string) => displayPath(p, io.cwd);
  const runs = result.runs.length;
  const where = result.workers > 0 ? `${result.workers} worker threads` : 'in process';
  io.out(comparisonTable(result));
  io.out(
    `\n${runs} run${runs === 1 ? '' : 's'} in ${(result.wallMs / 1000).toFixed(1)} s (${where})\n` +
      `report: ${shown(files.report)}\n` +
      `json:   ${shown(files.json)}\n` +
      (files.trace ? `trace:  ${shown(files.trace)} (open in https://ui.perfetto.dev)\n` : ''),
  );
  return 0;
}
