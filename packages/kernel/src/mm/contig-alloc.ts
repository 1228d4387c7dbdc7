/**
 * Contiguous allocation by migration (mm/page_alloc.c alloc_contig_range, alloc_contig_pages,
 * free_contig_range) and the CMA allocator on top of it (mm/cma.c cma_alloc).
 *
 * alloc_contig_range isolates the range's pageblocks, migrates every busy LRU folio out of it
 * (__alloc_contig_migrate_range: batches of COMPACT_CLUSTER_MAX, a batch that keeps failing is
 * retried until 5 passes in a row made no progress, then -EBUSY; -ENOMEM stops at once), checks
 * that the whole range is now free and takes it off the buddy in one piece.
 *
 * What pins do here: the migrate scan does not even isolate an anonymous folio with more
 * references than mappings, and a pinned shmem folio fails migration every pass; either way the
 * range never becomes free and the call fails with -EBUSY after migrating everything else out. A
 * single pinned page in a CMA area therefore fails every cma_alloc whose candidate ranges all
 * contain it (cma_alloc_fail), and one pinned page per 1 GiB range stops run-time gigantic pages.
 *
 * Differences from the kernel: migration targets are allocated as GFP_HIGHUSER_MOVABLE, so a page
 * leaving ZONE_NORMAL may land in ZONE_MOVABLE (the kernel adds __GFP_HIGHMEM only for pages
 * already there); hugetlb folios in the range are not migrated or dissolved (the range fails);
 * clean page-cache pages are not reclaimed instead of migrated (svasim has none).
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SHIFT } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import type { CmaArea } from './cma';
import {
  chargedDuring,
  compactionConfig,
  isolateMigratepagesBlock,
  newCompactControl,
  pageAllocatorOf,
  zonelistFor,
  type CompactControl,
} from './compaction';
import {
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_TRANSHUGE,
  MIGRATE_CMA,
  MIGRATE_MOVABLE,
  PAGEBLOCK_NR_PAGES,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
} from './gfp';
import { emptyMigrateStats, migratePages, putbackMovableFolio } from './migrate';
import { MIGRATE_SYNC, MR_CONTIG_RANGE } from './migrate-types';
import type { MmCore } from './mm-core';
import { tunableValues, type Tunable } from './mm-config';
import type { PageAllocator } from './page-alloc';
import { PG_hugetlb, PG_offline, PG_reserved, PG_tail } from './page-flags';
import { startIsolatePageRange, testPagesIsolated, undoIsolatePageRange } from './page-isolation';
import type { Zone } from './zone';

/** Tunables of contiguous allocation, with their kernel sources. */
export const CONTIG_ALLOC_DEFAULTS = {
  maxTriesWithoutProgress: {
    value: 5,
    unit: 'passes',
    description:
      'migration passes over a batch that keeps failing before alloc_contig_range gives up with -EBUSY',
    source: 'mm/page_alloc.c __alloc_contig_migrate_range (++tries == 5)',
  },
  cmaAlignmentOrder: {
    value: 8,
    unit: 'order',
    description: 'largest alignment the DMA layer asks of a CMA allocation (1 MiB)',
    source: 'kernel/dma/Kconfig CMA_ALIGNMENT default 8',
  },
} satisfies Record<string, Tunable<number>>;

/** ContigConfig - plain values of CONTIG_ALLOC_DEFAULTS. */
export type ContigConfig = { [K in keyof typeof CONTIG_ALLOC_DEFAULTS]: number };

/** ContigCounters - what alloc_contig_range did since boot (all callers: CMA, gigantic pages). */
export interface ContigCounters {
  /** alloc_contig_range calls. */
  attempts: number;
  /** Calls that returned 0. */
  successes: number;
  /** Calls that failed with -EBUSY (an unmovable, pinned or busy page stayed in the range). */
  busy: number;
  /** Pages migrated out of ranges being allocated. */
  migrated: number;
  /** Pages whose migration failed. */
  failed: number;
  /** Anonymous folios not isolated because refcount > mapcount (pinned). */
  skippedPinned: number;
  /** Pfns scanned for movable folios. */
  scanned: number;
}

interface ContigState {
  config: ContigConfig;
  counters: ContigCounters;
}

const states = new WeakMap<MmCore, ContigState>();

function state(core: MmCore): ContigState {
  let st = states.get(core);
  if (!st) {
    st = {
      config: tunableValues(CONTIG_ALLOC_DEFAULTS) as ContigConfig,
      counters: { attempts: 0, successes: 0, busy: 0, migrated: 0, failed: 0, skippedPinned: 0, scanned: 0 },
    };
    states.set(core, st);
  }
  return st;
}

/** contigConfig - the live contiguous-allocation tunables of @core's kernel. */
export function contigConfig(core: MmCore): ContigConfig {
  return state(core).config;
}

/** contigCounters - a copy of what alloc_contig_range did on @core since boot. */
export function contigCounters(core: MmCore): ContigCounters {
  return { ...state(core).counters };
}

/**
 * allocMigrationTarget - a destination for a folio of @order leaving a range being emptied
 * (alloc_migration_target): movable memory, the folio's node @nid first, any node after; a large
 * folio gets a compound block of its order. With @otherNodes (memory offlining), node @nid is
 * used only when no other node has memory.
 *
 * Return: the new head pfn (refcount 1), or -1. Context: may compact or reclaim.
 */
export function allocMigrationTarget(
  alloc: PageAllocator,
  nid: number,
  order: number,
  otherNodes = false,
): number {
  const gfp = (order > 0 ? GFP_TRANSHUGE : GFP_HIGHUSER_MOVABLE) | __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
  const n = alloc.nodes.length;
  if (!otherNodes || n === 1) return alloc.allocPages(gfp, order, nid);
  for (let k = 1; k < n; k++) {
    const pfn = alloc.allocPages(gfp | __GFP_THISNODE, order, (nid + k) % n);
    if (pfn >= 0) return pfn;
  }
  return -1;
}

/**
 * isolateMigratepagesRange - isolate movable folios of [@startPfn, @endPfn) pageblock by
 * pageblock until a batch of COMPACT_CLUSTER_MAX is full (isolate_migratepages_range), mlocked
 * and compound ones included. cc.migratePfn says where the next call resumes.
 */
export function isolateMigratepagesRange(
  core: MmCore,
  cc: CompactControl,
  startPfn: number,
  endPfn: number,
): void {
  const clusterMax = compactionConfig(core).compactClusterMax;
  let pfn = startPfn;
  let blockEnd = pfn - (pfn & (PAGEBLOCK_NR_PAGES - 1)) + PAGEBLOCK_NR_PAGES;
  cc.migratePfn = startPfn;
  for (; pfn < endPfn; pfn = blockEnd, blockEnd += PAGEBLOCK_NR_PAGES) {
    isolateMigratepagesBlock(core, cc, pfn, Math.min(blockEnd, endPfn), true);
    if (cc.nrMigratepages >= clusterMax) break;
  }
}

/**
 * __alloc_contig_migrate_range: migrate every movable folio out of [@start, @end). A batch that
 * keeps failing is retried until maxTriesWithoutProgress passes in a row made none; -ENOMEM
 * (no target memory) stops at once. Failed folios are put back.
 */
function allocContigMigrateRange(core: MmCore, cc: CompactControl, start: number, end: number): number {
  const st = state(core);
  const alloc = pageAllocatorOf(core);
  const nid = cc.zone.nid;
  const newFolio = (_src: number, order: number) => allocMigrationTarget(alloc, nid, order);
  let pfn = start;
  let tries = 0;
  let ret = 0;
  while (pfn < end || cc.migratepages.length > 0) {
    if (cc.migratepages.length === 0) {
      cc.nrMigratepages = 0;
      isolateMigratepagesRange(core, cc, pfn, end);
      pfn = cc.migratePfn;
      tries = 0;
    } else if (++tries === st.config.maxTriesWithoutProgress) {
      ret = -ERRNO.EBUSY;
      break;
    }
    const stats = emptyMigrateStats();
    ret = migratePages(core, cc.migratepages, newFolio, cc.mode, MR_CONTIG_RANGE, stats);
    for (const [, dst] of stats.moved) st.counters.migrated += 2 ** core.frames.getOrder(dst);
    cc.migratepages = stats.failedFolios.slice();
    cc.nrMigratepages = 0;
    for (const h of cc.migratepages) cc.nrMigratepages += 2 ** core.frames.getOrder(h);
    if (ret === -ERRNO.ENOMEM) break;
  }
  for (const h of cc.migratepages) {
    st.counters.failed += 2 ** core.frames.getOrder(h);
    putbackMovableFolio(core, h);
  }
  cc.migratepages = [];
  cc.nrMigratepages = 0;
  return ret < 0 ? ret : 0;
}

/**
 * allocContigRange - allocate the pages [@start, @end) by emptying the range (alloc_contig_range):
 * isolate its pageblocks, migrate busy folios away, verify the range is free, take it off the
 * buddy.
 * @migratetype: MIGRATE_CMA for a CMA area (its pageblocks count as movable and stay CMA),
 *     MIGRATE_MOVABLE otherwise.
 * @gfp: the caller's mask (GFP_KERNEL for cma_alloc); migration targets are always movable memory.
 *
 * Return: 0 with every page of the range allocated (refcount 1, otherwise clean, order 0);
 * -EINVAL for a range outside memory or across zones; -EBUSY when an unmovable page is in the way
 * or a page stayed busy (pinned, or failing migration 5 passes in a row); -ENOMEM when no
 * migration target could be allocated. Released by freeContigRange(core, start, end - start).
 * Context: charges scanning and migration to the caller; the isolation is undone before return.
 */
export function allocContigRange(
  core: MmCore,
  start: number,
  end: number,
  migratetype: number,
  gfp: number = GFP_KERNEL,
): number {
  const alloc = pageAllocatorOf(core);
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= alloc.maxPfn && start < end))
    return -ERRNO.EINVAL;
  const zone = alloc.zoneOf(start);
  if (!zone.spansPfn(end - 1) || alloc.zoneOf(end - 1) !== zone) return -ERRNO.EINVAL;
  const st = state(core);
  st.counters.attempts++;
  let ret = startIsolatePageRange(alloc, start, end, migratetype, 0);
  if (ret) {
    if (ret === -ERRNO.EBUSY) st.counters.busy++;
    return ret;
  }
  const cc = newCompactControl(zone, -1, gfp, MIGRATE_SYNC);
  cc.ignoreSkipHint = true;
  cc.noSetSkipHint = true;
  cc.allocContig = true;
  ret = allocContigMigrateRange(core, cc, start, end);
  st.counters.skippedPinned += cc.nrPinnedSkipped;
  st.counters.scanned += cc.totalMigrateScanned;
  if (ret === 0 || ret === -ERRNO.EBUSY) {
    ret = testPagesIsolated(alloc, start, end, 0);
    if (ret === 0) {
      alloc.takeFreeRange(start, end - start);
      alloc.frames.refcount.fill(1, start, end);
    }
  }
  undoIsolatePageRange(alloc, start, end);
  if (ret === 0) st.counters.successes++;
  else if (ret === -ERRNO.EBUSY) st.counters.busy++;
  return ret;
}

/**
 * freeContigRange - drop one reference on each page of [@pfn, @pfn + @nrPages) that
 * allocContigRange (or cmaAlloc) gave out, freeing those that reach zero (free_contig_range).
 *
 * Return: the number of pages still in use by someone else (the kernel WARNs "N pages are still
 * in use!"; here it is also printed to dmesg).
 */
export function freeContigRange(core: MmCore, pfn: number, nrPages: number): number {
  const alloc = pageAllocatorOf(core);
  const ref = alloc.frames.refcount;
  let inUse = 0;
  let runStart = -1;
  const flush = (p: number) => {
    if (runStart >= 0) alloc.freeRange(runStart, p - runStart);
    runStart = -1;
  };
  for (let p = pfn; p < pfn + nrPages; p++) {
    if (ref[p] !== 1) {
      flush(p);
      inUse++;
      ref[p]--;
      continue;
    }
    if (runStart < 0) runStart = p;
  }
  flush(pfn + nrPages);
  if (inUse) core.dmesg.printk(`WARNING: free_contig_range: ${inUse} pages are still in use!`);
  return inUse;
}

/** pfn_range_valid_contig: the whole range online, in @zone, and free of reserved and hugetlb pages. */
function pfnRangeValidContig(alloc: PageAllocator, zone: Zone, start: number, nr: number): boolean {
  const f = alloc.frames;
  const fl = f.flags;
  for (let p = start; p < start + nr; p++) {
    if (alloc.zoneOf(p) !== zone) return false;
    const flags = fl[p];
    if (flags & (PG_reserved | PG_offline)) return false;
    const head = flags & PG_tail ? f.mapping[p] - 1 : p;
    if (fl[head] & PG_hugetlb) return false;
  }
  return true;
}

/**
 * allocContigPages - find and allocate @nrPages contiguous pages, aligned to @nrPages, anywhere in
 * the zones @gfp allows on node @nid and (without __GFP_THISNODE) the other nodes
 * (alloc_contig_pages): each zone's aligned candidate ranges from the bottom, skipping those with
 * reserved or hugetlb pages, trying alloc_contig_range on the others until one succeeds.
 *
 * Return: the first pfn (each page refcount 1), or -1. Released by freeContigRange(core, pfn,
 * nrPages). Context: charges the scans and migrations of every attempt to the caller.
 */
export function allocContigPages(core: MmCore, nrPages: number, gfp: number, nid: number): number {
  const alloc = pageAllocatorOf(core);
  if (!Number.isInteger(nrPages) || nrPages <= 0) return -1;
  const scanNs = compactionConfig(core).migrateScanNsPerPfn;
  for (const zone of zonelistFor(alloc, nid < 0 ? 0 : nid, gfp)) {
    let pfn = Math.ceil(zone.startPfn / nrPages) * nrPages;
    for (; pfn + nrPages <= zone.endPfn; pfn += nrPages) {
      core.charge(nrPages * scanNs);
      if (!pfnRangeValidContig(alloc, zone, pfn, nrPages)) continue;
      if (allocContigRange(core, pfn, pfn + nrPages, MIGRATE_MOVABLE, gfp) === 0) return pfn;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// CMA

/**
 * cmaAlloc - allocate @nrPages contiguous pages from CMA area @area, migrating whatever movable
 * pages the buddy lent out of the way (cma_alloc). Candidate ranges are tried from the bottom of
 * the area, each aligned to 2^@align pages and clear in the area's bitmap; a candidate that fails
 * with -EBUSY is followed by the next aligned one after its start.
 * @noWarn: no "alloc failed" line in dmesg.
 *
 * Return: the first pfn (each page refcount 1) counted as cma_alloc_success, or a negative errno
 * counted as cma_alloc_fail: -EBUSY (the last candidate tried stayed busy: a pinned or unmovable
 * page), -ENOMEM (no free candidate in the bitmap, or no migration target), -EINVAL (bad size).
 * The kernel returns NULL and prints the errno; svasim returns it. Released by
 * cmaRelease(alloc, area, pfn, nrPages) (cma.ts).
 */
export function cmaAlloc(core: MmCore, area: CmaArea, nrPages: number, align = 0, noWarn = false): number {
  if (!Number.isInteger(nrPages) || nrPages <= 0 || !Number.isInteger(align) || align < 0)
    return -ERRNO.EINVAL;
  const n = 2 ** align;
  let ret = -ERRNO.ENOMEM;
  let page = -1;
  let start = area.basePfn;
  for (;;) {
    // bitmap_find_next_zero_area_off: aligned in pfn space, all bits clear.
    let cand = Math.ceil(start / n) * n;
    let found = -1;
    while (cand + nrPages <= area.endPfn) {
      const bad = area.firstAllocated(cand, cand + nrPages);
      if (bad < 0) {
        found = cand;
        break;
      }
      cand = Math.ceil((bad + 1) / n) * n;
    }
    if (found < 0) break;
    area.markRange(found, found + nrPages, true);
    ret = allocContigRange(core, found, found + nrPages, MIGRATE_CMA, GFP_KERNEL);
    if (ret === 0) {
      page = found;
      break;
    }
    area.markRange(found, found + nrPages, false);
    if (ret !== -ERRNO.EBUSY) break;
    start = found + n;
  }
  if (page >= 0) {
    area.allocatedPages += nrPages;
    core.vmstat.inc(VM.cma_alloc_success);
    return page;
  }
  core.vmstat.inc(VM.cma_alloc_fail);
  if (!noWarn) core.dmesg.printk(`cma: cma_alloc: alloc failed, req-size: ${nrPages} pages, ret: ${ret}`);
  return ret;
}

/** CmaAllocResult - what cmaAllocBytes got. */
export interface CmaAllocResult {
  ok: boolean;
  /** First pfn of the allocation when ok. */
  pfn?: number;
  /** The area it came from when ok. */
  area?: CmaArea;
  /** Pages allocated (the request rounded up to whole pages). */
  nrPages: number;
  /** The errno of the last attempt when not ok. */
  errno?: number;
  /** Simulated ns the allocation took (scanning and migration charged to the caller). */
  latencyNs: number;
}

/** get_order: the smallest order whose block holds @bytes. */
function getOrder(bytes: number): number {
  let order = 0;
  while (2 ** (order + PAGE_SHIFT) < bytes) order++;
  return order;
}

/**
 * cmaAllocBytes - allocate @bytes of contiguous memory from CMA the way a driver's
 * dma_alloc_coherent does (dma_alloc_contiguous): whole pages, aligned to the size's order capped
 * at CONFIG_CMA_ALIGNMENT; areas with enough unallocated pages are tried in node order (when none
 * has, the largest is tried anyway, so the failure is counted).
 *
 * Return: the result with the simulated latency. Released by cmaRelease(alloc, result.area,
 * result.pfn, result.nrPages).
 */
export function cmaAllocBytes(core: MmCore, bytes: number): CmaAllocResult {
  const alloc = pageAllocatorOf(core);
  const nrPages = Math.ceil(bytes / 2 ** PAGE_SHIFT);
  if (!(bytes > 0) || !Number.isFinite(bytes))
    return { ok: false, nrPages: 0, errno: -ERRNO.EINVAL, latencyNs: 0 };
  const align = Math.min(getOrder(bytes), state(core).config.cmaAlignmentOrder);
  const { value, ns } = chargedDuring(core, (): Omit<CmaAllocResult, 'latencyNs'> => {
    let areas = alloc.cmaAreas.filter((a) => a.count - a.allocatedPages >= nrPages);
    if (areas.length === 0 && alloc.cmaAreas.length > 0)
      areas = [alloc.cmaAreas.reduce((a, b) => (b.count > a.count ? b : a))];
    let errno = -ERRNO.ENOMEM;
    for (const area of areas) {
      const r = cmaAlloc(core, area, nrPages, align);
      if (r >= 0) return { ok: true, pfn: r, area, nrPages };
      errno = r;
    }
    return { ok: false, nrPages, errno };
  });
  return { ...value, latencyNs: ns };
}
