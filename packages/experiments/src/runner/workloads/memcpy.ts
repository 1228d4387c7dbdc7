/**
 * The 'memcpy' workload: an application copying buffers through the reference copy device
 * (@svasim/testkit's memcpy_accel, algorithm 'memcpy') with a number of requests in flight,
 * fresh or reused buffers, a working set and a count or a rate, preparing its buffers through
 * whichever pin strategy the run loaded (@svasim/user's ctx.prepare / ctx.release).
 *
 * Each request in flight is a lane: a task of the process running a closed loop (write the
 * source, submit, wait for the completion). With a rate, lanes also wait for the request's slot
 * in a fixed schedule (1/rate apart), so the rate is a ceiling the lanes try to keep.
 */
import type { PinTarget, Process, Task } from '@svasim/kernel';
import { openContext, type AccelContext } from '@svasim/user';
import { parseSize, type MemcpyWorkloadSpec, type WorkloadSpec } from '../../scenario';
import type { Workload, WorkloadContext } from '../activity';
import { sleepUntil } from '../activity';

/** A buffer pair one request copies between. */
interface Slot {
  src: number;
  dst: number;
}

/** The 8-byte stamp written at the start of each source, checked in the copy when `verify`. */
function stamp(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, n, true);
  return b;
}

/**
 * MemcpyWorkload - see the file comment. Made by memcpyWorkload(spec); its tasks end when the run
 * stops (they are left blocked) or when `count` requests were issued.
 */
export class MemcpyWorkload implements Workload {
  private readonly len: number;
  private issued = 0;
  private nextAt = 0;
  private target: PinTarget | null = null;

  constructor(readonly spec: MemcpyWorkloadSpec) {
    this.len = parseSize(spec.requestSize);
  }

  start(w: WorkloadContext): void {
    const { kernel, proc } = w;
    proc.run(async (task) => {
      const ctx = openContext(proc, 'memcpy', { kernel, device: this.spec.device, mode: 'async' });
      this.target = { kernel, proc, fd: ctx.fd, device: ctx.device };
      const lanes = this.spec.inflight;
      const slots = this.spec.buffers === 'reused' ? this.reusedSlots(ctx, proc, w) : [];
      this.nextAt = kernel.now();
      // Pay the set-up's CPU time (pinning, faults) before the first request.
      await task.yield();
      for (let lane = 0; lane < lanes; lane++) {
        const mine = slots.filter((_, i) => i % lanes === lane);
        kernel.tasks.spawn(`${proc.name}:lane${lane}`, (t) => this.lane(w, ctx, t, lane, mine));
      }
    }, `${proc.name}:setup`);
  }

  stop(): void {
    // Requests still in flight stay uncounted; the kernel is discarded with them.
  }

  /** Allocate and prepare the pool of reused buffers (at least one pair per lane). */
  private reusedSlots(ctx: AccelContext, proc: Process, w: WorkloadContext): Slot[] {
    const perPair = 2 * this.len;
    const ws = this.spec.workingSet === undefined ? 0 : parseSize(this.spec.workingSet);
    const lanes = this.spec.inflight;
    let n = Math.max(lanes, Math.floor(ws / perPair));
    n = Math.ceil(n / lanes) * lanes;
    const slots: Slot[] = [];
    for (let i = 0; i < n; i++) {
      const s = { src: this.alloc(ctx, proc), dst: this.alloc(ctx, proc) };
      // The application owns its data: the source is written before the device sees it.
      proc.touch(s.src, this.len, { write: true });
      ctx.prepare(s.src, this.len);
      ctx.prepare(s.dst, this.len);
      slots.push(s);
    }
    w.metrics.observe();
    return slots;
  }

  private alloc(ctx: AccelContext, proc: Process): number {
    const t = this.target;
    return t && ctx.pin.allocBuffer ? ctx.pin.allocBuffer(t, this.len) : proc.mmap(this.len);
  }

  private free(ctx: AccelContext, proc: Process, addr: number): void {
    const t = this.target;
    if (t && ctx.pin.freeBuffer) ctx.pin.freeBuffer(t, addr, this.len);
    else proc.munmap(addr, this.len);
  }

  private async lane(
    w: WorkloadContext,
    ctx: AccelContext,
    task: Task,
    lane: number,
    slots: Slot[],
  ): Promise<void> {
    const { kernel, proc, metrics } = w;
    const spec = this.spec;
    const len = this.len;
    const period = spec.rate === undefined ? 0 : 1e9 / spec.rate;
    let k = 0;
    while (w.running() && (spec.count === undefined || this.issued < spec.count)) {
      const n = ++this.issued;
      if (period > 0) {
        const at = Math.round(this.nextAt);
        this.nextAt += period;
        await sleepUntil(kernel, task, at);
        if (!w.running()) return;
      }
      proc.task = task; // charge this lane for the process's work until it blocks
      let slot: Slot;
      if (slots.length > 0) slot = slots[k++ % slots.length];
      else {
        slot = { src: this.alloc(ctx, proc), dst: this.alloc(ctx, proc) };
        proc.touch(slot.src, len, { write: true });
        ctx.prepare(slot.src, len);
        ctx.prepare(slot.dst, len);
        metrics.observe();
      }
      const mark = stamp(n * 1024 + lane);
      proc.write(slot.src, mark.subarray(0, Math.min(8, len)));
      const c = await ctx.submit({
        op: 'copy',
        alg: 'memcpy',
        src: slot.src,
        srcLen: len,
        dst: slot.dst,
        dstLen: len,
      });
      proc.task = task;
      metrics.recordRequest(c.status, c.latencyNs, c.consumed);
      if (spec.verify && c.status === 0 && len >= 8) {
        const got = proc.read(slot.dst, 8);
        if (!Buffer.from(got).equals(Buffer.from(mark))) metrics.recordMismatch();
      }
      if (slots.length === 0) {
        ctx.release(slot.src, len);
        ctx.release(slot.dst, len);
        this.free(ctx, proc, slot.src);
        this.free(ctx, proc, slot.dst);
      }
    }
  }
}

/** memcpyWorkload - the WorkloadFactory of kind 'memcpy'. */
export function memcpyWorkload(spec: WorkloadSpec): Workload {
  if (spec.kind !== 'memcpy') throw new RangeError(`memcpyWorkload: kind '${spec.kind}'`);
  return new MemcpyWorkload(spec);
}
