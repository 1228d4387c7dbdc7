import { MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_PCPTYPES, MIGRATE_TYPES, NR_PAGE_ORDERS } from './gfp';
import { PG_buddy } from './page-flags';
import { ORDER_SHIFT, PG_FLAGS_MASK, type PageFrames } from './page-frames';

/** Clears PG_buddy and the order of a head leaving the free lists. */
const CLEAR_BUDDY = PG_FLAGS_MASK & ~PG_buddy;

/**
 * FreeArea - one zone's buddy free lists (struct free_area[NR_PAGE_ORDERS], each with
 * free_list[MIGRATE_TYPES]): a doubly linked list per (order, migratetype), threaded through the
 * page frames themselves so that no memory is spent per free block.
 *
 * Only the head page of a free block is written: PG_buddy and the order in its flags, `mapping`
 * the next pfn on the list + 1 (0 = end), `index` the previous pfn (-1 = first on the list). The
 * other pages of a free block keep all-zero metadata; allocation relies on that to hand out
 * clean pages without touching them.
 *
 * Counting follows the kernel's account_freepages(): free pages on MIGRATE_ISOLATE lists are not
 * free as far as watermarks and nr_free_pages are concerned; those on MIGRATE_CMA lists are also
 * counted in freeCmaPages.
 */
export class FreeArea {
  /** First pfn of each list, by order * MIGRATE_TYPES + mt; -1 = empty. */
  readonly head: Int32Array;
  /** Last pfn of each list, for FPI_TO_TAIL insertions; -1 = empty. */
  readonly tail: Int32Array;
  /** Free blocks on each list (the kernel keeps nr_free per order; this splits it by type). */
  readonly nrFree: Int32Array;
  /** Free pages outside MIGRATE_ISOLATE blocks (NR_FREE_PAGES). */
  freePages = 0;
  /** Free pages in MIGRATE_CMA blocks (NR_FREE_CMA_PAGES). */
  freeCmaPages = 0;
  /** Free pages in MIGRATE_ISOLATE blocks (not counted in freePages). */
  isolatedPages = 0;

  // The PageFrames arrays the lists thread through, cached: add/del are the buddy's innermost code.
  private readonly flags: Uint32Array;
  private readonly mapping: Uint32Array;
  private readonly index: Float64Array;

  constructor(frames: PageFrames) {
    this.flags = frames.flags;
    this.mapping = frames.mapping;
    this.index = frames.index;
    this.head = new Int32Array(NR_PAGE_ORDERS * MIGRATE_TYPES).fill(-1);
    this.tail = new Int32Array(NR_PAGE_ORDERS * MIGRATE_TYPES).fill(-1);
    this.nrFree = new Int32Array(NR_PAGE_ORDERS * MIGRATE_TYPES);
  }

  /**
   * add - put the free block at @pfn of @order on the @mt list (__add_to_free_list +
   * set_buddy_order), at the tail when @toTail (FPI_TO_TAIL: boot memory and blocks likely to
   * merge soon are used last), else at the head.
   *
   * The caller guarantees the block is not on any list and its pages are otherwise clean; undone
   * by del().
   */
  add(pfn: number, order: number, mt: number, toTail: boolean): void {
    const i = order * MIGRATE_TYPES + mt;
    // PG_buddy plus the order in the top bits; a free head carries no other flag.
    this.flags[pfn] = PG_buddy | (order << ORDER_SHIFT);
    if (toTail) {
      const t = this.tail[i];
      this.mapping[pfn] = 0;
      this.index[pfn] = t;
      if (t < 0) this.head[i] = pfn;
      else this.mapping[t] = pfn + 1;
      this.tail[i] = pfn;
    } else {
      const h = this.head[i];
      this.mapping[pfn] = h + 1;
      this.index[pfn] = -1;
      if (h < 0) this.tail[i] = pfn;
      else this.index[h] = pfn;
      this.head[i] = pfn;
    }
    this.nrFree[i]++;
    if (mt < MIGRATE_CMA) this.freePages += 1 << order;
    else this.account(1 << order, mt);
  }

  /**
   * del - take the free block at @pfn of @order off the @mt list (__del_page_from_free_list),
   * leaving its head page with all-zero metadata.
   *
   * The caller names the list the block is on (the migratetype of its pageblock); a mismatch
   * corrupts the lists, as it would in the kernel.
   */
  del(pfn: number, order: number, mt: number): void {
    const i = order * MIGRATE_TYPES + mt;
    const next = this.mapping[pfn] - 1;
    const prev = this.index[pfn];
    if (prev < 0) this.head[i] = next;
    else this.mapping[prev] = next + 1;
    if (next < 0) this.tail[i] = prev;
    else this.index[next] = prev;
    this.mapping[pfn] = 0;
    this.index[pfn] = 0;
    this.flags[pfn] &= CLEAR_BUDDY;
    this.nrFree[i]--;
    if (mt < MIGRATE_CMA) this.freePages -= 1 << order;
    else this.account(-(1 << order), mt);
  }

  /**
   * move - move the free block at @pfn of @order from the @from list to the @to list
   * (move_to_free_list), at the tail as the kernel does, keeping the counters right when the move
   * crosses the CMA or ISOLATE boundary.
   */
  move(pfn: number, order: number, from: number, to: number): void {
    this.del(pfn, order, from);
    this.add(pfn, order, to, true);
  }

  /** first - the first free block on the (@order, @mt) list, or -1 (get_page_from_free_area). */
  first(order: number, mt: number): number {
    return this.head[order * MIGRATE_TYPES + mt];
  }

  /** isEmpty - whether the (@order, @mt) list is empty (free_area_empty). */
  isEmpty(order: number, mt: number): boolean {
    return this.head[order * MIGRATE_TYPES + mt] < 0;
  }

  /** blocks - free blocks of @order on every list (free_area[order].nr_free). */
  blocks(order: number): number {
    let n = 0;
    const base = order * MIGRATE_TYPES;
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) n += this.nrFree[base + mt];
    return n;
  }

  /** blocksOf - free blocks on the (@order, @mt) list. */
  blocksOf(order: number, mt: number): number {
    return this.nrFree[order * MIGRATE_TYPES + mt];
  }

  /**
   * hasBlockAtLeast - whether a block of @order or more is free on an ordinary list, or on the CMA
   * list when @cma (the high-order part of __zone_watermark_ok).
   */
  hasBlockAtLeast(order: number, cma: boolean): boolean {
    for (let o = order; o < NR_PAGE_ORDERS; o++) {
      const base = o * MIGRATE_TYPES;
      for (let mt = 0; mt < MIGRATE_PCPTYPES; mt++) if (this.head[base + mt] >= 0) return true;
      if (cma && this.head[base + MIGRATE_CMA] >= 0) return true;
    }
    return false;
  }

  /**
   * forEach - call @fn(pfn, order, mt) for every free block, lists in (order, mt) order, each from
   * its head. For /proc, tests and invariant checks; @fn must not change the lists.
   */
  forEach(fn: (pfn: number, order: number, mt: number) => void): void {
    for (let order = 0; order < NR_PAGE_ORDERS; order++) {
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        for (let p = this.head[order * MIGRATE_TYPES + mt]; p >= 0; p = this.mapping[p] - 1) fn(p, order, mt);
      }
    }
  }

  private account(nr: number, mt: number): void {
    if (mt === MIGRATE_ISOLATE) {
      this.isolatedPages += nr;
      return;
    }
    this.freePages += nr;
    if (mt === MIGRATE_CMA) this.freeCmaPages += nr;
  }
}
