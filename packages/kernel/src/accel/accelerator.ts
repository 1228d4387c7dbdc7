/**
 * VirtualAccelerator - the base of svasim's accelerator models: a PCIe-like device behind the
 * IOMMU (SVA + ATS), exposed to user space through uacce, with N hardware queues and M engines.
 *
 * What a request goes through (all in simulated time, on the kernel's scheduler, no randomness of
 * its own, so a run is reproducible from the kernel seed):
 *
 *   user writes accel_sqe into the SQ (DUS)  ->  32-bit store of sq_tail to the doorbell (MMIO)
 *   -> after timing.doorbellNs the queue fetches descriptors (while the CQ has room)
 *   -> a free engine DMA-reads the key, the IV (when key_len / iv_len are set) and src, page by
 *      page through iommuTranslate (PASID + VA)
 *        TRANSLATION_FAULT: a page request to kernel.iopf; SUCCESS -> retry after retryNs,
 *        INVALID/FAILURE -> the request completes -EFAULT (never hangs)
 *        TRANSLATION_ABORT: -EFAULT at once
 *   -> process(op, srcBytes, sqe, { key, iv, queue }) (the subclass: the operation on real bytes)
 *   -> service time perRequestNs + bytes / throughput (or the result's serviceNs)
 *   -> DMA-write the output to dst the same way
 *      (every page translated counts as DMA in flight, gup/dma-inflight.ts, until completion)
 *   -> accel_cqe into the CQ, cq_tail advanced (poll sees it), optional interrupt callback.
 *
 * Data moves when the engine reaches a page in the model's event order; the translation times are
 * added before the next step. Subclasses implement process() and pass an AcceleratorConfig.
 *
 * Streams: a descriptor with ACCEL_SQE_F_STREAM continues state the device keeps per hardware
 * queue (a compression stream spanning requests); such requests of one queue run one at a time
 * and in order, and queueReset() tells the subclass when a queue changes hands.
 */
import { Device } from '../base/device';
import { dmaInflight } from '../gup/dma-inflight';
import type { IommuDevice } from '../iommu/iommu-device';
import { TRANSLATION_FAULT, iommuTranslate } from '../iommu/translate';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_SUCCESS,
} from '../iommu/types';
import { remapPfnRange, vmInsertPage } from '../mm/device-map';
import { GFP_KERNEL } from '../mm/gfp';
import { IoMemory } from '../mm/io-mem';
import { PG_slab } from '../mm/page-flags';
import { putPage } from '../mm/page-ref';
import { VM_IO } from '../mm/vm-flags';
import type { Kernel } from '../plugin/kernel';
import type { UacceDevice } from '../uacce/device';
import type { UacceOps } from '../uacce/ops';
import type { UacceQueue } from '../uacce/queue';
import { UACCE_DEV_SVA, UACCE_QFRT_DUS, UACCE_QFRT_MMIO } from '../uacce/uapi';
import { uacceAlloc, uacceRegister, uacceRemove } from '../uacce/uacce';
import { ERRNO, KernelError } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import {
  ACCEL_CQE,
  ACCEL_DB_SQ_TAIL,
  ACCEL_SQE_F_STREAM,
  ACCEL_OP_NAMES,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  accelDusLayout,
  type AccelDusLayout,
} from './layout';

/** The figures of an engine's service-time model; every figure names its source. */
export interface AccelTiming {
  /** Sustained bytes per second of one engine. */
  throughputBytesPerS: number;
  /** Fixed cost of one request (descriptor decode, setup, completion write), ns. */
  perRequestNs: number;
  /** Doorbell store to descriptor fetch, ns. */
  doorbellNs: number;
  /** A citation, or 'assumption: ...', for each figure. */
  sources: Record<'throughputBytesPerS' | 'perRequestNs' | 'doorbellNs', string>;
}

/** accelServiceNs - an engine's busy time for `bytes`: perRequestNs + bytes / throughput. */
export function accelServiceNs(t: AccelTiming, bytes: number): number {
  return Math.round(t.perRequestNs + (bytes * 1e9) / t.throughputBytesPerS);
}

const EMPTY = new Uint8Array(0);

/** What a subclass passes to the VirtualAccelerator constructor. */
export interface AcceleratorConfig {
  /** uacce interface name: the device is /dev/<name>-<id>. */
  name: string;
  /** Name of the parent (PCI function) device, e.g. '0000:6a:01.0'. */
  parentName: string;
  /** The sysfs `api` string user space matches its driver on. */
  apiVer: string;
  /** The sysfs `algorithms` list. */
  algorithms: readonly string[];
  /** Op names (ACCEL_OP_NAMES values) the device accepts; others complete -EOPNOTSUPP. */
  ops: readonly string[];
  timing: AccelTiming;
  /** Hardware queues (default 4). */
  queues?: number;
  /** Engines shared by the queues (default 1). */
  engines?: number;
  /** Ring depth, a power of two (default 64). */
  ringDepth?: number;
  /** Ask for UACCE_DEV_SVA (default true). Without it DMA addresses are IOVAs (PASID 0). */
  sva?: boolean;
  /** PCIe ATS: translations cached in the device's ATC (default true). */
  ats?: boolean;
  /** Largest src_len or dst_len accepted (default 64 MiB); larger completes -EINVAL. */
  maxLen?: number;
  /** Page requests for one page before the request gives up with -EFAULT (default 8). */
  maxFaultRetries?: number;
  /** ACCEL_SQE_F_* bits the device understands (default 0); others complete -EOPNOTSUPP. */
  sqeFlags?: number;
}

/** What process() gets besides the source: the parameters the engine DMA-read and the queue. */
export interface AccelRequestParams {
  /** key_len bytes read from sqe.key (empty when key_len is 0). */
  key: Uint8Array;
  /** iv_len bytes read from sqe.iv (empty when iv_len is 0). */
  iv: Uint8Array;
  /** Index of the hardware queue the request came from (per-queue stream state is keyed by it). */
  queue: number;
}

/** What process() returns: the operation's result on real bytes. */
export interface AccelResult {
  /** 0 or -errno. */
  status: number;
  /** Source bytes used (default: all of them). */
  consumed?: number;
  /** Output bytes (<= output.length). */
  produced: number;
  /** The bytes to DMA to dst (its first `produced` bytes are written). */
  output: Uint8Array;
  /** Engine busy time for this request, ns, when the timing model's formula does not fit the op. */
  serviceNs?: number;
}

/** A decoded submission descriptor. */
export type AccelSqe = ReturnType<typeof ACCEL_SQE.decode>;
/** A decoded completion record. */
export type AccelCqe = ReturnType<typeof ACCEL_CQE.decode>;

/** Counters of one accelerator. */
export interface AccelStats {
  submitted: number;
  completed: number;
  errors: number;
  pageRequests: number;
  bytesIn: number;
  bytesOut: number;
}

/** One hardware queue (queue pair). */
class HwQueue {
  /** The uacce queue using it, null when free. */
  q: UacceQueue | null = null;
  pasid = 0;
  started = false;
  /** DUS pages (kernel memory, mapped to user space), empty when free. */
  ring: number[] = [];
  sqHead = 0;
  sqTail = 0;
  cqTail = 0;
  /** Fetched, not yet completed. */
  inflight = 0;
  doorbellNs = 0;
  fetchScheduled = false;
  constructor(readonly index: number) {}
}

interface Req {
  hwq: HwQueue;
  sqe: AccelSqe;
  pasid: number;
  submittedNs: number;
  faults: number;
  /** Page requests in a row for the current page. */
  retries: number;
  phase: 'queued' | 'read' | 'service' | 'write';
  /** Read phase: the segments to read in order (key, iv, src) and the one being read. */
  segs: Array<{ addr: number; buf: Uint8Array }>;
  seg: number;
  off: number;
  src: Uint8Array;
  output: Uint8Array;
  consumed: number;
  produced: number;
  engine: number;
  done: boolean;
  /** Pages the engine translated for this request: DMA in flight on them until it completes. */
  dmaPfns: number[];
}

/**
 * VirtualAccelerator - extend it, implement process(), and have a plugin realize() it. Made by the
 * subclass constructor (cannot fail); realize() probes and registers the device (0 or -errno);
 * unrealize() hot-removes it. An interrupt callback may be set in `onInterrupt`.
 */
export abstract class VirtualAccelerator {
  readonly config: Readonly<Required<AcceleratorConfig>>;
  readonly layout: AccelDusLayout;
  readonly stats: AccelStats = {
    submitted: 0,
    completed: 0,
    errors: 0,
    pageRequests: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
  /** The uacce device while realized. */
  uacce: UacceDevice | null = null;
  /** The parent device on the IOMMU while realized. */
  parent: Device | null = null;
  /** The parent's IOMMU side (dev->iommu) while realized. */
  idev: IommuDevice | null = null;
  /** Called at each completion (an MSI), after the CQE is visible. */
  onInterrupt: ((q: UacceQueue, cqe: AccelCqe) => void) | null = null;

  private readonly hwqs: HwQueue[];
  private readonly engines: Array<Req | null>;
  private readonly waiting: Req[] = [];
  private mmioBase = -1;
  private grpid = 0;
  private removing = false;
  private checksAdded = false;

  private readonly onFetch = (h: unknown): void => this.fetch(h as HwQueue);
  private readonly onDma = (r: unknown): void => this.dmaStep(r as Req);
  private readonly onPageRequest = (r: unknown): void => this.pageRequest(r as Req);
  private readonly onReadDone = (r: unknown): void => this.readDone(r as Req);
  private readonly onServiceDone = (r: unknown): void => this.startWrite(r as Req);
  private readonly onFinish = (r: unknown): void => this.complete(r as Req, 0);

  constructor(
    protected readonly kernel: Kernel,
    config: AcceleratorConfig,
  ) {
    this.config = Object.freeze({
      queues: 4,
      engines: 1,
      ringDepth: 64,
      sva: true,
      ats: true,
      maxLen: 64 << 20,
      maxFaultRetries: 8,
      sqeFlags: 0,
      ...config,
    });
    this.layout = accelDusLayout(this.config.ringDepth);
    this.hwqs = Array.from({ length: this.config.queues }, (_, i) => new HwQueue(i));
    this.engines = new Array<Req | null>(this.config.engines).fill(null);
  }

  /**
   * process - the operation on real bytes (the subclass's engine). `op` is the op name, `src` the
   * bytes read from the source buffer (src_len of them). Must not throw for bad input: return a
   * negative status (a throw completes the request -EIO).
   */
  protected abstract process(
    op: string,
    src: Uint8Array,
    sqe: AccelSqe,
    params: AccelRequestParams,
  ): AccelResult;

  /**
   * queueReset - hardware queue `index` was given to a new user or released: forget any state
   * kept for it (an unfinished stream). The base keeps none.
   */
  protected queueReset(_index: number): void {}

  /** The device path, /dev/<name>-<id>, while realized. */
  get devPath(): string | null {
    return this.uacce ? `/dev/${this.uacce.name}` : null;
  }

  /** Requests not yet completed (queued or on an engine). */
  get busy(): number {
    return this.waiting.length + this.engines.filter((e) => e).length;
  }

  /**
   * realize - probe the parent on the IOMMU (SVA, ATS), add it to the IOPF queue, claim the
   * doorbell MMIO pages and register the uacce device. Returns 0 or -errno (nothing left behind).
   */
  realize(): number {
    if (this.uacce) return -ERRNO.EBUSY;
    const k = this.kernel;
    const c = this.config;
    this.removing = false;
    if (!this.checksAdded) {
      k.addInvariantCheck(`accel ${c.name}`, () => this.checkInvariants());
      this.checksAdded = true;
    }
    const parent = new Device({ name: c.parentName });
    try {
      this.idev = k.iommu.iommuProbeDevice(parent, { ats: c.ats, sva: c.sva });
    } catch (e) {
      return e instanceof KernelError ? e.errno : -ERRNO.EINVAL;
    }
    this.parent = parent;
    if (c.sva) k.iopf.iopfQueueAddDevice(this.idev);
    this.mmioBase = k.mmCore.iomem.register(`${c.name}-doorbell`, c.queues, {
      write: (off, src) => this.doorbell(off, src),
    });
    let u: UacceDevice;
    try {
      u = uacceAlloc(k.uacce, parent, { name: c.name, flags: c.sva ? UACCE_DEV_SVA : 0, ops: this.uacceOps });
    } catch (e) {
      this.teardown();
      return e instanceof KernelError ? e.errno : -ERRNO.ENOMEM;
    }
    u.apiVer = c.apiVer;
    u.algs = c.algorithms.join('\n');
    u.qfPgNum[UACCE_QFRT_MMIO] = 1;
    u.qfPgNum[UACCE_QFRT_DUS] = this.layout.pages;
    u.priv = this;
    const r = uacceRegister(u);
    if (r) {
      uacceRemove(u);
      this.teardown();
      return r;
    }
    this.uacce = u;
    return 0;
  }

  /**
   * unrealize - hot removal (the driver's remove): uacceRemove stops every open queue (its
   * requests complete with -ENODEV in the CQ), drops the rings, unbinds and zaps the user
   * mappings (later accesses EFAULT); then the IOPF, MMIO and IOMMU state go. Idempotent.
   */
  unrealize(): void {
    if (!this.uacce) return;
    this.removing = true;
    uacceRemove(this.uacce);
    this.uacce = null;
    this.teardown();
  }

  /**
   * checkInvariants - the device's own bookkeeping: every live request sits in exactly one place
   * (the wait list or its engine) and is counted by its queue; a free queue holds no rings and
   * no requests; a used queue's rings are kernel pages. Empty when all holds.
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    const live = new Map<HwQueue, number>();
    for (const r of this.waiting) {
      if (r.done || r.engine !== -1) out.push(`waiting request tag ${r.sqe.tag} is done or on an engine`);
      live.set(r.hwq, (live.get(r.hwq) ?? 0) + 1);
    }
    this.engines.forEach((r, e) => {
      if (!r) return;
      if (r.done || r.engine !== e) out.push(`engine ${e} holds a finished or misfiled request`);
      live.set(r.hwq, (live.get(r.hwq) ?? 0) + 1);
    });
    const flags = this.kernel.phys.frames.flags;
    for (const h of this.hwqs) {
      const n = live.get(h) ?? 0;
      if (n !== h.inflight) out.push(`queue ${h.index}: ${h.inflight} in flight counted, ${n} found`);
      if (!h.q && (h.ring.length || n)) out.push(`free queue ${h.index} holds rings or requests`);
      if (h.q && h.ring.length !== this.layout.pages)
        out.push(`queue ${h.index}: ${h.ring.length} ring pages`);
      for (const pfn of h.ring)
        if (!(flags[pfn] & PG_slab)) out.push(`queue ${h.index}: ring page ${pfn} is not kernel memory`);
    }
    if (!this.uacce && this.busy) out.push(`${this.busy} request(s) left after removal`);
    return out;
  }

  private teardown(): void {
    const k = this.kernel;
    if (this.idev && k.iopf.hasDevice(this.idev)) k.iopf.iopfQueueRemoveDevice(this.idev);
    if (this.mmioBase >= 0) k.mmCore.iomem.release(this.mmioBase);
    this.mmioBase = -1;
    if (this.parent) k.iommu.iommuReleaseDevice(this.parent);
    this.parent = null;
    this.idev = null;
  }

  /** The uacce_ops of every VirtualAccelerator (hisi_qm_uacce_ops-like). */
  private readonly uacceOps: UacceOps = {
    getAvailableInstances: () => this.hwqs.filter((h) => !h.q).length,
    getQueue: (_u, pasid, q) => this.getQueue(pasid, q),
    putQueue: (q) => this.putQueue(q),
    startQueue: (q) => {
      (q.priv as HwQueue).started = true;
      return 0;
    },
    stopQueue: (q) => this.stopQueue(q),
    isQUpdated: (q) => {
      const h = q.priv as HwQueue | null;
      return !!h && h.ring.length > 0 && this.ctrl(h).cq_head !== h.cqTail;
    },
    mmap: (q, vma, qfr) => {
      const h = q.priv as HwQueue;
      const size = vma.end - vma.start;
      if (qfr.type === UACCE_QFRT_MMIO) {
        if (size !== PAGE_SIZE) return -ERRNO.EINVAL;
        vma.flags |= VM_IO;
        return remapPfnRange(vma, vma.start, this.mmioBase + h.index, size);
      }
      if (qfr.type !== UACCE_QFRT_DUS || size !== this.layout.size) return -ERRNO.EINVAL;
      for (let i = 0; i < h.ring.length; i++) {
        const r = vmInsertPage(vma, vma.start + i * PAGE_SIZE, h.ring[i]);
        if (r) return r;
      }
      return 0;
    },
  };

  private getQueue(pasid: number, q: UacceQueue): number {
    const h = this.hwqs.find((x) => !x.q);
    if (!h) return -ERRNO.EBUSY;
    const phys = this.kernel.phys;
    const ring: number[] = [];
    for (let i = 0; i < this.layout.pages; i++) {
      const pfn = phys.allocPages(GFP_KERNEL, 0);
      if (pfn < 0) {
        for (const p of ring) this.freeRingPage(p);
        return -ERRNO.ENOMEM;
      }
      // Kernel memory (dma_alloc_coherent): not movable, not on the LRU.
      phys.frames.flags[pfn] |= PG_slab;
      this.kernel.mmCore.data.clear(pfn);
      ring.push(pfn);
    }
    Object.assign(h, { q, pasid, ring, started: false, sqHead: 0, sqTail: 0, cqTail: 0, inflight: 0 });
    this.queueReset(h.index);
    this.writeCtrl(h);
    q.priv = h;
    return 0;
  }

  private freeRingPage(pfn: number): void {
    this.kernel.phys.frames.flags[pfn] &= ~PG_slab;
    putPage(this.kernel.mmCore, pfn);
  }

  private putQueue(q: UacceQueue): void {
    const h = q.priv as HwQueue;
    this.cancel(h, -ERRNO.ENODEV);
    // The user mapping may still hold references; the pages go when it is unmapped.
    for (const pfn of h.ring) this.freeRingPage(pfn);
    h.ring = [];
    h.q = null;
    h.started = false;
    q.priv = null;
    this.queueReset(h.index);
  }

  private stopQueue(q: UacceQueue): void {
    const h = q.priv as HwQueue;
    h.started = false;
    // PUT_Q cancels what the queue had in flight; hot removal reports the device is gone.
    this.cancel(h, this.removing ? -ERRNO.ENODEV : -ERRNO.ECANCELED);
    // Unbinding must not race page requests still in the IOPF pipeline (iopf_queue_flush_dev).
    if (this.idev && this.kernel.iopf.hasDevice(this.idev)) this.kernel.iopf.iopfQueueFlushDev(this.idev);
  }

  /** Complete every request of `h` with `status` (queued ones and those on an engine). */
  private cancel(h: HwQueue, status: number): void {
    for (const r of this.waiting.filter((x) => x.hwq === h)) this.complete(r, status);
    for (const r of this.engines) if (r && r.hwq === h) this.complete(r, status);
  }

  // ---- the rings ----

  private ctrl(h: HwQueue) {
    const buf = new Uint8Array(ACCEL_QUEUE_CTRL.size);
    this.kernel.mmCore.data.read(h.ring[0], 0, buf.length, buf, 0);
    return ACCEL_QUEUE_CTRL.decode(buf);
  }

  private writeCtrl(h: HwQueue): void {
    // Only the device-owned words: cq_head belongs to user space.
    const bytes = ACCEL_QUEUE_CTRL.encode({
      sq_tail: h.sqTail,
      sq_head: h.sqHead,
      cq_tail: h.cqTail,
      sq_depth: this.layout.sqDepth,
      cq_depth: this.layout.cqDepth,
    });
    const data = this.kernel.mmCore.data;
    const headOff = ACCEL_QUEUE_CTRL.offsetOf('cq_head');
    data.write(h.ring[0], 0, bytes, 0, headOff);
    data.write(h.ring[0], headOff + 4, bytes, headOff + 4, bytes.length - headOff - 4);
  }

  /** Read or write `len` bytes at byte `off` of the DUS region of `h`. */
  private dusIo(h: HwQueue, off: number, buf: Uint8Array, write: boolean): void {
    const data = this.kernel.mmCore.data;
    for (let done = 0; done < buf.length;) {
      const pfn = h.ring[Math.floor((off + done) / PAGE_SIZE)];
      const po = (off + done) % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - po, buf.length - done);
      if (write) data.write(pfn, po, buf, done, n);
      else data.read(pfn, po, n, buf, done);
      done += n;
    }
  }

  private doorbell(off: number, src: Uint8Array): void {
    const h = this.hwqs[Math.floor(off / PAGE_SIZE)];
    // A 32-bit store, or a 64-bit one whose low word is the tail (as UADK writes qm doorbells).
    if (!h || off % PAGE_SIZE !== ACCEL_DB_SQ_TAIL || (src.length !== 4 && src.length !== 8)) return;
    // A doorbell on a queue that is not started is dropped, as the hardware ignores it.
    if (!h.q || !h.started) return;
    h.sqTail = new DataView(src.buffer, src.byteOffset, 4).getUint32(0, true);
    h.doorbellNs = this.kernel.scheduler.now();
    this.scheduleFetch(h, this.config.timing.doorbellNs);
  }

  private scheduleFetch(h: HwQueue, delay: number): void {
    if (h.fetchScheduled) return;
    h.fetchScheduled = true;
    this.kernel.scheduler.after(delay, this.onFetch, h);
  }

  /** Fetch descriptors up to sq_tail while the CQ has room for their completions. */
  private fetch(h: HwQueue): void {
    h.fetchScheduled = false;
    if (!h.q || !h.started || h.ring.length === 0) return;
    const cqHead = this.ctrl(h).cq_head;
    const buf = new Uint8Array(ACCEL_SQE.size);
    while (h.sqHead !== h.sqTail && (h.cqTail + h.inflight - cqHead) >>> 0 < this.layout.cqDepth) {
      this.dusIo(h, this.layout.sqOff + (h.sqHead % this.layout.sqDepth) * ACCEL_SQE.size, buf, false);
      h.sqHead = (h.sqHead + 1) >>> 0;
      h.inflight++;
      this.stats.submitted++;
      this.waiting.push({
        hwq: h,
        sqe: ACCEL_SQE.decode(buf),
        pasid: h.pasid,
        submittedNs: h.doorbellNs,
        faults: 0,
        retries: 0,
        phase: 'queued',
        segs: [],
        seg: 0,
        off: 0,
        src: new Uint8Array(0),
        output: new Uint8Array(0),
        consumed: 0,
        produced: 0,
        engine: -1,
        done: false,
        dmaPfns: [],
      });
    }
    this.writeCtrl(h);
    this.dispatch();
  }

  /**
   * Give waiting requests to free engines, oldest first; a stream request waits while an earlier
   * stream request of its queue is on an engine (a stream's chunks go through in order).
   */
  private dispatch(): void {
    for (let e = 0; e < this.engines.length && this.waiting.length; e++) {
      if (this.engines[e]) continue;
      const i = this.waiting.findIndex((w) => !this.streamBlocked(w));
      if (i < 0) return;
      const r = this.waiting.splice(i, 1)[0];
      this.engines[e] = r;
      r.engine = e;
      this.start(r);
    }
  }

  private streamBlocked(w: Req): boolean {
    if (!(w.sqe.flags & ACCEL_SQE_F_STREAM)) return false;
    return this.engines.some(
      (r) => r !== null && r.hwq === w.hwq && (r.sqe.flags & ACCEL_SQE_F_STREAM) !== 0,
    );
  }

  private start(r: Req): void {
    const s = r.sqe;
    const op = ACCEL_OP_NAMES[s.op];
    if (!op || !this.config.ops.includes(op) || (s.flags & ~this.config.sqeFlags) !== 0)
      return this.complete(r, -ERRNO.EOPNOTSUPP);
    if (s.src_len > this.config.maxLen || s.dst_len > this.config.maxLen)
      return this.complete(r, -ERRNO.EINVAL);
    r.phase = 'read';
    r.src = new Uint8Array(s.src_len);
    r.segs = [];
    if (s.key_len > 0) r.segs.push({ addr: s.key, buf: new Uint8Array(s.key_len) });
    if (s.iv_len > 0) r.segs.push({ addr: s.iv, buf: new Uint8Array(s.iv_len) });
    r.segs.push({ addr: s.src, buf: r.src });
    r.seg = 0;
    r.off = 0;
    this.dmaStep(r);
  }

  // ---- the DMA engine ----

  /**
   * Move bytes of the current phase page by page through the IOMMU; stop at a translation fault
   * (page request after the translation time so far) or finish the phase.
   */
  private dmaStep(r: Req): void {
    if (r.done) return;
    const write = r.phase === 'write';
    const seg = write ? null : r.segs[r.seg];
    const base = seg ? seg.addr : r.sqe.dst;
    const buf = seg ? seg.buf : r.output;
    const len = seg ? seg.buf.length : r.produced;
    const idev = this.idev!;
    const mm = this.kernel.mmCore;
    const dma = dmaInflight(mm);
    let ns = 0;
    while (r.off < len) {
      const va = base + r.off;
      const po = va % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - po, len - r.off);
      const pfn = iommuTranslate(idev, r.pasid, va, write);
      ns += idev.lastTranslationNs;
      if (pfn === TRANSLATION_FAULT && r.pasid !== 0) {
        this.kernel.scheduler.after(ns, this.onPageRequest, r);
        return;
      }
      if (pfn < 0) {
        // TRANSLATION_ABORT (or a fault without a PASID to report it): the access is refused.
        r.off = len;
        this.kernel.scheduler.after(ns, (x) => this.complete(x as Req, -ERRNO.EFAULT), r);
        return;
      }
      r.retries = 0;
      if (!IoMemory.isIoPfn(pfn)) {
        dma.begin(pfn);
        r.dmaPfns.push(pfn);
      }
      if (IoMemory.isIoPfn(pfn)) {
        // Peer-to-peer to another device's MMIO.
        if (write) mm.iomem.write(pfn, po, buf.subarray(r.off, r.off + n));
        else mm.iomem.read(pfn, po, buf.subarray(r.off, r.off + n));
      } else if (write) mm.data.write(pfn, po, buf, r.off, n);
      else mm.data.read(pfn, po, n, buf, r.off);
      r.off += n;
    }
    if (!write && r.seg + 1 < r.segs.length) {
      // The next segment of the read phase (key -> iv -> src) after this one's translations.
      r.seg++;
      r.off = 0;
      this.kernel.scheduler.after(ns, this.onDma, r);
      return;
    }
    this.kernel.scheduler.after(ns, write ? this.onFinish : this.onReadDone, r);
  }

  private pageRequest(r: Req): void {
    if (r.done) return;
    if (++r.retries > this.config.maxFaultRetries) return this.complete(r, -ERRNO.EFAULT);
    r.faults++;
    this.stats.pageRequests++;
    const write = r.phase === 'write';
    const va = (write ? r.sqe.dst : r.segs[r.seg].addr) + r.off;
    const iopf = this.kernel.iopf;
    iopf.reportPageRequest(
      this.idev!,
      {
        flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
        pasid: r.pasid,
        grpid: this.grpid++ & 0x1ff, // PRI page request group index: 9 bits
        perm: write ? IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE : IOMMU_FAULT_PERM_READ,
        addr: va - (va % PAGE_SIZE),
      },
      (code) => {
        if (r.done) return;
        // SUCCESS: retry the translation after the device's retry delay; INVALID or FAILURE:
        // the access is bad, do not retry.
        if (code === IOMMU_PAGE_RESP_SUCCESS) this.kernel.scheduler.after(iopf.retryNs, this.onDma, r);
        else this.complete(r, -ERRNO.EFAULT);
      },
    );
  }

  private readDone(r: Req): void {
    if (r.done) return;
    let res: AccelResult;
    try {
      const params: AccelRequestParams = {
        key: r.sqe.key_len > 0 ? r.segs[0].buf : EMPTY,
        iv: r.sqe.iv_len > 0 ? r.segs[r.sqe.key_len > 0 ? 1 : 0].buf : EMPTY,
        queue: r.hwq.index,
      };
      res = this.process(ACCEL_OP_NAMES[r.sqe.op], r.src, r.sqe, params);
    } catch {
      res = { status: -ERRNO.EIO, produced: 0, output: new Uint8Array(0) };
    }
    r.consumed = Math.min(res.consumed ?? r.src.length, r.src.length);
    r.produced = res.status < 0 ? 0 : Math.min(res.produced, res.output.length);
    r.output = res.output;
    const busyNs =
      res.serviceNs !== undefined && Number.isFinite(res.serviceNs) && res.serviceNs >= 0
        ? Math.round(res.serviceNs)
        : accelServiceNs(this.config.timing, Math.max(r.consumed, r.produced));
    if (res.status < 0) {
      this.kernel.scheduler.after(
        this.config.timing.perRequestNs,
        (x) => this.complete(x as Req, res.status),
        r,
      );
      return;
    }
    if (r.produced > r.sqe.dst_len) {
      this.kernel.scheduler.after(busyNs, (x) => this.complete(x as Req, -ERRNO.ENOSPC), r);
      return;
    }
    r.phase = 'service';
    this.kernel.scheduler.after(busyNs, this.onServiceDone, r);
  }

  private startWrite(r: Req): void {
    if (r.done) return;
    r.phase = 'write';
    r.off = 0;
    this.dmaStep(r);
  }

  /** Write the completion, free the engine, signal, and move on. */
  private complete(r: Req, status: number): void {
    if (r.done) return;
    r.done = true;
    if (r.dmaPfns.length) {
      const dma = dmaInflight(this.kernel.mmCore);
      for (const pfn of r.dmaPfns) dma.end(pfn);
      r.dmaPfns = [];
    }
    const h = r.hwq;
    if (r.engine >= 0) this.engines[r.engine] = null;
    else this.waiting.splice(this.waiting.indexOf(r), 1);
    h.inflight--;
    this.stats.completed++;
    if (status < 0) this.stats.errors++;
    else {
      this.stats.bytesIn += r.consumed;
      this.stats.bytesOut += r.produced;
    }
    const cqe: AccelCqe = {
      tag: r.sqe.tag,
      status,
      faults: r.faults,
      consumed: status < 0 ? 0 : r.consumed,
      produced: status < 0 ? 0 : r.produced,
      latency_ns: this.kernel.scheduler.now() - r.submittedNs,
    };
    const tp = this.kernel.trace;
    if (tp.enabled('accel_request'))
      tp.emit('accel_request', {
        dev: this.uacce?.name ?? this.config.name,
        queue: h.index,
        tag: r.sqe.tag,
        op: ACCEL_OP_NAMES[r.sqe.op] ?? String(r.sqe.op),
        submittedNs: r.submittedNs,
        status,
        faults: r.faults,
        bytes: cqe.consumed,
      });
    const q = h.q;
    if (q && h.ring.length) {
      this.dusIo(
        h,
        this.layout.cqOff + (h.cqTail % this.layout.cqDepth) * ACCEL_CQE.size,
        ACCEL_CQE.encode(cqe),
        true,
      );
      h.cqTail = (h.cqTail + 1) >>> 0;
      this.writeCtrl(h);
      this.onInterrupt?.(q, cqe);
      if (h.sqHead !== h.sqTail) this.scheduleFetch(h, 0);
    }
    this.dispatch();
  }
}
