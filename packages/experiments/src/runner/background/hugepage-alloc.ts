/**
 * 'hugepage-alloc' - grow the hugetlb pool at run time, one page per attempt (echo N+1 >
 * nr_hugepages): 2 MiB pages need a free or compactable pageblock, 1 GiB pages a whole 1 GiB
 * range emptied by alloc_contig_range, which one pinned page anywhere in it defeats.
 */
import { parseDuration, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { runActivity } from './common';

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
        metrics.recordHugepage(spec.size, kernel.allocHugepage(spec.size, spec.node));
      }
    });
  }
}

/** hugepageAllocActivity - the BackgroundFactory of kind 'hugepage-alloc'. */
export function hugepageAllocActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'hugepage-alloc') throw new RangeError(`hugepageAllocActivity: kind '${spec.kind}'`);
  return new HugepageAllocActivity(spec);
}
