import { PAGE_SIZE } from '../uapi/mman';
import { VM } from '../sim/vmstat';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_dirty,
  PG_lru,
  PG_mlocked,
  PG_shmem,
  PG_swapbacked,
  PG_hugetlb,
  PG_tail,
  PG_unevictable,
} from './page-flags';
import { LEVEL_SIZE } from './page-table';
import { PTE_NONPRESENT_MASK, PTE_PRESENT, PTE_SPECIAL } from './pte';
import type { MmCore } from './mm-core';
import type { VmAreaStruct } from './vma';
import { VM_LOCKED } from './vm-flags';

/**
 * folioAddNewAnonRmap - make a freshly allocated folio an exclusive anonymous page of `vma`
 * mapped once at `va` (folio_add_new_anon_rmap). The mapping's reference is the allocation's.
 */
export function folioAddNewAnonRmap(core: MmCore, vma: VmAreaStruct, head: number, va: number): void {
  const f = core.frames;
  const group = core.anonVmas.prepare(vma);
  f.flags[head] |= PG_anon | PG_anon_exclusive | PG_swapbacked | PG_lru | PG_dirty;
  f.mapping[head] = group.id + 1;
  f.index[head] = va / PAGE_SIZE;
  f.mapcount[head] = 1;
}

/**
 * rmapWalk - call `fn(vma, va)` for every entry that maps the folio headed by `head`
 * (rmap_walk over the anon_vma group or the shmem object's i_mmap): once per PMD or PUD mapping
 * (at its aligned address), once per PTE mapping of each of its pages. `fn` returning false
 * stops the walk. Present and migration entries that point into this folio are reported.
 */
export function rmapWalk(core: MmCore, head: number, fn: (vma: VmAreaStruct, va: number) => boolean): void {
  const f = core.frames;
  const flags = f.flags[head];
  if (flags & PG_tail) throw new Error(`rmapWalk: pfn ${head} is a tail page`);
  const id = f.mapping[head] - 1;
  if (id < 0) return;
  let vmas: Iterable<VmAreaStruct>;
  let vaOf: (vma: VmAreaStruct) => number;
  const index = f.index[head];
  if (flags & PG_anon) {
    const g = core.anonVmas.get(id);
    if (!g) return;
    vmas = g.vmas;
    vaOf = () => index * PAGE_SIZE;
  } else if (flags & PG_shmem) {
    const obj = core.shmem.get(id);
    if (!obj) return;
    vmas = obj.vmas;
    vaOf = (vma) => vma.start + (index - vma.pgoff) * PAGE_SIZE;
  } else return;
  // A large anonymous folio (THP) may be PMD-mapped, or PTE-mapped page by page after a split.
  const nr = flags & PG_hugetlb ? 1 : 1 << f.getOrder(head);
  // Callbacks never add or remove VMAs, so the set is walked in place (no copy per walk).
  for (const vma of vmas) {
    const base = vaOf(vma);
    const pt = vma.mm.pgtable;
    if (nr === 1) {
      if (base < vma.start || base >= vma.end) continue;
      const t = pt.walk(base, false);
      if (!t) continue;
      const hi = t[pt.slot + 1];
      if (!(hi & (PTE_PRESENT | PTE_NONPRESENT_MASK)) || hi & PTE_SPECIAL) continue;
      // A huge leaf maps the head at its aligned address; a PTE maps exactly this pfn.
      const lbase = Math.floor(base / LEVEL_SIZE[pt.level]) * LEVEL_SIZE[pt.level];
      if (t[pt.slot] + (base - lbase) / PAGE_SIZE !== head) continue;
      if (!fn(vma, base)) return;
      continue;
    }
    for (let i = 0; i < nr; i++) {
      const va = base + i * PAGE_SIZE;
      if (va < vma.start || va >= vma.end) continue;
      const t = pt.walk(va, false);
      if (!t) {
        // No table here: skip the rest of this PTE table's span.
        continue;
      }
      const hi = t[pt.slot + 1];
      if (!(hi & (PTE_PRESENT | PTE_NONPRESENT_MASK)) || hi & PTE_SPECIAL) continue;
      if (pt.level !== 3) {
        // PMD-mapped: one mapping for the whole folio.
        if (t[pt.slot] === head && i === 0 && !fn(vma, va)) return;
        break;
      }
      if (t[pt.slot] !== head + i) continue;
      if (!fn(vma, va)) return;
    }
  }
}

/** mappedInLockedVma - true if some VM_LOCKED VMA maps the folio (mlock's rmap check). */
export function mappedInLockedVma(core: MmCore, head: number): boolean {
  let locked = false;
  rmapWalk(core, head, (vma) => {
    if (vma.flags & VM_LOCKED) locked = true;
    return !locked;
  });
  return locked;
}

/**
 * mlockableInLockedVma - should the folio be mlocked: is it mapped by a VM_LOCKED VMA that
 * contains the whole folio (allow_mlock_munlock refuses large folios only partly inside)?
 */
export function mlockableInLockedVma(core: MmCore, head: number): boolean {
  const nr = core.frames.folioNrPages(head);
  let ok = false;
  rmapWalk(core, head, (vma, va) => {
    if (!(vma.flags & VM_LOCKED)) return true;
    if (nr === 1 || core.frames.flags[head] & PG_hugetlb) ok = true;
    else {
      const pt = vma.mm.pgtable;
      const t = pt.walk(va, false);
      const first = t && pt.level === 3 ? va - (t[pt.slot] - head) * PAGE_SIZE : va;
      ok = first >= vma.start && first + nr * PAGE_SIZE <= vma.end;
    }
    return !ok;
  });
  return ok;
}

/** mlockFolio - mark a folio mlocked and unevictable (mlock_folio). */
export function mlockFolio(core: MmCore, head: number): void {
  const f = core.frames;
  if (f.flags[head] & PG_mlocked) return;
  f.flags[head] |= PG_mlocked | PG_unevictable;
  const n = f.folioNrPages(head);
  core.vmstat.inc(VM.nr_mlock, n);
  core.vmstat.inc(VM.unevictable_pgs_mlocked, n);
}

/** munlockFolio - clear mlocked (munlock_folio) once no locked VMA maps the folio any more. */
export function munlockFolio(core: MmCore, head: number): void {
  const f = core.frames;
  if (!(f.flags[head] & PG_mlocked)) return;
  f.flags[head] &= ~(PG_mlocked | PG_unevictable);
  const n = f.folioNrPages(head);
  core.vmstat.dec(VM.nr_mlock, n);
  core.vmstat.inc(VM.unevictable_pgs_munlocked, n);
}

/** recheckMlock - after a mapping of the folio went away, clear mlock if no locked VMA maps it. */
export function recheckMlock(core: MmCore, head: number): void {
  if (core.frames.flags[head] & PG_mlocked && !mappedInLockedVma(core, head)) munlockFolio(core, head);
}
