/**
 * Helpers for tests of programs that use the GPU (and for this package's own tests): boot a
 * kernel with one or two GPUs, build int arrays as the C selftests do, and turn a thrown
 * SyscallError into its errno.
 */
import { createKernel, SyscallError, type Kernel, type KernelOptions, type Plugin } from '@svasim/kernel';
import { createGpuPlugin, gpuPlugin, type GpuPluginOptions } from './plugin';

/** The second GPU of two-GPU tests: plugin 'gpu1', /dev/svasim_gpu1. */
export const GPU1_OPTIONS: GpuPluginOptions = { pluginName: 'gpu1', name: 'svasim_gpu1' };

/**
 * bootGpuKernel - a kernel with the default GPU (and, with @twoGpus, a second one), one node of
 * 512 MiB whose top 256 MiB is ZONE_MOVABLE unless @opts.memory says otherwise.
 * Return: the kernel (createKernel's exceptions propagate).
 */
export function bootGpuKernel(opts: KernelOptions = {}, twoGpus = false, extra: Plugin[] = []): Kernel {
  const plugins = [gpuPlugin, ...(twoGpus ? [createGpuPlugin(GPU1_OPTIONS)] : []), ...extra];
  return createKernel({ memory: { nodes: [{ size: '512MiB', movable: '256MiB' }] }, ...opts, plugins });
}

/** ints - @count little-endian int32 values f(i), as the C tests' int arrays. */
export function ints(count: number, f: (i: number) => number): Uint8Array {
  const a = new Int32Array(count);
  for (let i = 0; i < count; i++) a[i] = f(i);
  return new Uint8Array(a.buffer);
}

/** errnoOf - run @fn: 0 if it returns, the negative errno of the SyscallError it throws (others propagate). */
export function errnoOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError) return e.errno;
    throw e;
  }
  return 0;
}
