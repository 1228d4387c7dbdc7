/**
 * 'cma-alloc' - another driver (a camera, a display) allocating contiguous memory from CMA at a
 * rate and keeping each allocation for `hold` (dma_alloc_coherent over cma_alloc). Success is
 * counted by the kernel (vmstat cma_alloc_success / cma_alloc_fail); each attempt's latency is
 * the simulated time it charged (migrating movable pages out of the area included).
 */
import { chargedDuring } from '@svasim/kernel';
import { parseDuration, parseSize, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import { sleepUntil, type ActivityContext, type Background } from '../activity';
import { runActivity } from './common';

/** CmaAllocActivity - see the file comment. */
export class CmaAllocActivity implements Background {
  constructor(readonly spec: BackgroundOf<'cma-alloc'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    const sizes = spec.sizes.map(parseSize);
    const hold = parseDuration(spec.hold);
    const period = 1e9 / spec.rate;
    runActivity(ctx, 'bg:cma-alloc', spec.start, async (task) => {
      /** Release times of the allocations held, oldest first (cmaRelease(0) frees the oldest). */
      const held: number[] = [];
      let next = kernel.now();
      let i = 0;
      while (ctx.running()) {
        const wake = held.length > 0 ? Math.min(held[0], next) : next;
        await sleepUntil(kernel, task, Math.round(wake));
        if (!ctx.running()) return;
        while (held.length > 0 && held[0] <= kernel.now()) {
          held.shift();
          kernel.cmaRelease(0);
        }
        if (kernel.now() < Math.round(next)) continue;
        next += period;
        const bytes = sizes[i++ % sizes.length];
        const r = chargedDuring(kernel.mmCore, () => kernel.cmaAlloc(bytes));
        metrics.recordCmaAlloc(r.ns);
        if (r.value) held.push(kernel.now() + r.ns + hold);
      }
    });
  }
}

/** cmaAllocActivity - the BackgroundFactory of kind 'cma-alloc'. */
export function cmaAllocActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'cma-alloc') throw new RangeError(`cmaAllocActivity: kind '${spec.kind}'`);
  return new CmaAllocActivity(spec);
}
