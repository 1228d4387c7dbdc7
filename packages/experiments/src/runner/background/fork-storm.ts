/**
 * 'fork-storm' - a process forking over and over (a shell spawning helpers, a pre-forking
 * server): each child writes `childWrites` bytes of its largest anonymous mapping (COW copies)
 * and exits after `childLifetime`. With a `target` the workload's own process forks, so its
 * pinned buffers meet fork (early copy or legacy COW, KernelKnobs.forkCow). Pages fork copied at
 * once (early COW of pinned pages) are counted in `fork_pages_copied`.
 */
import { PAGE_SIZE, type Process } from '@svasim/kernel';
import { parseDuration, parseSize, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { expectedFailure, runActivity } from './common';
import { pagesCopiedAtFork } from './fork-copies';

/** The largest private anonymous mapping of @p, as [start, length], or null. */
function largestAnon(p: Process): [number, number] | null {
  let best: [number, number] | null = null;
  for (const v of p.mm.vmas)
    if (v.isAnonymous() && v.hugeSize === 0 && (!best || v.end - v.start > best[1]))
      best = [v.start, v.end - v.start];
  return best;
}

/** ForkStormActivity - see the file comment. */
export class ForkStormActivity implements Background {
  constructor(readonly spec: BackgroundOf<'fork-storm'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    const every = parseDuration(spec.every);
    const lifetime = parseDuration(spec.childLifetime);
    const writes = parseSize(spec.childWrites);
    runActivity(ctx, 'bg:fork-storm', spec.start, async (task) => {
      let parent: Process;
      if (spec.target !== undefined) parent = ctx.processes.get(spec.target)!;
      else {
        parent = kernel.spawn({ name: 'forker' });
        const len = parseSize(spec.memory);
        if (len > 0) parent.touch(parent.mmap(len), len, { write: true });
      }
      while (ctx.running() && parent.state === 'running') {
        await task.sleep(every);
        if (!ctx.running()) return;
        for (let c = 0; c < spec.children; c++) {
          let child: Process;
          try {
            child = parent.fork();
          } catch (e) {
            if (!expectedFailure(e)) throw e;
            metrics.count('fork_failed');
            continue;
          }
          metrics.count('forks');
          metrics.count('fork_pages_copied', pagesCopiedAtFork(parent, child));
          kernel.tasks.spawn(`child:${child.pid}`, async (t) => {
            const region = largestAnon(child);
            if (region && writes > 0) {
              const len = Math.min(writes, region[1]);
              try {
                // One byte per page is enough to break COW on each.
                for (let off = 0; off < len; off += PAGE_SIZE)
                  child.write(region[0] + off, Uint8Array.of(0xc5));
              } catch (e) {
                if (!expectedFailure(e)) throw e;
                metrics.count('child_write_failed');
              }
            }
            await t.sleep(lifetime);
            child.exit(0);
          });
        }
      }
    });
  }
}

/** forkStormActivity - the BackgroundFactory of kind 'fork-storm'. */
export function forkStormActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'fork-storm') throw new RangeError(`forkStormActivity: kind '${spec.kind}'`);
  return new ForkStormActivity(spec);
}
