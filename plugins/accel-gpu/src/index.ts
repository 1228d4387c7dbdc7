/**
 * @svasim/accel-gpu - a GPU with device-private memory (ZONE_DEVICE), an HMM mirror of each
 * context's address space, migration to and from device memory, and atomics on system memory
 * through device-exclusive entries, kept in one of the three ways the 2021 thread argued about
 * (seeds/003): a long-term pin, a short-term reference with a migration callback, or the MMU
 * notifier alone. `createKernel({ plugins: [gpuPlugin] })`, then `openGpu(proc)`. See README.md.
 */
export { GPU_ATOMIC_MODES, currentPfn, type GpuAtomicMode } from './atomic-holds';
export type { AtomicResult, GpuContextStats, GpuThread, OpResult } from './context';
export { GpuContext } from './context';
export {
  GPU_DEFAULT_CONFIG,
  GPU_TIMING_DEFAULTS,
  gpuTiming,
  vramPagesOf,
  type GpuConfig,
  type GpuTiming,
} from './gpu-config';
export { GPU_BOUNCE_MAX, GpuDevice, type GpuDeviceStats } from './gpu-device';
export { checkGpuContext, checkVram } from './gpu-check';
export { GpuClient, openGpu, type GpuContextCounters, type GpuLast, type OpenGpuOptions } from './libgpu';
export * from './uapi';
export type { VramStats } from './vram';

export { createGpuPlugin, gpuPlugin, type GpuPluginOptions } from './plugin';
export { GPU1_OPTIONS, bootGpuKernel, errnoOf, ints } from './testing';
