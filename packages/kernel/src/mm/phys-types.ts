import type { MigratetypeName, ZoneName } from './gfp';

/** Layout of one NUMA node as booted. Sizes are in pages; pfns are global. */
export interface NodeLayout {
  nid: number;
  /** First pfn of the node. */
  startPfn: number;
  /** Pages spanned by the node. */
  spannedPages: number;
  /** Pages of the node placed in ZONE_MOVABLE, at the top of the node (movablecore). */
  movablePages: number;
  /** Pages of the node's CMA area (inside ZONE_NORMAL, just below ZONE_MOVABLE). */
  cmaPages: number;
}

/** ZoneInfo - what /proc/zoneinfo tells of one zone. */
export interface ZoneInfo {
  nid: number;
  zone: ZoneName;
  startPfn: number;
  spannedPages: number;
  /** Pages handed to the buddy allocator (spanned minus reserved). */
  managedPages: number;
  freePages: number;
  /** Free pages in MIGRATE_CMA pageblocks. */
  freeCmaPages: number;
  watermarkMin: number;
  watermarkLow: number;
  watermarkHigh: number;
  /** Free blocks per order (/proc/buddyinfo). */
  freeByOrder: number[];
}

/** What a pfn's pageblock and zone say about it (for pagemap and the invariant checker). */
export interface PfnPlacement {
  nid: number;
  zone: ZoneName;
  migratetype: MigratetypeName;
}

/** Sizes accepted for huge pages. */
export type HugepageSize = '2MiB' | '1GiB';

/** Boot configuration of physical memory, in bytes (already parsed from '4GiB'-style strings). */
export interface PhysMemConfig {
  nodes: Array<{ size: number; movable?: number; cma?: number }>;
  /** hugetlb pages preallocated at boot, per size (hugepages= / hugepagesz=). */
  hugepages?: Partial<Record<HugepageSize, number>>;
  /**
   * Fraction of each node reserved at boot for the kernel itself (memmap: struct page is 64 bytes
   * per 4 KiB page, i.e. 1/64), taken from the bottom of the node. Default 1/64.
   */
  reservedFraction?: number;
  /**
   * Pfns reserved above RAM for ZONE_DEVICE memory (memremapPages: HMM device-private pages),
   * in pages. Default PHYS_MEM_DEFAULTS.zoneDevicePages.
   */
  zoneDevicePages?: number;
}

/**
 * Hooks the allocator calls on its slow path. The mm layer above fills them in (kswapd, direct
 * reclaim and compaction arrive with the page-motion issue); until then they are absent and an
 * allocation below the min watermark simply fails.
 */
export interface AllocSlowpathHooks {
  /** A zone fell below its low watermark (wakeup_kswapd). */
  wakeKswapd?(nid: number, zone: number, order: number): void;
  /** Try to free memory for this allocation; return pages freed (0 = no progress). */
  directReclaim?(gfp: number, order: number, nid: number): number;
  /** Try to assemble a free block of `order`; return true if one may now exist. */
  directCompact?(gfp: number, order: number, nid: number): boolean;
  /**
   * A high-order allocation that may not compact itself found a zone above its low watermark
   * (wakeup_kswapd -> wakeup_kcompactd): background compaction for `order` is wanted.
   */
  wakeKcompactd?(nid: number, zone: number, order: number): void;
}

/** HugetlbPoolStats - one pool's counters (/sys/kernel/mm/hugepages/hugepages-<size>kB/). */
export interface HugetlbPoolStats {
  nr: number;
  free: number;
  resv: number;
  surplus: number;
}
