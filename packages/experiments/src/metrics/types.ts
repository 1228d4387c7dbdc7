/**
 * The metrics of one run, with API.md's names (snake_case, as in the `--json` document), and
 * the time series sampled during the run. docs/experiments.md defines each and names its source.
 */

/** LatencySummary - percentiles of a latency distribution, integer ns (HDR histogram, 3 digits). */
export interface LatencySummary {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** Values recorded. */
  count: number;
  mean: number;
}

/** Peak and end-of-run value of a sampled quantity. */
export interface PeakEnd {
  peak: number;
  end: number;
}

/**
 * RunMetrics - what one run (one strategy, one seed) cost the application and the system.
 * A null means the metric does not apply to this scenario (no CMA allocations were made, say);
 * RunResult.unavailable says why.
 */
export interface RunMetrics {
  /** Device-measured latency of successful DMA requests: doorbell to completion record. */
  dma_latency_ns: LatencySummary | null;
  /** Requests completed successfully / with a negative status. */
  dma_requests: number;
  dma_errors: number;
  /** Source bytes the device consumed in successful requests. */
  dma_bytes: number;
  /** dma_bytes per simulated second of the run. */
  throughput_bytes_per_s: number;
  /** IO page faults (page requests the IOMMU driver read): vmstat iopf_count. */
  iopf_count: number;
  /** CPU time of the IOPF work items (handle_mm_fault plus the handler's service time). */
  iopf_cpu_ns: number;
  /** Page-response latency of IOPF groups (arrival at the IOMMU to response at the device). */
  iopf_response_ns: { p50: number; p99: number; max: number } | null;
  /** CPU page faults (vmstat pgfault). */
  cpu_fault_count: number;
  /** Device translations answered by the device's ATC. */
  atc_hit_rate: number | null;
  /** Translations that missed the ATC and were answered by the IOMMU's IOTLB (not a walk). */
  iotlb_hit_rate: number | null;
  /** Bytes held by FOLL_PIN pins (nr_foll_pin_acquired - nr_foll_pin_released). */
  pinned_bytes: PeakEnd;
  /** Bytes in VM_LOCKED mappings of the workload processes (VmLck). */
  locked_bytes: PeakEnd;
  /** Successful / attempted CMA allocations (vmstat cma_alloc_success, cma_alloc_fail). */
  cma_alloc_success_rate: number | null;
  /** Simulated time each CMA allocation took (migration included), as charged. */
  cma_alloc_latency_ns: LatencySummary | null;
  /** Share of the workload processes' resident anonymous memory mapped by 2 MiB PMDs, at the end. */
  thp_coverage: number | null;
  /** Run-time hugetlb pages assembled by hugepage-alloc activity, per size. */
  hugepage_2m_assembled: number | null;
  hugepage_1g_assembled: number | null;
  /** Attempts that did not assemble a huge page (2 MiB and 1 GiB together). */
  hugepage_failed: number | null;
  /** Pages moved / that failed to move (vmstat pgmigrate_success, pgmigrate_fail). */
  migrate_success: number;
  migrate_fail: number;
  /** Direct compaction stalls (vmstat compact_stall). */
  compact_stall: number;
  /** Pages NUMA balancing moved (vmstat numa_pages_migrated). */
  numa_pages_migrated: number;
  /** Successful / attempted memory-offline operations. */
  offline_success_rate: number | null;
  /** Share of the workload processes' resident pages on the node each runs on, at the end. */
  numa_local_fraction: number | null;
  /** Peak Committed_AS as a share of RAM (> 1: memory overcommitted). */
  overcommit_reached: number;
  /** Copies whose stamp did not arrive (memcpy `verify`): the device wrote where the app does not look. */
  data_mismatch: number;
  /** Counters particular to a workload or background activity (forks, reclaim failures...). */
  extra: Record<string, number>;
}

/** TimeSeries - values sampled every `sampleEveryNs` of simulated time. */
export interface TimeSeries {
  sampleEveryNs: number;
  /** Sample times, ns since boot. */
  t: number[];
  /** IO page faults since the start (cumulative). */
  iopf_count: number[];
  /** Pinned bytes at the sample. */
  pinned_bytes: number[];
  /** DMA bytes per second over the interval ending at the sample. */
  throughput_bytes_per_s: number[];
}

/** MetricName - a key of RunMetrics. */
export type MetricName = keyof RunMetrics;
