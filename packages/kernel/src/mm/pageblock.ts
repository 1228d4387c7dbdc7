import { MAX_NR_ZONES, MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_PCPTYPES, PAGEBLOCK_ORDER } from './gfp';

/**
 * Pageblocks - per-pageblock (2 MiB) state, the kernel's pageblock_flags bitmap plus what
 * page_zone()/page_to_nid() read from struct page. One byte each per 512 pages, so a 64 GiB
 * machine spends 96 KiB here.
 *
 * Setting a migratetype here changes only the label: moving the pageblock's free pages to the
 * matching free list is PageAllocator.setPageblockMigratetype's job (move_freepages_block).
 */
export class Pageblocks {
  /** Number of pageblocks. */
  readonly count: number;
  /** enum migratetype of each pageblock. */
  readonly migratetype: Uint8Array;
  /** Global zone id (nid * MAX_NR_ZONES + zone index) of each pageblock. */
  readonly zoneId: Uint8Array;
  /** NUMA node of each pageblock. */
  readonly nid: Uint8Array;

  /**
   * @nrPages: pages of pfn space to cover (rounded up to whole pageblocks).
   */
  constructor(nrPages: number) {
    this.count = Math.ceil(nrPages / (1 << PAGEBLOCK_ORDER));
    this.migratetype = new Uint8Array(this.count);
    this.zoneId = new Uint8Array(this.count);
    this.nid = new Uint8Array(this.count);
  }

  /** getPageblockMigratetype - the migratetype of the pageblock holding @pfn (get_pageblock_migratetype). */
  getPageblockMigratetype(pfn: number): number {
    return this.migratetype[pfn >>> PAGEBLOCK_ORDER];
  }

  /**
   * setPageblockMigratetype - label the pageblock holding @pfn with @mt (set_pageblock_migratetype).
   * Free pages in it stay on their lists; see the class comment.
   */
  setPageblockMigratetype(pfn: number, mt: number): void {
    this.migratetype[pfn >>> PAGEBLOCK_ORDER] = mt;
  }

  /** zoneIdOf - the global zone id (nid * MAX_NR_ZONES + zone index) of @pfn. */
  zoneIdOf(pfn: number): number {
    return this.zoneId[pfn >>> PAGEBLOCK_ORDER];
  }

  /** zoneIdxOf - the zone index (ZONE_DMA32 / ZONE_NORMAL / ZONE_MOVABLE) of @pfn (zone_idx). */
  zoneIdxOf(pfn: number): number {
    return this.zoneId[pfn >>> PAGEBLOCK_ORDER] % MAX_NR_ZONES;
  }

  /** nidOf - the NUMA node of @pfn (page_to_nid). */
  nidOf(pfn: number): number {
    return this.nid[pfn >>> PAGEBLOCK_ORDER];
  }
}

/**
 * migratetypeIsMergeable - whether free pages of pageblocks of type @mt may merge with those of a
 * pageblock of another type (migratetype_is_mergeable): only the ordinary types may; CMA and
 * ISOLATE blocks keep to themselves so their accounting stays exact.
 */
export function migratetypeIsMergeable(mt: number): boolean {
  return mt < MIGRATE_PCPTYPES;
}

/** isMigrateCma - whether @mt is MIGRATE_CMA (is_migrate_cma). */
export function isMigrateCma(mt: number): boolean {
  return mt === MIGRATE_CMA;
}

/** isMigrateIsolate - whether @mt is MIGRATE_ISOLATE (is_migrate_isolate). */
export function isMigrateIsolate(mt: number): boolean {
  return mt === MIGRATE_ISOLATE;
}
