/**
 * The GPU's copy engine as a uacce device: a DMA engine that copies between buffers of a
 * process's address space through the IOMMU (SVA, IO page faults), like Intel DSA's memmove or
 * an SVA-capable GPU's blitter. It is the GPU's second translation path: the compute engines see
 * memory through the HMM mirror (context.ts), the copy engine through the IOMMU's shared page
 * table. Registered as /dev/svasim_gpu_ce-<id>, algorithm 'gpu_copy', op 'copy', it is what lets
 * the testkit's uacce conformance suite run on this plugin.
 */
import {
  VirtualAccelerator,
  type AccelResult,
  type AccelTiming,
  type AcceleratorConfig,
  type Kernel,
} from '@svasim/kernel';

/** The copy engine's figures. */
export const GPU_COPY_ENGINE_TIMING: AccelTiming = {
  throughputBytesPerS: 41.7e9,
  perRequestNs: 5000,
  doorbellNs: 200,
  sources: {
    throughputBytesPerS:
      'MSched, arXiv 2512.24637: batched migration 41.7 GB/s on an RTX 5080 (CALIBRATION.md section 1, S)',
    perRequestNs: 'assumption: as GPU_TIMING_DEFAULTS.migrateSetupNs (copy-engine set-up and fence)',
    doorbellNs: 'assumption: a posted MMIO write reaching the device, ~0.2 us',
  },
};

/** The copy engine's uacce shape. */
export const GPU_COPY_ENGINE_CONFIG: AcceleratorConfig = {
  name: 'svasim_gpu_ce',
  parentName: '0000:c1:00.0',
  apiVer: 'svasim_gpu_ce_v1',
  algorithms: ['gpu_copy'],
  ops: ['copy'],
  timing: GPU_COPY_ENGINE_TIMING,
  queues: 4,
  engines: 2,
};

/** GpuCopyEngine - copies: the output is the input (VirtualAccelerator does the DMA and the faults). */
export class GpuCopyEngine extends VirtualAccelerator {
  constructor(kernel: Kernel, config: AcceleratorConfig = GPU_COPY_ENGINE_CONFIG) {
    super(kernel, config);
  }

  protected process(_op: string, src: Uint8Array): AccelResult {
    return { status: 0, produced: src.length, output: src };
  }
}
