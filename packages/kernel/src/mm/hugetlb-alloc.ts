/**
 * Run-time huge page assembly (mm/hugetlb.c alloc_fresh_hugetlb_folio / alloc_pool_huge_folio):
 * growing a hugetlb pool after boot, as `echo N > nr_hugepages` does.
 *
 * A 2 MiB page is one order-9 buddy allocation (alloc_buddy_hugetlb_folio) that may stall in
 * direct compaction; with svasim's pool gfp (HUGETLB_POOL_GFP, see hugetlb-pool.ts) it stays out
 * of CMA and ZONE_MOVABLE. A 1 GiB page is beyond the buddy (alloc_gigantic_folio ->
 * alloc_contig_pages): every 1 GiB-aligned range of the node's ZONE_NORMAL, then ZONE_DMA32,
 * without reserved or hugetlb pages is tried with alloc_contig_range until one can be emptied.
 *
 * What pins do here: a pinned page in a pageblock keeps that pageblock from ever being a free
 * 2 MiB block, so once every pageblock of the allowed zones holds one, no 2 MiB page can be
 * assembled however much memory is free. For 1 GiB pages a single pinned 4 KiB page spoils its
 * whole 1 GiB range: 1/262144 of the range, and one pin per GiB is enough to stop every gigantic
 * allocation.
 */
import { VM } from '../sim/vmstat';
import { chargedDuring, pageAllocatorOf } from './compaction';
import { allocContigPages } from './contig-alloc';
import { GFP_HIGHUSER, __GFP_COMP, __GFP_NOWARN, __GFP_RETRY_MAYFAIL, __GFP_THISNODE } from './gfp';
import { HUGETLB_ORDER, HUGETLB_POOL_GFP, HugetlbPools } from './hugetlb-pool';
import type { MmCore } from './mm-core';
import type { HugepageSize } from './phys-types';

/**
 * The gfp mask of a gigantic page (htlb_alloc_mask for a size that is not movable, plus
 * alloc_pool_huge_folio's flags): ZONE_NORMAL and below, this node only.
 */
export const HUGETLB_GIGANTIC_GFP =
  GFP_HIGHUSER | __GFP_COMP | __GFP_THISNODE | __GFP_NOWARN | __GFP_RETRY_MAYFAIL;

/** Round-robin cursor per kernel (h->next_nid_to_alloc of run-time growth). */
const nextNid = new WeakMap<MmCore, number>();

function hugetlbPoolsOf(core: MmCore): HugetlbPools {
  const h = core.hugetlb;
  if (!(h instanceof HugetlbPools)) throw new TypeError('run-time huge pages need the HugetlbPools');
  return h;
}

/**
 * allocFreshHugetlbFolio - assemble one free huge page of @size on node @nid from the buddy
 * (alloc_fresh_hugetlb_folio), without adding it to the pool.
 *
 * Return: the head pfn (2 MiB: a compound block, refcount 1; 1 GiB: a range of refcount-1 pages),
 * or -1. 2 MiB attempts count htlb_buddy_alloc_success / htlb_buddy_alloc_fail. Released by
 * HugetlbPools.addFreshFolio (which takes it over) or freePages / freeContigRange.
 * Context: may compact (2 MiB) or migrate up to a whole 1 GiB range per candidate (1 GiB); the
 * work is charged to the caller.
 */
export function allocFreshHugetlbFolio(core: MmCore, size: HugepageSize, nid: number): number {
  const alloc = pageAllocatorOf(core);
  const order = HUGETLB_ORDER[size];
  if (size === '1GiB') return allocContigPages(core, 2 ** order, HUGETLB_GIGANTIC_GFP, nid);
  const head = alloc.allocPages(HUGETLB_POOL_GFP, order, nid);
  core.vmstat.inc(head >= 0 ? VM.htlb_buddy_alloc_success : VM.htlb_buddy_alloc_fail);
  return head;
}

/** HugepageAllocResult - what allocHugetlbPoolPage did. */
export interface HugepageAllocResult {
  ok: boolean;
  /** Node the page was assembled on. */
  nid?: number;
  /** Head pfn of the new pool page. */
  pfn?: number;
  /** Simulated ns charged to the caller (compaction, migration). */
  latencyNs: number;
}

/**
 * allocHugetlbPoolPage - grow the @size pool by one page assembled at run time
 * (alloc_pool_huge_folio): on node @nid, or without one on each node in turn from where the last
 * run-time allocation stopped.
 *
 * Return: whether a page was added, where, and the simulated latency. The page is released by
 * shrinking the pool (HugetlbPools.setNrHugepages). Throws RangeError for a node that does not
 * exist.
 */
export function allocHugetlbPoolPage(core: MmCore, size: HugepageSize, nid?: number): HugepageAllocResult {
  const alloc = pageAllocatorOf(core);
  const pools = hugetlbPoolsOf(core);
  const n = alloc.nodes.length;
  if (nid !== undefined && !(Number.isInteger(nid) && nid >= 0 && nid < n))
    throw new RangeError(`allocHugepage: no node ${String(nid)}`);
  const { value, ns } = chargedDuring(core, (): Omit<HugepageAllocResult, 'latencyNs'> => {
    const first = nid ?? nextNid.get(core) ?? 0;
    const tries = nid === undefined ? n : 1;
    for (let k = 0; k < tries; k++) {
      const node = (first + k) % n;
      if (nid === undefined) nextNid.set(core, (node + 1) % n);
      const head = allocFreshHugetlbFolio(core, size, node);
      if (head < 0) continue;
      pools.addFreshFolio(size, head);
      return { ok: true, nid: node, pfn: head };
    }
    return { ok: false };
  });
  return { ...value, latencyNs: ns };
}
