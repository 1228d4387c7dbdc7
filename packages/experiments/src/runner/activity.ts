/**
 * The seams workloads and background activities plug into. A workload drives one scenario
 * process (its accelerator requests); a background activity is the rest of the system (another
 * driver's CMA allocations, compaction, a fork storm...). Both run as kernel tasks in simulated
 * time, report what they observe to the run's MetricsCollector, and are built by factories the
 * PluginRegistry maps kinds to, so implementations can be added without touching the runner.
 */
import type { IRng, Kernel, Process } from '@svasim/kernel';
import type { MetricsCollector } from '../metrics';
import type { BackgroundSpec, ProcessSpec, Scenario, WorkloadSpec } from '../scenario';

/** What every activity sees of its run. */
export interface ActivityContext {
  readonly kernel: Kernel;
  readonly scenario: Scenario;
  /** The strategy of this run (API.md name). */
  readonly strategy: string;
  readonly seed: number;
  readonly metrics: MetricsCollector;
  /** This activity's own random stream (kernel.rng, named after it: reproducible per seed). */
  readonly rng: IRng;
  /** Simulated time the run ends at (ns). */
  readonly endNs: number;
  /** The scenario's processes by name (workload processes). */
  readonly processes: ReadonlyMap<string, Process>;
  /** True until the run's time is up; loops check it before each new piece of work. */
  running(): boolean;
}

/** What a workload additionally sees: its own process and its entry in the scenario. */
export interface WorkloadContext extends ActivityContext {
  readonly proc: Process;
  readonly process: ProcessSpec;
}

/**
 * Workload - one process's application. start() spawns its task(s) (Process.run or
 * kernel.tasks.spawn; tasks block only on kernel primitives) at the run's start; an error thrown
 * from start() or from a task fails the run (reported in its result, never crashing the
 * experiment). stop() is called once the run's time is up, before metrics are collected.
 */
export interface Workload {
  start(ctx: WorkloadContext): void;
  stop?(): void;
}

/**
 * Background - one background activity, started after every workload. Expected failures of the
 * activity itself (an allocation that fails under pressure) are counted, not thrown.
 */
export interface Background {
  start(ctx: ActivityContext): void;
  stop?(): void;
}

/** WorkloadFactory - builds the workload for one parsed spec of its kind. */
export type WorkloadFactory = (spec: WorkloadSpec) => Workload;
/** BackgroundFactory - builds the activity for one parsed spec of its kind. */
export type BackgroundFactory = (spec: BackgroundSpec) => Background;

/**
 * sleepUntil - block @task until simulated time @ns (no-op when already there).
 *
 * Return: the promise of Task.sleep; resolves in simulated time.
 */
export function sleepUntil(k: Kernel, task: { sleep(ns: number): Promise<void> }, ns: number): Promise<void> {
  const now = k.now();
  return task.sleep(ns > now ? ns - now : 0);
}
