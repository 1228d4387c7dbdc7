import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import {
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  VM_FAULT_ERROR,
  VM_FAULT_FALLBACK,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
} from './fault-flags';
import { GFP_HIGHUSER_MOVABLE } from './gfp';
import { hugepageSizeName, type MmCore } from './mm-core';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_CLEAR } from './notifier-hooks';
import { PG_anon, PG_anon_exclusive, PG_mlocked } from './page-flags';
import { folioHead, getPage, putPage } from './page-ref';
import { LEVEL_PMD, LEVEL_PUD, LEVEL_PTE } from './page-table';
import { migrationEntryWait } from './migrate';
import { doHugePmdAnonymousPage, hugePmdFault, thpSuitable, vmaThpEnabled } from './huge-memory';
import {
  PTE_DIRTY,
  PTE_HUGE,
  PTE_MIGRATION,
  PTE_NONPRESENT_MASK,
  PTE_PRESENT,
  PTE_PROTNONE,
  PTE_SPECIAL,
  PTE_USER,
  PTE_WRITE,
  PTE_YOUNG,
} from './pte';
import { folioAddNewAnonRmap, mlockFolio, munlockFolio, recheckMlock } from './rmap';
import type { VmAreaStruct } from './vma';
import { VM_HUGETLB, VM_IO, VM_LOCKED, VM_PFNMAP, VM_SHARED, VM_WRITE } from './vm-flags';

/**
 * FaultHooks - page-fault cases owned by subsystems layered on mm (NUMA hinting, swap-in,
 * migration-entry waits, THP, device-private pages). Each returns VM_FAULT_* bits, or -1 when it
 * does not handle the entry, in which case the fault answers SIGBUS.
 */
export interface FaultHooks {
  /** A non-present but non-empty entry (swap, migration, device-private, device-exclusive). */
  nonPresent?(vma: VmAreaStruct, address: number, flags: number, tableId: number, slot: number): number;
  /** A PROT_NONE entry in an accessible VMA: a NUMA hinting fault. */
  numaHint?(vma: VmAreaStruct, address: number, flags: number, tableId: number, slot: number): number;
  /** First touch of an anonymous range that may get a transparent huge page; -1 to fall back. */
  anonHuge?(vma: VmAreaStruct, address: number, flags: number): number;
}

/** setFaultHooks - install the page-motion subsystems' fault handlers for one kernel. */
export function setFaultHooks(core: MmCore, hooks: FaultHooks): void {
  core.faultHooks = { ...core.faultHooks, ...hooks };
}

/**
 * handleMmFault - resolve a fault at `address` in `vma` (handle_mm_fault). The caller has found
 * the VMA and checked the access against its flags (the architecture's access_error).
 * Returns 0 when the entry now allows the access, else VM_FAULT_* error bits
 * (VM_FAULT_SIGSEGV, VM_FAULT_SIGBUS, VM_FAULT_OOM). Charges the fault's cost to the caller.
 */
export function handleMmFault(vma: VmAreaStruct, address: number, flags: number): number {
  const mm = vma.mm;
  const core = mm.core;
  if (!mm.alive) return VM_FAULT_SIGSEGV;
  core.vmstat.inc(VM.pgfault);
  let ret: number;
  if (vma.flags & VM_HUGETLB) ret = hugetlbFault(core, vma, address, flags);
  else if (vma.flags & (VM_PFNMAP | VM_IO) || vma.vmOps) ret = deviceFault(vma, address, flags);
  else if (vma.file && !vma.shmem && pteNoneAt(mm, address)) {
    // A file mapping whose driver set no vm_ops has nothing to fault in: the kernel gives it
    // vma_dummy_vm_ops and do_fault answers SIGBUS. It never gets anonymous memory.
    ret = VM_FAULT_SIGBUS;
  } else ret = handlePteFault(core, vma, address, flags);
  // The walk allocated the table levels up front; a failed fault must not leave them empty.
  if (ret & VM_FAULT_ERROR) mm.pgtable.pruneEmpty(address);
  if (core.trace.enabled('mm_page_fault'))
    core.trace.emit('mm_page_fault', {
      pid: mm.ownerPid,
      address,
      write: (flags & FAULT_FLAG_WRITE) !== 0,
      result: ret,
    });
  return ret;
}

/** True when nothing at all is mapped at `address` (no table, or an empty entry). */
function pteNoneAt(mm: VmAreaStruct['mm'], address: number): boolean {
  const t = mm.pgtable.walk(address, false);
  return !t || t[mm.pgtable.slot + 1] === 0;
}

function handlePteFault(core: MmCore, vma: VmAreaStruct, address: number, flags: number): number {
  const pt = vma.mm.pgtable;
  // A write into an empty PMD of a THP-enabled VMA gets a whole 2 MiB page when one is free
  // (create_huge_pmd); reads map the 4 KiB zero page (svasim has no huge zero page).
  if (flags & FAULT_FLAG_WRITE && vmaThpEnabled(core, vma) && thpSuitable(vma, address)) {
    const pmd = pt.walk(address, true, LEVEL_PMD)!;
    if (pmd[pt.slot + 1] === 0 && doHugePmdAnonymousPage(vma, address, pt.tableId, pt.slot) === 0) return 0;
  }
  // Walk once, creating the tables a new entry needs: the common first-touch fault then fills
  // the slot this walk found (the kernel's __handle_mm_fault allocates the levels up front too).
  const t = pt.walk(address, true);
  const hi = t ? t[pt.slot + 1] : 0;
  if (hi === 0) {
    if (vma.shmem) return sharedFault(core, vma, address, flags);
    const hook = core.faultHooks.anonHuge;
    if (hook) {
      const r = hook(vma, address, flags);
      if (r >= 0) return r;
    }
    return doAnonymousPage(core, vma, address, flags, pt.tableId, pt.slot);
  }
  const tableId = pt.tableId;
  const slot = pt.slot;
  if (!(hi & PTE_PRESENT)) {
    // A folio being migrated: wait for the copy (charged to us), then the access retries. A
    // migration entry of a device migration (migrate_vma) is the nonPresent hooks' (zone-device.ts).
    if (hi & PTE_MIGRATION && migrationEntryWait(core, t![slot], core.now())) return 0;
    if (pt.level !== LEVEL_PTE) return VM_FAULT_SIGBUS;
    const r =
      hi & PTE_NONPRESENT_MASK
        ? (core.faultHooks.nonPresent?.(vma, address, flags, tableId, slot) ?? -1)
        : -1;
    return r >= 0 ? r : VM_FAULT_SIGBUS;
  }
  if (pt.level !== LEVEL_PTE) {
    // A THP mapped by a PMD: reuse, or split and retry with 4 KiB entries.
    const r = hugePmdFault(vma, address, flags, tableId, slot);
    return r === VM_FAULT_FALLBACK ? handlePteFault(core, vma, address, flags) : r;
  }
  if (hi & PTE_PROTNONE) {
    const r = core.faultHooks.numaHint?.(vma, address, flags, tableId, slot) ?? -1;
    if (r >= 0) return r;
    // Nobody owns the hint: make the entry accessible again.
    pt.set(tableId, slot, t![slot], hi & ~PTE_PROTNONE);
    return 0;
  }
  if (flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE) && !(hi & PTE_WRITE)) {
    return doWpPage(core, vma, address, flags, tableId, slot);
  }
  // Spurious fault (another path already fixed the entry): just mark it accessed.
  pt.set(tableId, slot, t![slot], hi | PTE_YOUNG);
  return 0;
}

/** do_anonymous_page: zero page for reads, a fresh zeroed page for writes. */
function doAnonymousPage(
  core: MmCore,
  vma: VmAreaStruct,
  address: number,
  flags: number,
  tableId: number,
  slot: number,
): number {
  const mm = vma.mm;
  const pt = mm.pgtable;
  const va = address - (address % PAGE_SIZE);
  if (!(flags & FAULT_FLAG_WRITE)) {
    pt.set(tableId, slot, core.alloc.zeroPfn, PTE_PRESENT | PTE_USER | PTE_SPECIAL | PTE_YOUNG);
    core.vmstat.inc(VM.zero_page_fault);
    core.charge(core.costs.minorFaultZeroPage);
    return 0;
  }
  const pfn = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, mm.node);
  if (pfn < 0) return VM_FAULT_OOM;
  folioAddNewAnonRmap(core, vma, pfn, va);
  mm.rssAnon++;
  core.vmstat.inc(VM.nr_anon_pages);
  if (vma.flags & VM_LOCKED) mlockFolio(core, pfn);
  const writable = vma.flags & VM_WRITE ? PTE_WRITE | PTE_DIRTY : 0;
  pt.set(tableId, slot, pfn, PTE_PRESENT | PTE_USER | PTE_YOUNG | writable);
  core.charge(core.costs.minorFaultAnon);
  return 0;
}

/** A fault on a MAP_SHARED anonymous (shmem) mapping: map the object's page. */
function sharedFault(core: MmCore, vma: VmAreaStruct, address: number, flags: number): number {
  const mm = vma.mm;
  const obj = core.shmem.get(vma.shmem);
  const va = address - (address % PAGE_SIZE);
  const pgoff = vma.pgoff + (va - vma.start) / PAGE_SIZE;
  if (!obj || pgoff >= obj.nrPages) return VM_FAULT_SIGBUS;
  const pfn = core.shmem.findOrAlloc(obj, pgoff, mm.node);
  if (pfn < 0) return VM_FAULT_OOM;
  if (!(vma.flags & VM_SHARED) && flags & FAULT_FLAG_WRITE) {
    // A private mapping of a shared object: the write gets its own anonymous copy (do_cow_fault).
    const copy = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, mm.node);
    if (copy < 0) return VM_FAULT_OOM;
    core.data.copyPage(copy, pfn);
    folioAddNewAnonRmap(core, vma, copy, va);
    mm.rssAnon++;
    core.vmstat.inc(VM.nr_anon_pages);
    if (vma.flags & VM_LOCKED) mlockFolio(core, copy);
    pt(vma).walk(va, true);
    pt(vma).set(
      pt(vma).tableId,
      pt(vma).slot,
      copy,
      PTE_PRESENT | PTE_USER | PTE_YOUNG | PTE_WRITE | PTE_DIRTY,
    );
    core.charge(core.costs.cowFault);
    return 0;
  }
  getPage(core, pfn);
  core.frames.mapcount[pfn]++;
  mm.rssShmem++;
  if (vma.flags & VM_LOCKED) mlockFolio(core, pfn);
  const writable = vma.flags & VM_SHARED && vma.flags & VM_WRITE ? PTE_WRITE : 0;
  const dirty = flags & FAULT_FLAG_WRITE ? PTE_DIRTY : 0;
  pt(vma).walk(va, true);
  pt(vma).set(pt(vma).tableId, pt(vma).slot, pfn, PTE_PRESENT | PTE_USER | PTE_YOUNG | writable | dirty);
  core.charge(core.costs.minorFaultAnon);
  return 0;
}

function pt(vma: VmAreaStruct) {
  return vma.mm.pgtable;
}

/**
 * do_wp_page: a write (or an unshare request) to a present read-only entry. Shared mappings
 * become writable; an exclusive anonymous page is reused; anything else is copied (COW).
 */
function doWpPage(
  core: MmCore,
  vma: VmAreaStruct,
  address: number,
  flags: number,
  tableId: number,
  slot: number,
): number {
  const mm = vma.mm;
  const table = mm.pgtable.table(tableId);
  const pfn = table[slot];
  const hi = table[slot + 1];
  const f = core.frames;
  const unshareOnly = !(flags & FAULT_FLAG_WRITE);
  if (hi & PTE_SPECIAL && pfn !== core.alloc.zeroPfn) return VM_FAULT_SIGBUS;
  if (vma.flags & VM_SHARED) {
    if (unshareOnly) return 0;
    mm.pgtable.set(tableId, slot, pfn, hi | PTE_WRITE | PTE_DIRTY | PTE_YOUNG);
    return 0;
  }
  const head = hi & PTE_SPECIAL ? pfn : folioHead(core, pfn);
  if (!(hi & PTE_SPECIAL) && f.flags[head] & PG_anon) {
    const reuse = f.flags[head] & PG_anon_exclusive || (f.refcount[head] === 1 && f.mapcount[head] === 1);
    if (reuse) {
      f.flags[head] |= PG_anon_exclusive;
      const w = unshareOnly || !(vma.flags & VM_WRITE) ? 0 : PTE_WRITE | PTE_DIRTY;
      mm.pgtable.set(tableId, slot, pfn, hi | w | PTE_YOUNG);
      return 0;
    }
  }
  return wpPageCopy(core, vma, address, unshareOnly, tableId, slot);
}

/** wp_page_copy: give this mapping its own copy of the page (or of the zero page). */
function wpPageCopy(
  core: MmCore,
  vma: VmAreaStruct,
  address: number,
  unshareOnly: boolean,
  tableId: number,
  slot: number,
): number {
  const mm = vma.mm;
  const va = address - (address % PAGE_SIZE);
  const table = mm.pgtable.table(tableId);
  const old = table[slot];
  const oldHi = table[slot + 1];
  const fromZero = (oldHi & PTE_SPECIAL) !== 0;
  // Hold the old page across the allocation (do_wp_page's folio_get), so direct reclaim run by
  // the allocation can neither swap it out nor free it before it is copied.
  if (!fromZero) getPage(core, old);
  const copy = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, mm.node);
  if (copy < 0) {
    if (!fromZero) putPage(core, old);
    return VM_FAULT_OOM;
  }
  if (!fromZero) core.data.copyPage(copy, old);
  folioAddNewAnonRmap(core, vma, copy, va);
  core.vmstat.inc(VM.nr_anon_pages);
  if (vma.flags & VM_LOCKED) mlockFolio(core, copy);
  const range = mmuNotifierInvalidateRangeStart(mm, va, va + PAGE_SIZE, MMU_NOTIFY_CLEAR);
  const w = unshareOnly || !(vma.flags & VM_WRITE) ? 0 : PTE_WRITE | PTE_DIRTY;
  // The table may have been replaced if allocation freed page tables; re-walk to be safe.
  mm.pgtable.walk(va, true);
  mm.pgtable.set(mm.pgtable.tableId, mm.pgtable.slot, copy, PTE_PRESENT | PTE_USER | PTE_YOUNG | w);
  if (fromZero) {
    mm.rssAnon++;
  } else {
    const f = core.frames;
    const oldHead = folioHead(core, old);
    const left = --f.mapcount[oldHead];
    if (f.flags[oldHead] & PG_anon) {
      if (left === 0) core.vmstat.dec(VM.nr_anon_pages, f.folioNrPages(oldHead));
    } else {
      mm.rssShmem--;
      mm.rssAnon++;
    }
    const mlocked = (f.flags[oldHead] & PG_mlocked) !== 0;
    if (mlocked && left === 0) munlockFolio(core, oldHead);
    putPage(core, oldHead);
    if (mlocked && left > 0 && f.refcount[oldHead] > 0) recheckMlock(core, oldHead);
    putPage(core, oldHead); // the reference held across the allocation
  }
  mmuNotifierInvalidateRangeEnd(range);
  core.vmstat.inc(VM.cow_fault);
  core.charge(core.costs.cowFault);
  return 0;
}

/** A fault on a device or PFN mapping: only the driver's .fault can resolve it. */
function deviceFault(vma: VmAreaStruct, address: number, flags: number): number {
  const fault = vma.vmOps?.fault;
  if (!fault) return VM_FAULT_SIGBUS;
  const va = address - (address % PAGE_SIZE);
  return fault({ vma, address: va, flags, pgoff: vma.pgoff + (va - vma.start) / PAGE_SIZE });
}

/** hugetlb_fault: map a whole huge page at PMD (2 MiB) or PUD (1 GiB) level. */
function hugetlbFault(core: MmCore, vma: VmAreaStruct, address: number, flags: number): number {
  const mm = vma.mm;
  const size = vma.hugeSize;
  const sizeName = hugepageSizeName(size);
  const level = size === 2 ** 30 ? LEVEL_PUD : LEVEL_PMD;
  const base = Math.floor(address / size) * size;
  const hnr = base / size;
  const pgt = mm.pgtable;
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  const t = pgt.walk(base, false, level);
  const hi = t && pgt.level === level ? t[pgt.slot + 1] : 0;
  const f = core.frames;
  if (hi === 0) {
    let head: number;
    if (vma.shmem) {
      const obj = core.shmem.get(vma.shmem);
      const pgoff = vma.pgoff + (base - vma.start) / PAGE_SIZE;
      if (!obj || pgoff >= obj.nrPages) return VM_FAULT_SIGBUS;
      const fresh = !obj.pages.has(pgoff);
      if (fresh && obj.hugeResv?.delete(pgoff / (size / PAGE_SIZE))) core.hugetlb.unreserve(sizeName, 1);
      head = core.shmem.findOrAllocHuge(obj, pgoff, mm.node);
      if (head < 0) return VM_FAULT_SIGBUS;
      getPage(core, head);
      f.mapcount[head]++;
    } else {
      if (vma.hugeResv?.delete(hnr)) core.hugetlb.unreserve(sizeName, 1);
      head = core.hugetlb.allocHugetlbFolio(sizeName, mm.node);
      if (head < 0) return VM_FAULT_SIGBUS;
      folioAddNewAnonRmap(core, vma, head, base);
    }
    const writable = vma.flags & VM_WRITE && (vma.flags & VM_SHARED || write) ? PTE_WRITE | PTE_DIRTY : 0;
    pgt.walk(base, true, level);
    pgt.set(pgt.tableId, pgt.slot, head, PTE_PRESENT | PTE_USER | PTE_YOUNG | PTE_HUGE | writable);
    core.charge(core.costs.hugetlbFault);
    return 0;
  }
  if (!(hi & PTE_PRESENT)) {
    if (hi & PTE_MIGRATION) return migrationEntryWait(core, t![pgt.slot], core.now()) ? 0 : VM_FAULT_SIGBUS;
    const r = core.faultHooks.nonPresent?.(vma, address, flags, pgt.tableId, pgt.slot) ?? -1;
    return r >= 0 ? r : VM_FAULT_SIGBUS;
  }
  const tableId = pgt.tableId;
  const slot = pgt.slot;
  const head = t![slot];
  // FAULT_FLAG_UNSHARE (a R/O pin of a shared anonymous huge page): break COW, map it R/O.
  const unshare = !write && (flags & FAULT_FLAG_UNSHARE) !== 0 && !(vma.flags & VM_SHARED);
  if ((!write && !unshare) || hi & PTE_WRITE) {
    pgt.set(tableId, slot, head, hi | PTE_YOUNG);
    return 0;
  }
  if (vma.flags & VM_SHARED || f.flags[head] & PG_anon_exclusive || f.refcount[head] === 1) {
    f.flags[head] |= f.flags[head] & PG_anon ? PG_anon_exclusive : 0;
    pgt.set(tableId, slot, head, hi | (unshare ? 0 : PTE_WRITE | PTE_DIRTY) | PTE_YOUNG);
    return 0;
  }
  // hugetlb_wp: copy the whole huge page.
  const copy = core.hugetlb.allocHugetlbFolio(sizeName, mm.node);
  if (copy < 0) return VM_FAULT_SIGBUS;
  const nr = size / PAGE_SIZE;
  for (let i = 0; i < nr; i++) core.data.copyPage(copy + i, head + i);
  folioAddNewAnonRmap(core, vma, copy, base);
  const range = mmuNotifierInvalidateRangeStart(mm, base, base + size, MMU_NOTIFY_CLEAR);
  const w = unshare || !(vma.flags & VM_WRITE) ? 0 : PTE_WRITE | PTE_DIRTY;
  pgt.set(tableId, slot, copy, PTE_PRESENT | PTE_USER | PTE_YOUNG | PTE_HUGE | w);
  f.mapcount[head]--;
  putPage(core, head);
  mmuNotifierInvalidateRangeEnd(range);
  core.vmstat.inc(VM.cow_fault);
  core.charge(core.costs.hugetlbFault + nr * (PAGE_SIZE / core.costs.memcpyBytesPerNs));
  return 0;
}
