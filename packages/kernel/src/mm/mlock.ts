import { ERRNO } from '../uapi/errno';
import { MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, PAGE_SIZE } from '../uapi/mman';
import { populateVmaPageRange } from './access';
import { callerCanDoMlock, type MmCaller } from './mm-caller';
import { isUserNumber, pageAlign } from './mmap';
import type { MmStruct } from './mm-struct';
import { PTE_DEVICE_EXCLUSIVE, PTE_PRESENT, PTE_SPECIAL } from './pte';
import { mlockFolio, recheckMlock } from './rmap';
import { folioHead } from './page-ref';
import { PG_hugetlb } from './page-flags';
import type { VmAreaStruct } from './vma';
import { VM_HUGETLB, VM_LOCKED, VM_LOCKED_MASK, VM_LOCKONFAULT, VM_SPECIAL } from './vm-flags';
import { isolateRange } from './vma-ops';

/**
 * mlockFixup - give one VMA new lock flags, keeping locked_vm and the pages' mlocked state right
 * (mlock_fixup). Special and hugetlb VMAs never become VM_LOCKED and are not counted.
 */
function mlockFixup(vma: VmAreaStruct, newFlags: number): void {
  const mm = vma.mm;
  const core = mm.core;
  const oldFlags = vma.flags;
  if (newFlags === oldFlags || vma.flags & (VM_SPECIAL | VM_HUGETLB)) return;
  const pages = (vma.end - vma.start) / PAGE_SIZE;
  if (newFlags & VM_LOCKED && !(oldFlags & VM_LOCKED)) mm.lockedVm += pages;
  else if (!(newFlags & VM_LOCKED) && oldFlags & VM_LOCKED) mm.lockedVm -= pages;
  vma.flags = newFlags;
  const pt = mm.pgtable;
  const lock = (newFlags & VM_LOCKED) !== 0;
  const f = core.frames;
  pt.forEachEntry(vma.start, vma.end, (va, tableId, slot) => {
    const t = pt.table(tableId);
    const hi = t[slot + 1];
    // A device-exclusive entry still maps its page (mm/device-exclusive.ts): it is locked too.
    if (!(hi & (PTE_PRESENT | PTE_DEVICE_EXCLUSIVE)) || hi & PTE_SPECIAL) return;
    const head = folioHead(core, t[slot]);
    if (lock) {
      // allow_mlock_munlock: a large folio only partly inside the locked VMA is not mlocked.
      const nr = f.folioNrPages(head);
      if (nr > 1 && !(f.flags[head] & PG_hugetlb)) {
        const first = va - (t[slot] - head) * PAGE_SIZE;
        if (first < vma.start || first + nr * PAGE_SIZE > vma.end) return;
      }
      mlockFolio(core, head);
    } else recheckMlock(core, head);
  });
}

/** Validate and page-align a range (mlock rounds the start down and the length up). */
function lockRange(start: number, len: number): { start: number; end: number } | number {
  if (!isUserNumber(start) || !isUserNumber(len)) return -ERRNO.EINVAL;
  len = pageAlign(len + (start % PAGE_SIZE));
  start -= start % PAGE_SIZE;
  const end = start + len;
  // Only a wrap-around is EINVAL; a range past the last VMA is a hole (ENOMEM), as in the kernel.
  if (end < start) return -ERRNO.EINVAL;
  return { start, end };
}

/**
 * applyVmaLockFlags - set the lock bits of every VMA in [start, end) from `start` on
 * (apply_vma_lock_flags). The first hole stops it with -ENOMEM; VMAs before the hole keep the
 * change, as in the kernel.
 */
function applyVmaLockFlags(mm: MmStruct, start: number, end: number, bits: number): number {
  let vma = mm.findVma(start);
  if (!vma || vma.start > start) return -ERRNO.ENOMEM;
  let cursor = start;
  while (vma && vma.start < end) {
    if (vma.start > cursor) return -ERRNO.ENOMEM;
    const stop = Math.min(end, vma.end);
    const parts = isolateRange(mm, cursor, stop);
    if (typeof parts === 'number') return parts;
    for (const part of parts) mlockFixup(part, (part.flags & ~VM_LOCKED_MASK) | bits);
    cursor = stop;
    vma = mm.findVma(cursor);
  }
  return cursor < end ? -ERRNO.ENOMEM : 0;
}

/** Pages in [start, end) already in VM_LOCKED VMAs (count_mm_mlocked_page_nr). */
function countMlockedPages(mm: MmStruct, start: number, end: number): number {
  let n = 0;
  for (const vma of mm.vmas) {
    if (vma.end <= start || vma.start >= end || !(vma.flags & VM_LOCKED)) continue;
    n += (Math.min(end, vma.end) - Math.max(start, vma.start)) / PAGE_SIZE;
  }
  return n;
}

/**
 * doMlock - mlock()/mlock2(): lock [start, start + len) and fault it in (unless `onFault`).
 * Returns 0, or -EPERM (!can_do_mlock), -ENOMEM (over RLIMIT_MEMLOCK without CAP_IPC_LOCK, or
 * part of the range unmapped: VMAs before the hole stay locked, unpopulated), -EINVAL (wrap-around), -EAGAIN (memory could not be faulted in).
 * Released by doMunlock, munmap or exit.
 */
export function doMlock(mm: MmStruct, caller: MmCaller, start: number, len: number, onFault = false): number {
  if (!callerCanDoMlock(caller)) return -ERRNO.EPERM;
  const r = lockRange(start, len);
  if (typeof r === 'number') return r;
  if (r.end === r.start) return 0;
  const limit = Math.floor(caller.memlockLimit / PAGE_SIZE);
  let locked = (r.end - r.start) / PAGE_SIZE + mm.lockedVm;
  if (!caller.ipcLock && locked > limit) {
    locked -= countMlockedPages(mm, r.start, r.end);
    if (locked > limit) return -ERRNO.ENOMEM;
  }
  const applied = applyVmaLockFlags(mm, r.start, r.end, VM_LOCKED | (onFault ? VM_LOCKONFAULT : 0));
  if (applied < 0) return applied;
  if (onFault) return 0;
  const err = populateVmaPageRange(mm, r.start, r.end);
  // __mlock_posix_error_return: EFAULT becomes ENOMEM, ENOMEM becomes EAGAIN.
  if (err === -ERRNO.EFAULT) return -ERRNO.ENOMEM;
  if (err === -ERRNO.ENOMEM) return -ERRNO.EAGAIN;
  return 0;
}

/**
 * doMunlock - munlock(): unlock [start, start + len). Returns 0, or -EINVAL (wrap-around) or
 * -ENOMEM (part of the range unmapped). Needs no privilege.
 */
export function doMunlock(mm: MmStruct, start: number, len: number): number {
  const r = lockRange(start, len);
  if (typeof r === 'number') return r;
  if (r.end === r.start) return 0;
  return applyVmaLockFlags(mm, r.start, r.end, 0);
}

/**
 * doMlockall - mlockall(flags). Returns 0, or -EINVAL (no flags, unknown bits, or MCL_ONFAULT
 * alone), -EPERM (!can_do_mlock), -ENOMEM (MCL_CURRENT with total_vm over RLIMIT_MEMLOCK and no
 * CAP_IPC_LOCK). MCL_FUTURE makes later mappings locked (mm.defFlags). Released by munlockall.
 */
export function doMlockall(mm: MmStruct, caller: MmCaller, flags: number): number {
  if (
    !Number.isInteger(flags) ||
    !flags ||
    flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) ||
    flags === MCL_ONFAULT
  )
    return -ERRNO.EINVAL;
  if (!callerCanDoMlock(caller)) return -ERRNO.EPERM;
  const limit = Math.floor(caller.memlockLimit / PAGE_SIZE);
  if (flags & MCL_CURRENT && !caller.ipcLock && mm.totalVm > limit) return -ERRNO.ENOMEM;
  const lockBits = VM_LOCKED | (flags & MCL_ONFAULT ? VM_LOCKONFAULT : 0);
  mm.defFlags &= ~VM_LOCKED_MASK;
  if (flags & MCL_FUTURE) mm.defFlags |= lockBits;
  if (flags & MCL_CURRENT) {
    for (const vma of [...mm.vmas]) mlockFixup(vma, (vma.flags & ~VM_LOCKED_MASK) | lockBits);
    if (!(flags & MCL_ONFAULT)) for (const vma of [...mm.vmas]) populateVmaPageRange(mm, vma.start, vma.end);
  }
  return 0;
}

/** doMunlockall - munlockall(): unlock everything and stop locking future mappings. Returns 0. */
export function doMunlockall(mm: MmStruct): number {
  mm.defFlags &= ~VM_LOCKED_MASK;
  for (const vma of [...mm.vmas]) mlockFixup(vma, vma.flags & ~VM_LOCKED_MASK);
  return 0;
}

/**
 * accountLockedVm - charge (@inc) or uncharge @pages pages of memory a driver pins to
 * mm->locked_vm (__account_locked_vm of mm/util.c, what VFIO type1's vfio_lock_acct calls): a
 * charge that would take locked_vm over RLIMIT_MEMLOCK fails unless @caller has CAP_IPC_LOCK
 * (@caller.ipcLock, captured by the driver when it took the pages). The charge shows in VmLck and
 * counts against later mlock() calls, but belongs to no VMA: the driver uncharges it itself.
 * Returns 0, -ENOMEM (over the limit; nothing charged) or -EINVAL (@pages not a non-negative
 * integer, or an uncharge of more than was charged: the kernel's WARN_ON_ONCE, here refused).
 * Context: process context (the caller's mm lock).
 */
export function accountLockedVm(mm: MmStruct, pages: number, inc: boolean, caller: MmCaller): number {
  if (!Number.isSafeInteger(pages) || pages < 0) return -ERRNO.EINVAL;
  if (!inc) {
    if (pages > mm.accountedLockedVm) return -ERRNO.EINVAL;
    mm.lockedVm -= pages;
    mm.accountedLockedVm -= pages;
    return 0;
  }
  const limit = Math.floor(caller.memlockLimit / PAGE_SIZE);
  if (!caller.ipcLock && mm.lockedVm + pages > limit) return -ERRNO.ENOMEM;
  mm.lockedVm += pages;
  mm.accountedLockedVm += pages;
  return 0;
}
