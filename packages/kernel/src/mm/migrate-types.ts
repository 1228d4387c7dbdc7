/**
 * Page-migration vocabulary (include/linux/migrate_mode.h, migrate.h).
 */

/** enum migrate_mode. ASYNC never waits (a busy folio is skipped); SYNC may wait. */
export const MIGRATE_ASYNC = 0;
export const MIGRATE_SYNC_LIGHT = 1;
export const MIGRATE_SYNC = 2;

/** enum migrate_reason: why pages move (counted per reason, shown in traces). */
export const MR_COMPACTION = 0;
export const MR_MEMORY_FAILURE = 1;
export const MR_MEMORY_HOTPLUG = 2;
export const MR_SYSCALL = 3;
export const MR_MEMPOLICY_MBIND = 4;
export const MR_NUMA_MISPLACED = 5;
export const MR_CONTIG_RANGE = 6;
export const MR_LONGTERM_PIN = 7;
export const MR_DEMOTION = 8;
export const MR_DAMON = 9;
export const MIGRATE_REASON_NAMES = [
  'compaction',
  'memory_failure',
  'memory_hotplug',
  'syscall_or_cpuset',
  'mempolicy_mbind',
  'numa_misplaced',
  'contig_range',
  'longterm_pin',
  'demotion',
  'damon',
] as const;

/** NR_MAX_MIGRATE_PAGES_RETRY: passes over the folios that answered -EAGAIN. */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;

/**
 * NewFolioFn - allocate the destination of `src` (a folio head of `order`): returns the new
 * head pfn with refcount 1 (a compound page for order > 0), or -1 when there is no memory.
 */
export type NewFolioFn = (src: number, order: number) => number;

/** What migratePages did, besides its return value. */
export interface MigrateStats {
  /** Folios moved. */
  succeeded: number;
  /** Folios that could not move (after the retries). */
  failed: number;
  /** Heads of the folios that failed, in input order (still isolated: the caller puts them back). */
  failedFolios: number[];
  /** For each moved folio, the pfn it moved to (same order as the input's successes). */
  moved: Array<[from: number, to: number]>;
}
