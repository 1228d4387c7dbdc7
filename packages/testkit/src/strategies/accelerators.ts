/**
 * Accelerator plugins for strategy tests: the memcpy engine of memcpy-accel with another shape,
 * in particular without SVA, which is what an 'iova' strategy (vfio) needs: its queues get PASID
 * 0 and the device translates through its DMA domain, so only what was mapped for it is reachable.
 */
import { definePlugin, type AcceleratorConfig, type Kernel, type Plugin } from '@svasim/kernel';
import { MEMCPY_ACCEL_CONFIG, MemcpyAccelerator } from '../memcpy-accel';

/**
 * memcpyAccelPluginWith - a memcpy_accel plugin whose AcceleratorConfig is MEMCPY_ACCEL_CONFIG
 * with @overrides spread over it (same plugin name, 'memcpy_accel': load one variant per kernel).
 */
export function memcpyAccelPluginWith(overrides: Partial<AcceleratorConfig>): Plugin<MemcpyAccelerator> {
  const config: AcceleratorConfig = { ...MEMCPY_ACCEL_CONFIG, ...overrides };
  return definePlugin({
    name: 'memcpy_accel',
    kind: 'accelerator',
    register({ kernel }) {
      return new MemcpyAccelerator(kernel as Kernel, config);
    },
  });
}

/** memcpyAccelNoSvaPlugin - memcpy_accel without UACCE_DEV_SVA (config `sva: false`), for 'iova' strategies. */
export const memcpyAccelNoSvaPlugin = memcpyAccelPluginWith({ sva: false });
