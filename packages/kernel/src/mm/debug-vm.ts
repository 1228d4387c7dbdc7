import { PAGE_SIZE } from '../uapi/mman';
import type { MmCore } from './mm-core';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_buddy,
  PG_head,
  PG_hugetlb,
  PG_isolated,
  PG_mlocked,
  PG_reserved,
  PG_shmem,
  PG_slab,
  PG_tail,
  pageFlagNames,
} from './page-flags';
import { LEVEL_PTE } from './page-table';
import {
  PTE_DEVICE_EXCLUSIVE,
  PTE_DEVICE_PRIVATE,
  PTE_MIGRATION,
  PTE_PRESENT,
  PTE_SPECIAL,
  PTE_SWAP,
  PTE_WRITE,
} from './pte';
import { mappedInLockedVma, mlockableInLockedVma } from './rmap';
import { swapInfoOf } from './swap';
import { VM_HUGETLB, VM_LOCKED, VM_SHARED, VM_WRITE } from './vm-flags';
import { checkZoneDeviceInvariants, withZoneDeviceRefs } from './zone-device';

/**
 * References to a folio that are not page-table mappings, reported by the subsystems that hold
 * them (shmem page cache, GUP pins, device mappings), so the checker can balance refcounts.
 */
export type ExtraRefs = Map<number, number>;

/** The most violations reported: one root cause can otherwise print thousands. */
const MAX_REPORTS = 50;

/**
 * checkMmInvariants - the memory-management part of the invariant checker. Walks every page
 * table of every live mm and compares with the page frames:
 *  - every mapped page is in use (not free in the buddy, not reserved, not a tail of something
 *    else), and mapcounts equal the number of entries mapping each folio;
 *  - refcount == mapcount + extra references (pins, page cache) for every folio in use, so a
 *    leaked or missing reference shows up;
 *  - reverse mapping: an anonymous page's group contains the mapping VMA and its index is the
 *    address; a writable entry of a private mapping maps an exclusive page;
 *  - PG_mlocked is set exactly when a VM_LOCKED VMA maps the folio;
 *  - per-mm counters: rss, swap entries (MM_SWAPENTS), total_vm and locked_vm agree with the
 *    VMAs and entries;
 *  - swap: every allocated slot is referred to by exactly its count of swap entries, no entry
 *    refers to a free slot, and free slots hold no bytes (with no swap area, no swap entry);
 *  - no in-use page is left that nothing maps or references (a leak), apart from the kernel's
 *    own reservations and hugetlb pool pages.
 * Returns human-readable violations (empty when all hold).
 */
export function checkMmInvariants(core: MmCore, extraRefs: ExtraRefs = new Map()): string[] {
  const out: string[] = [];
  const report = (msg: string) => {
    if (out.length < MAX_REPORTS) out.push(msg);
  };
  // Device migrations in flight hold references on their pages (zone-device.ts).
  extraRefs = withZoneDeviceRefs(core, extraRefs);
  const f = core.frames;
  const mapped = new Map<number, number>();
  // PTE mappings of each page of a large folio (THP), to check exclusivity page by page.
  const subMapped = new Map<number, number>();
  // Swap entries per slot, over every mm (MM_SWAPENTS and the swap map are checked against them).
  const swapRefs = new Map<number, number>();
  for (const mm of core.mms) {
    let rssAnon = 0;
    let rssShmem = 0;
    let rssFile = 0;
    let swapEnts = 0;
    let totalVm = 0;
    let lockedVm = 0;
    let prevEnd = 0;
    for (const vma of mm.vmas) {
      if (vma.start >= vma.end || vma.start % PAGE_SIZE || vma.end % PAGE_SIZE)
        report(`mm ${mm.id}: malformed VMA [${hex(vma.start)}, ${hex(vma.end)})`);
      if (vma.start < prevEnd) report(`mm ${mm.id}: VMA at ${hex(vma.start)} overlaps its predecessor`);
      prevEnd = vma.end;
      const pages = (vma.end - vma.start) / PAGE_SIZE;
      totalVm += pages;
      if (vma.flags & VM_LOCKED) lockedVm += pages;
      if (vma.anonVma && !core.anonVmas.get(vma.anonVma)?.vmas.has(vma))
        report(`mm ${mm.id}: VMA at ${hex(vma.start)} is not in its anon_vma ${vma.anonVma}`);
      mm.pgtable.forEachEntry(vma.start, vma.end, (va, tableId, slot, level) => {
        const t = mm.pgtable.table(tableId);
        const pfn = t[slot];
        const hi = t[slot + 1];
        // A device-exclusive entry still maps its page (mapcount, reference, RSS): checked as present.
        if (!(hi & PTE_PRESENT) && !(hi & PTE_DEVICE_EXCLUSIVE)) {
          // Device-private pages count in RSS; zone-device.ts checks the pages themselves.
          if (hi & PTE_DEVICE_PRIVATE) {
            rssAnon++;
            return;
          }
          // Swap entries count in MM_SWAPENTS; each holds one reference to its slot.
          if (hi & PTE_SWAP) {
            if (level !== LEVEL_PTE) report(`mm ${mm.id}: swap entry above PTE level at ${hex(va)}`);
            swapEnts++;
            swapRefs.set(pfn, (swapRefs.get(pfn) ?? 0) + 1);
            return;
          }
          // Migration entries keep their place in RSS (the kernel leaves the counters alone).
          if (hi & PTE_MIGRATION && level === LEVEL_PTE) {
            if (f.flags[pfn] & PG_anon) rssAnon++;
            else if (f.flags[pfn] & PG_shmem) rssShmem++;
            else rssFile++;
          }
          return;
        }
        if (hi & PTE_SPECIAL) {
          if (pfn === core.alloc.zeroPfn && hi & PTE_WRITE)
            report(`mm ${mm.id}: zero page mapped writable at ${hex(va)}`);
          return;
        }
        if (pfn >= core.frames.count) {
          report(`mm ${mm.id}: ${hex(va)} maps pfn ${pfn} beyond RAM without a special entry`);
          return;
        }
        // A PTE may map one page of a large folio (a PMD-split THP): account it to the head.
        let head = pfn;
        if (f.flags[pfn] & PG_tail) {
          head = f.mapping[pfn] - 1;
          if (level !== LEVEL_PTE || !(f.flags[head] & PG_head) || pfn - head >= f.folioNrPages(head)) {
            report(`mm ${mm.id}: ${hex(va)} maps tail pfn ${pfn} outside a PTE-mapped folio`);
            return;
          }
        }
        const flags = f.flags[head];
        if (flags & PG_buddy || (flags & PG_reserved && !(flags & PG_hugetlb))) {
          report(
            `mm ${mm.id}: ${hex(va)} maps pfn ${pfn} which is ${pageFlagNames(flags & 0x7ffffff) || 'not in use'}`,
          );
          return;
        }
        if (f.refcount[head] <= 0)
          report(`mm ${mm.id}: ${hex(va)} maps pfn ${pfn} with refcount ${f.refcount[head]}`);
        mapped.set(head, (mapped.get(head) ?? 0) + 1);
        if (f.getOrder(head) > 0 && !(flags & PG_hugetlb))
          subMapped.set(pfn, (subMapped.get(pfn) ?? 0) + (level === LEVEL_PTE ? 1 : 0));
        const pages = flags & PG_hugetlb ? 0 : level === LEVEL_PTE ? 1 : f.folioNrPages(head);
        if (level !== LEVEL_PTE && !(vma.flags & VM_HUGETLB) && !(flags & PG_anon))
          report(`mm ${mm.id}: huge entry at ${hex(va)} maps a non-anonymous folio outside hugetlb`);
        if (flags & PG_anon) rssAnon += pages;
        else if (flags & PG_shmem) rssShmem += pages;
        else rssFile += pages;
        if (flags & PG_anon) {
          if (f.mapping[head] - 1 !== vma.anonVma || !core.anonVmas.get(vma.anonVma)?.vmas.has(vma))
            report(`mm ${mm.id}: anon pfn ${pfn} at ${hex(va)} not reachable through its anon_vma`);
          if ((f.index[head] + (pfn - head)) * PAGE_SIZE !== va)
            report(`mm ${mm.id}: anon pfn ${pfn} index ${f.index[head] + (pfn - head)} != ${hex(va)}`);
          if (hi & PTE_WRITE && !(vma.flags & VM_SHARED) && !(flags & PG_anon_exclusive))
            report(`mm ${mm.id}: writable entry at ${hex(va)} maps non-exclusive anon pfn ${pfn}`);
        }
        if (hi & PTE_WRITE && !(vma.flags & VM_WRITE))
          report(`mm ${mm.id}: writable entry in read-only VMA at ${hex(va)}`);
      });
    }
    if (rssAnon !== mm.rssAnon) report(`mm ${mm.id}: rssAnon ${mm.rssAnon} but ${rssAnon} anon entries`);
    if (rssShmem !== mm.rssShmem)
      report(`mm ${mm.id}: rssShmem ${mm.rssShmem} but ${rssShmem} shmem entries`);
    if (rssFile !== mm.rssFile) report(`mm ${mm.id}: rssFile ${mm.rssFile} but ${rssFile} file entries`);
    if (swapEnts !== mm.swapEnts) report(`mm ${mm.id}: swapEnts ${mm.swapEnts} but ${swapEnts} swap entries`);
    if (totalVm !== mm.totalVm) report(`mm ${mm.id}: total_vm ${mm.totalVm} but VMAs span ${totalVm} pages`);
    // Drivers' account_locked_vm() charges (VFIO) come on top of the locked VMAs.
    if (lockedVm + mm.accountedLockedVm !== mm.lockedVm)
      report(
        `mm ${mm.id}: locked_vm ${mm.lockedVm} but locked VMAs span ${lockedVm} pages (+${mm.accountedLockedVm} accounted by drivers)`,
      );
  }
  // Every allocated swap slot is referred to by exactly its count of swap entries.
  const si = swapInfoOf(core);
  if (si) for (const v of si.checkInvariants(swapRefs)) report(v);
  else if (swapRefs.size > 0) report(`${swapRefs.size} swap slots referred to without a swap area`);
  // shmem page cache references
  const cacheRefs = new Map<number, number>();
  for (const obj of core.shmem.all())
    for (const pfn of obj.pages.values()) cacheRefs.set(pfn, (cacheRefs.get(pfn) ?? 0) + 1);

  for (let pfn = 0; pfn < f.count; pfn++) {
    const flags = f.flags[pfn];
    if (flags & (PG_buddy | PG_tail)) continue;
    const ref = f.refcount[pfn];
    if (ref === 0) continue;
    if (flags & PG_reserved) continue; // the kernel's own pages and the zero page
    // Kernel allocations (slab, DMA-coherent rings) hold references of their own.
    const kernelOwned = (flags & PG_slab) !== 0;
    const maps = mapped.get(pfn) ?? 0;
    if (f.mapcount[pfn] !== maps) report(`pfn ${pfn}: mapcount ${f.mapcount[pfn]} but mapped ${maps} times`);
    // An isolated folio (under migration, compaction or reclaim) holds one more reference.
    const isolated = flags & PG_isolated ? 1 : 0;
    const expected = maps + (cacheRefs.get(pfn) ?? 0) + (extraRefs.get(pfn) ?? 0) + isolated;
    if (flags & PG_hugetlb && maps === 0 && expected === 0 && ref === 1 && !(flags & (PG_anon | PG_shmem)))
      continue;
    if (!kernelOwned && ref !== expected)
      report(
        `pfn ${pfn} (${pageFlagNames(flags & 0x7ffffff)}): refcount ${ref} but ${expected} references accounted`,
      );
    // PageAnonExclusive means one mm maps it: a second mapping would let a write skip COW.
    if (flags & PG_anon_exclusive) {
      const nr = f.folioNrPages(pfn);
      if (nr === 1 || flags & PG_hugetlb) {
        if (maps > 1) report(`pfn ${pfn}: anon-exclusive but mapped ${maps} times`);
      } else {
        for (let i = 0; i < nr; i++)
          if ((subMapped.get(pfn + i) ?? 0) > 1)
            report(`pfn ${pfn + i}: anon-exclusive THP page mapped ${subMapped.get(pfn + i)} times`);
      }
    }
    // mlocked exactly when a locked VMA maps it; a large folio only partly inside the locked
    // VMA may be either (the kernel mlocks it lazily, from reclaim's rmap walk).
    const locked = (flags & PG_mlocked) !== 0;
    const mayLock = maps > 0 && mappedInLockedVma(core, pfn);
    const mustLock = mayLock && mlockableInLockedVma(core, pfn);
    if (locked ? !mayLock : mustLock)
      report(`pfn ${pfn}: PG_mlocked=${locked} but mapped in a locked VMA=${mayLock}`);
  }
  for (const v of checkZoneDeviceInvariants(core, extraRefs)) report(v);
  return out;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}
