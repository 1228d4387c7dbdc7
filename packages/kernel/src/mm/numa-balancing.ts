import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { scheduleBackground } from '../sim/types';
import { VM } from '../sim/vmstat';
import { setFaultHooks } from './fault';
import { GFP_HIGHUSER_MOVABLE, __GFP_NORETRY, __GFP_NOWARN, __GFP_RECLAIM, __GFP_THISNODE } from './gfp';
import { emptyMigrateStats, isolateLruFolio, migratePages, putbackMovableFolio } from './migrate';
import { MIGRATE_ASYNC, MR_NUMA_MISPLACED } from './migrate-types';
import { vmaMigrationControlled } from './migration-control';
import type { MmCore } from './mm-core';
import { tunableValues } from './mm-config';
import type { MmStruct } from './mm-struct';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_PROTECTION_VMA, type MmuNotifierRange } from './notifier-hooks';
import { NUMA_BALANCING_DEFAULTS, type NumaBalancingConfig } from './numa-balancing-config';
import { PG_device_private } from './page-flags';
import { folioHead, folioMaybeDmaPinned } from './page-ref';
import { LEVEL_PTE, LEVEL_SIZE } from './page-table';
import type { ZoneInfo } from './phys-types';
import { PTE_HUGE, PTE_NUMA, PTE_PRESENT, PTE_PROTNONE, PTE_SPECIAL, PTE_WRITE, PTE_YOUNG } from './pte';
import type { VmAreaStruct } from './vma';
import {
  VM_ACCESS_FLAGS,
  VM_DEVICE,
  VM_HUGETLB,
  VM_IO,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_PFNMAP,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './vm-flags';

/** task_numa_fault flags (include/linux/sched/numa_balancing.h). */
export const TNF_MIGRATED = 0x01;
export const TNF_NO_GROUP = 0x02;
export const TNF_SHARED = 0x04;
export const TNF_FAULT_LOCAL = 0x08;
export const TNF_MIGRATE_FAIL = 0x10;

/** update_task_scan_period's ratio resolution and the locality it aims for (70 %). */
const NUMA_PERIOD_SLOTS = 10;
const NUMA_PERIOD_THRESHOLD = 7;
/** task_numa_work clamps its ranges to huge-page boundaries (HPAGE_SIZE). */
const HPAGE_SIZE = 2 * 1024 * 1024;
const MB = 1024 * 1024;
const NS_PER_MS = 1_000_000;
/** cpupid packing: pid * CPUPID_NID_RANGE + nid (nodes are fewer than 64, see kernel-options). */
const CPUPID_NID_RANGE = 1024;

/** Options of initNumaBalancing. */
export interface NumaBalancingOptions {
  /** Overrides of NUMA_BALANCING_DEFAULTS. */
  config?: Partial<NumaBalancingConfig>;
  /**
   * Charge a scan's CPU time to the process owning `mm` (the kernel runs task_numa_work in the
   * task's own context, on its return to user space). Without it the time is owed by the mm and
   * charged at its next NUMA hinting fault.
   */
  chargeScan?(mm: MmStruct, ns: number): void;
}

/** Per-address-space scanner state (the mm's numa_* fields and its one task's). */
interface NumaMmState {
  /** mm->numa_next_scan, in simulated ns. */
  nextScan: number;
  /** p->numa_scan_period, in ms. */
  scanPeriodMs: number;
  /** The first task_numa_work ran (node_stamp != 0). */
  started: boolean;
  /** mm->numa_scan_offset. */
  scanOffset: number;
  /** mm->numa_scan_seq: completed passes over the address space. */
  scanSeq: number;
  /** p->numa_scan_seq: the pass task_numa_placement last looked at. */
  placementSeq: number;
  /** p->numa_preferred_nid has been chosen (some fault was recorded). */
  hasPreferred: boolean;
  /** p->numa_faults_locality[0..2]: remote, local, failed migrations (pages). */
  faultsRemote: number;
  faultsLocal: number;
  faultsFailed: number;
  /** Faults since the last placement, by kind (numa_faults[NUMA_MEMBUF]). */
  bufPrivate: number;
  bufShared: number;
  /** Scan time not yet charged (no chargeScan). */
  scanDebtNs: number;
  scans: number;
  pteUpdates: number;
  hintFaults: number;
  hintFaultsLocal: number;
  pagesMigrated: number;
  migrateFailed: number;
}

/** Per-kernel state. */
interface NumaCoreState {
  readonly cfg: NumaBalancingConfig;
  readonly chargeScan: ((mm: MmStruct, ns: number) => void) | null;
  readonly mms: WeakMap<MmStruct, NumaMmState>;
  /** folio->_last_cpupid, by head pfn (absent: never hint-faulted, cpupid unset). */
  readonly lastCpupid: Map<number, number>;
  readonly vmHintFaultsLocal: number;
  timer: number;
}

const stateOf = new WeakMap<MmCore, NumaCoreState>();

/** NumaMmStats - one address space's NUMA balancing state and counters. */
export interface NumaMmStats {
  /** Current scan period (p->numa_scan_period), ms. */
  scanPeriodMs: number;
  /** Completed passes over the address space (numa_scan_seq). */
  scanSeq: number;
  /** Where the next scan starts (numa_scan_offset). */
  scanOffset: number;
  /** Simulated time of the next scan, ns. */
  nextScanNs: number;
  scans: number;
  pteUpdates: number;
  hintFaults: number;
  hintFaultsLocal: number;
  pagesMigrated: number;
  migrateFailed: number;
}

/**
 * initNumaBalancing - enable automatic NUMA balancing's machinery for one kernel (the
 * CONFIG_NUMA_BALANCING parts of sched/fair.c, mm/memory.c and mm/migrate.c): installs the NUMA
 * hinting fault handler (do_numa_page) and, on a machine with a scheduler and more than one node,
 * starts the scanner daemon, which gives every address space (new ones too) a task_numa_work
 * pass whenever its scan period has elapsed, while kernel.numa_balancing is 1.
 * Idempotent: a second call for the same MmCore changes nothing (its options are ignored).
 * Context: boot. The daemon runs as background events, so runUntilIdle still terminates.
 */
export function initNumaBalancing(core: MmCore, opts: NumaBalancingOptions = {}): void {
  if (stateOf.has(core)) return;
  const cfg: NumaBalancingConfig = {
    ...(tunableValues(NUMA_BALANCING_DEFAULTS) as NumaBalancingConfig),
    ...opts.config,
  };
  const st: NumaCoreState = {
    cfg,
    chargeScan: opts.chargeScan ?? null,
    mms: new WeakMap(),
    lastCpupid: new Map(),
    vmHintFaultsLocal: core.vmstat.register('numa_hint_faults_local'),
    timer: -1,
  };
  stateOf.set(core, st);
  setFaultHooks(core, { numaHint: doNumaPage });
  if (core.scheduler && core.alloc.nodes.length > 1) armScanner(core, st, cfg.scanTickMs * NS_PER_MS);
}

/**
 * numaBalancingConfig - the live tunables of a kernel where initNumaBalancing ran (changes take
 * effect at the next scan), or null.
 */
export function numaBalancingConfig(core: MmCore): NumaBalancingConfig | null {
  return stateOf.get(core)?.cfg ?? null;
}

/**
 * setProcessNode - the scheduler moved the task that owns `mm` to a CPU of node `nid`: its new
 * allocations come from that node (local allocation) and NUMA balancing pulls its memory there.
 * Returns 0, or -EINVAL for a node the machine does not have.
 */
export function setProcessNode(mm: MmStruct, nid: number): number {
  if (!Number.isInteger(nid) || nid < 0 || nid >= mm.core.alloc.nodes.length) return -ERRNO.EINVAL;
  mm.node = nid;
  return 0;
}

/** pfnToNid - the node of a pfn (page_to_nid), without allocating. -1 beyond RAM. */
export function pfnToNid(core: MmCore, pfn: number): number {
  for (const n of core.alloc.nodes) if (pfn >= n.startPfn && pfn < n.startPfn + n.spannedPages) return n.nid;
  return -1;
}

/**
 * showNumaMap - pages of `mm` resident on each node (the N<nid>= figures of
 * /proc/PID/numa_maps, summed over the VMAs). The zero page and PFN mappings are not counted.
 * Returns an array indexed by node id.
 */
export function showNumaMap(mm: MmStruct): number[] {
  const core = mm.core;
  const out = new Array<number>(core.alloc.nodes.length).fill(0);
  const pt = mm.pgtable;
  for (const vma of mm.vmas) {
    pt.forEachEntry(vma.start, vma.end, (_va, tableId, slot, level) => {
      const t = pt.table(tableId);
      if ((t[slot + 1] & (PTE_PRESENT | PTE_SPECIAL)) !== PTE_PRESENT) return;
      const nid = pfnToNid(core, t[slot]);
      if (nid >= 0) out[nid] += LEVEL_SIZE[level] / PAGE_SIZE;
    });
  }
  return out;
}

/** numaMmStats - the scanner's view of `mm`, or null before its first scan or without initNumaBalancing. */
export function numaMmStats(mm: MmStruct): NumaMmStats | null {
  const s = stateOf.get(mm.core)?.mms.get(mm);
  if (!s) return null;
  return {
    scanPeriodMs: s.scanPeriodMs,
    scanSeq: s.scanSeq,
    scanOffset: s.scanOffset,
    nextScanNs: s.nextScan,
    scans: s.scans,
    pteUpdates: s.pteUpdates,
    hintFaults: s.hintFaults,
    hintFaultsLocal: s.hintFaultsLocal,
    pagesMigrated: s.pagesMigrated,
    migrateFailed: s.migrateFailed,
  };
}

// ---- scanning ----

function mmState(st: NumaCoreState, mm: MmStruct, now: number): NumaMmState {
  let s = st.mms.get(mm);
  if (!s) {
    s = {
      // init_numa_balancing: the first scan comes scan_delay after the task started.
      nextScan: now + st.cfg.scanDelayMs * NS_PER_MS,
      scanPeriodMs: st.cfg.scanDelayMs,
      started: false,
      scanOffset: 0,
      scanSeq: 0,
      placementSeq: 0,
      hasPreferred: false,
      faultsRemote: 0,
      faultsLocal: 0,
      faultsFailed: 0,
      bufPrivate: 0,
      bufShared: 0,
      scanDebtNs: 0,
      scans: 0,
      pteUpdates: 0,
      hintFaults: 0,
      hintFaultsLocal: 0,
      pagesMigrated: 0,
      migrateFailed: 0,
    };
    st.mms.set(mm, s);
  }
  return s;
}

/** The scanner daemon: scan every address space that is due, then sleep until the next is. */
function armScanner(core: MmCore, st: NumaCoreState, delayNs: number): void {
  st.timer = scheduleBackground(core.scheduler!, Math.max(1, Math.round(delayNs)), () =>
    numaScanTick(core, st),
  );
}

function numaScanTick(core: MmCore, st: NumaCoreState): void {
  st.timer = -1;
  const now = core.now();
  const tick = st.cfg.scanTickMs * NS_PER_MS;
  let next = now + tick;
  if (core.sysctl['kernel.numa_balancing']) {
    for (const mm of core.mms) {
      if (!mm.alive) continue;
      const s = mmState(st, mm, now);
      if (now >= s.nextScan) taskNumaWork(mm);
      if (s.nextScan > now && s.nextScan < next) next = s.nextScan;
    }
  }
  armScanner(core, st, next - now);
}

/** get_mm_rss. */
function mmRss(mm: MmStruct): number {
  return mm.rssAnon + mm.rssShmem + mm.rssFile;
}

/** task_nr_scan_windows: how many scan_size windows the resident set spans (at least 1). */
function taskNrScanWindows(mm: MmStruct, cfg: NumaBalancingConfig): number {
  const nrScanPages = (cfg.scanSizeMb * MB) / PAGE_SIZE;
  const rss = mmRss(mm) || nrScanPages;
  return Math.max(1, Math.ceil(rss / nrScanPages));
}

/** task_scan_min: never faster than MAX_SCAN_WINDOW MB/s; a big task scans each window more often. */
function taskScanMin(mm: MmStruct, cfg: NumaBalancingConfig): number {
  const windows =
    cfg.scanSizeMb < cfg.maxScanWindowMbPerS ? Math.floor(cfg.maxScanWindowMbPerS / cfg.scanSizeMb) : 1;
  const floor = Math.floor(1000 / windows);
  return Math.max(floor, Math.floor(cfg.scanPeriodMinMs / taskNrScanWindows(mm, cfg)));
}

/** task_scan_max (without numa_group scaling). */
function taskScanMax(mm: MmStruct, cfg: NumaBalancingConfig): number {
  return Math.max(taskScanMin(mm, cfg), Math.floor(cfg.scanPeriodMaxMs / taskNrScanWindows(mm, cfg)));
}

/**
 * vmaNumaScannable - the VMA filter of task_numa_work: migratable (no VM_IO/VM_PFNMAP), not
 * hugetlb or VM_MIXEDMAP or a device mapping, not a read-only file mapping (shared libraries),
 * and accessible (PROT_NONE VMAs are left alone so mprotect's PROT_NONE and hints never mix).
 */
function vmaNumaScannable(vma: VmAreaStruct): boolean {
  const f = vma.flags;
  if (f & (VM_IO | VM_PFNMAP | VM_MIXEDMAP | VM_HUGETLB | VM_DEVICE) || vma.vmOps) return false;
  if (vma.file && (f & (VM_READ | VM_WRITE)) === VM_READ) return false;
  return (f & VM_ACCESS_FLAGS) !== 0;
}

/**
 * changeProtNuma - make the present PTEs of [start, end) in `vma` NUMA hints: PROT_NONE, so the
 * next CPU access takes a NUMA hinting fault (change_prot_numa, change_protection with
 * MM_CP_PROT_NUMA). Entries prot_numa_skip skips stay as they are: already PROT_NONE, the zero
 * page and other special entries, device-private folios, in COW mappings folios that may be
 * DMA-pinned or are mapped more than once (shared COW), and, for a single-threaded process's
 * private mapping, folios already on the node it runs on. Huge PMD mappings (THP) are left
 * alone: the THP fault path splits a PROT_NONE PMD instead of migrating it whole
 * (do_huge_pmd_numa_page), which would only cost the huge page. Secondary MMUs hear
 * MMU_NOTIFY_PROTECTION_VMA over the range, only if some entry changes (the kernel defers the
 * notification until a change is imminent).
 * Returns the number of PTEs changed (counted in numa_pte_updates). Context: mmap lock held.
 */
export function changeProtNuma(vma: VmAreaStruct, start: number, end: number): number {
  const mm = vma.mm;
  const core = mm.core;
  const f = core.frames;
  const pt = mm.pgtable;
  // A locked range of an mm with MMF_MIGRATION_CONTROL gets no hints (migration-control.ts).
  if (vmaMigrationControlled(vma)) return 0;
  const cow = (vma.flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
  const targetNid = !(vma.flags & VM_SHARED) && mm.users === 1 ? mm.node : -1;
  let started = false;
  let range: MmuNotifierRange | null = null;
  let n = 0;
  pt.forEachEntry(start, end, (_va, tableId, slot, level) => {
    if (level !== LEVEL_PTE) return;
    const t = pt.table(tableId);
    const hi = t[slot + 1];
    if ((hi & (PTE_PRESENT | PTE_PROTNONE | PTE_SPECIAL)) !== PTE_PRESENT) return;
    const pfn = t[slot];
    if (pfn >= f.count) return;
    const head = folioHead(core, pfn);
    if (f.flags[head] & PG_device_private) return;
    if (cow && (folioMaybeDmaPinned(core, head) || f.mapcount[head] > 1)) return;
    if (targetNid >= 0 && pfnToNid(core, head) === targetNid) return;
    if (!started) {
      started = true;
      range = mmuNotifierInvalidateRangeStart(mm, start, end, MMU_NOTIFY_PROTECTION_VMA);
    }
    t[slot + 1] = hi | PTE_PROTNONE | PTE_NUMA;
    n++;
  });
  if (started) mmuNotifierInvalidateRangeEnd(range);
  if (n) core.vmstat.inc(VM.numa_pte_updates, n);
  return n;
}

/**
 * taskNumaWork - one scan of `mm` (task_numa_work): from where the last scan stopped, mark up to
 * scan_size MB of address space that has present entries (walking at most 8 times that) as NUMA
 * hints, VMA by VMA in huge-page-aligned chunks; wrap to the start (numa_scan_seq + 1) after the
 * last VMA. Schedules the next scan one scan period later (the first scan sets the period to
 * task_scan_start). The daemon calls it when the scan is due; tests may call it directly.
 * Returns the number of PTEs changed, or 0 without initNumaBalancing or for a dead mm.
 * Context: charges scanBaseNs + pteUpdateNs per PTE to the mm's process (see chargeScan).
 */
export function taskNumaWork(mm: MmStruct): number {
  const core = mm.core;
  const st = stateOf.get(core);
  if (!st || !mm.alive) return 0;
  const cfg = st.cfg;
  const now = core.now();
  const s = mmState(st, mm, now);
  if (!s.started) {
    s.started = true;
    s.scanPeriodMs = taskScanMin(mm, cfg); // task_scan_start without numa groups
  }
  s.nextScan = now + s.scanPeriodMs * NS_PER_MS;
  s.scans++;
  let pages = Math.floor((cfg.scanSizeMb * MB) / PAGE_SIZE);
  let virtpages = pages * 8;
  let updates = 0;
  if (pages > 0) {
    let start = s.scanOffset;
    const vmas = mm.vmas;
    let i = 0;
    while (i < vmas.length && vmas[i].end <= start) i++;
    if (i === vmas.length) {
      resetPtenumaScan(s);
      start = 0;
      i = 0;
    }
    let stopped = false;
    for (; i < vmas.length && !stopped; i++) {
      const vma = vmas[i];
      if (!vmaNumaScannable(vma)) continue;
      let end: number;
      do {
        start = Math.max(start, vma.start);
        end = Math.min(Math.ceil((start + pages * PAGE_SIZE) / HPAGE_SIZE) * HPAGE_SIZE, vma.end);
        const n = changeProtNuma(vma, start, end);
        updates += n;
        // Count only chunks that had something to mark, so empty or already-hinted areas are
        // skipped quickly, up to virtpages of address space.
        if (n) pages -= (end - start) / PAGE_SIZE;
        virtpages -= (end - start) / PAGE_SIZE;
        start = end;
        if (pages <= 0 || virtpages <= 0) {
          stopped = true;
          break;
        }
      } while (end !== vma.end);
    }
    if (stopped) s.scanOffset = start;
    else resetPtenumaScan(s);
  }
  s.pteUpdates += updates;
  const cost = cfg.scanBaseNs + updates * cfg.pteUpdateNs;
  if (st.chargeScan) st.chargeScan(mm, cost);
  else s.scanDebtNs += cost;
  return updates;
}

/** reset_ptenuma_scan: a pass over the address space is complete. */
function resetPtenumaScan(s: NumaMmState): void {
  s.scanSeq++;
  s.scanOffset = 0;
}

// ---- hinting faults ----

function cpupidPid(cpupid: number): number {
  return Math.floor(cpupid / CPUPID_NID_RANGE);
}

function cpupidNid(cpupid: number): number {
  return cpupid % CPUPID_NID_RANGE;
}

/**
 * doNumaPage - the NUMA hinting fault (do_numa_page), installed as FaultHooks.numaHint: make the
 * entry accessible again, count the fault, and if the folio sits on another node than the one
 * the process runs on and the two-fault filter agrees, migrate it there.
 * Returns 0 (VM_FAULT bits: the access may retry; a failed migration leaves the page where it
 * was, mapped).
 * Context: the faulting process; charges hintFaultNs (plus the copy, charged by migratePages).
 */
export function doNumaPage(
  vma: VmAreaStruct,
  address: number,
  _flags: number,
  tableId: number,
  slot: number,
): number {
  const mm = vma.mm;
  const core = mm.core;
  const st = stateOf.get(core);
  const pt = mm.pgtable;
  const t = pt.table(tableId);
  const lo = t[slot];
  const hi = t[slot + 1];
  const va = address - (address % PAGE_SIZE);
  if ((hi & (PTE_PRESENT | PTE_PROTNONE)) !== (PTE_PRESENT | PTE_PROTNONE)) return 0; // !pte_same
  // out_map comes first here: the kernel restores the entry after a failed migration, and a
  // successful one installs an accessible entry for the new folio; doing it up front is the same.
  pt.set(tableId, slot, lo, (hi & ~(PTE_PROTNONE | PTE_NUMA)) | PTE_YOUNG);
  if (!st) return 0;
  const s = mmState(st, mm, core.now());
  core.charge(st.cfg.hintFaultNs + s.scanDebtNs);
  s.scanDebtNs = 0;
  const f = core.frames;
  if (hi & PTE_SPECIAL || lo >= f.count) return 0; // vm_normal_folio: no folio (zero page)
  const head = folioHead(core, lo);
  if (f.flags[head] & PG_device_private) return 0;
  let nid = pfnToNid(core, head);
  const nr = f.folioNrPages(head);
  const thisNid = mm.node;

  // numa_migrate_check
  let tnf = 0;
  if (!(hi & PTE_WRITE)) tnf |= TNF_NO_GROUP;
  if (f.mapcount[head] > 1 && vma.flags & VM_SHARED) tnf |= TNF_SHARED;
  const lastCpupid = st.lastCpupid.get(head) ?? -1;
  core.vmstat.inc(VM.numa_hint_faults);
  s.hintFaults++;
  if (nid === thisNid) {
    core.vmstat.inc(st.vmHintFaultsLocal);
    s.hintFaultsLocal++;
    tnf |= TNF_FAULT_LOCAL;
  }
  // A hint left from before MMF_MIGRATION_CONTROL was set does not move a locked page either.
  const target = vmaMigrationControlled(vma) ? -1 : mpolMisplaced(st, s, mm, head, nid, thisNid);
  let now = head;
  if (target >= 0) {
    const moved =
      migrateMisplacedFolioPrepare(core, head, target) === 0 ? migrateMisplacedFolio(core, head, target) : -1;
    if (moved >= 0) {
      nid = target;
      now = moved;
      tnf |= TNF_MIGRATED;
    } else tnf |= TNF_MIGRATE_FAIL;
  }
  if (nr > 1 && !(hi & PTE_HUGE)) numaRebuildLargeMapping(vma, va - (lo - head) * PAGE_SIZE, now, nr);
  taskNumaFault(st, s, mm, lastCpupid, nid, nr, tnf);
  return 0;
}

/**
 * numa_rebuild_large_mapping: the other PTEs of a large folio in this VMA lose their hint too,
 * so one hinting fault serves the whole folio (migration's new entries are accessible in the
 * kernel; a failed migration rebuilds them).
 */
function numaRebuildLargeMapping(vma: VmAreaStruct, base: number, head: number, nr: number): void {
  const pt = vma.mm.pgtable;
  const start = Math.max(base, vma.start);
  const end = Math.min(base + nr * PAGE_SIZE, vma.end);
  pt.forEachEntry(start, end, (_va, tableId, slot, level) => {
    if (level !== LEVEL_PTE) return;
    const t = pt.table(tableId);
    const hi = t[slot + 1];
    const pfn = t[slot];
    if ((hi & (PTE_PRESENT | PTE_NUMA)) !== (PTE_PRESENT | PTE_NUMA) || pfn < head || pfn >= head + nr)
      return;
    t[slot + 1] = hi & ~(PTE_PROTNONE | PTE_NUMA);
  });
}

/**
 * mpol_misplaced for the default policy under NUMA balancing (local node, MPOL_F_MORON): the
 * node the folio should move to, or -1. Always records this access in the folio's last cpupid.
 */
function mpolMisplaced(
  st: NumaCoreState,
  s: NumaMmState,
  mm: MmStruct,
  head: number,
  curNid: number,
  thisNid: number,
): number {
  if (!shouldNumaMigrateMemory(st, s, mm, head, thisNid)) return -1;
  return curNid !== thisNid ? thisNid : -1;
}

/**
 * should_numa_migrate_memory, without numa groups and memory tiering: the two-stage filter.
 * Each hinting fault swaps (pid, node) into the folio's last cpupid. Early in a task's life
 * (no preferred node yet, or within 4 passes) a first or private fault migrates at once; later a
 * folio moves only when the previous fault on it came from the same node as this one, i.e. two
 * faults in a row agree (P(access)^2 squashes unlikely task-page relations). A fault by another
 * task whose previous fault was from this node migrates too (a shared fault with no group).
 */
function shouldNumaMigrateMemory(
  st: NumaCoreState,
  s: NumaMmState,
  mm: MmStruct,
  head: number,
  dstNid: number,
): boolean {
  const pid = mm.ownerPid;
  const last = st.lastCpupid.get(head) ?? -1;
  st.lastCpupid.set(head, pid * CPUPID_NID_RANGE + dstNid);
  const unset = last < 0;
  if ((!s.hasPreferred || s.placementSeq <= 4) && (unset || cpupidPid(last) === pid)) return true;
  if (!unset && cpupidNid(last) !== dstNid) return false;
  return true;
}

/** migrate_balanced_pgdat: some zone of `nid` keeps its high watermark after taking `nr` pages. */
function migrateBalancedPgdat(core: MmCore, nid: number, nr: number): boolean {
  const info = (core.alloc as { zoneInfo?: () => ZoneInfo[] }).zoneInfo;
  if (typeof info !== 'function') return true;
  for (const z of info.call(core.alloc)) {
    if (z.nid !== nid || z.managedPages === 0) continue;
    if (z.freePages >= z.watermarkHigh + nr) return true;
  }
  return false;
}

/**
 * migrateMisplacedFolioPrepare - isolate the folio headed by `head` for a move to `nid`
 * (migrate_misplaced_folio_prepare). Returns 0 (isolated: migrateMisplacedFolio must follow),
 * or -EAGAIN when `nid` is nearly full (below its high watermark after the move) or the folio
 * cannot be isolated.
 */
export function migrateMisplacedFolioPrepare(core: MmCore, head: number, nid: number): number {
  if (!migrateBalancedPgdat(core, nid, core.frames.folioNrPages(head))) return -ERRNO.EAGAIN;
  return isolateLruFolio(core, head) ? 0 : -ERRNO.EAGAIN;
}

/**
 * migrateMisplacedFolio - move an isolated folio to node `nid` (migrate_misplaced_folio):
 * MIGRATE_ASYNC to a __GFP_THISNODE allocation that neither reclaims nor warns; on failure the
 * folio goes back to the LRU. Counts numa_pages_migrated.
 * Returns the head pfn of the new folio (the kernel returns 0), or -EAGAIN (pinned or otherwise
 * referenced, or no memory on `nid`).
 * Context: charges the copy to the caller (the faulting task).
 */
export function migrateMisplacedFolio(core: MmCore, head: number, nid: number): number {
  const gfp = (GFP_HIGHUSER_MOVABLE | __GFP_THISNODE | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_RECLAIM;
  const stats = emptyMigrateStats();
  const left = migratePages(
    core,
    [head],
    (_src, order) => core.alloc.allocPages(gfp, order, nid),
    MIGRATE_ASYNC,
    MR_NUMA_MISPLACED,
    stats,
  );
  for (const failed of stats.failedFolios) putbackMovableFolio(core, failed);
  const st = stateOf.get(core);
  let moved = 0;
  for (const [from, to] of stats.moved) {
    moved += core.frames.folioNrPages(to);
    // folio_migrate_flags: the last cpupid moves with the folio.
    if (st) {
      const c = st.lastCpupid.get(from);
      st.lastCpupid.delete(from);
      if (c !== undefined) st.lastCpupid.set(to, c);
    }
  }
  if (moved) core.vmstat.inc(VM.numa_pages_migrated, moved);
  return left === 0 && stats.moved.length ? stats.moved[0][1] : -ERRNO.EAGAIN;
}

/**
 * task_numa_fault: account the fault for the scan-rate adaptation. The first fault after a
 * completed pass runs the placement step (which adapts the period) before this one is counted.
 */
function taskNumaFault(
  st: NumaCoreState,
  s: NumaMmState,
  mm: MmStruct,
  lastCpupid: number,
  memNid: number,
  pages: number,
  flags: number,
): void {
  void memNid;
  if (!mm.core.sysctl['kernel.numa_balancing']) return;
  const priv = lastCpupid < 0 || cpupidPid(lastCpupid) === mm.ownerPid;
  if (s.placementSeq !== s.scanSeq) taskNumaPlacement(st, s, mm);
  if (flags & TNF_MIGRATED) s.pagesMigrated += pages;
  if (flags & TNF_MIGRATE_FAIL) {
    s.faultsFailed += pages;
    s.migrateFailed += pages;
  }
  if (priv) s.bufPrivate += pages;
  else s.bufShared += pages;
  if (flags & TNF_FAULT_LOCAL) s.faultsLocal += pages;
  else s.faultsRemote += pages;
}

/** task_numa_placement, reduced to what drives the scan period (no task migration, no groups). */
function taskNumaPlacement(st: NumaCoreState, s: NumaMmState, mm: MmStruct): void {
  s.placementSeq = s.scanSeq;
  const priv = s.bufPrivate;
  const shared = s.bufShared;
  s.bufPrivate = 0;
  s.bufShared = 0;
  if (priv + shared > 0) s.hasPreferred = true;
  updateTaskScanPeriod(st, s, mm, shared, priv);
}

/**
 * update_task_scan_period: scan slower (double, up to the max) when the last window saw no local
 * or shared fault, or a failed migration; otherwise move the period by tenths: slower when most
 * faults were private, or local; faster when they were remote and shared.
 */
function updateTaskScanPeriod(
  st: NumaCoreState,
  s: NumaMmState,
  mm: MmStruct,
  shared: number,
  priv: number,
): void {
  const cfg = st.cfg;
  const remote = s.faultsRemote;
  const local = s.faultsLocal;
  const max = taskScanMax(mm, cfg);
  if (local + shared === 0 || s.faultsFailed) {
    s.scanPeriodMs = Math.min(max, s.scanPeriodMs * 2);
    s.nextScan = mm.core.now() + s.scanPeriodMs * NS_PER_MS;
    return;
  }
  const periodSlot = Math.ceil(s.scanPeriodMs / NUMA_PERIOD_SLOTS);
  const lrRatio = local + remote ? Math.floor((local * NUMA_PERIOD_SLOTS) / (local + remote)) : 0;
  const psRatio = priv + shared ? Math.floor((priv * NUMA_PERIOD_SLOTS) / (priv + shared)) : 0;
  let diff: number;
  if (psRatio >= NUMA_PERIOD_THRESHOLD) diff = Math.max(1, psRatio - NUMA_PERIOD_THRESHOLD) * periodSlot;
  else if (lrRatio >= NUMA_PERIOD_THRESHOLD) diff = Math.max(1, lrRatio - NUMA_PERIOD_THRESHOLD) * periodSlot;
  else diff = -(NUMA_PERIOD_THRESHOLD - Math.max(lrRatio, psRatio)) * periodSlot;
  s.scanPeriodMs = Math.min(max, Math.max(taskScanMin(mm, cfg), s.scanPeriodMs + diff));
  s.faultsRemote = 0;
  s.faultsLocal = 0;
  s.faultsFailed = 0;
}
