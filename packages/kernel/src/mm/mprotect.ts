import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, TASK_SIZE } from '../uapi/mman';
import { populateVmaPageRange } from './access';
import { calcVmProtBits, isUserNumber, pageAlign } from './mmap';
import type { MmStruct } from './mm-struct';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_PROTECTION_VMA } from './notifier-hooks';
import { PTE_MIGRATION_WRITE, PTE_NUMA, PTE_PRESENT, PTE_PROTNONE, PTE_WRITE } from './pte';
import { isolateRange } from './vma-ops';
import type { VmAreaStruct } from './vma';
import {
  VM_ACCESS_FLAGS,
  VM_ACCOUNT,
  VM_EXEC,
  VM_HUGETLB,
  VM_LOCKED,
  VM_NORESERVE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './vm-flags';
import { vmEnoughMemory } from './overcommit';

const PROT_GROWSDOWN = 0x01000000;
const PROT_GROWSUP = 0x02000000;
const PROT_SEM = 0x8;

/**
 * changeProtection - make the entries of [start, end) agree with `vmFlags` (change_protection):
 * write permission is removed where the VMA lost it (COW faults restore it where allowed), and
 * entries become PROT_NONE when the VMA is inaccessible. Secondary MMUs are told first.
 */
export function changeProtection(mm: MmStruct, start: number, end: number, vmFlags: number): void {
  const pt = mm.pgtable;
  const none = !(vmFlags & VM_ACCESS_FLAGS);
  const range = mmuNotifierInvalidateRangeStart(mm, start, end, MMU_NOTIFY_PROTECTION_VMA);
  pt.forEachEntry(start, end, (_va, tableId, slot) => {
    const t = pt.table(tableId);
    let hi = t[slot + 1];
    if (!(hi & PTE_PRESENT)) {
      // Writable migration and device-private entries become readable (change_pte_range).
      if (hi & PTE_MIGRATION_WRITE && !(vmFlags & VM_WRITE)) t[slot + 1] = hi & ~PTE_MIGRATION_WRITE;
      return;
    }
    if (!(vmFlags & VM_WRITE)) hi &= ~PTE_WRITE;
    if (none) hi |= PTE_PROTNONE;
    else if (!(hi & PTE_NUMA)) hi &= ~PTE_PROTNONE;
    if (vmFlags & VM_SHARED && vmFlags & VM_WRITE && !none) hi |= PTE_WRITE;
    t[slot + 1] = hi;
  });
  mmuNotifierInvalidateRangeEnd(range);
}

/** mprotectFixup - give one VMA its new flags and bring its entries in line (mprotect_fixup). */
function mprotectFixup(vma: VmAreaStruct, newFlags: number): void {
  const oldFlags = vma.flags;
  if (newFlags === oldFlags) return;
  vma.flags = newFlags;
  changeProtection(vma.mm, vma.start, vma.end, newFlags);
  // A locked private mapping that became writable is populated for write (mprotect_fixup),
  // so its pages stay resident and COW does not happen later.
  if (newFlags & VM_LOCKED && newFlags & VM_WRITE && !(oldFlags & VM_WRITE) && !(newFlags & VM_SHARED)) {
    populateVmaPageRange(vma.mm, vma.start, vma.end);
  }
}

/**
 * doMprotect - change the protection of [start, start + len) (do_mprotect_pkey).
 * Returns 0 (also for a zero length, whatever `prot` holds: the kernel validates the bits after
 * that check), or -EINVAL (unknown prot bits, unaligned start, PROT_GROWSDOWN/PROT_GROWSUP: no
 * VMA here grows), -ENOMEM (wrap-around, a part of the range not mapped, or a split beyond
 * vm.max_map_count), -EACCES (the VMA may not get this protection: VM_MAY* bits, e.g. a shared
 * mapping of a read-only file asked for PROT_WRITE).
 */
export function doMprotect(mm: MmStruct, start: number, len: number, prot: number): number {
  if (!isUserNumber(start) || !isUserNumber(len) || !Number.isInteger(prot) || prot < 0) return -ERRNO.EINVAL;
  const grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
  if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return -ERRNO.EINVAL;
  if (start % PAGE_SIZE) return -ERRNO.EINVAL;
  if (len === 0) return 0;
  len = pageAlign(len);
  const end = start + len;
  if (end <= start || end > TASK_SIZE + PAGE_SIZE) return -ERRNO.ENOMEM;
  // arch_validate_prot runs after the length checks (and without the grows bits).
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | grows)) return -ERRNO.EINVAL;
  // Like the kernel's loop: VMA by VMA from `start`; a hole (ENOMEM) or a VMA that may not get
  // this protection (EACCES) stops it there, and the VMAs before it keep their new protection.
  const want = calcVmProtBits(prot);
  let vma = mm.findVma(start);
  if (!vma || (grows & PROT_GROWSDOWN ? vma.start >= end : vma.start > start)) return -ERRNO.ENOMEM;
  // PROT_GROWSDOWN needs a VM_GROWSDOWN VMA, PROT_GROWSUP a VM_GROWSUP one: svasim makes neither.
  if (grows) return -ERRNO.EINVAL;
  let cursor = start;
  while (vma && vma.start < end) {
    if (vma.start > cursor) return -ERRNO.ENOMEM;
    const newFlags = (vma.flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | want;
    if (newFlags & ~(vma.flags >>> 4) & (VM_READ | VM_WRITE | VM_EXEC)) return -ERRNO.EACCES;
    const stop = Math.min(end, vma.end);
    const parts = isolateRange(mm, cursor, stop);
    if (typeof parts === 'number') return parts;
    for (const part of parts) {
      let flags = (part.flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | want;
      // A private mapping becoming writable for the first time is charged to Committed_AS.
      if (
        flags & VM_WRITE &&
        !(part.flags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE))
      ) {
        if (vmEnoughMemory(mm.core, (part.end - part.start) / PAGE_SIZE) < 0) return -ERRNO.ENOMEM;
        flags |= VM_ACCOUNT;
      }
      mprotectFixup(part, flags);
    }
    cursor = stop;
    vma = mm.findVma(cursor);
  }
  if (cursor < end) return -ERRNO.ENOMEM;
  return 0;
}
