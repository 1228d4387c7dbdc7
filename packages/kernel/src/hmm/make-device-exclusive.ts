/**
 * make_device_exclusive (mm/rmap.c, Linux 6.15+): give a device exclusive (atomic) access to one
 * page of anonymous memory. The page is faulted in writable through GUP, then its PTE becomes a
 * device-exclusive entry (mm/device-exclusive.ts) after an MMU_NOTIFY_EXCLUSIVE invalidation
 * carrying the owner; the next CPU access restores the PTE and tells secondary MMUs (owner null),
 * revoking the device's access. Kernels before 6.15 had make_device_exclusive_range(mm, start,
 * end, pages, owner) returning a page count, and took the page out of the mapcount.
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { FOLL_GET, FOLL_SPLIT_PMD, FOLL_WRITE } from '../gup/foll-flags';
import { getUserPagesRemote, gupPutFolio } from '../gup/gup';
import { folioMakeDeviceExclusive } from '../mm/device-exclusive';
import { splitHugePmd } from '../mm/huge-memory';
import { folioOf, folioTrylock, folioUnlock } from '../mm/memremap';
import { tunableValues } from '../mm/mm-config';
import type { MmCore } from '../mm/mm-core';
import type { MmStruct } from '../mm/mm-struct';
import { PG_anon, PG_hugetlb } from '../mm/page-flags';
import { VM_HUGETLB } from '../mm/vm-flags';
import { HMM_COST_DEFAULTS, type HmmCosts } from './hmm-config';

const COSTS: HmmCosts = tunableValues(HMM_COST_DEFAULTS) as HmmCosts;

/** What makeDeviceExclusive hands back: the page now device-exclusive and its folio (head pfn). */
export interface DeviceExclusivePage {
  /** pfn of the page at addr. */
  page: number;
  /** pfn of its folio's head (the page itself unless it is part of a large folio). */
  folio: number;
}

/**
 * makeDeviceExclusive - mark the page at @addr of @mm for exclusive use by a device
 * (make_device_exclusive): fault it in writable with GUP (FOLL_GET | FOLL_WRITE |
 * FOLL_SPLIT_PMD: a THP is then mapped by PTEs; an existing device-exclusive entry is first
 * restored by that fault, telling its device), lock its folio, and replace the PTE with a
 * device-exclusive entry after an MMU_NOTIFY_EXCLUSIVE invalidation carrying @owner (so the
 * caller's own notifier can recognise, and should skip, it).
 * @mm: the target address space; @addr: a user address (rounded down to its page);
 * @owner: the device's owner cookie (the notifier range's owner), may be null.
 *
 * Return: { page, folio } with the folio locked and holding a GUP reference: the caller programs
 * its device, then releases with putDeviceExclusiveFolio (folio_unlock + folio_put). Or -errno:
 * GUP's (-EFAULT: no VMA, a VMA that may not be written, a failed fault; -ENOMEM), -EOPNOTSUPP
 * (not anonymous memory: shmem, a device mapping, hugetlb), -EBUSY (the folio is locked by
 * someone else, or the PTE changed before it could be replaced).
 * Context: the driver (the kernel holds the mmap lock). Charges GUP's and the swap's costs.
 */
export function makeDeviceExclusive(
  mm: MmStruct,
  addr: number,
  owner: unknown,
): DeviceExclusivePage | number {
  if (!Number.isSafeInteger(addr) || addr < 0) return -ERRNO.EFAULT;
  const core = mm.core;
  const va = addr - (addr % PAGE_SIZE);
  const pages = new Int32Array(1);
  const got = getUserPagesRemote(mm, va, 1, FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD, pages, null);
  if (got < 0) return got;
  if (got === 0) return -ERRNO.EFAULT;
  const page = pages[0];
  const vma = mm.vmaLookup(va);
  if (!vma) {
    gupPutFolio(core, page, 1, FOLL_GET);
    return -ERRNO.EINVAL;
  }
  // FOLL_SPLIT_PMD: a PMD-mapped THP gets PTEs (the folio stays large).
  if (!(vma.flags & VM_HUGETLB)) splitHugePmd(vma, va);
  const folio = folioOf(core, page);
  const f = core.frames;
  if (!(f.flags[folio] & PG_anon) || f.flags[folio] & PG_hugetlb) {
    gupPutFolio(core, page, 1, FOLL_GET);
    return -ERRNO.EOPNOTSUPP;
  }
  if (!folioTrylock(core, folio)) {
    gupPutFolio(core, page, 1, FOLL_GET);
    return -ERRNO.EBUSY;
  }
  const r = folioMakeDeviceExclusive(vma, va, page, owner);
  if (r < 0) {
    folioUnlock(core, folio);
    gupPutFolio(core, page, 1, FOLL_GET);
    return r;
  }
  core.charge(COSTS.makeExclusive);
  return { page, folio };
}

/**
 * putDeviceExclusiveFolio - release what makeDeviceExclusive returned (folio_unlock +
 * folio_put): the lock and the GUP reference. The device-exclusive entry keeps its own mapping.
 */
export function putDeviceExclusiveFolio(core: MmCore, folio: number): void {
  folioUnlock(core, folio);
  gupPutFolio(core, folio, 1, FOLL_GET);
}
