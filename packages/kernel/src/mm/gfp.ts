/**
 * Allocation flags (include/linux/gfp_types.h, the subset svasim models) and the zone and
 * migratetype ids they select.
 */

/** Zones, lowest first (enum zone_type). ZONE_DMA is folded into DMA32: x86-64's 16 MiB DMA zone plays no part. */
export const ZONE_DMA32 = 0;
export const ZONE_NORMAL = 1;
export const ZONE_MOVABLE = 2;
export const MAX_NR_ZONES = 3;
export const ZONE_NAMES = ['DMA32', 'NORMAL', 'MOVABLE'] as const;
export type ZoneName = (typeof ZONE_NAMES)[number];

/** Migratetypes (enum migratetype). */
export const MIGRATE_UNMOVABLE = 0;
export const MIGRATE_MOVABLE = 1;
export const MIGRATE_RECLAIMABLE = 2;
export const MIGRATE_CMA = 3;
export const MIGRATE_ISOLATE = 4;
export const MIGRATE_TYPES = 5;
/** Free-list types that ordinary allocations draw from (CMA and ISOLATE are special). */
export const MIGRATE_PCPTYPES = 3;
export const MIGRATETYPE_NAMES = ['UNMOVABLE', 'MOVABLE', 'RECLAIMABLE', 'CMA', 'ISOLATE'] as const;
export type MigratetypeName = (typeof MIGRATETYPE_NAMES)[number];

/** The buddy allocator's orders are 0..MAX_PAGE_ORDER (4 KiB to 4 MiB). */
export const MAX_PAGE_ORDER = 10;
export const NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1;
/** A pageblock is 2 MiB (pageblock_order = HPAGE_PMD_ORDER on x86-64). */
export const PAGEBLOCK_ORDER = 9;
export const PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER;

// gfp bits
export const __GFP_DMA32 = 1 << 2;
export const __GFP_MOVABLE = 1 << 3;
export const __GFP_RECLAIMABLE = 1 << 4;
export const __GFP_HIGH = 1 << 5;
export const __GFP_IO = 1 << 6;
export const __GFP_FS = 1 << 7;
export const __GFP_ZERO = 1 << 8;
export const __GFP_DIRECT_RECLAIM = 1 << 10;
export const __GFP_KSWAPD_RECLAIM = 1 << 11;
export const __GFP_NOWARN = 1 << 13;
export const __GFP_RETRY_MAYFAIL = 1 << 14;
export const __GFP_NOFAIL = 1 << 15;
export const __GFP_NORETRY = 1 << 16;
export const __GFP_COMP = 1 << 18;
export const __GFP_HARDWALL = 1 << 20;
export const __GFP_THISNODE = 1 << 21;
export const __GFP_ACCOUNT = 1 << 22;
/** svasim: the allocation serves a long-term pin (memalloc_pin_save): stay out of CMA and ZONE_MOVABLE. */
export const __GFP_PIN = 1 << 25;

export const __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
export const GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM;
export const GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
export const GFP_NOWAIT = __GFP_KSWAPD_RECLAIM;
export const GFP_USER = GFP_KERNEL | __GFP_HARDWALL;
export const GFP_HIGHUSER = GFP_USER;
export const GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE;
export const GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOWARN) & ~__GFP_RECLAIM;
export const GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;

/** gfpMigratetype - the free-list type an allocation draws from (gfp_migratetype). */
export function gfpMigratetype(gfp: number): number {
  if (gfp & __GFP_MOVABLE) return MIGRATE_MOVABLE;
  if (gfp & __GFP_RECLAIMABLE) return MIGRATE_RECLAIMABLE;
  return MIGRATE_UNMOVABLE;
}

/**
 * gfpZone - the highest zone an allocation may use (gfp_zone): movable allocations may use
 * ZONE_MOVABLE unless they serve a long-term pin.
 */
export function gfpZone(gfp: number): number {
  if (gfp & __GFP_DMA32) return ZONE_DMA32;
  if (gfp & __GFP_MOVABLE && !(gfp & __GFP_PIN)) return ZONE_MOVABLE;
  return ZONE_NORMAL;
}
