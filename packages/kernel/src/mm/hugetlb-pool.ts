/**
 * hugetlb pools (mm/hugetlb.c): per huge page size and node, a free list of preallocated huge
 * folios and the nr / free / resv / surplus counters of /sys/kernel/mm/hugepages.
 *
 * 1 GiB pages come from memblock at boot (the page allocator carves them out before the buddy
 * sees the memory); 2 MiB pages come from the buddy, at boot and when the pool grows. svasim keeps
 * 2 MiB pool pages out of ZONE_MOVABLE and CMA (it allocates them like a long-term pin, __GFP_PIN,
 * from MIGRATE_MOVABLE pageblocks), where the kernel would allow both for migratable sizes: pool
 * pages are meant to be pinned by the strategies that use them, and a pinned page in ZONE_MOVABLE
 * or CMA would block offlining and cma_alloc.
 */
import type { IVmstat } from '../sim/types';
import {
  GFP_HIGHUSER_MOVABLE,
  __GFP_COMP,
  __GFP_NOWARN,
  __GFP_PIN,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
} from './gfp';
import { formatBytes } from './memory-size';
import type { BootGiganticPage, PageAllocator } from './page-alloc';
import { PG_head, PG_hugetlb, PG_tail } from './page-flags';
import { ORDER_SHIFT } from './page-frames';
import type { HugepageSize, HugetlbPoolStats } from './phys-types';
import { PAGE_SHIFT } from '../uapi/mman';

/** Order of each huge page size (huge_page_order). */
export const HUGETLB_ORDER: Readonly<Record<HugepageSize, number>> = { '2MiB': 9, '1GiB': 18 };

/** The sizes in the order the kernel registers its hstates (default 2 MiB first). */
export const HUGEPAGE_SIZES: readonly HugepageSize[] = ['2MiB', '1GiB'];

/**
 * The gfp mask of a pool allocation from the buddy (htlb_alloc_mask + alloc_buddy_hugetlb_folio):
 * a compound, node-exact, may-fail allocation that stays out of CMA and ZONE_MOVABLE (see the file
 * comment).
 */
export const HUGETLB_POOL_GFP =
  GFP_HIGHUSER_MOVABLE | __GFP_PIN | __GFP_COMP | __GFP_NOWARN | __GFP_RETRY_MAYFAIL | __GFP_THISNODE;

/** hugepageSizeOfOrder - the HugepageSize of a folio order, or undefined for another order. */
export function hugepageSizeOfOrder(order: number): HugepageSize | undefined {
  if (order === HUGETLB_ORDER['2MiB']) return '2MiB';
  if (order === HUGETLB_ORDER['1GiB']) return '1GiB';
  return undefined;
}

/** One size's pool (struct hstate). */
class Hstate {
  readonly order: number;
  readonly nrPages: number;
  nr = 0;
  free = 0;
  resv = 0;
  surplus = 0;
  readonly nrNode: Int32Array;
  readonly freeNode: Int32Array;
  readonly surplusNode: Int32Array;
  /** Free folio heads per node; the last pushed is the first used, as list_move + list_first do. */
  readonly freeLists: number[][];
  nextNidToAlloc = 0;
  nextNidToFree = 0;

  constructor(
    readonly size: HugepageSize,
    nrNodes: number,
  ) {
    this.order = HUGETLB_ORDER[size];
    this.nrPages = 2 ** this.order;
    this.nrNode = new Int32Array(nrNodes);
    this.freeNode = new Int32Array(nrNodes);
    this.surplusNode = new Int32Array(nrNodes);
    this.freeLists = Array.from({ length: nrNodes }, () => []);
  }

  /** persistent_huge_pages: pages that stay in the pool when freed. */
  get persistent(): number {
    return this.nr - this.surplus;
  }

  /** The kernel's string_get_size(huge_page_size, STRING_UNITS_2): "2.00 MiB". */
  get sizeString(): string {
    const [n, unit] = formatBytes(this.nrPages * 2 ** PAGE_SHIFT).split(' ');
    return `${Number(n).toFixed(2)} ${unit}`;
  }
}

/**
 * HugetlbPools - the hugetlb pools of one machine, both sizes, every node. Built by the
 * PageAllocator at boot (alloc.hugetlb).
 */
export class HugetlbPools {
  /** Boot log lines: shortfalls ("HugeTLB: allocating 4 of page size 1.00 GiB failed. ...") and
   * "HugeTLB: registered ..." lines; PageAllocator.bootMessages includes them. */
  readonly bootMessages: string[] = [];
  private readonly hstates: Record<HugepageSize, Hstate>;
  private readonly nrNodes: number;
  private readonly vmHtlbSuccess: number;
  private readonly vmHtlbFail: number;

  /**
   * Fill the pools at boot.
   * @alloc: the page allocator, booted up to its buddy lists and watermarks.
   * @bootGigantic: the 1 GiB pages memblock carved out for hugetlb.
   * @requested: hugepages= per size; the 1 GiB shortfall is known from @bootGigantic, the 2 MiB
   *     pages are allocated from the buddy now, nodes in turn.
   */
  constructor(
    private readonly alloc: PageAllocator,
    vmstat: IVmstat,
    bootGigantic: readonly BootGiganticPage[],
    requested: Partial<Record<HugepageSize, number>>,
  ) {
    this.nrNodes = alloc.nodes.length;
    this.hstates = { '2MiB': new Hstate('2MiB', this.nrNodes), '1GiB': new Hstate('1GiB', this.nrNodes) };
    this.vmHtlbSuccess = vmstat.register('htlb_buddy_alloc_success');
    this.vmHtlbFail = vmstat.register('htlb_buddy_alloc_fail');
    for (const size of HUGEPAGE_SIZES) {
      const n = requested[size] ?? 0;
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`hugepages ${size}: invalid count ${n}`);
    }

    const giga = this.hstates['1GiB'];
    for (const g of bootGigantic) {
      this.prepGigantic(g.pfn);
      this.enqueue(giga, g.pfn, g.nid);
      giga.nr++;
      giga.nrNode[g.nid]++;
    }
    const small = this.hstates['2MiB'];
    const want2m = requested['2MiB'] ?? 0;
    while (small.nr < want2m && this.allocPoolHugeFolio(small)) {
      // each success grew the pool by one
    }
    for (const size of HUGEPAGE_SIZES) {
      const h = this.hstates[size];
      const want = requested[size] ?? 0;
      if (h.nr < want) {
        this.bootMessages.push(
          `HugeTLB: allocating ${want} of page size ${h.sizeString} failed.  Only allocated ${h.nr} hugepages.`,
        );
      }
    }
    for (const size of HUGEPAGE_SIZES) {
      const h = this.hstates[size];
      this.bootMessages.push(`HugeTLB: registered ${h.sizeString} page size, pre-allocated ${h.nr} pages`);
    }
  }

  /**
   * allocHugetlbFolio - take a huge folio of @size from the pool (dequeue_hugetlb_folio_nodemask).
   * @nid: preferred node (-1 = node 0); other nodes are tried after it, nearest first.
   * @useReserve: consume one reservation made by reserve() (a fault in a mapping that reserved at
   *     mmap time). Without it, the pool must hold a free page nobody reserved.
   *
   * Return: the head pfn, with refcount 1, PG_hugetlb | PG_head and the order set, tails linked; or
   * -1 when the pool has no page for this caller. Released by freeHugetlbFolio(head) once the last
   * reference is dropped. Throws Error when @useReserve is set and no reservation is outstanding.
   */
  allocHugetlbFolio(size: HugepageSize, nid = -1, useReserve = false): number {
    const h = this.hstates[size];
    if (useReserve) {
      if (h.resv <= 0) throw new Error(`hugetlb ${size}: no reservation to consume`);
    } else if (h.free - h.resv <= 0) {
      return -1;
    }
    const pref = nid < 0 || nid >= this.nrNodes ? 0 : nid;
    for (let k = 0; k < this.nrNodes; k++) {
      const node = (pref + k) % this.nrNodes;
      const list = h.freeLists[node];
      if (list.length === 0) continue;
      const head = list.pop()!;
      h.free--;
      h.freeNode[node]--;
      if (useReserve) h.resv--;
      this.alloc.frames.refcount[head] = 1;
      return head;
    }
    return -1;
  }

  /**
   * freeHugetlbFolio - return the huge folio @head to its pool after its last reference was dropped
   * (free_huge_folio): every page's mapping state and bytes are cleared; a surplus page goes back
   * to the buddy instead, shrinking the pool.
   *
   * Throws Error (a simulator bug) when @head is not a hugetlb folio head.
   */
  freeHugetlbFolio(head: number): void {
    const f = this.alloc.frames;
    const size = f.flags[head] & PG_hugetlb ? hugepageSizeOfOrder(f.flags[head] >>> ORDER_SHIFT) : undefined;
    if (!size || f.flags[head] & PG_tail)
      throw new Error(`freeHugetlbFolio: pfn ${head} is not a hugetlb folio head`);
    const h = this.hstates[size];
    this.resetFolio(head, h.order);
    const nid = this.alloc.nodeOf(head);
    if (h.surplusNode[nid] > 0) {
      h.surplus--;
      h.surplusNode[nid]--;
      h.nr--;
      h.nrNode[nid]--;
      this.updateAndFree(h, head);
      return;
    }
    this.enqueue(h, head, nid);
  }

  /**
   * reserve - reserve @n huge pages of @size for a mapping (hugetlb_acct_memory at mmap time).
   *
   * Return: true when the pool has @n free pages nobody reserved, which are now reserved; false
   * (nothing changed) otherwise. Released by unreserve(size, n) for whatever the mapping does not
   * consume through allocHugetlbFolio(size, nid, true).
   */
  reserve(size: HugepageSize, n: number): boolean {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`hugetlb reserve: invalid count ${n}`);
    const h = this.hstates[size];
    if (h.free - h.resv < n) return false;
    h.resv += n;
    return true;
  }

  /**
   * unreserve - drop @n reservations of @size (hugetlb_acct_memory with a negative delta).
   * Throws Error (a simulator bug) when fewer than @n are outstanding.
   */
  unreserve(size: HugepageSize, n: number): void {
    const h = this.hstates[size];
    if (!Number.isInteger(n) || n < 0 || n > h.resv) {
      throw new Error(`hugetlb unreserve ${size}: ${n} exceeds the ${h.resv} reserved`);
    }
    h.resv -= n;
  }

  /**
   * stats - the counters of the @size pool: machine-wide, or of node @nid
   * (/sys/devices/system/node/node<nid>/hugepages), where resv is 0 since the kernel keeps
   * reservations machine-wide only. Return: a fresh object.
   */
  stats(size: HugepageSize, nid?: number): HugetlbPoolStats {
    const h = this.hstates[size];
    if (nid === undefined) return { nr: h.nr, free: h.free, resv: h.resv, surplus: h.surplus };
    if (nid < 0 || nid >= this.nrNodes) throw new RangeError(`hugetlb stats: no node ${nid}`);
    return { nr: h.nrNode[nid], free: h.freeNode[nid], resv: 0, surplus: h.surplusNode[nid] };
  }

  /**
   * setNrHugepages - write nr_hugepages of @size (set_max_huge_pages). Growing turns surplus pages
   * back into persistent ones, then allocates 2 MiB pages from the buddy, nodes in turn, until one
   * round fails on every node (1 GiB pages cannot be assembled at run time yet). Shrinking frees
   * free pages to the buddy, never below the pages in use plus the reserved ones, and turns the
   * rest of the excess into surplus pages that go back to the buddy when freed.
   *
   * Return: the resulting persistent pool size (nr - surplus), which may fall short of @n.
   */
  setNrHugepages(size: HugepageSize, n: number): number {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`nr_hugepages: invalid count ${n}`);
    const h = this.hstates[size];
    while (h.surplus > 0 && n > h.persistent) {
      if (!this.adjustPoolSurplus(h, -1)) break;
    }
    if (size === '2MiB') {
      while (n > h.persistent) {
        if (!this.allocPoolHugeFolio(h)) break;
      }
    }
    const minCount = Math.max(n, h.resv + h.nr - h.free);
    while (minCount < h.persistent) {
      const head = this.removePoolHugetlbFolio(h);
      if (head < 0) break;
      this.updateAndFree(h, head);
    }
    while (n < h.persistent) {
      if (!this.adjustPoolSurplus(h, 1)) break;
    }
    return h.persistent;
  }

  /**
   * addFreshFolio - grow the @size pool by one huge page assembled at run time
   * (prep_new_hugetlb_folio + enqueue_hugetlb_folio after alloc_fresh_hugetlb_folio): @head is the
   * first of 2^order pages taken off the buddy, as a compound block from allocPages or as a
   * contiguous range from alloc_contig_range (every page refcount 1). It becomes a free hugetlb
   * folio on its node's free list. Released like any pool page: setNrHugepages shrinking the pool.
   *
   * Throws RangeError when @head is not aligned to the size or its range is outside memory.
   */
  addFreshFolio(size: HugepageSize, head: number): void {
    const h = this.hstates[size];
    if (!Number.isInteger(head) || head < 0 || head % h.nrPages !== 0 || head + h.nrPages > this.alloc.maxPfn)
      throw new RangeError(`addFreshFolio: pfn ${head} is not a ${size} page`);
    this.prepGigantic(head, h.order);
    this.alloc.frames.refcount.fill(0, head, head + h.nrPages);
    const nid = this.alloc.nodeOf(head);
    h.nr++;
    h.nrNode[nid]++;
    this.enqueue(h, head, nid);
  }

  /** isHugetlbFolio - whether @pfn belongs to a hugetlb folio (PageHuge of its head). */
  isHugetlbFolio(pfn: number): boolean {
    const f = this.alloc.frames;
    return (f.flags[f.compoundHead(pfn)] & PG_hugetlb) !== 0;
  }

  /** alloc_pool_huge_folio: one 2 MiB page from the buddy on the next node that has one. */
  private allocPoolHugeFolio(h: Hstate): boolean {
    for (let k = 0; k < this.nrNodes; k++) {
      const nid = h.nextNidToAlloc;
      h.nextNidToAlloc = (nid + 1) % this.nrNodes;
      const head = this.alloc.allocPages(HUGETLB_POOL_GFP, h.order, nid);
      if (head < 0) {
        this.alloc.vmstat.inc(this.vmHtlbFail);
        continue;
      }
      this.alloc.vmstat.inc(this.vmHtlbSuccess);
      const f = this.alloc.frames;
      f.flags[head] |= PG_hugetlb;
      f.refcount[head] = 0;
      h.nr++;
      h.nrNode[nid]++;
      this.enqueue(h, head, nid);
      return true;
    }
    return false;
  }

  /** remove_pool_hugetlb_folio: take a free page off the pool, nodes in turn. Returns -1 if none. */
  private removePoolHugetlbFolio(h: Hstate): number {
    for (let k = 0; k < this.nrNodes; k++) {
      const nid = h.nextNidToFree;
      h.nextNidToFree = (nid + 1) % this.nrNodes;
      const list = h.freeLists[nid];
      if (list.length === 0) continue;
      const head = list.pop()!;
      h.free--;
      h.freeNode[nid]--;
      h.nr--;
      h.nrNode[nid]--;
      return head;
    }
    return -1;
  }

  /** adjust_pool_surplus: move one page of some node into (+1) or out of (-1) surplus. */
  private adjustPoolSurplus(h: Hstate, delta: 1 | -1): boolean {
    for (let k = 0; k < this.nrNodes; k++) {
      const nid = delta < 0 ? h.nextNidToAlloc : h.nextNidToFree;
      if (delta < 0) h.nextNidToAlloc = (nid + 1) % this.nrNodes;
      else h.nextNidToFree = (nid + 1) % this.nrNodes;
      const ok = delta < 0 ? h.surplusNode[nid] > 0 : h.surplusNode[nid] < h.nrNode[nid];
      if (!ok) continue;
      h.surplus += delta;
      h.surplusNode[nid] += delta;
      return true;
    }
    return false;
  }

  /** update_and_free_hugetlb_folio: a page leaving the pool goes back to the buddy. */
  private updateAndFree(h: Hstate, head: number): void {
    const f = this.alloc.frames;
    f.flags[head] &= ~PG_hugetlb;
    this.alloc.freePages(head, h.order);
  }

  private enqueue(h: Hstate, head: number, nid: number): void {
    h.freeLists[nid].push(head);
    h.free++;
    h.freeNode[nid]++;
  }

  /** Make the range at @head a free hugetlb folio of @order (prep_compound_gigantic_folio). */
  private prepGigantic(head: number, order: number = HUGETLB_ORDER['1GiB']): void {
    const f = this.alloc.frames;
    f.flags[head] = PG_hugetlb | PG_head;
    f.setOrder(head, order);
    const end = head + 2 ** order;
    f.flags.fill(PG_tail, head + 1, end);
    f.mapping.fill(head + 1, head + 1, end);
  }

  /** Back to a clean free pool folio: no mapping state, no bytes, refcount 0. */
  private resetFolio(head: number, order: number): void {
    const f = this.alloc.frames;
    const end = head + 2 ** order;
    f.flags[head] = PG_hugetlb | PG_head;
    f.setOrder(head, order);
    f.flags.fill(PG_tail, head + 1, end);
    f.mapping[head] = 0;
    f.mapping.fill(head + 1, head + 1, end);
    f.index.fill(0, head, end);
    f.privateData.fill(0, head, end);
    f.mapcount.fill(0, head, end);
    f.refcount.fill(0, head, end);
    const slots = f.dataSlot;
    for (let p = head; p < end; p++) if (slots[p] !== 0) this.alloc.data.clear(p);
  }
}
