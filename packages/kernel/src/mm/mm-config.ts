/**
 * Tunables of the memory-management model: the kernel's sysctls with their defaults, and the
 * simulated-time cost of each operation with the source of the figure. Everything here is
 * data; model code reads it and never hard-codes a number.
 */

/** A documented tunable: default, unit and a one-line description. */
export interface Tunable<T> {
  value: T;
  unit: string;
  description: string;
  source?: string;
}

/** mm sysctls, as /proc/sys/vm (and the THP sysfs mode) names them. */
export interface MmSysctl {
  'vm.compact_unevictable_allowed': 0 | 1;
  'vm.compaction_proactiveness': number;
  'vm.extfrag_threshold': number;
  'vm.watermark_scale_factor': number;
  'vm.max_map_count': number;
  'vm.overcommit_memory': 0 | 1 | 2;
  'vm.overcommit_ratio': number;
  'kernel.numa_balancing': 0 | 1;
  transparent_hugepage: 'always' | 'madvise' | 'never';
}

export const MM_SYSCTL_DEFAULTS: { [K in keyof MmSysctl]: Tunable<MmSysctl[K]> } = {
  'vm.compact_unevictable_allowed': {
    value: 1,
    unit: 'bool',
    description: 'compaction may migrate mlocked (unevictable) pages',
    source: 'mm/compaction.c sysctl_compact_unevictable_allowed (0 on PREEMPT_RT)',
  },
  'vm.compaction_proactiveness': {
    value: 20,
    unit: '0-100',
    description: 'how hard kcompactd works proactively against external fragmentation',
    source: 'mm/compaction.c sysctl_compaction_proactiveness',
  },
  'vm.extfrag_threshold': {
    value: 500,
    unit: '0-1000',
    description: 'fragmentation index above which compaction is preferred to reclaim',
    source: 'mm/compaction.c sysctl_extfrag_threshold',
  },
  'vm.watermark_scale_factor': {
    value: 10,
    unit: '1/10000 of zone memory',
    description: 'distance between the min, low and high watermarks',
    source: 'mm/page_alloc.c watermark_scale_factor',
  },
  'vm.max_map_count': {
    value: 65530,
    unit: 'VMAs',
    description: 'most VMAs one address space may have (mmap beyond it: ENOMEM)',
    source: 'include/linux/mm.h DEFAULT_MAX_MAP_COUNT',
  },
  'vm.overcommit_memory': {
    value: 0,
    unit: 'mode',
    description: 'heuristic overcommit (0), always (1), never (2)',
    source: 'mm/util.c sysctl_overcommit_memory',
  },
  'vm.overcommit_ratio': {
    value: 50,
    unit: '% of RAM',
    description: 'with overcommit_memory=2, the commit limit is swap + this share of RAM',
    source: 'mm/util.c sysctl_overcommit_ratio',
  },
  'kernel.numa_balancing': {
    value: 1,
    unit: 'bool',
    description: 'automatic NUMA balancing (on by default on NUMA machines)',
    source: 'kernel/sched/fair.c, CONFIG_NUMA_BALANCING_DEFAULT_ENABLED',
  },
  transparent_hugepage: {
    value: 'always',
    unit: 'mode',
    description: '/sys/kernel/mm/transparent_hugepage/enabled',
    source: 'mm/Kconfig TRANSPARENT_HUGEPAGE_ALWAYS (the Kconfig default)',
  },
};

/** Simulated CPU-time costs, in ns, charged to the task that causes the work. */
export interface MmCosts {
  syscall: number;
  minorFaultAnon: number;
  minorFaultZeroPage: number;
  cowFault: number;
  hugetlbFault: number;
  pteCopy: number;
  zapPerPage: number;
  memcpyBytesPerNs: number;
}

export const MM_COST_DEFAULTS: { [K in keyof MmCosts]: Tunable<number> } = {
  syscall: {
    value: 100,
    unit: 'ns',
    description: 'entry and exit of a system call',
    source: 'order of a getpid() round trip on a modern x86 server with mitigations',
  },
  minorFaultAnon: {
    value: 1000,
    unit: 'ns',
    description: 'first-touch anonymous fault: allocate, zero and map a 4 KiB page',
    source: 'CALIBRATION.md 2: median 3,241 cycles (~1.0 us) on a 3.2 GHz i7, Linux 6.6',
  },
  minorFaultZeroPage: {
    value: 600,
    unit: 'ns',
    description: 'read fault mapping the shared zero page (no allocation, no zeroing)',
    source: 'CALIBRATION.md 2: minimum first-touch fault 1,842 cycles (~575 ns)',
  },
  cowFault: {
    value: 1500,
    unit: 'ns',
    description: 'COW break: allocate and copy a 4 KiB page',
    source: 'minorFaultAnon plus a 4 KiB copy at ~8 GB/s',
  },
  hugetlbFault: {
    value: 2000,
    unit: 'ns',
    description: 'hugetlb fault mapping a preallocated page from the pool',
    source: 'pool pages are already zeroed at allocation time; dominated by the walk and locking',
  },
  pteCopy: {
    value: 6,
    unit: 'ns/page',
    description: 'fork: copy one PTE and take a page reference',
    source: 'CALIBRATION.md 2: fork of 1 GB with 4 KiB pages takes 6.5 ms (262,144 PTEs)',
  },
  zapPerPage: {
    value: 15,
    unit: 'ns/page',
    description: 'munmap/exit: clear one PTE and drop its page',
    source: 'same order as unpin_user_pages per page (CALIBRATION.md 5: ~15 ns)',
  },
  memcpyBytesPerNs: {
    value: 8,
    unit: 'bytes/ns',
    description: 'CPU copy bandwidth for read()/write() of user memory',
    source: 'single-core memcpy on a DDR4/DDR5 server, ~8 GB/s',
  },
};

/** defaults - plain values of a tunable table. */
export function tunableValues<T extends Record<string, Tunable<unknown>>>(
  table: T,
): { [K in keyof T]: T[K]['value'] } {
  const out = {} as { [K in keyof T]: T[K]['value'] };
  for (const k of Object.keys(table) as Array<keyof T>) out[k] = table[k].value as T[typeof k]['value'];
  return out;
}
