/**
 * openContext / AccelContext - one UADK-style context (a "ctx" is one uacce queue, KERNEL-FACTS
 * §8): find the device as wd_get_accel_list does (/sys/class/uacce/<name>/algorithms and
 * available_instances), open it (wd_request_ctx), map MMIO and DUS (wd_ctx_mmap_qfr), START_Q
 * (wd_ctx_start); then write descriptors into the DUS submission ring, ring the MMIO doorbell and
 * reap completion records from the DUS completion ring. The ring layout is @svasim/kernel's
 * accel/layout.ts; this file packages what memcpy-accel.test.ts does by hand.
 *
 * Errors:
 * - openContext: ENODEV when no device lists `alg` (or no kernel is known for the process, see
 *   kernel-of.ts); EBUSY when every such device has no free queue; open/mmap/ioctl errors pass
 *   through as SyscallError.
 * - submit/submitSync on a closed context: SyscallError EBADF (syscall 'submit'), what the
 *   kernel answers for an operation on the released fd; submit() rejects with it.
 * - Bad requests never throw: the library answers what it can check itself (unknown op, alg the
 *   device does not list, lengths out of u32, key/iv too long) with -EINVAL and latencyNs 0,
 *   and the device answers the rest (unmapped buffer -EFAULT, dst too small -ENOSPC, ...).
 *   A sync request not completed within `timeoutNs` of simulated time completes -ETIMEDOUT
 *   (UADK's -WD_ETIMEDOUT); a request still pending at close() completes -ECANCELED.
 * - The device hot-removed under an open context (its rings are unmapped, so a ring access
 *   faults): pending and later requests complete -ENODEV; close() still releases everything
 *   (PUT_Q's ENXIO is ignored, as wd_release_ctx_force carries on).
 */
import {
  ACCEL_CQE,
  ACCEL_DB_SQ_TAIL,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  ACCEL_SQE_F_STREAM,
  ACCEL_SQE_F_STREAM_END,
  ERRNO,
  MAP_ANONYMOUS,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  O_RDWR,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  SyscallError,
  UACCE_CMD_PUT_Q,
  UACCE_CMD_START_Q,
  UACCE_QFRT_DUS,
  UACCE_QFRT_MMIO,
  accelDusLayout,
  accelOpCode,
  type AccelDusLayout,
  type Kernel,
  type Process,
  type Task,
} from '@svasim/kernel';
import { kernelOf } from './kernel-of';
import { loadedPinStrategy, type PinStrategy, type PinTarget } from './pin-hook';

/** The ops of API.md's request. */
export type AccelOp = 'copy' | 'compress' | 'decompress' | 'encrypt' | 'decrypt' | 'digest' | 'hmac';

/** One request: src/dst are user addresses in the context's process. */
export interface AccelRequest {
  op: AccelOp;
  /** An algorithm the device lists in sysfs `algorithms` (kernel crypto API names). */
  alg: string;
  src: number;
  srcLen: number;
  dst: number;
  dstLen: number;
  /** Key bytes (at most MAX_KEY_LEN); the library copies them into the context's parameter area. */
  key?: Uint8Array;
  /** IV bytes (at most MAX_IV_LEN). */
  iv?: Uint8Array;
  /** Compression level or another per-op parameter. */
  level?: number;
  /**
   * Part of a stream (UADK's wd_do_comp_strm): the device carries state from one request of this
   * context to the next until a request with `last: true` finishes it. Absent: stateless.
   */
  stream?: { last: boolean };
}

/** What a request completed with (API.md). */
export interface Completion {
  /** 0 or -errno. */
  status: number;
  consumed: number;
  produced: number;
  /** Doorbell to completion, simulated ns (0 for requests the library refused itself). */
  latencyNs: number;
  /** IO page requests the device issued for this request. */
  faults: number;
}

export interface OpenContextOptions {
  /** Only this uacce device name (e.g. 'hisi_zip-0'). */
  device?: string;
  /** UADK's ctx_mode; informational (both submit and submitSync work in either mode). */
  mode?: 'sync' | 'async';
  /** The kernel running the process (see kernel-of.ts for how it is found otherwise). */
  kernel?: Kernel;
  /** A pin strategy to use instead of the one loaded into the kernel. */
  pin?: PinStrategy;
  /** Simulated time a submitSync may wait before completing -ETIMEDOUT (default 10 s). */
  timeoutNs?: number;
}

/** Largest key and IV the parameter area holds per descriptor slot. */
export const MAX_KEY_LEN = 128;
export const MAX_IV_LEN = 64;
const PARAM_SLOT = MAX_KEY_LEN + MAX_IV_LEN;

const DEFAULT_TIMEOUT_NS = 10_000_000_000;
/** Async completion polling (wd_comp_poll): first interval and cap, simulated ns. */
const POLL_MIN_NS = 500;
const POLL_MAX_NS = 50_000;
const U32_MAX = 0xffffffff;

/** ringGone - a ring access failed because the mapping is gone (uacce_remove zapped it). */
function ringGone(e: unknown): boolean {
  return e instanceof SyscallError && e.code === 'EFAULT';
}

function refused(status: number): Completion {
  return { status, consumed: 0, produced: 0, latencyNs: 0, faults: 0 };
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

/** The uacce devices as wd_get_accel_list sees them. */
function listDevices(k: Kernel): string[] {
  const names = k.devices.sysfs.readdir('/sys/class/uacce');
  return Array.isArray(names) ? (names as string[]) : [];
}

function sysfsLines(k: Kernel, path: string): string[] {
  return k
    .readSysfs(path)
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * openContext - a context on a device whose sysfs `algorithms` lists @alg; among several, the one
 * with the most free queues (wd_find_dev_by_numa). Throws SyscallError ENODEV / EBUSY (file comment).
 */
export function openContext(proc: Process, alg: string, opts: OpenContextOptions = {}): AccelContext {
  const k = kernelOf(proc, opts.kernel);
  let best: { name: string; free: number; algs: string[] } | null = null;
  for (const name of listDevices(k)) {
    if (opts.device !== undefined && name !== opts.device) continue;
    const base = `/sys/class/uacce/${name}`;
    let algs: string[];
    let free: number;
    try {
      algs = sysfsLines(k, `${base}/algorithms`);
      free = Number(k.readSysfs(`${base}/available_instances`).trim());
    } catch {
      continue; // a device going away under us
    }
    if (!algs.includes(alg)) continue;
    if (!Number.isFinite(free)) free = 0;
    if (best === null || free > best.free) best = { name, free, algs };
  }
  if (best === null) throw new SyscallError(-ERRNO.ENODEV, 'openContext', `no uacce device lists '${alg}'`);
  if (best.free <= 0) throw new SyscallError(-ERRNO.EBUSY, 'openContext', `every '${alg}' queue is taken`);
  return AccelContext.open(k, proc, best.name, best.algs, opts);
}

interface Pending {
  tag: number;
  done: Completion | null;
}

/** An async request and its promise's settlers. */
interface AsyncItem {
  ctx: AccelContext;
  req: AccelRequest;
  /** Null until the request is in the ring. */
  entry: Pending | null;
  resolve(c: Completion): void;
  reject(e: unknown): void;
}

/**
 * The async requests a task waits for, over every context: a task blocks in one kernel primitive
 * at a time, so one driver per task polls them all (wd_comp_poll with backoff) and settles each
 * promise as its completion arrives. Several submits may be awaited together (Promise.all) from
 * one task; awaiting a submit together with another kernel primitive of the same task is not
 * supported.
 */
interface Driver {
  items: AsyncItem[];
  done: Promise<void>;
}

const drivers = new WeakMap<Task, Driver>();

function enqueue(task: Task, item: AsyncItem): void {
  const existing = drivers.get(task);
  if (existing) {
    existing.items.push(item);
    return;
  }
  const d: Driver = { items: [item], done: Promise.resolve() };
  drivers.set(task, d);
  // Only this driver's own entry: a new one may have replaced it once this one decided to exit.
  d.done = drive(task, d).finally(() => {
    if (drivers.get(task) === d) drivers.delete(task);
  });
}

async function drive(task: Task, d: Driver): Promise<void> {
  let interval = POLL_MIN_NS;
  try {
    // Start polling only once the submitter's synchronous code is done (it awaits), so further
    // submits from the same turn (Promise.all) find this driver while the task is still running.
    await Promise.resolve();
    for (;;) {
      let progress = false;
      d.items = d.items.filter((item) => {
        const r = item.ctx.stepItem(item);
        progress ||= r.progress;
        // The code awaiting it resumes after this task blocks in sleep (no current task then):
        // a submit it makes must still come to this driver (see submit()).
        if (r.settled) item.ctx.settledBy = task;
        return !r.settled;
      });
      if (d.items.length === 0) {
        // Leave the map now, not in a later .finally: the continuation of a request that just
        // settled may submit again before that runs, and must start a new driver instead of
        // joining one that no longer polls.
        drivers.delete(task);
        return;
      }
      interval = progress ? POLL_MIN_NS : Math.min(POLL_MAX_NS, interval * 2);
      await task.sleep(interval);
    }
  } catch (e) {
    if (drivers.get(task) === d) drivers.delete(task);
    for (const item of d.items) item.reject(e);
    d.items = [];
  }
}

/**
 * AccelContext - one open queue. Not shareable between processes (the mappings are the
 * process's); several requests may be in flight (submit), up to the ring depth.
 */
export class AccelContext {
  private tail = 0;
  private nextTag = 0;
  private inflight = new Map<number, Pending>();
  private closed = false;
  /**
   * The device went away under us (hot removal zapped the rings: a ring access faults). Pending
   * requests then complete -ENODEV and new ones are refused with it, as UADK reports a device
   * it can no longer reach (-WD_HW_EACCESS) instead of crashing.
   */
  private gone = false;
  private params = 0;
  private paramsPrepared = false;
  /** @internal the task whose async driver last settled one of this context's requests. */
  settledBy: Task | null = null;
  private readonly timeoutNs: number;
  private readonly target: PinTarget;

  private constructor(
    readonly kernel: Kernel,
    readonly proc: Process,
    /** The uacce device name, e.g. 'memcpy_accel-0'. */
    readonly device: string,
    /** The device's algorithms; a descriptor's `alg` is the index of the request's alg here. */
    readonly algorithms: readonly string[],
    readonly fd: number,
    private readonly mmio: number,
    private readonly dus: number,
    private readonly dusSize: number,
    readonly layout: AccelDusLayout,
    readonly pin: PinStrategy,
    readonly mode: 'sync' | 'async',
    timeoutNs: number,
  ) {
    this.timeoutNs = timeoutNs;
    this.target = { kernel, proc, fd, device };
  }

  /** @internal openContext: open, mmap MMIO and DUS, START_Q; undoes what it did on failure. */
  static open(k: Kernel, p: Process, name: string, algs: string[], opts: OpenContextOptions): AccelContext {
    const dusSize = Number(k.readSysfs(`/sys/class/uacce/${name}/region_dus_size`).trim());
    const fd = p.open(`/dev/${name}`, O_RDWR);
    const rw = PROT_READ | PROT_WRITE;
    let mmio = 0;
    let dus = 0;
    try {
      mmio = p.mmap(PAGE_SIZE, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_MMIO * PAGE_SIZE });
      dus = p.mmap(dusSize, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_DUS * PAGE_SIZE });
      p.ioctl(fd, UACCE_CMD_START_Q);
      const ctrl = ACCEL_QUEUE_CTRL.decode(p.read(dus, ACCEL_QUEUE_CTRL.size));
      const layout = accelDusLayout(Number(ctrl.sq_depth));
      return new AccelContext(
        k,
        p,
        name,
        algs,
        fd,
        mmio,
        dus,
        dusSize,
        layout,
        opts.pin ?? loadedPinStrategy(k),
        opts.mode ?? 'sync',
        opts.timeoutNs ?? DEFAULT_TIMEOUT_NS,
      );
    } catch (e) {
      if (dus) p.munmap(dus, dusSize);
      if (mmio) p.munmap(mmio, PAGE_SIZE);
      p.close(fd);
      throw e;
    }
  }

  /** True once close() ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Requests submitted and not yet reaped by their submitter. */
  get pending(): number {
    return this.inflight.size;
  }

  /** prepare - make [addr, addr+len) ready for DMA through the loaded pin strategy. */
  prepare(addr: number, len: number): void {
    this.assertOpen('prepare');
    this.pin.prepare(this.target, addr, len);
  }

  /** release - undo one prepare of the same range. */
  release(addr: number, len: number): void {
    this.assertOpen('release');
    this.pin.release(this.target, addr, len);
  }

  /**
   * allocBuffer - @len bytes of buffer memory the loaded pin strategy's way (hugetlb-pool: a block
   * of its pool of huge pages, UADK's wd_mem_alloc); a strategy without allocBuffer gets a fresh
   * private anonymous mapping. The buffer is not prepared: call prepare() as for any buffer.
   * Returns its address; throws SyscallError: EBADF on a closed context, else the strategy's or
   * mmap's errno (EINVAL for a zero or bad length, ENOMEM when there is no memory).
   * Released by freeBuffer (or by the process's exit).
   */
  allocBuffer(len: number): number {
    this.assertOpen('allocBuffer');
    if (this.pin.allocBuffer) return this.pin.allocBuffer(this.target, len);
    return this.proc.mmap(len, { prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  }

  /**
   * freeBuffer - give back a buffer allocBuffer returned, with the same @len (the strategy's
   * freeBuffer, else munmap). Allowed after close(): buffers outlive the context. Throws
   * SyscallError with the strategy's or munmap's errno (EINVAL for a range it did not hand out).
   */
  freeBuffer(addr: number, len: number): void {
    if (this.pin.freeBuffer) this.pin.freeBuffer(this.target, addr, len);
    else this.proc.munmap(addr, len);
  }

  /**
   * submitSync - submit @req and run the simulation until it completes (wd_do_comp_sync polling
   * the CQ). Callable from test code or from a task (kernel.tasks.runUntilSync).
   */
  submitSync(req: AccelRequest): Completion {
    this.assertOpen('submit');
    const tasks = this.kernel.tasks;
    const deadline = this.kernel.now() + this.timeoutNs;
    // A full ring: wait for room first (completions free slots as they are reaped).
    if (this.inflight.size >= this.layout.sqDepth) {
      tasks.runUntilSync(() => this.reap() || this.inflight.size < this.layout.sqDepth, this.timeoutNs);
      if (this.inflight.size >= this.layout.sqDepth) return refused(-ERRNO.ETIMEDOUT);
    }
    const entry = this.post(req);
    if (!('tag' in entry)) return entry;
    const left = Math.max(0, deadline - this.kernel.now());
    tasks.runUntilSync(() => (this.reap(), entry.done !== null), left);
    this.inflight.delete(entry.tag);
    return entry.done ?? refused(-ERRNO.ETIMEDOUT);
  }

  /**
   * submit - submit @req; the promise resolves with its completion in simulated time while the
   * kernel runs. From a task it polls with task.sleep (wd_comp_poll); from plain code it starts a
   * polling task of the context's process (run the kernel, e.g. runUntilIdle, to settle it).
   * Rejects with SyscallError EBADF on a closed context.
   */
  submit(req: AccelRequest): Promise<Completion> {
    try {
      this.assertOpen('submit');
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<Completion>((resolve, reject) => {
      const item: AsyncItem = { ctx: this, req, entry: null, resolve, reject };
      // Post now when the ring has room, so the doorbell rings at the call's time.
      if (this.inflight.size < this.layout.sqDepth && !item.ctx.postItem(item)) return;
      // Outside any task, the code may be the continuation of a request a driver just settled
      // while its task sleeps (several requests awaited in loops from one task): that driver,
      // still polling, takes this one too.
      const settledBy = this.settledBy;
      const current = this.kernel.tasks.current ?? (settledBy && drivers.has(settledBy) ? settledBy : null);
      if (current) {
        enqueue(current, item);
        return;
      }
      this.kernel.tasks.spawn(`${this.proc.name}:accel-poll`, async (task) => {
        enqueue(task, item);
        // Serve while this task has a driver: a continuation of a request settled here may have
        // started a new one on it.
        for (let d = drivers.get(task); d; d = drivers.get(task)) await d.done;
      });
    });
  }

  /** @internal the async driver: post @item's request; false when it was settled (refused). */
  postItem(item: AsyncItem): boolean {
    let posted: Pending | Completion;
    try {
      posted = this.post(item.req);
    } catch (e) {
      item.reject(e);
      return false;
    }
    if (!('tag' in posted)) {
      item.resolve(posted);
      return false;
    }
    item.entry = posted;
    return true;
  }

  /**
   * @internal the async driver: advance @item; true when it settled. Reaps the CQ, posts a
   * request that waited for room, and answers -ECANCELED once the context is closed.
   */
  stepItem(item: AsyncItem): { settled: boolean; progress: boolean } {
    if (!item.entry) {
      if (this.closed) {
        item.resolve(refused(-ERRNO.ECANCELED));
        return { settled: true, progress: true };
      }
      this.reap();
      if (this.inflight.size >= this.layout.sqDepth) return { settled: false, progress: false };
      return { settled: !this.postItem(item), progress: true };
    }
    const progress = this.closed ? false : this.reap();
    const e = item.entry;
    if (e.done === null && this.closed) e.done = refused(-ERRNO.ECANCELED);
    if (e.done === null) return { settled: false, progress };
    this.inflight.delete(e.tag);
    item.resolve(e.done);
    return { settled: true, progress: true };
  }

  /**
   * close - PUT_Q (the device cancels what is in flight), unmap both regions, close the fd
   * (wd_release_ctx_force + wd_release_ctx). A second close does nothing.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const p = this.proc;
    for (const e of this.inflight.values()) if (e.done === null) e.done = refused(-ERRNO.ECANCELED);
    const steps: Array<() => unknown> = [
      // On a removed device PUT_Q answers ENXIO; like wd_release_ctx_force, carry on.
      () => {
        try {
          p.ioctl(this.fd, UACCE_CMD_PUT_Q);
        } catch (e) {
          if (!(e instanceof SyscallError && e.code === 'ENXIO')) throw e;
        }
      },
      () =>
        this.params && this.paramsPrepared && this.pin.release(this.target, this.params, this.paramSize()),
      () => this.params && p.munmap(this.params, this.paramSize()),
      () => p.munmap(this.dus, this.dusSize),
      () => p.munmap(this.mmio, PAGE_SIZE),
      () => p.close(this.fd),
    ];
    let first: unknown = null;
    for (const step of steps) {
      try {
        step();
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }

  // ---- rings ----

  private assertOpen(call: string): void {
    if (this.closed) throw new SyscallError(-ERRNO.EBADF, call, `context on ${this.device} is closed`);
  }

  private paramSize(): number {
    return Math.ceil((this.layout.sqDepth * PARAM_SLOT) / PAGE_SIZE) * PAGE_SIZE;
  }

  /** Validate, write the descriptor, ring the doorbell. Returns the pending entry or a refusal. */
  private post(req: AccelRequest): Pending | Completion {
    if (this.gone) return refused(-ERRNO.ENODEV);
    const op = accelOpCode(String(req.op));
    if (op < 0) return refused(-ERRNO.EINVAL);
    const alg = this.algorithms.indexOf(String(req.alg));
    if (alg < 0) return refused(-ERRNO.EINVAL);
    const okLen = (n: number) => Number.isInteger(n) && n >= 0 && n <= U32_MAX;
    const okAddr = (n: number) => Number.isSafeInteger(n) && n >= 0;
    if (!okLen(req.srcLen) || !okLen(req.dstLen) || !okAddr(req.src) || !okAddr(req.dst))
      return refused(-ERRNO.EINVAL);
    const level = req.level ?? 0;
    if (!okLen(level)) return refused(-ERRNO.EINVAL);
    const key = req.key ?? new Uint8Array(0);
    const iv = req.iv ?? new Uint8Array(0);
    if (key.length > MAX_KEY_LEN || iv.length > MAX_IV_LEN) return refused(-ERRNO.EINVAL);

    const slot = this.tail % this.layout.sqDepth;
    let keyAddr = 0;
    let ivAddr = 0;
    if (key.length || iv.length) {
      const base = this.paramArea() + slot * PARAM_SLOT;
      if (key.length) this.proc.write((keyAddr = base), key);
      if (iv.length) this.proc.write((ivAddr = base + MAX_KEY_LEN), iv);
    }
    const tag = ++this.nextTag;
    const flags = req.stream ? ACCEL_SQE_F_STREAM | (req.stream.last ? ACCEL_SQE_F_STREAM_END : 0) : 0;
    const sqe = ACCEL_SQE.encode({
      op,
      alg,
      flags,
      tag,
      src: req.src,
      dst: req.dst,
      src_len: req.srcLen,
      dst_len: req.dstLen,
      key: keyAddr,
      iv: ivAddr,
      key_len: key.length,
      iv_len: iv.length,
      level,
    });
    const entry: Pending = { tag, done: null };
    try {
      this.proc.write(this.dus + this.layout.sqOff + slot * ACCEL_SQE.size, sqe);
      this.tail = (this.tail + 1) >>> 0;
      this.inflight.set(tag, entry);
      this.proc.write(this.mmio + ACCEL_DB_SQ_TAIL, u32(this.tail));
    } catch (e) {
      if (!ringGone(e)) throw e;
      this.deviceGone();
      this.inflight.delete(tag);
      return refused(-ERRNO.ENODEV);
    }
    return entry;
  }

  /** The rings faulted: the device is gone; every pending request completes -ENODEV. */
  private deviceGone(): void {
    this.gone = true;
    for (const e of this.inflight.values()) if (e.done === null) e.done = refused(-ERRNO.ENODEV);
  }

  /**
   * The parameter area for keys and IVs: mapped (and populated, so it never faults) on first use.
   * Under an 'iova' strategy (no SVA: the device reaches only what was mapped for it) the library
   * prepares it itself, as it is the library's memory, and releases it at close().
   */
  private paramArea(): number {
    if (!this.params) {
      const size = this.paramSize();
      const area = this.proc.mmap(size, {
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
      });
      if (this.pin.addressing === 'iova') {
        try {
          this.pin.prepare(this.target, area, size);
        } catch (e) {
          this.proc.munmap(area, size);
          throw e;
        }
        this.paramsPrepared = true;
      }
      this.params = area;
    }
    return this.params;
  }

  /** Consume every completion record in the CQ; returns true when one was taken. */
  private reap(): boolean {
    if (this.gone) return false;
    try {
      return this.reapRing();
    } catch (e) {
      if (!ringGone(e)) throw e;
      this.deviceGone();
      return true;
    }
  }

  private reapRing(): boolean {
    const p = this.proc;
    const ctrl = ACCEL_QUEUE_CTRL.decode(p.read(this.dus, ACCEL_QUEUE_CTRL.size));
    let head = Number(ctrl.cq_head);
    const tail = Number(ctrl.cq_tail);
    if (head === tail) return false;
    const depth = this.layout.cqDepth;
    while (head !== tail) {
      const cqe = ACCEL_CQE.decode(
        p.read(this.dus + this.layout.cqOff + (head % depth) * ACCEL_CQE.size, ACCEL_CQE.size),
      );
      const e = this.inflight.get(Number(cqe.tag));
      if (e && e.done === null)
        e.done = {
          status: Number(cqe.status),
          consumed: Number(cqe.consumed),
          produced: Number(cqe.produced),
          latencyNs: Number(cqe.latency_ns),
          faults: Number(cqe.faults),
        };
      // A record for a tag nobody waits for (a timed-out request) is dropped.
      head = (head + 1) >>> 0;
    }
    p.write(this.dus + ACCEL_QUEUE_CTRL.offsetOf('cq_head'), u32(head));
    return true;
  }
}
