import { ERRNO } from '../uapi/errno';
import type { MmapFile } from './mmap-file';
import type { MmStruct } from './mm-struct';
import { VmAreaStruct } from './vma';
import { VM_ACCOUNT, VM_HUGETLB, VM_LOCKED } from './vm-flags';
import { vmUnacctMemory } from './overcommit';
import { pagesIn, zapPageRange } from './zap';
import { PAGE_SIZE, PMD_SIZE } from '../uapi/mman';
import { splitHugePmd } from './huge-memory';

/**
 * splitVma - cut `vma` at `addr` (strictly inside it): `vma` keeps [start, addr) and a new VMA
 * takes [addr, end), sharing the object, reverse-map group and reservations (__split_vma).
 * Returns the new VMA, or -EINVAL for a hugetlb VMA cut off a huge-page boundary, or -ENOMEM
 * when the mm already has vm.max_map_count VMAs (split_vma); munmap, which checks the count
 * itself, passes `checkMapCount` false (it calls __split_vma directly).
 */
export function splitVma(vma: VmAreaStruct, addr: number, checkMapCount = true): VmAreaStruct | number {
  if (vma.flags & VM_HUGETLB && addr % vma.hugeSize !== 0) return -ERRNO.EINVAL;
  if (checkMapCount && vma.mm.vmas.length >= vma.mm.core.sysctl['vm.max_map_count']) return -ERRNO.ENOMEM;
  // A VMA boundary inside a THP's PMD splits the PMD (vma_adjust_trans_huge).
  if (!(vma.flags & VM_HUGETLB) && addr % PMD_SIZE !== 0) splitHugePmd(vma, addr);
  const mm = vma.mm;
  const core = mm.core;
  const tail = new VmAreaStruct(mm, addr, vma.end, vma.flags, vma.pgoff + (addr - vma.start) / PAGE_SIZE);
  tail.file = vma.file;
  tail.shmem = vma.shmem;
  tail.vmOps = vma.vmOps;
  tail.privateData = vma.privateData;
  tail.hugeSize = vma.hugeSize;
  tail.hugeResv = vma.hugeResv;
  core.anonVmas.link(tail, vma.anonVma);
  if (tail.shmem) {
    const obj = core.shmem.get(tail.shmem);
    if (obj) {
      core.shmem.hold(obj);
      obj.vmas.add(tail);
    }
  }
  if (tail.file) {
    (tail.file as MmapFile).get();
    (tail.file as MmapFile).mapping?.vmas.add(tail);
  }
  vma.end = addr;
  mm.insertVma(tail);
  mm.invalidateCache();
  tail.vmOps?.open?.(tail);
  return tail;
}

/**
 * isolateRange - split VMAs so that [start, end) is covered by whole VMAs, and return those VMAs
 * in address order. Returns -EINVAL when a hugetlb VMA would be cut off a huge-page boundary
 * (nothing is split in that case), or -ENOMEM when a split would exceed vm.max_map_count (a
 * split made before it stays, as with vma_modify). `forUnmap` skips the per-split count check.
 */
export function isolateRange(
  mm: MmStruct,
  start: number,
  end: number,
  forUnmap = false,
): VmAreaStruct[] | number {
  // Check first so a refused call changes nothing.
  for (const vma of mm.vmas) {
    if (vma.end <= start || vma.start >= end || !(vma.flags & VM_HUGETLB)) continue;
    if ((vma.start < start && start % vma.hugeSize) || (vma.end > end && end % vma.hugeSize))
      return -ERRNO.EINVAL;
  }
  const out: VmAreaStruct[] = [];
  let vma = mm.findVma(start);
  while (vma && vma.start < end) {
    if (vma.start < start) {
      const r = splitVma(vma, start, !forUnmap);
      if (typeof r === 'number') return r;
      vma = r;
    }
    if (vma.end > end) {
      const r = splitVma(vma, end, !forUnmap);
      if (typeof r === 'number') return r;
    }
    out.push(vma);
    vma = mm.findVma(vma.end);
  }
  return out;
}

/**
 * removeVma - tear down a whole VMA: zap its pages, undo its accounting, run its close hook and
 * drop what it references (remove_vma).
 */
export function removeVma(vma: VmAreaStruct): void {
  const mm = vma.mm;
  const core = mm.core;
  zapPageRange(vma, vma.start, vma.end);
  const pages = pagesIn(vma.start, vma.end);
  mm.totalVm -= pages;
  if (vma.flags & VM_LOCKED) mm.lockedVm -= pages;
  if (vma.flags & VM_ACCOUNT) vmUnacctMemory(core, pages);
  vma.vmOps?.close?.(vma);
  if (vma.shmem) {
    const obj = core.shmem.get(vma.shmem);
    if (obj) {
      obj.vmas.delete(vma);
      core.shmem.put(obj);
    }
  }
  if (vma.file) {
    (vma.file as MmapFile).mapping?.vmas.delete(vma);
    (vma.file as MmapFile).put();
  }
  core.anonVmas.unlink(vma);
  mm.removeVma(vma);
}

/**
 * unmapRange - remove every mapping in [start, end) (do_vmi_munmap after validation).
 * Returns 0, or -EINVAL for a hugetlb VMA cut off a huge-page boundary, or -ENOMEM when the
 * range is a hole inside one VMA and the mm is at vm.max_map_count (vms_gather_munmap_vmas:
 * the unmap would leave one VMA more; cutting a VMA's head or tail off is always allowed).
 */
export function unmapRange(mm: MmStruct, start: number, end: number): number {
  const first = mm.vmaLookup(start);
  if (first && first.start < start && first.end > end && mm.vmas.length >= mm.core.sysctl['vm.max_map_count'])
    return -ERRNO.ENOMEM;
  const vmas = isolateRange(mm, start, end, true);
  if (typeof vmas === 'number') return vmas;
  for (const vma of vmas) removeVma(vma);
  return 0;
}
