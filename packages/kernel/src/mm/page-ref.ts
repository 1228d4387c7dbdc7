import { PG_hugetlb, PG_tail } from './page-flags';
import type { MmCore } from './mm-core';

/** The reference count bias of one FOLL_PIN pin on a small folio (include/linux/mm.h). */
export const GUP_PIN_COUNTING_BIAS = 1 << 10;

/** getPage - take a reference on the folio containing `pfn` (folio_get). Released by putPage. */
export function getPage(core: MmCore, pfn: number): void {
  const f = core.frames;
  const head = f.flags[pfn] & PG_tail ? f.mapping[pfn] - 1 : pfn;
  f.refcount[head]++;
}

/**
 * putPage - drop a reference on the folio containing `pfn` (folio_put). The last reference
 * frees it: to its hugetlb pool for hugetlb folios, else to the buddy allocator.
 */
export function putPage(core: MmCore, pfn: number): void {
  const f = core.frames;
  const head = f.flags[pfn] & PG_tail ? f.mapping[pfn] - 1 : pfn;
  const ref = --f.refcount[head];
  if (ref > 0) return;
  if (ref < 0) throw new Error(`putPage: refcount underflow on pfn ${head}`);
  if (f.flags[head] & PG_hugetlb) core.hugetlb.freeHugetlbFolio(head);
  else core.alloc.freePages(head, f.getOrder(head));
}

/** folioHead - the head pfn of the folio containing `pfn`. */
export function folioHead(core: MmCore, pfn: number): number {
  const f = core.frames;
  return f.flags[pfn] & PG_tail ? f.mapping[pfn] - 1 : pfn;
}

/**
 * folioMaybeDmaPinned - may the folio be pinned for DMA (folio_maybe_dma_pinned)? Exact for
 * large folios (their pincount); for small ones a refcount of GUP_PIN_COUNTING_BIAS or more,
 * which allows false positives, as in the kernel.
 */
export function folioMaybeDmaPinned(core: MmCore, head: number): boolean {
  const f = core.frames;
  if (f.getOrder(head) > 0) return f.privateData[head + 1] > 0;
  return f.refcount[head] >= GUP_PIN_COUNTING_BIAS;
}
