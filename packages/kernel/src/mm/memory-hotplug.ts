/**
 * Memory offlining (mm/memory_hotplug.c offline_pages, scan_movable_pages, do_migrate_range;
 * drivers/base/memory.c memory blocks): isolate a range of whole memory blocks, migrate everything
 * movable out of it, and once it is entirely free take it out of the buddy for good (the pages
 * become PG_offline | PG_reserved and the zone's managed pages shrink).
 *
 * What pins do here: start_isolate_page_range accepts a pinned LRU page as movable, and
 * offline_pages then retries scan_movable_pages + do_migrate_range with no limit: the kernel keeps
 * trying until the pin goes away or a signal arrives. A pinned page in ZONE_MOVABLE therefore
 * blocks offlining indefinitely.
 *
 * svasim's model of that loop: a call is synchronous, so nothing else runs while it spins, and a
 * pass that moves nothing is followed by identical passes. Each pass is charged its cost (scan,
 * failed migration attempts, a fixed overhead); the first pass without progress is extrapolated
 * to the time limit at once: with `timeoutNs` (as offline_and_remove_memory callers and kernels
 * before 5.7, which had a 120 s timeout, bound it) the call fails with -ETIMEDOUT after that much
 * simulated time; without one it gives up after MEMORY_HOTPLUG_DEFAULTS.offlineGiveUpNs (10 s)
 * with -EBUSY, where the kernel would still be looping. Both print the kernel's
 * "memory offlining [mem ...] failed due to ..." line. The pin holder cannot release its pin
 * during the call (no other task runs); -EINTR (a signal) is not modelled.
 *
 * Differences from the kernel: hugetlb folios in the range make isolation fail (the kernel
 * migrates in-use ones and dissolves free ones); memory blocks are 128 MiB whatever the machine
 * size; offline memory stays in its zone's span (as the kernel leaves it until the zone shrinks).
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SHIFT } from '../uapi/mman';
import { chargedDuring, pageAllocatorOf } from './compaction';
import { allocMigrationTarget } from './contig-alloc';
import { MIGRATE_MOVABLE, PAGEBLOCK_NR_PAGES } from './gfp';
import {
  completeAllMigrations,
  emptyMigrateStats,
  isolateLruFolio,
  migratePages,
  pendingMigrations,
  putbackMovableFolio,
} from './migrate';
import { MIGRATE_SYNC, MR_MEMORY_HOTPLUG } from './migrate-types';
import type { MmCore } from './mm-core';
import { tunableValues, type Tunable } from './mm-config';
import type { PageAllocator } from './page-alloc';
import { PG_buddy, PG_head, PG_hugetlb, PG_lru, PG_offline, PG_reserved, PG_tail } from './page-flags';
import { ORDER_SHIFT } from './page-frames';
import {
  MEMORY_OFFLINE,
  REPORT_FAILURE,
  forgetIsolation,
  startIsolatePageRange,
  testPagesIsolated,
  undoIsolatePageRange,
} from './page-isolation';

/** Tunables of memory offlining, each with unit and source. */
export const MEMORY_HOTPLUG_DEFAULTS = {
  memoryBlockBytes: {
    value: 128 * 2 ** 20,
    unit: 'bytes',
    description:
      'memory block size (/sys/devices/system/memory/block_size_bytes): offlining works in whole blocks',
    source:
      'arch/x86/mm/init_64.c MIN_MEMORY_BLOCK_SIZE = 128 MiB (x86-64 uses up to 2 GiB blocks on machines of 64 GiB or more)',
  },
  offlineGiveUpNs: {
    value: 10e9,
    unit: 'ns',
    description:
      'svasim: an offline without a timeout that stops making progress fails with -EBUSY after this much simulated time (the kernel retries until a signal)',
    source: 'svasim modelling choice (pre-5.7 kernels gave up after 120 s)',
  },
  offlinePassNs: {
    value: 1000,
    unit: 'ns',
    description: 'fixed cost of one pass of the offline retry loop (cond_resched, scan set-up, putback)',
    source: 'estimate',
  },
  scanNsPerPfn: {
    value: 2,
    unit: 'ns/pfn',
    description: 'scan_movable_pages / do_migrate_range: examine one struct page',
    source: 'estimate, as compaction-config migrateScanNsPerPfn',
  },
  failedFolioNs: {
    value: 2000,
    unit: 'ns',
    description:
      'one migrate_pages() call failing on a busy folio: NR_MAX_MIGRATE_PAGES_RETRY (10) unmap attempts',
    source: '10 x MIGRATE_COST_DEFAULTS.perFolioOverhead (200 ns)',
  },
} satisfies Record<string, Tunable<number>>;

/** MemoryHotplugConfig - plain values of MEMORY_HOTPLUG_DEFAULTS. */
export type MemoryHotplugConfig = { [K in keyof typeof MEMORY_HOTPLUG_DEFAULTS]: number };

/** OfflineStats - what one offlinePages call did. */
export interface OfflineStats {
  /** Passes of the scan + migrate loop (extrapolated passes included). */
  passes: number;
  /** Pages migrated out of the range. */
  migratedPages: number;
  /** Failed folio migrations, summed over passes. */
  failedMigrations: number;
  /** Simulated ns the call took. */
  elapsedNs: number;
  /** The kernel's failure reason ("failure to isolate range", "timeout", ...), when it failed. */
  reason?: string;
}

const configs = new WeakMap<MmCore, MemoryHotplugConfig>();

/** memoryHotplugConfig - the live offlining tunables of @core's kernel. */
export function memoryHotplugConfig(core: MmCore): MemoryHotplugConfig {
  let c = configs.get(core);
  if (!c) configs.set(core, (c = tunableValues(MEMORY_HOTPLUG_DEFAULTS) as MemoryHotplugConfig));
  return c;
}

/** The kernel's "[mem %#010llx-%#010llx]" of a pfn range. */
function memRange(start: number, end: number): string {
  const hex = (b: number) => `0x${b.toString(16).padStart(8, '0')}`;
  return `[mem ${hex(start * 2 ** PAGE_SHIFT)}-${hex(end * 2 ** PAGE_SHIFT - 1)}]`;
}

/**
 * scanMovablePages - the first pfn of [@start, @end) holding a folio on the LRU
 * (scan_movable_pages).
 *
 * Return: { ret: 0, pfn } when one is found; { ret: -ENOENT } when nothing movable remains;
 * { ret: -EBUSY } at a PG_offline page still referenced. Also the pfns examined.
 */
export function scanMovablePages(
  alloc: PageAllocator,
  start: number,
  end: number,
): { ret: number; pfn: number; scanned: number } {
  const f = alloc.frames;
  const fl = f.flags;
  let scanned = 0;
  for (let pfn = start; pfn < end; pfn++) {
    scanned++;
    const flags = fl[pfn];
    if (flags & PG_buddy) {
      pfn += 2 ** (flags >>> ORDER_SHIFT) - 1;
      continue;
    }
    const head = flags & PG_tail ? f.mapping[pfn] - 1 : pfn;
    if (fl[head] & PG_lru) return { ret: 0, pfn, scanned };
    if (flags & PG_offline && f.refcount[pfn] > 0) return { ret: -ERRNO.EBUSY, pfn, scanned };
    if (fl[head] & PG_head) pfn = head + 2 ** f.getOrder(head) - 1;
  }
  return { ret: -ERRNO.ENOENT, pfn: end, scanned };
}

/**
 * doMigrateRange - isolate every in-use LRU folio of [@start, @end) and migrate the lot, to other
 * nodes when there are any (do_migrate_range). Folios that fail are put back; both failures are
 * logged ratelimited, as the kernel does.
 *
 * Return: folios isolated, folios that failed, pages migrated and pfns examined.
 */
export function doMigrateRange(
  core: MmCore,
  start: number,
  end: number,
): { isolated: number; failed: number; migratedPages: number; scanned: number } {
  const alloc = pageAllocatorOf(core);
  const f = core.frames;
  const fl = f.flags;
  const source: number[] = [];
  let scanned = 0;
  for (let pfn = start; pfn < end; pfn++) {
    scanned++;
    const flags = fl[pfn];
    if (flags & PG_buddy) {
      pfn += 2 ** (flags >>> ORDER_SHIFT) - 1;
      continue;
    }
    const head = flags & PG_tail ? f.mapping[pfn] - 1 : pfn;
    if (f.refcount[head] === 0) continue;
    if (fl[head] & PG_head) pfn = head + 2 ** f.getOrder(head) - 1;
    if (fl[head] & PG_hugetlb || !(fl[head] & PG_lru)) continue;
    if (!isolateLruFolio(core, head)) {
      core.dmesg.printkRatelimited('do_migrate_range', `failed to isolate pfn ${head.toString(16)}`);
      continue;
    }
    source.push(head);
  }
  if (source.length === 0) return { isolated: 0, failed: 0, migratedPages: 0, scanned };
  const nid = alloc.nodeOf(source[0]);
  const stats = emptyMigrateStats();
  const ret = migratePages(
    core,
    source,
    (_src, order) => allocMigrationTarget(alloc, nid, order, true),
    MIGRATE_SYNC,
    MR_MEMORY_HOTPLUG,
    stats,
  );
  let migratedPages = 0;
  for (const [, dst] of stats.moved) migratedPages += 2 ** f.getOrder(dst);
  for (const h of stats.failedFolios) {
    core.dmesg.printkRatelimited('do_migrate_range', `migrating pfn ${h.toString(16)} failed ret:${ret}`);
    putbackMovableFolio(core, h);
  }
  return { isolated: source.length, failed: stats.failedFolios.length, migratedPages, scanned };
}

/**
 * offlinePages - take [@startPfn, @startPfn + @nrPages) offline (offline_pages): isolate it, then
 * loop scan_movable_pages + do_migrate_range until nothing movable is left and the range is free,
 * and remove it from the buddy. See the file comment for how the unbounded loop is modelled.
 * @opts.timeoutNs: give up after this much simulated time with -ETIMEDOUT.
 * @opts.stats: filled with what the call did.
 *
 * Return: 0 (the range is offline: its pages are PG_offline | PG_reserved, its pageblocks stay
 * MIGRATE_ISOLATE, the zone's managed pages and watermarks shrink; also 0 when it already was);
 * -EINVAL for a range that is not whole memory blocks, crosses zones or is partly offline; -EBUSY
 * when an unmovable page is in the range ("failure to isolate range") or after the give-up time
 * without progress; -ETIMEDOUT after @opts.timeoutNs. Released by onlinePages(core, startPfn,
 * nrPages). Context: charges the passes and migrations to the caller.
 */
export function offlinePages(
  core: MmCore,
  startPfn: number,
  nrPages: number,
  opts: { timeoutNs?: number; stats?: OfflineStats } = {},
): number {
  const alloc = pageAllocatorOf(core);
  const cfg = memoryHotplugConfig(core);
  const stats = opts.stats ?? { passes: 0, migratedPages: 0, failedMigrations: 0, elapsedNs: 0 };
  const blockPages = cfg.memoryBlockBytes / 2 ** PAGE_SHIFT;
  const endPfn = startPfn + nrPages;
  const limit = opts.timeoutNs ?? cfg.offlineGiveUpNs;
  if (
    !Number.isInteger(startPfn) ||
    !Number.isInteger(nrPages) ||
    nrPages <= 0 ||
    startPfn < 0 ||
    endPfn > alloc.maxPfn ||
    startPfn % PAGEBLOCK_NR_PAGES !== 0 ||
    endPfn % blockPages !== 0 ||
    !(limit >= 0)
  )
    return -ERRNO.EINVAL;
  const fl = alloc.frames.flags;
  let offline = 0;
  for (let p = startPfn; p < endPfn; p++) if (fl[p] & PG_offline) offline++;
  if (offline === nrPages) return 0;
  const fail = (ret: number, reason: string): number => {
    stats.reason = reason;
    core.dmesg.printk(`memory offlining ${memRange(startPfn, endPfn)} failed due to ${reason}`);
    return ret;
  };
  if (offline > 0) return fail(-ERRNO.EINVAL, 'mem range not online');
  const zone = alloc.zoneOf(startPfn);
  for (let p = startPfn; p < endPfn; p += PAGEBLOCK_NR_PAGES)
    if (alloc.zoneOf(p) !== zone) return fail(-ERRNO.EINVAL, 'multizone range');
  const timedOut = opts.timeoutNs !== undefined ? -ERRNO.ETIMEDOUT : -ERRNO.EBUSY;
  const timedOutReason = opts.timeoutNs !== undefined ? 'timeout' : 'migration failure';

  const { value, ns } = chargedDuring(core, (): number => {
    let ret = startIsolatePageRange(
      alloc,
      startPfn,
      endPfn,
      MIGRATE_MOVABLE,
      MEMORY_OFFLINE | REPORT_FAILURE,
      (m) => core.dmesg.printk(m),
    );
    if (ret) return fail(-ERRNO.EBUSY, 'failure to isolate range');
    const failIsolated = (r: number, reason: string): number => {
      undoIsolatePageRange(alloc, startPfn, endPfn);
      return fail(r, reason);
    };
    let elapsed = 0;
    // Every later pass repeats a pass that changed nothing: charge them up to the limit at once.
    const stuck = (passNs: number, failedPerPass: number): number => {
      const cost = Math.max(passNs, 1);
      const k = Math.max(Math.ceil((limit - elapsed) / cost), 0);
      core.charge(k * cost);
      elapsed += k * cost;
      stats.passes += k;
      stats.failedMigrations += k * failedPerPass;
      return failIsolated(timedOut, timedOutReason);
    };
    do {
      let pfn = startPfn;
      for (;;) {
        if (elapsed >= limit) return failIsolated(timedOut, timedOutReason);
        let scan = { ret: 0, pfn, scanned: 0 };
        let moved = { isolated: 0, failed: 0, migratedPages: 0, scanned: 0 };
        const pass = chargedDuring(core, () => {
          core.charge(cfg.offlinePassNs);
          scan = scanMovablePages(alloc, pfn, endPfn);
          if (scan.ret === 0) moved = doMigrateRange(core, scan.pfn, endPfn);
          core.charge((scan.scanned + moved.scanned) * cfg.scanNsPerPfn + moved.failed * cfg.failedFolioNs);
        });
        elapsed += pass.ns;
        stats.passes++;
        stats.migratedPages += moved.migratedPages;
        stats.failedMigrations += moved.failed;
        ret = scan.ret;
        if (ret !== 0) break;
        pfn = scan.pfn;
        if (moved.isolated - moved.failed <= 0) return stuck(pass.ns, moved.failed);
      }
      if (ret !== -ERRNO.ENOENT) return failIsolated(-ERRNO.EBUSY, 'unmovable page');
      ret = testPagesIsolated(alloc, startPfn, endPfn, MEMORY_OFFLINE);
      if (ret && pendingMigrations(core) > 0) {
        // A copy in its window still holds a source page here: wait for it, as the loop would.
        completeAllMigrations(core);
        continue;
      }
      if (ret) return stuck(cfg.offlinePassNs, 0);
    } while (ret);
    // __offline_isolated_pages: the free range leaves the buddy for good.
    alloc.takeFreeRange(startPfn, nrPages);
    fl.fill(PG_offline | PG_reserved, startPfn, endPfn);
    forgetIsolation(alloc, startPfn, endPfn);
    zone.managedPages -= nrPages;
    alloc.setMinFreeKbytes(alloc.minFreeKbytes);
    core.dmesg.printk(`Offlined Pages ${nrPages}`);
    return 0;
  });
  stats.elapsedNs = ns;
  return value;
}

/**
 * onlinePages - bring a range offlinePages took back (online_pages): its pages return to the
 * buddy as MIGRATE_MOVABLE pageblocks of the same zone, whose managed pages and watermarks grow.
 *
 * Return: 0, or -EINVAL when some page of the range is not offline.
 */
export function onlinePages(core: MmCore, startPfn: number, nrPages: number): number {
  const alloc = pageAllocatorOf(core);
  const endPfn = startPfn + nrPages;
  if (!Number.isInteger(startPfn) || !(nrPages > 0) || startPfn < 0 || endPfn > alloc.maxPfn)
    return -ERRNO.EINVAL;
  const fl = alloc.frames.flags;
  for (let p = startPfn; p < endPfn; p++) if (!(fl[p] & PG_offline)) return -ERRNO.EINVAL;
  fl.fill(0, startPfn, endPfn);
  for (let p = startPfn; p < endPfn; p += PAGEBLOCK_NR_PAGES)
    alloc.setPageblockMigratetype(p, MIGRATE_MOVABLE);
  alloc.zoneOf(startPfn).managedPages += nrPages;
  alloc.freeRange(startPfn, nrPages);
  alloc.setMinFreeKbytes(alloc.minFreeKbytes);
  core.dmesg.printk(`Onlined Pages ${nrPages}`);
  return 0;
}
