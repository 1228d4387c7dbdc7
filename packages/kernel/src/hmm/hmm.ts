/**
 * hmm_range_fault (mm/hmm.c, include/linux/hmm.h): snapshot, and fault in where asked, the CPU
 * page table of a range so a device driver can mirror it in its own page table (an HMM mirror).
 * Device-private pages of the caller's own device (range.devPrivateOwner) are reported as they
 * are; every other non-present entry the caller needs is faulted in through handle_mm_fault,
 * which migrates other devices' pages back to system memory and revokes device-exclusive entries.
 *
 * hmm pfn encoding. The kernel keeps the flags in the top bits of an unsigned long; JavaScript's
 * bitwise operators see 32 bits, so svasim keeps them in the low 12 bits of a Float64Array value
 * and the pfn above (value = pfn * 2^HMM_PFN_PFN_SHIFT + flags): `v & HMM_PFN_VALID` works as in
 * C, hmmPfnToPfn(v) gives the pfn. Values stay below 2^53, so they are exact.
 *
 * The driver loop (dmirror_range_fault in lib/test_hmm.c; see fs/test-hmm.ts):
 *
 *   for (;;) {
 *     range.notifierSeq = mmuIntervalReadBegin(range.notifier);
 *     const ret = hmmRangeFault(range);          // may fault pages in
 *     if (ret === -EBUSY) continue;              // an invalidation raced: start again
 *     if (ret) return ret;
 *     take the driver lock;
 *     if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) { drop it; continue; }
 *     program the device page table from range.hmmPfns;   // invalidate() cannot run meanwhile
 *     drop the lock; return 0;
 *   }
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { FAULT_FLAG_REMOTE, FAULT_FLAG_WRITE, VM_FAULT_ERROR } from '../mm/fault-flags';
import { handleMmFault } from '../mm/fault';
import { pagePgmap } from '../mm/memremap';
import { tunableValues } from '../mm/mm-config';
import type { MmStruct } from '../mm/mm-struct';
import { LEVEL_PMD, LEVEL_PUD, LEVEL_PTE, LEVEL_SIZE } from '../mm/page-table';
import {
  PTE_DEVICE_EXCLUSIVE,
  PTE_DEVICE_PRIVATE,
  PTE_HUGE,
  PTE_MIGRATION,
  PTE_MIGRATION_WRITE,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SPECIAL,
  PTE_SWAP,
  PTE_TABLE,
  PTE_WRITE,
} from '../mm/pte';
import type { VmAreaStruct } from '../mm/vma';
import { VM_HUGETLB, VM_IO, VM_PFNMAP, VM_READ, VM_WRITE } from '../mm/vm-flags';
import { mmuIntervalCheckRetry } from '../mmu-notifier/interval-notifier';
import type { MmuIntervalNotifier } from '../mmu-notifier/types';
import { HMM_COST_DEFAULTS, type HmmCosts } from './hmm-config';

/** HMM_PFN_VALID (output): the entry maps a page, at least readable. */
export const HMM_PFN_VALID = 1 << 11;
/** HMM_PFN_WRITE (output): the CPU may write it. */
export const HMM_PFN_WRITE = 1 << 10;
/** HMM_PFN_ERROR (output): no page can be mapped here (no VMA, an I/O or unreadable VMA, a special PTE). */
export const HMM_PFN_ERROR = 1 << 9;
/** HMM_PFN_DMA_MAPPED: sticky, carried from input to output (hmm_dma_map_*, not modelled). */
export const HMM_PFN_DMA_MAPPED = 1 << 8;
/** HMM_PFN_P2PDMA: sticky, carried from input to output (not modelled). */
export const HMM_PFN_P2PDMA = 1 << 7;
/** HMM_PFN_P2PDMA_BUS: sticky, carried from input to output (not modelled). */
export const HMM_PFN_P2PDMA_BUS = 1 << 6;
/** Shift of the mapping order (log2 of the pages the CPU maps with one entry; 5 bits). */
export const HMM_PFN_ORDER_SHIFT = 0;
/** The order bits. */
export const HMM_PFN_ORDER_MASK = 0x1f << HMM_PFN_ORDER_SHIFT;
/** HMM_PFN_REQ_FAULT (input): make the entry valid, faulting if needed. */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
/** HMM_PFN_REQ_WRITE (input): make it writable too. */
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;
/** Every flag bit (HMM_PFN_FLAGS). */
export const HMM_PFN_FLAGS = (1 << 12) - 1;
/** svasim: the pfn sits above the 12 flag bits. */
export const HMM_PFN_PFN_SHIFT = 12;
const PFN_UNIT = 2 ** HMM_PFN_PFN_SHIFT;
/** Flags carried from input to output (HMM_PFN_INOUT_FLAGS). */
const HMM_PFN_INOUT_FLAGS = HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS;

const HMM_NEED_FAULT = 1;
const HMM_NEED_WRITE_FAULT = 2;
const HMM_NEED_ALL_BITS = HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;

/** After this many -EBUSY passes without progress, give the -EBUSY to the caller (a livelock guard). */
const MAX_STALLED_PASSES = 16;

const COSTS: HmmCosts = tunableValues(HMM_COST_DEFAULTS) as HmmCosts;

/** hmmPfnToPfn - the pfn of an hmm pfn value (meaningful with HMM_PFN_VALID). */
export function hmmPfnToPfn(hmmPfn: number): number {
  return Math.floor(hmmPfn / PFN_UNIT);
}

/** hmmPfnToPage - the page (pfn) of a valid hmm pfn (hmm_pfn_to_page). */
export function hmmPfnToPage(hmmPfn: number): number {
  return Math.floor(hmmPfn / PFN_UNIT);
}

/** hmmPfnToMapOrder - log2 of the pages the CPU maps with the entry: 9 for a 2 MiB PMD (hmm_pfn_to_map_order). */
export function hmmPfnToMapOrder(hmmPfn: number): number {
  return (hmmPfn & HMM_PFN_ORDER_MASK) >>> HMM_PFN_ORDER_SHIFT;
}

/** makeHmmPfn - the hmm pfn value of @pfn with @flags (HMM_PFN_* and order bits). */
export function makeHmmPfn(pfn: number, flags: number): number {
  return pfn * PFN_UNIT + (flags & HMM_PFN_FLAGS);
}

/**
 * HmmRange - struct hmm_range. The driver fills every field; hmmPfns has one entry per page of
 * [start, end) holding the request (HMM_PFN_REQ_*) on input and the result on output.
 */
export interface HmmRange {
  /** The interval notifier (inserted on the mm) this range is checked against. */
  notifier: MmuIntervalNotifier;
  /** mmuIntervalReadBegin's value for this attempt. */
  notifierSeq: number;
  /** First byte (page aligned). */
  start: number;
  /** One past the last byte (page aligned). */
  end: number;
  hmmPfns: Float64Array;
  /** Request flags for every page (HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE). */
  defaultFlags: number;
  /** Which per-page request bits of hmmPfns count: request = (hmmPfns[i] & mask) | defaultFlags. */
  pfnFlagsMask: number;
  /** Device-private pages whose pagemap owner is this (===) are reported, not faulted back. */
  devPrivateOwner: unknown;
}

/** The walk's state (struct hmm_vma_walk). */
interface Walk {
  range: HmmRange;
  mm: MmStruct;
  last: number;
}

function hmmPteNeedFault(range: HmmRange, req: number, cpuFlags: number): number {
  req = (req & range.pfnFlagsMask) | range.defaultFlags;
  if (!(req & HMM_PFN_REQ_FAULT)) return 0;
  if (req & HMM_PFN_REQ_WRITE && !(cpuFlags & HMM_PFN_WRITE)) return HMM_NEED_FAULT | HMM_NEED_WRITE_FAULT;
  if (!(cpuFlags & HMM_PFN_VALID)) return HMM_NEED_FAULT;
  return 0;
}

function hmmRangeNeedFault(range: HmmRange, start: number, end: number, cpuFlags: number): number {
  if (!((range.defaultFlags | range.pfnFlagsMask) & HMM_PFN_REQ_FAULT)) return 0;
  let required = 0;
  const pfns = range.hmmPfns;
  for (let i = (start - range.start) / PAGE_SIZE, n = (end - range.start) / PAGE_SIZE; i < n; i++) {
    required |= hmmPteNeedFault(range, pfns[i], cpuFlags);
    if (required === HMM_NEED_ALL_BITS) return required;
  }
  return required;
}

/** Store the output of page @i: the sticky input flags plus @pfn and @flags. */
function setPfn(range: HmmRange, i: number, pfn: number, flags: number): void {
  const pfns = range.hmmPfns;
  pfns[i] = (pfns[i] & HMM_PFN_INOUT_FLAGS) + pfn * PFN_UNIT + flags;
}

/** hmm_pfns_fill: every page of [start, end) gets @flags and no pfn. */
function hmmPfnsFill(range: HmmRange, start: number, end: number, flags: number): number {
  for (let i = (start - range.start) / PAGE_SIZE, n = (end - range.start) / PAGE_SIZE; i < n; i++)
    setPfn(range, i, 0, flags);
  return 0;
}

/**
 * hmm_vma_fault: fault in every page of [addr, end) (FAULT_FLAG_REMOTE, and FAULT_FLAG_WRITE
 * when a write is needed), then -EBUSY so the walk starts again at @addr. -EPERM for a write
 * into a VMA without VM_WRITE, -EFAULT when a fault fails.
 */
function hmmVmaFault(w: Walk, vma: VmAreaStruct, addr: number, end: number, required: number): number {
  w.last = addr;
  let flags = FAULT_FLAG_REMOTE;
  if (required & HMM_NEED_WRITE_FAULT) {
    if (!(vma.flags & VM_WRITE)) return -ERRNO.EPERM;
    flags |= FAULT_FLAG_WRITE;
  }
  for (let a = addr; a < end; a += PAGE_SIZE)
    if (handleMmFault(vma, a, flags) & VM_FAULT_ERROR) return -ERRNO.EFAULT;
  return -ERRNO.EBUSY;
}

/** hmm_vma_walk_hole: nothing mapped in [addr, end) (@vma null: no VMA at all). */
function hmmVmaWalkHole(w: Walk, vma: VmAreaStruct | null, addr: number, end: number): number {
  const required = hmmRangeNeedFault(w.range, addr, end, 0);
  if (!vma) return required ? -ERRNO.EFAULT : hmmPfnsFill(w.range, addr, end, HMM_PFN_ERROR);
  if (required) return hmmVmaFault(w, vma, addr, end, required);
  return hmmPfnsFill(w.range, addr, end, 0);
}

/** pte_to_hmm_pfn_flags for a present leaf entry (0 for PROT_NONE: it must fault). */
function leafFlags(hi: number): number {
  if ((hi & (PTE_PRESENT | PTE_PROTNONE)) !== PTE_PRESENT) return 0;
  return hi & PTE_WRITE ? HMM_PFN_VALID | HMM_PFN_WRITE : HMM_PFN_VALID;
}

/** hmm_vma_handle_pte: one PTE at @addr; @end bounds what a fault from here covers. */
function hmmVmaHandlePte(
  w: Walk,
  vma: VmAreaStruct,
  addr: number,
  end: number,
  t: Uint32Array,
  slot: number,
): number {
  const range = w.range;
  const core = w.mm.core;
  const i = (addr - range.start) / PAGE_SIZE;
  const req = range.hmmPfns[i];
  const hi = t[slot + 1];
  const lo = t[slot];
  if (hi === 0) {
    const required = hmmPteNeedFault(range, req, 0);
    if (required) return hmmVmaFault(w, vma, addr, end, required);
    setPfn(range, i, 0, 0);
    return 0;
  }
  if (!(hi & PTE_PRESENT)) {
    // Device-private pages owned by the caller are reported, not faulted back.
    if (hi & PTE_DEVICE_PRIVATE) {
      const pgmap = pagePgmap(core, lo);
      if (pgmap && pgmap.owner === range.devPrivateOwner) {
        setPfn(range, i, lo, HMM_PFN_VALID | (hi & PTE_MIGRATION_WRITE ? HMM_PFN_WRITE : 0));
        return 0;
      }
    }
    const required = hmmPteNeedFault(range, req, 0);
    if (!required) {
      setPfn(range, i, 0, 0);
      return 0;
    }
    if (hi & (PTE_SWAP | PTE_DEVICE_PRIVATE | PTE_DEVICE_EXCLUSIVE))
      return hmmVmaFault(w, vma, addr, end, required);
    if (hi & PTE_MIGRATION) {
      // migration_entry_wait: the fault path waits for the copy (or cancels a device migration).
      w.last = addr;
      handleMmFault(vma, addr, FAULT_FLAG_REMOTE);
      return -ERRNO.EBUSY;
    }
    return -ERRNO.EFAULT;
  }
  const cpuFlags = leafFlags(hi);
  const required = hmmPteNeedFault(range, req, cpuFlags);
  if (required) return hmmVmaFault(w, vma, addr, end, required);
  // vm_normal_page: no struct page behind a special entry; the zero page counts as a page.
  if ((hi & PTE_SPECIAL || lo >= core.frames.count) && lo !== core.alloc.zeroPfn) {
    if (hmmPteNeedFault(range, req, 0)) return -ERRNO.EFAULT;
    setPfn(range, i, 0, HMM_PFN_ERROR);
    return 0;
  }
  setPfn(range, i, lo, cpuFlags);
  return 0;
}

/** hmm_vma_walk_pmd for [start, end) inside one PMD of a VMA that is not hugetlb. */
function hmmVmaWalkPmd(w: Walk, vma: VmAreaStruct, start: number, end: number): number {
  const range = w.range;
  const pt = w.mm.pgtable;
  const pmd = pt.walk(start, false, LEVEL_PMD);
  const pmdHi = pmd && pt.level === LEVEL_PMD ? pmd[pt.slot + 1] : 0;
  if (!pmd || pmdHi === 0) return hmmVmaWalkHole(w, vma, start, end);
  if (!(pmdHi & PTE_TABLE)) {
    if (pmdHi & PTE_MIGRATION) {
      // A THP being migrated.
      if (hmmRangeNeedFault(range, start, end, 0)) {
        w.last = start;
        handleMmFault(vma, start, FAULT_FLAG_REMOTE);
        return -ERRNO.EBUSY;
      }
      return hmmPfnsFill(range, start, end, 0);
    }
    if (!(pmdHi & PTE_PRESENT) || !(pmdHi & PTE_HUGE)) {
      if (hmmRangeNeedFault(range, start, end, 0)) return -ERRNO.EFAULT;
      return hmmPfnsFill(range, start, end, HMM_PFN_ERROR);
    }
    // hmm_vma_handle_pmd: a transparent huge page.
    const order = Math.log2(LEVEL_SIZE[LEVEL_PMD] / PAGE_SIZE);
    const cpuFlags = (pmdHi & PTE_PROTNONE ? 0 : leafFlags(pmdHi)) | (order << HMM_PFN_ORDER_SHIFT);
    const required = hmmRangeNeedFault(range, start, end, cpuFlags);
    if (required) return hmmVmaFault(w, vma, start, end, required);
    const pfn = pmd[pt.slot] + (start % LEVEL_SIZE[LEVEL_PMD]) / PAGE_SIZE;
    for (let a = start, k = 0; a < end; a += PAGE_SIZE, k++)
      setPfn(range, (a - range.start) / PAGE_SIZE, pfn + k, cpuFlags);
    return 0;
  }
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const t = pt.walk(addr, false);
    if (!t || pt.level !== LEVEL_PTE) return hmmVmaWalkHole(w, vma, addr, end);
    const r = hmmVmaHandlePte(w, vma, addr, end, t, pt.slot);
    if (r) return r;
  }
  return 0;
}

/**
 * hmm_vma_walk_hugetlb_entry for [start, end) inside one huge page: only the first page's
 * request decides whether the whole huge page is faulted.
 */
function hmmVmaWalkHugetlb(w: Walk, vma: VmAreaStruct, start: number, end: number): number {
  const range = w.range;
  const size = vma.hugeSize;
  const level = size === LEVEL_SIZE[LEVEL_PUD] ? LEVEL_PUD : LEVEL_PMD;
  const base = Math.floor(start / size) * size;
  const pt = w.mm.pgtable;
  const t = pt.walk(base, false, level);
  const found = t && pt.level === level;
  const hi = found ? t[pt.slot + 1] : 0;
  const lo = found ? t[pt.slot] : 0;
  const order = Math.log2(size / PAGE_SIZE);
  const cpuFlags = leafFlags(hi) | (order << HMM_PFN_ORDER_SHIFT);
  const i = (start - range.start) / PAGE_SIZE;
  const required = hmmPteNeedFault(range, range.hmmPfns[i], cpuFlags);
  if (required) return hmmVmaFault(w, vma, start, end, required);
  const pfn = lo + (start - base) / PAGE_SIZE;
  for (let a = start, k = 0; a < end; a += PAGE_SIZE, k++) setPfn(range, i + k, pfn + k, cpuFlags);
  return 0;
}

/** walk_page_range over [start, end) with hmm's callbacks. */
function walkPageRange(w: Walk, start: number, end: number): number {
  const range = w.range;
  const mm = w.mm;
  let addr = start;
  while (addr < end) {
    const vma = mm.findVma(addr);
    if (!vma || vma.start >= end) return hmmVmaWalkHole(w, null, addr, end);
    if (vma.start > addr) {
      const r = hmmVmaWalkHole(w, null, addr, vma.start);
      if (r) return r;
      addr = vma.start;
    }
    const vend = Math.min(end, vma.end);
    // hmm_vma_walk_test: I/O, PFN and unreadable VMAs are errors, hard ones when a fault is wanted.
    if (vma.flags & (VM_IO | VM_PFNMAP) || !(vma.flags & VM_READ)) {
      if (hmmRangeNeedFault(range, addr, vend, 0)) return -ERRNO.EFAULT;
      hmmPfnsFill(range, addr, vend, HMM_PFN_ERROR);
      addr = vend;
      continue;
    }
    const step = vma.flags & VM_HUGETLB ? vma.hugeSize : LEVEL_SIZE[LEVEL_PMD];
    while (addr < vend) {
      const next = Math.min(vend, (Math.floor(addr / step) + 1) * step);
      const r =
        vma.flags & VM_HUGETLB ? hmmVmaWalkHugetlb(w, vma, addr, next) : hmmVmaWalkPmd(w, vma, addr, next);
      if (r) return r;
      mm.core.charge(((next - addr) / PAGE_SIZE) * COSTS.walkPerPage);
      addr = next;
    }
  }
  return 0;
}

/**
 * hmmRangeFault - fill range.hmmPfns for [range.start, range.end) of the notifier's mm, faulting
 * pages in where the request (`(hmmPfns[i] & pfnFlagsMask) | defaultFlags`) asks
 * (hmm_range_fault). Each entry becomes pfn | HMM_PFN_VALID [| HMM_PFN_WRITE] | order, 0 for
 * nothing (not requested), or HMM_PFN_ERROR; sticky HMM_PFN_DMA_MAPPED/P2PDMA bits are kept.
 * - the zero page is reported like any page (valid, read-only);
 * - device-private pages whose owner is range.devPrivateOwner are reported without faulting;
 *   others, swap and device-exclusive entries are faulted in when requested (migrating the page
 *   back, revoking exclusivity), else reported as 0;
 * - a migration entry that must be faulted waits for the migration, then -EBUSY;
 * - a hole in a VMA is faulted when requested, else 0; a hole with no VMA, or a VM_IO /
 *   VM_PFNMAP / !VM_READ VMA, or a special PTE, is HMM_PFN_ERROR, or -EFAULT when requested.
 * Faults do not change notifierSeq by themselves; an invalidation meanwhile does, and the next
 * pass then returns -EBUSY.
 *
 * Return: 0; -EBUSY (mmuIntervalCheckRetry says the range was invalidated since notifierSeq:
 * start again from mmuIntervalReadBegin); -EPERM (a write requested in a VMA without VM_WRITE);
 * -EFAULT (a requested page cannot be made valid); -EINVAL (svasim: a notifier that is not
 * inserted, start/end not page aligned or start >= end, hmmPfns not a Float64Array of at least
 * the range's pages). Entries before the failing page hold their output, the rest their input.
 * Context: the driver; the kernel holds the mmap lock (svasim has none to take).
 */
export function hmmRangeFault(range: HmmRange): number {
  if (!range || typeof range !== 'object') return -ERRNO.EINVAL;
  const mm = range.notifier?.mm;
  if (!mm) return -ERRNO.EINVAL;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return -ERRNO.EINVAL;
  if (start % PAGE_SIZE || end % PAGE_SIZE || start < 0 || start >= end) return -ERRNO.EINVAL;
  if (!(range.hmmPfns instanceof Float64Array) || range.hmmPfns.length < (end - start) / PAGE_SIZE)
    return -ERRNO.EINVAL;
  const w: Walk = { range, mm, last: start };
  let stalled = 0;
  let ret: number;
  do {
    if (mmuIntervalCheckRetry(range.notifier, range.notifierSeq)) return -ERRNO.EBUSY;
    const from = w.last;
    ret = walkPageRange(w, w.last, end);
    stalled = ret === -ERRNO.EBUSY && w.last === from ? stalled + 1 : 0;
    if (stalled >= MAX_STALLED_PASSES) return -ERRNO.EBUSY;
  } while (ret === -ERRNO.EBUSY);
  return ret;
}
