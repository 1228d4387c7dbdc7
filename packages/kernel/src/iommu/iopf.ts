/**
 * The IO page fault pipeline: what happens between a device's PCIe page request (PRI) and the
 * page response that lets it retry (drivers/iommu/io-pgfault.c, the SVA handler of
 * drivers/iommu/iommu-sva.c, and the page-request-queue thread of an IOMMU driver such as
 * arm_smmu_priq_thread). This is why an IO page fault costs 3-80x a CPU fault (CALIBRATION.md 1):
 *
 *   device -> IOMMU page request queue -> interrupt -> IRQ thread (iommu_report_device_fault)
 *          -> workqueue (iommu_sva_iopf_handler) -> kworker (iommu_sva_handle_mm, handle_mm_fault)
 *          -> page response -> device retries the translation.
 *
 * Every time comes from the IOMMU profile (IommuProfile, whose figureSources cite each figure):
 * irqCoalesceNs and irqLatencyNs until the IRQ thread runs, wqDispatchNs until a kworker picks the
 * group up, then on a CPU of the CpuSet the faults' own CPU time (what mm charges) plus one service
 * time per fault drawn by sampleIopfServiceNs (log-normal iopfMedianNs/iopfSigma mixed with the
 * iopfTail* mode, clamped to [iopfMinNs, iopfMaxNs], plus iopfPerInflightNs per other fault in
 * flight), then responseNs until the response reaches the device, which retries after retryNs.
 * The queue depth is prqDepth.
 */
import { handleMmFault } from '../mm/fault';
import {
  FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  VM_FAULT_ERROR,
} from '../mm/fault-flags';
import type { MmStruct } from '../mm/mm-struct';
import { VM_EXEC, VM_READ, VM_WRITE } from '../mm/vm-flags';
import { CPU_ANY, type CpuSet } from '../sim/cpus';
import type { Tracepoints } from '../sim/tracepoints';
import type { IDmesg, IRng, IRngStreams, IScheduler, IVmstat } from '../sim/types';
import { VM } from '../sim/vmstat';
import { ERRNO } from '../uapi/errno';
import { iopfConfigDefaults, type IopfConfig } from './iopf-config';
import { sampleIopfServiceNs } from './profiles';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IOMMU_PAGE_RESP_INVALID,
  IOMMU_PAGE_RESP_SUCCESS,
  type IommuProfile,
  type PageRequest,
} from './types';

/**
 * IopfDone - how a page response reaches the device: called with the response code
 * (IOMMU_PAGE_RESP_SUCCESS: retry the translation; INVALID: the access is bad, do not retry).
 */
export type IopfDone = (code: number) => void;

/**
 * IopfMmResolver - the fault handler lookup (find_fault_handler): the address space a device's
 * PASID is bound to (its SVA domain's mm), or null when no SVA domain is attached to that PASID.
 */
export type IopfMmResolver<D> = (dev: D, pasid: number) => MmStruct | null;

/** IopfQueueOptions - what an IopfQueue needs from the kernel and the IOMMU that owns it. */
export interface IopfQueueOptions<D> {
  /** The queue's name (iopf_queue_alloc's: the workqueue is "iopf_queue/<name>"). */
  name: string;
  /** The kernel's clock and event queue. */
  scheduler: IScheduler;
  /** The CPUs the workqueue's kworkers run on. */
  cpus: CpuSet;
  /** The IOMMU's latency/size profile: every time and the queue depth come from it. */
  profile: IommuProfile;
  /** The kernel's RNG streams; service times come from the config's stream ('iopf'). */
  rng: IRngStreams;
  /** The kernel's counters (iopf_count). */
  vmstat: IVmstat;
  /** The SVA bonds: the mm bound to (dev, pasid). */
  resolveMm: IopfMmResolver<D>;
  /** The kernel log, for the driver's overflow and missing-handler messages. */
  dmesg?: IDmesg | null;
  /** A device's name in log lines (dev_name). */
  devName?: (dev: D) => string;
  /** Where to emit `iommu_page_response` for each group answered, if anywhere. */
  trace?: Tracepoints | null;
  /** Overrides of IOPF_CONFIG_DEFAULTS. */
  config?: Partial<IopfConfig>;
}

/** IopfLatencySummary - page-response latencies of handled groups, in ns. */
export interface IopfLatencySummary {
  /** Groups measured. */
  count: number;
  minNs: number;
  meanNs: number;
  maxNs: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
}

/** IopfStats - what one IopfQueue did since it was created (or since resetStats). */
export interface IopfStats {
  /** Page requests the kernel read from the queue (each also counts in vmstat iopf_count). */
  faults: number;
  /** Page request groups handled in a work item (one response each). */
  groups: number;
  /** Interrupts taken (several requests can share one). */
  interrupts: number;
  /** Page requests the hardware dropped because the queue was full. */
  overflows: number;
  /** Times the queue entered the overflow condition. */
  overflowEvents: number;
  /** Automatic SUCCESS responses the hardware sent for dropped LAST_PAGE requests. */
  autoResponses: number;
  /** Partial (non-LAST_PAGE) requests thrown away without a response. */
  discardedPartials: number;
  /** PASID stop markers discarded by the driver. */
  stopMarkers: number;
  /** Responses the kernel sent, by code. */
  success: number;
  invalid: number;
  /** CPU time of the work items (the mm faults plus the service times), in ns. */
  cpuNs: number;
  /** The part of cpuNs that handle_mm_fault charged. */
  mmNs: number;
  /** Page requests accepted and not yet answered, discarded or dropped. */
  inflight: number;
  /** Latency from the LAST_PAGE request to its group's response at the device. */
  latency: IopfLatencySummary;
}

/**
 * iommuSvaHandleMm - resolve one page request as a remote fault on @mm (iommu_sva_handle_mm).
 * @prm: the page request.
 * @mm: the address space of the request's SVA domain.
 *
 * Return: IOMMU_PAGE_RESP_INVALID when the request has no PASID, the mm is exiting
 * (mmget_not_zero fails), no VMA covers the address, the VMA's vm_flags do not allow the
 * requested read/write/exec, or handle_mm_fault answers VM_FAULT_ERROR bits; else
 * IOMMU_PAGE_RESP_SUCCESS. Context: a kworker; the fault's CPU time goes to core.charge, so the
 * caller decides whom it is charged to (IopfQueue charges its CPU model, not a process).
 */
export function iommuSvaHandleMm(prm: PageRequest, mm: MmStruct): number {
  if (!(prm.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID)) return IOMMU_PAGE_RESP_INVALID;
  if (!mm.alive || mm.users <= 0) return IOMMU_PAGE_RESP_INVALID;
  const vma = mm.vmaLookup(prm.addr);
  if (!vma) return IOMMU_PAGE_RESP_INVALID;
  const perm = prm.perm;
  let access = 0;
  let faultFlags = FAULT_FLAG_REMOTE;
  if (perm & IOMMU_FAULT_PERM_READ) access |= VM_READ;
  if (perm & IOMMU_FAULT_PERM_WRITE) {
    access |= VM_WRITE;
    faultFlags |= FAULT_FLAG_WRITE;
  }
  if (perm & IOMMU_FAULT_PERM_EXEC) {
    access |= VM_EXEC;
    faultFlags |= FAULT_FLAG_INSTRUCTION;
  }
  if (!(perm & IOMMU_FAULT_PERM_PRIV)) faultFlags |= FAULT_FLAG_USER;
  if (access & ~vma.flags) return IOMMU_PAGE_RESP_INVALID;
  const ret = handleMmFault(vma, prm.addr, faultFlags);
  return ret & VM_FAULT_ERROR ? IOMMU_PAGE_RESP_INVALID : IOMMU_PAGE_RESP_SUCCESS;
}

/** One page request (struct iopf_fault), pooled: recycled once answered or thrown away. */
class IopfFault<D> implements PageRequest {
  dev: D | null = null;
  flags = 0;
  pasid = 0;
  grpid = 0;
  perm = 0;
  addr = 0;
  done: IopfDone | null = null;
  /** When the request reached the IOMMU. */
  arrivedNs = 0;
  /** Response code of a response sent for this record alone (error, overflow, removal). */
  code = 0;
  /** Next in its list: a device's partials, a group's faults, or the free pool. */
  next: IopfFault<D> | null = null;
}

/** A device registered with the queue (struct iommu_fault_param). */
class IopfDevParam<D> {
  /** Requests waiting for their group's LAST_PAGE request, in arrival order. */
  partialHead: IopfFault<D> | null = null;
  partialTail: IopfFault<D> | null = null;
  /** Groups reported and not yet answered (fault_param->faults), in report order. */
  pendingHead: IopfGroup<D> | null = null;
  pendingTail: IopfGroup<D> | null = null;

  constructor(readonly dev: D) {}
}

/** A page request group (struct iopf_group), pooled. */
class IopfGroup<D> {
  param: IopfDevParam<D> | null = null;
  mm: MmStruct | null = null;
  /** The group's faults in order: partials first, the LAST_PAGE request (last) at the end. */
  first: IopfFault<D> | null = null;
  last: IopfFault<D> | null = null;
  nr = 0;
  /** iommu_sva_handle_iopf has run (at the work item's start, or earlier in a flush). */
  handled = false;
  status = IOMMU_PAGE_RESP_SUCCESS;
  /** CPU time of the work item: the mm faults plus the service times. */
  costNs = 0;
  mmNs = 0;
  /** A response was sent (or removal answered it): no other may be (pending_node empty). */
  responded = false;
  prevPending: IopfGroup<D> | null = null;
  nextPending: IopfGroup<D> | null = null;
  /** Next in the free pool. */
  nextFree: IopfGroup<D> | null = null;
}

/**
 * LatencyHistogram - log-linear buckets in one Float64Array (HdrHistogram's layout): values below
 * 2^bits are exact, above it each power of two has 2^bits buckets. Recording allocates nothing.
 */
class LatencyHistogram {
  private readonly sub: number;
  private readonly counts: Float64Array;
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  constructor(private readonly bits: number) {
    if (!(Number.isInteger(bits) && bits >= 0 && bits <= 16))
      throw new RangeError(`iopf: latencySubBucketBits ${bits} out of range`);
    this.sub = 2 ** bits;
    // Doubles hold integers to 2^53: 53 exponents of sub buckets each cover every value.
    this.counts = new Float64Array(this.sub * (54 - bits));
  }

  record(ns: number): void {
    const v = ns > 0 ? Math.round(ns) : 0;
    this.counts[this.index(v)]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The value at quantile @q in [0, 1]: the middle of its bucket, kept within [min, max]. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const [lo, width] = this.bucket(i);
        const mid = lo + (width - 1) / 2;
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  private index(v: number): number {
    if (v < this.sub) return v;
    const e = v < 2 ** 32 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
    const shift = e - this.bits;
    const mantissa = Math.floor(v / 2 ** shift) - this.sub;
    return this.sub + shift * this.sub + mantissa;
  }

  /** Lowest value and width of bucket @i. */
  private bucket(i: number): [number, number] {
    if (i < this.sub) return [i, 1];
    const shift = Math.floor((i - this.sub) / this.sub);
    const mantissa = (i - this.sub) % this.sub;
    const width = 2 ** shift;
    return [(this.sub + mantissa) * width, width];
  }
}

/**
 * IopfQueue - one IOMMU's IO page fault pipeline (struct iopf_queue plus the hardware page
 * request queue and its interrupt), event-driven on the scheduler.
 *
 * A device registered with iopfQueueAddDevice() reports page requests with reportPageRequest().
 * Requests sit in the bounded hardware queue (profile.prqDepth) until an interrupt wakes the IRQ
 * thread; requests arriving within profile.irqCoalesceNs of the first share it. The IRQ thread
 * hands each request to iommu_report_device_fault: a request without LAST_PAGE waits as a partial
 * of its group (grpid); a LAST_PAGE request closes the group, which becomes one work item on the
 * unbound workqueue (so groups may complete out of order). The work item runs on a CPU of the
 * CpuSet for the mm faults' CPU time plus the service time, handles the group's faults in order
 * with sticky errors, and sends one response per group.
 *
 * @D: the device type; devices are told apart by identity (Map keys).
 */
export class IopfQueue<D> {
  readonly name: string;
  readonly profile: IommuProfile;
  private readonly scheduler: IScheduler;
  private readonly cpus: CpuSet;
  private readonly rng: IRng;
  private readonly vmstat: IVmstat;
  private readonly resolveMm: IopfMmResolver<D>;
  private readonly dmesg: IDmesg | null;
  private readonly devName: (dev: D) => string;
  private readonly trace: Tracepoints | null;
  private readonly devs = new Map<D, IopfDevParam<D>>();

  /** The hardware page request queue: a ring of prqDepth entries. */
  private readonly ring: Array<IopfFault<D> | null>;
  private ringHead = 0;
  private ringSize = 0;
  /** The queue dropped requests and the IRQ thread has not acknowledged it yet. */
  private overflow = false;
  private irqPending = false;
  private inflightNr = 0;

  private freeFaults: IopfFault<D> | null = null;
  private freeGroups: IopfGroup<D> | null = null;

  /** What handle_mm_fault charged while a work item ran. */
  private kworkerNs = 0;

  private counters = zeroCounters();
  private readonly latency: LatencyHistogram;

  private readonly onIrq = (): void => this.priqIrq();
  private readonly onQueueWork = (g: unknown): void =>
    this.cpus.runOn(CPU_ANY, this.onWork, this.onWorkDone, g);
  private readonly onWork = (g: unknown): number => this.iommuSvaHandleIopfWork(g as IopfGroup<D>);
  private readonly onWorkDone = (g: unknown): void => this.iopfWorkDone(g as IopfGroup<D>);
  private readonly onGroupResponse = (g: unknown): void => this.deliverGroupResponse(g as IopfGroup<D>);
  private readonly onFaultResponse = (f: unknown): void => this.deliverFaultResponse(f as IopfFault<D>);
  private readonly kworkerCharge = (ns: number): void => {
    this.kworkerNs += ns;
  };

  /**
   * @opts: the kernel services, the profile and the mm resolver (see IopfQueueOptions).
   *
   * Throws RangeError for a profile whose queue depth is not a positive integer or whose times are
   * negative. Release with iopfQueueFree() (iopf_queue_free).
   */
  constructor(opts: IopfQueueOptions<D>) {
    const cfg = { ...iopfConfigDefaults(), ...opts.config };
    checkProfile(opts.profile);
    this.name = opts.name;
    this.profile = opts.profile;
    this.scheduler = opts.scheduler;
    this.cpus = opts.cpus;
    this.rng = opts.rng.stream(cfg.rngStream);
    this.vmstat = opts.vmstat;
    this.resolveMm = opts.resolveMm;
    this.dmesg = opts.dmesg ?? null;
    this.devName = opts.devName ?? ((dev: D) => String(dev));
    this.trace = opts.trace ?? null;
    this.ring = new Array<IopfFault<D> | null>(opts.profile.prqDepth).fill(null);
    this.latency = new LatencyHistogram(cfg.latencySubBucketBits);
  }

  /**
   * retryNs - how long the device takes to retry the translation after a SUCCESS response
   * (profile.retryNs). The device model adds it after done(): the pipeline ends at the response.
   */
  get retryNs(): number {
    return this.profile.retryNs;
  }

  /**
   * iopfQueueAddDevice - let @dev's page requests be handled by this queue (iopf_queue_add_device).
   *
   * Return: 0, or -EBUSY when @dev is already added. Released by iopfQueueRemoveDevice().
   */
  iopfQueueAddDevice(dev: D): number {
    if (this.devs.has(dev)) return -ERRNO.EBUSY;
    this.devs.set(dev, new IopfDevParam(dev));
    return 0;
  }

  /** hasDevice - whether @dev is added to this queue. */
  hasDevice(dev: D): boolean {
    return this.devs.has(dev);
  }

  /**
   * reportPageRequest - a page request from @dev reaches the IOMMU (a PRI Page Request message).
   * @dev: the requesting device.
   * @req: the request; its fields are copied, so the caller may reuse the object.
   * @done: called once when a page response for this request reaches the device. A group gets one
   *   response, to its LAST_PAGE request; a partial request is answered on its own only when the
   *   kernel rejects it (INVALID: no SVA domain for its PASID, or @dev not added).
   *
   * When the queue is full (or in overflow) the request is dropped, as the SMMUv3 does
   * (IHI0070 8.1): a LAST_PAGE request gets an automatic SUCCESS response (the device retries the
   * translation and faults again later), a partial is silently lost. Otherwise an interrupt is
   * raised, profile.irqCoalesceNs + profile.irqLatencyNs after the first request it covers.
   *
   * Return: true when the request entered the queue, false when the hardware dropped it.
   * Context: any; posted, answers only through @done. Allocates nothing once the pools are warm.
   */
  reportPageRequest(dev: D, req: PageRequest, done?: IopfDone | null): boolean {
    const now = this.scheduler.now();
    const depth = this.ring.length;
    if (this.overflow || this.ringSize >= depth) {
      if (!this.overflow) {
        this.overflow = true;
        this.counters.overflowEvents++;
      }
      this.counters.overflows++;
      if (req.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE && !isStopMarker(req)) {
        const f = this.allocFault();
        f.done = done ?? null;
        f.code = IOMMU_PAGE_RESP_SUCCESS;
        this.counters.autoResponses++;
        this.scheduler.after(this.profile.responseNs, this.onFaultResponse, f);
      }
      return false;
    }
    const f = this.allocFault();
    f.dev = dev;
    f.flags = req.flags;
    f.pasid = req.pasid;
    f.grpid = req.grpid;
    f.perm = req.perm;
    f.addr = req.addr;
    f.done = done ?? null;
    f.arrivedNs = now;
    this.ring[(this.ringHead + this.ringSize) % depth] = f;
    this.ringSize++;
    this.inflightNr++;
    if (!this.irqPending) {
      this.irqPending = true;
      this.scheduler.after(this.profile.irqCoalesceNs + this.profile.irqLatencyNs, this.onIrq);
    }
    return true;
  }

  /**
   * iopfQueueFlushDev - make sure every fault @dev reported has been handled
   * (iopf_queue_flush_dev, preceded by the driver's flush of its hardware queue).
   *
   * The IRQ thread's work is done now (the whole hardware queue is drained, every device's
   * entries, as the driver's queue flush does; the pending interrupt later finds it empty) and
   * every group of @dev not yet handled is handled now, so no fault of @dev touches its address
   * space after this returns: what unbinding needs before the PASID is freed. A synchronous call
   * cannot wait in simulated time, so the work items still occupy their CPUs afterwards and the
   * responses travel at the simulated times (those of drained entries earlier than without the
   * flush). Partial requests stay (the kernel keeps them).
   *
   * Return: 0, or -ENODEV when @dev was never added. Context: the caller has stopped @dev's page
   * requests (a PASID stop), or new ones keep arriving afterwards.
   */
  iopfQueueFlushDev(dev: D): number {
    const param = this.devs.get(dev);
    if (!param) {
      this.warn('iopf-flush', `${this.name}: iopf_queue_flush_dev: ${this.devName(dev)} not in the queue`);
      return -ERRNO.ENODEV;
    }
    if (this.ringSize > 0) this.drainPriq();
    for (let g = param.pendingHead; g; g = g.nextPending) if (!g.handled) this.iommuSvaHandleIopf(g);
    return 0;
  }

  /**
   * iopfQueueRemoveDevice - stop handling @dev's page requests (iopf_queue_remove_device): its
   * partial requests are freed without a response and every group still pending is answered
   * IOMMU_PAGE_RESP_INVALID (the device must not retry). A group whose work item is already
   * queued still runs, as in the kernel, but sends no second response.
   *
   * Return: nothing; a WARN in dmesg when @dev was not added. Context: the IOMMU driver has turned
   * off PRI for @dev and flushed its hardware queue; requests of @dev still in it are answered
   * INVALID when the IRQ thread reads them.
   */
  iopfQueueRemoveDevice(dev: D): void {
    const param = this.devs.get(dev);
    if (!param) {
      this.warn(
        'iopf-remove',
        `${this.name}: iopf_queue_remove_device: ${this.devName(dev)} not in the queue`,
      );
      return;
    }
    this.discardPartials(param);
    let g = param.pendingHead;
    while (g) {
      const next = g.nextPending;
      g.prevPending = null;
      g.nextPending = null;
      g.responded = true;
      this.counters.invalid++;
      this.sendFaultResponse(g.last!.done, IOMMU_PAGE_RESP_INVALID);
      g = next;
    }
    param.pendingHead = null;
    param.pendingTail = null;
    this.devs.delete(dev);
  }

  /**
   * iopfQueueDiscardPartial - free every partial request of every device without a response
   * (iopf_queue_discard_partial), as the driver does after a queue overflow may have lost their
   * LAST_PAGE requests.
   *
   * Return: 0.
   */
  iopfQueueDiscardPartial(): number {
    for (const param of this.devs.values()) this.discardPartials(param);
    return 0;
  }

  /**
   * iopfQueueFree - remove every device (iopf_queue_free). Work items already queued still run;
   * their responses are suppressed.
   */
  iopfQueueFree(): void {
    for (const dev of [...this.devs.keys()]) this.iopfQueueRemoveDevice(dev);
  }

  /** queuedRequests - entries in the hardware queue, not yet read by the IRQ thread. */
  queuedRequests(): number {
    return this.ringSize;
  }

  /** inflight - page requests accepted and not yet answered, discarded or dropped. */
  inflight(): number {
    return this.inflightNr;
  }

  /**
   * stats - what the queue did: counts, CPU time and response latencies.
   *
   * Return: a fresh object the caller owns.
   */
  stats(): IopfStats {
    const h = this.latency;
    return {
      ...this.counters,
      inflight: this.inflightNr,
      latency: {
        count: h.count,
        minNs: h.count ? h.min : 0,
        meanNs: h.count ? h.sum / h.count : 0,
        maxNs: h.max,
        p50Ns: h.quantile(0.5),
        p90Ns: h.quantile(0.9),
        p99Ns: h.quantile(0.99),
      },
    };
  }

  /**
   * latencyQuantile - the group response latency at quantile @q (0.5: median), in ns; 0 before any
   * group was answered. Exact to within the histogram's precision (IopfConfig).
   */
  latencyQuantile(q: number): number {
    return this.latency.quantile(q);
  }

  /** resetStats - zero the counters and the latency histogram (inflight is state, not a stat). */
  resetStats(): void {
    this.counters = zeroCounters();
    this.latency.reset();
  }

  // ---- IRQ thread (the IOMMU driver's page request queue handler) ----

  private priqIrq(): void {
    this.irqPending = false;
    this.counters.interrupts++;
    this.drainPriq();
  }

  /** Read every entry, then acknowledge an overflow, as arm_smmu_priq_thread does. */
  private drainPriq(): void {
    const ring = this.ring;
    const depth = ring.length;
    while (this.ringSize > 0) {
      const f = ring[this.ringHead]!;
      ring[this.ringHead] = null;
      this.ringHead = (this.ringHead + 1) % depth;
      this.ringSize--;
      this.iommuReportDeviceFault(f);
    }
    if (this.overflow) {
      this.warn('iopf-overflow', `${this.name}: PRIQ overflow detected -- requests lost`);
      this.iopfQueueDiscardPartial();
      this.overflow = false;
    }
  }

  /** iommu_report_device_fault: keep a partial, or close its group and queue the work. */
  private iommuReportDeviceFault(f: IopfFault<D>): void {
    if (isStopMarker(f)) {
      // Drivers discard PASID stop markers before reporting (io-pgfault.c, intel prq.c).
      this.counters.stopMarkers++;
      this.inflightNr--;
      this.freeFault(f);
      return;
    }
    this.counters.faults++;
    this.vmstat.inc(VM.iopf_count);
    const dev = f.dev as D;
    const mm = f.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID ? this.resolveMm(dev, f.pasid) : null;
    const param = mm ? this.devs.get(dev) : undefined;
    if (!mm || !param) {
      this.warn(
        'iopf-nohandler',
        `${this.devName(dev)}: iopf (pasid ${f.pasid}) without domain attached or handler installed`,
      );
      this.iopfErrorResponse(f);
      return;
    }
    if (!(f.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE)) {
      f.next = null;
      if (param.partialTail) param.partialTail.next = f;
      else param.partialHead = f;
      param.partialTail = f;
      return;
    }
    const g = this.iopfGroupAlloc(param, f);
    g.mm = mm;
    this.iommuSvaIopfHandler(g);
  }

  /** iopf_group_alloc: the LAST_PAGE request and the partials of its grpid, oldest first. */
  private iopfGroupAlloc(param: IopfDevParam<D>, last: IopfFault<D>): IopfGroup<D> {
    const g = this.allocGroup();
    g.param = param;
    let tail: IopfFault<D> | null = null;
    let prev: IopfFault<D> | null = null;
    let p = param.partialHead;
    while (p) {
      const next = p.next;
      if (p.grpid === last.grpid) {
        if (prev) prev.next = next;
        else param.partialHead = next;
        if (param.partialTail === p) param.partialTail = prev;
        p.next = null;
        if (tail) tail.next = p;
        else g.first = p;
        tail = p;
        g.nr++;
      } else prev = p;
      p = next;
    }
    last.next = null;
    if (tail) tail.next = last;
    else g.first = last;
    g.last = last;
    g.nr++;
    g.prevPending = param.pendingTail;
    if (param.pendingTail) param.pendingTail.nextPending = g;
    else param.pendingHead = g;
    param.pendingTail = g;
    return g;
  }

  /** iommu_sva_iopf_handler: queue the group on the unbound workqueue. */
  private iommuSvaIopfHandler(g: IopfGroup<D>): void {
    this.scheduler.after(this.profile.wqDispatchNs, this.onQueueWork, g);
  }

  // ---- the kworker ----

  /** The work item's body: handle the group unless a flush already did. Returns its CPU time. */
  private iommuSvaHandleIopfWork(g: IopfGroup<D>): number {
    if (!g.handled) this.iommuSvaHandleIopf(g);
    return g.costNs;
  }

  /**
   * iommu_sva_handle_iopf: every fault in order, the first non-SUCCESS stopping the group. What
   * handle_mm_fault charges goes to the kworker (this queue), never to the process that owns the
   * mm or to whoever happens to be current.
   */
  private iommuSvaHandleIopf(g: IopfGroup<D>): void {
    g.handled = true;
    const mm = g.mm!;
    const core = mm.core;
    const p = this.profile;
    // Faults of other groups being handled meanwhile slow this one down (Vesely: 5-140 us).
    const others = this.inflightNr - g.nr;
    let status = IOMMU_PAGE_RESP_SUCCESS;
    let serviceNs = 0;
    const prevHook = core.chargeHook;
    this.kworkerNs = 0;
    core.chargeHook = this.kworkerCharge;
    try {
      for (let f = g.first; f !== null; f = f.next) {
        if (status !== IOMMU_PAGE_RESP_SUCCESS) break;
        status = iommuSvaHandleMm(f, mm);
        serviceNs += sampleIopfServiceNs(p, this.rng, others);
      }
    } finally {
      core.chargeHook = prevHook;
    }
    g.status = status;
    g.mmNs = this.kworkerNs;
    g.costNs = this.kworkerNs + serviceNs;
    this.counters.cpuNs += g.costNs;
    this.counters.mmNs += g.mmNs;
    this.counters.groups++;
  }

  /** The work item finished: iopf_group_response, unless removal already answered the group. */
  private iopfWorkDone(g: IopfGroup<D>): void {
    this.inflightNr -= g.nr;
    if (g.responded) {
      this.freeGroup(g);
      return;
    }
    g.responded = true;
    this.unlinkPending(g);
    if (g.status === IOMMU_PAGE_RESP_SUCCESS) this.counters.success++;
    else this.counters.invalid++;
    this.scheduler.after(this.profile.responseNs, this.onGroupResponse, g);
  }

  private deliverGroupResponse(g: IopfGroup<D>): void {
    const last = g.last!;
    const done = last.done;
    const code = g.status;
    this.latency.record(this.scheduler.now() - last.arrivedNs);
    if (this.trace !== null && this.trace.enabled('iommu_page_response'))
      this.trace.emit('iommu_page_response', {
        queue: this.name,
        dev: last.dev === null ? '' : this.devName(last.dev),
        pasid: last.pasid,
        addr: last.addr,
        nr: g.nr,
        arrivedNs: last.arrivedNs,
        code,
      });
    this.freeGroup(g);
    if (done) done(code);
  }

  /** iopf_error_response: INVALID for a request the kernel cannot route. */
  private iopfErrorResponse(f: IopfFault<D>): void {
    this.inflightNr--;
    this.counters.invalid++;
    f.code = IOMMU_PAGE_RESP_INVALID;
    this.scheduler.after(this.profile.responseNs, this.onFaultResponse, f);
  }

  /** A response for one record: take a record from the pool to carry it. */
  private sendFaultResponse(done: IopfDone | null, code: number): void {
    const f = this.allocFault();
    f.done = done;
    f.code = code;
    this.scheduler.after(this.profile.responseNs, this.onFaultResponse, f);
  }

  private deliverFaultResponse(f: IopfFault<D>): void {
    const done = f.done;
    const code = f.code;
    this.freeFault(f);
    if (done) done(code);
  }

  // ---- helpers ----

  private discardPartials(param: IopfDevParam<D>): void {
    let f = param.partialHead;
    while (f) {
      const next = f.next;
      this.inflightNr--;
      this.counters.discardedPartials++;
      this.freeFault(f);
      f = next;
    }
    param.partialHead = null;
    param.partialTail = null;
  }

  private unlinkPending(g: IopfGroup<D>): void {
    const param = g.param!;
    if (g.prevPending) g.prevPending.nextPending = g.nextPending;
    else if (param.pendingHead === g) param.pendingHead = g.nextPending;
    if (g.nextPending) g.nextPending.prevPending = g.prevPending;
    else if (param.pendingTail === g) param.pendingTail = g.prevPending;
    g.prevPending = null;
    g.nextPending = null;
  }

  private warn(key: string, msg: string): void {
    if (this.dmesg) this.dmesg.printkRatelimited(key, msg);
  }

  private allocFault(): IopfFault<D> {
    const f = this.freeFaults;
    if (f === null) return new IopfFault<D>();
    this.freeFaults = f.next;
    f.next = null;
    return f;
  }

  private freeFault(f: IopfFault<D>): void {
    f.dev = null;
    f.done = null;
    f.next = this.freeFaults;
    this.freeFaults = f;
  }

  private allocGroup(): IopfGroup<D> {
    const g = this.freeGroups;
    if (g === null) return new IopfGroup<D>();
    this.freeGroups = g.nextFree;
    g.nextFree = null;
    return g;
  }

  private freeGroup(g: IopfGroup<D>): void {
    let f = g.first;
    while (f) {
      const next = f.next;
      this.freeFault(f);
      f = next;
    }
    g.param = null;
    g.mm = null;
    g.first = null;
    g.last = null;
    g.nr = 0;
    g.handled = false;
    g.status = IOMMU_PAGE_RESP_SUCCESS;
    g.costNs = 0;
    g.mmNs = 0;
    g.responded = false;
    g.prevPending = null;
    g.nextPending = null;
    g.nextFree = this.freeGroups;
    this.freeGroups = g;
  }
}

/** A PASID stop marker: a LAST_PAGE request with a PASID asking for neither read nor write. */
function isStopMarker(req: PageRequest): boolean {
  return (
    (req.flags & (IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE | IOMMU_FAULT_PAGE_REQUEST_PASID_VALID)) ===
      (IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE | IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) &&
    (req.perm & (IOMMU_FAULT_PERM_READ | IOMMU_FAULT_PERM_WRITE)) === 0
  );
}

function zeroCounters(): Omit<IopfStats, 'inflight' | 'latency'> {
  return {
    faults: 0,
    groups: 0,
    interrupts: 0,
    overflows: 0,
    overflowEvents: 0,
    autoResponses: 0,
    discardedPartials: 0,
    stopMarkers: 0,
    success: 0,
    invalid: 0,
    cpuNs: 0,
    mmNs: 0,
  };
}

/** RangeError unless the profile's IOPF fields make sense. */
function checkProfile(p: IommuProfile): void {
  if (!(Number.isInteger(p.prqDepth) && p.prqDepth >= 1))
    throw new RangeError(`iopf: profile ${p.name}: prqDepth ${p.prqDepth} must be a positive integer`);
  const times: Array<keyof IommuProfile> = [
    'irqLatencyNs',
    'irqCoalesceNs',
    'wqDispatchNs',
    'responseNs',
    'retryNs',
    'iopfMedianNs',
    'iopfSigma',
    'iopfMinNs',
    'iopfMaxNs',
    'iopfPerInflightNs',
  ];
  for (const k of times) {
    const v = p[k] as number;
    if (!(v >= 0 && v !== Infinity)) throw new RangeError(`iopf: profile ${p.name}: ${k} = ${v}`);
  }
  if (p.iopfMinNs > p.iopfMaxNs)
    throw new RangeError(`iopf: profile ${p.name}: iopfMinNs ${p.iopfMinNs} > iopfMaxNs ${p.iopfMaxNs}`);
}
