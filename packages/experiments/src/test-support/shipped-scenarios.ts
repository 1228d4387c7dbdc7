/**
 * Helpers for the tests of the shipped experiments (src/shipped/*.test.ts; not built into dist):
 * load a file of the repository's scenarios/ folder with the shipped registry, shorten it, run it
 * in this thread.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRegistry } from '../registry';
import { runExperiment, type ExperimentResult, type PluginRegistry, type RunResult } from '../runner';
import { loadScenario, validateScenario, type Scenario, type ScenarioInput } from '../scenario';
import type { RunMetrics } from '../metrics';

/** The repository's scenarios/ folder. */
export const SCENARIOS_DIR = join(__dirname, '..', '..', '..', '..', 'scenarios');

/** The shipped registry, built once per test file. */
export const shippedRegistry: PluginRegistry = defaultRegistry();

/**
 * loadShipped - scenarios/@file validated against the shipped registry, with @over applied (a
 * shorter duration, fewer seeds, other strategies) and validated again.
 */
export function loadShipped(file: string, over: Partial<ScenarioInput> = {}): Scenario {
  const path = join(SCENARIOS_DIR, file);
  const s = loadScenario(readFileSync(path, 'utf8'), file, shippedRegistry);
  return Object.keys(over).length ? validateScenario({ ...s, ...over }, file, shippedRegistry) : s;
}

/** runShipped - run @s in this thread, silently; every run must succeed. */
export async function runShipped(s: Scenario): Promise<ExperimentResult> {
  const r = await runExperiment(s, { registry: shippedRegistry, progress: false, workers: 0 });
  for (const run of r.runs) {
    if (run.error)
      throw new Error(`${run.strategy} seed ${run.seed}: ${run.error.name}: ${run.error.message}`);
  }
  return r;
}

/** metricsOf - the aggregate metrics of @strategy in @r (throws when it has none). */
export function metricsOf(r: ExperimentResult, strategy: string): RunMetrics {
  const m = r.summary.find((x) => x.strategy === strategy)?.metrics;
  if (!m) throw new Error(`no metrics for strategy '${strategy}'`);
  return m;
}

/** comparable - a run without its host time, the one thing allowed to differ between two runs. */
export function comparable(r: RunResult): RunResult {
  return { ...r, wallMs: 0 };
}
