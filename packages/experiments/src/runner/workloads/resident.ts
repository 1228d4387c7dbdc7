/**
 * The 'resident' workload (scenario/resident-schema.ts): a process that is mostly memory. It maps
 * `size` bytes and writes every page (4 KiB pages unless `thp`; with `scatter` alternately with a
 * second mapping that is then unmapped, so a free page sits beside each of its pages), mlocks them
 * if asked, prepares a seeded random share of its pages for DMA through the run's pin strategy
 * (one page per prepare, as an application with small DMA buffers scattered through its heap),
 * then reads its memory again every `touchEvery`.
 *
 * What it reports (extra metrics, prefixed with the process name): `<name>_prepared_pages`,
 * `<name>_prepare_failed` (prepares the strategy refused), and at the end `<name>_pages_moved`
 * (pages of its mapping now on another page frame than after the first touch: what compaction,
 * NUMA balancing, CMA or a long-term pin's migration did to it), `<name>_numa_local` (share of
 * its resident pages on the node it runs on) and `<name>_thp_coverage`.
 */
import {
  LEVEL_PMD,
  LEVEL_SIZE,
  MADV_NOHUGEPAGE,
  PAGE_SIZE,
  PTE_PRESENT,
  PTE_SPECIAL,
  pfnToNid,
  type PinTarget,
  type Process,
} from '@svasim/kernel';
import { parseDuration, parseSize, type ResidentWorkloadSpec, type WorkloadSpec } from '../../scenario';
import { sleepUntil, type Workload, type WorkloadContext } from '../activity';
import { expectedFailure } from '../background/common';

/**
 * pickPages - the page indices in [0, @n) chosen independently with probability @p each,
 * ascending, drawing geometric gaps from @float (uniform in [0, 1)) instead of one draw per page.
 */
export function pickPages(n: number, p: number, float: () => number): number[] {
  const out: number[] = [];
  if (!(p > 0) || n <= 0) return out;
  if (p >= 1) return Array.from({ length: n }, (_, i) => i);
  const logq = Math.log1p(-p);
  for (let i = -1; ;) {
    // P(gap = g) = (1 - p)^(g - 1) p: the number of pages up to and including the next pick.
    i += 1 + Math.floor(Math.log1p(-float()) / logq);
    if (i >= n) return out;
    out.push(i);
  }
}

/** ResidentWorkload - see the file comment. Made by residentWorkload(spec). */
export class ResidentWorkload implements Workload {
  private ctx: WorkloadContext | null = null;
  private addr = 0;
  /** Page frame of each page of the mapping after the first touch (-1: not resident). */
  private firstPfn: Int32Array | null = null;

  constructor(readonly spec: ResidentWorkloadSpec) {}

  start(w: WorkloadContext): void {
    this.ctx = w;
    const { kernel, proc, metrics } = w;
    const spec = this.spec;
    const len = Math.ceil(parseSize(spec.size) / PAGE_SIZE) * PAGE_SIZE;
    const name = proc.name;
    proc.run(async (task) => {
      await sleepUntil(kernel, task, parseDuration(spec.start));
      if (!w.running()) return;
      const a = this.fill(proc, len);
      this.addr = a;
      if (spec.mlock) proc.mlock(a, len);
      this.firstPfn = this.snapshot(proc, a, len);
      const picks = pickPages(len / PAGE_SIZE, spec.prepareFraction, () => w.rng.float());
      const strategy = kernel.pinStrategy();
      const target: PinTarget = { kernel, proc, fd: -1, device: '' };
      let prepared = 0;
      for (const i of picks) {
        try {
          strategy.prepare(target, a + i * PAGE_SIZE, PAGE_SIZE);
          prepared++;
        } catch (e) {
          if (!expectedFailure(e)) throw e;
          metrics.count(`${name}_prepare_failed`);
        }
      }
      metrics.count(`${name}_prepared_pages`, prepared);
      metrics.observe();
      // Pay for the set-up (faults, locking, pins) before anything else of this process runs.
      await task.yield();
      if (spec.touchEvery === undefined) return;
      const every = parseDuration(spec.touchEvery);
      while (w.running()) {
        await task.sleep(every);
        if (!w.running() || proc.state !== 'running') return;
        proc.touch(a, len);
      }
    }, `${name}:resident`);
  }

  stop(): void {
    const w = this.ctx;
    if (!w || !this.firstPfn || w.proc.state !== 'running') return;
    const { proc, metrics } = w;
    const len = this.firstPfn.length * PAGE_SIZE;
    const place = { local: 0, huge: 0 };
    const now = this.snapshot(proc, this.addr, len, place);
    let moved = 0;
    let resident = 0;
    for (let i = 0; i < now.length; i++) {
      if (now[i] >= 0) resident++;
      if (this.firstPfn[i] >= 0 && now[i] !== this.firstPfn[i]) moved++;
    }
    metrics.setCount(`${proc.name}_pages_moved`, moved);
    metrics.setCount(`${proc.name}_numa_local`, resident > 0 ? place.local / resident : 0);
    metrics.setCount(`${proc.name}_thp_coverage`, resident > 0 ? place.huge / resident : 0);
  }

  /** Map @len bytes and write every page (interleaved with a throw-away twin when `scatter`). */
  private fill(proc: Process, len: number): number {
    const a = proc.mmap(len);
    if (!this.spec.thp) proc.madvise(a, len, MADV_NOHUGEPAGE);
    if (!this.spec.scatter) {
      proc.touch(a, len, { write: true });
      return a;
    }
    const b = proc.mmap(len);
    proc.madvise(b, len, MADV_NOHUGEPAGE);
    for (let off = 0; off < len; off += PAGE_SIZE) {
      proc.touch(a + off, PAGE_SIZE, { write: true });
      proc.touch(b + off, PAGE_SIZE, { write: true });
    }
    proc.munmap(b, len);
    return a;
  }

  /**
   * The page frame behind each page of [@a, @a + @len) now (-1 where nothing is mapped); with
   * @place, also count the pages on the process's node and those mapped by a 2 MiB PMD.
   */
  private snapshot(
    proc: Process,
    a: number,
    len: number,
    place?: { local: number; huge: number },
  ): Int32Array {
    const out = new Int32Array(len / PAGE_SIZE).fill(-1);
    const mm = proc.mm;
    const pt = mm.pgtable;
    pt.forEachEntry(a, a + len, (va, tableId, slot, level) => {
      const t = pt.table(tableId);
      if ((t[slot + 1] & (PTE_PRESENT | PTE_SPECIAL)) !== PTE_PRESENT) return;
      const n = LEVEL_SIZE[level] / PAGE_SIZE;
      const first = (va - a) / PAGE_SIZE;
      let inside = 0;
      for (let i = Math.max(0, -first); i < n && first + i < out.length; i++, inside++)
        out[first + i] = t[slot] + i;
      if (!place) return;
      if (pfnToNid(mm.core, t[slot]) === mm.node) place.local += inside;
      if (level === LEVEL_PMD) place.huge += inside;
    });
    return out;
  }
}

/** residentWorkload - the WorkloadFactory of kind 'resident'. */
export function residentWorkload(spec: WorkloadSpec): Workload {
  if (spec.kind !== 'resident') throw new RangeError(`residentWorkload: kind '${spec.kind}'`);
  return new ResidentWorkload(spec);
}
