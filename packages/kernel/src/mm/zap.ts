import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { hugepageSizeName, type MmCore } from './mm-core';
import type { MmStruct } from './mm-struct';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_UNMAP } from './notifier-hooks';
import { PG_anon, PG_hugetlb, PG_mlocked, PG_shmem, PG_tail } from './page-flags';
import { putPage } from './page-ref';
import { PTE_MIGRATION, PTE_PRESENT, PTE_SPECIAL } from './pte';
import { munlockFolio, recheckMlock } from './rmap';
import type { VmAreaStruct } from './vma';
import { splitHugePmdRange } from './huge-memory';

/**
 * ZapHooks - let subsystems above mm release what a non-present entry holds (a swap slot, a
 * device-private page) when it is zapped. Returns true when it handled the entry.
 */
export interface ZapHooks {
  zapNonPresent?(mm: MmStruct, va: number, lo: number, hi: number, level: number): boolean;
  /**
   * fork met a non-present entry: duplicate what it refers to for the child (swap_duplicate)
   * and return the entry's hi word for the child (0 = leave the child's entry empty), or -1
   * when not handled.
   */
  copyNonPresent?(src: MmStruct, dst: MmStruct, va: number, lo: number, hi: number, level: number): number;
}

/** zapHooks - the installed hooks of one kernel (empty when none). */
export function zapHooks(core: MmCore): ZapHooks {
  return core.zapHooks;
}
/** setZapHooks - install the handlers for non-present entries for one kernel. */
export function setZapHooks(core: MmCore, hooks: ZapHooks): void {
  core.zapHooks = { ...core.zapHooks, ...hooks };
}

/**
 * zapPageRange - remove every mapping in [start, end) of `vma` (unmap_page_range), dropping the
 * page references they held; pages whose last reference goes are freed. Secondary MMUs are told
 * first (MMU_NOTIFY_UNMAP). The VMA itself stays. Charges zapPerPage per entry.
 */
export function zapPageRange(vma: VmAreaStruct, start: number, end: number, event = MMU_NOTIFY_UNMAP): void {
  const mm = vma.mm;
  const core = mm.core;
  const pt = mm.pgtable;
  const f = core.frames;
  // A partial zap of a THP splits its PMD first, so only the pages in range go.
  splitHugePmdRange(vma, start, end);
  const range = mmuNotifierInvalidateRangeStart(mm, start, end, event);
  let entries = 0;
  pt.forEachEntry(start, end, (va, tableId, slot, level) => {
    const t = pt.table(tableId);
    const lo = t[slot];
    const hi = t[slot + 1];
    entries++;
    pt.set(tableId, slot, 0, 0);
    if (!(hi & PTE_PRESENT)) {
      if (hi & PTE_MIGRATION) {
        // The folio is mid-migration: the entry still counts in RSS; the copy's completion
        // finds it gone and does not restore it.
        if (level === 3) {
          if (f.flags[lo] & PG_anon) mm.rssAnon--;
          else if (f.flags[lo] & PG_shmem) mm.rssShmem--;
          else mm.rssFile--;
        }
        return;
      }
      core.zapHooks.zapNonPresent?.(mm, va, lo, hi, level);
      return;
    }
    if (hi & PTE_SPECIAL) return;
    const head = f.flags[lo] & PG_tail ? f.mapping[lo] - 1 : lo;
    const mapcount = --f.mapcount[head];
    const hugetlb = (f.flags[head] & PG_hugetlb) !== 0;
    // RSS counts every 4 KiB page a PTE or a THP PMD maps; hugetlb is accounted elsewhere.
    const pages = hugetlb ? 0 : level === 3 ? 1 : 1 << f.getOrder(head);
    if (f.flags[head] & PG_anon) {
      mm.rssAnon -= pages;
      if (mapcount === 0 && !hugetlb) core.vmstat.dec(VM.nr_anon_pages, f.folioNrPages(head));
    } else if (f.flags[head] & PG_shmem) mm.rssShmem -= pages;
    else mm.rssFile -= pages;
    const mlocked = (f.flags[head] & PG_mlocked) !== 0;
    if (mlocked && mapcount === 0) munlockFolio(core, head);
    putPage(core, head);
    if (mlocked && mapcount > 0 && f.refcount[head] > 0) recheckMlock(core, head);
  });
  if (vma.hugeResv && vma.hugeResv.size > 0) {
    const size = vma.hugeSize;
    let released = 0;
    for (let n = Math.floor(start / size); n * size < end; n++) if (vma.hugeResv.delete(n)) released++;
    if (released) core.hugetlb.unreserve(hugepageSizeName(size), released);
  }
  mmuNotifierInvalidateRangeEnd(range);
  core.charge(entries * core.costs.zapPerPage);
}

/** Pages spanned by [start, end). */
export function pagesIn(start: number, end: number): number {
  return (end - start) / PAGE_SIZE;
}
