/**
 * FOLL_LONGTERM (mm/gup.c __gup_longterm_locked, check_and_migrate_movable_pages): a long-term pin
 * may not stay on memory that must remain movable (CMA, ZONE_MOVABLE, isolated pageblocks). After
 * pinning, unpinnable folios are migrated to pinnable memory and the whole range is pinned again;
 * if migration fails, nothing stays pinned.
 */
import { ERRNO } from '../uapi/errno';
import { GFP_HIGHUSER_MOVABLE, __GFP_COMP, __GFP_PIN } from '../mm/gfp';
import { hugepageSizeOfOrder } from '../mm/hugetlb-pool';
import { emptyMigrateStats, isolateLruFolio, migratePages, putbackMovableFolio } from '../mm/migrate';
import { MIGRATE_SYNC, MR_LONGTERM_PIN, type NewFolioFn } from '../mm/migrate-types';
import type { MmCore, PhysAllocator } from '../mm/mm-core';
import { PG_hugetlb, PG_isolated, PG_tail } from '../mm/page-flags';
import { FOLL_LONGTERM, FOLL_PIN } from './foll-flags';
import { gupState } from './pin-tracker';

/** folioIsLongtermPinnable - see pinnable.ts (re-exported: the long-term rules live here). */
export { folioIsLongtermPinnable } from './pinnable';

/**
 * Pin-and-migrate passes before a long-term pin gives up. The kernel loops for as long as
 * migration succeeds; with pinnable destinations one extra pass always suffices, so hitting this
 * bound means the allocator kept handing out unpinnable memory.
 */
export const LONGTERM_MAX_PASSES = 16;

/** GUP pages arrays: one pfn per 4 KiB page; a negative entry is an empty slot (NULL). */
export type GupPageArray = number[] | Int32Array;

const pinScopeDepth = new WeakMap<MmCore, number>();
const pinScopeSaved = new WeakMap<MmCore, { own: boolean; fn: PhysAllocator['allocPages'] }>();

/**
 * memallocPinSave - enter a long-term-pin allocation scope (memalloc_pin_save): until the matching
 * memallocPinRestore, every allocation on this kernel gets __GFP_PIN, so pages a fault creates
 * while a long-term pin is being taken land outside CMA and ZONE_MOVABLE at once. Scopes nest.
 * Context: synchronous (svasim runs one kernel call at a time). Released by memallocPinRestore.
 */
export function memallocPinSave(core: MmCore): void {
  const depth = pinScopeDepth.get(core) ?? 0;
  pinScopeDepth.set(core, depth + 1);
  if (depth > 0) return;
  // The kernel marks the task (PF_MEMALLOC_PIN) and the allocator reads it; svasim's allocator
  // has no per-task context, so the scope wraps the allocator's entry point for its duration.
  const alloc = core.alloc;
  const own = Object.prototype.hasOwnProperty.call(alloc, 'allocPages');
  const fn = alloc.allocPages;
  pinScopeSaved.set(core, { own, fn });
  alloc.allocPages = (gfp: number, order: number, nid?: number) =>
    fn.call(alloc, gfp | __GFP_PIN, order, nid);
}

/** memallocPinRestore - leave the scope entered by memallocPinSave. */
export function memallocPinRestore(core: MmCore): void {
  const depth = pinScopeDepth.get(core) ?? 0;
  if (depth <= 0) return;
  pinScopeDepth.set(core, depth - 1);
  if (depth > 1) return;
  const saved = pinScopeSaved.get(core);
  pinScopeSaved.delete(core);
  if (!saved) return;
  const alloc = core.alloc as Partial<PhysAllocator>;
  if (saved.own) alloc.allocPages = saved.fn;
  else delete alloc.allocPages;
}

/**
 * longtermNewFolio - the migration target for a long-term pin (alloc_migration_target under
 * memalloc_pin_save): a folio of the same order on the source's node, outside CMA and ZONE_MOVABLE
 * (GFP_HIGHUSER_MOVABLE | __GFP_PIN, compound for order > 0); for a hugetlb source, a free page of
 * the same size from the hugetlb pool that is itself long-term pinnable (unpinnable pool pages are
 * put back). Returns the new head with one reference, or -1 when there is none.
 */
export function longtermNewFolio(core: MmCore): NewFolioFn {
  const st = gupState(core);
  return (src, order) => {
    const nid = core.alloc.placement(src).nid;
    if (core.frames.flags[src] & PG_hugetlb) {
      const size = hugepageSizeOfOrder(order);
      if (!size) return -1;
      const rejected: number[] = [];
      let head = -1;
      for (;;) {
        const h = core.hugetlb.allocHugetlbFolio(size, nid);
        if (h < 0) break;
        if (st.isPinnable(h)) {
          head = h;
          break;
        }
        rejected.push(h);
      }
      for (const h of rejected) {
        core.frames.refcount[h] = 0;
        core.hugetlb.freeHugetlbFolio(h);
      }
      return head;
    }
    return core.alloc.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_PIN | (order > 0 ? __GFP_COMP : 0), order, nid);
  };
}

function headOf(core: MmCore, pfn: number): number {
  const f = core.frames;
  return f.flags[pfn] & PG_tail ? f.mapping[pfn] - 1 : pfn;
}

/**
 * checkAndMigrateMovablePages - after pinning pages[off .. off + n) with FOLL_PIN, make sure every
 * folio may stay pinned long-term (check_and_migrate_movable_pages):
 *  - 0: all are pinnable; everything stays pinned;
 *  - -EAGAIN: the unpinnable folios were isolated, every page was unpinned (entries set to -1)
 *    and the unpinnable ones migrated (MIGRATE_SYNC, MR_LONGTERM_PIN); the caller pins again;
 *  - -ENOMEM: migration failed; nothing is pinned any more and the isolated folios are back.
 * Context: charges the migration to the caller. The caller's pins are released here on -EAGAIN
 * and -ENOMEM; on 0 they are released by unpin_user_pages as usual.
 */
export function checkAndMigrateMovablePages(
  core: MmCore,
  pages: GupPageArray,
  off: number,
  n: number,
): number {
  const st = gupState(core);
  const f = core.frames;
  const isolated: number[] = [];
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const p = pages[off + i];
    if (p < 0) continue;
    const head = headOf(core, p);
    if (head === prev) continue;
    prev = head;
    if (st.isPinnable(head)) continue;
    // Device-coherent folios (migrate_device_coherent_folio) do not exist in svasim.
    if (isolateLruFolio(core, head)) isolated.push(head);
  }
  if (isolated.length === 0) return 0;

  // The pins are unexpected references to migration: drop them all (isolation keeps the folios).
  // They are this call's own long-term pins: the tracker must not leave them counted as long-term
  // on a folio that still holds someone else's short-term pin.
  for (let i = 0; i < n; i++) {
    const p = pages[off + i];
    if (p < 0) continue;
    st.putFolio(headOf(core, p), 1, FOLL_PIN | FOLL_LONGTERM);
    pages[off + i] = -1;
  }
  const stats = emptyMigrateStats();
  const ret = migratePages(core, isolated, longtermNewFolio(core), MIGRATE_SYNC, MR_LONGTERM_PIN, stats);
  st.stats.longtermMigrated += stats.succeeded;
  if (ret !== 0) {
    for (const head of stats.failedFolios) if (f.flags[head] & PG_isolated) putbackMovableFolio(core, head);
    st.stats.longtermFailures++;
    return -ERRNO.ENOMEM;
  }
  return -ERRNO.EAGAIN;
}

/**
 * gupLongtermLocked - the FOLL_LONGTERM loop (__gup_longterm_locked): inside a memalloc pin
 * scope, `pinOnce()` pins the range into pages[off ..] and returns the count (or -errno), then
 * checkAndMigrateMovablePages runs; while it migrated something, the whole range is pinned again.
 * Returns the number of pages pinned (partial success possible), or -errno with nothing pinned
 * (-ENOMEM when migration failed). Without FOLL_LONGTERM callers use pinOnce directly.
 * Released by unpin_user_pages.
 */
export function gupLongtermLocked(
  core: MmCore,
  pinOnce: () => number,
  pages: GupPageArray,
  off: number,
): number {
  memallocPinSave(core);
  try {
    let nr = 0;
    let rc = 0;
    for (let pass = 0; ; pass++) {
      nr = pinOnce();
      if (nr <= 0) return nr;
      rc = checkAndMigrateMovablePages(core, pages, off, nr);
      if (rc !== -ERRNO.EAGAIN) break;
      if (pass + 1 >= LONGTERM_MAX_PASSES) {
        core.dmesg.printkRatelimited(
          'gup_longterm',
          `WARNING: mm/gup.c: FOLL_LONGTERM gave up after ${LONGTERM_MAX_PASSES} migrate passes`,
        );
        gupState(core).stats.longtermFailures++;
        return -ERRNO.ENOMEM;
      }
    }
    return rc ? rc : nr;
  } finally {
    memallocPinRestore(core);
  }
}
