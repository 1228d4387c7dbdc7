/**
 * LockCounts - how many prepares of one process hold each page, so that overlapping prepares
 * compose: mlock is not counted (one munlock undoes any number of mlocks), so the strategy counts
 * for it and munlocks a page only when its last holder releases it.
 */

/** A run of consecutive pages: the first page index and the number of pages. */
export type PageRun = readonly [first: number, count: number];

/**
 * LockCounts - page index (address / PAGE_SIZE) -> number of prepares holding it. Pages with no
 * holder are absent, so the map is only as large as what is prepared.
 */
export class LockCounts {
  private readonly holds = new Map<number, number>();

  /** Pages held by at least one prepare. */
  get pages(): number {
    return this.holds.size;
  }

  /** count - how many prepares hold page @page (0 when none). */
  count(page: number): number {
    return this.holds.get(page) ?? 0;
  }

  /** heldAll - true when every page of [@first, @first + @n) has a holder. */
  heldAll(first: number, n: number): boolean {
    for (let p = first; p < first + n; p++) if (!this.holds.has(p)) return false;
    return true;
  }

  /** acquire - one more holder for every page of [@first, @first + @n). */
  acquire(first: number, n: number): void {
    for (let p = first; p < first + n; p++) this.holds.set(p, (this.holds.get(p) ?? 0) + 1);
  }

  /**
   * release - one holder less for every page of [@first, @first + @n); the caller checked
   * heldAll. Returns the runs of pages whose last holder this was, lowest first.
   */
  release(first: number, n: number): PageRun[] {
    const freed: PageRun[] = [];
    let runStart = -1;
    for (let p = first; p < first + n; p++) {
      const c = (this.holds.get(p) ?? 1) - 1;
      if (c > 0) {
        this.holds.set(p, c);
        if (runStart >= 0) freed.push([runStart, p - runStart]);
        runStart = -1;
        continue;
      }
      this.holds.delete(p);
      if (runStart < 0) runStart = p;
    }
    if (runStart >= 0) freed.push([runStart, first + n - runStart]);
    return freed;
  }

  /** unheldRuns - the runs of [@first, @first + @n) no prepare holds, lowest first. */
  unheldRuns(first: number, n: number): PageRun[] {
    const runs: PageRun[] = [];
    let runStart = -1;
    for (let p = first; p < first + n; p++) {
      if (!this.holds.has(p)) {
        if (runStart < 0) runStart = p;
      } else if (runStart >= 0) {
        runs.push([runStart, p - runStart]);
        runStart = -1;
      }
    }
    if (runStart >= 0) runs.push([runStart, first + n - runStart]);
    return runs;
  }
}
