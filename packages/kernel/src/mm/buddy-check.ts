/**
 * Consistency checks of the buddy allocator's free lists: the CONFIG_DEBUG_VM of physical memory,
 * for tests, fuzzers and the kernel's invariant checker.
 */
import { MAX_PAGE_ORDER, MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_TYPES, MIGRATETYPE_NAMES } from './gfp';
import { PG_buddy } from './page-flags';
import { ORDER_SHIFT, PG_FLAGS_MASK } from './page-frames';
import type { PageAllocator } from './page-alloc';

/** Problems reported at most, so a corrupted list does not flood the report. */
const MAX_REPORTS = 20;

/**
 * checkBuddyInvariants - verify every free list of @alloc.
 * @deep: also check that every non-head page of every free block has all-zero metadata and no
 *     bytes (costs one pass over all free memory).
 *
 * Checks: list links run both ways; each block is aligned, inside its zone, on the list of its
 * pageblock's migratetype, and its head carries PG_buddy and the list's order; per-list block
 * counts and the zone's free / free-CMA counters match the lists; no two free blocks overlap.
 *
 * Return: one line per problem found (at most 20), empty when everything holds.
 */
export function checkBuddyInvariants(alloc: PageAllocator, deep = false): string[] {
  const out: string[] = [];
  const report = (msg: string) => {
    if (out.length < MAX_REPORTS) out.push(msg);
  };
  const f = alloc.frames;
  const starts: number[] = [];
  for (const zone of alloc.zones) {
    const fa = zone.freeArea;
    let free = 0;
    let cma = 0;
    let isolated = 0;
    const where = `node ${zone.nid} zone ${zone.name}`;
    for (let order = 0; order <= MAX_PAGE_ORDER; order++) {
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        const list = `${where} order ${order} ${MIGRATETYPE_NAMES[mt]}`;
        let n = 0;
        let prev = -1;
        let last = -1;
        for (let p = fa.first(order, mt); p >= 0; p = f.mapping[p] - 1) {
          if (n > alloc.maxPfn) {
            report(`${list}: list does not end`);
            break;
          }
          n++;
          last = p;
          const nr = 1 << order;
          if (f.index[p] !== prev) report(`${list}: pfn ${p} has prev ${f.index[p]}, expected ${prev}`);
          prev = p;
          if (!(f.flags[p] & PG_buddy)) report(`${list}: pfn ${p} lacks PG_buddy`);
          if (f.flags[p] >>> ORDER_SHIFT !== order) report(`${list}: pfn ${p} has order ${f.getOrder(p)}`);
          if (p % nr !== 0) report(`${list}: pfn ${p} is not aligned to its order`);
          if (p < zone.startPfn || p + nr > zone.endPfn) report(`${list}: block ${p} lies outside the zone`);
          if (alloc.migratetypeOf(p) !== mt) {
            report(`${list}: pfn ${p} is in a ${MIGRATETYPE_NAMES[alloc.migratetypeOf(p)]} pageblock`);
          }
          if (deep) {
            for (let q = p + 1; q < p + nr; q++) {
              if (
                f.flags[q] ||
                f.mapping[q] ||
                f.index[q] ||
                f.refcount[q] ||
                f.mapcount[q] ||
                f.dataSlot[q]
              ) {
                report(`${list}: page ${q} inside free block ${p} is not clean`);
                break;
              }
            }
            if (
              (f.flags[p] & PG_FLAGS_MASK) !== PG_buddy ||
              f.refcount[p] ||
              f.mapcount[p] ||
              f.dataSlot[p]
            ) {
              report(`${list}: free head ${p} is not clean`);
            }
          }
          starts.push(p * 32 + order);
          if (mt === MIGRATE_ISOLATE) isolated += nr;
          else free += nr;
          if (mt === MIGRATE_CMA) cma += nr;
        }
        const tail = fa.tail[order * MIGRATE_TYPES + mt];
        if (tail !== last) report(`${list}: tail is ${tail}, last block is ${last}`);
        if (fa.blocksOf(order, mt) !== n)
          report(`${list}: counts ${fa.blocksOf(order, mt)} blocks, holds ${n}`);
      }
    }
    if (fa.freePages !== free) report(`${where}: counts ${fa.freePages} free pages, lists hold ${free}`);
    if (fa.freeCmaPages !== cma)
      report(`${where}: counts ${fa.freeCmaPages} free CMA pages, lists hold ${cma}`);
    if (fa.isolatedPages !== isolated) {
      report(`${where}: counts ${fa.isolatedPages} isolated pages, lists hold ${isolated}`);
    }
  }
  const sorted = Float64Array.from(starts).sort();
  for (let i = 1; i < sorted.length; i++) {
    const a = Math.floor(sorted[i - 1] / 32);
    const aEnd = a + 2 ** (sorted[i - 1] % 32);
    const b = Math.floor(sorted[i] / 32);
    if (aEnd > b) report(`free blocks at ${a} and ${b} overlap`);
  }
  return out;
}
