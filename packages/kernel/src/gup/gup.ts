/**
 * get_user_pages / pin_user_pages and their release (mm/gup.c): take references on the pages
 * backing a user address range, for the kernel or a device to access them.
 *
 * Every entry point takes the target mm explicitly (the kernel's get_user_pages and
 * pin_user_pages use current->mm) and fills `pages` with the pfn of each 4 KiB page. The
 * references are released with unpinUserPage(s)* (FOLL_PIN) or gupPutPages / gupPutFolio
 * (FOLL_GET). Charges the simulated cost (gup-config.ts) to the caller through MmCore.charge;
 * faults and migrations charge their own.
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE, TASK_SIZE } from '../uapi/mman';
import {
  FAULT_FLAG_ALLOW_RETRY,
  FAULT_FLAG_INTERRUPTIBLE,
  FAULT_FLAG_KILLABLE,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_RETRY_NOWAIT,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  VM_FAULT_ERROR,
  VM_FAULT_HWPOISON,
  VM_FAULT_OOM,
} from '../mm/fault-flags';
import { handleMmFault } from '../mm/fault';
import type { MmCore } from '../mm/mm-core';
import { MMF_HAS_PINNED, type MmStruct } from '../mm/mm-struct';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_referenced,
  PG_shmem,
  PG_tail,
} from '../mm/page-flags';
import { LEVEL_PMD, LEVEL_PTE, LEVEL_PUD, LEVEL_SIZE } from '../mm/page-table';
import {
  PTE_DIRTY,
  PTE_HUGE,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SPECIAL,
  PTE_TABLE,
  PTE_WRITE,
  PTE_YOUNG,
} from '../mm/pte';
import type { VmAreaStruct } from '../mm/vma';
import {
  VM_ACCESS_FLAGS,
  VM_HUGETLB,
  VM_IO,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from '../mm/vm-flags';
import {
  FOLL_ANON,
  FOLL_DUMP,
  FOLL_FAST_ONLY,
  FOLL_FORCE,
  FOLL_GET,
  FOLL_HONOR_NUMA_FAULT,
  FOLL_HWPOISON,
  FOLL_INTERRUPTIBLE,
  FOLL_LONGTERM,
  FOLL_NOFAULT,
  FOLL_NOWAIT,
  FOLL_PCI_P2PDMA,
  FOLL_PIN,
  FOLL_REMOTE,
  FOLL_SPLIT_PMD,
  FOLL_TOUCH,
  FOLL_TRIED,
  FOLL_UNLOCKABLE,
  FOLL_WRITE,
  GUP_FAST_FLAGS,
  INTERNAL_GUP_FLAGS,
  follFlagNames,
} from './foll-flags';
import { HUGETLB_2M_SUBPAGES } from './gup-config';
import { gupLongtermLocked, type GupPageArray } from './longterm';
import { gupState, type GupState } from './pin-tracker';

/** GupPageArray - a pages array: one pfn per 4 KiB page; a negative entry is empty (NULL). */
export type { GupPageArray } from './longterm';

/**
 * GupLocked - the `int *locked` of the remote variants: must be 1 on entry (the caller holds the
 * mmap lock). svasim's faults never drop the lock, so it is still 1 on return.
 */
export interface GupLocked {
  locked: number;
}

/** follow_page_mask found nothing it may use: fault the page in and look again. */
const NO_PAGE = -0x10000;
/** Faults one page may take before GUP gives up (a safety net: one fault always suffices). */
const MAX_FAULTS_PER_PAGE = 4;
/** 2^64: a range whose end reaches it wraps (check_add_overflow). */
const ADDR_SPACE_END = 2 ** 64;

function warn(core: MmCore, key: string, msg: string): void {
  core.dmesg.printkRatelimited(key, `WARNING: mm/gup.c: ${msg}`);
}

function folioHeadOf(core: MmCore, pfn: number): number {
  const f = core.frames;
  return f.flags[pfn] & PG_tail ? f.mapping[pfn] - 1 : pfn;
}

/** is_cow_mapping: private and may become writable. */
function isCowMapping(vmFlags: number): boolean {
  return (vmFlags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

/** vma_is_anonymous: no vm_ops (shmem and hugetlb mappings have theirs in the kernel). */
function vmaIsAnonymous(vma: VmAreaStruct): boolean {
  return vma.isAnonymous() && !(vma.flags & VM_HUGETLB);
}

/**
 * is_valid_gup_args: refuse internal flags from callers, a `locked` that is not 1, PIN with GET,
 * LONGTERM without PIN, GET or PIN without a pages array, LONGTERM with PCI_P2PDMA. Returns the
 * flags with `toSet` (and UNLOCKABLE for `locked`) added, or -1 (after a WARN) to refuse.
 */
function isValidGupArgs(
  core: MmCore,
  pages: GupPageArray | null,
  locked: GupLocked | null,
  gupFlags: number,
  toSet: number,
): number {
  if (!Number.isInteger(gupFlags) || gupFlags < 0 || gupFlags > 0xffffffff) {
    warn(core, 'is_valid_gup_args', `is_valid_gup_args: bad gup_flags ${String(gupFlags)}`);
    return -1;
  }
  let why = '';
  let flags = gupFlags;
  if (flags & INTERNAL_GUP_FLAGS) why = `internal flags ${follFlagNames(flags & INTERNAL_GUP_FLAGS)}`;
  else {
    flags |= toSet;
    if (locked) {
      if (locked.locked !== 1) why = `*locked = ${locked.locked}`;
      flags |= FOLL_UNLOCKABLE;
    }
    if (why) {
      // reported below
    } else if ((flags & (FOLL_PIN | FOLL_GET)) === (FOLL_PIN | FOLL_GET)) why = 'FOLL_PIN with FOLL_GET';
    else if (!(flags & FOLL_PIN) && flags & FOLL_LONGTERM) why = 'FOLL_LONGTERM without FOLL_PIN';
    else if (flags & (FOLL_GET | FOLL_PIN) && !pages) why = 'no pages array';
    else if (flags & FOLL_LONGTERM && flags & FOLL_PCI_P2PDMA) why = 'FOLL_LONGTERM with FOLL_PCI_P2PDMA';
  }
  if (why) {
    warn(core, 'is_valid_gup_args', `is_valid_gup_args: ${why}`);
    return -1;
  }
  return flags >>> 0;
}

/** The caller's range: -EINVAL for a bad page count, -EFAULT for a bad address, else 0. */
function checkRangeArgs(start: number, nrPages: number, pages: GupPageArray | null): number {
  if (!Number.isSafeInteger(nrPages) || nrPages < 0) return -ERRNO.EINVAL;
  if (!Number.isSafeInteger(start) || start < 0) return -ERRNO.EFAULT;
  if (pages && !Array.isArray(pages) && pages.length < nrPages) return -ERRNO.EINVAL;
  return 0;
}

/**
 * check_vma_flags: may GUP with `flags` work on `vma`? 0, -EFAULT (VM_IO/VM_PFNMAP, FOLL_ANON on
 * a non-anonymous VMA, a write to a !VM_WRITE VMA without FOLL_FORCE or with it on a shared one,
 * a read of a !VM_READ VMA without FOLL_FORCE) or -EOPNOTSUPP (FOLL_SPLIT_PMD on hugetlb).
 */
function checkVmaFlags(vma: VmAreaStruct, flags: number): number {
  const vmFlags = vma.flags;
  if (vmFlags & (VM_IO | VM_PFNMAP)) return -ERRNO.EFAULT;
  const anon = vmaIsAnonymous(vma);
  if (flags & FOLL_ANON && !anon) return -ERRNO.EFAULT;
  // fs-dax (-EOPNOTSUPP for FOLL_LONGTERM) and secretmem (-EFAULT) do not exist in svasim.
  if (flags & FOLL_SPLIT_PMD && vmFlags & VM_HUGETLB) return -ERRNO.EOPNOTSUPP;
  if (flags & FOLL_WRITE) {
    // writable_file_mapping_allowed: only shared file mappings needing dirty tracking refuse a
    // long-term R/W pin; svasim maps shmem, hugetlb and devices, none of which need it.
    if (!(vmFlags & VM_WRITE)) {
      if (!(flags & FOLL_FORCE)) return -ERRNO.EFAULT;
      if (!isCowMapping(vmFlags)) return -ERRNO.EFAULT;
    }
  } else if (!(vmFlags & VM_READ)) {
    if (!(flags & FOLL_FORCE)) return -ERRNO.EFAULT;
    if (!(vmFlags & VM_MAYREAD)) return -ERRNO.EFAULT;
  }
  return 0;
}

/**
 * gup_must_unshare: must a FOLL_PIN without FOLL_WRITE of the R/O-mapped folio `head` first break
 * COW (FAULT_FLAG_UNSHARE) so the pin stays coherent with what the mm maps? Yes for anonymous
 * folios that are not exclusive; for others only with FOLL_LONGTERM in a COW mapping (with no
 * VMA, as in GUP-fast: always, so GUP-fast leaves them to the slow path).
 */
function gupMustUnshare(core: MmCore, vma: VmAreaStruct | null, flags: number, head: number): boolean {
  if ((flags & (FOLL_WRITE | FOLL_PIN)) !== FOLL_PIN) return false;
  const pf = core.frames.flags[head];
  if (!(pf & PG_anon)) {
    if (!(flags & FOLL_LONGTERM)) return false;
    if (!vma) return true;
    return isCowMapping(vma.flags);
  }
  return !(pf & PG_anon_exclusive);
}

/** can_follow_write_common: FOLL_FORCE may write through a R/O entry of an exclusive anon page. */
function canFollowWriteCommon(core: MmCore, page: number, vma: VmAreaStruct, flags: number): boolean {
  if (!(flags & FOLL_FORCE)) return false;
  const vf = vma.flags;
  if (vf & (VM_MAYSHARE | VM_SHARED)) return false;
  if (!(vf & VM_MAYWRITE)) return false;
  if (vf & VM_WRITE) return false;
  if (page < 0) return false;
  const pf = core.frames.flags[folioHeadOf(core, page)];
  return (pf & (PG_anon | PG_anon_exclusive)) === (PG_anon | PG_anon_exclusive);
}

/** gup_can_follow_protnone: follow PROT_NONE (NUMA-hint) entries unless FOLL_HONOR_NUMA_FAULT. */
function gupCanFollowProtnone(vma: VmAreaStruct, flags: number): boolean {
  if (!(flags & FOLL_HONOR_NUMA_FAULT)) return true;
  return !(vma.flags & VM_ACCESS_FLAGS);
}

/** no_page_table: nothing mapped; FOLL_DUMP gets -EFAULT where a fault would only fill zeroes. */
function noPageTable(core: MmCore, vma: VmAreaStruct, flags: number, address: number): number {
  if (!(flags & FOLL_DUMP)) return NO_PAGE;
  if (vma.flags & VM_HUGETLB) {
    const obj = vma.shmem ? core.shmem.get(vma.shmem) : undefined;
    if (!obj) return -ERRNO.EFAULT;
    const base = Math.floor(address / vma.hugeSize) * vma.hugeSize;
    return obj.pages.has(vma.pgoff + (base - vma.start) / PAGE_SIZE) ? NO_PAGE : -ERRNO.EFAULT;
  }
  if (vmaIsAnonymous(vma) || (vma.vmOps && !vma.vmOps.fault)) return -ERRNO.EFAULT;
  return NO_PAGE;
}

/** Pages minus one of the huge leaf the last followPageMask took (ctx->page_mask). */
let followPageMaskOut = 0;

/**
 * The PTE table the last walk ended in, and the 2 MiB-aligned address it covers: consecutive
 * pages of one walk reuse it instead of descending four levels each time. Reset (ptCacheBase =
 * -1) whenever a fault may have changed the page table.
 */
let ptCacheBase = -1;
let ptCacheTable: Uint32Array | null = null;
let ptCacheId = 0;
let ptCacheMm: MmStruct | null = null;
const PMD_BYTES = LEVEL_SIZE[LEVEL_PMD];

/**
 * follow_page_mask: the page mapped at `address` with the reference `flags` asks for taken, or
 * NO_PAGE (fault first), -EMLINK (unshare first), -EEXIST (a PFN mapping without a struct page)
 * or another -errno. For a huge leaf, followPageMaskOut tells how many subpages follow.
 */
function followPageMask(st: GupState, vma: VmAreaStruct, address: number, flags: number): number {
  followPageMaskOut = 0;
  const core = st.core;
  const mm = vma.mm;
  const pt = mm.pgtable;
  const base = address - (address % PMD_BYTES);
  let t: Uint32Array | null;
  let slot: number;
  let level: number;
  let tableId: number;
  if (base === ptCacheBase && mm === ptCacheMm) {
    t = ptCacheTable;
    slot = (Math.floor(address / PAGE_SIZE) % 512) << 1;
    level = LEVEL_PTE;
    tableId = ptCacheId;
  } else {
    t = pt.walk(address, false);
    if (!t) return noPageTable(core, vma, flags, address);
    slot = pt.slot;
    level = pt.level;
    tableId = pt.tableId;
    if (level === LEVEL_PTE) {
      ptCacheBase = base;
      ptCacheTable = t;
      ptCacheId = tableId;
      ptCacheMm = mm;
    }
  }
  if (!t) return noPageTable(core, vma, flags, address);
  const hi = t[slot + 1];
  if (level !== LEVEL_PTE) {
    // follow_huge_pmd / follow_huge_pud (hugetlb)
    if (!(hi & PTE_PRESENT)) return noPageTable(core, vma, flags, address);
    const head = t[slot];
    if (flags & FOLL_WRITE && !(hi & PTE_WRITE) && !canFollowWriteCommon(core, head, vma, flags))
      return NO_PAGE;
    if (hi & PTE_PROTNONE && !gupCanFollowProtnone(vma, flags)) return noPageTable(core, vma, flags, address);
    if (!(hi & PTE_WRITE) && gupMustUnshare(core, vma, flags, head)) return -ERRNO.EMLINK;
    const r = st.tryGrabFolio(head, 1, flags);
    if (r) return r;
    const size = LEVEL_SIZE[level];
    followPageMaskOut = size / PAGE_SIZE - 1;
    return head + Math.floor((address % size) / PAGE_SIZE);
  }
  if (hi === 0) return noPageTable(core, vma, flags, address);
  if (!(hi & PTE_PRESENT)) return NO_PAGE;
  if (hi & PTE_PROTNONE && !gupCanFollowProtnone(vma, flags)) return NO_PAGE;
  const pfn = t[slot];
  const normal = !(hi & PTE_SPECIAL) && pfn < core.frames.count;
  if (flags & FOLL_WRITE && !(hi & PTE_WRITE) && !canFollowWriteCommon(core, normal ? pfn : -1, vma, flags))
    return NO_PAGE;
  if (!normal) {
    if (flags & FOLL_DUMP) return -ERRNO.EFAULT;
    if (pfn !== core.alloc.zeroPfn) {
      // follow_pfn_pte: no struct page to reference; FOLL_TOUCH still ages the entry.
      if (flags & FOLL_TOUCH)
        pt.set(tableId, slot, pfn, hi | PTE_YOUNG | (flags & FOLL_WRITE ? PTE_DIRTY : 0));
      return -ERRNO.EEXIST;
    }
  }
  const head = folioHeadOf(core, pfn);
  if (!(hi & PTE_WRITE) && gupMustUnshare(core, vma, flags, head)) return -ERRNO.EMLINK;
  const r = st.tryGrabFolio(head, 1, flags);
  if (r) return r;
  if (flags & FOLL_TOUCH && normal) {
    const f = core.frames.flags;
    if (flags & FOLL_WRITE && !(hi & PTE_DIRTY) && !(f[head] & PG_dirty)) f[head] |= PG_dirty;
    f[head] |= PG_referenced;
  }
  return pfn;
}

/**
 * faultin_page: resolve the fault a GUP walk needs (handle_mm_fault with the FAULT_FLAG_* the
 * FOLL_* flags ask for; `unshare` adds FAULT_FLAG_UNSHARE for a R/O pin of a shared page).
 * Returns 0, or -EFAULT (FOLL_NOFAULT, SIGSEGV, SIGBUS), -ENOMEM (OOM), -EHWPOISON.
 */
function faultinPage(vma: VmAreaStruct, address: number, flags: number, unshare: boolean): number {
  if (flags & FOLL_NOFAULT) return -ERRNO.EFAULT;
  let ff = 0;
  if (flags & FOLL_WRITE) ff |= FAULT_FLAG_WRITE;
  if (flags & FOLL_REMOTE) ff |= FAULT_FLAG_REMOTE;
  if (flags & FOLL_UNLOCKABLE) {
    ff |= FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE;
    if (flags & FOLL_INTERRUPTIBLE) ff |= FAULT_FLAG_INTERRUPTIBLE;
  }
  if (flags & FOLL_NOWAIT) ff |= FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_RETRY_NOWAIT;
  if (flags & FOLL_TRIED) ff |= FAULT_FLAG_TRIED;
  if (unshare) ff |= FAULT_FLAG_UNSHARE;
  const ret = handleMmFault(vma, address, ff);
  if (ret & VM_FAULT_ERROR) {
    if (ret & VM_FAULT_OOM) return -ERRNO.ENOMEM;
    if (ret & VM_FAULT_HWPOISON) return flags & FOLL_HWPOISON ? -ERRNO.EHWPOISON : -ERRNO.EFAULT;
    return -ERRNO.EFAULT;
  }
  return 0;
}

/**
 * __get_user_pages: walk [start, start + nrPages pages) one VMA at a time, following each page
 * and faulting in what is missing. Returns the number of pages taken, or -errno if none was.
 */
function getUserPagesWalk(
  mm: MmStruct,
  start: number,
  nrPages: number,
  flags: number,
  pages: GupPageArray | null,
  off: number,
): number {
  const core = mm.core;
  const st = gupState(core);
  let i = 0;
  let ret = 0;
  let hugeSubpages = 0;
  let vma: VmAreaStruct | null = null;
  start -= start % PAGE_SIZE;
  ptCacheBase = -1;
  ptCacheMm = null;
  outer: while (nrPages > 0) {
    if (!vma || start >= vma.end) {
      vma = mm.vmaLookup(start);
      if (!vma) {
        ret = -ERRNO.EFAULT;
        break;
      }
      ret = checkVmaFlags(vma, flags);
      if (ret) break;
    }
    let pfn: number;
    for (let faults = 0; ; faults++) {
      pfn = followPageMask(st, vma, start, flags);
      if (pfn !== NO_PAGE && pfn !== -ERRNO.EMLINK) break;
      if (faults >= MAX_FAULTS_PER_PAGE) {
        warn(core, 'gup_fault_loop', `__get_user_pages: no progress at 0x${start.toString(16)}`);
        ret = -ERRNO.EFAULT;
        break outer;
      }
      ptCacheBase = -1; // the fault may add, replace or free page tables
      const r = faultinPage(vma, start, flags, pfn === -ERRNO.EMLINK);
      if (r) {
        ret = r;
        break outer;
      }
    }
    let increm = 1;
    if (pfn === -ERRNO.EEXIST) {
      if (pages) {
        ret = pfn;
        break;
      }
    } else if (pfn < 0) {
      ret = pfn;
      break;
    } else {
      const mask = followPageMaskOut;
      increm = Math.min(mask + 1 - (Math.floor(start / PAGE_SIZE) & mask), nrPages);
      if (pages) {
        if (increm > 1 && st.tryGrabFolio(folioHeadOf(core, pfn), increm - 1, flags)) {
          st.putFolio(folioHeadOf(core, pfn), 1, flags);
          ret = -ERRNO.EFAULT;
          break;
        }
        for (let j = 0; j < increm; j++) pages[off + i + j] = pfn + j;
      }
      if (mask > 0) hugeSubpages += increm;
    }
    i += increm;
    start += increm * PAGE_SIZE;
    nrPages -= increm;
  }
  if (pages) {
    st.stats.slowPages += i;
    const c = st.costs;
    core.charge(
      Math.round(
        (i - hugeSubpages) * c.slowPerPage + (hugeSubpages * c.hugetlbPinPer2M) / HUGETLB_2M_SUBPAGES,
      ),
    );
  }
  return i ? i : ret;
}

/**
 * __get_user_pages_locked: the slow path for one call. Sets MMF_HAS_PINNED for FOLL_PIN, adds
 * FOLL_GET when pages are wanted without FOLL_PIN, and turns "nothing taken" into -EFAULT (only
 * FOLL_NOWAIT may return 0).
 */
function getUserPagesLocked(
  mm: MmStruct,
  start: number,
  nrPages: number,
  pages: GupPageArray | null,
  off: number,
  flags: number,
): number {
  if (nrPages === 0) return 0;
  if (!mm.alive) return -ERRNO.EFAULT; // mmget_not_zero failed: the mm is gone
  if (flags & FOLL_PIN) mm.flags |= MMF_HAS_PINNED;
  if (pages && !(flags & FOLL_PIN)) flags |= FOLL_GET;
  const ret = getUserPagesWalk(mm, start, nrPages, flags, pages, off);
  if (ret === 0 && !(flags & FOLL_NOWAIT)) {
    warn(mm.core, 'gup_locked_zero', '__get_user_pages_locked: no page taken');
    return -ERRNO.EFAULT;
  }
  return ret;
}

/** __gup_longterm_locked: the slow path, with the FOLL_LONGTERM migrate-and-retry loop. */
function gupLongtermEntry(
  mm: MmStruct,
  start: number,
  nrPages: number,
  pages: GupPageArray | null,
  off: number,
  flags: number,
): number {
  if (!(flags & FOLL_LONGTERM) || !pages) return getUserPagesLocked(mm, start, nrPages, pages, off, flags);
  return gupLongtermLocked(
    mm.core,
    () => getUserPagesLocked(mm, start, nrPages, pages, off, flags),
    pages,
    off,
  );
}

/**
 * The lockless walk (gup_fast): take pages while every entry is present, accessible for the
 * access, backed by a struct page and acceptable to the flags; stop at the first that is not.
 * FOLL_PIN backs out entirely while fork holds mm->write_protect_seq (odd).
 * Returns the number of pages taken into pages[off ..].
 */
function gupFast(
  st: GupState,
  mm: MmStruct,
  start: number,
  end: number,
  flags: number,
  pages: GupPageArray,
  off: number,
): number {
  if (flags & FOLL_PIN && mm.writeProtectSeq & 1) return 0;
  const core = st.core;
  const pt = mm.pgtable;
  const pf = core.frames.flags;
  const mapping = core.frames.mapping;
  const refcount = core.frames.refcount;
  const count = core.frames.count;
  const write = (flags & FOLL_WRITE) !== 0;
  const longtermPin = (flags & (FOLL_PIN | FOLL_LONGTERM)) === (FOLL_PIN | FOLL_LONGTERM);
  const fastPinChecked =
    (flags & (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)) === (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE);
  const isPinnable = st.isPinnable;
  // What try_grab_folio_fast and the checks after it require of the folio at `head`.
  const mayGrab = (head: number, hi: number): boolean => {
    if (refcount[head] <= 0) return false;
    if (longtermPin && !isPinnable(head)) return false;
    if (!(hi & PTE_WRITE) && gupMustUnshare(core, null, flags, head)) return false;
    // folio_fast_pin_allowed: a long-term R/W pin needs a mapping known not to need dirty tracking.
    if (fastPinChecked && !(pf[head] & (PG_anon | PG_hugetlb | PG_shmem))) return false;
    return true;
  };
  const pmdSize = LEVEL_SIZE[LEVEL_PMD];
  let nr = 0;
  let hugeSubpages = 0;
  let va = start;
  outer: while (va < end) {
    const t = pt.walk(va, false, LEVEL_PMD);
    if (!t) break;
    const hi = t[pt.slot + 1];
    const lo = t[pt.slot];
    if (pt.level === LEVEL_PMD && hi & PTE_TABLE) {
      const ptes = pt.table(lo);
      const stop = Math.min(end, va - (va % pmdSize) + pmdSize);
      let s = (Math.floor(va / PAGE_SIZE) % 512) << 1;
      for (; va < stop; va += PAGE_SIZE, s += 2) {
        const phi = ptes[s + 1];
        // present, not PROT_NONE (pte_protnone: always left to the slow path), not special
        if ((phi & (PTE_PRESENT | PTE_PROTNONE | PTE_SPECIAL)) !== PTE_PRESENT) break outer;
        if (write && !(phi & PTE_WRITE)) break outer;
        const pfn = ptes[s];
        if (pfn >= count) break outer;
        const head = pf[pfn] & PG_tail ? mapping[pfn] - 1 : pfn;
        if (!mayGrab(head, phi)) break outer;
        st.grabFast(head, 1, flags);
        pf[head] |= PG_referenced;
        pages[off + nr++] = pfn;
      }
      continue;
    }
    if (
      (pt.level === LEVEL_PMD || pt.level === LEVEL_PUD) &&
      (hi & (PTE_PRESENT | PTE_HUGE)) === (PTE_PRESENT | PTE_HUGE)
    ) {
      if (hi & PTE_PROTNONE) break;
      if (write && !(hi & PTE_WRITE)) break;
      const size = LEVEL_SIZE[pt.level];
      const base = va - (va % size);
      const next = Math.min(end, base + size);
      const refs = (next - va) / PAGE_SIZE;
      const head = lo;
      if (!mayGrab(head, hi)) break;
      st.grabFast(head, refs, flags);
      pf[head] |= PG_referenced;
      const first = head + (va - base) / PAGE_SIZE;
      for (let j = 0; j < refs; j++) pages[off + nr + j] = first + j;
      nr += refs;
      hugeSubpages += refs;
      va = next;
      continue;
    }
    break;
  }
  st.stats.fastPages += nr;
  if (flags & FOLL_PIN) st.countAcquired(nr);
  const c = st.costs;
  core.charge(
    Math.round(
      (nr - hugeSubpages) * c.fastPerPage + (hugeSubpages * c.hugetlbPinPer2M) / HUGETLB_2M_SUBPAGES,
    ),
  );
  return nr;
}

/**
 * gup_fast_fallback: GUP-fast for as many pages as it can take, then the slow path (with the
 * long-term loop) for the rest unless FOLL_FAST_ONLY. Returns the number taken; when the slow
 * path fails after GUP-fast took some, the partial count (the caller must release those).
 */
function gupFastFallback(
  mm: MmStruct,
  start: number,
  nrPages: number,
  flags: number,
  pages: GupPageArray,
): number {
  const core = mm.core;
  if (flags & ~GUP_FAST_FLAGS) {
    warn(core, 'gup_fast_fallback', `gup_fast_fallback: flags ${follFlagNames(flags & ~GUP_FAST_FLAGS)}`);
    return -ERRNO.EINVAL;
  }
  const bad = checkRangeArgs(start, nrPages, pages);
  if (bad) return bad;
  if (flags & FOLL_PIN) mm.flags |= MMF_HAS_PINNED;
  start -= start % PAGE_SIZE;
  const len = nrPages * PAGE_SIZE;
  if (start + len >= ADDR_SPACE_END) return -ERRNO.EOVERFLOW;
  if (start + len > TASK_SIZE) return -ERRNO.EFAULT;
  const st = gupState(core);
  const nrPinned = gupFast(st, mm, start, start + len, flags, pages, 0);
  if (nrPinned === nrPages || flags & FOLL_FAST_ONLY) return nrPinned;
  st.stats.fastFallbacks++;
  const ret = gupLongtermEntry(
    mm,
    start + nrPinned * PAGE_SIZE,
    nrPages - nrPinned,
    pages,
    nrPinned,
    flags | FOLL_TOUCH | FOLL_UNLOCKABLE,
  );
  if (ret < 0) return nrPinned ? nrPinned : ret;
  return ret + nrPinned;
}

/** The slow-path entries after their flags were validated. */
function slowPath(
  mm: MmStruct,
  start: number,
  nrPages: number,
  pages: GupPageArray | null,
  flags: number,
): number {
  const bad = checkRangeArgs(start, nrPages, pages);
  if (bad) return bad;
  return gupLongtermEntry(mm, start, nrPages, pages, 0, flags);
}

/**
 * getUserPages - take a reference on each page of [start, start + nrPages pages) of `mm`, faulting
 * in what is missing (get_user_pages: adds FOLL_TOUCH, and FOLL_GET when `pages` is given).
 * @mm: the address space (the kernel uses current->mm).
 * @start: user address; rounded down to a page.
 * @nrPages: pages wanted.
 * @gupFlags: FOLL_* external flags (FOLL_WRITE, FOLL_FORCE, ...).
 * @pages: receives the pfn of each 4 KiB page, or null to fault the range in without references.
 * Returns the number of pages taken, which may be fewer than asked (the range ran into a hole or
 * a VMA GUP may not use), 0 for nrPages 0, or -errno when none was taken: -EINVAL (refused by
 * is_valid_gup_args, bad count), -EFAULT (no VMA at start, forbidden access, fault failed),
 * -ENOMEM, -EEXIST (a PFN mapping with `pages`), -EOPNOTSUPP.
 * Context: the mmap lock is taken and dropped inside (svasim has no lock to hold).
 * Released by gupPutPages / gupPutFolio(core, pfn, 1, FOLL_GET) for each page taken.
 */
export function getUserPages(
  mm: MmStruct,
  start: number,
  nrPages: number,
  gupFlags: number,
  pages: GupPageArray | null,
): number {
  const flags = isValidGupArgs(mm.core, pages, null, gupFlags, FOLL_TOUCH);
  if (flags < 0) return -ERRNO.EINVAL;
  return slowPath(mm, start, nrPages, pages, flags);
}

/**
 * getUserPagesRemote - getUserPages on another process's mm (get_user_pages_remote: adds
 * FOLL_TOUCH | FOLL_REMOTE, so faults are FAULT_FLAG_REMOTE). `locked`, when given, must hold 1
 * (else -EINVAL) and still holds 1 on return. Returns and releases as getUserPages.
 */
export function getUserPagesRemote(
  mm: MmStruct,
  start: number,
  nrPages: number,
  gupFlags: number,
  pages: GupPageArray | null,
  locked: GupLocked | null = null,
): number {
  const flags = isValidGupArgs(mm.core, pages, locked, gupFlags, FOLL_TOUCH | FOLL_REMOTE);
  if (flags < 0) return -ERRNO.EINVAL;
  return slowPath(mm, start, nrPages, pages, flags);
}

/**
 * getUserPagesUnlocked - getUserPages for callers not holding the mmap lock
 * (get_user_pages_unlocked: adds FOLL_TOUCH | FOLL_UNLOCKABLE; the kernel's argument order).
 * Returns and releases as getUserPages.
 */
export function getUserPagesUnlocked(
  mm: MmStruct,
  start: number,
  nrPages: number,
  pages: GupPageArray | null,
  gupFlags: number,
): number {
  const flags = isValidGupArgs(mm.core, pages, null, gupFlags, FOLL_TOUCH | FOLL_UNLOCKABLE);
  if (flags < 0) return -ERRNO.EINVAL;
  return slowPath(mm, start, nrPages, pages, flags);
}

/**
 * getUserPagesFast - take a reference on each page without the mmap lock where the page tables
 * allow it, falling back to the slow path for the rest (get_user_pages_fast: adds FOLL_GET).
 * Returns the number taken (partial success possible: if the slow path fails after GUP-fast took
 * some, their count), or -errno when none: -EINVAL (refused flags, including any outside
 * WRITE|LONGTERM|FORCE|PIN|GET|FAST_ONLY|NOFAULT|PCI_P2PDMA|HONOR_NUMA_FAULT), -EOVERFLOW (the
 * range wraps), -EFAULT (beyond TASK_SIZE, or as the slow path).
 * Context: any; released by gupPutPages / gupPutFolio(core, pfn, 1, FOLL_GET).
 */
export function getUserPagesFast(
  mm: MmStruct,
  start: number,
  nrPages: number,
  gupFlags: number,
  pages: GupPageArray,
): number {
  const flags = isValidGupArgs(mm.core, pages, null, gupFlags, FOLL_GET);
  if (flags < 0) return -ERRNO.EINVAL;
  return gupFastFallback(mm, start, nrPages, flags, pages);
}

/**
 * getUserPagesFastOnly - GUP-fast without the slow-path fallback (get_user_pages_fast_only: adds
 * FOLL_GET | FOLL_FAST_ONLY): takes pages from the start of the range until one needs a fault or
 * the slow path. Returns the number taken (0 possible), or -EINVAL / -EOVERFLOW / -EFAULT as
 * getUserPagesFast. Context: may be called where the kernel could not sleep.
 * Released by gupPutPages / gupPutFolio(core, pfn, 1, FOLL_GET).
 */
export function getUserPagesFastOnly(
  mm: MmStruct,
  start: number,
  nrPages: number,
  gupFlags: number,
  pages: GupPageArray,
): number {
  const flags = isValidGupArgs(mm.core, pages, null, gupFlags, FOLL_GET | FOLL_FAST_ONLY);
  if (flags < 0) return -ERRNO.EINVAL;
  return gupFastFallback(mm, start, nrPages, flags, pages);
}

/**
 * pinUserPages - pin each page of [start, start + nrPages pages) for DMA (pin_user_pages: adds
 * FOLL_PIN, not FOLL_TOUCH). A pin adds GUP_PIN_COUNTING_BIAS to a small folio's refcount, 1 to
 * a large folio's refcount and pincount, nothing on the zero page; counts nr_foll_pin_acquired per
 * page and sets MMF_HAS_PINNED. A R/O pin of a shared anonymous page unshares it first. With
 * FOLL_LONGTERM, pages in CMA or ZONE_MOVABLE are migrated out before the pin holds.
 * Returns the number pinned (partial success possible), or when none: 0 when is_valid_gup_args
 * refuses the flags (pin_user_pages returns 0 there, where get_user_pages returns -EINVAL), else
 * -errno as getUserPages, and -ENOMEM when FOLL_LONGTERM could not migrate (nothing pinned).
 * Context: may fault, allocate and migrate. Released by unpinUserPages(core, pages, n) or
 * unpinUserPagesDirtyLock, never by put_page.
 */
export function pinUserPages(
  mm: MmStruct,
  start: number,
  nrPages: number,
  gupFlags: number,
  pages: GupPageArray | null,
): number {
  const flags = isValidGupArgs(mm.core, pages, null, gupFlags, FOLL_PIN);
  if (flags < 0) return 0;
  return slowPath(mm, start, nrPages, pages, flags);
}

/**
 * pinUserPagesFast - pinUserPages through GUP-fast first (pin_user_pages_fast: adds FOLL_PIN).
 * GUP-fast backs out while fork write-protects the mm (mm.writeProtectSeq odd) and leaves to the
 * slow path every page that is not present, not writable for FOLL_WRITE, special (the zero
 * page), shared anonymous for a R/O pin, or unpinnable under FOLL_LONGTERM.
 * Returns the number pinned (partial when the slow path failed after GUP-fast pinned some), or
 * -errno when none: -EINVAL for refused flags (unlike pinUserPages' 0), -EOVERFLOW, -EFAULT,
 * -ENOMEM. Released by unpinUserPages.
 */
export function pinUserPagesFast(
  mm: MmStruct,
  start: number,
  nrPages: number,
  gupFlags: number,
  pages: GupPageArray,
): number {
  const flags = isValidGupArgs(mm.core, pages, null, gupFlags, FOLL_PIN);
  if (flags < 0) return -ERRNO.EINVAL;
  return gupFastFallback(mm, start, nrPages, flags, pages);
}

/**
 * pinUserPagesRemote - pinUserPages on another process's mm (pin_user_pages_remote: adds FOLL_PIN
 * | FOLL_TOUCH | FOLL_REMOTE). `locked`, when given, must hold 1. Returns 0 for refused flags,
 * else as pinUserPages. Released by unpinUserPages.
 */
export function pinUserPagesRemote(
  mm: MmStruct,
  start: number,
  nrPages: number,
  gupFlags: number,
  pages: GupPageArray | null,
  locked: GupLocked | null = null,
): number {
  const flags = isValidGupArgs(mm.core, pages, locked, gupFlags, FOLL_PIN | FOLL_TOUCH | FOLL_REMOTE);
  if (flags < 0) return 0;
  return slowPath(mm, start, nrPages, pages, flags);
}

/**
 * pinUserPagesUnlocked - pinUserPages for callers not holding the mmap lock
 * (pin_user_pages_unlocked: adds FOLL_PIN | FOLL_TOUCH | FOLL_UNLOCKABLE; the kernel's argument
 * order, pages before flags). Returns 0 for refused flags, else as pinUserPages.
 * Released by unpinUserPages.
 */
export function pinUserPagesUnlocked(
  mm: MmStruct,
  start: number,
  nrPages: number,
  pages: GupPageArray | null,
  gupFlags: number,
): number {
  const flags = isValidGupArgs(mm.core, pages, null, gupFlags, FOLL_PIN | FOLL_TOUCH | FOLL_UNLOCKABLE);
  if (flags < 0) return 0;
  return slowPath(mm, start, nrPages, pages, flags);
}

/** The pages of the folio batch starting at pages[i] (gup_folio_next): consecutive, same folio. */
function folioRun(core: MmCore, pages: GupPageArray, i: number, npages: number, head: number): number {
  if (!(core.frames.flags[head] & PG_head)) return 1;
  let n = i + 1;
  while (n < npages && pages[n] >= 0 && pages[n] < core.frames.count && folioHeadOf(core, pages[n]) === head)
    n++;
  return n - i;
}

/** Release `npages` entries of `pages` with `flags` (FOLL_PIN or FOLL_GET), dirtying first if asked. */
function releasePages(
  core: MmCore,
  pages: GupPageArray,
  npages: number,
  flags: number,
  makeDirty: boolean,
): void {
  const st = gupState(core);
  const c = st.costs;
  if (flags & FOLL_PIN) {
    st.releasePins(pages, npages, makeDirty);
    core.charge(
      Math.round(
        st.releasedSmall * c.unpinPerPage + (st.releasedLarge * c.hugetlbUnpinPer2M) / HUGETLB_2M_SUBPAGES,
      ),
    );
    return;
  }
  const pf = core.frames.flags;
  const count = core.frames.count;
  let small = 0;
  let huge = 0;
  for (let i = 0; i < npages;) {
    const p = pages[i];
    if (p < 0) {
      i++;
      continue;
    }
    if (p >= count) {
      warn(core, 'put_bad_pfn', `put_page of pfn ${p}, which has no struct page`);
      i++;
      continue;
    }
    const head = folioHeadOf(core, p);
    const nr = folioRun(core, pages, i, npages, head);
    if (pf[head] & PG_head) huge += nr;
    else small += nr;
    if (makeDirty && !(pf[head] & PG_dirty)) pf[head] |= PG_dirty;
    st.putFolio(head, nr, flags);
    i += nr;
  }
  core.charge(Math.round(small * c.putPerPage + (huge * c.hugetlbUnpinPer2M) / HUGETLB_2M_SUBPAGES));
}

/**
 * unpinUserPage - release one pin taken by pin_user_pages* (unpin_user_page). The zero page is
 * ignored (its pins were never counted); a page GUP holds no pin on WARNs and is left alone.
 * The last reference frees the folio. Context: any.
 */
export function unpinUserPage(core: MmCore, pfn: number): void {
  releasePages(core, [pfn], 1, FOLL_PIN, false);
}

/**
 * unpinUserPages - release the pins on pages[0 .. npages) (unpin_user_pages); negative entries
 * (NULL) are skipped, and a negative `npages` (an -errno passed by mistake) WARNs and releases
 * nothing. Consecutive pages of one large folio are released together. Context: any.
 */
export function unpinUserPages(core: MmCore, pages: GupPageArray, npages: number): void {
  if (!Number.isInteger(npages) || npages < 0) {
    warn(core, 'unpin_user_pages', `unpin_user_pages: npages ${String(npages)}`);
    return;
  }
  releasePages(core, pages, Math.min(npages, pages.length), FOLL_PIN, false);
}

/**
 * unpinUserPagesDirtyLock - release the pins on pages[0 .. npages), first marking each folio
 * dirty (under its lock) if `makeDirty` and it is clean (unpin_user_pages_dirty_lock): what a
 * driver calls after a device wrote into the pages. Context: may sleep in the kernel.
 */
export function unpinUserPagesDirtyLock(
  core: MmCore,
  pages: GupPageArray,
  npages: number,
  makeDirty: boolean,
): void {
  if (!makeDirty) {
    unpinUserPages(core, pages, npages);
    return;
  }
  if (!Number.isInteger(npages) || npages < 0) {
    warn(core, 'unpin_user_pages', `unpin_user_pages_dirty_lock: npages ${String(npages)}`);
    return;
  }
  releasePages(core, pages, Math.min(npages, pages.length), FOLL_PIN, true);
}

/**
 * unpinUserPageRangeDirtyLock - release one pin on each of the `npages` physically consecutive
 * pages from `pfn`, dirtying clean folios first if `makeDirty` (unpin_user_page_range_dirty_lock;
 * the release ib_umem uses). Context: may sleep in the kernel.
 */
export function unpinUserPageRangeDirtyLock(
  core: MmCore,
  pfn: number,
  npages: number,
  makeDirty: boolean,
): void {
  if (!Number.isInteger(npages) || npages <= 0) return;
  const pages = new Int32Array(npages);
  for (let i = 0; i < npages; i++) pages[i] = pfn + i;
  releasePages(core, pages, npages, FOLL_PIN, makeDirty);
}

/**
 * gupPutFolio - drop `refs` references GUP took on the folio containing `pfn` (gup_put_folio):
 * pins with FOLL_PIN in `flags`, else FOLL_GET references. This is the put_page for pages from
 * get_user_pages*: plain putPage would leave GUP's bookkeeping (and the invariant check) off by
 * one. Releasing what GUP does not hold WARNs and changes nothing. Context: any.
 */
export function gupPutFolio(core: MmCore, pfn: number, refs: number, flags: number): void {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= core.frames.count || !Number.isInteger(refs) || refs <= 0) {
    warn(core, 'gup_put_folio', `gup_put_folio: pfn ${pfn} refs ${refs}`);
    return;
  }
  const st = gupState(core);
  const head = folioHeadOf(core, pfn);
  const pin = (flags & FOLL_PIN) !== 0;
  const large = (core.frames.flags[head] & PG_head) !== 0;
  st.putFolio(head, refs, pin ? FOLL_PIN : FOLL_GET);
  const c = st.costs;
  const per = pin ? c.unpinPerPage : c.putPerPage;
  core.charge(Math.round(large ? (refs * c.hugetlbUnpinPer2M) / HUGETLB_2M_SUBPAGES : refs * per));
}

/**
 * gupPutPages - release the FOLL_GET references on pages[0 .. npages) taken by get_user_pages*
 * (the kernel's put_page loop); negative entries are skipped. Context: any.
 */
export function gupPutPages(core: MmCore, pages: GupPageArray, npages: number): void {
  if (!Number.isInteger(npages) || npages < 0) {
    warn(core, 'put_pages', `put_page loop: npages ${String(npages)}`);
    return;
  }
  releasePages(core, pages, Math.min(npages, pages.length), FOLL_GET, false);
}
