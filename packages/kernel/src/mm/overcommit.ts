import { ERRNO } from '../uapi/errno';
import type { MmCore } from './mm-core';
import { swapInfoOf } from './swap';

/** Committed_AS per kernel, in pages. */
const committed = new WeakMap<MmCore, { pages: number }>();
function acct(core: MmCore): { pages: number } {
  let a = committed.get(core);
  if (!a) committed.set(core, (a = { pages: 0 }));
  return a;
}

/** totalRamPages - RAM the buddy allocator manages, less the hugetlb pools (totalram_pages). */
export function totalRamPages(core: MmCore): number {
  let n = 0;
  for (const z of core.alloc.zoneInfo()) n += z.managedPages;
  return n;
}

/** vmCommitLimit - the overcommit_memory=2 limit: swap + overcommit_ratio% of RAM, in pages. */
export function vmCommitLimit(core: MmCore): number {
  const swap = swapInfoOf(core)?.totalPages ?? 0;
  return Math.floor((totalRamPages(core) * core.sysctl['vm.overcommit_ratio']) / 100) + swap;
}

/** committedAsPages - Committed_AS of /proc/meminfo, in pages. */
export function committedAsPages(core: MmCore): number {
  return acct(core).pages;
}

/**
 * vmEnoughMemory - may `pages` more be committed (__vm_enough_memory)? With overcommit_memory 1
 * always; with 0 (the heuristic) unless the one request exceeds RAM plus swap; with 2 only within
 * the commit limit. On success the pages are charged to Committed_AS until vmUnacctMemory.
 * Returns 0 or -ENOMEM.
 */
export function vmEnoughMemory(core: MmCore, pages: number): number {
  const a = acct(core);
  const mode = core.sysctl['vm.overcommit_memory'];
  if (mode === 0) {
    const swap = swapInfoOf(core)?.totalPages ?? 0;
    if (pages > totalRamPages(core) + swap) return -ERRNO.ENOMEM;
  } else if (mode === 2 && a.pages + pages > vmCommitLimit(core)) return -ERRNO.ENOMEM;
  a.pages += pages;
  return 0;
}

/** vmUnacctMemory - give back pages charged by vmEnoughMemory (vm_unacct_memory). */
export function vmUnacctMemory(core: MmCore, pages: number): void {
  acct(core).pages -= pages;
}
