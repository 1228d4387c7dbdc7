/**
 * runExperiment - the scenario's strategies x seeds, each run on a fresh kernel (runOne), in
 * worker threads when a registry module and the built worker are available, else in this
 * thread; progress on a terminal; one ExperimentResult with every run and a summary per strategy.
 */
import { availableParallelism } from 'node:os';
import { ScenarioError, checkScenario, formatPath, parseDuration, type Scenario } from '../scenario';
import { WORKER_FILE, runInWorkers, workerAvailable, type PoolJob } from './pool';
import { createPluginRegistry, type PluginRegistry } from './registry';
import { loadRegistryModule } from './registry-module';
import { terminalProgress, type ProgressSink } from './progress';
import { runOne, scenarioSeeds } from './run-one';
import { summarizeRuns } from './summary';
import type { TraceCaptureOptions } from './trace-capture';
import type { ExperimentResult, RunResult } from './types';

/** What onProgress receives after each run. */
export interface ExperimentProgress {
  done: number;
  total: number;
  run: RunResult;
}

/** Options of runExperiment; everything is optional. */
export interface RunExperimentOptions {
  /** Plugins and implementations for runs in this thread (default: the registry module's, else built-ins only). */
  registry?: PluginRegistry;
  /** A built CommonJS module exporting the registry (see loadRegistryModule): needed for workers. */
  registryModule?: string;
  /** Strategies to compare instead of the scenario's. */
  strategies?: string[];
  /** Seeds instead of the scenario's: a count N (1..N) or a list. */
  seeds?: number | number[];
  /**
   * Worker threads (0: run in this thread). Default: one per CPU (at most one per run) when a
   * registry module is given and the built worker exists, else 0. Without either, runs stay in
   * this thread whatever is asked.
   */
  workers?: number;
  /** Called after each run (in completion order). */
  onProgress?: (p: ExperimentProgress) => void;
  /** Where progress goes (default: a bar on stderr when it is a TTY, silent otherwise). */
  progress?: ProgressSink | false;
  /** Capture a trace of the first seed of each strategy (RunResult.trace). */
  trace?: boolean | TraceCaptureOptions;
  /** Check the kernel's invariants after each run (RunResult.invariants). */
  checkInvariants?: boolean;
  /** The compiled worker entry to use (default: the one beside this file, WORKER_FILE). */
  workerFile?: string;
}

/**
 * runExperiment - run @scenario (from loadScenario) as the options say.
 *
 * Return: the ExperimentResult; runs that hit a simulated failure carry `error` and are left out
 * of their strategy's aggregate. Throws ScenarioError, before anything runs, when the strategies
 * or seeds (from the scenario or the options) are unknown to the registry or contradictory.
 */
export async function runExperiment(
  scenario: Scenario,
  opts: RunExperimentOptions = {},
): Promise<ExperimentResult> {
  const wall0 = performance.now();
  const registry =
    opts.registry ?? (opts.registryModule ? loadRegistryModule(opts.registryModule) : createPluginRegistry());
  const s: Scenario = {
    ...scenario,
    strategies: opts.strategies ?? scenario.strategies,
    seeds: opts.seeds ?? scenario.seeds,
  };
  const issues = checkScenario(s, registry);
  if (s.strategies.length === 0) issues.push({ path: ['strategies'], message: 'no strategy to run' });
  if (issues.length > 0)
    throw new ScenarioError(
      issues.map((i) => ({ file: s.name, path: formatPath(i.path), message: i.message })),
    );
  const seeds = scenarioSeeds(s);
  const jobs: PoolJob[] = [];
  for (const strategy of s.strategies)
    seeds.forEach((seed, i) => jobs.push({ strategy, seed, trace: !!opts.trace && i === 0 }));
  const total = jobs.length;
  const workerFile = opts.workerFile ?? WORKER_FILE;
  const canWork = !!opts.registryModule && workerAvailable(workerFile);
  const workers = canWork ? Math.min(opts.workers ?? availableParallelism(), total) : 0;
  const progress = opts.progress === false ? null : (opts.progress ?? terminalProgress());
  let done = 0;
  const report = (r: RunResult) => {
    done++;
    progress?.tick(`${r.strategy} seed ${r.seed}${r.error ? ' (failed)' : ''}`);
    opts.onProgress?.({ done, total, run: r });
  };
  let runs: RunResult[];
  progress?.start(total);
  try {
    if (workers > 0) {
      runs = await runInWorkers(
        {
          registryModule: opts.registryModule!,
          scenario: s,
          options: { checkInvariants: opts.checkInvariants, trace: opts.trace },
        },
        jobs,
        workers,
        (_i, r) => report(r),
        workerFile,
      );
    } else {
      runs = [];
      for (const j of jobs) {
        const r = await runOne(s, j.strategy, j.seed, registry, {
          checkInvariants: opts.checkInvariants,
          trace: j.trace ? opts.trace : false,
        });
        runs.push(r);
        report(r);
      }
    }
  } finally {
    progress?.stop();
  }
  return {
    scenario: s,
    seeds,
    strategies: [...s.strategies],
    durationNs: parseDuration(s.duration),
    runs,
    summary: summarizeRuns(s.strategies, runs),
    wallMs: performance.now() - wall0,
    workers,
  };
}
