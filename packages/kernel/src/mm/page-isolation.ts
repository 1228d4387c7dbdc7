/**
 * Pageblock isolation (mm/page_isolation.c): marking a pfn range MIGRATE_ISOLATE so the buddy
 * allocator hands out none of its free pages (they move to the ISOLATE free lists and leave
 * nr_free_pages), which lets alloc_contig_range and memory offlining empty the range by migration
 * and then take it whole.
 *
 * has_unmovable_pages decides up front whether a range can be emptied: reserved and kernel pages
 * (anything neither free nor on the LRU) make isolation fail with -EBUSY. A pinned LRU page does
 * not: it looks movable here and only fails later, at migration, which is why a pin turns
 * alloc_contig_range into a slow -EBUSY and memory offlining into an endless retry loop.
 *
 * As in kernels since 6.15 ("make page isolation a standalone bit"), the pageblock's migratetype
 * from before isolation is remembered and restored by undo, rather than overwritten with the
 * caller's.
 */
import { ERRNO } from '../uapi/errno';
import { MIGRATE_CMA, MIGRATE_ISOLATE, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER } from './gfp';
import type { PageAllocator } from './page-alloc';
import { PG_buddy, PG_head, PG_hugetlb, PG_lru, PG_offline, PG_reserved, PG_tail } from './page-flags';
import { ORDER_SHIFT } from './page-frames';

/** Isolation for memory offlining: PageOffline pages are fine, CMA pageblocks are not. */
export const MEMORY_OFFLINE = 0x1;
/** Print the unmovable page that made isolation fail (dump_page in the kernel). */
export const REPORT_FAILURE = 0x2;

/** Saved migratetype + 1 of each isolated pageblock (0 = not isolated by this module). */
const savedMt = new WeakMap<PageAllocator, Uint8Array>();

function saved(alloc: PageAllocator): Uint8Array {
  let a = savedMt.get(alloc);
  if (!a) savedMt.set(alloc, (a = new Uint8Array(alloc.pageblocks.count)));
  return a;
}

/**
 * hasUnmovablePages - the first pfn of [@start, @end) that cannot be migrated away
 * (has_unmovable_pages), or -1 when every page is free or movable.
 * @migratetype: the caller's target type: MIGRATE_CMA treats a CMA pageblock as movable
 *     (cma_alloc must isolate its own area); any other caller finds CMA pageblocks unmovable.
 * @flags: MEMORY_OFFLINE accepts PG_offline pages.
 *
 * Free pages, LRU pages (pinned or not) and compound folios on the LRU count as movable;
 * reserved pages, hugetlb folios (svasim does not migrate or dissolve them), isolated folios and
 * every other allocated page (kernel memory, driver buffers, CMA allocations) do not.
 */
export function hasUnmovablePages(
  alloc: PageAllocator,
  start: number,
  end: number,
  migratetype: number,
  flags: number,
): number {
  if (alloc.migratetypeOf(start) === MIGRATE_CMA) {
    return migratetype === MIGRATE_CMA && !(flags & MEMORY_OFFLINE) ? -1 : start;
  }
  const f = alloc.frames;
  const fl = f.flags;
  // A free block may begin before the range: skip its part inside.
  let pfn = start;
  const h = alloc.findBuddyHead(pfn);
  if (h >= 0) pfn = h + 2 ** (fl[h] >>> ORDER_SHIFT);
  for (; pfn < end; pfn++) {
    const pf = fl[pfn];
    if (pf & PG_offline && flags & MEMORY_OFFLINE) continue;
    if (pf & PG_reserved) return pfn;
    if (pf & PG_buddy) {
      pfn += 2 ** (pf >>> ORDER_SHIFT) - 1;
      continue;
    }
    if (pf & (PG_head | PG_tail)) {
      const head = pf & PG_tail ? f.mapping[pfn] - 1 : pfn;
      const hf = fl[head];
      if (hf & PG_hugetlb || !(hf & PG_lru)) return pfn;
      pfn = head + 2 ** f.getOrder(head) - 1;
      continue;
    }
    if (f.refcount[pfn] === 0) continue;
    if (pf & PG_lru) continue;
    return pfn;
  }
  return -1;
}

/**
 * startIsolatePageRange - make every pageblock overlapping [@startPfn, @endPfn) MIGRATE_ISOLATE
 * (start_isolate_page_range), moving its free pages to the isolate lists. Each pageblock is first
 * checked with hasUnmovablePages over its part of the range.
 * @migratetype: the type the caller will give the range back as (MIGRATE_CMA for cma_alloc);
 *     see hasUnmovablePages.
 * @flags: MEMORY_OFFLINE, REPORT_FAILURE.
 *
 * Return: 0 with every pageblock isolated, or -EBUSY (nothing left isolated) when a pageblock is
 * already isolated or holds an unmovable page, or -EINVAL for a range outside memory. Released by
 * undoIsolatePageRange(alloc, startPfn, endPfn).
 */
export function startIsolatePageRange(
  alloc: PageAllocator,
  startPfn: number,
  endPfn: number,
  migratetype: number,
  flags: number,
  report?: (msg: string) => void,
): number {
  if (!(startPfn >= 0 && endPfn <= alloc.maxPfn && startPfn < endPfn)) return -ERRNO.EINVAL;
  const s = startPfn - (startPfn & (PAGEBLOCK_NR_PAGES - 1));
  const sv = saved(alloc);
  for (let pb = s; pb < endPfn; pb += PAGEBLOCK_NR_PAGES) {
    const mt = alloc.migratetypeOf(pb);
    let bad = mt === MIGRATE_ISOLATE ? pb : -1;
    if (bad < 0) {
      bad = hasUnmovablePages(
        alloc,
        Math.max(pb, startPfn),
        Math.min(pb + PAGEBLOCK_NR_PAGES, endPfn),
        migratetype,
        flags,
      );
    }
    if (bad >= 0) {
      if (flags & REPORT_FAILURE && report) report(`page:pfn 0x${bad.toString(16)} has unmovable page`);
      undoIsolatePageRange(alloc, s, pb);
      return -ERRNO.EBUSY;
    }
    sv[pb >>> PAGEBLOCK_ORDER] = mt + 1;
    alloc.setPageblockMigratetype(pb, MIGRATE_ISOLATE);
  }
  return 0;
}

/**
 * undoIsolatePageRange - give every pageblock of [@startPfn, @endPfn) that startIsolatePageRange
 * isolated its former migratetype back (undo_isolate_page_range); its free pages move back to
 * the ordinary lists and merge again. Pageblocks this module did not isolate are left alone.
 */
export function undoIsolatePageRange(alloc: PageAllocator, startPfn: number, endPfn: number): void {
  const sv = saved(alloc);
  const s = startPfn - (startPfn & (PAGEBLOCK_NR_PAGES - 1));
  for (let pb = s; pb < endPfn; pb += PAGEBLOCK_NR_PAGES) {
    const i = pb >>> PAGEBLOCK_ORDER;
    if (sv[i] === 0 || alloc.migratetypeOf(pb) !== MIGRATE_ISOLATE) continue;
    alloc.setPageblockMigratetype(pb, sv[i] - 1);
    sv[i] = 0;
  }
}

/**
 * forgetIsolation - drop the saved migratetype of the pageblocks of [@startPfn, @endPfn), which
 * stay MIGRATE_ISOLATE for good (memory offlining leaves offline memory isolated).
 */
export function forgetIsolation(alloc: PageAllocator, startPfn: number, endPfn: number): void {
  saved(alloc).fill(0, startPfn >>> PAGEBLOCK_ORDER, Math.ceil(endPfn / PAGEBLOCK_NR_PAGES));
}

/**
 * testPagesIsolated - whether [@startPfn, @endPfn) is ready to be taken (test_pages_isolated):
 * every pageblock is MIGRATE_ISOLATE and every page is free in the buddy (or, with
 * MEMORY_OFFLINE, already PG_offline).
 *
 * Return: 0, or -EBUSY naming nothing (the kernel's trace event shows the first busy pfn).
 */
export function testPagesIsolated(
  alloc: PageAllocator,
  startPfn: number,
  endPfn: number,
  flags: number,
): number {
  const s = startPfn - (startPfn & (PAGEBLOCK_NR_PAGES - 1));
  for (let pb = s; pb < endPfn; pb += PAGEBLOCK_NR_PAGES)
    if (alloc.migratetypeOf(pb) !== MIGRATE_ISOLATE) return -ERRNO.EBUSY;
  const fl = alloc.frames.flags;
  let p = startPfn;
  while (p < endPfn) {
    const h = alloc.findBuddyHead(p);
    if (h >= 0) {
      p = h + 2 ** (fl[h] >>> ORDER_SHIFT);
      continue;
    }
    if (flags & MEMORY_OFFLINE && fl[p] & PG_offline) {
      p++;
      continue;
    }
    return -ERRNO.EBUSY;
  }
  return 0;
}
