/**
 * 'memory-pressure' - a process growing its memory to `size`, mapping and touching `chunk` bytes
 * every `every`, then re-touching random chunks so its pages stay referenced: free memory falls
 * to the watermarks, kswapd and direct reclaim run (swapping when the machine has swap), and a
 * map or a fault that finds nothing to reclaim fails with ENOMEM (counted, not fatal).
 */
import { parseDuration, parseSize, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { expectedFailure, runActivity } from './common';

/** MemoryPressureActivity - see the file comment. */
export class MemoryPressureActivity implements Background {
  constructor(readonly spec: BackgroundOf<'memory-pressure'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics, rng } = ctx;
    const spec = this.spec;
    const every = parseDuration(spec.every);
    const chunk = parseSize(spec.chunk);
    const chunks = Math.ceil(parseSize(spec.size) / chunk);
    runActivity(ctx, 'bg:memory-pressure', spec.start, async (task) => {
      const p = kernel.spawn({ name: 'pressure', node: spec.node });
      const mapped: number[] = [];
      while (ctx.running()) {
        try {
          if (mapped.length < chunks) {
            const addr = p.mmap(chunk);
            mapped.push(addr);
            p.touch(addr, chunk, { write: true });
          } else p.touch(mapped[rng.int(0, mapped.length - 1)], chunk, { write: true });
        } catch (e) {
          if (!expectedFailure(e)) throw e;
          metrics.count('pressure_enomem');
        }
        await task.sleep(every);
      }
    });
  }
}

/** memoryPressureActivity - the BackgroundFactory of kind 'memory-pressure'. */
export function memoryPressureActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'memory-pressure') throw new RangeError(`memoryPressureActivity: kind '${spec.kind}'`);
  return new MemoryPressureActivity(spec);
}
