/**
 * pagesCopiedAtFork - how many of a freshly forked child's pages are not the parent's: the pages
 * fork copied at once instead of sharing them copy-on-write. With forkCow 'early' (Linux 5.9+,
 * copy_present_page) these are the anonymous pages that may be DMA-pinned in a parent that ever
 * pinned; with 'legacy' none are copied and the first write, from either side, decides who keeps
 * the pinned page.
 *
 * Read-only: both page tables are walked (present entries of the child's VMAs), nothing faults.
 */
import { LEVEL_SIZE, PAGE_SIZE, PTE_PRESENT, PTE_SPECIAL, type Process } from '@svasim/kernel';

/** The page frame behind each page of [@start, @end) in @p (-1 where nothing is mapped). */
function frames(p: Process, start: number, end: number): Int32Array {
  const out = new Int32Array((end - start) / PAGE_SIZE).fill(-1);
  const pt = p.mm.pgtable;
  pt.forEachEntry(start, end, (va, tableId, slot, level) => {
    const t = pt.table(tableId);
    if ((t[slot + 1] & (PTE_PRESENT | PTE_SPECIAL)) !== PTE_PRESENT) return;
    const n = LEVEL_SIZE[level] / PAGE_SIZE;
    const first = (va - start) / PAGE_SIZE;
    for (let i = Math.max(0, -first); i < n && first + i < out.length; i++) out[first + i] = t[slot] + i;
  });
  return out;
}

/**
 * pagesCopiedAtFork - pages present in both @parent and its child @child at the same address
 * but on different page frames, right after fork.
 *
 * Return: a page count (4 KiB pages). Context: any; call before either process writes.
 */
export function pagesCopiedAtFork(parent: Process, child: Process): number {
  let copied = 0;
  for (const v of child.mm.vmas) {
    const a = frames(parent, v.start, v.end);
    const b = frames(child, v.start, v.end);
    for (let i = 0; i < a.length; i++) if (a[i] >= 0 && b[i] >= 0 && a[i] !== b[i]) copied++;
  }
  return copied;
}
