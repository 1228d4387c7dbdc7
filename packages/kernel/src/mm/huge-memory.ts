import { ERRNO } from '../uapi/errno';
import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, VM_FAULT_FALLBACK, VM_FAULT_SIGBUS } from './fault-flags';
import { GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT } from './gfp';
import type { MmCore } from './mm-core';
import { tunableValues } from './mm-config';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_CLEAR } from './notifier-hooks';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_head,
  PG_isolated,
  PG_lru,
  PG_mlocked,
  PG_tail,
  PG_hugetlb,
} from './page-flags';
import { PG_FLAGS_MASK } from './page-frames';
import { LEVEL_PMD } from './page-table';
import { PTE_DIRTY, PTE_HUGE, PTE_PRESENT, PTE_PROTNONE, PTE_USER, PTE_WRITE, PTE_YOUNG } from './pte';
import { folioAddNewAnonRmap, mlockFolio, rmapWalk } from './rmap';
import { THP_DEFAULTS, type ThpConfig } from './thp-config';
import type { VmAreaStruct } from './vma';
import {
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_LOCKED,
  VM_NOHUGEPAGE,
  VM_SHARED,
  VM_SPECIAL,
  VM_WRITE,
} from './vm-flags';

const configs = new WeakMap<MmCore, ThpConfig>();

/** thpConfig - the THP tunables of one kernel (defaults until changed). */
export function thpConfig(core: MmCore): ThpConfig {
  let c = configs.get(core);
  if (!c) configs.set(core, (c = tunableValues(THP_DEFAULTS) as ThpConfig));
  return c;
}

/** The THP order on x86-64 with 4 KiB pages. */
export const HPAGE_PMD_ORDER = 9;

/**
 * vmaThpEnabled - may anonymous memory of `vma` use transparent huge pages at all
 * (thp_vma_allowable_order, anonymous case)? Per the transparent_hugepage mode: 'always', or
 * 'madvise' with MADV_HUGEPAGE; never for shared, special, hugetlb or MADV_NOHUGEPAGE VMAs.
 */
export function vmaThpEnabled(core: MmCore, vma: VmAreaStruct): boolean {
  const mode = core.sysctl.transparent_hugepage;
  if (mode === 'never') return false;
  const f = vma.flags;
  if (f & (VM_SHARED | VM_SPECIAL | VM_HUGETLB | VM_NOHUGEPAGE) || !vma.isAnonymous()) return false;
  return mode === 'always' || (f & VM_HUGEPAGE) !== 0;
}

/** thpSuitable - does the PMD-aligned 2 MiB around `addr` lie inside `vma`? */
export function thpSuitable(vma: VmAreaStruct, addr: number): boolean {
  const base = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
  return base >= vma.start && base + PMD_SIZE <= vma.end;
}

/**
 * doHugePmdAnonymousPage - a write fault in an empty PMD of a THP-enabled VMA: allocate a
 * 2 MiB folio, clear it and map it with one PMD entry (do_huge_pmd_anonymous_page). Direct
 * compaction is allowed only where defrag permits (MADV_HUGEPAGE regions by default).
 * Returns 0, or -1 to fall back to 4 KiB pages (thp_fault_fallback).
 */
export function doHugePmdAnonymousPage(
  vma: VmAreaStruct,
  address: number,
  tableId: number,
  slot: number,
): number {
  const mm = vma.mm;
  const core = mm.core;
  const cfg = thpConfig(core);
  const base = Math.floor(address / PMD_SIZE) * PMD_SIZE;
  const stall = cfg.defrag === 'always' || (cfg.defrag.includes('madvise') && vma.flags & VM_HUGEPAGE);
  const head = core.alloc.allocPages(stall ? GFP_TRANSHUGE : GFP_TRANSHUGE_LIGHT, HPAGE_PMD_ORDER, mm.node);
  if (head < 0) {
    core.vmstat.inc(VM.thp_fault_fallback);
    return -1;
  }
  folioAddNewAnonRmap(core, vma, head, base);
  mm.rssAnon += HPAGE_PMD_NR;
  core.vmstat.inc(VM.nr_anon_pages, HPAGE_PMD_NR);
  if (vma.flags & VM_LOCKED) mlockFolio(core, head);
  const w = vma.flags & VM_WRITE ? PTE_WRITE | PTE_DIRTY : 0;
  mm.pgtable.set(tableId, slot, head, PTE_PRESENT | PTE_USER | PTE_YOUNG | PTE_HUGE | w);
  core.vmstat.inc(VM.thp_fault_alloc);
  core.charge(cfg.thpFaultNs);
  return 0;
}

/**
 * hugePmdWpPage - a write (or unshare) to a read-only huge PMD (do_huge_pmd_wp_page): an
 * exclusive folio is reused in place; a shared one has its PMD split, and the fault falls back
 * to 4 KiB COW of the one page touched. Returns 0 or VM_FAULT_FALLBACK.
 */
export function hugePmdWpPage(
  vma: VmAreaStruct,
  address: number,
  flags: number,
  tableId: number,
  slot: number,
): number {
  const mm = vma.mm;
  const f = mm.core.frames;
  const t = mm.pgtable.table(tableId);
  const head = t[slot];
  const hi = t[slot + 1];
  if (f.flags[head] & PG_anon_exclusive || (f.refcount[head] === 1 && f.mapcount[head] === 1)) {
    f.flags[head] |= PG_anon_exclusive;
    const w = flags & FAULT_FLAG_WRITE && vma.flags & VM_WRITE ? PTE_WRITE | PTE_DIRTY : 0;
    mm.pgtable.set(tableId, slot, head, hi | w | PTE_YOUNG);
    return 0;
  }
  splitHugePmd(vma, address);
  return VM_FAULT_FALLBACK;
}

/**
 * hugePmdFault - a fault on an existing huge PMD of anonymous memory. Handles write-protect
 * (reuse or split + fallback), PROT_NONE NUMA hints (split, so the hint is handled per page), and
 * spurious faults. Returns 0, VM_FAULT_FALLBACK (retry at PTE level) or error bits.
 */
export function hugePmdFault(
  vma: VmAreaStruct,
  address: number,
  flags: number,
  tableId: number,
  slot: number,
): number {
  const mm = vma.mm;
  const t = mm.pgtable.table(tableId);
  const hi = t[slot + 1];
  if (!(hi & PTE_PRESENT)) return VM_FAULT_SIGBUS;
  if (mm.core.frames.flags[t[slot]] & PG_hugetlb) return VM_FAULT_SIGBUS;
  if (hi & PTE_PROTNONE) {
    splitHugePmd(vma, address);
    return VM_FAULT_FALLBACK;
  }
  if (flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) && !(hi & PTE_WRITE))
    return hugePmdWpPage(vma, address, flags, tableId, slot);
  mm.pgtable.set(tableId, slot, t[slot], hi | PTE_YOUNG);
  return 0;
}

/**
 * splitHugePmd - replace the huge PMD mapping `addr` (if any, anonymous THP only) by a PTE table
 * mapping the folio's 512 pages with the same permissions (__split_huge_pmd). The folio stays
 * one large folio, now PTE-mapped: each entry holds a folio reference. Secondary MMUs are told.
 */
export function splitHugePmd(vma: VmAreaStruct, addr: number): void {
  const mm = vma.mm;
  const core = mm.core;
  const pt = mm.pgtable;
  const base = Math.floor(addr / PMD_SIZE) * PMD_SIZE;
  const t = pt.walk(base, false, LEVEL_PMD);
  if (!t || pt.level !== LEVEL_PMD) return;
  const hi = t[pt.slot + 1];
  if (!(hi & PTE_HUGE) || !(hi & PTE_PRESENT)) return;
  const head = t[pt.slot];
  const f = core.frames;
  if (f.flags[head] & PG_hugetlb) return;
  const range = mmuNotifierInvalidateRangeStart(mm, base, base + PMD_SIZE, MMU_NOTIFY_CLEAR);
  pt.set(pt.tableId, pt.slot, 0, 0);
  const pteHi = hi & ~PTE_HUGE;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    pt.walk(base + i * PAGE_SIZE, true);
    pt.set(pt.tableId, pt.slot, head + i, pteHi);
  }
  // One PMD mapping became 512 PTE mappings of the same folio.
  f.mapcount[head] += HPAGE_PMD_NR - 1;
  f.refcount[head] += HPAGE_PMD_NR - 1;
  mmuNotifierInvalidateRangeEnd(range);
  core.vmstat.inc(core.vmstat.register('thp_split_pmd'));
}

/**
 * splitHugePmdRange - before VMA boundaries or a partial unmap land inside a huge PMD, split the
 * PMDs containing `start` and `end` when they are not PMD-aligned (vma_adjust_trans_huge).
 */
export function splitHugePmdRange(vma: VmAreaStruct, start: number, end: number): void {
  if (vma.flags & VM_HUGETLB) return;
  if (start % PMD_SIZE && start > vma.start) splitHugePmd(vma, start);
  if (end % PMD_SIZE && end < vma.end) splitHugePmd(vma, end);
  if (start % PMD_SIZE && start === vma.start) splitHugePmd(vma, start);
  if (end % PMD_SIZE && end === vma.end) splitHugePmd(vma, end - 1);
}

/**
 * splitFolio - split a large anonymous folio into small pages (split_huge_page): every PMD
 * mapping is split first, then each 4 KiB page becomes its own folio carrying its own mappings
 * and references. Fails with -EBUSY when the folio has references other than its mappings and
 * an isolation (a GUP pin or reference: can_split_folio), -EINVAL for hugetlb or small folios.
 */
export function splitFolio(core: MmCore, head: number): number {
  const f = core.frames;
  const order = f.getOrder(head);
  if (order === 0 || f.flags[head] & PG_hugetlb || !(f.flags[head] & PG_anon)) return -ERRNO.EINVAL;
  const isolated = f.flags[head] & PG_isolated ? 1 : 0;
  if (f.refcount[head] !== f.mapcount[head] + isolated) return -ERRNO.EBUSY;
  // Split every PMD mapping into PTEs.
  const pmdMaps: VmAreaStruct[] = [];
  rmapWalk(core, head, (vma, va) => {
    const pt = vma.mm.pgtable;
    const t = pt.walk(va, false);
    if (t && pt.level === LEVEL_PMD) pmdMaps.push(vma);
    return true;
  });
  const base = f.index[head] * PAGE_SIZE;
  for (const vma of pmdMaps) splitHugePmd(vma, base);
  // Count each subpage's PTE mappings.
  const nr = 1 << order;
  const maps = new Int32Array(nr);
  rmapWalk(core, head, (vma, va) => {
    const pt = vma.mm.pgtable;
    const t = pt.walk(va, false);
    if (t) maps[t[pt.slot] - head]++;
    return true;
  });
  const headFlags = f.flags[head] & PG_FLAGS_MASK & ~(PG_head | PG_tail);
  const mlocked = (f.flags[head] & PG_mlocked) !== 0;
  const mapping = f.mapping[head];
  const index = f.index[head];
  for (let i = 0; i < nr; i++) {
    const p = head + i;
    f.flags[p] = headFlags | (i === 0 && isolated ? PG_isolated : 0);
    if (!(f.flags[p] & PG_isolated)) f.flags[p] |= PG_lru;
    f.mapping[p] = mapping;
    f.index[p] = index + i;
    f.mapcount[p] = maps[i];
    f.refcount[p] = maps[i] + (i === 0 ? isolated : 0);
    if (i === 1) f.privateData[p] = 0; // the large folio's pincount slot
  }
  // Pages nobody maps any more are freed (the deferred split's job in the kernel).
  for (let i = 0; i < nr; i++) {
    const p = head + i;
    if (f.refcount[p] === 0) {
      if (mlocked) core.vmstat.dec(VM.nr_mlock);
      if (f.flags[p] & PG_anon) core.vmstat.dec(VM.nr_anon_pages);
      core.alloc.freePages(p, 0);
    }
  }
  core.vmstat.inc(VM.thp_split_page);
  return 0;
}
