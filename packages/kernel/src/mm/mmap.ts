import { ERRNO } from '../uapi/errno';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGE_MASK,
  MAP_HUGE_SHIFT,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_NONBLOCK,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
  MAP_GROWSDOWN,
  MAP_DENYWRITE,
  MAP_EXECUTABLE,
  MAP_STACK,
  MAP_SYNC,
  MAP_UNINITIALIZED,
} from '../uapi/mman';
import { populateVmaPageRange } from './access';
import { hugepageSizeName } from './mm-core';
import { callerCanDoMlock, type MmCaller } from './mm-caller';
import type { MmapFile } from './mmap-file';
import { MMAP_MIN_ADDR, type MmStruct } from './mm-struct';
import { VmAreaStruct } from './vma';
import {
  VM_ACCOUNT,
  VM_EXEC,
  VM_HUGETLB,
  VM_LOCKED,
  VM_LOCKED_MASK,
  VM_LOCKONFAULT,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_NORESERVE,
  VM_READ,
  VM_SHARED,
  VM_SPECIAL,
  VM_WRITE,
} from './vm-flags';
import { unmapRange } from './vma-ops';
import { vmEnoughMemory, vmUnacctMemory } from './overcommit';
import { zapPageRange } from './zap';

const HUGE_SIZES: Record<number, number> = { 21: 2 ** 21, 30: 2 ** 30 };
/** Flags MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK plus MAP_SYNC checks are the driver's). */
const KNOWN_MAP_FLAGS =
  MAP_TYPE |
  MAP_FIXED |
  MAP_ANONYMOUS |
  MAP_GROWSDOWN |
  MAP_DENYWRITE |
  MAP_EXECUTABLE |
  MAP_LOCKED |
  MAP_NORESERVE |
  MAP_POPULATE |
  MAP_NONBLOCK |
  MAP_STACK |
  MAP_HUGETLB |
  MAP_FIXED_NOREPLACE |
  MAP_UNINITIALIZED |
  (MAP_HUGE_MASK << MAP_HUGE_SHIFT);

/** pageAlign - round up to a page (PAGE_ALIGN). */
export function pageAlign(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/** isUserNumber - an integer that can be a user address or length. */
export function isUserNumber(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** calcVmProtBits - VM_READ/WRITE/EXEC for PROT_* bits. */
export function calcVmProtBits(prot: number): number {
  return (
    (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0)
  );
}

/** mlockFutureOk - may `bytes` more be locked (mlock_future_ok)? */
export function mlockFutureOk(mm: MmStruct, caller: MmCaller, vmFlags: number, bytes: number): boolean {
  if (!(vmFlags & VM_LOCKED) || caller.ipcLock) return true;
  const locked = bytes / PAGE_SIZE + mm.lockedVm;
  return locked <= Math.floor(caller.memlockLimit / PAGE_SIZE);
}

/** Arguments of mmap after the fd was looked up. */
export interface MmapArgs {
  addr: number;
  len: number;
  prot: number;
  flags: number;
  file: MmapFile | null;
  /** Offset in bytes. */
  offset: number;
}

/**
 * doMmap - map memory into `mm` (ksys_mmap_pgoff + do_mmap + mmap_region).
 * Unknown PROT bits are ignored, as do_mmap ignores them.
 * Returns the address, or -errno: EINVAL (zero length, unaligned offset or fixed address, bad
 * map type - MAP_SHARED_VALIDATE is for files only - or huge page size, MAP_HUGETLB on a file),
 * ENOMEM (no room, length beyond TASK_SIZE, more than vm.max_map_count VMAs, hugetlb pool
 * exhausted), EEXIST (MAP_FIXED_NOREPLACE over a mapping), EACCES (file mode
 * does not allow the mapping), EPERM (MAP_LOCKED without can_do_mlock), EAGAIN (MAP_LOCKED over
 * RLIMIT_MEMLOCK), EOPNOTSUPP (unknown flags with MAP_SHARED_VALIDATE), EOVERFLOW (offset wraps)
 * or the driver's error. Released by doMunmap or exit.
 */
export function doMmap(mm: MmStruct, caller: MmCaller, args: MmapArgs): number {
  const { prot, file } = args;
  let { addr, len, flags } = args;
  const core = mm.core;
  // A length too large for a safe integer is still just too long (ENOMEM below), as a size_t is.
  if (!isUserNumber(addr) || !(Number.isInteger(len) && len >= 0) || !isUserNumber(args.offset))
    return -ERRNO.EINVAL;
  if (!Number.isInteger(prot) || !Number.isInteger(flags) || prot < 0 || flags < 0) return -ERRNO.EINVAL;
  if (args.offset % PAGE_SIZE) return -ERRNO.EINVAL;
  // do_mmap does not validate prot (only mprotect has arch_validate_prot): unknown bits are ignored.
  const type = flags & MAP_TYPE;
  if (file && type === MAP_SHARED_VALIDATE && flags & ~(KNOWN_MAP_FLAGS | MAP_SYNC)) return -ERRNO.EOPNOTSUPP;
  if (file && type === MAP_SHARED_VALIDATE && flags & MAP_SYNC) return -ERRNO.EOPNOTSUPP; // no DAX here
  if (!file && !(flags & MAP_ANONYMOUS)) return -ERRNO.EBADF;
  let hugeSize = 0;
  if (flags & MAP_HUGETLB) {
    if (file) return -ERRNO.EINVAL;
    const log = (flags >>> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
    hugeSize = log === 0 ? 2 ** 21 : (HUGE_SIZES[log] ?? 0);
    if (!hugeSize) return -ERRNO.EINVAL;
    len = Math.ceil(len / hugeSize) * hugeSize;
  }
  if (len === 0) return -ERRNO.EINVAL;
  len = pageAlign(len);
  if (len > TASK_SIZE) return -ERRNO.ENOMEM;
  let pgoff = args.offset / PAGE_SIZE;
  if (file && pgoff + len / PAGE_SIZE > Number.MAX_SAFE_INTEGER / PAGE_SIZE) return -ERRNO.EOVERFLOW;
  // do_mmap: `map_count > sysctl_max_map_count`, so one mapping more than the limit still fits.
  if (mm.vmas.length > core.sysctl['vm.max_map_count']) return -ERRNO.ENOMEM;
  if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;

  let vmFlags = calcVmProtBits(prot) | mm.defFlags | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (flags & MAP_LOCKED) {
    if (!callerCanDoMlock(caller)) return -ERRNO.EPERM;
    vmFlags |= VM_LOCKED;
  }
  if (!mlockFutureOk(mm, caller, vmFlags, len)) return -ERRNO.EAGAIN;

  if (file) {
    if (!file.readable) return -ERRNO.EACCES;
    if (type === MAP_SHARED || type === MAP_SHARED_VALIDATE) {
      if (prot & PROT_WRITE && !file.writable) return -ERRNO.EACCES;
      vmFlags |= VM_SHARED | VM_MAYSHARE;
      if (!file.writable) vmFlags &= ~(VM_MAYWRITE | VM_SHARED);
    } else if (type !== MAP_PRIVATE) return -ERRNO.EINVAL;
  } else {
    // Anonymous memory knows MAP_SHARED and MAP_PRIVATE only: MAP_SHARED_VALIDATE is EINVAL.
    if (type === MAP_SHARED) {
      vmFlags |= VM_SHARED | VM_MAYSHARE;
      pgoff = 0;
    } else if (type === MAP_PRIVATE) pgoff = addr / PAGE_SIZE;
    else return -ERRNO.EINVAL;
  }
  if (flags & MAP_NORESERVE) vmFlags |= VM_NORESERVE;
  if (hugeSize) vmFlags |= VM_HUGETLB;

  // get_unmapped_area. Anonymous private mappings whose length is a multiple of the PMD size are
  // PMD-aligned when THP is enabled, so they can get huge pages (thp_get_unmapped_area, 6.7+).
  const thpAlign =
    !file &&
    !hugeSize &&
    type === MAP_PRIVATE &&
    len % PMD_SIZE === 0 &&
    core.sysctl.transparent_hugepage !== 'never';
  const align = hugeSize || (thpAlign ? PMD_SIZE : PAGE_SIZE);
  if (flags & MAP_FIXED) {
    if (addr % align) return -ERRNO.EINVAL;
    if (addr + len > TASK_SIZE || addr < 0) return -ERRNO.ENOMEM;
    // security_mmap_addr: the bottom of the address space needs CAP_SYS_RAWIO.
    if (addr < MMAP_MIN_ADDR && !caller.sysRawio) return -ERRNO.EPERM;
    if (flags & MAP_FIXED_NOREPLACE) {
      const hit = mm.findVma(addr);
      if (hit && hit.start < addr + len) return -ERRNO.EEXIST;
    }
  } else {
    const hint = addr ? Math.floor(addr / align) * align : 0;
    const found = mm.getUnmappedArea(len, align, hint);
    if (found < 0) return found;
    addr = found;
  }
  if (!file && !(vmFlags & VM_SHARED)) pgoff = addr / PAGE_SIZE;

  // hugetlb reservations are taken at mmap time unless MAP_NORESERVE.
  let resv: Set<number> | null = null;
  const sizeName = hugeSize ? hugepageSizeName(hugeSize) : null;
  if (hugeSize && !(vmFlags & VM_NORESERVE)) {
    const n = len / hugeSize;
    if (!core.hugetlb.reserve(sizeName!, n)) return -ERRNO.ENOMEM;
    resv = new Set<number>();
    const first = vmFlags & VM_SHARED ? 0 : addr / hugeSize;
    for (let i = 0; i < n; i++) resv.add(first + i);
  }

  // Private writable and shared anonymous memory is charged to Committed_AS (accountable_mapping).
  const accountable =
    !hugeSize && !(vmFlags & VM_NORESERVE) && (vmFlags & VM_SHARED ? !file : (vmFlags & VM_WRITE) !== 0);
  if (accountable) {
    const r = vmEnoughMemory(core, len / PAGE_SIZE);
    if (r < 0) {
      if (resv) core.hugetlb.unreserve(sizeName!, resv.size);
      return r;
    }
    vmFlags |= VM_ACCOUNT;
  }

  if (flags & MAP_FIXED) {
    const r = unmapRange(mm, addr, addr + len);
    if (r < 0) {
      if (resv) core.hugetlb.unreserve(sizeName!, resv.size);
      if (accountable) vmUnacctMemory(core, len / PAGE_SIZE);
      return r;
    }
  }

  const vma = new VmAreaStruct(mm, addr, addr + len, vmFlags, pgoff);
  vma.hugeSize = hugeSize;
  if (!file && vmFlags & VM_SHARED) {
    const obj = core.shmem.create(len / PAGE_SIZE, sizeName);
    obj.hugeResv = resv;
    obj.vmas.add(vma);
    vma.shmem = obj.id;
  } else vma.hugeResv = resv;
  if (file) {
    vma.file = file;
    file.get();
    const r = file.mmap(vma);
    if (r < 0) {
      zapPageRange(vma, vma.start, vma.end);
      if (vma.flags & VM_ACCOUNT) vmUnacctMemory(core, len / PAGE_SIZE);
      file.put();
      return r;
    }
    file.mapping?.vmas.add(vma);
  }
  mm.insertVma(vma);
  mm.invalidateCache();
  const pages = len / PAGE_SIZE;
  mm.totalVm += pages;
  if (vma.flags & VM_LOCKED) {
    if (vma.flags & (VM_SPECIAL | VM_HUGETLB)) vma.flags &= ~VM_LOCKED_MASK;
    else mm.lockedVm += pages;
  }
  // do_mmap decides from the requested vm_flags, so a hugetlb MAP_LOCKED mapping is populated
  // though it never became VM_LOCKED; populate_vma_page_range skips VM_LOCKONFAULT VMAs.
  const populate = vmFlags & VM_LOCKED || (flags & (MAP_POPULATE | MAP_NONBLOCK)) === MAP_POPULATE;
  if (populate && !(vma.flags & VM_LOCKONFAULT)) {
    populateVmaPageRange(mm, addr, addr + len); // errors are ignored, as mm_populate's are
  }
  return addr;
}

/**
 * doMunmap - remove mappings in [addr, addr + len) (__vm_munmap). Unmapped holes are fine.
 * Returns 0, or -EINVAL (unaligned address, zero length, range beyond user space, or a hugetlb
 * mapping cut off a huge-page boundary).
 */
export function doMunmap(mm: MmStruct, addr: number, len: number): number {
  if (!isUserNumber(addr) || !isUserNumber(len)) return -ERRNO.EINVAL;
  if (addr % PAGE_SIZE) return -ERRNO.EINVAL;
  len = pageAlign(len);
  if (len === 0 || addr > TASK_SIZE || len > TASK_SIZE - addr) return -ERRNO.EINVAL;
  return unmapRange(mm, addr, addr + len);
}
