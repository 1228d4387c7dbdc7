import type { IScheduler } from '../sim/types';
import type { ForkCowMode } from '../mm/fork';
import { MM_SYSCTL_DEFAULTS, tunableValues, type MmSysctl } from '../mm/mm-config';
import { parseMemorySize } from '../mm/memory-size';
import { SWAP_TUNABLE_DEFAULTS } from '../mm/reclaim-config';
import { PAGE_SIZE } from '../uapi/mman';
import type { HugepageSize, PhysMemConfig } from '../mm/phys-types';
import type { Plugin } from './define-plugin';

/** A size: bytes, or a string such as '4GiB' or '512MiB'. */
export type Size = number | string;

/** KernelOptions - what createKernel accepts (API.md); everything is optional. */
export interface KernelOptions {
  /** Seed of every named random stream (default 1). */
  seed?: number;
  memory?: {
    nodes: Array<{ size: Size; movable?: Size; cma?: Size }>;
    hugepages?: Partial<Record<HugepageSize, number>>;
    /**
     * Physical address space above RAM for ZONE_DEVICE memory (memremapPages: the device-private
     * pages of HMM drivers), a whole number of 4 KiB pages; default 64 MiB. Only pfn space with
     * page metadata (32 bytes per page): device memory exists once a driver maps it.
     */
    zoneDevice?: Size;
  };
  /** Simulated CPUs (default 4). */
  cpus?: number;
  sysctl?: Partial<MmSysctl>;
  iommu?: { profile?: string };
  /** Fork with pinned anonymous pages: 'early' copy (Linux 5.9+, default) or 'legacy'. */
  forkCow?: ForkCowMode;
  /**
   * Size of the swap area (default 0: no swap, like a machine without a swap partition, where
   * anonymous memory cannot be reclaimed). At least 40 KiB (mkswap's minimum) when set.
   */
  swap?: Size;
  plugins?: Plugin[];
  /**
   * The pin strategy to use (its name) when plugins registered several under PIN_STRATEGY;
   * with exactly one loaded it is that one, with none the default ('none').
   */
  pinStrategy?: string;
  /** A host simulator's scheduler (the SCHEDULER token); default: svasim's own event queue. */
  scheduler?: IScheduler;
}

/** Options after defaults and validation. */
export interface ResolvedKernelOptions {
  seed: number;
  phys: PhysMemConfig;
  cpus: number;
  sysctl: MmSysctl;
  iommuProfile: string;
  forkCow: ForkCowMode;
  /** Swap area size in bytes, a whole number of pages (0 = no swap). */
  swap: number;
  plugins: Plugin[];
  pinStrategy: string | null;
}

/** The default machine: one node of 1 GiB, no ZONE_MOVABLE, no CMA, no hugetlb pages. */
export const DEFAULT_MEMORY: NonNullable<KernelOptions['memory']> = { nodes: [{ size: '1GiB' }] };

const SYSCTL_CHECKS: { [K in keyof MmSysctl]: (v: unknown) => boolean } = {
  'vm.compact_unevictable_allowed': (v) => v === 0 || v === 1,
  'vm.compaction_proactiveness': (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 100,
  'vm.extfrag_threshold': (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 1000,
  'vm.watermark_scale_factor': (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 3000,
  'vm.max_map_count': (v) => Number.isInteger(v) && (v as number) >= 1,
  'vm.overcommit_memory': (v) => v === 0 || v === 1 || v === 2,
  'vm.overcommit_ratio': (v) => Number.isInteger(v) && (v as number) >= 0,
  'kernel.numa_balancing': (v) => v === 0 || v === 1,
  transparent_hugepage: (v) => v === 'always' || v === 'madvise' || v === 'never',
};

function size(v: Size | undefined, what: string): number {
  if (v === undefined) return 0;
  try {
    return parseMemorySize(v);
  } catch (e) {
    throw new RangeError(`createKernel: ${what}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * resolveKernelOptions - apply defaults and validate; a bad option throws a RangeError naming it
 * (unknown sysctl, bad size, negative hugepage count, unknown forkCow mode...).
 */
export function resolveKernelOptions(opts: KernelOptions = {}): ResolvedKernelOptions {
  const seed = opts.seed ?? 1;
  if (!Number.isSafeInteger(seed))
    throw new RangeError(`createKernel: seed must be an integer, got ${String(seed)}`);
  const cpus = opts.cpus ?? 4;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 1024)
    throw new RangeError(`createKernel: cpus must be 1..1024, got ${String(cpus)}`);
  const mem = opts.memory ?? DEFAULT_MEMORY;
  if (!Array.isArray(mem.nodes) || mem.nodes.length === 0 || mem.nodes.length > 64)
    throw new RangeError('createKernel: memory.nodes must list 1 to 64 nodes');
  const nodes = mem.nodes.map((n, i) => ({
    size: size(n.size, `memory.nodes[${i}].size`),
    movable: size(n.movable, `memory.nodes[${i}].movable`),
    cma: size(n.cma, `memory.nodes[${i}].cma`),
  }));
  const zoneDevice = mem.zoneDevice === undefined ? undefined : size(mem.zoneDevice, 'memory.zoneDevice');
  if (zoneDevice !== undefined && zoneDevice % PAGE_SIZE !== 0)
    throw new RangeError('createKernel: memory.zoneDevice must be a whole number of 4 KiB pages');
  const hugepages: Partial<Record<HugepageSize, number>> = {};
  for (const [k, v] of Object.entries(mem.hugepages ?? {})) {
    if (k !== '2MiB' && k !== '1GiB')
      throw new RangeError(`createKernel: memory.hugepages: unknown size '${k}' (2MiB or 1GiB)`);
    if (!Number.isInteger(v) || (v as number) < 0)
      throw new RangeError(`createKernel: memory.hugepages['${k}'] must be a non-negative integer`);
    hugepages[k] = v as number;
  }
  const sysctl = tunableValues(MM_SYSCTL_DEFAULTS) as MmSysctl;
  for (const [k, v] of Object.entries(opts.sysctl ?? {})) {
    const check = SYSCTL_CHECKS[k as keyof MmSysctl];
    if (!check) throw new RangeError(`createKernel: unknown sysctl '${k}'`);
    if (!check(v)) throw new RangeError(`createKernel: sysctl '${k}' cannot be ${JSON.stringify(v)}`);
    (sysctl as unknown as Record<string, unknown>)[k] = v;
  }
  // The kernel turns NUMA balancing on by default only on machines with more than one node.
  if (opts.sysctl?.['kernel.numa_balancing'] === undefined)
    sysctl['kernel.numa_balancing'] = nodes.length > 1 ? 1 : 0;
  const forkCow = opts.forkCow ?? 'early';
  if (forkCow !== 'early' && forkCow !== 'legacy')
    throw new RangeError(`createKernel: forkCow must be 'early' or 'legacy'`);
  const swap = size(opts.swap, 'swap');
  if (swap % PAGE_SIZE !== 0 || (swap > 0 && swap < SWAP_TUNABLE_DEFAULTS.minPages.value * PAGE_SIZE))
    throw new RangeError(
      `createKernel: swap must be 0 or a whole number of 4 KiB pages, at least ${SWAP_TUNABLE_DEFAULTS.minPages.value}`,
    );
  if (opts.pinStrategy !== undefined && typeof opts.pinStrategy !== 'string')
    throw new RangeError('createKernel: pinStrategy must be a strategy name');
  const plugins = opts.plugins ?? [];
  if (!Array.isArray(plugins)) throw new RangeError('createKernel: plugins must be an array');
  return {
    seed,
    phys: {
      nodes,
      hugepages,
      ...(zoneDevice === undefined ? {} : { zoneDevicePages: zoneDevice / PAGE_SIZE }),
    },
    cpus,
    sysctl,
    iommuProfile: opts.iommu?.profile ?? 'smmuv3',
    forkCow,
    swap,
    plugins,
    pinStrategy: opts.pinStrategy ?? null,
  };
}
