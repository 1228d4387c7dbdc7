import { HPAGE_PMD_NR, PAGE_SIZE, PMD_SIZE } from '../uapi/mman';
import { scheduleBackground } from '../sim/types';
import { VM } from '../sim/vmstat';
import { GFP_TRANSHUGE } from './gfp';
import { HPAGE_PMD_ORDER, thpConfig, vmaThpEnabled } from './huge-memory';
import {
  MR_THP_COLLAPSE,
  folioCallbackRefs,
  migrateCallbackActive,
  migrateCallbackRestore,
  migrateCallbackRevoke,
} from './migrate-callback';
import { vmaMigrationControlled } from './migration-control';
import type { MmCore } from './mm-core';
import type { MmStruct } from './mm-struct';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_CLEAR } from './notifier-hooks';
import { PG_anon, PG_isolated, PG_mlocked, PG_tail } from './page-flags';
import { putPage } from './page-ref';
import { LEVEL_PMD } from './page-table';
import { PTE_DIRTY, PTE_HUGE, PTE_PRESENT, PTE_SPECIAL, PTE_USER, PTE_WRITE, PTE_YOUNG } from './pte';
import { folioAddNewAnonRmap, mlockFolio, munlockFolio, recheckMlock } from './rmap';
import type { VmAreaStruct } from './vma';
import { VM_LOCKED, VM_WRITE } from './vm-flags';

/** Why a range was not collapsed (enum scan_result, the subset modelled). */
export const SCAN_SUCCEED = 1;
export const SCAN_PMD_MAPPED = 3;
export const SCAN_EXCEED_NONE_PTE = 4;
export const SCAN_EXCEED_SWAP_PTE = 5;
export const SCAN_EXCEED_SHARED_PTE = 6;
export const SCAN_PAGE_RO = 7;
export const SCAN_LACK_REFERENCED_PAGE = 8;
export const SCAN_PAGE_NULL = 9;
export const SCAN_PAGE_COUNT = 13;
export const SCAN_PAGE_ANON = 15;
export const SCAN_PAGE_COMPOUND = 17;
export const SCAN_ALLOC_HUGE_PAGE_FAIL = 19;
export const SCAN_VMA_CHECK = 21;

/** khugepaged's counters (/sys/kernel/mm/transparent_hugepage/khugepaged/). */
export interface KhugepagedStats {
  pagesCollapsed: number;
  fullScans: number;
  /** Ranges refused because a page had extra references (pins): SCAN_PAGE_COUNT. */
  failedPageCount: number;
  /** CPU time khugepaged spent, ns. */
  cpuNs: number;
}

interface State {
  stats: KhugepagedStats;
  /** The mm and address the scan resumes at. */
  mmIndex: number;
  address: number;
  timer: number;
}
const states = new WeakMap<MmCore, State>();

/** khugepagedStats - the counters of one kernel's khugepaged. */
export function khugepagedStats(core: MmCore): KhugepagedStats {
  return state(core).stats;
}

function state(core: MmCore): State {
  let s = states.get(core);
  if (!s) {
    s = {
      stats: { pagesCollapsed: 0, fullScans: 0, failedPageCount: 0, cpuNs: 0 },
      mmIndex: 0,
      address: 0,
      timer: 0,
    };
    states.set(core, s);
  }
  return s;
}

/**
 * hpageCollapseScanPmd - decide whether the 2 MiB at `base` of `vma` can be collapsed
 * (hpage_collapse_scan_pmd): PTEs that are empty or map the zero page up to max_ptes_none,
 * shared pages up to max_ptes_shared, no swap or migration entries beyond max_ptes_swap (svasim
 * does not swap pages in for a collapse: any is refused), every page an exclusive-or-shared
 * small anonymous page whose refcount equals its mappings (a GUP pin fails it: SCAN_PAGE_COUNT),
 * at least one recently referenced. Returns a SCAN_* code.
 */
export function hpageCollapseScanPmd(vma: VmAreaStruct, base: number): number {
  const mm = vma.mm;
  const core = mm.core;
  const cfg = thpConfig(core);
  const f = core.frames;
  const pt = mm.pgtable;
  // A locked range of an mm with MMF_MIGRATION_CONTROL stays as it is (migration-control.ts).
  if (vmaMigrationControlled(vma)) return SCAN_VMA_CHECK;
  const pmd = pt.walk(base, false, LEVEL_PMD);
  if (!pmd || pt.level !== LEVEL_PMD) return SCAN_PAGE_NULL;
  const pmdHi = pmd[pt.slot + 1];
  if (pmdHi & PTE_HUGE) return SCAN_PMD_MAPPED;
  if (pmdHi === 0) return SCAN_PAGE_NULL;
  let none = 0;
  let shared = 0;
  let referenced = 0;
  let writable = false;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const t = pt.walk(base + i * PAGE_SIZE, false);
    const hi = t ? t[pt.slot + 1] : 0;
    if (hi === 0 || (hi & PTE_SPECIAL && t![pt.slot] === core.alloc.zeroPfn)) {
      if (++none > cfg.maxPtesNone) return SCAN_EXCEED_NONE_PTE;
      continue;
    }
    if (!(hi & PTE_PRESENT)) return SCAN_EXCEED_SWAP_PTE;
    if (hi & PTE_SPECIAL) return SCAN_PAGE_NULL;
    const pfn = t![pt.slot];
    if (f.flags[pfn] & PG_tail || f.getOrder(pfn) > 0) return SCAN_PAGE_COMPOUND;
    if (!(f.flags[pfn] & PG_anon)) return SCAN_PAGE_ANON;
    if (f.flags[pfn] & PG_isolated) return SCAN_PAGE_COUNT;
    if (f.mapcount[pfn] > 1 && ++shared > cfg.maxPtesShared) return SCAN_EXCEED_SHARED_PTE;
    // is_refcount_suitable: anything beyond the mappings is a GUP reference or pin, unless it is a
    // short-term reference whose migration callback lets go (migrate-callback.ts).
    if (
      f.refcount[pfn] !== f.mapcount[pfn] &&
      f.refcount[pfn] !== f.mapcount[pfn] + folioCallbackRefs(core, pfn)
    )
      return SCAN_PAGE_COUNT;
    if (hi & PTE_YOUNG) referenced++;
    if (hi & PTE_WRITE) writable = true;
  }
  if (!writable) return SCAN_PAGE_RO;
  if (referenced === 0) return SCAN_LACK_REFERENCED_PAGE;
  return SCAN_SUCCEED;
}

/**
 * collapseHugePage - replace the 512 PTEs of [base, base + 2 MiB) by one PMD mapping a new huge
 * page holding the same bytes (collapse_huge_page). Secondary MMUs are told (CLEAR); each old
 * page loses this mapping and is freed if nothing else holds it. Returns SCAN_SUCCEED,
 * SCAN_ALLOC_HUGE_PAGE_FAIL, or the scan's refusal.
 */
export function collapseHugePage(vma: VmAreaStruct, base: number): number {
  const check = hpageCollapseScanPmd(vma, base);
  if (check !== SCAN_SUCCEED) return check;
  const mm = vma.mm;
  const core = mm.core;
  const f = core.frames;
  const pt = mm.pgtable;
  const head = core.alloc.allocPages(GFP_TRANSHUGE, HPAGE_PMD_ORDER, mm.node);
  if (head < 0) {
    core.vmstat.inc(VM.thp_collapse_alloc_failed);
    return SCAN_ALLOC_HUGE_PAGE_FAIL;
  }
  // The allocation may have reclaimed or migrated pages of this very range: check again, as
  // collapse_huge_page does after taking the mmap lock for write.
  const recheck = hpageCollapseScanPmd(vma, base);
  if (recheck !== SCAN_SUCCEED) {
    core.alloc.freePages(head, HPAGE_PMD_ORDER);
    return recheck;
  }
  // Holders of short-term references let go of the old pages; they get the new ones back below.
  const held: number[] = [];
  const heldTo: number[] = [];
  for (let i = 0; i < HPAGE_PMD_NR && migrateCallbackActive(core); i++) {
    const t = pt.walk(base + i * PAGE_SIZE, false);
    if (!t || (t[pt.slot + 1] & (PTE_PRESENT | PTE_SPECIAL)) !== PTE_PRESENT) continue;
    if (!folioCallbackRefs(core, t[pt.slot])) continue;
    held.push(t[pt.slot]);
    heldTo.push(head + i);
  }
  if (held.length) migrateCallbackRevoke(core, held, MR_THP_COLLAPSE);
  const range = mmuNotifierInvalidateRangeStart(mm, base, base + PMD_SIZE, MMU_NOTIFY_CLEAR);
  const old: number[] = [];
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const t = pt.walk(base + i * PAGE_SIZE, false);
    if (!t) continue;
    const hi = t[pt.slot + 1];
    if (!(hi & PTE_PRESENT)) continue;
    const pfn = t[pt.slot];
    pt.set(pt.tableId, pt.slot, 0, 0);
    if (hi & PTE_SPECIAL) continue; // the zero page
    core.data.copyPage(head + i, pfn);
    old.push(pfn);
  }
  // The PTE table emptied and was freed; map the new folio with one PMD entry.
  folioAddNewAnonRmap(core, vma, head, base);
  core.vmstat.inc(VM.nr_anon_pages, HPAGE_PMD_NR);
  mm.rssAnon += HPAGE_PMD_NR - old.length;
  for (const pfn of old) {
    const left = --f.mapcount[pfn];
    if (left === 0) core.vmstat.dec(VM.nr_anon_pages);
    const mlocked = (f.flags[pfn] & PG_mlocked) !== 0;
    if (mlocked && left === 0) munlockFolio(core, pfn);
    putPage(core, pfn);
    if (mlocked && left > 0 && f.refcount[pfn] > 0) recheckMlock(core, pfn);
  }
  if (vma.flags & VM_LOCKED) mlockFolio(core, head);
  pt.walk(base, true, LEVEL_PMD);
  const w = vma.flags & VM_WRITE ? PTE_WRITE | PTE_DIRTY : 0;
  pt.set(pt.tableId, pt.slot, head, PTE_PRESENT | PTE_USER | PTE_YOUNG | PTE_HUGE | w);
  mmuNotifierInvalidateRangeEnd(range);
  if (held.length) migrateCallbackRestore(core, held, heldTo);
  core.vmstat.inc(VM.thp_collapse_alloc);
  return SCAN_SUCCEED;
}

/**
 * khugepagedScan - one pass of khugepaged (khugepaged_do_scan): walk up to pages_to_scan PTEs'
 * worth of THP-enabled anonymous memory, resuming where the last pass stopped, and collapse
 * what qualifies. Returns the number of huge pages made.
 */
export function khugepagedScan(core: MmCore): number {
  const s = state(core);
  const cfg = thpConfig(core);
  let budget = cfg.pagesToScan;
  let made = 0;
  const mms = [...core.mms].filter((mm) => mm.alive);
  if (mms.length === 0) return 0;
  let visitedMms = 0;
  while (budget > 0 && visitedMms <= mms.length) {
    if (s.mmIndex >= mms.length) {
      s.mmIndex = 0;
      s.address = 0;
      s.stats.fullScans++;
    }
    const mm: MmStruct = mms[s.mmIndex];
    for (const vma of [...mm.vmas]) {
      if (vma.end <= s.address || !vmaThpEnabled(core, vma)) continue;
      let base = Math.max(
        Math.ceil(vma.start / PMD_SIZE) * PMD_SIZE,
        Math.ceil(s.address / PMD_SIZE) * PMD_SIZE,
      );
      for (; base + PMD_SIZE <= vma.end && budget > 0; base += PMD_SIZE) {
        budget -= HPAGE_PMD_NR;
        s.stats.cpuNs += HPAGE_PMD_NR * cfg.scanPteNs;
        const r = collapseHugePage(vma, base);
        if (r === SCAN_SUCCEED) {
          made++;
          s.stats.pagesCollapsed++;
          s.stats.cpuNs += cfg.collapseNs;
        } else if (r === SCAN_PAGE_COUNT) s.stats.failedPageCount++;
        else if (r === SCAN_ALLOC_HUGE_PAGE_FAIL) return made;
        s.address = base + PMD_SIZE;
      }
      if (budget <= 0) break;
    }
    if (budget > 0) {
      // This mm is done: go on with the next one.
      s.mmIndex++;
      s.address = 0;
      visitedMms++;
    }
  }
  return made;
}

/**
 * initKhugepaged - start khugepaged for one kernel (idempotent): a background pass every
 * scan_sleep_millisecs (alloc_sleep_millisecs after an allocation failure) while THP is not
 * 'never'. Background events do not keep the machine busy.
 */
export function initKhugepaged(core: MmCore): void {
  const s = state(core);
  if (s.timer || !core.scheduler) return;
  const sched = core.scheduler;
  const cfg = thpConfig(core);
  const tick = () => {
    let sleep = cfg.scanSleepMs;
    if (core.sysctl.transparent_hugepage !== 'never') {
      const failedBefore = core.vmstat.get(VM.thp_collapse_alloc_failed);
      khugepagedScan(core);
      if (core.vmstat.get(VM.thp_collapse_alloc_failed) > failedBefore) sleep = cfg.allocSleepMs;
    }
    s.timer = scheduleBackground(sched, sleep * 1e6, tick);
  };
  s.timer = scheduleBackground(sched, cfg.scanSleepMs * 1e6, tick);
}
