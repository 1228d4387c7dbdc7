/**
 * Per-process migration control - a PROPOSAL, not upstream.
 *
 * Source: the mempinfd review (seeds/001). David Rientjes asked why "CONFIG_NUMA_BALANCING=n +
 * vm.compact_unevictable_allowed + mlock()" would not do; Barry Song agreed it solves the
 * performance problem but that "it would be better if those settings only affect the specific
 * process using SVA", and proposed "making an extension on it, for example, permit users to
 * disable compaction and numa balancing on unevictable pages of SVA process". David Hildenbrand:
 * "I'd be interested in approaches to mitigate this per process".
 *
 * This is that extension: an mm flag (MMF_MIGRATION_CONTROL, set with the proposed
 * prctl(PR_SET_MIGRATION_CONTROL) that @svasim/pin-migration-control registers) under which
 *  - compaction leaves the mm's mlocked folios where they are, as vm.compact_unevictable_allowed=0
 *    does for everybody (isolate_migratepages_block; folioMigrationControlled),
 *  - NUMA balancing neither hints nor migrates the mm's VM_LOCKED ranges (vmaMigrationControlled
 *    in change_prot_numa and do_numa_page), as kernel.numa_balancing=0 does for everybody,
 *  - khugepaged does not collapse the mm's VM_LOCKED ranges (hpage_collapse_scan_pmd),
 * while alloc_contig_range (CMA, gigantic pages), memory offline and FOLL_LONGTERM's migration
 * still move them: the flag never makes a page unmovable, it only stops housekeeping that could
 * wait. Only locked memory is affected, so the flag cannot be used to keep more memory in place
 * than RLIMIT_MEMLOCK already allows.
 */
import type { MmCore } from './mm-core';
import type { MmStruct } from './mm-struct';
import { PG_mlocked } from './page-flags';
import { rmapWalk } from './rmap';
import type { VmAreaStruct } from './vma';
import { VM_LOCKED } from './vm-flags';

/**
 * MMF_MIGRATION_CONTROL - mm->flags bit: housekeeping leaves this mm's locked pages in place.
 * A high bit, clear of the MMF_* bits svasim models from the kernel. Not inherited by fork (the
 * child's VMAs are not locked anyway) and gone with the mm.
 */
export const MMF_MIGRATION_CONTROL = 1 << 24;

/** Number of mms per kernel with the flag set, so compaction skips the rmap walk when none. */
const flagged = new WeakMap<MmCore, number>();

/**
 * mmSetMigrationControl - set or clear MMF_MIGRATION_CONTROL on @mm. Returns the previous state.
 * Context: process context (the prctl).
 */
export function mmSetMigrationControl(mm: MmStruct, on: boolean): boolean {
  const was = (mm.flags & MMF_MIGRATION_CONTROL) !== 0;
  if (was === on) return was;
  if (on) mm.flags |= MMF_MIGRATION_CONTROL;
  else mm.flags &= ~MMF_MIGRATION_CONTROL;
  flagged.set(mm.core, (flagged.get(mm.core) ?? 0) + (on ? 1 : -1));
  return was;
}

/** mmMigrationControlled - is MMF_MIGRATION_CONTROL set on @mm? */
export function mmMigrationControlled(mm: MmStruct): boolean {
  return (mm.flags & MMF_MIGRATION_CONTROL) !== 0;
}

/**
 * vmaMigrationControlled - is @vma a locked range of an mm with MMF_MIGRATION_CONTROL (so NUMA
 * balancing and khugepaged leave it alone)?
 */
export function vmaMigrationControlled(vma: VmAreaStruct): boolean {
  return (vma.flags & VM_LOCKED) !== 0 && (vma.mm.flags & MMF_MIGRATION_CONTROL) !== 0;
}

/**
 * folioMigrationControlled - is the mlocked folio headed by @head mapped by a locked VMA of an mm
 * with MMF_MIGRATION_CONTROL (so compaction leaves it alone)? False at once for a folio that is
 * not mlocked or when no mm has the flag; otherwise one rmap walk.
 * Context: compaction's isolation (not alloc_contig_range, which moves it anyway).
 */
export function folioMigrationControlled(core: MmCore, head: number): boolean {
  if (!(core.frames.flags[head] & PG_mlocked) || !flagged.get(core)) return false;
  let hit = false;
  rmapWalk(core, head, (vma) => {
    hit = vmaMigrationControlled(vma);
    return !hit;
  });
  return hit;
}
