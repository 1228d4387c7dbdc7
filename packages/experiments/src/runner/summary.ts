/**
 * summarizeRuns - one StrategySummary per strategy from the runs: aggregates over the seeds that
 * succeeded (aggregateRuns), the mean time series and the reasons for null metrics.
 */
import { aggregateRuns, type MetricName, type TimeSeries } from '../metrics';
import type { RunResult, StrategySummary } from './types';

/** meanSeries - the pointwise mean of @series (truncated to the shortest), null for none. */
export function meanSeries(series: readonly TimeSeries[]): TimeSeries | null {
  if (series.length === 0) return null;
  const n = Math.min(...series.map((s) => s.t.length));
  const avg = (pick: (s: TimeSeries) => number[]) =>
    Array.from({ length: n }, (_, i) => series.reduce((a, s) => a + pick(s)[i], 0) / series.length);
  return {
    sampleEveryNs: series[0].sampleEveryNs,
    t: series[0].t.slice(0, n),
    iopf_count: avg((s) => s.iopf_count),
    pinned_bytes: avg((s) => s.pinned_bytes),
    throughput_bytes_per_s: avg((s) => s.throughput_bytes_per_s),
  };
}

/**
 * summarizeRuns - the summaries of @strategies (in order) from @runs.
 *
 * Return: one StrategySummary per strategy; a strategy whose runs all failed has null metrics.
 */
export function summarizeRuns(strategies: readonly string[], runs: readonly RunResult[]): StrategySummary[] {
  return strategies.map((strategy) => {
    const mine = runs.filter((r) => r.strategy === strategy);
    const ok = mine.filter((r) => !r.error && r.metrics !== null);
    const agg = ok.length
      ? aggregateRuns(
          ok.map((r) => ({
            metrics: r.metrics!,
            dmaLatencyHistogram: r.dmaLatencyHistogram,
            cmaLatencyHistogram: r.cmaLatencyHistogram,
          })),
        )
      : null;
    const unavailable: Partial<Record<MetricName, string>> = {};
    for (const r of ok) Object.assign(unavailable, r.unavailable);
    if (agg)
      for (const key of Object.keys(unavailable) as MetricName[])
        if (agg.metrics[key] !== null) delete unavailable[key];
    return {
      strategy,
      seeds: mine.map((r) => r.seed),
      failed: mine.length - ok.length,
      metrics: agg?.metrics ?? null,
      dmaLatencyCdf: agg?.dmaLatencyCdf ?? [],
      series: meanSeries(ok.map((r) => r.series).filter((s): s is TimeSeries => s !== null)),
      unavailable,
    };
  });
}
