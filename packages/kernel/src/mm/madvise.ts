import { ERRNO } from '../uapi/errno';
import {
  MADV_COLD,
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTDUMP,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_KEEPONFORK,
  MADV_NOHUGEPAGE,
  MADV_NORMAL,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MADV_WIPEONFORK,
  PAGE_SIZE,
} from '../uapi/mman';
import { populateVmaPageRange } from './access';
import { isUserNumber, pageAlign } from './mmap';
import type { MmStruct } from './mm-struct';
import { MMU_NOTIFY_CLEAR } from './notifier-hooks';
import type { VmAreaStruct } from './vma';
import {
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_NOHUGEPAGE,
  VM_PFNMAP,
  VM_SHARED,
  VM_SPECIAL,
  VM_WIPEONFORK,
  VM_WRITE,
} from './vm-flags';
import { isolateRange } from './vma-ops';
import { zapPageRange } from './zap';
import { madvisePageout } from './vmscan';

/** Advice values madvise accepts (madvise_behavior_valid, the subset svasim models). */
const VALID = new Set([
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_DONTFORK,
  MADV_DOFORK,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MADV_DONTDUMP,
  MADV_DODUMP,
  MADV_WIPEONFORK,
  MADV_KEEPONFORK,
  MADV_COLD,
  MADV_PAGEOUT,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
]);

/** What each flag-changing advice does to vm_flags, or an errno for this VMA (madvise_update_vma). */
function newVmFlags(vma: VmAreaStruct, advice: number): number {
  const f = vma.flags;
  switch (advice) {
    case MADV_DONTFORK:
      return f & VM_IO ? -ERRNO.EINVAL : f | VM_DONTCOPY;
    case MADV_DOFORK:
      return f & VM_IO ? -ERRNO.EINVAL : f & ~VM_DONTCOPY;
    case MADV_WIPEONFORK:
      // Only private anonymous memory can be wiped in the child.
      return vma.file || f & VM_SHARED || vma.shmem ? -ERRNO.EINVAL : f | VM_WIPEONFORK;
    case MADV_KEEPONFORK:
      return f & VM_WIPEONFORK ? f & ~VM_WIPEONFORK : f;
    case MADV_DONTDUMP:
      return f | VM_DONTDUMP;
    case MADV_DODUMP:
      return f & VM_SPECIAL ? -ERRNO.EINVAL : f & ~VM_DONTDUMP;
    case MADV_HUGEPAGE:
      return f & (VM_SPECIAL | VM_HUGETLB) ? f : (f & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
    case MADV_NOHUGEPAGE:
      return f & (VM_SPECIAL | VM_HUGETLB) ? f : (f & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
    default:
      return f;
  }
}

/**
 * doMadvise - give advice about [start, start + len) (do_madvise).
 * Supported: MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_HUGEPAGE,
 * MADV_NOHUGEPAGE, MADV_DONTNEED (and MADV_FREE, treated like it), MADV_POPULATE_READ/WRITE,
 * plus the hints that change nothing here (NORMAL, RANDOM, SEQUENTIAL, WILLNEED, COLD, PAGEOUT,
 * DONTDUMP, DODUMP).
 * Returns 0, or -EINVAL (unaligned start, wrap-around, unknown advice, an advice the VMA refuses:
 * DONTFORK/DOFORK on VM_IO, WIPEONFORK on shared memory, DONTNEED on locked, PFN-mapped or
 * hugetlb ranges), -ENOMEM (part of the range unmapped; mapped parts are still advised, as in
 * the kernel). The first VMA that refuses stops the walk; VMAs before it keep the advice., -EFAULT/-ENOMEM from POPULATE.
 */
export function doMadvise(mm: MmStruct, start: number, len: number, advice: number): number {
  if (!isUserNumber(start) || !isUserNumber(len) || !Number.isInteger(advice)) return -ERRNO.EINVAL;
  if (!VALID.has(advice)) return -ERRNO.EINVAL;
  if (start % PAGE_SIZE) return -ERRNO.EINVAL;
  len = pageAlign(len);
  const end = start + len;
  // Only a wrap-around is EINVAL (is_valid_madvise); a range past the last VMA is a hole: ENOMEM.
  if (end < start) return -ERRNO.EINVAL;
  if (end === start) return 0;

  // madvise_walk_vmas: VMA by VMA; holes are skipped and reported as ENOMEM at the end, the
  // first VMA that refuses the advice stops the walk (earlier VMAs keep it).
  let unmapped = false;
  let cursor = start;
  while (cursor < end) {
    const vma = mm.findVma(cursor);
    if (!vma || vma.start >= end) {
      unmapped = true;
      break;
    }
    if (vma.start > cursor) unmapped = true;
    const s = Math.max(cursor, vma.start);
    const e = Math.min(end, vma.end);
    const r = adviseVma(mm, vma, s, e, advice);
    if (r < 0) return r;
    cursor = e;
  }
  return unmapped ? -ERRNO.ENOMEM : 0;
}

function adviseVma(mm: MmStruct, vma: VmAreaStruct, start: number, end: number, advice: number): number {
  switch (advice) {
    case MADV_DONTNEED:
    case MADV_FREE:
      if (vma.flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return -ERRNO.EINVAL;
      // madvise_free_single_vma: lazy freeing is for private anonymous memory only.
      if (advice === MADV_FREE && !vma.isAnonymous()) return -ERRNO.EINVAL;
      // zap_page_range_single: secondary MMUs see MMU_NOTIFY_CLEAR (munmap's unmap_vmas: UNMAP).
      zapPageRange(vma, start, end, MMU_NOTIFY_CLEAR);
      return 0;
    case MADV_POPULATE_READ:
    case MADV_POPULATE_WRITE:
      if (vma.flags & (VM_IO | VM_PFNMAP)) return -ERRNO.EINVAL;
      if (advice === MADV_POPULATE_WRITE && !(vma.flags & VM_WRITE)) return -ERRNO.EINVAL;
      return populateVmaPageRange(mm, start, end);
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_DONTDUMP:
    case MADV_DODUMP: {
      const nf = newVmFlags(vma, advice);
      if (nf < 0) return nf;
      if (nf === vma.flags) return 0;
      const parts = isolateRange(mm, start, end);
      if (typeof parts === 'number') return parts;
      for (const part of parts) part.flags = newVmFlags(part, advice);
      return 0;
    }
    case MADV_PAGEOUT: {
      // Reclaim the range now (madvise_pageout); without swap anonymous pages stay.
      const r = madvisePageout(vma, start, end);
      return r < 0 ? r : 0;
    }
    default:
      return 0; // hints with no effect on the model
  }
}
