/**
 * Swap entries in page tables: faulting them back in (do_swap_page, mm/memory.c), dropping them
 * on munmap and exit (zap_nonpresent_ptes) and sharing them with a fork child
 * (copy_nonpresent_pte).
 *
 * svasim has no swap cache: a swap-in reads the slot into a fresh page that only the faulting
 * entry maps, and drops that entry's slot reference at once. Each process sharing a slot after
 * fork therefore reads its own copy, where the kernel would find the first reader's page in the
 * swap cache and map it read-only in the others.
 */
import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, VM_FAULT_OOM, VM_FAULT_SIGBUS } from './fault-flags';
import { GFP_HIGHUSER_MOVABLE } from './gfp';
import type { MmStruct } from './mm-struct';
import { PG_anon_exclusive } from './page-flags';
import { putPage } from './page-ref';
import { LEVEL_PTE } from './page-table';
import { PTE_DIRTY, PTE_PRESENT, PTE_SWAP, PTE_SWP_EXCLUSIVE, PTE_USER, PTE_WRITE, PTE_YOUNG } from './pte';
import type { ReclaimState } from './reclaim-state';
import { folioAddNewAnonRmap, mlockFolio } from './rmap';
import type { VmAreaStruct } from './vma';
import { VM_LOCKED, VM_WRITE } from './vm-flags';

/**
 * doSwapPage - resolve a fault on a swap entry (do_swap_page): allocate a page, read the slot's
 * bytes into it, map it and drop the entry's slot reference. A read from the device is a major
 * fault (pgmajfault, pswpin; its latency is charged to the faulting task) that also reads the
 * swap entries around it (readahead, swap_ra); a slot read ahead earlier needs no IO
 * (swap_ra_hit), nor does a zero-filled one (swpin_zero).
 * @state: the kernel's reclaim state.
 * @vma: the faulting VMA; @address: the faulting address; @flags: FAULT_FLAG_*.
 * @tableId, @ptSlot: where the swap entry is, as left by the fault path's walk.
 *
 * The page is mapped exclusive (writable if the VMA is) when the entry was PTE_SWP_EXCLUSIVE,
 * when it was the slot's last reference, or for a write or unshare fault (which would otherwise
 * break COW at once); else read-only and not exclusive, so a later write goes through do_wp_page.
 * Context: a user, GUP or IOPF fault on the mm.
 * Return: 0 when the page is mapped (or the entry changed meanwhile: the access retries),
 * VM_FAULT_OOM when no page can be allocated (nothing changed), VM_FAULT_SIGBUS for an entry
 * whose slot is not allocated.
 */
export function doSwapPage(
  state: ReclaimState,
  vma: VmAreaStruct,
  address: number,
  flags: number,
  tableId: number,
  ptSlot: number,
): number {
  const core = state.core;
  const si = state.swap;
  const mm = vma.mm;
  const pt = mm.pgtable;
  const va = address - (address % PAGE_SIZE);
  const entry = pt.table(tableId)[ptSlot];
  if (!si || si.swapCount(entry) === 0) return VM_FAULT_SIGBUS;
  const pfn = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, mm.node);
  if (pfn < 0) return VM_FAULT_OOM;
  // The allocation may have run direct reclaim: look at the entry again (pte_same).
  const t = pt.walk(va, false);
  const hi = t && pt.level === LEVEL_PTE ? t[pt.slot + 1] : 0;
  if (!t || !(hi & PTE_SWAP) || t[pt.slot] !== entry) {
    putPage(core, pfn);
    return 0;
  }
  const bytes = si.readPage(entry);
  let ioNs = 0;
  let readIo = false;
  if (bytes) {
    core.data.writable(pfn).set(bytes);
    if (si.takeReadahead(entry)) core.vmstat.inc(state.vm.swapRaHit);
    else {
      readIo = true;
      core.vmstat.inc(VM.pswpin);
      ioNs = si.readTimeNs();
    }
  } else core.vmstat.inc(state.vm.swpinZero);
  const exclusive =
    (hi & PTE_SWP_EXCLUSIVE) !== 0 ||
    si.swapCount(entry) === 1 ||
    (flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) !== 0;
  folioAddNewAnonRmap(core, vma, pfn, va);
  if (!exclusive) core.frames.flags[pfn] &= ~PG_anon_exclusive;
  if (vma.flags & VM_LOCKED) mlockFolio(core, pfn);
  let pte = PTE_PRESENT | PTE_USER | PTE_YOUNG;
  if (exclusive && vma.flags & VM_WRITE) {
    pte |= PTE_WRITE;
    if (flags & FAULT_FLAG_WRITE) pte |= PTE_DIRTY;
  }
  pt.set(pt.tableId, pt.slot, pfn, pte);
  mm.rssAnon++;
  mm.swapEnts--;
  core.vmstat.inc(VM.nr_anon_pages);
  si.swapFree(entry);
  if (readIo) {
    // A read from the device: a major fault, and its neighbours come along (readahead).
    core.vmstat.inc(VM.pgmajfault);
    swapVmaReadahead(state, vma, va);
  }
  core.charge(state.tunables.swapinCpuNs + ioNs);
  return 0;
}

/**
 * swap_vma_readahead with a fixed window: the swap entries of the 2^pageCluster-page aligned
 * window around @va (inside @vma) are read in the same IO; each is marked so that its own fault
 * later needs no IO (a swap-cache hit). Counts pswpin and swap_ra per page read.
 */
function swapVmaReadahead(state: ReclaimState, vma: VmAreaStruct, va: number): void {
  const si = state.swap;
  if (!si) return;
  const core = state.core;
  const pt = vma.mm.pgtable;
  const span = PAGE_SIZE << state.tunables.pageCluster;
  const start = Math.max(vma.start, va - (va % span));
  const end = Math.min(vma.end, start + span);
  for (let a = start; a < end; a += PAGE_SIZE) {
    if (a === va) continue;
    const t = pt.walk(a, false);
    if (!t || pt.level !== LEVEL_PTE || !(t[pt.slot + 1] & PTE_SWAP)) continue;
    if (si.markReadahead(t[pt.slot])) {
      core.vmstat.inc(VM.pswpin);
      core.vmstat.inc(state.vm.swapRa);
    }
  }
}

/**
 * zapSwapEntry - a swap entry was removed from a page table (munmap, MADV_DONTNEED, exit): drop
 * its slot reference (free_swap_and_cache); the last one frees the slot and its bytes.
 * Context: zapPageRange, after the entry was cleared.
 * Return: true when @hi was a swap entry (handled), else false.
 */
export function zapSwapEntry(state: ReclaimState, mm: MmStruct, lo: number, hi: number): boolean {
  if (!(hi & PTE_SWAP)) return false;
  state.swap?.swapFree(lo);
  mm.swapEnts--;
  return true;
}

/**
 * copySwapEntry - fork met a swap entry in the parent (copy_nonpresent_pte): the child gets the
 * same entry and the slot one more reference (swap_duplicate); an exclusive entry stops being
 * exclusive in both, since two mms now share the page ("Mark the swap entry as shared").
 * Context: copyPageRange.
 * Return: the child's entry hi word, 0 to leave the child's entry empty (a bad entry), or -1 when
 * @hi is not a swap entry.
 */
export function copySwapEntry(
  state: ReclaimState,
  src: MmStruct,
  dst: MmStruct,
  va: number,
  lo: number,
  hi: number,
): number {
  if (!(hi & PTE_SWAP)) return -1;
  if (!state.swap || state.swap.swapDuplicate(lo) < 0) return 0;
  const shared = hi & ~PTE_SWP_EXCLUSIVE;
  if (hi & PTE_SWP_EXCLUSIVE) {
    const pt = src.pgtable;
    if (pt.walk(va, false)) pt.set(pt.tableId, pt.slot, lo, shared);
  }
  dst.swapEnts++;
  return shared;
}
