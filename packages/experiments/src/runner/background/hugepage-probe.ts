/**
 * probeHugepageRanges - could a huge page be assembled in each aligned range? What
 * alloc_contig_pages does for a gigantic page, but without stopping at the first range that
 * works: every aligned range of the zones huge pages of that size come from (1 GiB: ZONE_NORMAL
 * and below, never ZONE_MOVABLE, as htlb_alloc_mask gives gigantic pages no __GFP_MOVABLE; 2 MiB:
 * the hugetlb pool's zones) is emptied with alloc_contig_range and given back at once, so each
 * range is judged on its own and the machine's free memory is the same after as before (the
 * pages migrated out stay where they went).
 *
 * A range that cannot be emptied is put down to a pin when it holds a page that may be DMA-pinned
 * (folio_maybe_dma_pinned), otherwise to something else (kernel memory, a reserved page, a
 * hugetlb page, no memory to migrate to). Experiment 5 compares the share of ranges assembled
 * with (1 - p)^262144, the chance that none of a 1 GiB range's pages is among a fraction p
 * pinned at random.
 */
import {
  HUGETLB_GIGANTIC_GFP,
  HUGETLB_ORDER,
  HUGETLB_POOL_GFP,
  MIGRATE_MOVABLE,
  PG_tail,
  allocContigRange,
  folioMaybeDmaPinned,
  freeContigRange,
  pageAllocatorOf,
  zonelistFor,
  type HugepageSize,
  type Kernel,
} from '@svasim/kernel';

/** What one probe pass found. */
export interface HugepageProbeResult {
  /** Aligned ranges tried. */
  ranges: number;
  /** Ranges that were emptied (and given back). */
  assembled: number;
  /** Ranges that failed and hold a page that may be DMA-pinned. */
  blockedByPin: number;
  /** Ranges that failed for another reason. */
  blockedOther: number;
}

/** Whether [@start, @end) holds a page that may be DMA-pinned. */
function holdsPin(k: Kernel, start: number, end: number): boolean {
  const core = k.mmCore;
  const f = core.frames;
  for (let p = start; p < end; p++) {
    const head = f.flags[p] & PG_tail ? f.mapping[p] - 1 : p;
    if (folioMaybeDmaPinned(core, head)) return true;
  }
  return false;
}

/**
 * probeHugepageRanges - one pass over the ranges of @size on @node (every node when undefined):
 * see the file comment.
 *
 * Return: the counts. Context: kernel task; the scans and migrations are charged to the caller.
 */
export function probeHugepageRanges(k: Kernel, size: HugepageSize, node?: number): HugepageProbeResult {
  const core = k.mmCore;
  const alloc = pageAllocatorOf(core);
  const nr = 2 ** HUGETLB_ORDER[size];
  const gfp = size === '1GiB' ? HUGETLB_GIGANTIC_GFP : HUGETLB_POOL_GFP;
  const out: HugepageProbeResult = { ranges: 0, assembled: 0, blockedByPin: 0, blockedOther: 0 };
  const nodes = node === undefined ? alloc.nodes.map((_, i) => i) : [node];
  for (const nid of nodes)
    for (const zone of zonelistFor(alloc, nid, gfp)) {
      if (zone.nid !== nid) continue;
      for (let pfn = Math.ceil(zone.startPfn / nr) * nr; pfn + nr <= zone.endPfn; pfn += nr) {
        out.ranges++;
        if (allocContigRange(core, pfn, pfn + nr, MIGRATE_MOVABLE, gfp) === 0) {
          freeContigRange(core, pfn, nr);
          out.assembled++;
        } else if (holdsPin(k, pfn, pfn + nr)) out.blockedByPin++;
        else out.blockedOther++;
      }
    }
  return out;
}
