/**
 * folio_is_longterm_pinnable (include/linux/mm.h): where a FOLL_LONGTERM pin may stay. Kept in a
 * file of its own so the tracker and the long-term loop can both use it; longterm.ts re-exports it.
 */
import { MAX_NR_ZONES, MIGRATE_CMA, MIGRATE_ISOLATE, PAGEBLOCK_ORDER, ZONE_MOVABLE } from '../mm/gfp';
import type { MmCore } from '../mm/mm-core';
import type { Pageblocks } from '../mm/pageblock';

/** The per-pageblock arrays of the page allocator, when it exposes them (the PageAllocator does). */
function pageblocksOf(core: MmCore): Pageblocks | null {
  const pb = (core.alloc as { pageblocks?: Pageblocks }).pageblocks;
  return pb ?? null;
}

/**
 * folioIsLongtermPinnable - may the folio headed by `head` hold a FOLL_LONGTERM pin
 * (folio_is_longterm_pinnable)? Not when its pageblock is MIGRATE_CMA or MIGRATE_ISOLATE (CMA must
 * be able to take it back, isolation is about to move it), nor in ZONE_MOVABLE (memory offline
 * must be able to empty it); hugetlb folios, 2 MiB or 1 GiB, follow the same rule by their head.
 * The shared zero page is always pinnable. Returns the answer; nothing to release.
 */
export function folioIsLongtermPinnable(core: MmCore, head: number): boolean {
  if (head === core.alloc.zeroPfn) return true;
  const pb = pageblocksOf(core);
  if (pb) {
    const i = head >>> PAGEBLOCK_ORDER;
    const mt = pb.migratetype[i];
    if (mt === MIGRATE_CMA || mt === MIGRATE_ISOLATE) return false;
    return pb.zoneId[i] % MAX_NR_ZONES !== ZONE_MOVABLE;
  }
  const p = core.alloc.placement(head);
  if (p.migratetype === 'CMA' || p.migratetype === 'ISOLATE') return false;
  return p.zone !== 'MOVABLE';
}

/**
 * PinnableCheck - folioIsLongtermPinnable bound to one kernel's arrays, for hot loops (GUP-fast
 * walks every page): returns true when `head` may be long-term pinned.
 */
export type PinnableCheck = (head: number) => boolean;

/** pinnableChecker - a PinnableCheck for `core` that reads the pageblock arrays directly. */
export function pinnableChecker(core: MmCore): PinnableCheck {
  const pb = pageblocksOf(core);
  if (!pb) return (head) => folioIsLongtermPinnable(core, head);
  const mtOf = pb.migratetype;
  const zoneOf = pb.zoneId;
  const zero = core.alloc.zeroPfn;
  return (head) => {
    if (head === zero) return true;
    const i = head >>> PAGEBLOCK_ORDER;
    const mt = mtOf[i];
    return mt !== MIGRATE_CMA && mt !== MIGRATE_ISOLATE && zoneOf[i] % MAX_NR_ZONES !== ZONE_MOVABLE;
  };
}
