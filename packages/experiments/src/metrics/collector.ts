/**
 * MetricsCollector - gathers the metrics of one run: workloads and background activities report
 * what they observe (request completions, CMA allocations, huge pages, offline attempts); the
 * kernel's counters are read as deltas from a baseline taken at begin(); time series are sampled
 * on the kernel's clock every `sampleEveryNs` of simulated time.
 *
 * Sampling reads state only, from background events, so it neither changes what the simulation
 * does nor keeps runUntilIdle going.
 */
import { scheduleBackground, type Kernel, type Process } from '@svasim/kernel';
import {
  iommuRates,
  lockedBytes,
  numaLocalFraction,
  overcommitRatio,
  pinnedBytes,
  thpCoverage,
  translationTotals,
  type TranslationTotals,
} from './kernel-probes';
import { LatencyRecorder } from './latency';
import { MigrateReasonCounter } from './migrate-reasons';
import type { MetricName, PeakEnd, RunMetrics, TimeSeries } from './types';

/** What finish() hands back. */
export interface CollectedRun {
  metrics: RunMetrics;
  series: TimeSeries;
  /** Why each null metric is null. */
  unavailable: Partial<Record<MetricName, string>>;
  /** The DMA latency histogram, encoded (LatencyRecorder), for merging over seeds; '' when empty. */
  dmaLatencyHistogram: string;
  /** The CMA latency histogram, encoded; '' when empty. */
  cmaLatencyHistogram: string;
}

/** Options of a MetricsCollector. */
export interface MetricsCollectorOptions {
  /** Time-series period, simulated ns (> 0). */
  sampleEveryNs: number;
}

const VMSTAT_DELTAS = [
  'iopf_count',
  'pgfault',
  'pgmigrate_success',
  'pgmigrate_fail',
  'compact_stall',
  'numa_pages_migrated',
  'cma_alloc_success',
  'cma_alloc_fail',
] as const;

/**
 * MetricsCollector - one per run. Call begin() once the processes exist and before workloads
 * start, feed it while the kernel runs, then finish() once. Nothing to release: its sampling
 * event stops rescheduling itself after finish().
 */
export class MetricsCollector {
  private readonly sampleEveryNs: number;
  private readonly watched: Process[] = [];
  private readonly dma = new LatencyRecorder();
  private readonly cma = new LatencyRecorder();
  private dmaRequests = 0;
  private dmaErrors = 0;
  private dmaBytes = 0;
  private dmaMax = 0;
  private cmaMax = 0;
  private dataMismatch = 0;
  private readonly hugepages = { '2MiB': { ok: 0, tries: 0 }, '1GiB': { ok: 0, tries: 0 } };
  private offline = { ok: 0, tries: 0 };
  private readonly extra: Record<string, number> = {};
  /** Pages migrated per reason (extra `pgmigrate_<reason>`). */
  private readonly migrations = new MigrateReasonCounter();
  private startNs = 0;
  private base: Record<string, number> = {};
  private baseTranslations: TranslationTotals | null = null;
  private baseIopfCpuNs = 0;
  private pinned: PeakEnd = { peak: 0, end: 0 };
  private locked: PeakEnd = { peak: 0, end: 0 };
  private overcommit = 0;
  private readonly series: TimeSeries;
  private lastSampleBytes = 0;
  private lastSampleNs = 0;
  private finished = false;
  private readonly onTick = (): void => this.tick();

  constructor(
    readonly kernel: Kernel,
    opts: MetricsCollectorOptions,
  ) {
    if (!(opts.sampleEveryNs > 0)) throw new RangeError(`MetricsCollector: sampleEveryNs must be > 0`);
    this.sampleEveryNs = Math.round(opts.sampleEveryNs);
    this.series = {
      sampleEveryNs: this.sampleEveryNs,
      t: [],
      iopf_count: [],
      pinned_bytes: [],
      throughput_bytes_per_s: [],
    };
  }

  /** watch - count @p in the per-process metrics (THP coverage, NUMA locality, locked bytes). */
  watch(p: Process): void {
    if (!this.watched.includes(p)) this.watched.push(p);
  }

  /** begin - take the counters' baseline now and start sampling. Call once. */
  begin(): void {
    const k = this.kernel;
    this.startNs = k.now();
    this.lastSampleNs = this.startNs;
    const vm = k.counters;
    for (const name of VMSTAT_DELTAS) this.base[name] = vm.read(name);
    this.baseTranslations = translationTotals(k);
    this.baseIopfCpuNs = k.iopf.stats().cpuNs;
    this.migrations.attach(k);
    this.observe();
    scheduleBackground(k.scheduler, this.sampleEveryNs, this.onTick);
  }

  /**
   * recordRequest - a DMA request completed: @status 0 or -errno, @latencyNs as the device
   * measured it, @bytes consumed. Only successful requests count in latency and throughput.
   */
  recordRequest(status: number, latencyNs: number, bytes: number): void {
    if (status < 0) {
      this.dmaErrors++;
      return;
    }
    this.dmaRequests++;
    this.dmaBytes += bytes;
    this.dma.record(latencyNs);
    if (latencyNs > this.dmaMax) this.dmaMax = Math.round(latencyNs);
  }

  /** recordMismatch - a verified copy did not carry the expected stamp. */
  recordMismatch(): void {
    this.dataMismatch++;
  }

  /** recordCmaAlloc - a CMA allocation attempt took @latencyNs (its success is in vmstat). */
  recordCmaAlloc(latencyNs: number): void {
    this.cma.record(latencyNs);
    if (latencyNs > this.cmaMax) this.cmaMax = Math.round(latencyNs);
  }

  /** recordHugepage - an attempt to assemble a run-time huge page of @size. */
  recordHugepage(size: '2MiB' | '1GiB', ok: boolean): void {
    const h = this.hugepages[size];
    h.tries++;
    if (ok) h.ok++;
  }

  /** recordOffline - a memory-offline attempt. */
  recordOffline(ok: boolean): void {
    this.offline.tries++;
    if (ok) this.offline.ok++;
  }

  /** count - add @delta to the extra counter @name (workload- or activity-specific). */
  count(name: string, delta = 1): void {
    this.extra[name] = (this.extra[name] ?? 0) + delta;
  }

  /** setCount - set the extra counter @name to @value (a gauge an activity keeps current). */
  setCount(name: string, value: number): void {
    this.extra[name] = value;
  }

  /**
   * observe - update the peaks of sampled quantities now (pinned and locked bytes, overcommit).
   * Workloads call it after preparing buffers so a peak between samples is not missed.
   */
  observe(): void {
    const k = this.kernel;
    const pinned = pinnedBytes(k);
    const locked = lockedBytes(this.watched);
    if (pinned > this.pinned.peak) this.pinned.peak = pinned;
    if (locked > this.locked.peak) this.locked.peak = locked;
    this.pinned.end = pinned;
    this.locked.end = locked;
    const oc = overcommitRatio(k);
    if (oc > this.overcommit) this.overcommit = oc;
  }

  private tick(): void {
    if (this.finished) return;
    this.sample();
    scheduleBackground(this.kernel.scheduler, this.sampleEveryNs, this.onTick);
  }

  private sample(): void {
    const k = this.kernel;
    const now = k.now();
    this.observe();
    const s = this.series;
    const dt = now - this.lastSampleNs;
    s.t.push(now);
    s.iopf_count.push(k.counters.read('iopf_count') - this.base.iopf_count);
    s.pinned_bytes.push(this.pinned.end);
    s.throughput_bytes_per_s.push(
      dt > 0 ? Math.round(((this.dmaBytes - this.lastSampleBytes) * 1e9) / dt) : 0,
    );
    this.lastSampleBytes = this.dmaBytes;
    this.lastSampleNs = now;
  }

  /**
   * finish - stop sampling and compute the run's metrics (a last sample is taken at the end when
   * the period did not land on it).
   *
   * Return: metrics, series, reasons for null metrics and the encoded histograms. Call once.
   */
  finish(): CollectedRun {
    const k = this.kernel;
    if (this.series.t[this.series.t.length - 1] !== k.now()) this.sample();
    this.finished = true;
    this.migrations.detach();
    const vm = k.counters;
    const d = (name: (typeof VMSTAT_DELTAS)[number]) => vm.read(name) - this.base[name];
    const seconds = (k.now() - this.startNs) / 1e9;
    const unavailable: Partial<Record<MetricName, string>> = {};
    const rates = iommuRates(translationTotals(k), this.baseTranslations ?? translationTotals(k));
    if (rates.atcHitRate === null) unavailable.atc_hit_rate = 'no device with an ATC translated anything';
    if (rates.iotlbHitRate === null) unavailable.iotlb_hit_rate = 'no translation reached the IOTLB';
    const dmaSummary = this.dma.summary();
    if (dmaSummary) dmaSummary.max = this.dmaMax;
    else unavailable.dma_latency_ns = 'no DMA request completed successfully';
    const cmaTries = d('cma_alloc_success') + d('cma_alloc_fail');
    if (cmaTries === 0) unavailable.cma_alloc_success_rate = 'no CMA allocation was attempted';
    const cmaSummary = this.cma.summary();
    if (cmaSummary) cmaSummary.max = this.cmaMax;
    else unavailable.cma_alloc_latency_ns = 'no CMA allocation was timed (no cma-alloc activity)';
    const thp = thpCoverage(k, this.watched);
    if (thp === null) unavailable.thp_coverage = 'the workload processes have no resident anonymous memory';
    const numa = numaLocalFraction(k, this.watched);
    if (numa === null)
      unavailable.numa_local_fraction = 'the workload processes have no resident anonymous memory';
    const hp = this.hugepages;
    const hpTries = hp['2MiB'].tries + hp['1GiB'].tries;
    if (hp['2MiB'].tries === 0) unavailable.hugepage_2m_assembled = 'no 2 MiB hugepage-alloc activity';
    if (hp['1GiB'].tries === 0) unavailable.hugepage_1g_assembled = 'no 1 GiB hugepage-alloc activity';
    if (hpTries === 0) unavailable.hugepage_failed = 'no hugepage-alloc activity';
    if (this.offline.tries === 0) unavailable.offline_success_rate = 'no memory-offline activity';
    const iopf = k.iopf.stats();
    const metrics: RunMetrics = {
      dma_latency_ns: dmaSummary,
      dma_requests: this.dmaRequests,
      dma_errors: this.dmaErrors,
      dma_bytes: this.dmaBytes,
      throughput_bytes_per_s: seconds > 0 ? Math.round(this.dmaBytes / seconds) : 0,
      iopf_count: d('iopf_count'),
      iopf_cpu_ns: Math.round(iopf.cpuNs - this.baseIopfCpuNs),
      iopf_response_ns:
        iopf.latency.count > 0
          ? {
              p50: Math.round(iopf.latency.p50Ns),
              p99: Math.round(iopf.latency.p99Ns),
              max: Math.round(iopf.latency.maxNs),
            }
          : null,
      cpu_fault_count: d('pgfault'),
      atc_hit_rate: rates.atcHitRate,
      iotlb_hit_rate: rates.iotlbHitRate,
      pinned_bytes: { ...this.pinned },
      locked_bytes: { ...this.locked },
      cma_alloc_success_rate: cmaTries > 0 ? d('cma_alloc_success') / cmaTries : null,
      cma_alloc_latency_ns: cmaSummary,
      thp_coverage: thp,
      hugepage_2m_assembled: hp['2MiB'].tries > 0 ? hp['2MiB'].ok : null,
      hugepage_1g_assembled: hp['1GiB'].tries > 0 ? hp['1GiB'].ok : null,
      hugepage_failed: hpTries > 0 ? hpTries - hp['2MiB'].ok - hp['1GiB'].ok : null,
      migrate_success: d('pgmigrate_success'),
      migrate_fail: d('pgmigrate_fail'),
      compact_stall: d('compact_stall'),
      numa_pages_migrated: d('numa_pages_migrated'),
      offline_success_rate: this.offline.tries > 0 ? this.offline.ok / this.offline.tries : null,
      numa_local_fraction: numa,
      overcommit_reached: this.overcommit,
      data_mismatch: this.dataMismatch,
      extra: { ...this.migrations.extras(), ...this.extra },
    };
    if (iopf.latency.count === 0) unavailable.iopf_response_ns = 'no IO page fault was answered';
    return {
      metrics,
      series: this.series,
      unavailable,
      dmaLatencyHistogram: this.dma.count > 0 ? this.dma.encode() : '',
      cmaLatencyHistogram: this.cma.count > 0 ? this.cma.encode() : '',
    };
  }
}
