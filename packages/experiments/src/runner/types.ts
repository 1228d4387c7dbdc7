/**
 * What the runner produces: one RunResult per (strategy, seed), one StrategySummary per strategy
 * (aggregated over its successful seeds) and the ExperimentResult holding them.
 */
import type { MetricName, RunMetrics, TimeSeries } from '../metrics';
import type { Scenario } from '../scenario';
import type { CapturedTrace } from './trace-capture';

/** RunError - a simulated failure that ended a run (reported, never thrown to the caller). */
export interface RunError {
  /** 'boot': createKernel refused (bad option, a plugin failed to realize); 'setup': a workload
   *  or activity could not start; 'run': a task threw while the kernel ran. */
  phase: 'boot' | 'setup' | 'run';
  /** The error's class name (KernelError, SyscallError, RangeError...). */
  name: string;
  message: string;
  /** errno name and negative number, for SyscallError and KernelError. */
  code?: string;
  errno?: number;
  /** Simulated time of the failure. */
  atNs: number;
}

/** RunResult - one run (one strategy, one seed). */
export interface RunResult {
  strategy: string;
  seed: number;
  /** Null when the run failed before metrics could be collected (boot, setup). */
  metrics: RunMetrics | null;
  series: TimeSeries | null;
  /** Why each null metric is null. */
  unavailable: Partial<Record<MetricName, string>>;
  /** Encoded HDR histograms (LatencyRecorder), '' when empty: for merging over seeds. */
  dmaLatencyHistogram: string;
  cmaLatencyHistogram: string;
  /** Simulated time the run reached, ns. */
  simNs: number;
  /** Host time the run took, ms (not deterministic: never compare it). */
  wallMs: number;
  /** checkInvariants() after the run, when asked for (empty: all hold). */
  invariants?: string[];
  /** Set when the run hit a simulated failure; metrics are then partial or null. */
  error?: RunError;
  /** The captured trace, for the runs the trace was asked for. */
  trace?: CapturedTrace;
}

/** StrategySummary - one strategy over its seeds. */
export interface StrategySummary {
  strategy: string;
  /** Seeds run, and how many of them failed (failed runs are left out of the aggregate). */
  seeds: number[];
  failed: number;
  /** Means over the successful runs (latency: merged histograms); null when every run failed. */
  metrics: RunMetrics | null;
  /** Merged DMA latency CDF points [ns, fraction]. */
  dmaLatencyCdf: Array<[number, number]>;
  /** Pointwise mean of the successful runs' time series. */
  series: TimeSeries | null;
  /** Union of the runs' reasons for null metrics. */
  unavailable: Partial<Record<MetricName, string>>;
}

/** ExperimentResult - everything runExperiment produced. */
export interface ExperimentResult {
  scenario: Scenario;
  seeds: number[];
  strategies: string[];
  durationNs: number;
  /** One per (strategy, seed), strategies in order, seeds in order within each. */
  runs: RunResult[];
  /** One per strategy, in order. */
  summary: StrategySummary[];
  /** Host time of the whole experiment, ms. */
  wallMs: number;
  /** Worker threads used (0: in process). */
  workers: number;
}
