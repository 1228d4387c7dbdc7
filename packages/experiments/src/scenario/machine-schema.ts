/**
 * The machine, kernel knobs, IOMMU profile and devices of a scenario: what createKernel boots.
 * Field names follow KernelOptions (API.md) so a reader can map one to the other.
 */
import { z } from 'zod';
import { Name, Size } from './fields';

/** One memory node: its size, the part of it in ZONE_MOVABLE and a CMA area in ZONE_NORMAL. */
export const MemoryNodeSchema = z.strictObject({
  size: Size.meta({ description: 'memory of the node' }),
  movable: Size.optional().meta({ description: 'top part of the node placed in ZONE_MOVABLE (movablecore)' }),
  cma: Size.optional().meta({ description: 'a CMA area inside ZONE_NORMAL' }),
});

/** The machine: CPUs, memory nodes, hugetlb pools reserved at boot, swap. */
export const MachineSchema = z.strictObject({
  cpus: z.number().int().min(1).max(1024).default(4).meta({ description: 'simulated CPUs' }),
  memory: z
    .strictObject({
      nodes: z.array(MemoryNodeSchema).min(1).max(64),
      hugepages: z
        .strictObject({
          '2MiB': z.number().int().nonnegative().optional(),
          '1GiB': z.number().int().nonnegative().optional(),
        })
        .optional()
        .meta({ description: 'hugetlb pages reserved at boot' }),
    })
    .default({ nodes: [{ size: '1GiB' }] }),
  swap: Size.optional().meta({
    description: 'swap area (default none: anonymous memory cannot be reclaimed)',
  }),
});

/** The sysctls a scenario may set (the kernel's MmSysctl). */
export const SysctlSchema = z.strictObject({
  'vm.compact_unevictable_allowed': z.union([z.literal(0), z.literal(1)]).optional(),
  'vm.compaction_proactiveness': z.number().int().min(0).max(100).optional(),
  'vm.extfrag_threshold': z.number().int().min(0).max(1000).optional(),
  'vm.watermark_scale_factor': z.number().int().min(1).max(3000).optional(),
  'vm.max_map_count': z.number().int().min(1).optional(),
  'vm.overcommit_memory': z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
  'vm.overcommit_ratio': z.number().int().min(0).optional(),
  'kernel.numa_balancing': z.union([z.literal(0), z.literal(1)]).optional(),
  transparent_hugepage: z.enum(['always', 'madvise', 'never']).optional(),
});

/** Kernel knobs: sysctls and the fork COW mode. */
export const KernelKnobsSchema = z.strictObject({
  sysctl: SysctlSchema.default({}),
  forkCow: z
    .enum(['early', 'legacy'])
    .default('early')
    .meta({ description: "pinned anonymous pages at fork: 'early' copy (Linux 5.9+) or 'legacy' COW" }),
});

/** The IOMMU latency/size profiles shipped with the kernel. */
export const IommuProfileSchema = z.enum(['smmuv3', 'vtd', 'amd-iommuv2']);

/** One accelerator plugin to load, with how many devices and overrides of its configuration. */
export const DeviceSchema = z.strictObject({
  name: Name.meta({ description: "the accelerator plugin's name, e.g. 'hisi_zip' or 'memcpy_accel'" }),
  count: z.number().int().min(1).max(64).default(1),
  config: z
    .record(z.string(), z.unknown())
    .default({})
    .meta({ description: "overrides of the device's configuration" }),
});

/** Machine - the parsed `machine` section. */
export type Machine = z.infer<typeof MachineSchema>;
/** KernelKnobs - the parsed `kernel` section. */
export type KernelKnobs = z.infer<typeof KernelKnobsSchema>;
/** DeviceSpec - one parsed entry of `devices`. */
export type DeviceSpec = z.infer<typeof DeviceSchema>;
