/**
 * runOne - one run of a scenario: a fresh kernel booted from the scenario with the devices and
 * the strategy's plugin, the scenario's processes and their workloads, the background
 * activities, `duration` of simulated time, then the metrics. Deterministic for a given
 * (scenario, strategy, seed): everything random comes from the kernel's seeded streams.
 *
 * A simulated failure (a KernelError or SyscallError from booting, setting up or running) ends
 * the run and is returned in its result (`error`), with whatever metrics were collected.
 */
import { KernelError, SyscallError, createKernel, type Kernel, type Process } from '@svasim/kernel';
import { MetricsCollector } from '../metrics';
import { parseDuration, parseSize, scenarioKernelOptions, type Scenario } from '../scenario';
import type { ActivityContext, Background, Workload, WorkloadContext } from './activity';
import { devicePlugins, strategyPlugins, type PluginRegistry } from './registry';
import { TraceCapture, type TraceCaptureOptions } from './trace-capture';
import type { RunError, RunResult } from './types';

/** Options of one run. */
export interface RunOptions {
  /** Capture a trace of this run (see TraceCapture). */
  trace?: boolean | TraceCaptureOptions;
  /** Run kernel.checkInvariants() at the end and report the violations. */
  checkInvariants?: boolean;
}

/** sampleEveryNs - the scenario's sampling period: `sampleEvery`, or duration / 200 (>= 1 ns). */
export function sampleEveryNs(s: Scenario): number {
  if (s.sampleEvery !== undefined) return Math.max(1, parseDuration(s.sampleEvery));
  return Math.max(1, Math.round(parseDuration(s.duration) / 200));
}

/** scenarioSeeds - the seeds a scenario asks for: 1..N for a count, else the list. */
export function scenarioSeeds(s: Scenario): number[] {
  return typeof s.seeds === 'number' ? Array.from({ length: s.seeds }, (_, i) => i + 1) : [...s.seeds];
}

/** toRunError - describe @e as a RunError of @phase at simulated time @atNs. */
export function toRunError(e: unknown, phase: RunError['phase'], atNs: number): RunError {
  const err = e instanceof Error ? e : new Error(String(e));
  const out: RunError = { phase, name: err.name || 'Error', message: err.message, atNs };
  if (e instanceof SyscallError || e instanceof KernelError) {
    out.code = e.code;
    out.errno = e.errno;
  }
  return out;
}

function wallNow(): number {
  return performance.now();
}

/**
 * runOne - run @scenario once with @strategy and @seed, loading plugins from @registry.
 *
 * Return: the RunResult; never rejects: a failure (a simulated one, or a device, strategy or
 * workload the registry cannot provide) is the result's `error`.
 */
export async function runOne(
  scenario: Scenario,
  strategy: string,
  seed: number,
  registry: PluginRegistry,
  opts: RunOptions = {},
): Promise<RunResult> {
  const wall0 = wallNow();
  const result: RunResult = {
    strategy,
    seed,
    metrics: null,
    series: null,
    unavailable: {},
    dmaLatencyHistogram: '',
    cmaLatencyHistogram: '',
    simNs: 0,
    wallMs: 0,
  };
  const done = (): RunResult => {
    result.wallMs = wallNow() - wall0;
    return result;
  };
  let kernel: Kernel;
  try {
    // A device factory refusing its configuration is a boot failure of this run.
    const plugins = [
      ...scenario.devices.flatMap((d) =>
        devicePlugins(registry, d.name, { count: d.count, config: d.config }),
      ),
      ...strategyPlugins(registry, strategy),
    ];
    kernel = createKernel({ ...scenarioKernelOptions(scenario, seed), plugins, pinStrategy: strategy });
  } catch (e) {
    result.error = toRunError(e, 'boot', 0);
    return done();
  }
  const capture = opts.trace
    ? new TraceCapture(strategy, seed, kernel.cpus, typeof opts.trace === 'object' ? opts.trace : {})
    : null;
  capture?.attach(kernel);
  const durationNs = parseDuration(scenario.duration);
  const endNs = kernel.now() + durationNs;
  let stopped = false;
  const running = () => !stopped && kernel.now() < endNs;
  const collector = new MetricsCollector(kernel, { sampleEveryNs: sampleEveryNs(scenario) });
  const processes = new Map<string, Process>();
  const workloads: Workload[] = [];
  const backgrounds: Background[] = [];
  let phase: RunError['phase'] = 'setup';
  try {
    collector.begin();
    for (const p of scenario.processes) {
      const memlock = p.memlock === 'unlimited' ? Infinity : parseSize(p.memlock);
      const proc = kernel.spawn({ name: p.name, uid: p.uid, node: p.node, rlimits: { memlock } });
      processes.set(p.name, proc);
      collector.watch(proc);
    }
    const base = (name: string): ActivityContext => ({
      kernel,
      scenario,
      strategy,
      seed,
      metrics: collector,
      rng: kernel.rng.stream(`experiment:${name}`),
      endNs,
      processes,
      running,
    });
    for (const p of scenario.processes) {
      const factory = registry.workloads.get(p.workload.kind);
      if (!factory) throw new RangeError(`no implementation of workload '${p.workload.kind}' is registered`);
      const w = factory(p.workload);
      const ctx: WorkloadContext = {
        ...base(`workload:${p.name}`),
        proc: processes.get(p.name)!,
        process: p,
      };
      w.start(ctx);
      workloads.push(w);
    }
    scenario.background.forEach((b, i) => {
      const factory = registry.backgrounds.get(b.kind);
      if (!factory)
        throw new RangeError(`no implementation of background activity '${b.kind}' is registered`);
      const a = factory(b);
      a.start(base(`background:${i}:${b.kind}`));
      backgrounds.push(a);
    });
    phase = 'run';
    await kernel.runFor(durationNs);
  } catch (e) {
    result.error = toRunError(e, phase, kernel.now());
  }
  stopped = true;
  try {
    for (const w of workloads) w.stop?.();
    for (const b of backgrounds) b.stop?.();
    // A run that never started (setup failed) has nothing to measure.
    if (phase === 'run') {
      const c = collector.finish();
      result.metrics = c.metrics;
      result.series = c.series;
      result.unavailable = c.unavailable;
      result.dmaLatencyHistogram = c.dmaLatencyHistogram;
      result.cmaLatencyHistogram = c.cmaLatencyHistogram;
    }
  } catch (e) {
    result.error ??= toRunError(e, 'run', kernel.now());
  }
  result.simNs = kernel.now();
  if (opts.checkInvariants) result.invariants = kernel.checkInvariants();
  capture?.detach();
  if (capture) result.trace = capture.data;
  try {
    kernel.shutdown();
  } catch {
    // A device that cannot be removed cleanly changes nothing in the result already taken.
  }
  return done();
}
