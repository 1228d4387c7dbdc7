/**
 * 'compaction' - compaction running against the workloads: a full compaction of every zone
 * every `every` (echo 1 > /proc/sys/vm/compact_memory), or, with `proactiveness`, kcompactd's
 * proactive compaction tuned through vm.compaction_proactiveness instead.
 */
import { parseDuration, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { runActivity } from './common';

/** CompactionActivity - see the file comment. */
export class CompactionActivity implements Background {
  constructor(readonly spec: BackgroundOf<'compaction'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    const every = parseDuration(spec.every);
    runActivity(ctx, 'bg:compaction', spec.start, async (task) => {
      if (spec.proactiveness !== undefined) {
        kernel.sysctl['vm.compaction_proactiveness'] = spec.proactiveness;
        return;
      }
      while (ctx.running()) {
        await task.sleep(every);
        if (!ctx.running()) return;
        kernel.compactMemory();
        metrics.count('compactions');
      }
    });
  }
}

/** compactionActivity - the BackgroundFactory of kind 'compaction'. */
export function compactionActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'compaction') throw new RangeError(`compactionActivity: kind '${spec.kind}'`);
  return new CompactionActivity(spec);
}
