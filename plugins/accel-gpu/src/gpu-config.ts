/**
 * The GPU's shape and its latency model. Every figure names where it comes from: a published
 * measurement (CALIBRATION.md section 1; S = second-hand, as that table marks it) or a labelled
 * assumption. The model is deliberately small: a device access costs a fixed latency plus bytes
 * over a bandwidth; a GPU page fault (a replayable fault the driver services with
 * hmm_range_fault or make_device_exclusive) costs a fixed service time; a revocation costs a GPU
 * TLB shootdown.
 */
import { PAGE_SIZE, tunableValues, type Tunable } from '@svasim/kernel';

/** Latency figures of the simulated GPU (ns, or bytes per ns for bandwidths). */
export const GPU_TIMING_DEFAULTS = {
  gpuFaultNs: {
    value: 16_000,
    unit: 'ns',
    description:
      'one GPU page fault serviced by the driver (fault buffer entry, hmm_range_fault or make_device_exclusive, GPU PTE update, replay)',
    source:
      'AMD MI300A HMM mirror, GPU minor fault 16 us (Wahlgren et al., IISWC 2025, arXiv 2508.12743; CALIBRATION.md section 1, S). Discrete GPUs are slower: 20-50 us (Zheng et al., HPCA 2016), 31.8 us (MSched, RTX 5080)',
  },
  tlbShootdownNs: {
    value: 4_200,
    unit: 'ns',
    description:
      'GPU TLB shootdown when an MMU notifier revokes mappings (one entry or a full flush cost the same)',
    source:
      'Vesely et al., ISPASS 2016: 4.2 us for one entry, 4.4 us for a full flush (CALIBRATION.md section 1, S)',
  },
  sysmemLatencyNs: {
    value: 1_000,
    unit: 'ns',
    description: 'latency of one GPU access to system memory across the bus (a non-posted PCIe read)',
    source:
      'assumption: ~1 us PCIe round trip; absolute PCIe/ATS latencies are listed as unconfirmed in CALIBRATION.md (gaps)',
  },
  sysmemBytesPerNs: {
    value: 25,
    unit: 'bytes/ns',
    description: 'GPU bandwidth to system memory (25 GB/s)',
    source: 'assumption: PCIe 4.0 x16 is 31.5 GB/s raw, ~25 GB/s after protocol overhead',
  },
  sysmemAtomicNs: {
    value: 1_000,
    unit: 'ns',
    description: 'one atomic (fetch-add, compare-and-swap) on a system-memory word the GPU holds exclusively',
    source: 'assumption: one bus round trip, as sysmemLatencyNs',
  },
  vramLatencyNs: {
    value: 500,
    unit: 'ns',
    description: 'latency of one GPU access to its own device memory',
    source:
      'assumption: GPU global-memory latency is some hundreds of cycles at 1-2 GHz (order of 0.5 us, microbenchmark literature)',
  },
  vramBytesPerNs: {
    value: 1_000,
    unit: 'bytes/ns',
    description: 'GPU bandwidth to its own device memory (1 TB/s)',
    source: 'assumption: HBM2e/HBM3-class device memory',
  },
  vramAtomicNs: {
    value: 400,
    unit: 'ns',
    description: 'one atomic on a word in device memory (resolved in the GPU L2)',
    source: 'assumption: below a device-memory load',
  },
  migrateSetupNs: {
    value: 5_000,
    unit: 'ns',
    description: 'fixed cost of one migrate_vma batch by the driver (copy-engine set-up and fence)',
    source: 'assumption',
  },
  migrateBytesPerNs: {
    value: 41.7,
    unit: 'bytes/ns',
    description: 'copy-engine bandwidth of batched migrations between system and device memory',
    source:
      'MSched, arXiv 2512.24637: batched migration 41.7 GB/s on an RTX 5080 (CALIBRATION.md section 1, S)',
  },
  devmemFaultNs: {
    value: 9_000,
    unit: 'ns',
    description:
      "a CPU access to a page in device memory: the driver's migrate_to_ram service time, beyond the kernel's own fault cost",
    source: 'AMD MI300A single-page CPU fault 9 us (Wahlgren et al., CALIBRATION.md section 1, S)',
  },
  remapNs: {
    value: 1_000,
    unit: 'ns',
    description:
      "the driver re-installing an atomic mapping itself after a migration callback (short-term mode's reinstate): a GPU PTE write, no fault",
    source: 'assumption: a PTE write and an invalidation-free TLB fill, well below a fault',
  },
  launchNs: {
    value: 5_000,
    unit: 'ns',
    description: 'launching one GPU kernel (launch) before its first access',
    source: 'assumption: kernel-launch overheads are of the order of microseconds',
  },
} satisfies Record<string, Tunable<number>>;

/** GpuTiming - plain values of GPU_TIMING_DEFAULTS. */
export type GpuTiming = { [K in keyof typeof GPU_TIMING_DEFAULTS]: number };

/** gpuTiming - the default figures as plain numbers, with @over applied. */
export function gpuTiming(over: Partial<GpuTiming> = {}): GpuTiming {
  return { ...(tunableValues(GPU_TIMING_DEFAULTS) as GpuTiming), ...over };
}

/** GpuConfig - the shape of one GPU. */
export interface GpuConfig {
  /** Misc device name: /dev/<name>, /sys/class/misc/<name>. */
  name: string;
  /** Device memory, in bytes (a multiple of the chunk size). */
  vramBytes: number;
  /** Device memory is added chunk by chunk (memremapPages) as migrations need it: pages per chunk. */
  chunkPages: number;
  /** /dev node mode (0o666: any process may open it, as /dev/kfd and /dev/nvidia-uvm are). */
  devMode: number;
  /** Also register the copy engine as a uacce device (/dev/svasim_gpu_ce-<id>). */
  copyEngine: boolean;
  timing: GpuTiming;
}

/** The default GPU: /dev/svasim_gpu0 with 32 MiB of device memory in 1 MiB chunks, and its copy engine. */
export const GPU_DEFAULT_CONFIG: GpuConfig = {
  name: 'svasim_gpu0',
  vramBytes: 32 * 2 ** 20,
  chunkPages: 256,
  devMode: 0o666,
  copyEngine: true,
  timing: gpuTiming(),
};

/** vramPagesOf - device memory in pages. */
export function vramPagesOf(cfg: GpuConfig): number {
  return Math.floor(cfg.vramBytes / PAGE_SIZE);
}
