import { Kernel } from './kernel';
import type { KernelOptions } from './kernel-options';

/**
 * createKernel - boot a simulated machine (API.md "Booting"): validate the options, lay out
 * physical memory, start the clock, then register and realize the plugins in order.
 * Returns the Kernel. Throws RangeError for bad options and KernelError when a plugin fails to
 * realize (the ones already realized are unrealized first).
 */
export function createKernel(options: KernelOptions = {}): Kernel {
  const k = new Kernel(options);
  k.loadPlugins(k.options.plugins);
  return k;
}
