/**
 * RequestStreamWorkload - what every workload submitting buffers to a uacce device shares ('memcpy',
 * 'zip-offload', 'crypto-stream'): a context opened through @svasim/user, a number of requests in
 * flight, fresh or reused buffers (and a share of fresh ones among reused), a working set, a count
 * or a rate, and buffers prepared and released through whichever pin strategy the run loaded
 * (ctx.allocBuffer / ctx.prepare / ctx.release / ctx.freeBuffer), each completion recorded in the
 * run's MetricsCollector.
 *
 * Each request in flight is a lane: a task of the process running a closed loop (write the
 * source, submit, wait for the completion, record it). With a rate, lanes also wait for the
 * request's slot in a fixed schedule (1/rate apart), so the rate is a ceiling the lanes try to
 * keep. 'reused' buffers are allocated and prepared once, enough for the working set, and cycled
 * through; 'fresh' buffers are mapped, written, prepared, used, released and unmapped for every
 * request, so the device meets new memory each time (the "faulting SVA" case). With `pool`,
 * reused buffers are carved from one mapping (a buffer pool) unless the strategy allocates them
 * itself (hugetlb-pool's blocks); with `warm` their destinations are written by the CPU first, so
 * only memory moving under the device makes it fault. `freshFraction` makes that share of the requests of a
 * reused-buffer workload take fresh buffers (an nginx worker's new connections among its pooled
 * buffers).
 *
 * A subclass says what a request is: the algorithm, the buffer sizes, what the application
 * writes into the source, the request itself and how a sampled output is checked.
 */
import { PAGE_SIZE, type Process, type Task } from '@svasim/kernel';
import { openContext, type AccelContext, type AccelRequest, type Completion } from '@svasim/user';
import { parseDuration, parseSize, type RequestStreamWorkloadSpec } from '../../scenario';
import type { Workload, WorkloadContext } from '../activity';
import { sleepUntil } from '../activity';

/** StreamSlot - the source and destination buffers of one request. */
export interface StreamSlot {
  src: number;
  dst: number;
}

/** What a subclass is told about the request it builds or checks. */
export interface StreamRequestInfo {
  /** 1-based number of the request in the workload (shared by the lanes). */
  n: number;
  /** The lane (0 .. inflight - 1). */
  lane: number;
  /** Whether the request uses fresh buffers. */
  fresh: boolean;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** RequestStreamWorkload - see the file comment. Its tasks end when the run stops or `count` is reached. */
export abstract class RequestStreamWorkload<S extends RequestStreamWorkloadSpec> implements Workload {
  /** Bytes of one request's source (the spec's requestSize). */
  protected readonly len: number;
  private issued = 0;
  private nextAt = 0;

  constructor(readonly spec: S) {
    this.len = parseSize(spec.requestSize);
  }

  /** The algorithm the context is opened for (openContext's device discovery). */
  protected abstract get alg(): string;
  /** Bytes of a source buffer. */
  protected abstract srcBytes(): number;
  /** Bytes of a destination buffer. */
  protected abstract dstBytes(): number;
  /** Prepare per-run state (payloads, keys) from the workload's RNG stream; called before any buffer. */
  protected abstract setup(w: WorkloadContext): void;
  /**
   * fill - write request @info's source into @slot.src as the application does (a CPU store) and
   * return the request to submit. A reused slot still holds an earlier request's data.
   */
  protected abstract fill(proc: Process, slot: StreamSlot, info: StreamRequestInfo): AccelRequest;
  /**
   * check - whether request @info's completed output in @slot is right (called for successful
   * requests the subclass chose to verify, see verifies()).
   */
  protected abstract check(proc: Process, slot: StreamSlot, c: Completion, info: StreamRequestInfo): boolean;
  /** verifies - whether request @info's output is checked. */
  protected abstract verifies(info: StreamRequestInfo): boolean;
  /** The bytes a successful request counts in dma_bytes (default: what the device consumed). */
  protected countedBytes(c: Completion): number {
    return c.consumed;
  }
  /** Called after each completed request of a lane (stream state), before buffers are released. */
  protected completed(_proc: Process, _slot: StreamSlot, _c: Completion, _info: StreamRequestInfo): void {}
  /** Called for every slot right after its buffers are allocated, before prepare (default: write the whole source). */
  protected initSlot(proc: Process, slot: StreamSlot): void {
    // The application owns its data: the source is written before the device sees it.
    proc.touch(slot.src, this.srcBytes(), { write: true });
  }

  start(w: WorkloadContext): void {
    const { kernel, proc } = w;
    proc.run(async (task) => {
      await sleepUntil(kernel, task, parseDuration(this.spec.start));
      if (!w.running()) return;
      const ctx = openContext(proc, this.alg, { kernel, device: this.spec.device, mode: 'async' });
      this.setup(w);
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

  /** Allocate and prepare the pool of reused buffers (at least one slot per lane). */
  private reusedSlots(ctx: AccelContext, proc: Process, w: WorkloadContext): StreamSlot[] {
    const perSlot = this.srcBytes() + this.dstBytes();
    const ws = this.spec.workingSet === undefined ? 0 : parseSize(this.spec.workingSet);
    const lanes = this.spec.inflight;
    let n = Math.max(lanes, Math.floor(ws / perSlot));
    n = Math.ceil(n / lanes) * lanes;
    const slots: StreamSlot[] = [];
    // With `pool` (and no allocator of the strategy's own) the buffers are carved page-aligned from
    // one mapping, as nginx's and UADK's buffer pools are, so THP and khugepaged can back them
    // with huge pages; otherwise each buffer is a mapping of its own.
    const srcRound = roundUp(this.srcBytes(), PAGE_SIZE);
    const slotBytes = srcRound + roundUp(this.dstBytes(), PAGE_SIZE);
    const pool = this.spec.pool && !ctx.pin.allocBuffer ? ctx.allocBuffer(n * slotBytes) : 0;
    for (let i = 0; i < n; i++) {
      const s = pool
        ? { src: pool + i * slotBytes, dst: pool + i * slotBytes + srcRound }
        : { src: ctx.allocBuffer(this.srcBytes()), dst: ctx.allocBuffer(this.dstBytes()) };
      this.initSlot(proc, s);
      if (this.spec.warm) proc.touch(s.dst, this.dstBytes(), { write: true });
      ctx.prepare(s.src, this.srcBytes());
      ctx.prepare(s.dst, this.dstBytes());
      slots.push(s);
    }
    w.metrics.observe();
    return slots;
  }

  private freshSlot(ctx: AccelContext, proc: Process): StreamSlot {
    const slot = { src: ctx.allocBuffer(this.srcBytes()), dst: ctx.allocBuffer(this.dstBytes()) };
    this.initSlot(proc, slot);
    return slot;
  }

  private async lane(
    w: WorkloadContext,
    ctx: AccelContext,
    task: Task,
    lane: number,
    slots: StreamSlot[],
  ): Promise<void> {
    const { kernel, proc, metrics } = w;
    const spec = this.spec;
    const period = spec.rate === undefined ? 0 : 1e9 / spec.rate;
    const share = spec.freshFraction ?? 0;
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
      const fresh = slots.length === 0 || (share > 0 && w.rng.chance(share));
      const slot = fresh ? this.freshSlot(ctx, proc) : slots[k++ % slots.length];
      const info: StreamRequestInfo = { n, lane, fresh };
      const req = this.fill(proc, slot, info);
      if (fresh) {
        ctx.prepare(slot.src, this.srcBytes());
        ctx.prepare(slot.dst, this.dstBytes());
        metrics.observe();
      }
      const c = await ctx.submit(req);
      proc.task = task;
      metrics.recordRequest(c.status, c.latencyNs, c.status === 0 ? this.countedBytes(c) : 0);
      if (c.status === 0 && this.verifies(info)) {
        metrics.count('verified');
        if (!this.check(proc, slot, c, info)) metrics.recordMismatch();
      }
      this.completed(proc, slot, c, info);
      if (fresh) {
        ctx.release(slot.src, this.srcBytes());
        ctx.release(slot.dst, this.dstBytes());
        ctx.freeBuffer(slot.src, this.srcBytes());
        ctx.freeBuffer(slot.dst, this.dstBytes());
      }
    }
  }
}
