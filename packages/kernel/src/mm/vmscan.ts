/**
 * Page reclaim (mm/vmscan.c, the reclaim half of mm/rmap.c): swapping anonymous pages out.
 *
 * The LRU is modelled as a clock: each node has a hand that sweeps its pfns, skipping free
 * blocks and pages that are not on an LRU. An evictable anonymous page whose accessed bit (PTE
 * young) is set in some mapping gets a second chance: the bits are cleared and the hand moves on
 * (the kernel activates such a page); a page found unreferenced is swapped out. No object is made
 * per page: the hand is one number per node and the flags live in PageFrames.
 *
 * What cannot be reclaimed, as in the kernel: mlocked pages (PG_mlocked / PG_unevictable),
 * maybe-DMA-pinned pages (try_to_unmap refuses to unmap an exclusive pinned page), pages holding
 * references beyond their mappings (GUP references, a COW copy in progress), and every anonymous
 * page when there is no free swap slot. A large anonymous folio (THP) is split and its pages
 * swapped one by one (as the kernel does without THP_SWAP). Differences: shmem pages are not
 * swapped (they stay resident, as if tmpfs were mounted noswap);
 * there is no swap cache, so a page is freed as soon as its bytes are in the slot and an
 * unreferenced page with an extra reference is kept rather than left in the swap cache; device
 * accesses through a secondary MMU do not count as references (SMMUv3 SVA has no
 * clear_flush_young either).
 */
import { PAGE_SIZE } from '../uapi/mman';
import { ERRNO } from '../uapi/errno';
import { VM } from '../sim/vmstat';
import { __GFP_IO, __GFP_THISNODE, gfpZone } from './gfp';
import type { MmCore } from './mm-core';
import { mmuNotifierInvalidateRangeEnd, mmuNotifierInvalidateRangeStart } from './mmu-notify';
import { MMU_NOTIFY_CLEAR } from './notifier-hooks';
import {
  PG_anon,
  PG_anon_exclusive,
  PG_buddy,
  PG_device_private,
  PG_head,
  PG_hugetlb,
  PG_hwpoison,
  PG_isolated,
  PG_locked,
  PG_lru,
  PG_migrating,
  PG_mlocked,
  PG_offline,
  PG_reserved,
  PG_shmem,
  PG_slab,
  PG_tail,
  PG_unevictable,
  PG_zero,
} from './page-flags';
import { folioHead, folioMaybeDmaPinned, putPage } from './page-ref';
import { splitFolio } from './huge-memory';
import { PTE_PRESENT, PTE_SPECIAL, PTE_SWAP, PTE_SWP_EXCLUSIVE, PTE_YOUNG } from './pte';
import { reclaimStateOf, type ReclaimState } from './reclaim-state';
import { rmapWalk } from './rmap';
import type { VmAreaStruct } from './vma';
import { VM_HUGETLB, VM_LOCKED, VM_PFNMAP } from './vm-flags';

/** ReclaimStats - what one reclaim pass did (the counters of struct scan_control and reclaim_stat). */
export interface ReclaimStats {
  /** Evictable anonymous pages examined (pgscan). */
  nrScanned: number;
  /** Pages swapped out and freed (pgsteal). */
  nrReclaimed: number;
  /** Pages given a second chance because a mapping had accessed them (pgactivate). */
  nrReferenced: number;
  /** mlocked / unevictable pages met (the kernel keeps them on the unevictable list). */
  nrUnevictable: number;
  /** shmem pages met (not swapped in this model). */
  nrShmem: number;
  /** Maybe-DMA-pinned pages that could not be unmapped. */
  nrPinned: number;
  /** Pages with references beyond their mappings (GUP gets, a fault in progress), kept. */
  nrBusy: number;
  /** Large anonymous folios (THP) split so their pages could be swapped one by one. */
  nrSplit: number;
  /** Pages that found no free swap slot. */
  nrNoSwap: number;
  /** Pages written to the swap device (pswpout). */
  nrWritten: number;
  /** Zero-filled pages swapped out without IO (swpout_zero). */
  nrZero: number;
  /** Simulated CPU time of the pass, in ns. */
  cpuNs: number;
}

/** emptyReclaimStats - a zeroed ReclaimStats to pass to a reclaim call. */
export function emptyReclaimStats(): ReclaimStats {
  return {
    nrScanned: 0,
    nrReclaimed: 0,
    nrReferenced: 0,
    nrUnevictable: 0,
    nrShmem: 0,
    nrPinned: 0,
    nrBusy: 0,
    nrSplit: 0,
    nrNoSwap: 0,
    nrWritten: 0,
    nrZero: 0,
    cpuNs: 0,
  };
}

/** Flags of pages that are not user folios on an LRU: the hand steps over them. */
const NOT_LRU =
  PG_buddy |
  PG_tail |
  PG_reserved |
  PG_slab |
  PG_hugetlb |
  PG_isolated |
  PG_migrating |
  PG_device_private |
  PG_zero |
  PG_locked |
  PG_offline |
  PG_hwpoison;

/**
 * folioReferenced - test and clear the accessed bit of every PTE mapping the folio
 * (folio_referenced with ptep_clear_young).
 *
 * Return: the number of mappings that had been accessed since the last call.
 */
export function folioReferenced(core: MmCore, head: number): number {
  let referenced = 0;
  rmapWalk(core, head, (vma, va) => {
    const pt = vma.mm.pgtable;
    const t = pt.walk(va, false);
    if (!t) return true;
    const s = pt.slot + 1;
    if (t[s] & PTE_PRESENT && t[s] & PTE_YOUNG) {
      t[s] &= ~PTE_YOUNG; // the entry stays non-empty: no table bookkeeping needed
      referenced++;
    }
    return true;
  });
  return referenced;
}

/** can_reclaim_anon_pages: a free swap slot exists. */
function canReclaimAnon(state: ReclaimState): boolean {
  return state.swap !== null && state.swap.freePages > 0;
}

/**
 * Try to swap one folio out (shrink_folio_list for one folio, with try_to_unmap and pageout).
 * Returns 1 when it was freed, else 0 with the reason counted in @stats.
 */
function shrinkFolio(
  state: ReclaimState,
  head: number,
  ignoreReferences: boolean,
  stats: ReclaimStats,
): number {
  const core = state.core;
  const f = core.frames;
  const flags = f.flags[head];
  if (flags & (PG_mlocked | PG_unevictable)) {
    stats.nrUnevictable++;
    return 0;
  }
  stats.nrScanned++;
  stats.cpuNs += state.tunables.scanPerPageNs;
  if (ignoreReferences) folioReferenced(core, head);
  else if (folioReferenced(core, head) > 0) {
    stats.nrReferenced++;
    core.vmstat.inc(state.vm.pgactivate);
    return 0;
  }
  // try_to_unmap_one: an exclusive page that may be pinned for DMA cannot be unmapped.
  if (folioMaybeDmaPinned(core, head)) {
    stats.nrPinned++;
    return 0;
  }
  const mapcount = f.mapcount[head];
  if (f.refcount[head] !== mapcount) {
    stats.nrBusy++;
    return 0;
  }
  const targets: Array<[VmAreaStruct, number]> = [];
  rmapWalk(core, head, (vma, va) => {
    targets.push([vma, va]);
    return true;
  });
  if (targets.length !== mapcount) {
    stats.nrBusy++;
    return 0;
  }
  const si = state.swap;
  const entry = si ? si.getSwapPage() : 0;
  if (!si || entry === 0) {
    stats.nrNoSwap++;
    return 0;
  }
  // Isolated from the LRU: our reference keeps the folio alive while its mappings go.
  f.flags[head] = (flags & ~PG_lru) | PG_isolated;
  f.refcount[head]++;
  const swpHi = PTE_SWAP | (flags & PG_anon_exclusive ? PTE_SWP_EXCLUSIVE : 0);
  for (const [vma, va] of targets) {
    const mm = vma.mm;
    const pt = mm.pgtable;
    const range = mmuNotifierInvalidateRangeStart(mm, va, va + PAGE_SIZE, MMU_NOTIFY_CLEAR);
    pt.walk(va, false);
    pt.set(pt.tableId, pt.slot, entry, swpHi);
    si.swapDuplicate(entry);
    mm.rssAnon--;
    mm.swapEnts++;
    f.mapcount[head]--;
    f.refcount[head]--;
    mmuNotifierInvalidateRangeEnd(range);
  }
  core.vmstat.dec(VM.nr_anon_pages);
  if (si.writePage(entry, core.data.view(head))) {
    stats.nrWritten++;
    core.vmstat.inc(VM.pswpout);
  } else {
    stats.nrZero++;
    core.vmstat.inc(state.vm.swpoutZero);
  }
  si.swapFree(entry); // the swap-out's own reference: the entries now hold the slot
  f.flags[head] &= ~PG_isolated;
  putPage(core, head);
  stats.nrReclaimed++;
  stats.cpuNs += state.tunables.pageoutPerPageNs;
  return 1;
}

/**
 * Prepare a large anonymous folio (THP) for swap-out by splitting it into small pages
 * (split_folio_to_list in shrink_folio_list, as without THP_SWAP). Returns true when it was
 * split, else false with the reason counted in @stats; the folio keeps its place either way.
 */
function splitForReclaim(
  state: ReclaimState,
  head: number,
  ignoreReferences: boolean,
  stats: ReclaimStats,
): boolean {
  const core = state.core;
  const f = core.frames;
  if (f.flags[head] & (PG_mlocked | PG_unevictable)) {
    stats.nrUnevictable++;
    return false;
  }
  stats.nrScanned++;
  stats.cpuNs += state.tunables.scanPerPageNs;
  if (folioReferenced(core, head) > 0 && !ignoreReferences) {
    stats.nrReferenced++;
    core.vmstat.inc(state.vm.pgactivate);
    return false;
  }
  if (folioMaybeDmaPinned(core, head)) {
    stats.nrPinned++;
    return false;
  }
  if (f.refcount[head] !== f.mapcount[head] || splitFolio(core, head) !== 0) {
    stats.nrBusy++;
    return false;
  }
  stats.nrSplit++;
  return true;
}

/** Whether @head (flags @flags) is a large anonymous folio (THP) on an LRU. */
function isAnonLruLargeFolio(core: MmCore, head: number, flags: number): boolean {
  return (
    (flags & (NOT_LRU | PG_head | PG_lru | PG_anon)) === (PG_head | PG_lru | PG_anon) &&
    core.frames.refcount[head] > 0 &&
    core.frames.mapcount[head] > 0
  );
}

/** Whether the page at @pfn (flags @flags) is an order-0 anonymous page on an LRU. */
function isAnonLruPage(core: MmCore, pfn: number, flags: number): boolean {
  return (
    (flags & (NOT_LRU | PG_head | PG_lru | PG_anon)) === (PG_lru | PG_anon) &&
    core.frames.refcount[pfn] > 0 &&
    core.frames.mapcount[pfn] > 0
  );
}

/**
 * shrinkNode - advance node @nid's reclaim clock until @nrToReclaim pages were swapped out, or
 * the hand went twice round the node without freeing a page (the first round clears accessed
 * bits, the second finds what stayed unused), or no swap slot is left (shrink_node for the
 * anonymous LRU).
 * @stats: accumulates what was examined, freed and skipped, and the CPU time used.
 *
 * Context: kswapd or direct reclaim; the caller charges stats.cpuNs and the write time.
 * Return: pages freed.
 */
export function shrinkNode(
  state: ReclaimState,
  nid: number,
  nrToReclaim: number,
  stats: ReclaimStats,
): number {
  const core = state.core;
  if (!canReclaimAnon(state)) return 0;
  const node = core.alloc.nodes[nid];
  if (!node || node.spannedPages === 0) return 0;
  const f = core.frames;
  const start = node.startPfn;
  const end = start + node.spannedPages;
  const limit = 2 * node.spannedPages;
  let pfn = state.hands[nid];
  if (pfn < start || pfn >= end) pfn = start;
  let reclaimed = 0;
  let sinceProgress = 0;
  while (reclaimed < nrToReclaim && sinceProgress < limit) {
    const flags = f.flags[pfn];
    let step = 1;
    if (flags & PG_buddy) step = 1 << f.getOrder(pfn);
    else if (flags & PG_head) {
      // A THP that may go is split here; the hand then meets its pages one by one.
      if (isAnonLruLargeFolio(core, pfn, flags) && splitForReclaim(state, pfn, false, stats)) step = 0;
      else step = f.folioNrPages(pfn);
    } else if (isAnonLruPage(core, pfn, flags)) {
      if (shrinkFolio(state, pfn, false, stats)) {
        reclaimed++;
        sinceProgress = 0;
      } else if (stats.nrNoSwap > 0 && !canReclaimAnon(state)) break;
    } else if ((flags & (NOT_LRU | PG_head | PG_lru | PG_shmem)) === (PG_lru | PG_shmem)) stats.nrShmem++;
    pfn += step;
    sinceProgress += step;
    if (pfn >= end) pfn = start;
  }
  state.hands[nid] = pfn;
  return reclaimed;
}

/**
 * tryToFreePages - direct reclaim for an allocation that failed its min watermark
 * (try_to_free_pages): swap out up to swapClusterMax pages from the allocation's node, then the
 * other nodes of its zonelist unless __GFP_THISNODE. Allocations without __GFP_IO may not start
 * swap IO and reclaim nothing. Counts allocstall_<zone>, pgscan_direct, pgsteal_direct; charges
 * the caller the CPU time and the wait for the batch's swap writes.
 * @state: the kernel's reclaim state; @gfp, @_order, @nid: the failing allocation (the order is not
 *     used: reclaim frees order-0 pages and leaves assembling larger blocks to compaction).
 *
 * Context: the allocator's slow path (AllocSlowpathHooks.directReclaim).
 * Return: pages freed (0 = no progress).
 */
export function tryToFreePages(state: ReclaimState, gfp: number, _order: number, nid: number): number {
  const core = state.core;
  core.vmstat.inc(state.vm.allocstall[gfpZone(gfp)] ?? state.vm.allocstall[0]);
  if (!(gfp & __GFP_IO)) return 0;
  const stats = emptyReclaimStats();
  const target = state.tunables.swapClusterMax;
  const nodes = core.alloc.nodes.length;
  let reclaimed = 0;
  for (let i = 0; i < nodes && reclaimed < target; i++) {
    const n = (nid + i) % nodes;
    if (i > 0 && gfp & __GFP_THISNODE) break;
    const got = shrinkNode(state, n, target - reclaimed, stats);
    // A node that gave pages is worth kswapd's effort again (kswapd_failures = 0).
    if (got > 0 && state.kswapd[n]) state.kswapd[n].failures = 0;
    reclaimed += got;
  }
  accountReclaim(state, stats, false);
  const si = state.swap;
  core.charge(stats.cpuNs + (si ? si.writeTimeNs(stats.nrWritten) : 0));
  return reclaimed;
}

/**
 * accountReclaim - add one pass's figures to the vmstat counters (pgscan/pgsteal of kswapd or
 * direct reclaim) and to the state's totals.
 *
 * Return: nothing.
 */
export function accountReclaim(state: ReclaimState, stats: ReclaimStats, kswapd: boolean): void {
  const total = kswapd ? state.totals.kswapd : state.totals.direct;
  for (const k of Object.keys(stats) as Array<keyof ReclaimStats>) total[k] += stats[k];
  const vm = state.core.vmstat;
  const v = state.vm;
  vm.inc(kswapd ? v.pgscanKswapd : v.pgscanDirect, stats.nrScanned);
  vm.inc(kswapd ? v.pgstealKswapd : v.pgstealDirect, stats.nrReclaimed);
  vm.inc(v.pgscanAnon, stats.nrScanned);
  vm.inc(v.pgstealAnon, stats.nrReclaimed);
}

/**
 * reclaimPages - swap out the given folios whatever their accessed bits (reclaim_pages, as
 * MADV_PAGEOUT and DAMON use it). A large anonymous folio (THP) is split and each of its pages
 * swapped. Folios that are not anonymous LRU folios, or that are mlocked, pinned, busy, or find
 * no swap slot, are left alone (counted in @stats).
 * @core: the kernel's mm; @heads: folio head pfns; @stats: optional accumulator.
 *
 * Context: process context; the caller charges stats.cpuNs (madvisePageout does).
 * Return: pages freed; 0 without swap or before initReclaim.
 */
export function reclaimPages(core: MmCore, heads: readonly number[], stats = emptyReclaimStats()): number {
  const state = reclaimStateOf(core);
  if (!state) return 0;
  let reclaimed = 0;
  for (const head of heads) {
    if (!canReclaimAnon(state)) {
      stats.nrNoSwap++;
      continue;
    }
    const flags = core.frames.flags[head];
    if (isAnonLruLargeFolio(core, head, flags)) {
      const nr = core.frames.folioNrPages(head);
      if (!splitForReclaim(state, head, true, stats)) continue;
      for (let p = head; p < head + nr; p++)
        if (isAnonLruPage(core, p, core.frames.flags[p])) reclaimed += shrinkFolio(state, p, true, stats);
      continue;
    }
    if (!isAnonLruPage(core, head, flags)) continue;
    reclaimed += shrinkFolio(state, head, true, stats);
  }
  accountReclaim(state, stats, false);
  return reclaimed;
}

/**
 * madvisePageout - MADV_PAGEOUT on [start, end) of @vma (madvise_pageout): swap out the
 * anonymous pages that only this mapping uses (a page shared with another process, after fork,
 * is left alone), ignoring their accessed bits. Charges the caller the CPU time and the writes.
 *
 * Context: process context (the madvise syscall).
 * Return: the number of pages swapped out (0 without swap), or -EINVAL for a locked, PFN-mapped
 * or hugetlb VMA (can_madv_lru_vma).
 */
export function madvisePageout(vma: VmAreaStruct, start: number, end: number): number {
  if (vma.flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return -ERRNO.EINVAL;
  const mm = vma.mm;
  const core = mm.core;
  const state = reclaimStateOf(core);
  if (!state) return 0;
  const f = core.frames;
  const heads: number[] = [];
  let last = -1;
  mm.pgtable.forEachEntry(Math.max(start, vma.start), Math.min(end, vma.end), (_va, tableId, slot) => {
    const t = mm.pgtable.table(tableId);
    const hi = t[slot + 1];
    if (!(hi & PTE_PRESENT) || hi & PTE_SPECIAL) return;
    const head = folioHead(core, t[slot]);
    if (head === last || !(f.flags[head] & PG_anon)) return;
    last = head;
    // folio_maybe_mapped_shared: a page another process maps too is left alone.
    const shared = f.getOrder(head) > 0 ? !(f.flags[head] & PG_anon_exclusive) : f.mapcount[head] > 1;
    if (!shared) heads.push(head);
  });
  const stats = emptyReclaimStats();
  const n = reclaimPages(core, heads, stats);
  core.charge(stats.cpuNs + (state.swap ? state.swap.writeTimeNs(stats.nrWritten) : 0));
  return n;
}
