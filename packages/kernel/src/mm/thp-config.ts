import type { Tunable } from './mm-config';

/** Transparent huge page tunables (/sys/kernel/mm/transparent_hugepage/...). */
export interface ThpConfig {
  /** defrag: may a THP fault stall in direct reclaim/compaction? */
  defrag: 'always' | 'defer' | 'defer+madvise' | 'madvise' | 'never';
  /** khugepaged/pages_to_scan: PTEs scanned per pass. */
  pagesToScan: number;
  /** khugepaged/scan_sleep_millisecs. */
  scanSleepMs: number;
  /** khugepaged/alloc_sleep_millisecs: back-off after a failed huge page allocation. */
  allocSleepMs: number;
  /** khugepaged/max_ptes_none: empty PTEs a collapse may fill with zeros. */
  maxPtesNone: number;
  /** khugepaged/max_ptes_swap: swapped-out PTEs a collapse may bring back. */
  maxPtesSwap: number;
  /** khugepaged/max_ptes_shared: PTEs mapping pages shared with another process. */
  maxPtesShared: number;
  /** Simulated cost of a THP fault (clearing 2 MiB), ns. */
  thpFaultNs: number;
  /** Simulated cost of collapsing one huge page (copy 2 MiB + rmap work), ns. */
  collapseNs: number;
  /** Simulated cost of scanning one PTE in khugepaged, ns. */
  scanPteNs: number;
}

export const THP_DEFAULTS: { [K in keyof ThpConfig]: Tunable<ThpConfig[K]> } = {
  defrag: {
    value: 'madvise',
    unit: 'mode',
    description: 'only MADV_HUGEPAGE regions stall for direct compaction at fault time',
    source: 'mm/huge_memory.c transparent_hugepage_flags default (TRANSPARENT_HUGEPAGE_DEFRAG_REQ_MADV_FLAG)',
  },
  pagesToScan: {
    value: 4096,
    unit: 'PTEs',
    description: 'HPAGE_PMD_NR * 8',
    source: 'mm/khugepaged.c khugepaged_init',
  },
  scanSleepMs: {
    value: 10000,
    unit: 'ms',
    description: 'sleep between scan passes',
    source: 'mm/khugepaged.c',
  },
  allocSleepMs: {
    value: 60000,
    unit: 'ms',
    description: 'sleep after an allocation failure',
    source: 'mm/khugepaged.c',
  },
  maxPtesNone: { value: 511, unit: 'PTEs', description: 'HPAGE_PMD_NR - 1', source: 'mm/khugepaged.c' },
  maxPtesSwap: { value: 64, unit: 'PTEs', description: 'HPAGE_PMD_NR / 8', source: 'mm/khugepaged.c' },
  maxPtesShared: { value: 256, unit: 'PTEs', description: 'HPAGE_PMD_NR / 2', source: 'mm/khugepaged.c' },
  thpFaultNs: {
    value: 80_000,
    unit: 'ns',
    description: 'allocate and clear a 2 MiB page at ~25 GB/s',
    source: 'clear_huge_page of 2 MiB on a modern server core',
  },
  collapseNs: {
    value: 190_000,
    unit: 'ns',
    description: 'copy 512 pages into a new huge page',
    source: 'CALIBRATION.md 3: ~190 us to move a 2 MiB folio',
  },
  scanPteNs: {
    value: 20,
    unit: 'ns',
    description: 'khugepaged PTE scan',
    source: 'estimate: one PTE and page check',
  },
};
