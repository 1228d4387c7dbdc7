/**
 * migrateBufferPages - do to a buffer what the kernel's background migrations (compaction, NUMA
 * balancing, CMA and offlining use the same migrate_pages) do to its pages: isolate each LRU
 * folio and migrate it to a newly allocated page, optionally leaving the migration entries in
 * place for a copy window, so that a device touching the buffer meanwhile faults on them (an IO
 * page fault that waits for the copy, as migration_entry_wait does). Pinned folios fail after
 * migrate_pages' retries and stay; hugetlb folios are not on the LRU, which those paths skip,
 * and are left alone.
 */
import {
  GFP_HIGHUSER_MOVABLE,
  MIGRATE_SYNC,
  MR_COMPACTION,
  PAGE_SIZE,
  PG_hugetlb,
  emptyMigrateStats,
  folioHead,
  isolateLruFolio,
  migratePages,
  putbackMovableFolio,
  type Kernel,
  type Process,
} from '@svasim/kernel';

/** What migrateBufferPages did. */
export interface MigrateBufferResult {
  /** Folios isolated and handed to migrate_pages. */
  tried: number;
  /** Folios moved (each to a new page). */
  moved: number;
  /** Folios migrate_pages gave up on (pinned, or referenced), put back where they were. */
  failed: number;
  /** Pages left alone: not present, hugetlb, or not isolatable (kernel, device memory). */
  skipped: number;
}

/**
 * migrateBufferPages - migrate the folios mapping [@addr, @addr + @len) of @proc.
 * @opts.windowNs: keep the migration entries for this long (simulated ns) before the copy
 *   completes; 0 (default) completes every copy before returning.
 * Returns the counts. Context: test code; the migration work is charged to whatever is current.
 */
export function migrateBufferPages(
  k: Kernel,
  proc: Process,
  addr: number,
  len: number,
  opts: { windowNs?: number } = {},
): MigrateBufferResult {
  const core = k.mmCore;
  const heads = new Set<number>();
  let skipped = 0;
  const start = addr - (addr % PAGE_SIZE);
  for (let va = start; va < addr + len; va += PAGE_SIZE) {
    const pm = proc.pagemap(va);
    if (!pm.present || pm.pfn === undefined) {
      skipped++;
      continue;
    }
    const head = folioHead(core, pm.pfn);
    if (core.frames.flags[head] & PG_hugetlb) skipped++;
    else heads.add(head);
  }
  const isolated: number[] = [];
  for (const h of heads) {
    if (isolateLruFolio(core, h)) isolated.push(h);
    else skipped++;
  }
  if (!isolated.length) return { tried: 0, moved: 0, failed: 0, skipped };
  const stats = emptyMigrateStats();
  const window = opts.windowNs ?? 0;
  migratePages(
    core,
    isolated,
    (_src, order) => k.phys.allocPages(GFP_HIGHUSER_MOVABLE, order),
    MIGRATE_SYNC,
    MR_COMPACTION,
    stats,
    { completeAt: window > 0 ? k.now() + window : 0 },
  );
  for (const f of stats.failedFolios) putbackMovableFolio(core, f);
  return { tried: isolated.length, moved: stats.succeeded, failed: stats.failed, skipped };
}
