import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import type { MmCore } from './mm-core';
import type { MmStruct } from './mm-struct';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_MIGRATE } from './notifier-hooks';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_buddy,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_isolated,
  PG_lru,
  PG_mlocked,
  PG_reserved,
  PG_shmem,
  PG_slab,
  PG_swapbacked,
  PG_tail,
  PG_unevictable,
} from './page-flags';
import { folioMaybeDmaPinned } from './page-ref';
import { LEVEL_PTE, LEVEL_SIZE } from './page-table';
import {
  PTE_DEVICE_EXCLUSIVE,
  PTE_DIRTY,
  PTE_MIGRATION,
  PTE_MIGRATION_WRITE,
  PTE_PRESENT,
  PTE_SPECIAL,
  PTE_SWP_EXCLUSIVE,
  PTE_WRITE,
  PTE_YOUNG,
  PTE_HUGE,
  PTE_USER,
  PTE_PROTNONE,
  PTE_NUMA,
} from './pte';
import { rmapWalk } from './rmap';
import { folioCallbackRefs, migrateCallbackRestore, migrateCallbackRevoke } from './migrate-callback';
import {
  MIGRATE_ASYNC,
  NR_MAX_MIGRATE_PAGES_RETRY,
  type MigrateStats,
  type NewFolioFn,
} from './migrate-types';
import type { VmAreaStruct } from './vma';
import { VM_WRITE } from './vm-flags';

/** Where one mapping of a migrating folio was, to restore it on the new folio. */
interface SavedMapping {
  mm: MmStruct;
  va: number;
  level: number;
  /** Which page of the folio the entry mapped (0 for a PMD/PUD mapping or a small folio). */
  sub: number;
  /** hi bits of the original entry (permissions) */
  hi: number;
}

/** One folio between unmap and completion. */
interface PendingMigration {
  src: number;
  dst: number;
  order: number;
  mappings: SavedMapping[];
  /** Simulated time at which the copy completes. */
  doneAt: number;
  done: boolean;
}

/** Costs of migration, in ns (CALIBRATION.md 3: move_pages on AMD Zen 3). */
export interface MigrateCosts {
  /** Per 4 KiB folio: 4096 B / 3.31 GB/s. */
  perPage: number;
  /** Per 2 MiB folio: 2 MiB / 11.02 GB/s. */
  perHugePage: number;
  /** Isolating, unmapping and remapping one folio (rmap walk, locking), beyond the copy. */
  perFolioOverhead: number;
}
export const MIGRATE_COST_DEFAULTS: MigrateCosts = {
  perPage: 1240,
  perHugePage: 190_000,
  perFolioOverhead: 200,
};

/** Migration state per kernel. */
const pendingOf = new WeakMap<MmCore, Map<number, PendingMigration>>();
function pending(core: MmCore): Map<number, PendingMigration> {
  let m = pendingOf.get(core);
  if (!m) pendingOf.set(core, (m = new Map()));
  return m;
}

/** migrationCost - simulated time to copy a folio of `order`. */
export function migrationCost(order: number, costs: MigrateCosts = MIGRATE_COST_DEFAULTS): number {
  if (order === 0) return costs.perPage + costs.perFolioOverhead;
  if (order >= 9) return costs.perHugePage * 2 ** (order - 9) + costs.perFolioOverhead;
  return costs.perPage * 2 ** order + costs.perFolioOverhead;
}

/**
 * isolateLruFolio - take a folio off the LRU so it can be migrated (folio_isolate_lru /
 * isolate_hugetlb): sets PG_isolated and takes a reference. Returns false for pages that are
 * not migratable user memory (free, reserved, kernel, tail, device or already isolated).
 * Released by putbackMovableFolio or by a successful migration.
 */
export function isolateLruFolio(core: MmCore, head: number): boolean {
  const f = core.frames;
  const flags = f.flags[head];
  if (flags & (PG_buddy | PG_tail | PG_reserved | PG_slab | PG_isolated)) return false;
  if (f.refcount[head] === 0) return false;
  if (!(flags & (PG_anon | PG_shmem))) return false;
  f.flags[head] = (flags & ~PG_lru) | PG_isolated;
  f.refcount[head]++;
  return true;
}

/** putbackMovableFolio - undo isolateLruFolio (putback_movable_pages for one folio). */
export function putbackMovableFolio(core: MmCore, head: number): void {
  const f = core.frames;
  if (!(f.flags[head] & PG_isolated)) return;
  f.flags[head] = (f.flags[head] & ~PG_isolated) | (f.flags[head] & PG_hugetlb ? 0 : PG_lru);
  if (--f.refcount[head] === 0) {
    // The last user went away while it was isolated: free it now.
    if (f.flags[head] & PG_hugetlb) core.hugetlb.freeHugetlbFolio(head);
    else core.alloc.freePages(head, f.getOrder(head));
  }
}

/**
 * folioExpectedRefs - references a migratable folio has with no extra users: one per mapping,
 * one for the page cache of a shmem folio, one for isolation (folio_expected_ref_count + the
 * caller's). More means a GUP reference or pin, and migration must fail.
 */
export function folioExpectedRefs(core: MmCore, head: number): number {
  const f = core.frames;
  const isolated = f.flags[head] & PG_isolated ? 1 : 0;
  const cache = f.flags[head] & PG_shmem ? 1 : 0;
  return f.mapcount[head] + cache + isolated;
}

/**
 * unmapForMigration - replace every mapping of the folio with a migration entry
 * (try_to_migrate), telling secondary MMUs first. Returns the saved mappings, or null when an
 * anonymous-exclusive folio may be pinned (folio_try_share_anon_rmap fails: -EBUSY), in which
 * case nothing changed.
 */
function unmapForMigration(core: MmCore, head: number): SavedMapping[] | null {
  const f = core.frames;
  if (f.flags[head] & PG_anon_exclusive && folioMaybeDmaPinned(core, head)) return null;
  const saved: SavedMapping[] = [];
  const targets: Array<[VmAreaStruct, number]> = [];
  rmapWalk(core, head, (vma, va) => {
    targets.push([vma, va]);
    return true;
  });
  const nr = f.flags[head] & PG_hugetlb ? 1 : f.folioNrPages(head);
  for (const [vma, va] of targets) {
    const mm = vma.mm;
    const pt = mm.pgtable;
    const t = pt.walk(va, false);
    if (!t) continue;
    const level = pt.level;
    const size = LEVEL_SIZE[level];
    const base = Math.floor(va / size) * size;
    const hi = t[pt.slot + 1];
    const pfn = t[pt.slot];
    // A device-exclusive entry maps the page like a present PTE (Linux 6.15+, "mm/rmap: handle
    // device-exclusive entries correctly in try_to_migrate_one()"): it becomes a migration entry
    // too, and the invalidation below is how its device learns it lost the page.
    const devExclusive = (hi & PTE_DEVICE_EXCLUSIVE) !== 0 && level === LEVEL_PTE;
    if ((!(hi & PTE_PRESENT) && !devExclusive) || hi & PTE_SPECIAL || pfn < head || pfn >= head + nr)
      continue;
    const range = mmuNotifierInvalidateRangeStart(mm, base, base + size, MMU_NOTIFY_MIGRATE);
    const tableId = pt.tableId;
    const slot = pt.slot;
    let entry = PTE_MIGRATION | (level === LEVEL_PTE ? 0 : PTE_HUGE);
    // Device-exclusive entries are always the writable kind: writable again where the VMA is.
    if (hi & PTE_WRITE || (devExclusive && vma.flags & VM_WRITE)) entry |= PTE_MIGRATION_WRITE;
    if (f.flags[head] & PG_anon_exclusive) entry |= PTE_SWP_EXCLUSIVE;
    pt.set(tableId, slot, pfn, entry);
    mmuNotifierInvalidateRangeEnd(range);
    saved.push({ mm, va: base, level, sub: pfn - head, hi });
    f.mapcount[head]--;
    f.refcount[head]--;
  }
  return saved;
}

/** Put the saved mappings back on `target` (remove_migration_ptes). */
function restoreMappings(core: MmCore, target: number, saved: SavedMapping[], src: number): void {
  const f = core.frames;
  for (const m of saved) {
    if (!m.mm.alive) continue;
    const pt = m.mm.pgtable;
    const t = pt.walk(m.va, false, m.level);
    if (!t || pt.level !== m.level) continue;
    const hi = t[pt.slot + 1];
    // The entry may have been zapped (munmap during the copy): then nothing to restore.
    if (!(hi & PTE_MIGRATION) || t[pt.slot] !== src + m.sub) continue;
    let nhi = PTE_PRESENT | PTE_USER | (m.hi & (PTE_YOUNG | PTE_DIRTY | PTE_HUGE | PTE_PROTNONE | PTE_NUMA));
    if (hi & PTE_MIGRATION_WRITE) nhi |= PTE_WRITE;
    pt.set(pt.tableId, pt.slot, target + m.sub, nhi);
    f.mapcount[target]++;
    f.refcount[target]++;
  }
}

/** Hand the source folio's identity (flags, rmap, bytes, page-cache slot) to the destination. */
function moveToNewFolio(core: MmCore, src: number, dst: number, order: number): void {
  const f = core.frames;
  const keep =
    PG_anon | PG_anon_exclusive | PG_dirty | PG_swapbacked | PG_mlocked | PG_unevictable | PG_shmem;
  f.flags[dst] |= f.flags[src] & keep;
  f.mapping[dst] = f.mapping[src];
  f.index[dst] = f.index[src];
  const nr = 1 << order;
  for (let i = 0; i < nr; i++) core.data.moveData(dst + i, src + i);
  if (f.flags[src] & PG_shmem) {
    const obj = core.shmem.get(f.mapping[src] - 1);
    if (obj) obj.pages.set(f.index[src], dst);
  }
  // The source is now an empty isolated folio; its page-cache reference moved with it.
  f.flags[src] &= ~(keep | PG_lru);
  f.mapping[src] = 0;
  f.index[src] = 0;
}

/**
 * migrateOne - move one isolated folio. Returns 0 (moved, or moved once the copy window ends),
 * -EAGAIN (extra references: retry), -EBUSY (maybe pinned anon-exclusive: retry) or -ENOMEM
 * (no destination).
 */
function migrateOne(
  core: MmCore,
  src: number,
  newFolio: NewFolioFn,
  deferNs: number,
  moved: Array<[number, number]>,
  counts: { pages: number },
  reason: number,
): number {
  const f = core.frames;
  const order = f.getOrder(src);
  // Every user let go while it was isolated: nothing to move, just free it.
  if (f.refcount[src] === 1 && f.mapcount[src] === 0 && !(f.flags[src] & PG_shmem)) {
    putbackMovableFolio(core, src);
    return 0;
  }
  const expectedRefs = folioExpectedRefs(core, src);
  if (f.refcount[src] !== expectedRefs) {
    // Short-term references with a migration callback are let go for the move and retaken on the
    // new folio (migrate-callback.ts); any other extra reference fails it. On failure the caller
    // (migratePages) gives them back on this folio.
    const cb = folioCallbackRefs(core, src);
    if (!cb || f.refcount[src] - cb !== expectedRefs) return -ERRNO.EAGAIN;
    migrateCallbackRevoke(core, src, reason);
  }
  const saved = unmapForMigration(core, src);
  if (!saved) return -ERRNO.EBUSY;
  // folio_ref_freeze(expected): only the isolation and page-cache references may remain.
  const expected = 1 + (f.flags[src] & PG_shmem ? 1 : 0);
  if (f.refcount[src] !== expected) {
    restoreMappings(core, src, saved, src);
    return -ERRNO.EAGAIN;
  }
  const dst = newFolio(src, order);
  if (dst < 0) {
    restoreMappings(core, src, saved, src);
    return -ERRNO.ENOMEM;
  }
  // The destination's allocation reference is its isolation until the copy completes.
  f.flags[dst] |= PG_isolated;
  if (order > 0) {
    f.flags[dst] |= PG_head;
    if (f.flags[src] & PG_hugetlb) f.flags[dst] |= PG_hugetlb;
  }
  const cost = migrationCost(order);
  core.charge(cost);
  const p: PendingMigration = { src, dst, order, mappings: saved, doneAt: 0, done: false };
  if (deferNs > 0) {
    p.doneAt = deferNs;
    pending(core).set(src, p);
  } else completeMigration(core, p);
  moved.push([src, dst]);
  counts.pages += 1 << order;
  return 0;
}

/** Finish a migration: move identity and bytes, restore the mappings on the new folio, free the old. */
function completeMigration(core: MmCore, p: PendingMigration): void {
  if (p.done) return;
  p.done = true;
  pending(core).delete(p.src);
  const f = core.frames;
  moveToNewFolio(core, p.src, p.dst, p.order);
  restoreMappings(core, p.dst, p.mappings, p.src);
  // Short-term references revoked for the move follow the page to its new pfn.
  migrateCallbackRestore(core, p.src, p.dst);
  // The destination's allocation reference stands for isolation: drop it, and put it on the LRU.
  f.flags[p.dst] = (f.flags[p.dst] & ~PG_isolated) | (f.flags[p.dst] & PG_hugetlb ? 0 : PG_lru);
  f.refcount[p.dst]--;
  if (f.flags[p.dst] & PG_shmem) f.refcount[p.dst]++; // the page cache's reference moved here
  if (f.refcount[p.dst] === 0) {
    // Every mapping went away during the copy.
    if (f.flags[p.dst] & PG_anon) core.vmstat.dec(VM.nr_anon_pages);
    if (f.flags[p.dst] & PG_hugetlb) core.hugetlb.freeHugetlbFolio(p.dst);
    else core.alloc.freePages(p.dst, p.order);
  }
  // The source keeps only its isolation (and moved cache) reference: free it.
  f.flags[p.src] &= ~PG_isolated;
  f.refcount[p.src] = 0;
  if (f.flags[p.src] & PG_hugetlb) core.hugetlb.freeHugetlbFolio(p.src);
  else core.alloc.freePages(p.src, p.order);
}

/**
 * migrationEntryWait - a CPU (or device, or GUP) fault found a migration entry for `src`
 * (migration_entry_wait): the faulting context waits for the copy, which is charged to it, and
 * the entry is resolved. Returns true when there was something to wait for.
 */
export function migrationEntryWait(core: MmCore, src: number, now: number): boolean {
  const f = core.frames;
  const p = pending(core).get(f.flags[src] & PG_tail ? f.mapping[src] - 1 : src);
  if (!p) return false;
  if (p.doneAt > now) core.charge(p.doneAt - now);
  completeMigration(core, p);
  return true;
}

/** completeDueMigrations - finish every deferred copy whose window has ended by `now`. */
export function completeDueMigrations(core: MmCore, now: number): number {
  let n = 0;
  for (const p of [...pending(core).values()]) {
    if (p.doneAt <= now) {
      completeMigration(core, p);
      n++;
    }
  }
  return n;
}

/** completeAllMigrations - finish every deferred copy now (fork and exit do this first). */
export function completeAllMigrations(core: MmCore): void {
  for (const p of [...pending(core).values()]) completeMigration(core, p);
}

/** Number of folios whose copy is still in its window. */
export function pendingMigrations(core: MmCore): number {
  return pending(core).size;
}

/** Options of migratePages beyond the kernel's arguments. */
export interface MigrateOptions {
  /**
   * Keep each folio's migration entries in place until this simulated time (the copy window),
   * so accesses during it wait; completeDueMigrations (or a waiting fault) finishes them.
   * 0 (the default) completes every copy before returning.
   */
  completeAt?: number;
}

/**
 * migratePages - move isolated folios to new ones from `newFolio` (migrate_pages): each folio
 * answering -EAGAIN or -EBUSY (extra references, pins) is retried up to
 * NR_MAX_MIGRATE_PAGES_RETRY passes (none in MIGRATE_ASYNC mode), then counted as failed; -ENOMEM
 * stops the whole call. Data is moved exactly; every page-table change is announced to MMU
 * notifiers (MMU_NOTIFY_MIGRATE). Moved folios leave isolation; failed ones stay isolated for
 * the caller to put back (putbackMovableFolio).
 * Returns the number of folios not migrated, or -ENOMEM. `stats` receives the details.
 * Context: charges the copy and the rmap work to the caller.
 */
export function migratePages(
  core: MmCore,
  folios: readonly number[],
  newFolio: NewFolioFn,
  mode: number,
  reason: number,
  stats?: MigrateStats,
  opts: MigrateOptions = {},
): number {
  let todo = [...folios];
  const moved: Array<[number, number]> = [];
  const counts = { pages: 0 };
  const retries = mode === MIGRATE_ASYNC ? 1 : NR_MAX_MIGRATE_PAGES_RETRY;
  let nomem = false;
  for (let pass = 0; pass < retries && todo.length; pass++) {
    const again: number[] = [];
    for (const src of todo) {
      if (nomem) {
        again.push(src);
        continue;
      }
      const r = migrateOne(core, src, newFolio, opts.completeAt ?? 0, moved, counts, reason);
      if (r === 0) continue;
      migrateCallbackRestore(core, src, src);
      if (r === -ERRNO.ENOMEM) {
        nomem = true;
        again.push(src);
      } else again.push(src);
    }
    todo = again;
    if (nomem) break;
  }
  const failed = todo;
  // Folios that were never tried because memory ran out count as failed too.
  const succeededPages = counts.pages;
  let failedPages = 0;
  for (const src of failed) failedPages += 1 << core.frames.getOrder(src);
  core.vmstat.inc(VM.pgmigrate_success, succeededPages);
  core.vmstat.inc(VM.pgmigrate_fail, failedPages);
  if (core.trace.enabled('mm_migrate_pages'))
    core.trace.emit('mm_migrate_pages', { succeeded: succeededPages, failed: failedPages, mode, reason });
  if (stats) {
    stats.succeeded = moved.length;
    stats.failed = failed.length;
    stats.failedFolios = failed;
    stats.moved = moved;
  }
  return nomem ? -ERRNO.ENOMEM : failed.length;
}

/** emptyMigrateStats - a fresh stats record. */
export function emptyMigrateStats(): MigrateStats {
  return { succeeded: 0, failed: 0, failedFolios: [], moved: [] };
}

/** Bytes of a folio of `order` (for reporting). */
export function folioBytes(order: number): number {
  return PAGE_SIZE * 2 ** order;
}
