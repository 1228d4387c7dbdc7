/**
 * memcpy_accel - the smallest accelerator plugin: a copy engine in the spirit of Intel DSA's
 * memmove, registered through uacce as /dev/memcpy_accel-<id> with UACCE_DEV_SVA. Everything but
 * the operation itself (queues, rings, doorbell, DMA through the IOMMU, IO page faults, service
 * time) comes from VirtualAccelerator: read this file as the template for a new plugin.
 */
import {
  VirtualAccelerator,
  definePlugin,
  type AccelResult,
  type AccelTiming,
  type AcceleratorConfig,
  type Kernel,
} from '@svasim/kernel';

/**
 * The engine's figures. Each names where it comes from: the model is only as good as these, and
 * a reader must be able to tell a measurement from a guess.
 */
export const MEMCPY_ACCEL_TIMING: AccelTiming = {
  throughputBytesPerS: 30e9,
  perRequestNs: 1000,
  doorbellNs: 200,
  sources: {
    throughputBytesPerS:
      'assumption: the order of an Intel DSA 1.0 memmove (tens of GB/s per device, Intel DSA user guide); not measured',
    perRequestNs: 'assumption: descriptor fetch + setup + completion record write, ~1 us for a small offload',
    doorbellNs: 'assumption: a posted MMIO write (ENQCMD/MOVDIR64B-like) reaching the device, ~0.2 us',
  },
};

/** The device's shape; tests may spread it and override (fewer queues, more engines). */
export const MEMCPY_ACCEL_CONFIG: AcceleratorConfig = {
  name: 'memcpy_accel',
  parentName: '0000:6a:01.0',
  apiVer: 'memcpy_accel_v1',
  algorithms: ['memcpy'],
  ops: ['copy'],
  timing: MEMCPY_ACCEL_TIMING,
  queues: 4,
  engines: 1,
};

/** MemcpyAccelerator - the device: its only job is to say what 'copy' does to the bytes. */
export class MemcpyAccelerator extends VirtualAccelerator {
  protected process(_op: string, src: Uint8Array): AccelResult {
    // The base checks the op against config.ops and dst_len against what we produce (-ENOSPC),
    // so a copy is the identity.
    return { status: 0, produced: src.length, output: src };
  }
}

/**
 * memcpyAccelPlugin - `createKernel({ plugins: [memcpyAccelPlugin] })`. register() only builds the
 * instance (it cannot fail); the kernel calls realize() (probe + uacce register) after every
 * plugin is registered and unrealize() (hot removal) at shutdown.
 */
export const memcpyAccelPlugin = definePlugin({
  name: 'memcpy_accel',
  kind: 'accelerator',
  register({ kernel }) {
    return new MemcpyAccelerator(kernel as Kernel, MEMCPY_ACCEL_CONFIG);
  },
});
