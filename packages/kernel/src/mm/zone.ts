import { ALLOC_CMA, ALLOC_MIN_RESERVE, ALLOC_NON_BLOCK, ALLOC_OOM, ALLOC_RESERVES } from './alloc-flags';
import { MAX_NR_ZONES, ZONE_MOVABLE, ZONE_NAMES, type ZoneName } from './gfp';
import { FreeArea } from './free-area';
import type { PageFrames } from './page-frames';
import { PAGE_SHIFT } from '../uapi/mman';

/** Index of the min watermark in Zone.watermark (enum zone_watermarks). */
export const WMARK_MIN = 0;
/** Index of the low watermark. */
export const WMARK_LOW = 1;
/** Index of the high watermark. */
export const WMARK_HIGH = 2;

/** Tunable defaults of the watermark code (mm/page_alloc.c), each with its unit. */
export const ZONE_TUNABLE_DEFAULTS = {
  /** vm.watermark_scale_factor: kswapd's low/high distance, in 1/10000 of a zone's managed pages. */
  watermarkScaleFactor: 10,
  /** Lower clamp of the computed vm.min_free_kbytes, in KiB. */
  minFreeKbytesFloor: 128,
  /** Upper clamp of the computed vm.min_free_kbytes, in KiB (256 MiB). */
  minFreeKbytesCeil: 262144,
  /** vm.lowmem_reserve_ratio per zone (DMA32, NORMAL, MOVABLE); 0 means no reserve. */
  lowmemReserveRatio: [256, 32, 0] as readonly number[],
  /** SWAP_CLUSTER_MAX, pages: the floor of ZONE_MOVABLE's min watermark. */
  swapClusterMax: 32,
  /** Ceiling of ZONE_MOVABLE's min watermark, in pages. */
  movableMinCeil: 128,
  /** ZONE_MOVABLE's min watermark is its managed pages divided by this (before clamping). */
  movableMinDivisor: 1024,
} as const;

/** The zone names /proc prints (zone_names[]). */
export const ZONE_PROC_NAMES: readonly string[] = ['DMA32', 'Normal', 'Movable'];

/**
 * Zone - one memory zone of one node (struct zone): its pfn span, its buddy free lists and
 * watermarks. Pages of the zone that were never given to the buddy (reserved, boot-time gigantic
 * pages) are spanned but not managed.
 */
export class Zone {
  /** Buddy free lists and free counters. */
  readonly freeArea: FreeArea;
  /** Pages handed to the buddy allocator at boot (zone_managed_pages). */
  managedPages = 0;
  /** min / low / high watermarks in pages, indexed by WMARK_*. */
  readonly watermark = new Int32Array(3);
  /**
   * Pages this zone keeps from allocations that could have used a higher zone, indexed by the
   * allocation's highest zone (lowmem_reserve[]).
   */
  readonly lowmemReserve = new Int32Array(MAX_NR_ZONES);

  /**
   * @nid: NUMA node.
   * @zoneIdx: ZONE_DMA32, ZONE_NORMAL or ZONE_MOVABLE.
   * @startPfn: first pfn spanned.
   * @spannedPages: pages spanned (0 for an absent zone).
   */
  constructor(
    readonly nid: number,
    readonly zoneIdx: number,
    readonly startPfn: number,
    readonly spannedPages: number,
    frames: PageFrames,
  ) {
    this.freeArea = new FreeArea(frames);
  }

  /** Global zone id: nid * MAX_NR_ZONES + zoneIdx (what Pageblocks.zoneId stores). */
  get id(): number {
    return this.nid * MAX_NR_ZONES + this.zoneIdx;
  }

  /** One past the last pfn spanned (zone_end_pfn). */
  get endPfn(): number {
    return this.startPfn + this.spannedPages;
  }

  /** The zone's name as svasim's ZoneName ('DMA32', 'NORMAL', 'MOVABLE'). */
  get name(): ZoneName {
    return ZONE_NAMES[this.zoneIdx];
  }

  /** Free pages outside isolated pageblocks (NR_FREE_PAGES). */
  get freePages(): number {
    return this.freeArea.freePages;
  }

  /** Free pages in CMA pageblocks (NR_FREE_CMA_PAGES). */
  get freeCmaPages(): number {
    return this.freeArea.freeCmaPages;
  }

  /** Whether the buddy manages any page of this zone (populated_zone). */
  get populated(): boolean {
    return this.managedPages > 0;
  }

  /** Whether @pfn lies in the zone's span (zone_spans_pfn). */
  spansPfn(pfn: number): boolean {
    return pfn >= this.startPfn && pfn < this.startPfn + this.spannedPages;
  }

  /** WMARK_MIN: below it only reserve-entitled allocations succeed. */
  get watermarkMin(): number {
    return this.watermark[WMARK_MIN];
  }

  /** WMARK_LOW: the fast path needs free pages above it; below it kswapd wakes. */
  get watermarkLow(): number {
    return this.watermark[WMARK_LOW];
  }

  /** WMARK_HIGH: kswapd reclaims until free pages reach it. */
  get watermarkHigh(): number {
    return this.watermark[WMARK_HIGH];
  }
}

/**
 * zoneWatermarkOk - whether @zone can give a block of @order without its free pages falling to
 * @mark (__zone_watermark_ok).
 * @highestZoneIdx: the highest zone the allocation may use; selects the lowmem reserve kept
 *     against it.
 * @allocFlags: ALLOC_* flags: ALLOC_CMA counts free CMA pages as usable; ALLOC_MIN_RESERVE /
 *     ALLOC_NON_BLOCK / ALLOC_OOM lower the mark as the kernel does.
 *
 * Return: true when the order-0 check passes (free - unusable > mark + lowmem reserve) and, for
 * order > 0, a free block of at least @order exists on a list the allocation may use.
 */
export function zoneWatermarkOk(
  zone: Zone,
  order: number,
  mark: number,
  highestZoneIdx: number,
  allocFlags: number,
): boolean {
  const fa = zone.freeArea;
  let free = fa.freePages - ((1 << order) - 1);
  if (!(allocFlags & ALLOC_CMA)) free -= fa.freeCmaPages;
  let min = mark;
  if (allocFlags & ALLOC_RESERVES) {
    // __GFP_HIGH may take half of the reserve, non-blocking callers a further quarter of the rest.
    if (allocFlags & ALLOC_MIN_RESERVE) {
      min -= Math.floor(min / 2);
      if (allocFlags & ALLOC_NON_BLOCK) min -= Math.floor(min / 4);
    }
    if (allocFlags & ALLOC_OOM) min -= Math.floor(min / 2);
  }
  if (free <= min + zone.lowmemReserve[highestZoneIdx]) return false;
  if (order === 0) return true;
  return fa.hasBlockAtLeast(order, (allocFlags & ALLOC_CMA) !== 0);
}

/**
 * calculateMinFreeKbytes - vm.min_free_kbytes as the kernel computes it at boot
 * (calculate_min_free_kbytes): int_sqrt(lowmem_kbytes * 16), clamped to [128, 262144] KiB, where
 * lowmem is the managed memory of every zone below ZONE_MOVABLE.
 *
 * Return: the value in KiB.
 */
export function calculateMinFreeKbytes(zones: readonly Zone[]): number {
  let lowmemPages = 0;
  for (const z of zones) if (z.zoneIdx !== ZONE_MOVABLE) lowmemPages += z.managedPages;
  const lowmemKbytes = lowmemPages * (1 << (PAGE_SHIFT - 10));
  const v = Math.floor(Math.sqrt(lowmemKbytes * 16));
  return Math.min(
    Math.max(v, ZONE_TUNABLE_DEFAULTS.minFreeKbytesFloor),
    ZONE_TUNABLE_DEFAULTS.minFreeKbytesCeil,
  );
}

/**
 * setupPerZoneWmarks - set every zone's min/low/high watermarks (__setup_per_zone_wmarks).
 * @minFreeKbytes: vm.min_free_kbytes; its pages are split among the zones below ZONE_MOVABLE in
 *     proportion to their managed pages. ZONE_MOVABLE gets a small min (managed/1024 clamped to
 *     [SWAP_CLUSTER_MAX, 128]) since reserves there serve no kernel allocation.
 * @watermarkScaleFactor: vm.watermark_scale_factor (1/10000 of managed pages).
 *
 * Return: nothing; kswapd's distance (low - min = high - low) is max(min/4, managed * factor/10000).
 */
export function setupPerZoneWmarks(
  zones: readonly Zone[],
  minFreeKbytes: number,
  watermarkScaleFactor: number = ZONE_TUNABLE_DEFAULTS.watermarkScaleFactor,
): void {
  const pagesMin = minFreeKbytes >> (PAGE_SHIFT - 10);
  let lowmemPages = 0;
  for (const z of zones) if (z.zoneIdx !== ZONE_MOVABLE) lowmemPages += z.managedPages;
  const t = ZONE_TUNABLE_DEFAULTS;
  for (const z of zones) {
    const tmp = lowmemPages > 0 ? Math.floor((pagesMin * z.managedPages) / lowmemPages) : 0;
    if (z.zoneIdx === ZONE_MOVABLE) {
      const m = Math.floor(z.managedPages / t.movableMinDivisor);
      z.watermark[WMARK_MIN] = Math.min(Math.max(m, t.swapClusterMax), t.movableMinCeil);
    } else {
      z.watermark[WMARK_MIN] = tmp;
    }
    const delta = Math.max(tmp >> 2, Math.floor((z.managedPages * watermarkScaleFactor) / 10000));
    z.watermark[WMARK_LOW] = z.watermark[WMARK_MIN] + delta;
    z.watermark[WMARK_HIGH] = z.watermark[WMARK_LOW] + delta;
  }
}

/**
 * setupPerZoneLowmemReserve - each zone's lowmem_reserve[] (setup_per_zone_lowmem_reserve): a
 * lower zone keeps (managed pages of the zones above it) / ratio pages away from allocations that
 * could have been served higher up.
 * @zones: every zone, MAX_NR_ZONES per node in node order.
 * @ratio: vm.lowmem_reserve_ratio per zone index.
 */
export function setupPerZoneLowmemReserve(
  zones: readonly Zone[],
  ratio: readonly number[] = ZONE_TUNABLE_DEFAULTS.lowmemReserveRatio,
): void {
  for (let base = 0; base < zones.length; base += MAX_NR_ZONES) {
    for (let i = 0; i < MAX_NR_ZONES; i++) {
      const z = zones[base + i];
      z.lowmemReserve.fill(0);
      const clear = !ratio[i] || !z.managedPages;
      let managed = 0;
      for (let j = i + 1; j < MAX_NR_ZONES; j++) {
        managed += zones[base + j].managedPages;
        z.lowmemReserve[j] = clear ? 0 : Math.floor(managed / ratio[i]);
      }
    }
  }
}
