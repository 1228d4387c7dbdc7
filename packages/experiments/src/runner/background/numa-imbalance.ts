/**
 * 'numa-imbalance' - the scheduler keeps moving processes to the next node (`every`), and
 * automatic NUMA balancing pulls their memory after them: hinting faults (from the CPU, or from
 * the device through an IO page fault) migrate the pages that are not pinned. The kernel's
 * scanner daemon wakes every 100 ms after a 1 s delay, too slow for runs of milliseconds, so
 * this activity runs the scan itself (task_numa_work) every `scanEvery` on the moved processes.
 */
import { setProcessNode, taskNumaWork, type Process } from '@svasim/kernel';
import { parseDuration, type BackgroundOf, type BackgroundSpec } from '../../scenario';
import type { ActivityContext, Background } from '../activity';
import { runActivity } from './common';

/** NumaImbalanceActivity - see the file comment. */
export class NumaImbalanceActivity implements Background {
  constructor(readonly spec: BackgroundOf<'numa-imbalance'>) {}

  start(ctx: ActivityContext): void {
    const { kernel, metrics } = ctx;
    const spec = this.spec;
    const every = parseDuration(spec.every);
    const scanEvery = parseDuration(spec.scanEvery);
    const targets = (): Process[] =>
      (spec.processes ?? [...ctx.processes.keys()])
        .map((n) => ctx.processes.get(n))
        .filter((p): p is Process => p !== undefined && p.state === 'running');
    runActivity(ctx, 'bg:numa-imbalance', spec.start, async (task) => {
      const nodes = kernel.phys.nodes.length;
      while (ctx.running()) {
        await task.sleep(every);
        if (!ctx.running()) return;
        for (const p of targets()) {
          setProcessNode(p.mm, (p.mm.node + 1) % nodes);
          metrics.count('numa_moves');
        }
      }
    });
    runActivity(ctx, 'bg:numa-scan', spec.start, async (task) => {
      while (ctx.running()) {
        await task.sleep(scanEvery);
        if (!ctx.running()) return;
        if (kernel.sysctl['kernel.numa_balancing'] !== 1) continue;
        for (const p of targets()) metrics.count('numa_pte_updates', taskNumaWork(p.mm));
      }
    });
  }
}

/** numaImbalanceActivity - the BackgroundFactory of kind 'numa-imbalance'. */
export function numaImbalanceActivity(spec: BackgroundSpec): Background {
  if (spec.kind !== 'numa-imbalance') throw new RangeError(`numaImbalanceActivity: kind '${spec.kind}'`);
  return new NumaImbalanceActivity(spec);
}
