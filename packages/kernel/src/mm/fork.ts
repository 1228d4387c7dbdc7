import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { GFP_HIGHUSER_MOVABLE } from './gfp';
import { hugepageSizeName } from './mm-core';
import { MMF_HAS_PINNED, MmStruct } from './mm-struct';
import type { MmapFile } from './mmap-file';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_PROTECTION_PAGE } from './notifier-hooks';
import { PG_anon, PG_anon_exclusive, PG_hugetlb, PG_shmem, PG_tail } from './page-flags';
import { folioMaybeDmaPinned, getPage } from './page-ref';
import { LEVEL_PMD, LEVEL_PTE, LEVEL_SIZE } from './page-table';
import { splitHugePmd } from './huge-memory';
import { PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_WRITE } from './pte';
import { folioAddNewAnonRmap, rmapWalk } from './rmap';
import { VmAreaStruct } from './vma';
import { vmEnoughMemory } from './overcommit';
import {
  VM_ACCOUNT,
  VM_DONTCOPY,
  VM_LOCKED_MASK,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_SHARED,
  VM_WIPEONFORK,
  VM_WRITE,
} from './vm-flags';
import { exitMmap } from './exit-mmap';
import { zapHooks } from './zap';
import { completeAllMigrations } from './migrate';

/** How fork treats pinned anonymous pages. */
export type ForkCowMode = 'early' | 'legacy';

/**
 * dupMmap - the child's copy of `parent` for fork (dup_mmap + copy_page_range).
 * Private anonymous pages are shared copy-on-write (both entries write-protected, no longer
 * exclusive); VM_DONTCOPY VMAs are left out; VM_WIPEONFORK VMAs are empty in the child; locks
 * (VM_LOCKED, mlockall's MCL_FUTURE) are not inherited. With `forkCow` 'early' (Linux 5.9+), a
 * page that may be DMA-pinned in an mm that ever pinned (MMF_HAS_PINNED) is copied for the child
 * at once, so the parent keeps the pinned page; 'legacy' shares it like any other page.
 * Returns the child's mm, or -ENOMEM when an early copy cannot be allocated (nothing leaks).
 * Released by exitMmap.
 */
export function dupMmap(parent: MmStruct, forkCow: ForkCowMode): MmStruct | number {
  const core = parent.core;
  // Copies in their migration window finish first, so no migration entry is duplicated.
  completeAllMigrations(core);
  const child = new MmStruct(core);
  child.node = parent.node;
  child.defFlags = parent.defFlags & ~VM_LOCKED_MASK;
  parent.writeProtectSeq++; // odd while copying: GUP-fast backs out
  let failed = false;
  const unshared = new Set<number>();
  for (const src of parent.vmas) {
    if (src.flags & VM_DONTCOPY) continue;
    // The child's copy of committed memory is committed too; over the limit, fork fails.
    if (src.flags & VM_ACCOUNT && vmEnoughMemory(core, (src.end - src.start) / PAGE_SIZE) < 0) {
      failed = true;
      break;
    }
    const dst = new VmAreaStruct(child, src.start, src.end, src.flags & ~VM_LOCKED_MASK, src.pgoff);
    dst.file = src.file;
    dst.shmem = src.shmem;
    dst.vmOps = src.vmOps;
    dst.privateData = src.privateData;
    dst.hugeSize = src.hugeSize;
    // hugetlb reservations stay with the parent; the child's private huge pages come from the free pool.
    dst.hugeResv = null;
    if (src.flags & VM_WIPEONFORK) dst.anonVma = 0;
    else core.anonVmas.link(dst, src.anonVma);
    if (dst.shmem) {
      const obj = core.shmem.get(dst.shmem);
      if (obj) {
        core.shmem.hold(obj);
        obj.vmas.add(dst);
      }
    }
    if (dst.file) {
      (dst.file as MmapFile).get();
      (dst.file as MmapFile).mapping?.vmas.add(dst);
    }
    child.insertVma(dst);
    child.totalVm += (dst.end - dst.start) / PAGE_SIZE;
    dst.vmOps?.open?.(dst);
    if (src.flags & VM_WIPEONFORK) continue;
    const needsCopy = src.flags & (VM_PFNMAP | VM_MIXEDMAP) || src.anonVma !== 0;
    if (!needsCopy) continue; // shared memory is faulted in again by the child
    if (copyPageRange(parent, child, src, dst, forkCow, unshared) < 0) {
      failed = true;
      break;
    }
  }
  for (const head of unshared) wrprotectParentEntries(parent, head);
  parent.writeProtectSeq++;
  if (failed) {
    exitMmap(child);
    return -ERRNO.ENOMEM;
  }
  return child;
}

function copyPageRange(
  parent: MmStruct,
  child: MmStruct,
  src: VmAreaStruct,
  dst: VmAreaStruct,
  forkCow: ForkCowMode,
  unshared: Set<number>,
): number {
  const core = parent.core;
  const f = core.frames;
  const spt = parent.pgtable;
  const dpt = child.pgtable;
  const cow = !(src.flags & VM_SHARED);
  const range = cow
    ? mmuNotifierInvalidateRangeStart(parent, src.start, src.end, MMU_NOTIFY_PROTECTION_PAGE)
    : null;
  const hooks = zapHooks(core);
  // A pinned THP is not shared with the child: split its PMD so the pages are copied one by one
  // below (copy_huge_pmd falls back to PTEs for folio_needs_cow_for_dma).
  if (cow && forkCow === 'early' && parent.flags & MMF_HAS_PINNED) {
    const pinnedPmds: number[] = [];
    spt.forEachEntry(src.start, src.end, (va, tableId, slot, level) => {
      const t = spt.table(tableId);
      if (level === LEVEL_PMD && t[slot + 1] & PTE_PRESENT && !(f.flags[t[slot]] & PG_hugetlb))
        if (folioMaybeDmaPinned(core, t[slot])) pinnedPmds.push(va);
    });
    for (const va of pinnedPmds) splitHugePmd(src, va);
  }
  let err = 0;
  let entries = 0;
  spt.forEachEntry(src.start, src.end, (va, tableId, slot, level) => {
    if (err) return;
    entries++;
    const t = spt.table(tableId);
    const lo = t[slot];
    let hi = t[slot + 1];
    if (!(hi & PTE_PRESENT)) {
      const childHi = hooks.copyNonPresent?.(parent, child, va, lo, hi, level) ?? -1;
      if (childHi > 0) install(dpt, va, level, lo, childHi);
      return;
    }
    if (hi & PTE_SPECIAL) {
      install(dpt, va, level, lo, hi);
      return;
    }
    const head = f.flags[lo] & PG_tail ? f.mapping[lo] - 1 : lo;
    const anon = (f.flags[head] & PG_anon) !== 0;
    const hugetlb = (f.flags[head] & PG_hugetlb) !== 0;
    const pages = hugetlb ? 0 : level === LEVEL_PTE ? 1 : 1 << f.getOrder(head);
    if (
      cow &&
      anon &&
      forkCow === 'early' &&
      parent.flags & MMF_HAS_PINNED &&
      folioMaybeDmaPinned(core, head)
    ) {
      // copy_present_page: the child gets its own copy now; the parent keeps the pinned page.
      const copy = copyForChild(core, dst, lo, va, level);
      if (copy < 0) {
        err = copy;
        return;
      }
      const w = dst.flags & VM_WRITE ? PTE_WRITE | PTE_DIRTY : 0;
      install(dpt, va, level, copy, (hi & ~(PTE_WRITE | PTE_DIRTY)) | w);
      if (level === LEVEL_PTE) {
        child.rssAnon++;
        core.vmstat.inc(VM.nr_anon_pages);
      }
      return;
    }
    getPage(core, head);
    f.mapcount[head]++;
    if (cow) {
      // Exclusivity is tracked per folio: a PTE-mapped THP shared only in part must have its
      // other entries in the parent write-protected too (done after the copy).
      if (anon && f.flags[head] & PG_anon_exclusive && level === LEVEL_PTE && f.getOrder(head) > 0)
        unshared.add(head);
      if (anon) f.flags[head] &= ~PG_anon_exclusive;
      hi &= ~PTE_WRITE;
      t[slot + 1] = hi;
    }
    install(dpt, va, level, lo, hi);
    if (anon) child.rssAnon += pages;
    else if (f.flags[head] & PG_shmem) child.rssShmem += pages;
    else child.rssFile += pages;
  });
  mmuNotifierInvalidateRangeEnd(range);
  core.charge(entries * core.costs.pteCopy);
  return err;
}

function install(pt: MmStruct['pgtable'], va: number, level: number, lo: number, hi: number): void {
  pt.walk(va, true, level);
  pt.set(pt.tableId, pt.slot, lo, hi);
}

/** A private copy of a pinned anonymous folio for the child (small page or hugetlb page). */
function copyForChild(
  core: MmStruct['core'],
  dst: VmAreaStruct,
  head: number,
  va: number,
  level: number,
): number {
  const nr = level === LEVEL_PTE ? 1 : LEVEL_SIZE[level] / PAGE_SIZE;
  const copy =
    level === LEVEL_PTE
      ? core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, dst.mm.node)
      : core.hugetlb.allocHugetlbFolio(hugepageSizeName(LEVEL_SIZE[level]), dst.mm.node);
  if (copy < 0) return -ERRNO.ENOMEM;
  for (let i = 0; i < nr; i++) core.data.copyPage(copy + i, head + i);
  folioAddNewAnonRmap(core, dst, copy, va);
  core.charge(nr * (PAGE_SIZE / core.costs.memcpyBytesPerNs));
  return copy;
}

/** Write-protect the parent's entries of a folio that is no longer exclusive. */
function wrprotectParentEntries(parent: MmStruct, head: number): void {
  rmapWalk(parent.core, head, (vma, va) => {
    if (vma.mm !== parent) return true;
    const pt = parent.pgtable;
    const t = pt.walk(va, false);
    if (!t || !(t[pt.slot + 1] & PTE_WRITE)) return true;
    const range = mmuNotifierInvalidateRangeStart(parent, va, va + PAGE_SIZE, MMU_NOTIFY_PROTECTION_PAGE);
    t[pt.slot + 1] &= ~PTE_WRITE;
    mmuNotifierInvalidateRangeEnd(range);
    return true;
  });
}
