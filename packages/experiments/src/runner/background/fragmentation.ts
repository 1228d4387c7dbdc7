/**
 * 'fragmentation' - fragment free memory the way docs/mm.md's compaction measurements do: two
 * helper processes fault pages in turn (`grain` pages each), filling a share of free memory, then
 * one exits, leaving holes everywhere (no free 2 MiB block) while the other keeps its pages.
 */
import { MADV_NOHUGEPAGE, PAGE_SIZE } from '@svasim/kernel';
import type { BackgroundOf, BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { expectedFailure, runActivity } from './common';

/** FragmentationActivity - see the file comment. */
export class FragmentationActivity implements Background {
  constructor(readonly spec: BackgroundOf<'fragmentation'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    runActivity(ctx, 'bg:fragmentation', spec.start, async (task) => {
      const node = spec.node;
      const keep = kernel.spawn({ name: 'frag-keep', node });
      const drop = kernel.spawn({ name: 'frag-drop', node });
      const free = kernel.counters.read('nr_free_pages');
      const pages = Math.floor((free * spec.fill) / (2 * spec.grain)) * spec.grain;
      if (pages === 0) return;
      const len = pages * PAGE_SIZE;
      const a = keep.mmap(len);
      const b = drop.mmap(len);
      // 4 KiB pages only: a THP fault would take 2 MiB at once and fragment nothing.
      keep.madvise(a, len, MADV_NOHUGEPAGE);
      drop.madvise(b, len, MADV_NOHUGEPAGE);
      const step = spec.grain * PAGE_SIZE;
      let filled = 0;
      try {
        for (let off = 0; off < len; off += step) {
          keep.touch(a + off, step, { write: true });
          drop.touch(b + off, step, { write: true });
          filled += 2 * spec.grain;
        }
      } catch (e) {
        if (!expectedFailure(e)) throw e;
        metrics.count('fragmentation_enomem');
      }
      drop.exit();
      metrics.count('fragmentation_pages_kept', filled / 2);
      await task.yield();
    });
  }
}

/** fragmentationActivity - the BackgroundFactory of kind 'fragmentation'. */
export function fragmentationActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'fragmentation') throw new RangeError(`fragmentationActivity: kind '${spec.kind}'`);
  return new FragmentationActivity(spec);
}
