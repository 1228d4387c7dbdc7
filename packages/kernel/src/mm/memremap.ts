/**
 * ZONE_DEVICE memory (mm/memremap.c, include/linux/memremap.h): a driver gives pfns above RAM
 * struct pages with memremapPages, hands them out itself (never through the buddy allocator),
 * and gets each back through pagemap.ops.pageFree when its last reference goes.
 *
 * Only MEMORY_DEVICE_PRIVATE is modelled: memory the CPU cannot address (a GPU's VRAM). Process
 * pages moved there (migrate-device.ts) are mapped by device-private entries, swap-type entries
 * holding the device pfn; a CPU fault on one calls pagemap.ops.migrateToRam. The pages' bytes
 * live in PageData like any pfn's, so a driver "copies by DMA" with core.data.
 *
 * The pfn space comes from PageFrames' ZONE_DEVICE region [frames.count, frames.capacity)
 * (createKernel({ memory: { zoneDevice } })): requestFreeMemRegion hands out ranges of it.
 */
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { VM_FAULT_SIGBUS } from './fault-flags';
import type { MmCore } from './mm-core';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_device_private,
  PG_dirty,
  PG_locked,
  PG_lru,
  PG_swapbacked,
  PG_tail,
} from './page-flags';
import { getPage, putPage } from './page-ref';
import { PTE_DEVICE_PRIVATE, PTE_MIGRATION_WRITE } from './pte';
import type { VmAreaStruct, VmFault } from './vma';

/** enum memory_type: CPU-inaccessible device memory, reached through migration (HMM). */
export const MEMORY_DEVICE_PRIVATE = 1;
/** enum memory_type: CPU-coherent device memory (not modelled: memremapPages answers -EOPNOTSUPP). */
export const MEMORY_DEVICE_COHERENT = 2;
/** enum memory_type: DAX (not modelled). */
export const MEMORY_DEVICE_FS_DAX = 3;
/** enum memory_type: generic device memory (not modelled). */
export const MEMORY_DEVICE_GENERIC = 4;
/** enum memory_type: PCI peer-to-peer memory (not modelled). */
export const MEMORY_DEVICE_PCI_P2PDMA = 5;

/**
 * The writable variant of a device-private entry (SWP_DEVICE_WRITE; SWP_DEVICE_READ is the
 * entry without it). The same bit marks a writable migration entry, so mprotect's downgrade of
 * non-present entries treats both alike, as change_pte_range does.
 */
export const PTE_DEVICE_PRIVATE_WRITE = PTE_MIGRATION_WRITE;

/** DevPagemapFault - the struct vm_fault migrate_to_ram receives: the fault plus the device page. */
export interface DevPagemapFault extends VmFault {
  /** vmf->page: the device-private pfn the faulting entry maps (locked and referenced). */
  page: number;
}

/** DevPagemapOps - struct dev_pagemap_ops. */
export interface DevPagemapOps {
  /**
   * pageFree - the page's last reference went (free_zone_device_folio): give it back to the
   * driver's allocator. Its identity and bytes are already cleared. Required for private memory.
   */
  pageFree?(pfn: number): void;
  /**
   * migrateToRam - a CPU access (or GUP, or an IOMMU fault) met a device-private entry of this
   * pagemap: move vmf.page back to system memory, normally with migrateVmaSetup({ faultPage }).
   * Returns 0 (the access retries) or VM_FAULT_* bits (VM_FAULT_SIGBUS: the access fails with
   * EFAULT). The page is locked and referenced by the caller for the duration.
   */
  migrateToRam?(vmf: DevPagemapFault): number;
}

/** PfnRange - a range of pfns [start, end). The kernel's struct range is in bytes, end inclusive. */
export interface PfnRange {
  start: number;
  end: number;
}

/**
 * DevPagemap - struct dev_pagemap, filled by the driver before memremapPages: the memory type,
 * the pfn range (from requestFreeMemRegion), the callbacks and the owner that migrate_vma and
 * hmm_range_fault match (pgmap_owner / dev_private_owner).
 */
export interface DevPagemap {
  type: number;
  range: PfnRange;
  ops: DevPagemapOps | null;
  /** Any non-null value identifying the driver (instance); compared with ===. */
  owner: unknown;
}

interface Region extends PfnRange {
  name: string;
}

/** Per-kernel ZONE_DEVICE bookkeeping. */
interface ZoneDeviceState {
  /** Requested regions, sorted by start. */
  regions: Region[];
  /** Live pagemaps, sorted by range.start. */
  pagemaps: DevPagemap[];
}

const stateOf = new WeakMap<MmCore, ZoneDeviceState>();

function zoneDeviceState(core: MmCore): ZoneDeviceState {
  let s = stateOf.get(core);
  if (!s) stateOf.set(core, (s = { regions: [], pagemaps: [] }));
  return s;
}

/** devicePagemaps - the live pagemaps of a kernel, by pfn (for the invariant checker and tests). */
export function devicePagemaps(core: MmCore): readonly DevPagemap[] {
  return stateOf.get(core)?.pagemaps ?? [];
}

function validRange(r: unknown): r is PfnRange {
  if (typeof r !== 'object' || r === null) return false;
  const { start, end } = r as PfnRange;
  return Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start < end;
}

/**
 * requestFreeMemRegion - reserve @nrPages of physical address space above RAM for device memory
 * (request_free_mem_region): the lowest free range of the ZONE_DEVICE pfn space.
 * Return: the pfn range, or -EINVAL (not a positive page count) or -ERANGE (no free range that
 * large). Released by releaseMemRegion.
 */
export function requestFreeMemRegion(core: MmCore, nrPages: number, name = 'device'): PfnRange | number {
  if (!Number.isSafeInteger(nrPages) || nrPages <= 0) return -ERRNO.EINVAL;
  const s = zoneDeviceState(core);
  const f = core.frames;
  let start = f.count;
  let i = 0;
  for (; i < s.regions.length; i++) {
    const r = s.regions[i];
    if (r.start - start >= nrPages) break;
    start = r.end;
  }
  if (start + nrPages > f.capacity) return -ERRNO.ERANGE;
  const region: Region = { start, end: start + nrPages, name };
  s.regions.splice(i, 0, region);
  return { start: region.start, end: region.end };
}

/**
 * releaseMemRegion - give back a range requestFreeMemRegion returned (release_mem_region).
 * Return: 0, -EINVAL (no such region) or -EBUSY (a live pagemap still covers part of it).
 */
export function releaseMemRegion(core: MmCore, range: PfnRange): number {
  const s = stateOf.get(core);
  if (!s || !validRange(range)) return -ERRNO.EINVAL;
  const i = s.regions.findIndex((r) => r.start === range.start && r.end === range.end);
  if (i < 0) return -ERRNO.EINVAL;
  if (s.pagemaps.some((p) => p.range.start < range.end && range.start < p.range.end)) return -ERRNO.EBUSY;
  s.regions.splice(i, 1);
  return 0;
}

/**
 * memremapPages - give the pfns of @pgmap.range struct pages (memremap_pages): every page
 * starts free (refcount 0) and owned by the driver, which hands pages out with
 * zoneDevicePageInit.
 * @core: the kernel's mm.
 * @pgmap: type MEMORY_DEVICE_PRIVATE with ops.migrateToRam, ops.pageFree and an owner; its range
 *     must lie in the ZONE_DEVICE pfn space (use requestFreeMemRegion).
 *
 * Return: the first pfn, or -EINVAL (a private pagemap without migrateToRam, pageFree or owner;
 * an unknown type; a malformed range), -EOPNOTSUPP (a type svasim does not model: coherent, DAX,
 * generic, P2PDMA), -ENXIO (the range overlaps RAM), -ENOMEM (beyond the ZONE_DEVICE pfn space,
 * or overlapping another pagemap: "Conflicting mapping in same section"), -EEXIST (already
 * mapped). Released by memunmapPages.
 */
export function memremapPages(core: MmCore, pgmap: DevPagemap): number {
  if (typeof pgmap !== 'object' || pgmap === null) return -ERRNO.EINVAL;
  switch (pgmap.type) {
    case MEMORY_DEVICE_PRIVATE:
      if (!pgmap.ops || typeof pgmap.ops.migrateToRam !== 'function') {
        warn(core, 'Missing migrate_to_ram method');
        return -ERRNO.EINVAL;
      }
      if (typeof pgmap.ops.pageFree !== 'function') {
        warn(core, 'Missing page_free method');
        return -ERRNO.EINVAL;
      }
      if (pgmap.owner === null || pgmap.owner === undefined) {
        warn(core, 'Missing owner');
        return -ERRNO.EINVAL;
      }
      break;
    case MEMORY_DEVICE_COHERENT:
    case MEMORY_DEVICE_FS_DAX:
    case MEMORY_DEVICE_GENERIC:
    case MEMORY_DEVICE_PCI_P2PDMA:
      return -ERRNO.EOPNOTSUPP;
    default:
      warn(core, `Invalid pgmap type ${String(pgmap.type)}`);
      return -ERRNO.EINVAL;
  }
  if (!validRange(pgmap.range)) return -ERRNO.EINVAL;
  const f = core.frames;
  const { start, end } = pgmap.range;
  if (start < f.count) {
    warn(core, `attempted on System RAM region ${start}-${end}`);
    return -ERRNO.ENXIO;
  }
  if (end > f.capacity) return -ERRNO.ENOMEM;
  const s = zoneDeviceState(core);
  if (s.pagemaps.includes(pgmap)) return -ERRNO.EEXIST;
  if (s.pagemaps.some((p) => p.range.start < end && start < p.range.end)) {
    warn(core, 'Conflicting mapping in same section');
    return -ERRNO.ENOMEM;
  }
  for (let pfn = start; pfn < end; pfn++) {
    f.flags[pfn] = PG_device_private;
    f.refcount[pfn] = 0;
    f.mapcount[pfn] = 0;
    f.mapping[pfn] = 0;
    f.index[pfn] = 0;
    f.privateData[pfn] = 0;
    core.data.clear(pfn);
  }
  let i = 0;
  while (i < s.pagemaps.length && s.pagemaps[i].range.start < start) i++;
  s.pagemaps.splice(i, 0, pgmap);
  return start;
}

/**
 * memunmapPages - undo memremapPages (memunmap_pages). The kernel waits until every page of the
 * pagemap is free; svasim cannot wait, so a page still referenced (mapped or held) makes it
 * fail: drivers evict their pages first (migrateDeviceRange), as lib/test_hmm.c does.
 * Return: 0, -EINVAL (not mapped) or -EBUSY (a page is still in use).
 */
export function memunmapPages(core: MmCore, pgmap: DevPagemap): number {
  const s = stateOf.get(core);
  const i = s ? s.pagemaps.indexOf(pgmap) : -1;
  if (!s || i < 0) return -ERRNO.EINVAL;
  const f = core.frames;
  const { start, end } = pgmap.range;
  for (let pfn = start; pfn < end; pfn++) if (f.refcount[pfn] !== 0) return -ERRNO.EBUSY;
  for (let pfn = start; pfn < end; pfn++) {
    f.flags[pfn] = 0;
    core.data.clear(pfn);
  }
  s.pagemaps.splice(i, 1);
  return 0;
}

/** pagePgmap - the live pagemap holding @pfn (page_pgmap), or null for any other pfn. */
export function pagePgmap(core: MmCore, pfn: number): DevPagemap | null {
  const f = core.frames;
  if (!(pfn >= f.count && pfn < f.capacity)) return null;
  const maps = stateOf.get(core)?.pagemaps;
  if (!maps) return null;
  let lo = 0;
  let hi = maps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (maps[mid].range.end <= pfn) lo = mid + 1;
    else hi = mid;
  }
  const p = maps[lo];
  return p && p.range.start <= pfn ? p : null;
}

/** isZoneDevicePage - does @pfn belong to a live pagemap (is_zone_device_page)? */
export function isZoneDevicePage(core: MmCore, pfn: number): boolean {
  return pagePgmap(core, pfn) !== null;
}

/** isDevicePrivatePage - is @pfn a MEMORY_DEVICE_PRIVATE page (is_device_private_page)? */
export function isDevicePrivatePage(core: MmCore, pfn: number): boolean {
  const f = core.frames;
  return (
    Number.isSafeInteger(pfn) &&
    pfn >= f.count &&
    pfn < f.capacity &&
    (f.flags[pfn] & PG_device_private) !== 0
  );
}

/**
 * zoneDevicePageInit - take a free device page for the driver (zone_device_page_init): refcount
 * 1 and locked, as migrate_vma expects a destination page. The driver's reference goes with
 * folioPut (migrateVmaFinalize does it for destination pages).
 * Return: 0, -EINVAL (not a page of a live pagemap) or -EBUSY (the page is in use).
 */
export function zoneDevicePageInit(core: MmCore, pfn: number): number {
  if (!isZoneDevicePage(core, pfn)) return -ERRNO.EINVAL;
  const f = core.frames;
  if (f.refcount[pfn] !== 0) return -ERRNO.EBUSY;
  f.refcount[pfn] = 1;
  f.flags[pfn] |= PG_locked;
  return 0;
}

/** folioTrylock - lock a page without sleeping (folio_trylock). False if already locked. */
export function folioTrylock(core: MmCore, pfn: number): boolean {
  const f = core.frames;
  if (f.flags[pfn] & PG_locked) return false;
  f.flags[pfn] |= PG_locked;
  return true;
}

/** folioUnlock - unlock a page locked by folioTrylock, zoneDevicePageInit or migrate_vma (folio_unlock). */
export function folioUnlock(core: MmCore, pfn: number): void {
  core.frames.flags[pfn] &= ~PG_locked;
}

/** folioGet - take a reference on the folio containing @pfn, RAM or device (folio_get). */
export function folioGet(core: MmCore, pfn: number): void {
  if (pfn >= core.frames.count) core.frames.refcount[pfn]++;
  else getPage(core, pfn);
}

/**
 * folioPut - drop a reference on the folio containing @pfn (folio_put): the last one frees a RAM
 * folio to the buddy (or its hugetlb pool) and a device page to its driver (pageFree).
 * Throws on an underflow (a simulator bug).
 */
export function folioPut(core: MmCore, pfn: number): void {
  if (pfn < core.frames.count) {
    putPage(core, pfn);
    return;
  }
  const f = core.frames;
  const ref = --f.refcount[pfn];
  if (ref > 0) return;
  if (ref < 0) throw new Error(`folioPut: refcount underflow on device pfn ${pfn}`);
  freeZoneDeviceFolio(core, pfn);
}

/**
 * free_zone_device_folio: forget the page's anonymous identity and bytes and hand it to the
 * driver. The kernel leaves device memory as it was; svasim drops the bytes so the PageData slot
 * is recycled (a driver reusing the page overwrites or clears it anyway).
 */
function freeZoneDeviceFolio(core: MmCore, pfn: number): void {
  const f = core.frames;
  f.flags[pfn] &= ~(PG_anon | PG_anon_exclusive | PG_dirty | PG_swapbacked | PG_lru | PG_locked);
  f.mapping[pfn] = 0;
  f.index[pfn] = 0;
  f.mapcount[pfn] = 0;
  core.data.clear(pfn);
  pagePgmap(core, pfn)?.ops?.pageFree?.(pfn);
}

/** isDevicePrivateEntry - does the non-present entry @hi map a device-private page? */
export function isDevicePrivateEntry(hi: number): boolean {
  return (hi & PTE_DEVICE_PRIVATE) !== 0;
}

/** isWritableDevicePrivateEntry - a device-private entry the CPU could write after migration. */
export function isWritableDevicePrivateEntry(hi: number): boolean {
  return (
    (hi & (PTE_DEVICE_PRIVATE | PTE_DEVICE_PRIVATE_WRITE)) === (PTE_DEVICE_PRIVATE | PTE_DEVICE_PRIVATE_WRITE)
  );
}

/** makeDevicePrivateEntry - the hi word of a device-private entry (make_{readable,writable}_device_private_entry). */
export function makeDevicePrivateEntry(writable: boolean): number {
  return PTE_DEVICE_PRIVATE | (writable ? PTE_DEVICE_PRIVATE_WRITE : 0);
}

/**
 * doDevicePrivateFault - the device-private branch of do_swap_page: lock and reference the
 * device page, then let its driver migrate it back (pagemap.ops.migrateToRam).
 * Context: the fault path's nonPresent hook (zone-device.ts), for an entry at PTE level.
 * Return: what migrateToRam returned; 0 without calling it when the page is locked (someone is
 * migrating it: the access retries, as the kernel's failed trylock does); VM_FAULT_SIGBUS for an
 * entry whose page has no live pagemap.
 */
export function doDevicePrivateFault(
  vma: VmAreaStruct,
  address: number,
  flags: number,
  tableId: number,
  slot: number,
): number {
  const core = vma.mm.core;
  const f = core.frames;
  const pfn = vma.mm.pgtable.table(tableId)[slot];
  const pgmap = pagePgmap(core, pfn);
  if (!pgmap || !pgmap.ops?.migrateToRam || f.refcount[pfn] <= 0) return VM_FAULT_SIGBUS;
  if (!folioTrylock(core, pfn)) return 0;
  f.refcount[pfn]++;
  core.charge(core.costs.minorFaultZeroPage);
  const va = address - (address % PAGE_SIZE);
  try {
    return pgmap.ops.migrateToRam({
      vma,
      address: va,
      flags,
      pgoff: vma.pgoff + (va - vma.start) / PAGE_SIZE,
      page: pfn,
    });
  } finally {
    folioUnlock(core, pfn);
    folioPut(core, pfn);
  }
}

/**
 * zapDevicePrivateEntry - munmap/exit removed a device-private entry (zap_nonpresent_ptes): the
 * mapping's RSS, mapcount and reference go; the last reference hands the page to its driver.
 * Return: true when @hi was a device-private entry.
 */
export function zapDevicePrivateEntry(
  core: MmCore,
  mm: { rssAnon: number },
  lo: number,
  hi: number,
): boolean {
  if (!(hi & PTE_DEVICE_PRIVATE)) return false;
  const f = core.frames;
  mm.rssAnon--;
  f.mapcount[lo]--;
  folioPut(core, lo);
  return true;
}

/**
 * copyDevicePrivateEntry - fork met a device-private entry (copy_nonpresent_pte): the child maps
 * the same device page (a reference, a mapcount, RSS); the page stops being exclusive and, in a
 * COW mapping, a writable entry becomes read-only in both, so the first write of either side
 * migrates it back and breaks COW.
 * Return: the child's hi word.
 */
export function copyDevicePrivateEntry(
  core: MmCore,
  srcTable: Uint32Array,
  slot: number,
  child: { rssAnon: number },
  cow: boolean,
): number {
  const f = core.frames;
  const lo = srcTable[slot];
  let hi = srcTable[slot + 1];
  f.refcount[lo]++;
  f.mapcount[lo]++;
  f.flags[lo] &= ~PG_anon_exclusive;
  child.rssAnon++;
  if (cow && hi & PTE_DEVICE_PRIVATE_WRITE) {
    hi &= ~PTE_DEVICE_PRIVATE_WRITE;
    srcTable[slot + 1] = hi;
  }
  return hi;
}

/** The head pfn of a RAM folio or the pfn of a device page. */
export function folioOf(core: MmCore, pfn: number): number {
  const f = core.frames;
  return pfn < f.count && f.flags[pfn] & PG_tail ? f.mapping[pfn] - 1 : pfn;
}

function warn(core: MmCore, msg: string): void {
  core.dmesg.printk(`WARNING: mm/memremap.c: ${msg}`);
}
