/**
 * IOVA space allocator of a DMA domain (drivers/iommu/iova.c): ranges of I/O virtual page numbers
 * handed out top-down below a limit, as alloc_iova does.
 */

/**
 * IOVA_RANGE_CACHE_MAX_SIZE - log2 of the largest size (in pages) alloc_iova_fast caches per CPU;
 * requests below 2^(IOVA_RANGE_CACHE_MAX_SIZE - 1) pages are rounded up to a power of two
 * (drivers/iommu/iova.c, include/linux/iova.h).
 */
export const IOVA_RANGE_CACHE_MAX_SIZE = 6;

/**
 * IovaDomain - struct iova_domain: the allocated ranges [pfnLo, pfnHi] (in IOVA pages) of one DMA
 * domain, kept sorted by pfnLo in two parallel arrays (the kernel's rbtree). Page 0 .. startPfn-1
 * are never handed out (iommu_dma_init_domain starts at base_pfn 1, so IOVA 0 is never valid).
 *
 * Deterministic: the same sequence of allocations and frees gives the same addresses.
 */
export class IovaDomain {
  /** Lowest allocatable IOVA page (start_pfn). */
  readonly startPfn: number;
  /** Highest IOVA page the domain can map (the aperture's last page). */
  readonly endPfn: number;
  private readonly lo: number[] = [];
  private readonly hi: number[] = [];

  /**
   * @startPfn: the first allocatable page (init_iova_domain's base_pfn, >= 1).
   * @endPfn: the last page of the aperture.
   */
  constructor(startPfn: number, endPfn: number) {
    if (!Number.isSafeInteger(startPfn) || !Number.isSafeInteger(endPfn) || startPfn < 1 || endPfn < startPfn)
      throw new RangeError(`IovaDomain: bad range [${startPfn}, ${endPfn}]`);
    this.startPfn = startPfn;
    this.endPfn = endPfn;
  }

  /** Number of allocated ranges. */
  get nrRanges(): number {
    return this.lo.length;
  }

  /**
   * allocIova - allocate @size pages at or below @limitPfn (alloc_iova): the highest free range
   * that fits, aligned to the next power of two of @size when @sizeAligned.
   * Returns the first page (pfn_lo) or -1 when no range fits (the kernel's NULL). Released by
   * freeIova.
   */
  allocIova(size: number, limitPfn: number, sizeAligned: boolean): number {
    if (!Number.isSafeInteger(size) || size <= 0) return -1;
    let align = 1;
    if (sizeAligned) while (align < size) align *= 2;
    let high = Math.min(limitPfn, this.endPfn) + 1; // exclusive
    for (let i = this.lo.length - 1; i >= -1; i--) {
      if (i >= 0 && this.lo[i] >= high) continue; // entirely above the search window
      const floor = i >= 0 ? this.hi[i] + 1 : this.startPfn;
      if (floor <= high && high - size >= floor) {
        const cand = Math.floor((high - size) / align) * align;
        if (cand >= floor && cand >= this.startPfn) {
          this.insert(i + 1, cand, cand + size - 1);
          return cand;
        }
      }
      if (i >= 0) high = Math.min(high, this.lo[i]);
    }
    return -1;
  }

  /**
   * allocIovaFast - alloc_iova_fast as the DMA API calls it: sizes below
   * 2^(IOVA_RANGE_CACHE_MAX_SIZE - 1) pages are rounded up to a power of two, and the range is size
   * aligned. Returns the first page or -1. The size actually reserved is findIova(pfn)'s.
   */
  allocIovaFast(size: number, limitPfn: number): number {
    let n = size;
    if (n < 2 ** (IOVA_RANGE_CACHE_MAX_SIZE - 1)) {
      let p = 1;
      while (p < n) p *= 2;
      n = p;
    }
    return this.allocIova(n, limitPfn, true);
  }

  /**
   * findIova - the allocated range containing page @pfn (find_iova), as its index, or -1.
   * Read its bounds with pfnLo(i) / pfnHi(i).
   */
  findIova(pfn: number): number {
    let lo = 0;
    let hi = this.lo.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lo[mid] <= pfn) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1;
    return i >= 0 && pfn <= this.hi[i] ? i : -1;
  }

  /** pfnLo - first page of the range at index @i. */
  pfnLo(i: number): number {
    return this.lo[i];
  }

  /** pfnHi - last page of the range at index @i. */
  pfnHi(i: number): number {
    return this.hi[i];
  }

  /**
   * freeIova - free the range containing page @pfn (free_iova). Returns the number of pages freed,
   * 0 when @pfn is in no allocated range.
   */
  freeIova(pfn: number): number {
    const i = this.findIova(pfn);
    if (i < 0) return 0;
    const n = this.hi[i] - this.lo[i] + 1;
    this.lo.splice(i, 1);
    this.hi.splice(i, 1);
    return n;
  }

  /** forEachRange - visit every allocated range, lowest first: fn(pfnLo, pfnHi). */
  forEachRange(fn: (pfnLo: number, pfnHi: number) => void): void {
    for (let i = 0; i < this.lo.length; i++) fn(this.lo[i], this.hi[i]);
  }

  private insert(at: number, lo: number, hi: number): void {
    this.lo.splice(at, 0, lo);
    this.hi.splice(at, 0, hi);
  }
}
