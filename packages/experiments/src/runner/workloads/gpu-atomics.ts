/**
 * The 'gpu-atomics' workload: an application launching GPU kernels that do 32-bit atomic adds on
 * counters in a buffer of system memory (a histogram, a work queue's counters), through
 * @svasim/accel-gpu's /dev/svasim_gpu0. Each launch does `atomicsPerLaunch` fetch-adds of 1 at
 * word indices drawn from the workload's random stream (`pattern: random`) or walking the buffer
 * (`sequential`); with `hostTouchEvery` the CPU also increments one random counter that often,
 * taking that page back from the GPU. Launches run back to back, or `rate` per simulated second;
 * `count` stops after that many.
 *
 * How the GPU keeps the pages of its atomics follows the run's strategy (the three answers of
 * seeds/003, see the plugin's README): 'short-term' runs the GPU in short-term mode (a reference
 * plus a migration callback); strategies that pin long-term ('mempinfd', 'vfio', 'uacce-ctrl',
 * 'hugetlb-pool', 'migration-control') run it in longterm-pin mode (FOLL_LONGTERM pins);
 * 'gup-pin' (the experiments' pin without FOLL_LONGTERM) in longterm-pin mode pinned in place;
 * every other strategy ('none', 'mlock', 'odp') in notifier-only mode.
 *
 * `threads` is recorded but does not change the timing: the GPU model runs a launch's accesses
 * one after the other. The buffer is written by the CPU first (so it lives in ordinary movable
 * memory, ZONE_MOVABLE first) and checked word by word against a model at the end.
 *
 * Metrics: each launch is a request (its device time in the DMA latency histogram, 4 bytes per
 * atomic in throughput); wrong counters count in data_mismatch; `extra`: gpu_launches,
 * gpu_atomics, gpu_threads, gpu_faults, gpu_acquires, gpu_revocations, gpu_revocations_cpu,
 * gpu_revocations_migration, gpu_callback_revokes, gpu_reinstates, gpu_held_pages,
 * gpu_host_touches, gpu_atomic_ns_mean (device ns per atomic), gpu_launch_ns_max and
 * gpu_launch_ns_max_warm (the slowest launch after the first, which faults every page in).
 */
import { GPU_ATOMIC_MODES, openGpu, type GpuAtomicMode, type GpuClient } from '@svasim/accel-gpu';
import { PAGE_SIZE } from '@svasim/kernel';
import { parseDuration, parseSize, type WorkloadSpec } from '../../scenario';
import type { Workload, WorkloadContext } from '../activity';

/** GpuAtomicsWorkloadSpec - a parsed 'gpu-atomics' workload. */
export type GpuAtomicsWorkloadSpec = Extract<WorkloadSpec, { kind: 'gpu-atomics' }>;

/** Strategies that keep DMA pages with long-term pins. */
const LONGTERM = new Set(['mempinfd', 'vfio', 'uacce-ctrl', 'hugetlb-pool', 'migration-control']);

/**
 * gpuModeFor - the GPU atomic mode a run with strategy @strategy uses (see the file comment).
 * Return: the mode and whether longterm-pin pins in place.
 */
export function gpuModeFor(strategy: string): { mode: GpuAtomicMode; pinInPlace: boolean } {
  if (strategy === 'short-term') return { mode: 'short-term', pinInPlace: false };
  if (strategy === 'gup-pin') return { mode: 'longterm-pin', pinInPlace: true };
  if (LONGTERM.has(strategy)) return { mode: 'longterm-pin', pinInPlace: false };
  return { mode: GPU_ATOMIC_MODES[0], pinInPlace: false };
}

/** GpuAtomicsWorkload - see the file comment. Made by gpuAtomicsWorkload(spec). */
export class GpuAtomicsWorkload implements Workload {
  private w: WorkloadContext | null = null;
  private gpu: GpuClient | null = null;
  private base = 0;
  private words = 0;
  /** The model: what each counter must hold. */
  private expected = new Uint32Array(0);
  private launches = 0;
  private atomics = 0;
  private touches = 0;
  private launchMax = 0;
  /** The slowest launch after the first (which faults every page in, in every mode). */
  private warmMax = 0;
  private cursor = 0;

  /** Throws RangeError for a buffer smaller than one counter. */
  constructor(readonly spec: GpuAtomicsWorkloadSpec) {
    if (parseSize(spec.buffer) < 4)
      throw new RangeError('gpu-atomics: the buffer must hold at least one counter');
  }

  start(w: WorkloadContext): void {
    this.w = w;
    const { kernel, proc, metrics } = w;
    const spec = this.spec;
    const bytes = Math.ceil(parseSize(spec.buffer) / PAGE_SIZE) * PAGE_SIZE;
    this.words = Math.floor(parseSize(spec.buffer) / 4);
    this.expected = new Uint32Array(this.words);
    metrics.setCount('gpu_threads', spec.threads);
    proc.run(async (task) => {
      if (!w.running()) return;
      const { mode, pinInPlace } = gpuModeFor(w.strategy);
      const gpu = openGpu(proc, { device: `/dev/${spec.device ?? 'svasim_gpu0'}`, mode, pinInPlace });
      this.gpu = gpu;
      this.base = proc.mmap(bytes);
      proc.touch(this.base, bytes, { write: true }); // populated by the CPU: movable memory
      if (spec.hostTouchEvery !== undefined) this.host(w, parseDuration(spec.hostTouchEvery));
      const period = spec.rate === undefined ? 0 : 1e9 / spec.rate;
      let nextAt = kernel.now();
      while (w.running() && (spec.count === undefined || this.launches < spec.count)) {
        if (period > 0) {
          const now = kernel.now();
          if (nextAt > now) await task.sleep(Math.round(nextAt - now));
          nextAt += period;
          if (!w.running()) return;
        }
        proc.task = task; // the launch's device time delays this task
        this.launch(w, gpu);
        await task.yield();
      }
    }, `${proc.name}:gpu`);
  }

  /** One GPU kernel: atomicsPerLaunch fetch-adds of 1. */
  private launch(w: WorkloadContext, gpu: GpuClient): void {
    const spec = this.spec;
    const idx = new Uint32Array(spec.atomicsPerLaunch);
    for (let i = 0; i < idx.length; i++)
      idx[i] = spec.pattern === 'sequential' ? this.cursor++ % this.words : w.rng.int(0, this.words - 1);
    const base = this.base;
    const ns = gpu.launch((t) => {
      for (const k of idx) t.atomicAdd(base + 4 * k, 1);
    });
    for (const k of idx) this.expected[k]++;
    this.launches++;
    this.atomics += idx.length;
    if (ns > this.launchMax) this.launchMax = ns;
    if (this.launches > 1 && ns > this.warmMax) this.warmMax = ns;
    w.metrics.recordRequest(0, ns, 4 * idx.length);
  }

  /** The CPU's own increments, one random counter every @every ns. */
  private host(w: WorkloadContext, every: number): void {
    const { kernel, proc } = w;
    kernel.tasks.spawn(`${proc.name}:host`, async (task) => {
      while (w.running()) {
        await task.sleep(every);
        if (!w.running() || proc.state !== 'running') return;
        const k = w.rng.int(0, this.words - 1);
        const addr = this.base + 4 * k;
        const b = proc.read(addr, 4);
        const v = new DataView(b.buffer);
        v.setUint32(0, (v.getUint32(0, true) + 1) >>> 0, true);
        proc.write(addr, b);
        this.expected[k]++;
        this.touches++;
      }
    });
  }

  stop(): void {
    const w = this.w;
    const gpu = this.gpu;
    if (!w || !gpu || gpu.isClosed || w.proc.state !== 'running') return;
    const m = w.metrics;
    const s = gpu.stats();
    m.setCount('gpu_launches', this.launches);
    m.setCount('gpu_atomics', this.atomics);
    m.setCount('gpu_faults', s.faults);
    m.setCount('gpu_acquires', s.acquires);
    m.setCount('gpu_revocations', s.revocations);
    m.setCount('gpu_revocations_cpu', s.revocationsByCpu);
    m.setCount('gpu_revocations_migration', s.revocationsByMigration);
    m.setCount('gpu_callback_revokes', s.callbackRevokes);
    m.setCount('gpu_reinstates', s.reinstates);
    m.setCount('gpu_held_pages', s.heldPages);
    m.setCount('gpu_host_touches', this.touches);
    m.setCount('gpu_atomic_ns_mean', this.atomics ? Math.round(s.deviceNs / this.atomics) : 0);
    m.setCount('gpu_launch_ns_max', this.launchMax);
    m.setCount('gpu_launch_ns_max_warm', this.warmMax);
    // Every counter must hold what the GPU and the CPU added.
    const got = w.proc.read(this.base, this.words * 4);
    const view = new DataView(got.buffer, got.byteOffset);
    for (let k = 0; k < this.words; k++)
      if (view.getUint32(4 * k, true) !== this.expected[k]) m.recordMismatch();
  }
}

/** gpuAtomicsWorkload - the WorkloadFactory of kind 'gpu-atomics'. */
export function gpuAtomicsWorkload(spec: WorkloadSpec): Workload {
  if (spec.kind !== 'gpu-atomics') throw new RangeError(`gpuAtomicsWorkload: kind '${spec.kind}'`);
  return new GpuAtomicsWorkload(spec);
}
