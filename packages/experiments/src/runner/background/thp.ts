/**
 * 'thp' - transparent huge pages at work: the THP mode, an eager khugepaged (a pass every
 * `khugepagedEvery` instead of the kernel's 10 s, so short runs see collapses), and optionally a
 * helper process whose sparsely touched memory gives khugepaged ranges to collapse.
 */
import { PAGE_SIZE, khugepagedScan, khugepagedStats, thpConfig } from '@svasim/kernel';
import { parseDuration, parseSize, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { expectedFailure, runActivity } from './common';

const PMD = 2 * 2 ** 20;

/** ThpActivity - see the file comment. */
export class ThpActivity implements Background {
  constructor(readonly spec: BackgroundOf<'thp'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    const every = parseDuration(spec.khugepagedEvery);
    runActivity(ctx, 'bg:khugepaged', spec.start, async (task) => {
      const core = kernel.mmCore;
      if (spec.mode !== undefined) kernel.sysctl.transparent_hugepage = spec.mode;
      if (spec.pagesToScan !== undefined) thpConfig(core).pagesToScan = spec.pagesToScan;
      if (spec.churn !== undefined) {
        const len = Math.ceil(parseSize(spec.churn) / PMD) * PMD;
        const p = kernel.spawn({ name: 'thp-churn' });
        try {
          const addr = p.mmap(len);
          // One page in four: khugepaged finds ranges with few enough empty PTEs to collapse.
          for (let off = 0; off < len; off += 4 * PAGE_SIZE) p.touch(addr + off, PAGE_SIZE, { write: true });
        } catch (e) {
          if (!expectedFailure(e)) throw e;
          metrics.count('thp_churn_enomem');
        }
      }
      const before = khugepagedStats(core).pagesCollapsed;
      while (ctx.running()) {
        await task.sleep(every);
        if (!ctx.running()) break;
        khugepagedScan(core);
        metrics.count('khugepaged_passes');
        const s = khugepagedStats(core);
        metrics.setCount('thp_collapsed', s.pagesCollapsed - before);
      }
    });
  }
}

/** thpActivity - the BackgroundFactory of kind 'thp'. */
export function thpActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'thp') throw new RangeError(`thpActivity: kind '${spec.kind}'`);
  return new ThpActivity(spec);
}
