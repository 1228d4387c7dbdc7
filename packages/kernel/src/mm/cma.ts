/**
 * Contiguous Memory Allocator areas (mm/cma.c): a range of MIGRATE_CMA pageblocks that the buddy
 * lends to movable allocations and that cmaAlloc takes back in one contiguous piece.
 *
 * cmaAllocFree here takes only pages that are already free. cma_alloc proper, which migrates busy
 * (movable) pages out of the way with alloc_contig_range() and fails with -EBUSY on a pinned page,
 * is cmaAlloc in contig-alloc.ts; both release with cmaRelease.
 */
import type { PageAllocator } from './page-alloc';

/**
 * CmaArea - one CMA area (struct cma): @count pages from @basePfn on node @nid, with a bitmap of
 * the pages handed out by cma_alloc (one bit per page: order_per_bit 0).
 */
export class CmaArea {
  /** Bit i set = page basePfn + i belongs to a CMA allocation. */
  readonly bitmap: Uint32Array;
  /** Pages currently allocated from the area. */
  allocatedPages = 0;

  /**
   * @name: the area's name (/sys/kernel/mm/cma/<name>); per-node areas are "pernuma<nid>" as
   *     with the kernel's cma_pernuma=.
   */
  constructor(
    readonly name: string,
    readonly nid: number,
    readonly basePfn: number,
    readonly count: number,
  ) {
    this.bitmap = new Uint32Array(Math.ceil(count / 32));
  }

  /** One past the area's last pfn. */
  get endPfn(): number {
    return this.basePfn + this.count;
  }

  /** isAllocated - whether @pfn (inside the area) belongs to a CMA allocation. */
  isAllocated(pfn: number): boolean {
    const i = pfn - this.basePfn;
    return (this.bitmap[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  /** The first pfn in [@start, @end) whose bit is set, or -1. */
  firstAllocated(start: number, end: number): number {
    for (let p = start; p < end; p++) if (this.isAllocated(p)) return p;
    return -1;
  }

  /** Set (@value true) or clear the bits of [@start, @end). */
  markRange(start: number, end: number, value: boolean): void {
    for (let p = start; p < end; p++) {
      const i = p - this.basePfn;
      if (value) this.bitmap[i >>> 5] |= 1 << (i & 31);
      else this.bitmap[i >>> 5] &= ~(1 << (i & 31));
    }
  }
}

/**
 * cmaAllocFree - allocate @nrPages contiguous pages from @area, using only pages that are free in
 * the buddy right now (cma_alloc without the migration step; see the file comment).
 * @alloc: the page allocator owning @area.
 * @align: alignment order of the base pfn (cma_alloc's align: 0 = any page, 9 = 2 MiB).
 *
 * Candidates are tried from the bottom of the area, as bitmap_find_next_zero_area_off does; one
 * holding a busy or CMA-allocated page is skipped past that page.
 *
 * Return: the base pfn, each page with refcount 1 and otherwise clean, counted as
 * cma_alloc_success; or -1 (cma_alloc_fail) when no candidate range is entirely free or @nrPages
 * is not a positive integer. Released by cmaRelease(alloc, area, pfn, nrPages).
 */
export function cmaAllocFree(alloc: PageAllocator, area: CmaArea, nrPages: number, align = 0): number {
  const vm = alloc.vmstat;
  const mask = 2 ** align - 1;
  const alignUp = (p: number) => Math.ceil(p / (mask + 1)) * (mask + 1);
  if (Number.isInteger(nrPages) && nrPages > 0 && nrPages <= area.count) {
    let cand = alignUp(area.basePfn);
    while (cand + nrPages <= area.endPfn) {
      const end = cand + nrPages;
      let bad = area.firstAllocated(cand, end);
      if (bad < 0) bad = alloc.firstBusyPfn(cand, end);
      if (bad < 0 && alloc.takeFreeRange(cand, nrPages)) {
        area.markRange(cand, end, true);
        area.allocatedPages += nrPages;
        alloc.frames.refcount.fill(1, cand, end);
        vm.inc(vm.register('cma_alloc_success'));
        return cand;
      }
      cand = alignUp(Math.max(bad, cand) + 1);
    }
  }
  vm.inc(vm.register('cma_alloc_fail'));
  return -1;
}

/**
 * cmaRelease - give back @nrPages pages from @pfn that cmaAllocFree took from @area (cma_release):
 * the pages go back to the buddy (cleared) and their bits are cleared.
 *
 * Return: false, changing nothing, when the range is not inside @area (as cma_release refuses pages
 * that are not its own); true otherwise. Throws Error (a simulator bug) when a page of the range was
 * not allocated from the area.
 */
export function cmaRelease(alloc: PageAllocator, area: CmaArea, pfn: number, nrPages: number): boolean {
  if (!Number.isInteger(pfn) || nrPages <= 0 || pfn < area.basePfn || pfn + nrPages > area.endPfn)
    return false;
  for (let p = pfn; p < pfn + nrPages; p++) {
    if (!area.isAllocated(p)) throw new Error(`cma_release: pfn ${p} of area ${area.name} is not allocated`);
  }
  alloc.freeRange(pfn, nrPages);
  area.markRange(pfn, pfn + nrPages, false);
  area.allocatedPages -= nrPages;
  return true;
}

/** cmaAreaOf - the CMA area of @alloc containing @pfn, or undefined. */
export function cmaAreaOf(alloc: PageAllocator, pfn: number): CmaArea | undefined {
  for (const a of alloc.cmaAreas) if (pfn >= a.basePfn && pfn < a.endPfn) return a;
  return undefined;
}
