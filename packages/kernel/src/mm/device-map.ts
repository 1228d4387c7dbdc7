import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import type { AddressSpace } from './address-space';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_CLEAR } from './notifier-hooks';
import { getPage } from './page-ref';
import { PTE_DIRTY, PTE_PRESENT, PTE_SPECIAL, PTE_USER, PTE_WRITE, PTE_YOUNG } from './pte';
import type { VmAreaStruct } from './vma';
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_MIXEDMAP, VM_PFNMAP, VM_SHARED, VM_WRITE } from './vm-flags';
import { zapPageRange } from './zap';

function pteProt(vma: VmAreaStruct): number {
  return (
    PTE_PRESENT |
    PTE_USER |
    PTE_YOUNG |
    (vma.flags & VM_WRITE && vma.flags & VM_SHARED ? PTE_WRITE | PTE_DIRTY : 0)
  );
}

function rangeOk(vma: VmAreaStruct, addr: number, size: number): boolean {
  return (
    Number.isSafeInteger(addr) &&
    Number.isSafeInteger(size) &&
    addr % PAGE_SIZE === 0 &&
    size > 0 &&
    size % PAGE_SIZE === 0 &&
    addr >= vma.start &&
    addr + size <= vma.end
  );
}

/**
 * remapPfnRange - map device pfns [pfn, pfn + size / PAGE_SIZE) at `addr` of `vma`
 * (remap_pfn_range), as a driver's mmap does for MMIO. The VMA becomes VM_IO | VM_PFNMAP |
 * VM_DONTEXPAND | VM_DONTDUMP: GUP refuses it, fork copies its entries, nothing is refcounted.
 * Returns 0, or -EINVAL when the range is unaligned or outside the VMA.
 * Undone by munmap, exit or unmapMappingRange.
 */
export function remapPfnRange(vma: VmAreaStruct, addr: number, pfn: number, size: number): number {
  if (!rangeOk(vma, addr, size) || !Number.isSafeInteger(pfn) || pfn < 0) return -ERRNO.EINVAL;
  vma.flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  const pt = vma.mm.pgtable;
  const hi = pteProt(vma) | PTE_SPECIAL;
  for (let i = 0; i < size / PAGE_SIZE; i++) {
    pt.walk(addr + i * PAGE_SIZE, true);
    pt.set(pt.tableId, pt.slot, pfn + i, hi);
  }
  return 0;
}

/**
 * vmInsertPage - map one kernel-allocated RAM page at `addr` (vm_insert_page), as
 * dma_mmap_coherent does for a queue's shared ring memory. The mapping takes a page reference
 * (dropped at unmap) and counts in the process's RSS as file memory; the VMA becomes
 * VM_MIXEDMAP. Returns 0, -EINVAL (bad address) or -EBUSY (something is already mapped there).
 */
export function vmInsertPage(vma: VmAreaStruct, addr: number, pfn: number): number {
  if (!rangeOk(vma, addr, PAGE_SIZE)) return -ERRNO.EINVAL;
  const core = vma.mm.core;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= core.frames.count) return -ERRNO.EINVAL;
  const pt = vma.mm.pgtable;
  const t = pt.walk(addr, true)!;
  if (t[pt.slot + 1] !== 0) return -ERRNO.EBUSY;
  vma.flags |= VM_MIXEDMAP | VM_DONTEXPAND;
  getPage(core, pfn);
  core.frames.mapcount[pfn]++;
  vma.mm.rssFile++;
  pt.set(pt.tableId, pt.slot, pfn, pteProt(vma));
  return 0;
}

/**
 * unmapMappingRange - zap every user mapping of a file (unmap_mapping_range with the whole
 * range and even_cows = 1): the VMAs stay, their entries go, so the next CPU access faults and,
 * with no .fault handler, gets SIGBUS (EFAULT in svasim). Secondary MMUs are told (CLEAR).
 */
export function unmapMappingRange(mapping: AddressSpace): void {
  for (const vma of [...mapping.vmas]) {
    const range = mmuNotifierInvalidateRangeStart(vma.mm, vma.start, vma.end, MMU_NOTIFY_CLEAR);
    zapPageRange(vma, vma.start, vma.end, MMU_NOTIFY_CLEAR);
    mmuNotifierInvalidateRangeEnd(range);
  }
}
