/**
 * experimentJson - the `--json` document of API.md:
 *
 *   { scenario, description, durationNs, seeds, strategies,
 *     results: [ { strategy, runs, failed, metrics, unavailable? }          (one per strategy,
 *                                                                           aggregated over seeds)
 *              ...,
 *                { strategy, seed, metrics, error?, unavailable?, series? }  (one per run) ] }
 *
 * Aggregates come first, in strategy order, so `results.find(r => r.strategy === 'none')` is the
 * aggregate; per-run entries are those with a `seed`. Aggregated metrics are means over the
 * successful seeds, except latency percentiles, which come from the merged histograms.
 */
import type { RunMetrics, TimeSeries } from '../metrics';
import type { ExperimentResult, RunError } from '../runner';

/** One entry of `results`. */
export interface JsonResult {
  strategy: string;
  /** Present on per-run entries only. */
  seed?: number;
  /** Aggregates only: runs made and how many failed. */
  runs?: number;
  failed?: number;
  metrics: RunMetrics | null;
  unavailable?: Record<string, string>;
  error?: RunError;
  series?: TimeSeries;
}

/** The document. */
export interface ExperimentJson {
  scenario: string;
  description: string;
  durationNs: number;
  seeds: number[];
  strategies: string[];
  results: JsonResult[];
}

/**
 * experimentJson - build the document from @result.
 * @opts.series: include each run's time series (default false: the document stays small).
 *
 * Return: a plain object (JSON.stringify it).
 */
export function experimentJson(result: ExperimentResult, opts: { series?: boolean } = {}): ExperimentJson {
  const results: JsonResult[] = [];
  for (const s of result.summary) {
    const e: JsonResult = {
      strategy: s.strategy,
      runs: s.seeds.length,
      failed: s.failed,
      metrics: s.metrics,
    };
    if (Object.keys(s.unavailable).length) e.unavailable = s.unavailable as Record<string, string>;
    results.push(e);
  }
  for (const r of result.runs) {
    const e: JsonResult = { strategy: r.strategy, seed: r.seed, metrics: r.metrics };
    if (Object.keys(r.unavailable).length) e.unavailable = r.unavailable as Record<string, string>;
    if (r.error) e.error = r.error;
    if (opts.series && r.series) e.series = r.series;
    results.push(e);
  }
  return {
    scenario: result.scenario.name,
    description: result.scenario.description,
    durationNs: result.durationNs,
    seeds: result.seeds,
    strategies: result.strategies,
    results,
  };
}
