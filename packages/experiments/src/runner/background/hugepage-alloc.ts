/**
 * 'hugepage-alloc' - grow the hugetlb pool at run time, one page per attempt (echo N+1 >
 * nr_hugepages): 2 MiB pages need a free or compactable pageblock, 1 GiB pages a whole 1 GiB
 * range emptied by alloc_contig_range, which one pinned page anywhere in it defeats.
 *
 * With `probe`, each attempt is a pass over every aligned range instead (hugepage-probe.ts): a
 * range that can be emptied counts as assembled (hugepage_<size>_assembled) and is given back at
 * once, one that cannot as failed; the extra counters `hugepage_<size>_ranges`,
 * `hugepage_<size>_blocked_by_pin` and `hugepage_<size>_blocked_other` say why.
 */
import { parseDuration, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { runActivity } from './common';
import { probeHugepageRanges } from './hugepage-probe';

/** HugepageAllocActivity - see the file comment. */
export class HugepageAllocActivity implements Background {
  constructor(readonly spec: BackgroundOf<'hugepage-alloc'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    const every = parseDuration(spec.every);
    runActivity(ctx, `bg:hugepage-alloc-${spec.size}`, spec.start, async (task) => {
      for (let i = 0; i < spec.count && ctx.running(); i++) {
        await task.sleep(every);
        if (!ctx.running()) return;
        if (!spec.probe) {
          metrics.recordHugepage(spec.size, kernel.allocHugepage(spec.size, spec.node));
          continue;
        }
        const r = probeHugepageRanges(kernel, spec.size, spec.node);
        for (let j = 0; j < r.ranges; j++) metrics.recordHugepage(spec.size, j < r.assembled);
        const tag = `hugepage_${spec.size === '1GiB' ? '1g' : '2m'}`;
        metrics.count(`${tag}_ranges`, r.ranges);
        metrics.count(`${tag}_blocked_by_pin`, r.blockedByPin);
        metrics.count(`${tag}_blocked_other`, r.blockedOther);
      }
    });
  }
}

/** hugepageAllocActivity - the BackgroundFactory of kind 'hugepage-alloc'. */
export function hugepageAllocActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'hugepage-alloc') throw new RangeError(`hugepageAllocActivity: kind '${spec.kind}'`);
  return new HugepageAllocActivity(spec);
}
