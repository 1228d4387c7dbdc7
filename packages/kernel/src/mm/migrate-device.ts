/**
 * Device memory migration (mm/migrate_device.c, include/linux/migrate.h): migrate_vma moves the
 * pages of a virtual range between system memory and a driver's device-private memory, and
 * migrate_device_range evicts device pages by pfn. The driver allocates the destination pages
 * and copies the bytes itself (its DMA engine; in svasim, core.data), between setup and pages.
 *
 * Protocol, as the kernel's:
 *   migrateVmaSetup(args)     collect + unmap: src[] describes each page, pages become migration
 *                             entries (pinned, locked, large or foreign pages are left alone)
 *   driver: for each src[i] with MIGRATE_PFN_MIGRATE, allocate, copy, dst[i] = migratePfn(pfn)
 *   migrateVmaPages(args)     commit: the new page takes the old one's identity (or a hole gets
 *                             the new page mapped); a failure clears MIGRATE_PFN_MIGRATE
 *   driver: update its own page table for what moved
 *   migrateVmaFinalize(args)  migration entries become mappings of the new (or the old) page;
 *                             both are unlocked and the caller's references dropped
 *
 * src/dst are Float64Arrays of the kernel's encoding: pfn << MIGRATE_PFN_SHIFT | flags (the
 * values stay below 2^53, so they are exact doubles; flags are the low bits, so `mpfn & FLAG`
 * works with JavaScript's 32-bit operators). Build values with + (migratePfn(pfn) +
 * MIGRATE_PFN_WRITE): on a large machine they pass 2^31, where | would truncate them.
 *
 * Between setup and finalize the driver may let simulated time pass. svasim cannot make a CPU
 * access sleep on the page lock as the kernel does, so an access (or GUP, an IOMMU fault, fork)
 * that meets one of these migration entries cancels that page's migration: the original mapping
 * comes back, the destination page is released, src[i] and dst[i] become 0, and secondary MMUs
 * get MMU_NOTIFY_MIGRATE with a null owner so a driver that already mapped the destination
 * drops it.
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { splitFolio } from './huge-memory';
import {
  folioOf,
  folioPut,
  folioTrylock,
  folioUnlock,
  isDevicePrivatePage,
  isZoneDevicePage,
  makeDevicePrivateEntry,
  pagePgmap,
  PTE_DEVICE_PRIVATE_WRITE,
} from './memremap';
import { isolateLruFolio, migrationEntryWait, MIGRATE_COST_DEFAULTS } from './migrate';
import type { MmCore } from './mm-core';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFY_MIGRATE, type MmuNotifierRange } from './notifier-hooks';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_hugetlb,
  PG_isolated,
  PG_locked,
  PG_lru,
  PG_mlocked,
  PG_shmem,
  PG_swapbacked,
} from './page-flags';
import { folioMaybeDmaPinned } from './page-ref';
import { LEVEL_PMD, LEVEL_PTE, LEVEL_SIZE } from './page-table';
import {
  PTE_DEVICE_PRIVATE,
  PTE_DIRTY,
  PTE_HUGE,
  PTE_MIGRATION,
  PTE_MIGRATION_WRITE,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SPECIAL,
  PTE_SWP_EXCLUSIVE,
  PTE_TABLE,
  PTE_USER,
  PTE_WRITE,
  PTE_YOUNG,
} from './pte';
import { folioAddNewAnonRmap, mlockFolio, munlockFolio, rmapWalk } from './rmap';
import type { VmAreaStruct } from './vma';
import { VM_ACCESS_FLAGS, VM_HUGETLB, VM_LOCKED, VM_SPECIAL, VM_WRITE } from './vm-flags';

/** MIGRATE_PFN_VALID: the entry holds a pfn. */
export const MIGRATE_PFN_VALID = 1 << 0;
/** MIGRATE_PFN_MIGRATE: this page is (still) to be migrated. */
export const MIGRATE_PFN_MIGRATE = 1 << 1;
/** MIGRATE_PFN_WRITE: the page was mapped writable (the new mapping will be too). */
export const MIGRATE_PFN_WRITE = 1 << 3;
/** MIGRATE_PFN_SHIFT: the pfn sits above the flags. */
export const MIGRATE_PFN_SHIFT = 6;
const MPFN_UNIT = 2 ** MIGRATE_PFN_SHIFT;

/** MIGRATE_VMA_SELECT_SYSTEM: collect system-memory pages (and holes, the zero page). */
export const MIGRATE_VMA_SELECT_SYSTEM = 1 << 0;
/** MIGRATE_VMA_SELECT_DEVICE_PRIVATE: collect device-private pages whose pgmap owner matches. */
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1;
/** MIGRATE_VMA_SELECT_DEVICE_COHERENT: collect device-coherent pages (none exist in svasim). */
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2;

/** migratePfn - the src/dst value of a pfn (migrate_pfn): pfn << MIGRATE_PFN_SHIFT | MIGRATE_PFN_VALID. */
export function migratePfn(pfn: number): number {
  return pfn * MPFN_UNIT + MIGRATE_PFN_VALID;
}

/** migratePfnToPage - the pfn of a src/dst value, or -1 without MIGRATE_PFN_VALID (NULL). */
export function migratePfnToPage(mpfn: number): number {
  return mpfn & MIGRATE_PFN_VALID ? Math.floor(mpfn / MPFN_UNIT) : -1;
}

/**
 * MigrateVma - struct migrate_vma. The driver fills vma, start, end, src, dst (at least
 * (end - start) / PAGE_SIZE entries each), pgmapOwner, flags and, from migrateToRam, faultPage;
 * migrateVmaSetup fills src, cpages and npages (and may shorten end).
 */
export interface MigrateVma {
  vma: VmAreaStruct | null;
  start: number;
  end: number;
  src: Float64Array | null;
  dst: Float64Array | null;
  /** Pages collected for migration (out). */
  cpages: number;
  /** Entries of src/dst in use (out). */
  npages: number;
  /** Only device-private pages of this owner are selected; also the notifier range's owner. */
  pgmapOwner: unknown;
  /** MIGRATE_VMA_SELECT_* */
  flags: number;
  /** The locked device-private page migrateToRam was called for, or null/undefined/-1. */
  faultPage?: number | null;
}

/** One setup whose finalize has not run yet. */
interface Inflight {
  src: Float64Array;
  dst: Float64Array;
  npages: number;
  faultPage: number;
}

interface DeviceMigrationState {
  /** Live setups, keyed by their src array. */
  bySrcArray: Map<Float64Array, Inflight>;
  /** Pages whose migration entries (or collect references) an in-flight setup holds. */
  byPfn: Map<number, { rec: Inflight; i: number }>;
}

const states = new WeakMap<MmCore, DeviceMigrationState>();

function migrationState(core: MmCore): DeviceMigrationState {
  let s = states.get(core);
  if (!s) states.set(core, (s = { bySrcArray: new Map(), byPfn: new Map() }));
  return s;
}

function faultPageOf(fp: number | null | undefined): number {
  return typeof fp === 'number' && fp >= 0 ? fp : -1;
}

/**
 * migrateVmaSetup - collect and unmap the pages of [args.start, args.end) of args.vma
 * (migrate_vma_setup). Secondary MMUs hear MMU_NOTIFY_MIGRATE with args.pgmapOwner first (a
 * driver's own notifier may skip it). For each page, src[i] becomes:
 *  - MIGRATE_PFN_MIGRATE with no pfn for a hole or the zero page of an anonymous VMA
 *    (holes of other VMAs: 0) - only with MIGRATE_VMA_SELECT_SYSTEM for the zero page;
 *  - migratePfn(pfn) + MIGRATE_PFN_MIGRATE (+ MIGRATE_PFN_WRITE if mapped writable) for a page
 *    selected by args.flags: system pages with SELECT_SYSTEM, device-private pages of
 *    args.pgmapOwner with SELECT_DEVICE_PRIVATE; the page is locked, its mappings become
 *    migration entries, and the caller holds it;
 *  - 0 otherwise: another owner's or an unselected page, swap and other special entries, a page
 *    someone else has locked, a pinned page (refcount beyond its mappings), a large folio that
 *    cannot be split (a THP is split first, as split_folio does in this version).
 * args.cpages counts the pages to migrate, args.npages the entries written; args.end shrinks to
 * start + npages pages.
 *
 * Return: 0, or -EINVAL when: there is no VMA, it is hugetlb or VM_SPECIAL (VM_IO, VM_PFNMAP,
 * VM_MIXEDMAP, VM_DONTEXPAND); (end - start) / PAGE_SIZE <= 0; start or end is outside the VMA;
 * src or dst is missing; faultPage is not a device-private page or is not locked. svasim also
 * answers -EINVAL for non-integer addresses, src/dst that are not Float64Arrays with room for
 * every page, and a VMA no longer linked in a live mm (the kernel's mmap lock rules those out).
 * Context: the driver, with the mm's VMAs stable. Released by migrateVmaFinalize.
 */
export function migrateVmaSetup(args: MigrateVma): number {
  if (!args || typeof args !== 'object') return -ERRNO.EINVAL;
  if (!Number.isSafeInteger(args.start) || !Number.isSafeInteger(args.end)) return -ERRNO.EINVAL;
  const nrPages = Math.floor((args.end - args.start) / PAGE_SIZE);
  args.start -= args.start % PAGE_SIZE;
  args.end -= args.end % PAGE_SIZE;
  const vma = args.vma;
  if (!vma || vma.flags & VM_HUGETLB || vma.flags & VM_SPECIAL) return -ERRNO.EINVAL;
  if (nrPages <= 0) return -ERRNO.EINVAL;
  if (args.start < vma.start || args.start >= vma.end) return -ERRNO.EINVAL;
  if (args.end <= vma.start || args.end > vma.end) return -ERRNO.EINVAL;
  if (!args.src || !args.dst) return -ERRNO.EINVAL;
  if (!(args.src instanceof Float64Array) || !(args.dst instanceof Float64Array)) return -ERRNO.EINVAL;
  if (args.src.length < nrPages || args.dst.length < nrPages) return -ERRNO.EINVAL;
  const mm = vma.mm;
  const core = mm.core;
  const fp = faultPageOf(args.faultPage);
  if (args.faultPage !== undefined && args.faultPage !== null && args.faultPage !== -1) {
    if (!isDevicePrivatePage(core, fp)) return -ERRNO.EINVAL;
    if (!(core.frames.flags[fp] & PG_locked)) return -ERRNO.EINVAL;
  }
  if (!mm.alive || mm.vmaLookup(args.start) !== vma) return -ERRNO.EINVAL;

  retireStale(core, args.src);
  args.src.fill(0, 0, nrPages);
  args.cpages = 0;
  args.npages = 0;
  migrateVmaCollect(args, fp);
  if (args.cpages) args.cpages = migrateDeviceUnmap(core, args.src, args.npages, fp);
  track(core, args.src, args.dst, args.npages, fp);
  core.charge(args.npages * MIGRATE_COST_DEFAULTS.perFolioOverhead);
  return 0;
}

/** A driver that set up again on the same src array without finalizing: finalize the old one. */
function retireStale(core: MmCore, src: Float64Array): void {
  const old = states.get(core)?.bySrcArray.get(src);
  if (!old) return;
  core.dmesg.printk('WARNING: mm/migrate_device.c: migrate_vma_setup without migrate_vma_finalize');
  finalizePages(core, old.src, old.dst, old.npages, old.faultPage);
}

function track(core: MmCore, src: Float64Array, dst: Float64Array, npages: number, fp: number): void {
  const s = migrationState(core);
  const rec: Inflight = { src, dst, npages, faultPage: fp };
  let any = false;
  for (let i = 0; i < npages; i++) {
    const page = migratePfnToPage(src[i]);
    if (page < 0) continue;
    s.byPfn.set(folioOf(core, page), { rec, i });
    any = true;
  }
  if (any) s.bySrcArray.set(src, rec);
}

function untrack(core: MmCore, src: Float64Array): void {
  const s = states.get(core);
  const rec = s?.bySrcArray.get(src);
  if (!s || !rec) return;
  s.bySrcArray.delete(src);
  for (let i = 0; i < rec.npages; i++) {
    const page = migratePfnToPage(src[i]);
    if (page < 0) continue;
    const e = s.byPfn.get(folioOf(core, page));
    if (e && e.rec === rec) s.byPfn.delete(folioOf(core, page));
  }
}

/** migrate_vma_collect: walk the range, fill src[] and turn selected mappings into migration entries. */
function migrateVmaCollect(args: MigrateVma, fp: number): void {
  const vma = args.vma!;
  const mm = vma.mm;
  const range = mmuNotifierInvalidateRangeStart(
    mm,
    args.start,
    args.end,
    MMU_NOTIFY_MIGRATE,
    args.pgmapOwner,
  );
  const pmdSize = LEVEL_SIZE[LEVEL_PMD];
  let addr = args.start;
  while (addr < args.end) {
    const next = Math.min(args.end, (Math.floor(addr / pmdSize) + 1) * pmdSize);
    addr = collectPmd(args, addr, next, fp);
  }
  mmuNotifierInvalidateRangeEnd(range);
  args.end = args.start + args.npages * PAGE_SIZE;
}

function putEntry(args: MigrateVma, mpfn: number): void {
  args.dst![args.npages] = 0;
  args.src![args.npages++] = mpfn;
}

/** migrate_vma_collect_skip / _hole: entries for [start, end) with nothing to migrate, or holes. */
function collectHoles(args: MigrateVma, start: number, end: number, hole: boolean): void {
  const anon = hole && args.vma!.isAnonymous();
  for (let a = start; a < end; a += PAGE_SIZE) {
    putEntry(args, anon ? MIGRATE_PFN_MIGRATE : 0);
    if (anon) args.cpages++;
  }
}

/** migrate_vma_collect_pmd for [start, end) inside one PMD. Returns where the walk continues. */
function collectPmd(args: MigrateVma, start: number, end: number, fp: number): number {
  const vma = args.vma!;
  const mm = vma.mm;
  const core = mm.core;
  const f = core.frames;
  const pt = mm.pgtable;
  for (let again = 0; ; again++) {
    const pmd = pt.walk(start, false, LEVEL_PMD);
    const pmdHi = pmd && pt.level === LEVEL_PMD ? pmd[pt.slot + 1] : 0;
    if (!pmd || pmdHi === 0) {
      collectHoles(args, start, end, true);
      return end;
    }
    if (pmdHi & PTE_TABLE) break;
    if (pmdHi & PTE_HUGE && pmdHi & PTE_PRESENT && again < 2) {
      // A THP mapped by this PMD: split it (split_folio), then look again.
      // (No folio lock around it: svasim's split copies the head's flags to every page.)
      const head = pmd[pt.slot];
      const ret = head === fp || f.flags[head] & PG_locked ? -ERRNO.EBUSY : splitFolio(core, head);
      if (ret) {
        collectHoles(args, start, end, false);
        return end;
      }
      continue;
    }
    // A huge migration entry (a THP moving, migrate.ts): wait for it and look again.
    if (pmdHi & PTE_MIGRATION && again < 2 && migrationEntryWait(core, pmd[pt.slot], core.now())) continue;
    collectHoles(args, start, end, false);
    return end;
  }
  const zeroPfn = core.alloc.zeroPfn;
  const sel = args.flags;
  let addr = start;
  let splits = 0;
  while (addr < end) {
    const t = pt.walk(addr, false);
    const hi = t && pt.level === LEVEL_PTE ? t[pt.slot + 1] : 0;
    if (hi === 0) {
      collectHoles(args, addr, addr + PAGE_SIZE, true);
      addr += PAGE_SIZE;
      continue;
    }
    const tableId = pt.tableId;
    const slot = pt.slot;
    const lo = t![slot];
    let mpfn = 0;
    let page = -1;
    if (!(hi & PTE_PRESENT)) {
      // Only device-private entries are collected; swap, migration and device-exclusive
      // entries are left where they are.
      if (hi & PTE_DEVICE_PRIVATE) {
        const pgmap = pagePgmap(core, lo);
        if (sel & MIGRATE_VMA_SELECT_DEVICE_PRIVATE && pgmap && pgmap.owner === args.pgmapOwner) {
          page = lo;
          mpfn =
            migratePfn(lo) + MIGRATE_PFN_MIGRATE + (hi & PTE_DEVICE_PRIVATE_WRITE ? MIGRATE_PFN_WRITE : 0);
        }
      }
    } else if (lo === zeroPfn && hi & PTE_SPECIAL) {
      if (sel & MIGRATE_VMA_SELECT_SYSTEM) {
        putEntry(args, MIGRATE_PFN_MIGRATE);
        args.cpages++;
        addr += PAGE_SIZE;
        continue;
      }
    } else {
      // vm_normal_page: no struct page for special (PFN) entries.
      page = hi & PTE_SPECIAL || lo >= f.count ? -1 : lo;
      if (page >= 0 && !(sel & MIGRATE_VMA_SELECT_SYSTEM)) page = -1;
      if (page >= 0) {
        const head = folioOf(core, page);
        if (f.getOrder(head) > 0 && !(f.flags[head] & PG_hugetlb)) {
          // migrate_vma_split_folio: a PTE-mapped large folio is split, then looked at again.
          if (splits++ === 0 && splitLargeFolio(core, head, fp) === 0) continue;
          collectHoles(args, addr, end, false);
          return end;
        }
        mpfn = migratePfn(lo) + MIGRATE_PFN_MIGRATE + (hi & PTE_WRITE ? MIGRATE_PFN_WRITE : 0);
      }
    }
    splits = 0;
    if (page < 0 || !f.mapping[folioOf(core, page)]) {
      putEntry(args, 0);
      addr += PAGE_SIZE;
      continue;
    }
    const folio = folioOf(core, page);
    f.refcount[folio]++;
    if (folio === fp || folioTrylock(core, folio)) {
      const anonExclusive =
        (f.flags[folio] & (PG_anon | PG_anon_exclusive)) === (PG_anon | PG_anon_exclusive);
      if (anonExclusive && folioMaybeDmaPinned(core, folio)) {
        // folio_try_share_anon_rmap_pte failed: a pinned exclusive page stays mapped.
        if (folio !== fp) folioUnlock(core, folio);
        folioPut(core, folio);
        putEntry(args, 0);
        addr += PAGE_SIZE;
        continue;
      }
      if (anonExclusive) f.flags[folio] &= ~PG_anon_exclusive;
      args.cpages++;
      if (hi & PTE_PRESENT && hi & PTE_DIRTY) f.flags[folio] |= PG_dirty;
      let entry = PTE_MIGRATION;
      if (mpfn & MIGRATE_PFN_WRITE) entry |= PTE_MIGRATION_WRITE;
      else if (anonExclusive) entry |= PTE_SWP_EXCLUSIVE;
      if (hi & PTE_PRESENT) entry |= hi & (PTE_YOUNG | PTE_DIRTY);
      pt.set(tableId, slot, page, entry);
      // Like a regular unmap: the mapping and its reference go; the collect reference stays.
      f.mapcount[folio]--;
      f.refcount[folio]--;
    } else {
      folioPut(core, folio);
      mpfn = 0;
    }
    putEntry(args, mpfn);
    addr += PAGE_SIZE;
  }
  return end;
}

/**
 * migrate_vma_split_folio: split a PTE-mapped large folio (not the fault page's, not a locked
 * one). svasim's split refuses any reference beyond mappings, so none is taken around it.
 * Return: 0 or -errno.
 */
function splitLargeFolio(core: MmCore, head: number, fp: number): number {
  if (head === fp || core.frames.flags[head] & PG_locked) return -ERRNO.EBUSY;
  return splitFolio(core, head);
}

/**
 * migrate_vma_check_page: false when someone holds the page beyond its mappings and the
 * migration's own references (a GUP reference or pin), or for a large folio.
 */
function migrateVmaCheckPage(core: MmCore, page: number, fp: number): boolean {
  const f = core.frames;
  const folio = folioOf(core, page);
  let extra = 1 + (page === fp ? 1 : 0);
  if (f.getOrder(folio) > 0 && folio < f.count) return false;
  if (isZoneDevicePage(core, folio)) extra++;
  if (f.flags[folio] & PG_shmem) extra++;
  return f.refcount[folio] - extra <= f.mapcount[folio];
}

/**
 * try_to_migrate: replace every other mapping of @folio (present PTEs, device-private entries)
 * with a migration entry, telling secondary MMUs first. Stops at an exclusive page that may be
 * DMA-pinned (it stays mapped, so the caller gives up on it).
 */
function tryToMigrate(core: MmCore, folio: number): void {
  const f = core.frames;
  const targets: Array<[VmAreaStruct, number]> = [];
  rmapWalk(core, folio, (vma, va) => {
    targets.push([vma, va]);
    return true;
  });
  for (const [vma, va] of targets) {
    const mm = vma.mm;
    const pt = mm.pgtable;
    const t = pt.walk(va, false);
    if (!t || pt.level !== LEVEL_PTE) continue;
    const hi = t[pt.slot + 1];
    const present = (hi & PTE_PRESENT) !== 0;
    if (t[pt.slot] !== folio || (present ? hi & PTE_SPECIAL : !(hi & PTE_DEVICE_PRIVATE))) continue;
    const anonExclusive = (f.flags[folio] & (PG_anon | PG_anon_exclusive)) === (PG_anon | PG_anon_exclusive);
    if (anonExclusive && folioMaybeDmaPinned(core, folio)) return;
    const tableId = pt.tableId;
    const slot = pt.slot;
    const range = mmuNotifierInvalidateRangeStart(mm, va, va + PAGE_SIZE, MMU_NOTIFY_CLEAR);
    const write = present ? hi & PTE_WRITE : hi & PTE_DEVICE_PRIVATE_WRITE;
    let entry = PTE_MIGRATION | (write ? PTE_MIGRATION_WRITE : anonExclusive ? PTE_SWP_EXCLUSIVE : 0);
    if (present) entry |= hi & (PTE_YOUNG | PTE_DIRTY);
    pt.set(tableId, slot, folio, entry);
    if (anonExclusive) f.flags[folio] &= ~PG_anon_exclusive;
    f.mapcount[folio]--;
    f.refcount[folio]--;
    mmuNotifierInvalidateRangeEnd(range);
  }
}

/**
 * remove_migration_ptes: every migration entry of @src becomes a mapping of @dst with the old
 * permissions (a device-private entry when @dst is device memory), each with a mapping reference.
 * With @announce, secondary MMUs hear MMU_NOTIFY_MIGRATE (null owner) per entry first.
 */
function removeMigrationPtes(core: MmCore, src: number, dst: number, announce: boolean): void {
  const f = core.frames;
  const targets: Array<[VmAreaStruct, number]> = [];
  rmapWalk(core, src, (vma, va) => {
    targets.push([vma, va]);
    return true;
  });
  const device = isDevicePrivatePage(core, dst);
  for (const [vma, va] of targets) {
    const mm = vma.mm;
    if (!mm.alive) continue;
    const pt = mm.pgtable;
    const t = pt.walk(va, false);
    if (!t || pt.level !== LEVEL_PTE) continue;
    const hi = t[pt.slot + 1];
    if (!(hi & PTE_MIGRATION) || t[pt.slot] !== src) continue;
    const tableId = pt.tableId;
    const slot = pt.slot;
    const write = (hi & PTE_MIGRATION_WRITE) !== 0;
    const exclusive = write || (hi & PTE_SWP_EXCLUSIVE) !== 0;
    const nhi = device
      ? makeDevicePrivateEntry(write)
      : PTE_PRESENT | PTE_USER | (hi & (PTE_YOUNG | PTE_DIRTY)) | (write ? PTE_WRITE : 0) | protNone(vma);
    const range: MmuNotifierRange | null = announce
      ? mmuNotifierInvalidateRangeStart(mm, va, va + PAGE_SIZE, MMU_NOTIFY_MIGRATE, null)
      : null;
    pt.set(tableId, slot, dst, nhi);
    f.mapcount[dst]++;
    f.refcount[dst]++;
    if (exclusive && f.flags[dst] & PG_anon) f.flags[dst] |= PG_anon_exclusive;
    if (!device && vma.flags & VM_LOCKED) mlockFolio(core, dst);
    mmuNotifierInvalidateRangeEnd(range);
  }
}

/** mk_pte with vm_page_prot: a VMA without access (PROT_NONE) maps pages PROT_NONE. */
function protNone(vma: VmAreaStruct): number {
  return vma.flags & VM_ACCESS_FLAGS ? 0 : PTE_PROTNONE;
}

/**
 * migrate_device_unmap: isolate system pages from the LRU, move every remaining mapping to a
 * migration entry and check for extra references; pages that cannot go are restored (their src
 * entry becomes 0). Returns the entries left with MIGRATE_PFN_MIGRATE (holes included).
 */
function migrateDeviceUnmap(core: MmCore, src: Float64Array, npages: number, fp: number): number {
  const f = core.frames;
  let restore = 0;
  let unmapped = 0;
  for (let i = 0; i < npages; i++) {
    const page = migratePfnToPage(src[i]);
    if (page < 0) {
      if (src[i] & MIGRATE_PFN_MIGRATE) unmapped++;
      continue;
    }
    const folio = folioOf(core, page);
    const device = isZoneDevicePage(core, folio);
    if (!device) {
      if (!isolateLruFolio(core, folio)) {
        src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
        restore++;
        continue;
      }
      f.refcount[folio]--; // the collect reference: the isolation's holds it now
    }
    if (f.mapcount[folio] > 0) tryToMigrate(core, folio);
    if (f.mapcount[folio] > 0 || !migrateVmaCheckPage(core, page, fp)) {
      if (!device) {
        // folio_get + folio_putback_lru: back on the LRU, still held for the restore below.
        f.flags[folio] = (f.flags[folio] & ~PG_isolated) | PG_lru;
      }
      src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
      restore++;
      continue;
    }
    unmapped++;
  }
  for (let i = 0; i < npages && restore; i++) {
    const page = migratePfnToPage(src[i]);
    if (page < 0 || src[i] & MIGRATE_PFN_MIGRATE) continue;
    const folio = folioOf(core, page);
    removeMigrationPtes(core, folio, folio, false);
    src[i] = 0;
    if (folio !== fp) folioUnlock(core, folio);
    releaseSource(core, folio);
    restore--;
  }
  return unmapped;
}

/**
 * Drop the migration's reference on a source folio (collect or isolation reference). A system
 * page freed by it was mapped when collected (counted in nr_anon_pages, maybe mlocked) and is
 * mapped no more: it leaves both counts.
 */
function releaseSource(core: MmCore, folio: number): void {
  const f = core.frames;
  if (folio < f.count) {
    f.flags[folio] &= ~PG_isolated;
    if (f.refcount[folio] === 1) {
      if (f.flags[folio] & PG_mlocked) munlockFolio(core, folio);
      if (f.flags[folio] & PG_anon) core.vmstat.dec(VM.nr_anon_pages);
    }
  }
  folioPut(core, folio);
}

/** Drop the driver's reference on a destination folio (it was never counted while unmapped). */
function releaseDest(core: MmCore, folio: number): void {
  folioUnlock(core, folio);
  folioPut(core, folio);
}

/**
 * migrateVmaPages - commit the migration of every src[i] with MIGRATE_PFN_MIGRATE whose dst[i]
 * holds a locked destination page (migrate_vma_pages): the destination takes the source's
 * anonymous identity (the driver has copied the bytes), or, for a hole or the zero page, is
 * mapped at once (a device-private entry, or a present one for system memory) with secondary
 * MMUs told (MMU_NOTIFY_MIGRATE, args.pgmapOwner). src[i] loses MIGRATE_PFN_MIGRATE when there
 * is no destination, when the source is not anonymous memory and the destination is device
 * memory, when someone took a reference meanwhile, or when the hole got mapped meanwhile.
 * Context: after migrateVmaSetup and the driver's copy; before migrateVmaFinalize.
 */
export function migrateVmaPages(args: MigrateVma): void {
  if (!args?.src || !args.dst || !args.vma) return;
  migrateDevicePagesInner(args.vma.mm.core, args.src, args.dst, args.npages, args);
}

/**
 * migrateDevicePages - migrateVmaPages for pages collected by migrateDeviceRange or
 * migrateDevicePfns (migrate_device_pages).
 */
export function migrateDevicePages(core: MmCore, src: Float64Array, dst: Float64Array, npages: number): void {
  if (!validArrays(src, dst, npages)) return;
  migrateDevicePagesInner(core, src, dst, npages, null);
}

function validArrays(src: unknown, dst: unknown, npages: number): boolean {
  return (
    src instanceof Float64Array &&
    dst instanceof Float64Array &&
    Number.isSafeInteger(npages) &&
    npages >= 0 &&
    src.length >= npages &&
    dst.length >= npages
  );
}

function migrateDevicePagesInner(
  core: MmCore,
  src: Float64Array,
  dst: Float64Array,
  npages: number,
  migrate: MigrateVma | null,
): void {
  const f = core.frames;
  let range: MmuNotifierRange | null = null;
  let notified = false;
  for (let i = 0; i < npages; i++) {
    const newpage = migratePfnToPage(dst[i]);
    const page = migratePfnToPage(src[i]);
    if (newpage < 0) {
      src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
      continue;
    }
    if (page < 0) {
      if (!(src[i] & MIGRATE_PFN_MIGRATE) || !migrate) continue;
      const addr = migrate.start + i * PAGE_SIZE;
      if (!notified) {
        notified = true;
        range = mmuNotifierInvalidateRangeStart(
          migrate.vma!.mm,
          addr,
          migrate.end,
          MMU_NOTIFY_MIGRATE,
          migrate.pgmapOwner,
        );
      }
      migrateVmaInsertPage(migrate, addr, newpage, src, i);
      continue;
    }
    const newfolio = folioOf(core, newpage);
    const folio = folioOf(core, page);
    const toDevice = isZoneDevicePage(core, newfolio);
    // Only anonymous memory moves to device memory; svasim moves no page-cache (shmem) page at all.
    if (
      !(f.flags[folio] & PG_anon) ||
      f.flags[folio] & PG_shmem ||
      (toDevice && !isDevicePrivatePage(core, newfolio))
    ) {
      src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
      continue;
    }
    // folio_migrate_mapping: only the migration's references (and the fault's) may remain.
    const extra = migrate && faultPageOf(migrate.faultPage) === page ? 1 : 0;
    if (f.refcount[folio] !== f.mapcount[folio] + 1 + extra || f.mapcount[folio] !== 0) {
      src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
      continue;
    }
    // folio_migrate_mapping + folio_migrate_flags: the destination becomes the same anonymous page.
    f.mapping[newfolio] = f.mapping[folio];
    f.index[newfolio] = f.index[folio];
    f.flags[newfolio] |= f.flags[folio] & (PG_anon | PG_swapbacked | PG_dirty);
  }
  mmuNotifierInvalidateRangeEnd(range);
}

/**
 * migrate_vma_insert_page: map a destination page where there was a hole or the zero page, as
 * do_anonymous_page would (an exclusive anonymous page, RSS counted). Clears MIGRATE_PFN_MIGRATE
 * when that is no longer possible (not anonymous, a THP or another page arrived meanwhile).
 */
function migrateVmaInsertPage(
  migrate: MigrateVma,
  addr: number,
  page: number,
  src: Float64Array,
  i: number,
): void {
  const vma = migrate.vma!;
  const mm = vma.mm;
  const core = mm.core;
  const f = core.frames;
  const abort = () => {
    src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
    // The walk may have made page-table levels for nothing.
    mm.pgtable.pruneEmpty(addr);
  };
  if (!vma.isAnonymous() || !mm.alive || mm.vmaLookup(addr) !== vma) return abort();
  const pt = mm.pgtable;
  const pmd = pt.walk(addr, true, LEVEL_PMD)!;
  if (pt.level !== LEVEL_PMD || (pmd[pt.slot + 1] !== 0 && !(pmd[pt.slot + 1] & PTE_TABLE))) return abort();
  const t = pt.walk(addr, true)!;
  if ((pt.level as number) !== LEVEL_PTE) return abort();
  const orig = t[pt.slot + 1];
  if (orig & PTE_PRESENT) {
    if (!(orig & PTE_SPECIAL) || t[pt.slot] !== core.alloc.zeroPfn) return abort();
  } else if (orig !== 0) return abort();
  const tableId = pt.tableId;
  const slot = pt.slot;
  const device = isDevicePrivatePage(core, page);
  const entry = device
    ? makeDevicePrivateEntry((vma.flags & VM_WRITE) !== 0)
    : PTE_PRESENT | PTE_USER | PTE_YOUNG | (vma.flags & VM_WRITE ? PTE_WRITE | PTE_DIRTY : 0) | protNone(vma);
  mm.rssAnon++;
  folioAddNewAnonRmap(core, vma, page, addr);
  f.refcount[page]++;
  if (device) f.flags[page] &= ~PG_lru;
  else {
    core.vmstat.inc(VM.nr_anon_pages);
    if (vma.flags & VM_LOCKED) mlockFolio(core, page);
  }
  pt.set(tableId, slot, page, entry);
}

/**
 * migrateVmaFinalize - end the migration (migrate_vma_finalize): every migration entry becomes a
 * mapping of the destination page where the migration committed, else of the source page again;
 * both pages are unlocked and the caller's references on them dropped (a source that moved is
 * freed: a system page to the buddy, a device page to its driver through pageFree).
 */
export function migrateVmaFinalize(args: MigrateVma): void {
  if (!args?.src || !args.dst || !args.vma) return;
  finalizePages(args.vma.mm.core, args.src, args.dst, args.npages, faultPageOf(args.faultPage));
}

/** migrateDeviceFinalize - migrateVmaFinalize for migrateDeviceRange / migrateDevicePfns (migrate_device_finalize). */
export function migrateDeviceFinalize(
  core: MmCore,
  src: Float64Array,
  dst: Float64Array,
  npages: number,
): void {
  if (!validArrays(src, dst, npages)) return;
  finalizePages(core, src, dst, npages, -1);
}

function finalizePages(core: MmCore, src: Float64Array, dst: Float64Array, npages: number, fp: number): void {
  const f = core.frames;
  untrack(core, src);
  for (let i = 0; i < npages; i++) {
    const newpage = migratePfnToPage(dst[i]);
    const page = migratePfnToPage(src[i]);
    let dstFolio = newpage >= 0 ? folioOf(core, newpage) : -1;
    if (page < 0) {
      // A hole: the destination was mapped by migrateVmaPages (or not at all).
      if (dstFolio >= 0) releaseDest(core, dstFolio);
      continue;
    }
    const srcFolio = folioOf(core, page);
    if (!(src[i] & MIGRATE_PFN_MIGRATE) || dstFolio < 0) {
      if (dstFolio >= 0) releaseDest(core, dstFolio);
      dstFolio = srcFolio;
    }
    // folio_add_lru for a system destination; a source staying put leaves isolation.
    if (dstFolio < f.count && dstFolio !== srcFolio) f.flags[dstFolio] |= PG_lru;
    if (srcFolio === dstFolio && srcFolio < f.count)
      f.flags[srcFolio] = (f.flags[srcFolio] & ~PG_isolated) | PG_lru;
    removeMigrationPtes(core, srcFolio, dstFolio, false);
    if (dstFolio !== srcFolio && dstFolio < f.count && f.mapcount[dstFolio] > 0)
      core.vmstat.inc(VM.nr_anon_pages);
    if (srcFolio !== fp) folioUnlock(core, srcFolio);
    releaseSource(core, srcFolio);
    if (dstFolio !== srcFolio) releaseDest(core, dstFolio);
  }
}

/**
 * migrateDeviceRange - collect the device pages [start, start + npages) for eviction
 * (migrate_device_range): each page in use is referenced, locked and unmapped into migration
 * entries, src[i] = migratePfn(pfn) + MIGRATE_PFN_MIGRATE; free or busy pages get 0. The driver
 * then allocates system pages, copies, and calls migrateDevicePages and migrateDeviceFinalize.
 * Return: 0, or -EINVAL (svasim: src too short, or pfns outside the ZONE_DEVICE space).
 */
export function migrateDeviceRange(core: MmCore, src: Float64Array, start: number, npages: number): number {
  if (!(src instanceof Float64Array) || !Number.isSafeInteger(start) || !Number.isSafeInteger(npages))
    return -ERRNO.EINVAL;
  if (npages < 0 || src.length < npages) return -ERRNO.EINVAL;
  const f = core.frames;
  if (npages > 0 && (start < f.count || start + npages > f.capacity)) return -ERRNO.EINVAL;
  retireStale(core, src);
  for (let i = 0; i < npages; i++) src[i] = migrateDevicePfnLock(core, start + i);
  migrateDeviceUnmap(core, src, npages, -1);
  track(core, src, new Float64Array(0), npages, -1);
  return 0;
}

/**
 * migrateDevicePfns - migrateDeviceRange for the device pfns src[0..npages) holds (plain pfns
 * on entry, migrate_device_pfns). Return: 0 or -EINVAL (as migrateDeviceRange).
 */
export function migrateDevicePfns(core: MmCore, src: Float64Array, npages: number): number {
  if (!(src instanceof Float64Array) || !Number.isSafeInteger(npages) || npages < 0 || src.length < npages)
    return -ERRNO.EINVAL;
  const f = core.frames;
  for (let i = 0; i < npages; i++)
    if (!Number.isSafeInteger(src[i]) || src[i] < f.count || src[i] >= f.capacity) return -ERRNO.EINVAL;
  retireStale(core, src);
  for (let i = 0; i < npages; i++) src[i] = migrateDevicePfnLock(core, src[i]);
  migrateDeviceUnmap(core, src, npages, -1);
  track(core, src, new Float64Array(0), npages, -1);
  return 0;
}

/** migrate_device_pfn_lock: reference and lock a device page in use, or 0. */
function migrateDevicePfnLock(core: MmCore, pfn: number): number {
  const f = core.frames;
  if (!isZoneDevicePage(core, pfn) || f.refcount[pfn] === 0) return 0;
  f.refcount[pfn]++;
  if (!folioTrylock(core, pfn)) {
    folioPut(core, pfn);
    return 0;
  }
  return migratePfn(pfn) + MIGRATE_PFN_MIGRATE;
}

/**
 * migrateDeviceCancel - a fault (or fork) met a migration entry of @pfn: if an in-flight
 * migrate_vma / migrate_device_range holds that page, cancel its migration (see the file
 * comment) and return true; false when no device migration knows the page.
 */
export function migrateDeviceCancel(core: MmCore, pfn: number): boolean {
  const s = states.get(core);
  const e = s?.byPfn.get(folioOf(core, pfn));
  if (!s || !e) return false;
  const { rec, i } = e;
  s.byPfn.delete(folioOf(core, pfn));
  const page = migratePfnToPage(rec.src[i]);
  if (page < 0) return false;
  const folio = folioOf(core, page);
  const f = core.frames;
  if (folio < f.count) f.flags[folio] = (f.flags[folio] & ~PG_isolated) | PG_lru;
  removeMigrationPtes(core, folio, folio, true);
  if (folio !== rec.faultPage) folioUnlock(core, folio);
  releaseSource(core, folio);
  rec.src[i] = 0;
  const d = i < rec.dst.length ? migratePfnToPage(rec.dst[i]) : -1;
  if (d >= 0) {
    // A destination already committed carries the anonymous identity, but nothing maps it.
    releaseDest(core, folioOf(core, d));
    rec.dst[i] = 0;
  }
  return true;
}

/**
 * migrateDeviceExtraRefs - the references in-flight device migrations hold, for the invariant
 * checker: the collect reference of each device source page and the driver's reference on each
 * destination page (system source pages are PG_isolated, which the checker counts itself).
 */
export function migrateDeviceExtraRefs(core: MmCore, refs: Map<number, number>): void {
  const s = states.get(core);
  if (!s) return;
  for (const rec of s.bySrcArray.values()) {
    for (let i = 0; i < rec.npages; i++) {
      const page = migratePfnToPage(rec.src[i]);
      if (page >= 0) {
        const folio = folioOf(core, page);
        if (folio >= core.frames.count && s.byPfn.get(folio)?.rec === rec)
          refs.set(folio, (refs.get(folio) ?? 0) + 1);
      }
      const d = i < rec.dst.length ? migratePfnToPage(rec.dst[i]) : -1;
      if (d >= 0) refs.set(folioOf(core, d), (refs.get(folioOf(core, d)) ?? 0) + 1);
    }
  }
}

/** Number of device migrations between setup and finalize (tests, invariants). */
export function inflightDeviceMigrations(core: MmCore): number {
  return states.get(core)?.bySrcArray.size ?? 0;
}
