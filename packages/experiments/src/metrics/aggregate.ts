/**
 * aggregateRuns - one strategy's metrics over its seeds: latency distributions are merged
 * (histograms added, so percentiles are of every request of every seed), every other number is
 * the mean over the runs that have it.
 */
import { LatencyRecorder } from './latency';
import type { LatencySummary, RunMetrics } from './types';

/** What aggregateRuns needs of each run. */
export interface AggregatableRun {
  metrics: RunMetrics;
  dmaLatencyHistogram: string;
  cmaLatencyHistogram: string;
}

/** An aggregate: the metrics and the merged DMA latency CDF (for charts). */
export interface Aggregate {
  metrics: RunMetrics;
  dmaLatencyCdf: Array<[number, number]>;
  dmaLatencyHistogram: string;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Mean over the non-null values, null when every value is null. */
function meanOf(values: Array<number | null>): number | null {
  const xs = values.filter((v): v is number => v !== null);
  return xs.length ? mean(xs) : null;
}

function mergeLatency(
  runs: readonly AggregatableRun[],
  pick: (r: AggregatableRun) => LatencySummary | null,
  hist: (r: AggregatableRun) => string,
): { summary: LatencySummary | null; recorder: LatencyRecorder } {
  const recorder = new LatencyRecorder();
  let max = 0;
  for (const r of runs) {
    const s = pick(r);
    if (!s || !hist(r)) continue;
    recorder.add(new LatencyRecorder(hist(r)));
    if (s.max > max) max = s.max;
  }
  const summary = recorder.summary();
  if (summary) {
    summary.max = max;
    let n = 0;
    let sum = 0;
    for (const r of runs) {
      const s = pick(r);
      if (s) {
        n += s.count;
        sum += s.mean * s.count;
      }
    }
    summary.mean = n > 0 ? Math.round(sum / n) : 0;
  }
  return { summary, recorder };
}

/**
 * aggregateRuns - combine @runs (one strategy, several seeds, all successful) into one.
 *
 * Return: the aggregate; throws RangeError for an empty list.
 */
export function aggregateRuns(runs: readonly AggregatableRun[]): Aggregate {
  if (runs.length === 0) throw new RangeError('aggregateRuns: no runs');
  const m = runs.map((r) => r.metrics);
  const avg = (f: (x: RunMetrics) => number) => mean(m.map(f));
  const avgN = (f: (x: RunMetrics) => number | null) => meanOf(m.map(f));
  const dma = mergeLatency(
    runs,
    (r) => r.metrics.dma_latency_ns,
    (r) => r.dmaLatencyHistogram,
  );
  const cma = mergeLatency(
    runs,
    (r) => r.metrics.cma_alloc_latency_ns,
    (r) => r.cmaLatencyHistogram,
  );
  const iopfRuns = m.filter((x) => x.iopf_response_ns !== null).map((x) => x.iopf_response_ns!);
  const extraKeys = [...new Set(m.flatMap((x) => Object.keys(x.extra)))].sort();
  const metrics: RunMetrics = {
    dma_latency_ns: dma.summary,
    dma_requests: avg((x) => x.dma_requests),
    dma_errors: avg((x) => x.dma_errors),
    dma_bytes: avg((x) => x.dma_bytes),
    throughput_bytes_per_s: avg((x) => x.throughput_bytes_per_s),
    iopf_count: avg((x) => x.iopf_count),
    iopf_cpu_ns: avg((x) => x.iopf_cpu_ns),
    iopf_response_ns: iopfRuns.length
      ? {
          p50: mean(iopfRuns.map((x) => x.p50)),
          p99: mean(iopfRuns.map((x) => x.p99)),
          max: Math.max(...iopfRuns.map((x) => x.max)),
        }
      : null,
    cpu_fault_count: avg((x) => x.cpu_fault_count),
    atc_hit_rate: avgN((x) => x.atc_hit_rate),
    iotlb_hit_rate: avgN((x) => x.iotlb_hit_rate),
    pinned_bytes: { peak: avg((x) => x.pinned_bytes.peak), end: avg((x) => x.pinned_bytes.end) },
    locked_bytes: { peak: avg((x) => x.locked_bytes.peak), end: avg((x) => x.locked_bytes.end) },
    cma_alloc_success_rate: avgN((x) => x.cma_alloc_success_rate),
    cma_alloc_latency_ns: cma.summary,
    thp_coverage: avgN((x) => x.thp_coverage),
    hugepage_2m_assembled: avgN((x) => x.hugepage_2m_assembled),
    hugepage_1g_assembled: avgN((x) => x.hugepage_1g_assembled),
    hugepage_failed: avgN((x) => x.hugepage_failed),
    migrate_success: avg((x) => x.migrate_success),
    migrate_fail: avg((x) => x.migrate_fail),
    compact_stall: avg((x) => x.compact_stall),
    numa_pages_migrated: avg((x) => x.numa_pages_migrated),
    offline_success_rate: avgN((x) => x.offline_success_rate),
    numa_local_fraction: avgN((x) => x.numa_local_fraction),
    overcommit_reached: avg((x) => x.overcommit_reached),
    data_mismatch: avg((x) => x.data_mismatch),
    extra: Object.fromEntries(extraKeys.map((k) => [k, avg((x) => x.extra[k] ?? 0)])),
  };
  return {
    metrics,
    dmaLatencyCdf: dma.recorder.cdf(),
    dmaLatencyHistogram: dma.recorder.count > 0 ? dma.recorder.encode() : '',
  };
}
