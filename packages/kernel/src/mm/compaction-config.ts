/**
 * Tunables of memory compaction and kcompactd (mm/compaction.c): the kernel's constants with their
 * sources, and the simulated cost of scanning. The sysctls (vm.compaction_proactiveness,
 * vm.extfrag_threshold, vm.compact_unevictable_allowed) live in MmSysctl (mm-config.ts).
 */
import type { Tunable } from './mm-config';

/** CompactionConfig - plain values of COMPACTION_DEFAULTS, as compactionConfig(core) returns them. */
export interface CompactionConfig {
  kcompactdCheckIntervalMs: number;
  compactMaxDeferShift: number;
  compactClusterMax: number;
  pageAllocCostlyOrder: number;
  compactionHpageOrder: number;
  fragScoreWmarkFloor: number;
  fragScoreWmarkGap: number;
  migrateScanNsPerPfn: number;
  freeScanNsPerPfn: number;
  kcompactdWakeupNs: number;
}

export const COMPACTION_DEFAULTS: { [K in keyof CompactionConfig]: Tunable<number> } = {
  kcompactdCheckIntervalMs: {
    value: 500,
    unit: 'ms',
    description: 'how often kcompactd checks the fragmentation score for proactive compaction',
    source: 'mm/compaction.c HPAGE_FRAG_CHECK_INTERVAL_MSEC',
  },
  compactMaxDeferShift: {
    value: 6,
    unit: 'shift',
    description:
      'a failing zone is skipped up to 1 << shift times before compaction is retried; a proactive pass that made no progress waits interval << shift',
    source: 'mm/compaction.c COMPACT_MAX_DEFER_SHIFT',
  },
  compactClusterMax: {
    value: 32,
    unit: 'folios',
    description: 'folios isolated per migration batch (COMPACT_CLUSTER_MAX = SWAP_CLUSTER_MAX)',
    source: 'mm/internal.h COMPACT_CLUSTER_MAX, include/linux/swap.h SWAP_CLUSTER_MAX',
  },
  pageAllocCostlyOrder: {
    value: 3,
    unit: 'order',
    description:
      'orders above it are "costly": compaction needs the low watermark and a fragmentation index above vm.extfrag_threshold',
    source: 'include/linux/mmzone.h PAGE_ALLOC_COSTLY_ORDER',
  },
  compactionHpageOrder: {
    value: 9,
    unit: 'order',
    description: 'the order the fragmentation score is computed against (HPAGE_PMD_ORDER on x86-64)',
    source: 'mm/compaction.c COMPACTION_HPAGE_ORDER',
  },
  fragScoreWmarkFloor: {
    value: 5,
    unit: 'score (0-100)',
    description: 'lowest proactive-compaction low watermark: max(100 - proactiveness, 5)',
    source: 'mm/compaction.c fragmentation_score_wmark',
  },
  fragScoreWmarkGap: {
    value: 10,
    unit: 'score (0-100)',
    description: 'the high watermark (start proactive compaction) sits this far above the low one',
    source: 'mm/compaction.c fragmentation_score_wmark',
  },
  migrateScanNsPerPfn: {
    value: 2,
    unit: 'ns/pfn',
    description: 'migrate scanner: examine one struct page (flags, refcount, mapcount)',
    source: 'estimate: one mostly cache-missing struct page read; no published per-pfn figure was found',
  },
  freeScanNsPerPfn: {
    value: 2,
    unit: 'ns/pfn',
    description: 'free scanner: examine one struct page for PageBuddy (a free block counts once)',
    source: 'estimate, as migrateScanNsPerPfn',
  },
  kcompactdWakeupNs: {
    value: 10_000,
    unit: 'ns',
    description: 'delay between wakeup_kcompactd and kcompactd running',
    source: 'estimate: a kthread wakeup on an idle CPU is of the order of 10 us',
  },
};
