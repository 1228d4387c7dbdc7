/**
 * Device-exclusive entries (mm/rmap.c make_device_exclusive, mm/memory.c
 * remove_device_exclusive_entry / restore_exclusive_pte, copy_nonpresent_pte,
 * zap_nonpresent_ptes), as of Linux 6.15: a device that needs atomic access to a system page
 * asks for the CPU's PTE to become non-present while the device works on the page; the entry
 * keeps the page mapped (its mapcount and reference count it, as in 6.15+), RSS counts it, and
 * the first CPU access (or GUP, or an IOMMU fault) turns it back into the normal PTE after an
 * MMU_NOTIFY_EXCLUSIVE invalidation, which tells the device it lost exclusivity.
 *
 * Entry encoding: hi = PTE_DEVICE_EXCLUSIVE (| PTE_DIRTY kept from the PTE), lo = the page's pfn.
 * Always the writable kind (6.15 dropped the read-only one). makeDeviceExclusive itself, which
 * faults the page in through GUP, lives in hmm/.
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { folioOf, folioTrylock, folioUnlock } from './memremap';
import type { MmCore } from './mm-core';
import type { MmStruct } from './mm-struct';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_EXCLUSIVE, MMU_NOTIFY_PROTECTION_PAGE } from './notifier-hooks';
import { PG_anon, PG_anon_exclusive, PG_dirty, PG_hugetlb, PG_mlocked, PG_shmem } from './page-flags';
import { getPage, putPage } from './page-ref';
import { LEVEL_PTE } from './page-table';
import { PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_USER, PTE_WRITE } from './pte';
import { munlockFolio, recheckMlock, rmapWalk } from './rmap';
import type { VmAreaStruct } from './vma';
import { VM_SHARED, VM_WRITE } from './vm-flags';

/**
 * folioMakeDeviceExclusive - the second half of make_device_exclusive: with @page (a page of an
 * anonymous folio, faulted in writable, referenced and locked by the caller) mapped at @addr of
 * @vma, invalidate secondary MMUs (MMU_NOTIFY_EXCLUSIVE carrying @owner) and replace the PTE
 * with a device-exclusive entry. The mapping (mapcount, reference, RSS) stays.
 * Return: 0, or -EBUSY when the PTE no longer maps @page writable at PTE level (someone changed
 * it: the caller may try again).
 */
export function folioMakeDeviceExclusive(
  vma: VmAreaStruct,
  addr: number,
  page: number,
  owner: unknown,
): number {
  const mm = vma.mm;
  const core = mm.core;
  const va = addr - (addr % PAGE_SIZE);
  const range = mmuNotifierInvalidateRangeStart(mm, va, va + PAGE_SIZE, MMU_NOTIFY_EXCLUSIVE, owner);
  const pt = mm.pgtable;
  const t = pt.walk(va, false);
  const hi = t && pt.level === LEVEL_PTE ? t[pt.slot + 1] : 0;
  if (
    !t ||
    (hi & (PTE_PRESENT | PTE_WRITE | PTE_SPECIAL)) !== (PTE_PRESENT | PTE_WRITE) ||
    t[pt.slot] !== page
  ) {
    mmuNotifierInvalidateRangeEnd(range);
    return -ERRNO.EBUSY;
  }
  if (hi & PTE_DIRTY) core.frames.flags[folioOf(core, page)] |= PG_dirty;
  pt.set(pt.tableId, pt.slot, page, PTE_DEVICE_EXCLUSIVE | (hi & PTE_DIRTY));
  mmuNotifierInvalidateRangeEnd(range);
  return 0;
}

/**
 * restore_exclusive_pte: the device-exclusive entry at (@tableId, @slot) becomes the normal PTE
 * again: present and old, writable when the VMA allows it and the page is still exclusive
 * (can_change_pte_writable), dirty if the folio is.
 */
function restoreExclusivePte(vma: VmAreaStruct, tableId: number, slot: number): void {
  const core = vma.mm.core;
  const f = core.frames;
  const pt = vma.mm.pgtable;
  const page = pt.table(tableId)[slot];
  const folio = folioOf(core, page);
  let pte = PTE_PRESENT | PTE_USER;
  const exclusive = vma.flags & VM_SHARED || f.flags[folio] & PG_anon_exclusive;
  if (vma.flags & VM_WRITE && exclusive) {
    if (f.flags[folio] & PG_dirty) pte |= PTE_DIRTY;
    pte |= PTE_WRITE;
  }
  pt.set(tableId, slot, page, pte);
}

/**
 * removeDeviceExclusiveEntry - a CPU access (or GUP, or an IOMMU fault) met a device-exclusive
 * entry (remove_device_exclusive_entry): tell secondary MMUs (MMU_NOTIFY_EXCLUSIVE, owner null,
 * so the device sees it lost exclusivity) and restore the PTE.
 * Context: the fault path's nonPresent hook (zone-device.ts).
 * Return: 0 (the access retries; also when the page is locked by someone: it retries until the
 * lock goes, or the access gives up with EFAULT).
 */
export function removeDeviceExclusiveEntry(
  vma: VmAreaStruct,
  address: number,
  flags: number,
  tableId: number,
  slot: number,
): number {
  void flags;
  const mm = vma.mm;
  const core = mm.core;
  const f = core.frames;
  const pt = mm.pgtable;
  const page = pt.table(tableId)[slot];
  const folio = folioOf(core, page);
  // folio_try_get: a freed folio means the entry is already gone.
  if (f.refcount[folio] <= 0) return 0;
  getPage(core, folio);
  if (!folioTrylock(core, folio)) {
    putPage(core, folio);
    return 0;
  }
  const va = address - (address % PAGE_SIZE);
  const range = mmuNotifierInvalidateRangeStart(mm, va, va + PAGE_SIZE, MMU_NOTIFY_EXCLUSIVE, null);
  const t = pt.walk(va, false);
  if (t && pt.level === LEVEL_PTE && t[pt.slot + 1] & PTE_DEVICE_EXCLUSIVE && t[pt.slot] === page)
    restoreExclusivePte(vma, pt.tableId, pt.slot);
  mmuNotifierInvalidateRangeEnd(range);
  folioUnlock(core, folio);
  putPage(core, folio);
  core.charge(core.costs.minorFaultZeroPage);
  return 0;
}

/**
 * zapDeviceExclusiveEntry - munmap/exit removed a device-exclusive entry: like a present
 * mapping of the page, its RSS, mapcount and reference go (zap_nonpresent_ptes).
 * Return: true when @hi was a device-exclusive entry.
 */
export function zapDeviceExclusiveEntry(core: MmCore, mm: MmStruct, lo: number, hi: number): boolean {
  if (!(hi & PTE_DEVICE_EXCLUSIVE)) return false;
  const f = core.frames;
  const folio = folioOf(core, lo);
  const mapcount = --f.mapcount[folio];
  if (f.flags[folio] & PG_anon) {
    mm.rssAnon--;
    if (mapcount === 0) core.vmstat.dec(VM.nr_anon_pages, f.folioNrPages(folio));
  } else if (f.flags[folio] & PG_shmem) mm.rssShmem--;
  else mm.rssFile--;
  const mlocked = (f.flags[folio] & PG_mlocked) !== 0;
  if (mlocked && mapcount === 0) munlockFolio(core, folio);
  putPage(core, folio);
  if (mlocked && mapcount > 0 && f.refcount[folio] > 0) recheckMlock(core, folio);
  return true;
}

/**
 * copyPresentForFork - fork's copy of the present PTE at (@tableId, @slot) of @src into @child
 * at @va, as copy_present_pte does for an ordinary page: one more mapping and reference; in a
 * COW mapping the page stops being exclusive and both entries become read-only. Used after a
 * non-present entry was turned back into a present one (device-exclusive, a cancelled device
 * migration).
 * Return: the child's hi word.
 */
export function copyPresentForFork(
  src: MmStruct,
  child: MmStruct,
  va: number,
  tableId: number,
  slot: number,
  cow: boolean,
): number {
  const core = src.core;
  const f = core.frames;
  const t = src.pgtable.table(tableId);
  const lo = t[slot];
  let hi = t[slot + 1];
  if (hi & PTE_SPECIAL) return hi;
  const folio = folioOf(core, lo);
  getPage(core, folio);
  f.mapcount[folio]++;
  const anon = (f.flags[folio] & PG_anon) !== 0;
  if (cow) {
    if (anon && f.flags[folio] & PG_anon_exclusive) {
      f.flags[folio] &= ~PG_anon_exclusive;
      // A PTE-mapped large folio: its other writable entries in the parent go read-only too.
      if (f.getOrder(folio) > 0 && !(f.flags[folio] & PG_hugetlb)) wrprotectOtherEntries(src, folio, va);
    }
    hi &= ~PTE_WRITE;
    t[slot + 1] = hi;
  }
  if (anon) child.rssAnon++;
  else if (f.flags[folio] & PG_shmem) child.rssShmem++;
  else child.rssFile++;
  return hi;
}

function wrprotectOtherEntries(mm: MmStruct, folio: number, except: number): void {
  rmapWalk(mm.core, folio, (vma, va) => {
    if (vma.mm !== mm || va === except) return true;
    const pt = mm.pgtable;
    const t = pt.walk(va, false);
    if (!t || !(t[pt.slot + 1] & PTE_PRESENT) || !(t[pt.slot + 1] & PTE_WRITE)) return true;
    const range = mmuNotifierInvalidateRangeStart(mm, va, va + PAGE_SIZE, MMU_NOTIFY_PROTECTION_PAGE);
    t[pt.slot + 1] &= ~PTE_WRITE;
    mmuNotifierInvalidateRangeEnd(range);
    return true;
  });
}

/**
 * copyDeviceExclusiveEntry - fork met a device-exclusive entry (copy_nonpresent_pte): the
 * parent's PTE is restored first (try_restore_exclusive_pte; fork's own
 * MMU_NOTIFY_PROTECTION_PAGE invalidation already told the device), then copied like any
 * present PTE.
 * Return: the child's hi word. (The kernel restores under the folio lock and retries the copy
 * while someone holds it; svasim's single-threaded fork restores at once.)
 */
export function copyDeviceExclusiveEntry(
  src: MmStruct,
  child: MmStruct,
  va: number,
  tableId: number,
  slot: number,
): number {
  const vma = src.vmaLookup(va);
  if (!vma) return 0;
  restoreExclusivePte(vma, tableId, slot);
  return copyPresentForFork(src, child, va, tableId, slot, !(vma.flags & VM_SHARED));
}
