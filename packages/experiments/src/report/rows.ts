/**
 * The rows of the comparison (terminal table and HTML table): which metrics, in which order,
 * how each prints. Split into what the application sees and what the rest of the system pays.
 */
import type { RunMetrics } from '../metrics';
import { fmtBytes, fmtCount, fmtNs, fmtPct, fmtRate, fmtRatio } from './format';

/** MetricRow - one row: a label, the group, and how to read and print the value. */
export interface MetricRow {
  label: string;
  group: 'application' | 'system';
  value(m: RunMetrics): number | null;
  format(v: number | null): string;
}

const row = (
  group: MetricRow['group'],
  label: string,
  value: MetricRow['value'],
  format: MetricRow['format'],
): MetricRow => ({ group, label, value, format });

/** METRIC_ROWS - every row, in display order. */
export const METRIC_ROWS: readonly MetricRow[] = [
  row('application', 'DMA latency p50', (m) => m.dma_latency_ns?.p50 ?? null, fmtNs),
  row('application', 'DMA latency p99', (m) => m.dma_latency_ns?.p99 ?? null, fmtNs),
  row('application', 'DMA latency p99.9', (m) => m.dma_latency_ns?.p999 ?? null, fmtNs),
  row('application', 'DMA latency max', (m) => m.dma_latency_ns?.max ?? null, fmtNs),
  row('application', 'throughput', (m) => m.throughput_bytes_per_s, fmtRate),
  row('application', 'requests', (m) => m.dma_requests, fmtCount),
  row('application', 'request errors', (m) => m.dma_errors, fmtCount),
  row('application', 'data mismatches', (m) => m.data_mismatch, fmtCount),
  row('application', 'IO page faults', (m) => m.iopf_count, fmtCount),
  row('application', 'IOPF CPU time', (m) => m.iopf_cpu_ns, fmtNs),
  row('application', 'IOPF response p99', (m) => m.iopf_response_ns?.p99 ?? null, fmtNs),
  row('application', 'ATC hit rate', (m) => m.atc_hit_rate, fmtPct),
  row('application', 'IOTLB hit rate', (m) => m.iotlb_hit_rate, fmtPct),
  row('application', 'CPU page faults', (m) => m.cpu_fault_count, fmtCount),
  row('system', 'pinned (peak)', (m) => m.pinned_bytes.peak, fmtBytes),
  row('system', 'pinned (end)', (m) => m.pinned_bytes.end, fmtBytes),
  row('system', 'mlocked (peak)', (m) => m.locked_bytes.peak, fmtBytes),
  row('system', 'CMA alloc success', (m) => m.cma_alloc_success_rate, fmtPct),
  row('system', 'CMA alloc latency p99', (m) => m.cma_alloc_latency_ns?.p99 ?? null, fmtNs),
  row('system', 'THP coverage', (m) => m.thp_coverage, fmtPct),
  row('system', '2 MiB pages assembled', (m) => m.hugepage_2m_assembled, fmtCount),
  row('system', '1 GiB pages assembled', (m) => m.hugepage_1g_assembled, fmtCount),
  row('system', 'huge pages not assembled', (m) => m.hugepage_failed, fmtCount),
  row('system', 'migrations failed (pages)', (m) => m.migrate_fail, fmtCount),
  row('system', 'pages migrated', (m) => m.migrate_success, fmtCount),
  row('system', 'compaction stalls', (m) => m.compact_stall, fmtCount),
  row('system', 'NUMA pages migrated', (m) => m.numa_pages_migrated, fmtCount),
  row('system', 'NUMA-local fraction', (m) => m.numa_local_fraction, fmtPct),
  row('system', 'memory offline success', (m) => m.offline_success_rate, fmtPct),
  row('system', 'overcommit reached', (m) => m.overcommit_reached, fmtRatio),
];

/**
 * applicableRows - the rows with a value for at least one of @metrics (a scenario without CMA
 * activity shows no CMA rows).
 */
export function applicableRows(metrics: ReadonlyArray<RunMetrics | null>): MetricRow[] {
  return METRIC_ROWS.filter((r) => metrics.some((m) => m !== null && r.value(m) !== null));
}
