/**
 * 'memory-offline' - hot-unplug attempts on a range of memory blocks: each attempt offlines
 * [offset, offset + size) of a node (migrating everything movable away) with a timeout, and a
 * success is brought back online before the next attempt. A pinned page in the range keeps the
 * kernel retrying until the timeout.
 */
import { PAGE_SIZE, onlinePages } from '@svasim/kernel';
import { parseDuration, parseSize, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { runActivity } from './common';

/** MemoryOfflineActivity - see the file comment. */
export class MemoryOfflineActivity implements Background {
  constructor(readonly spec: BackgroundOf<'memory-offline'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    const every = parseDuration(spec.every);
    const timeoutNs = parseDuration(spec.timeout);
    const offset = parseSize(spec.offset);
    const bytes = parseSize(spec.size);
    runActivity(ctx, 'bg:memory-offline', spec.start, async (task) => {
      for (let i = 0; i < spec.count && ctx.running(); i++) {
        if (i > 0) await task.sleep(every);
        if (!ctx.running()) return;
        const r = kernel.offlineMemory(spec.node, offset, bytes, { timeoutNs });
        metrics.recordOffline(r === 0);
        if (r !== 0) metrics.count(`offline_errno_${-r}`);
        if (r === 0 && spec.online) {
          const start = kernel.phys.nodes[spec.node].startPfn + offset / PAGE_SIZE;
          onlinePages(kernel.mmCore, start, bytes / PAGE_SIZE);
        }
        await task.yield();
      }
    });
  }
}

/** memoryOfflineActivity - the BackgroundFactory of kind 'memory-offline'. */
export function memoryOfflineActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'memory-offline') throw new RangeError(`memoryOfflineActivity: kind '${spec.kind}'`);
  return new MemoryOfflineActivity(spec);
}
