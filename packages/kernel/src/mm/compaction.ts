/**
 * Memory compaction (mm/compaction.c): the migrate scanner walks a zone from the bottom isolating
 * movable folios, the free scanner walks it from the top isolating free pages, and migratePages
 * moves the former into the latter until the scanners meet or a free block of the wanted order
 * exists. Direct compaction runs in the allocator's slow path (the directCompact hook), kcompactd
 * runs per node when woken and proactively every 500 ms, and compactMemory is
 * `echo 1 > /proc/sys/vm/compact_memory`.
 *
 * What pins do here: isolate_migratepages_block skips an anonymous folio whose refcount exceeds
 * its mapcount (a GUP reference or FOLL_PIN), so a pinned page stays where it is and the
 * pageblock holding it can never become a free 2 MiB block. Such skips are counted
 * (compactionCounters().skippedPinned).
 *
 * Differences from the kernel, all deliberate:
 *  - no fast_isolate_freepages / fast_find_migrateblock: both scanners are linear;
 *  - no capture_control: the allocator retries its free lists after direct compaction;
 *  - pageblock skip hints are reset when a new pass starts after a direct pass ended (the kernel
 *    lets kswapd reset them when it goes to sleep; svasim has no kswapd yet);
 *  - kswapd_is_running() is always false;
 *  - a rescan of a partly failed pageblock (finish_pageblock after a failure) is not done; an
 *    ASYNC direct pass skips the rest of the order-aligned block instead, as older kernels did.
 */
import { ERRNO } from '../uapi/errno';
import { scheduleBackground } from '../sim/types';
import { VM } from '../sim/vmstat';
import { ALLOC_CMA, ALLOC_WMARK_MASK, ALLOC_WMARK_MIN } from './alloc-flags';
import { COMPACTION_DEFAULTS, type CompactionConfig } from './compaction-config';
import {
  GFP_KERNEL,
  MAX_NR_ZONES,
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_UNMOVABLE,
  PAGEBLOCK_NR_PAGES,
  PAGEBLOCK_ORDER,
  __GFP_NORETRY,
  __GFP_PIN,
  __GFP_THISNODE,
  gfpMigratetype,
  gfpZone,
} from './gfp';
import { emptyMigrateStats, isolateLruFolio, migratePages, putbackMovableFolio } from './migrate';
import { folioCallbackRefs } from './migrate-callback';
import { MIGRATE_ASYNC, MIGRATE_SYNC, MIGRATE_SYNC_LIGHT, MR_COMPACTION } from './migrate-types';
import { folioMigrationControlled } from './migration-control';
import type { MmCore } from './mm-core';
import { tunableValues } from './mm-config';
import { PageAllocator } from './page-alloc';
import {
  PG_buddy,
  PG_head,
  PG_hugetlb,
  PG_offline,
  PG_shmem,
  PG_swapcache,
  PG_tail,
  PG_lru,
  PG_unevictable,
} from './page-flags';
import { ORDER_SHIFT } from './page-frames';
import { type Zone, zoneWatermarkOk } from './zone';

// ---------------------------------------------------------------------------------------------
// Kernel enums

/** enum compact_result: the zone cannot serve the request at all. */
export const COMPACT_NOT_SUITABLE_ZONE = 0;
/** Compaction did not run: not enough free memory, or the fragmentation index said no. */
export const COMPACT_SKIPPED = 1;
/** Compaction of this zone is deferred after recent failures. */
export const COMPACT_DEFERRED = 2;
/** No free block of the order yet (internal; compact_finished turns it into CONTINUE). */
export const COMPACT_NO_SUITABLE_PAGE = 3;
/** Keep going. */
export const COMPACT_CONTINUE = 4;
/** The scanners met after scanning the whole zone. */
export const COMPACT_COMPLETE = 5;
/** The scanners met after scanning part of the zone (from cached positions). */
export const COMPACT_PARTIAL_SKIPPED = 6;
/** Stopped early: no migration target left (-ENOMEM from migrate_pages). */
export const COMPACT_CONTENDED = 7;
/** A free block of the order exists (or, proactively, the zone's score fell below the low mark). */
export const COMPACT_SUCCESS = 8;

/** enum compact_priority: synchronous, whole zone, skip hints ignored (MIN_COMPACT_PRIORITY). */
export const COMPACT_PRIO_SYNC_FULL = 0;
/** Synchronous light migration (MIN_COMPACT_COSTLY_PRIORITY, DEF_COMPACT_PRIORITY). */
export const COMPACT_PRIO_SYNC_LIGHT = 1;
/** Asynchronous: the first attempt (INIT_COMPACT_PRIORITY). */
export const COMPACT_PRIO_ASYNC = 2;
/** The highest priority a direct compaction escalates to. */
export const MIN_COMPACT_PRIORITY = COMPACT_PRIO_SYNC_FULL;
/** The highest priority for costly orders. */
export const MIN_COMPACT_COSTLY_PRIORITY = COMPACT_PRIO_SYNC_LIGHT;

const ISOLATE_NONE = 0;
const ISOLATE_SUCCESS = 1;

/** The kernel's fallbacks[] table (page_alloc.c): lists an allocation may steal from. */
const FALLBACKS: readonly (readonly number[])[] = [
  [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE],
  [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE],
  [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE],
];

// ---------------------------------------------------------------------------------------------
// State

/**
 * CompactionCounters - what compaction did since boot, in every mode (direct, kcompactd,
 * compact_memory, and the scans alloc_contig_range shares with it).
 */
export interface CompactionCounters {
  /** Pfns the migrate scanner examined (compact_migrate_scanned). */
  migrateScanned: number;
  /** Pfns the free scanner examined; a free block counts once (compact_free_scanned). */
  freeScanned: number;
  /** Pages isolated for migration (compact_isolated). */
  isolated: number;
  /** Pages migrated to their new place. */
  migrated: number;
  /** Pages that could not be migrated after migrate_pages' retries. */
  failed: number;
  /** Anonymous folios left in place because refcount > mapcount: pinned or GUP-referenced. */
  skippedPinned: number;
  /**
   * mlocked folios left in place because vm.compact_unevictable_allowed is 0, or because their
   * mm has MMF_MIGRATION_CONTROL (migration-control.ts).
   */
  skippedUnevictable: number;
  /** Simulated ns charged for scanning and migration. */
  costNs: number;
}

/** CompactReport - what one compaction request did (its share of CompactionCounters). */
export interface CompactReport extends CompactionCounters {
  /** The best compact_result over the zones compacted. */
  result: number;
}

/** Per-zone compaction state (the compact_* fields of struct zone). */
interface ZoneCompactState {
  /** compact_cached_migrate_pfn[ASYNC, SYNC]. */
  cachedMigratePfn: [number, number];
  cachedFreePfn: number;
  initMigratePfn: number;
  initFreePfn: number;
  considered: number;
  deferShift: number;
  orderFailed: number;
  blockskipFlush: boolean;
}

/** kcompactd of one node (pgdat->kcompactd_*). */
export interface KcompactdStats {
  /** Times woken for an allocation's order (compact_daemon_wake). */
  wakeups: number;
  /** Proactive compaction passes run. */
  proactiveRuns: number;
  /** Simulated CPU time the thread spent, ns. */
  cpuNs: number;
}

interface KcompactdState extends KcompactdStats {
  nid: number;
  maxOrder: number;
  highestZoneIdx: number;
  workEvent: number | null;
  timerEvent: number | null;
}

interface CompactionState {
  core: MmCore;
  alloc: PageAllocator;
  config: CompactionConfig;
  zones: ZoneCompactState[];
  /** PB_migrate_skip per pageblock. */
  skip: Uint8Array;
  counters: CompactionCounters;
  kcompactd: KcompactdState[];
  /** PF_MEMALLOC of the compacting context: no direct compaction from inside compaction. */
  inCompaction: boolean;
  initialized: boolean;
  vm: {
    migrateScanned: number;
    freeScanned: number;
    isolated: number;
    daemonWake: number;
    daemonMigrateScanned: number;
    daemonFreeScanned: number;
  };
}

const states = new WeakMap<MmCore, CompactionState>();

/**
 * pageAllocatorOf - the PageAllocator behind @core (MmCore only knows the PhysAllocator part).
 * Throws TypeError when @core runs on another allocator, which cannot compact.
 */
export function pageAllocatorOf(core: MmCore): PageAllocator {
  const a = core.alloc;
  if (!(a instanceof PageAllocator)) throw new TypeError('compaction needs the PageAllocator');
  return a;
}

function state(core: MmCore): CompactionState {
  let st = states.get(core);
  if (st) return st;
  const alloc = pageAllocatorOf(core);
  const vm = core.vmstat;
  st = {
    core,
    alloc,
    config: tunableValues(COMPACTION_DEFAULTS) as CompactionConfig,
    zones: alloc.zones.map((z) => freshZoneState(z)),
    skip: new Uint8Array(alloc.pageblocks.count),
    counters: zeroCounters(),
    kcompactd: alloc.nodes.map((n) => ({
      nid: n.nid,
      maxOrder: 0,
      highestZoneIdx: MAX_NR_ZONES - 1,
      workEvent: null,
      timerEvent: null,
      wakeups: 0,
      proactiveRuns: 0,
      cpuNs: 0,
    })),
    inCompaction: false,
    initialized: false,
    vm: {
      migrateScanned: vm.register('compact_migrate_scanned'),
      freeScanned: vm.register('compact_free_scanned'),
      isolated: vm.register('compact_isolated'),
      daemonWake: vm.register('compact_daemon_wake'),
      daemonMigrateScanned: vm.register('compact_daemon_migrate_scanned'),
      daemonFreeScanned: vm.register('compact_daemon_free_scanned'),
    },
  };
  states.set(core, st);
  return st;
}

function freshZoneState(z: Zone): ZoneCompactState {
  const free = z.spannedPages > 0 ? pageblockStartPfn(z.endPfn - 1) : z.startPfn;
  return {
    cachedMigratePfn: [z.startPfn, z.startPfn],
    cachedFreePfn: free,
    initMigratePfn: z.startPfn,
    initFreePfn: free,
    considered: 0,
    deferShift: 0,
    orderFailed: 0,
    blockskipFlush: false,
  };
}

function zeroCounters(): CompactionCounters {
  return {
    migrateScanned: 0,
    freeScanned: 0,
    isolated: 0,
    migrated: 0,
    failed: 0,
    skippedPinned: 0,
    skippedUnevictable: 0,
    costNs: 0,
  };
}

/**
 * compactionConfig - the compaction tunables of the kernel behind @core (defaults until changed;
 * the object is live: writes take effect at the next compaction).
 */
export function compactionConfig(core: MmCore): CompactionConfig {
  return state(core).config;
}

/** compactionCounters - a copy of what compaction did on @core since boot. */
export function compactionCounters(core: MmCore): CompactionCounters {
  return { ...state(core).counters };
}

/** kcompactdStats - a copy of node @nid's kcompactd counters. Throws RangeError for no such node. */
export function kcompactdStats(core: MmCore, nid: number): KcompactdStats {
  const k = state(core).kcompactd[nid];
  if (!k) throw new RangeError(`kcompactd: no node ${nid}`);
  return { wakeups: k.wakeups, proactiveRuns: k.proactiveRuns, cpuNs: k.cpuNs };
}

// ---------------------------------------------------------------------------------------------
// Charging

/**
 * chargedDuring - run @fn and return its result with the simulated ns it charged to the caller
 * (through core.charge): how latencies of compaction, CMA allocation and offlining are
 * measured. The charges still reach whoever they would have reached.
 */
export function chargedDuring<T>(core: MmCore, fn: () => T): { value: T; ns: number } {
  const prev = core.chargeHook;
  let ns = 0;
  core.chargeHook = (n) => {
    ns += n;
    if (prev) prev(n);
  };
  try {
    return { value: fn(), ns };
  } finally {
    core.chargeHook = prev;
  }
}

/** Run @fn as a kernel thread: its charges go to @k's own CPU time, not to a user task. */
function asKthread(core: MmCore, k: KcompactdState, fn: () => void): void {
  const prev = core.chargeHook;
  core.chargeHook = (n) => {
    k.cpuNs += n;
  };
  try {
    fn();
  } finally {
    core.chargeHook = prev;
  }
}

// ---------------------------------------------------------------------------------------------
// Fragmentation index and score (mm/vmstat.c, mm/compaction.c)

const pageblockStartPfn = (pfn: number): number => pfn - (pfn & (PAGEBLOCK_NR_PAGES - 1));
/** ALIGN(pfn + 1, pageblock_nr_pages), as the kernel's pageblock_end_pfn. */
const pageblockEndPfn = (pfn: number): number => pageblockStartPfn(pfn) + PAGEBLOCK_NR_PAGES;
/** block_end_pfn(pfn, order): ALIGN(pfn + 1, 1 << order). */
const blockEndPfn = (pfn: number, order: number): number => {
  const n = 2 ** order;
  return Math.floor(pfn / n) * n + n;
};

/** fill_contig_page_info: free pages, free blocks, and free blocks usable for @order. */
function contigPageInfo(zone: Zone, order: number): { freePages: number; total: number; suitable: number } {
  let freePages = 0;
  let total = 0;
  let suitable = 0;
  const fa = zone.freeArea;
  for (let o = 0; o <= MAX_PAGE_ORDER; o++) {
    const blocks = fa.blocks(o);
    total += blocks;
    freePages += blocks * 2 ** o;
    if (o >= order) suitable += blocks * 2 ** (o - order);
  }
  return { freePages, total, suitable };
}

/**
 * fragmentationIndex - why an allocation of @order would fail in @zone (fragmentation_index):
 * towards 0 for lack of memory, towards 1000 for external fragmentation; -1000 when a free block
 * of the order exists; 0 when nothing is free.
 */
export function fragmentationIndex(zone: Zone, order: number): number {
  const info = contigPageInfo(zone, order);
  if (info.total === 0) return 0;
  if (info.suitable > 0) return -1000;
  const requested = 2 ** order;
  return 1000 - Math.floor((1000 + Math.floor((info.freePages * 1000) / requested)) / info.total);
}

/**
 * extfragForOrder - the percentage (0..100) of @zone's free memory in blocks too small for
 * @order (extfrag_for_order); 0 when nothing is free.
 */
export function extfragForOrder(zone: Zone, order: number): number {
  const info = contigPageInfo(zone, order);
  if (info.freePages === 0) return 0;
  return Math.floor(((info.freePages - info.suitable * 2 ** order) * 100) / info.freePages);
}

/** fragmentationScoreZone - a zone's external fragmentation for COMPACTION_HPAGE_ORDER, 0..100. */
export function fragmentationScoreZone(core: MmCore, zone: Zone): number {
  return extfragForOrder(zone, state(core).config.compactionHpageOrder);
}

/**
 * fragmentationScoreNode - node @nid's fragmentation score (fragmentation_score_node): each
 * populated zone's score weighted by its share of the node's pages, so small zones barely count.
 * Return: 0..100.
 */
export function fragmentationScoreNode(core: MmCore, nid: number): number {
  const st = state(core);
  const zones = nodeZones(st.alloc, nid);
  let nodePresent = 0;
  for (const z of zones) nodePresent += z.spannedPages;
  let score = 0;
  for (const z of zones) {
    if (!z.populated) continue;
    score += Math.floor((z.spannedPages * fragmentationScoreZone(core, z)) / (nodePresent + 1));
  }
  return score;
}

/**
 * fragmentationScoreWmark - the proactive-compaction thresholds (fragmentation_score_wmark): the
 * low mark max(100 - vm.compaction_proactiveness, 5), where a pass stops, or (@low false) the
 * high mark 10 above it (at most 100), above which kcompactd starts one.
 */
export function fragmentationScoreWmark(core: MmCore, low: boolean): number {
  const cfg = state(core).config;
  const wmarkLow = Math.max(100 - core.sysctl['vm.compaction_proactiveness'], cfg.fragScoreWmarkFloor);
  return low ? wmarkLow : Math.min(wmarkLow + cfg.fragScoreWmarkGap, 100);
}

/**
 * compactionSuitable - is it worth compacting @zone for an allocation of @order now
 * (compaction_suitable)? It needs free pages above the min watermark (the low one for costly
 * orders) plus twice the request (compact_gap) to hold the migrated pages, and, for costly orders,
 * a fragmentation index above vm.extfrag_threshold (else reclaim is the answer, not compaction).
 */
export function compactionSuitable(core: MmCore, zone: Zone, order: number, highestZoneIdx: number): boolean {
  const cfg = state(core).config;
  const costly = order > cfg.pageAllocCostlyOrder;
  const mark = (costly ? zone.watermarkLow : zone.watermarkMin) + 2 * 2 ** order;
  if (!zoneWatermarkOk(zone, 0, mark, highestZoneIdx, ALLOC_CMA)) return false;
  if (costly) {
    const fi = fragmentationIndex(zone, order);
    if (fi >= 0 && fi <= core.sysctl['vm.extfrag_threshold']) return false;
  }
  return true;
}

function nodeZones(alloc: PageAllocator, nid: number): Zone[] {
  return alloc.zones.slice(nid * MAX_NR_ZONES, (nid + 1) * MAX_NR_ZONES);
}

// ---------------------------------------------------------------------------------------------
// Deferral and skip hints

function deferCompaction(st: CompactionState, zs: ZoneCompactState, order: number): void {
  zs.considered = 0;
  zs.deferShift = Math.min(zs.deferShift + 1, st.config.compactMaxDeferShift);
  if (order < zs.orderFailed) zs.orderFailed = order;
}

function compactionDeferred(zs: ZoneCompactState, order: number): boolean {
  const limit = 2 ** zs.deferShift;
  if (order < zs.orderFailed) return false;
  if (++zs.considered >= limit) {
    zs.considered = limit;
    return false;
  }
  return true;
}

function compactionDeferReset(zs: ZoneCompactState, order: number, allocSuccess: boolean): void {
  if (allocSuccess) {
    zs.considered = 0;
    zs.deferShift = 0;
  }
  if (order >= zs.orderFailed) zs.orderFailed = order + 1;
}

function compactionRestarting(st: CompactionState, zs: ZoneCompactState, order: number): boolean {
  if (order < zs.orderFailed) return false;
  return zs.deferShift === st.config.compactMaxDeferShift && zs.considered >= 2 ** zs.deferShift;
}

/**
 * resetIsolationSuitable - forget @nid's pageblock skip hints and cached scanner positions
 * (reset_isolation_suitable; kswapd calls it when it goes to sleep).
 */
export function resetIsolationSuitable(core: MmCore, nid: number): void {
  const st = state(core);
  for (const z of nodeZones(st.alloc, nid)) if (z.populated) resetZoneSkip(st, z);
}

function resetZoneSkip(st: CompactionState, zone: Zone): void {
  st.skip.fill(0, zone.startPfn >>> PAGEBLOCK_ORDER, zone.endPfn >>> PAGEBLOCK_ORDER);
  const zs = st.zones[zone.id];
  zs.blockskipFlush = false;
  resetCachedPositions(zs, zone);
}

function resetCachedPositions(zs: ZoneCompactState, zone: Zone): void {
  zs.cachedMigratePfn[0] = zone.startPfn;
  zs.cachedMigratePfn[1] = zone.startPfn;
  zs.cachedFreePfn = pageblockStartPfn(zone.endPfn - 1);
}

// ---------------------------------------------------------------------------------------------
// compact_control

/**
 * CompactControl - one compaction run over one zone (struct compact_control). Exported for
 * alloc_contig_range, which scans with the same rules; other callers use the entry points below.
 */
export interface CompactControl {
  zone: Zone;
  /** The order wanted; -1 compacts everything (compact_memory, proactive, alloc_contig). */
  order: number;
  gfp: number;
  migratetype: number;
  /** MIGRATE_ASYNC, MIGRATE_SYNC_LIGHT or MIGRATE_SYNC. */
  mode: number;
  allocFlags: number;
  highestZoneIdx: number;
  wholeZone: boolean;
  ignoreSkipHint: boolean;
  noSetSkipHint: boolean;
  directCompaction: boolean;
  proactiveCompaction: boolean;
  /** alloc_contig_range: compound folios and mlocked pages are taken too. */
  allocContig: boolean;
  finishPageblock: boolean;
  migratePfn: number;
  freePfn: number;
  /** Heads of the folios isolated for migration. */
  migratepages: number[];
  /** Pages in migratepages. */
  nrMigratepages: number;
  /** Free order-0 pages isolated as migration targets (refcount 0, off the buddy). */
  freepages: number[];
  totalMigrateScanned: number;
  totalFreeScanned: number;
  /** Pages isolated for migration by this run. */
  nrIsolated: number;
  /** Anonymous folios left in place because refcount > mapcount. */
  nrPinnedSkipped: number;
  /** mlocked folios left in place (vm.compact_unevictable_allowed = 0, or MMF_MIGRATION_CONTROL). */
  nrUnevictableSkipped: number;
}

/** newCompactControl - a compact_control for @zone with the kernel's zero defaults. */
export function newCompactControl(zone: Zone, order: number, gfp: number, mode: number): CompactControl {
  return {
    zone,
    order,
    gfp,
    migratetype: gfpMigratetype(gfp),
    mode,
    allocFlags: 0,
    highestZoneIdx: zone.zoneIdx,
    wholeZone: false,
    ignoreSkipHint: false,
    noSetSkipHint: false,
    directCompaction: false,
    proactiveCompaction: false,
    allocContig: false,
    finishPageblock: false,
    migratePfn: zone.startPfn,
    freePfn: zone.endPfn,
    migratepages: [],
    nrMigratepages: 0,
    freepages: [],
    totalMigrateScanned: 0,
    totalFreeScanned: 0,
    nrIsolated: 0,
    nrPinnedSkipped: 0,
    nrUnevictableSkipped: 0,
  };
}

function isolationSuitable(st: CompactionState, cc: CompactControl, pfn: number): boolean {
  return cc.ignoreSkipHint || st.skip[pfn >>> PAGEBLOCK_ORDER] === 0;
}

function updateCachedMigrate(st: CompactionState, cc: CompactControl, pfn: number): void {
  if (cc.noSetSkipHint) return;
  const zs = st.zones[cc.zone.id];
  const end = pageblockEndPfn(pfn);
  if (end > zs.cachedMigratePfn[0]) zs.cachedMigratePfn[0] = end;
  if (cc.mode !== MIGRATE_ASYNC && end > zs.cachedMigratePfn[1]) zs.cachedMigratePfn[1] = end;
}

function isOfflineBlock(st: CompactionState, pfn: number): boolean {
  return (st.alloc.frames.flags[pageblockStartPfn(pfn)] & PG_offline) !== 0;
}

/**
 * isolateMigratepagesBlock - scan [@lowPfn, @endPfn) (inside one pageblock) and isolate the
 * movable folios (isolate_migratepages_block). Skips free blocks, non-LRU pages, compound folios
 * (unless alloc_contig), anonymous folios with more references than mappings (pinned) and, without
 * @isolateUnevictable, mlocked ones. A direct compaction gives up an order-aligned block at its
 * first failure, putting back what it took from it. Updates cc.migratePfn, the scan counters and
 * the skip hints; charges the scan.
 *
 * Return: 0 (the kernel's -EINTR / -ENOMEM cases do not arise in svasim).
 */
export function isolateMigratepagesBlock(
  core: MmCore,
  cc: CompactControl,
  lowPfn: number,
  endPfn: number,
  isolateUnevictable: boolean,
): number {
  const st = state(core);
  const f = core.frames;
  const fl = f.flags;
  const blockPfn = lowPfn;
  let nrScanned = 0;
  let nrIsolated = 0;
  const skipOnFailure = cc.directCompaction && !cc.finishPageblock && cc.order > 0;
  let nextSkipPfn = skipOnFailure ? blockEndPfn(lowPfn, cc.order) : endPfn;
  const clusterMax = st.config.compactClusterMax;
  for (; lowPfn < endPfn; lowPfn++) {
    if (skipOnFailure && lowPfn >= nextSkipPfn) {
      // Everything in the previous order-aligned block was isolated: migrate it first.
      if (nrIsolated) break;
      nextSkipPfn = blockEndPfn(lowPfn, cc.order);
    }
    nrScanned++;
    const flags = fl[lowPfn];
    if (flags & PG_buddy) {
      const order = flags >>> ORDER_SHIFT;
      if (order > 0) {
        lowPfn += 2 ** order - 1;
        nrScanned += 2 ** order - 1;
      }
      continue;
    }
    let head = lowPfn;
    let ok = true;
    if (flags & (PG_head | PG_tail)) {
      head = flags & PG_tail ? f.mapping[lowPfn] - 1 : lowPfn;
      if (!cc.allocContig || fl[head] & PG_hugetlb) {
        // THP and hugetlb are not compacted unless a larger block is wanted (alloc_contig).
        const skip = head + 2 ** f.getOrder(head) - 1 - lowPfn;
        lowPfn += skip;
        nrScanned += skip;
        ok = false;
      }
    }
    if (ok) {
      const hf = fl[head];
      if (!(hf & PG_lru)) ok = false;
      else if (
        !(hf & (PG_shmem | PG_swapcache)) &&
        f.refcount[head] > f.mapcount[head] &&
        // Short-term references with a migration callback let go when asked (migrate-callback.ts).
        f.refcount[head] > f.mapcount[head] + folioCallbackRefs(core, head)
      ) {
        // Migration would fail on the extra reference: do not even isolate it.
        cc.nrPinnedSkipped++;
        ok = false;
      } else if (
        hf & PG_unevictable &&
        // The per-process form of compact_unevictable_allowed=0; alloc_contig still moves them.
        (!isolateUnevictable || (!cc.allocContig && folioMigrationControlled(core, head)))
      ) {
        cc.nrUnevictableSkipped++;
        ok = false;
      } else if (!isolateLruFolio(core, head)) ok = false;
    }
    if (ok) {
      const nr = 2 ** f.getOrder(head);
      cc.migratepages.push(head);
      cc.nrMigratepages += nr;
      nrIsolated += nr;
      if (nr > 1) {
        nrScanned += head + nr - 1 - lowPfn;
        lowPfn = head + nr - 1;
      }
      if (cc.nrMigratepages >= clusterMax && !cc.finishPageblock) {
        lowPfn++;
        break;
      }
      continue;
    }
    if (!skipOnFailure) continue;
    // This order-aligned block cannot become free: give back what was taken from it.
    if (nrIsolated) {
      for (const h of cc.migratepages) putbackMovableFolio(core, h);
      cc.migratepages = [];
      cc.nrMigratepages = 0;
      nrIsolated = 0;
    }
    if (lowPfn < nextSkipPfn) {
      lowPfn = nextSkipPfn - 1;
      nextSkipPfn += 2 ** cc.order;
    }
  }
  if (lowPfn > endPfn) lowPfn = endPfn;
  if (lowPfn === endPfn && (!nrIsolated || cc.finishPageblock)) {
    if (!cc.noSetSkipHint) st.skip[blockPfn >>> PAGEBLOCK_ORDER] = 1;
    updateCachedMigrate(st, cc, lowPfn);
  }
  cc.totalMigrateScanned += nrScanned;
  cc.nrIsolated += nrIsolated;
  core.vmstat.inc(st.vm.isolated, nrIsolated);
  core.charge(nrScanned * st.config.migrateScanNsPerPfn);
  cc.migratePfn = lowPfn;
  return 0;
}

function suitableMigrationSource(cc: CompactControl, blockPfn: number, alloc: PageAllocator): boolean {
  const f = alloc.frames;
  const h = f.compoundHead(blockPfn);
  // pageblock_skip_persistent: a folio of pageblock size or more fills the block.
  if (f.flags[h] & PG_head && f.getOrder(h) >= PAGEBLOCK_ORDER) return false;
  if (cc.mode !== MIGRATE_ASYNC || !cc.directCompaction) return true;
  const mt = alloc.migratetypeOf(blockPfn);
  if (cc.migratetype === MIGRATE_MOVABLE) return mt === MIGRATE_MOVABLE || mt === MIGRATE_CMA;
  return mt === cc.migratetype;
}

function suitableMigrationTarget(alloc: PageAllocator, blockPfn: number): boolean {
  const h = alloc.findBuddyHead(blockPfn);
  if (h >= 0 && alloc.frames.getOrder(h) >= PAGEBLOCK_ORDER) return false;
  const mt = alloc.migratetypeOf(blockPfn);
  return mt === MIGRATE_MOVABLE || mt === MIGRATE_CMA;
}

/** isolate_migratepages: the next pageblock with something to isolate, below the free scanner. */
function isolateMigratepages(st: CompactionState, cc: CompactControl): number {
  const zone = cc.zone;
  let lowPfn = cc.migratePfn;
  let blockStart = Math.max(pageblockStartPfn(lowPfn), zone.startPfn);
  let blockEnd = pageblockEndPfn(lowPfn);
  const unevictable = st.core.sysctl['vm.compact_unevictable_allowed'] === 1;
  for (
    ;
    blockEnd <= cc.freePfn;
    cc.migratePfn = lowPfn = blockEnd, blockStart = blockEnd, blockEnd += PAGEBLOCK_NR_PAGES
  ) {
    if (isOfflineBlock(st, blockStart)) continue;
    const aligned = (lowPfn & (PAGEBLOCK_NR_PAGES - 1)) === 0 || lowPfn === zone.startPfn;
    if (aligned && !isolationSuitable(st, cc, blockStart)) continue;
    if (!suitableMigrationSource(cc, blockStart, st.alloc)) {
      updateCachedMigrate(st, cc, blockEnd);
      continue;
    }
    isolateMigratepagesBlock(st.core, cc, lowPfn, blockEnd, unevictable);
    break;
  }
  return cc.nrMigratepages > 0 ? ISOLATE_SUCCESS : ISOLATE_NONE;
}

/**
 * isolate_freepages_block: take free blocks from [@start, @end) onto cc.freepages as order-0
 * pages until there are as many as pages to migrate. Returns where the scan stopped.
 */
function isolateFreepagesBlock(st: CompactionState, cc: CompactControl, start: number, end: number): number {
  const alloc = st.alloc;
  const fl = alloc.frames.flags;
  const zone = cc.zone;
  let p = start;
  let nrScanned = 0;
  while (p < end) {
    nrScanned++;
    const flags = fl[p];
    if (!(flags & PG_buddy)) {
      p++;
      continue;
    }
    const nr = 2 ** (flags >>> ORDER_SHIFT);
    // __isolate_free_page: never take the zone below its min watermark.
    if (!zoneWatermarkOk(zone, 0, zone.watermarkMin + nr, 0, ALLOC_CMA)) break;
    alloc.takeFreeRange(p, nr);
    for (let i = nr - 1; i >= 0; i--) cc.freepages.push(p + i);
    p += nr;
    if (cc.freepages.length >= cc.nrMigratepages) break;
  }
  cc.totalFreeScanned += nrScanned;
  st.core.charge(nrScanned * st.config.freeScanNsPerPfn);
  return p;
}

/** isolate_freepages: walk pageblocks down from cc.freePfn, never below the migrate scanner. */
function isolateFreepages(st: CompactionState, cc: CompactControl): void {
  const zone = cc.zone;
  let isolateStart = cc.freePfn;
  let blockStart = pageblockStartPfn(cc.freePfn);
  let blockEnd = Math.min(blockStart + PAGEBLOCK_NR_PAGES, zone.endPfn);
  const lowPfn = pageblockEndPfn(cc.migratePfn);
  for (
    ;
    blockStart >= lowPfn;
    blockEnd = blockStart, blockStart -= PAGEBLOCK_NR_PAGES, isolateStart = blockStart
  ) {
    if (isOfflineBlock(st, blockStart)) continue;
    if (!suitableMigrationTarget(st.alloc, blockStart)) continue;
    if (!isolationSuitable(st, cc, blockStart)) continue;
    isolateStart = isolateFreepagesBlock(st, cc, isolateStart, blockEnd);
    if (isolateStart === blockEnd && !cc.noSetSkipHint) {
      // update_pageblock_skip: nothing more to take here.
      st.skip[blockStart >>> PAGEBLOCK_ORDER] = 1;
      const zs = st.zones[zone.id];
      if (blockStart - PAGEBLOCK_NR_PAGES < zs.cachedFreePfn)
        zs.cachedFreePfn = blockStart - PAGEBLOCK_NR_PAGES;
    }
    if (cc.freepages.length >= cc.nrMigratepages) {
      if (isolateStart >= blockEnd) isolateStart = blockStart - PAGEBLOCK_NR_PAGES;
      break;
    } else if (isolateStart < blockEnd) {
      // Stopped inside the block: the watermark does not allow more.
      break;
    }
  }
  cc.freePfn = isolateStart;
}

/** compaction_alloc: the next isolated free page as a migration target (order 0 only). */
function compactionAlloc(st: CompactionState, cc: CompactControl, order: number): number {
  if (order > 0) return -1;
  if (cc.freepages.length === 0) isolateFreepages(st, cc);
  const pfn = cc.freepages.pop();
  if (pfn === undefined) return -1;
  st.alloc.frames.refcount[pfn] = 1;
  return pfn;
}

/** release_freepages: give unused targets back to the buddy; returns the highest pfn, or -1. */
function releaseFreepages(st: CompactionState, cc: CompactControl): number {
  const pages = cc.freepages.sort((a, b) => a - b);
  cc.freepages = [];
  let high = -1;
  for (let i = 0; i < pages.length;) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1] + 1) j++;
    st.alloc.freeRange(pages[i], j - i);
    high = pages[j - 1];
    i = j;
  }
  return high;
}

function compactScannersMet(cc: CompactControl): boolean {
  return cc.freePfn >>> PAGEBLOCK_ORDER <= cc.migratePfn >>> PAGEBLOCK_ORDER;
}

/** can_steal_fallback with only_stealable: may an allocation of @mt claim a block of @order? */
function canStealFallback(order: number, mt: number): boolean {
  if (order >= PAGEBLOCK_ORDER) return true;
  return order >= Math.floor(PAGEBLOCK_ORDER / 2) || mt === MIGRATE_RECLAIMABLE || mt === MIGRATE_UNMOVABLE;
}

/** __compact_finished. */
function compactFinished(st: CompactionState, cc: CompactControl): number {
  const zone = cc.zone;
  if (compactScannersMet(cc)) {
    const zs = st.zones[zone.id];
    resetCachedPositions(zs, zone);
    if (cc.directCompaction) zs.blockskipFlush = true;
    return cc.wholeZone ? COMPACT_COMPLETE : COMPACT_PARTIAL_SKIPPED;
  }
  if (cc.proactiveCompaction) {
    return fragmentationScoreZone(st.core, zone) > fragmentationScoreWmark(st.core, true)
      ? COMPACT_CONTINUE
      : COMPACT_SUCCESS;
  }
  if (cc.order < 0) return COMPACT_CONTINUE;
  // Always finish a pageblock, so that it is as free as possible.
  if (cc.migratePfn & (PAGEBLOCK_NR_PAGES - 1)) return COMPACT_CONTINUE;
  const fa = zone.freeArea;
  const mt = cc.migratetype;
  for (let o = cc.order; o <= MAX_PAGE_ORDER; o++) {
    if (!fa.isEmpty(o, mt)) return COMPACT_SUCCESS;
    if (mt === MIGRATE_MOVABLE && cc.allocFlags & ALLOC_CMA && !fa.isEmpty(o, MIGRATE_CMA))
      return COMPACT_SUCCESS;
    const fb = FALLBACKS[mt];
    if (fb && canStealFallback(o, mt)) for (const t of fb) if (!fa.isEmpty(o, t)) return COMPACT_SUCCESS;
  }
  return COMPACT_CONTINUE;
}

/**
 * compactZone - run compaction over cc.zone until compact_finished says stop (compact_zone):
 * isolate up to COMPACT_CLUSTER_MAX folios from the bottom, migrate them into free pages taken
 * from the top, repeat.
 *
 * Return: a COMPACT_* result. Context: charges scanning and migration to the caller; must not be
 * called from inside another compaction.
 */
export function compactZone(core: MmCore, cc: CompactControl): number {
  const st = state(core);
  const zone = cc.zone;
  const zs = st.zones[zone.id];
  cc.totalMigrateScanned = 0;
  cc.totalFreeScanned = 0;
  cc.nrIsolated = 0;
  cc.nrPinnedSkipped = 0;
  cc.nrUnevictableSkipped = 0;
  if (cc.order >= 0) {
    const mark = zone.watermark[cc.allocFlags & ALLOC_WMARK_MASK];
    if (zoneWatermarkOk(zone, cc.order, mark, cc.highestZoneIdx, cc.allocFlags)) return COMPACT_SUCCESS;
    if (!compactionSuitable(core, zone, cc.order, cc.highestZoneIdx)) return COMPACT_SKIPPED;
  }
  if (compactionRestarting(st, zs, cc.order)) resetZoneSkip(st, zone);
  const startPfn = zone.startPfn;
  const endPfn = zone.endPfn;
  const sync = cc.mode !== MIGRATE_ASYNC;
  if (cc.wholeZone) {
    cc.migratePfn = startPfn;
    cc.freePfn = pageblockStartPfn(endPfn - 1);
  } else {
    if (zs.blockskipFlush && zs.cachedMigratePfn[sync ? 1 : 0] <= startPfn) resetZoneSkip(st, zone);
    cc.migratePfn = zs.cachedMigratePfn[sync ? 1 : 0];
    cc.freePfn = zs.cachedFreePfn;
    if (cc.freePfn < startPfn || cc.freePfn >= endPfn) {
      cc.freePfn = pageblockStartPfn(endPfn - 1);
      zs.cachedFreePfn = cc.freePfn;
    }
    if (cc.migratePfn < startPfn || cc.migratePfn >= endPfn) {
      cc.migratePfn = startPfn;
      zs.cachedMigratePfn[0] = startPfn;
      zs.cachedMigratePfn[1] = startPfn;
    }
    if (cc.migratePfn <= zs.initMigratePfn) cc.wholeZone = true;
  }
  let updateCached = !sync && zs.cachedMigratePfn[0] === zs.cachedMigratePfn[1];
  let lastMigratedPfn = 0;
  const newFolio = (_src: number, order: number) => compactionAlloc(st, cc, order);
  const wasIn = st.inCompaction;
  st.inCompaction = true;
  let migrated = 0;
  let failed = 0;
  let ret: number;
  try {
    while ((ret = compactFinished(st, cc)) === COMPACT_CONTINUE) {
      cc.finishPageblock = pageblockStartPfn(lastMigratedPfn) === pageblockStartPfn(cc.migratePfn);
      if (isolateMigratepages(st, cc) === ISOLATE_NONE) {
        if (updateCached) zs.cachedMigratePfn[1] = zs.cachedMigratePfn[0];
        continue;
      }
      updateCached = false;
      lastMigratedPfn = Math.max(startPfn, pageblockStartPfn(cc.migratePfn - 1));
      const stats = emptyMigrateStats();
      const err = migratePages(core, cc.migratepages, newFolio, cc.mode, MR_COMPACTION, stats);
      for (const [, dst] of stats.moved) migrated += 2 ** core.frames.getOrder(dst);
      for (const h of stats.failedFolios) {
        failed += 2 ** core.frames.getOrder(h);
        putbackMovableFolio(core, h);
      }
      cc.migratepages = [];
      cc.nrMigratepages = 0;
      if (err === -ERRNO.ENOMEM && !compactScannersMet(cc)) {
        ret = COMPACT_CONTENDED;
        break;
      }
      if (err !== 0 && cc.directCompaction && cc.mode === MIGRATE_ASYNC && cc.order > 0) {
        // A page of this order-aligned block stays: skip the rest of the block.
        cc.migratePfn = blockEndPfn(cc.migratePfn - 1, cc.order);
        lastMigratedPfn = 0;
      }
    }
  } finally {
    st.inCompaction = wasIn;
  }
  if (cc.freepages.length > 0) {
    const high = releaseFreepages(st, cc);
    if (high >= 0) {
      const freePfn = pageblockStartPfn(high);
      if (freePfn > zs.cachedFreePfn) zs.cachedFreePfn = freePfn;
    }
  }
  const c = st.counters;
  c.migrateScanned += cc.totalMigrateScanned;
  c.freeScanned += cc.totalFreeScanned;
  c.isolated += cc.nrIsolated;
  c.migrated += migrated;
  c.failed += failed;
  c.skippedPinned += cc.nrPinnedSkipped;
  c.skippedUnevictable += cc.nrUnevictableSkipped;
  core.vmstat.inc(st.vm.migrateScanned, cc.totalMigrateScanned);
  core.vmstat.inc(st.vm.freeScanned, cc.totalFreeScanned);
  return ret;
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Run @fn and report what compaction did meanwhile, with the ns it charged. */
function reportDuring(st: CompactionState, fn: () => number): CompactReport {
  const before = { ...st.counters };
  const { value, ns } = chargedDuring(st.core, fn);
  const c = st.counters;
  c.costNs += ns;
  return {
    result: value,
    migrateScanned: c.migrateScanned - before.migrateScanned,
    freeScanned: c.freeScanned - before.freeScanned,
    isolated: c.isolated - before.isolated,
    migrated: c.migrated - before.migrated,
    failed: c.failed - before.failed,
    skippedPinned: c.skippedPinned - before.skippedPinned,
    skippedUnevictable: c.skippedUnevictable - before.skippedUnevictable,
    costNs: ns,
  };
}

/**
 * compactZoneOrder - compact one zone for an allocation of @order at priority @prio
 * (compact_zone_order, the direct compactor's per-zone call).
 * @gfp: the allocation's gfp mask (its migratetype decides which free lists count).
 * @allocFlags: ALLOC_* of the attempt (watermark, ALLOC_CMA).
 *
 * Return: the COMPACT_* result. Context: charges the caller.
 */
export function compactZoneOrder(
  core: MmCore,
  zone: Zone,
  order: number,
  gfp: number,
  prio: number,
  allocFlags: number,
  highestZoneIdx: number,
): number {
  const cc = newCompactControl(
    zone,
    order,
    gfp,
    prio === COMPACT_PRIO_ASYNC ? MIGRATE_ASYNC : MIGRATE_SYNC_LIGHT,
  );
  cc.allocFlags = allocFlags;
  cc.highestZoneIdx = highestZoneIdx;
  cc.directCompaction = true;
  cc.wholeZone = prio === MIN_COMPACT_PRIORITY;
  cc.ignoreSkipHint = prio === MIN_COMPACT_PRIORITY;
  return compactZone(core, cc);
}

/**
 * zonelistFor - the populated zones an allocation of @gfp preferring node @nid may use, in
 * zonelist order (build_zonelists): that node's zones from gfp_zone() down, then the other nodes'
 * in turn, unless __GFP_THISNODE.
 */
export function zonelistFor(alloc: PageAllocator, nid: number, gfp: number): Zone[] {
  const highest = gfpZone(gfp);
  const n = alloc.nodes.length;
  const out: Zone[] = [];
  const nodes = gfp & __GFP_THISNODE ? 1 : n;
  for (let k = 0; k < nodes; k++) {
    const other = (nid + k) % n;
    for (let zi = highest; zi >= 0; zi--) {
      const z = alloc.zones[other * MAX_NR_ZONES + zi];
      if (z.populated) out.push(z);
    }
  }
  return out;
}

function allocFlagsFor(gfp: number): number {
  const cma = gfpMigratetype(gfp) === MIGRATE_MOVABLE && !(gfp & __GFP_PIN) ? ALLOC_CMA : 0;
  return ALLOC_WMARK_MIN | cma;
}

/**
 * tryToCompactPages - direct compaction for an allocation of 2^@order pages
 * (try_to_compact_pages): each zone of the allocation's zonelist in turn, skipping deferred ones
 * below the top priority, stopping at the first COMPACT_SUCCESS; zones where a synchronous pass
 * failed are deferred.
 * @nid: preferred node (-1 = node 0).
 *
 * Return: the best COMPACT_* result over the zones (COMPACT_SKIPPED when none ran).
 */
export function tryToCompactPages(core: MmCore, gfp: number, order: number, prio: number, nid = -1): number {
  const st = state(core);
  const pref = nid < 0 ? 0 : nid;
  const allocFlags = allocFlagsFor(gfp);
  const highest = gfpZone(gfp);
  let rc = COMPACT_SKIPPED;
  for (const zone of zonelistFor(st.alloc, pref, gfp)) {
    const zs = st.zones[zone.id];
    if (prio > MIN_COMPACT_PRIORITY && compactionDeferred(zs, order)) {
      rc = Math.max(rc, COMPACT_DEFERRED);
      continue;
    }
    const status = compactZoneOrder(core, zone, order, gfp, prio, allocFlags, highest);
    rc = Math.max(rc, status);
    if (status === COMPACT_SUCCESS) {
      compactionDeferReset(zs, order, false);
      break;
    }
    if (prio !== COMPACT_PRIO_ASYNC && (status === COMPACT_COMPLETE || status === COMPACT_PARTIAL_SKIPPED))
      deferCompaction(st, zs, order);
  }
  return rc;
}

/**
 * The directCompact hook (__alloc_pages_direct_compact with should_compact_retry's escalation):
 * ASYNC first, then synchronous passes up to MIN_COMPACT_PRIORITY (MIN_COMPACT_COSTLY_PRIORITY
 * for costly orders) unless __GFP_NORETRY. Each attempt that ran counts compact_stall, then
 * compact_success when a zone of the zonelist can now serve the order, else compact_fail.
 */
function directCompact(st: CompactionState, gfp: number, order: number, nid: number): boolean {
  if (st.inCompaction || order <= 0) return false;
  const core = st.core;
  const minPrio = order > st.config.pageAllocCostlyOrder ? MIN_COMPACT_COSTLY_PRIORITY : MIN_COMPACT_PRIORITY;
  const allocFlags = allocFlagsFor(gfp);
  const highest = gfpZone(gfp);
  for (let prio = COMPACT_PRIO_ASYNC; ; prio--) {
    const rc = reportDuring(st, () => tryToCompactPages(core, gfp, order, prio, nid)).result;
    if (rc === COMPACT_SKIPPED) return false;
    core.vmstat.inc(VM.compact_stall);
    for (const zone of zonelistFor(st.alloc, nid < 0 ? 0 : nid, gfp)) {
      if (zoneWatermarkOk(zone, order, zone.watermarkMin, highest, allocFlags)) {
        compactionDeferReset(st.zones[zone.id], order, true);
        core.vmstat.inc(VM.compact_success);
        return true;
      }
    }
    core.vmstat.inc(VM.compact_fail);
    if (gfp & __GFP_NORETRY || prio <= minPrio) return false;
  }
}

/**
 * compactMemory - compact every populated zone of every node completely
 * (`echo 1 > /proc/sys/vm/compact_memory`, compact_nodes): MIGRATE_SYNC, whole zones, skip hints
 * ignored.
 *
 * Return: what was scanned, migrated, failed and skipped because pinned, and the simulated ns
 * charged to the caller.
 */
export function compactMemory(core: MmCore): CompactReport {
  const st = state(core);
  return reportDuring(st, () => {
    let best = COMPACT_SKIPPED;
    for (const nd of st.alloc.nodes) best = Math.max(best, compactNode(st, nd.nid, false));
    return best;
  });
}

/** compact_node / proactive_compact_node: every populated zone of @nid, order -1. */
function compactNode(st: CompactionState, nid: number, proactive: boolean): number {
  let best = COMPACT_SKIPPED;
  for (const zone of nodeZones(st.alloc, nid)) {
    if (!zone.populated) continue;
    const cc = newCompactControl(zone, -1, GFP_KERNEL, proactive ? MIGRATE_SYNC_LIGHT : MIGRATE_SYNC);
    cc.ignoreSkipHint = true;
    cc.wholeZone = true;
    cc.proactiveCompaction = proactive;
    best = Math.max(best, compactZone(st.core, cc));
    if (proactive) {
      st.core.vmstat.inc(st.vm.daemonMigrateScanned, cc.totalMigrateScanned);
      st.core.vmstat.inc(st.vm.daemonFreeScanned, cc.totalFreeScanned);
    }
  }
  return best;
}

/**
 * compactNodeProactive - one proactive compaction pass over node @nid, as kcompactd runs it when
 * the node's fragmentation score is above the high mark (proactive_compact_node): each zone until
 * its score falls to the low mark or its scanners meet.
 *
 * Return: what the pass did. Context: charges the caller.
 */
export function compactNodeProactive(core: MmCore, nid: number): CompactReport {
  const st = state(core);
  if (!st.kcompactd[nid]) throw new RangeError(`compaction: no node ${nid}`);
  return reportDuring(st, () => compactNode(st, nid, true));
}

// ---------------------------------------------------------------------------------------------
// kcompactd

/** compaction_suit_allocation_order: CONTINUE when compacting @zone for @order is worth it. */
function suitAllocationOrder(core: MmCore, zone: Zone, order: number, highest: number): number {
  if (zoneWatermarkOk(zone, order, zone.watermarkMin, highest, 0)) return COMPACT_SUCCESS;
  if (!compactionSuitable(core, zone, order, highest)) return COMPACT_SKIPPED;
  return COMPACT_CONTINUE;
}

/**
 * wakeupKcompactd - ask node @nid's kcompactd to compact for @order (wakeup_kcompactd), as the
 * allocator does for a high-order allocation that may not compact itself and kswapd does when it
 * goes to sleep. Nothing happens for order 0, before initCompaction, or when no zone of the node
 * up to @highestZoneIdx would benefit. The work runs as a background event shortly after.
 */
export function wakeupKcompactd(core: MmCore, nid: number, order: number, highestZoneIdx: number): void {
  if (order <= 0) return;
  const st = state(core);
  const k = st.kcompactd[nid];
  if (!k || !st.initialized || !core.scheduler) return;
  if (k.maxOrder < order) k.maxOrder = order;
  if (k.highestZoneIdx > highestZoneIdx) k.highestZoneIdx = highestZoneIdx;
  if (k.workEvent !== null) return;
  let suitable = false;
  for (const z of nodeZones(st.alloc, nid)) {
    if (z.zoneIdx > k.highestZoneIdx || !z.populated) continue;
    if (suitAllocationOrder(core, z, k.maxOrder, k.highestZoneIdx) === COMPACT_CONTINUE) suitable = true;
  }
  if (!suitable) return;
  k.workEvent = scheduleBackground(core.scheduler, st.config.kcompactdWakeupNs, () => {
    k.workEvent = null;
    asKthread(core, k, () => kcompactdDoWork(st, k));
  });
}

/** kcompactd_do_work: compact the node's zones for the order it was woken for. */
function kcompactdDoWork(st: CompactionState, k: KcompactdState): void {
  const core = st.core;
  const order = k.maxOrder;
  const highest = k.highestZoneIdx;
  k.wakeups++;
  core.vmstat.inc(st.vm.daemonWake);
  reportDuring(st, () => {
    for (const zone of nodeZones(st.alloc, k.nid)) {
      if (zone.zoneIdx > highest || !zone.populated) continue;
      const zs = st.zones[zone.id];
      if (compactionDeferred(zs, order)) continue;
      if (suitAllocationOrder(core, zone, order, zone.zoneIdx) !== COMPACT_CONTINUE) continue;
      const cc = newCompactControl(zone, order, GFP_KERNEL, MIGRATE_SYNC_LIGHT);
      cc.highestZoneIdx = highest;
      const status = compactZone(core, cc);
      if (status === COMPACT_SUCCESS) compactionDeferReset(zs, order, false);
      else if (status === COMPACT_PARTIAL_SKIPPED || status === COMPACT_COMPLETE)
        deferCompaction(st, zs, order);
      core.vmstat.inc(st.vm.daemonMigrateScanned, cc.totalMigrateScanned);
      core.vmstat.inc(st.vm.daemonFreeScanned, cc.totalFreeScanned);
    }
    return 0;
  });
  if (k.maxOrder <= order) k.maxOrder = 0;
  if (k.highestZoneIdx >= highest) k.highestZoneIdx = MAX_NR_ZONES - 1;
}

/** The periodic half of kcompactd(): proactive compaction when the score is above the high mark. */
function kcompactdTimer(st: CompactionState, k: KcompactdState): void {
  const core = st.core;
  const interval = st.config.kcompactdCheckIntervalMs * 1e6;
  let timeout = interval;
  k.timerEvent = null;
  if (core.sysctl['vm.compaction_proactiveness'] > 0) {
    const prev = fragmentationScoreNode(core, k.nid);
    if (prev > fragmentationScoreWmark(core, false)) {
      asKthread(core, k, () => {
        k.proactiveRuns++;
        reportDuring(st, () => compactNode(st, k.nid, true));
      });
      // No progress: back off, as the kernel does, for interval << COMPACT_MAX_DEFER_SHIFT.
      if (fragmentationScoreNode(core, k.nid) >= prev)
        timeout = interval * 2 ** st.config.compactMaxDeferShift;
    }
  }
  if (core.scheduler) k.timerEvent = scheduleBackground(core.scheduler, timeout, () => kcompactdTimer(st, k));
}

/**
 * initCompaction - start compaction on @core's kernel (kcompactd_init + the allocator's
 * compaction hooks): installs the allocator's directCompact and wakeKcompactd hooks (keeping the
 * others) and starts one kcompactd per node, which checks its node's fragmentation score every
 * 500 ms (kcompactdCheckIntervalMs) as a background event. Idempotent.
 *
 * Context: needs core.scheduler for kcompactd (without one, only direct compaction is set up).
 */
export function initCompaction(core: MmCore): void {
  const st = state(core);
  if (st.initialized) return;
  st.initialized = true;
  const alloc = st.alloc;
  alloc.setHooks({
    ...alloc.getHooks(),
    directCompact: (gfp, order, nid) => directCompact(st, gfp, order, nid),
    wakeKcompactd: (nid, zoneIdx, order) => wakeupKcompactd(core, nid, order, zoneIdx),
  });
  const sched = core.scheduler;
  if (!sched) return;
  const interval = st.config.kcompactdCheckIntervalMs * 1e6;
  for (const k of st.kcompactd)
    k.timerEvent = scheduleBackground(sched, interval, () => kcompactdTimer(st, k));
}

/** compactionInitialized - whether initCompaction ran on @core. */
export function compactionInitialized(core: MmCore): boolean {
  return states.get(core)?.initialized ?? false;
}
