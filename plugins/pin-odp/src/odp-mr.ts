/**
 * OdpMr - one On-Demand Paging memory region: the kernel half of an ODP registration
 * (drivers/infiniband/core/umem_odp.c's ib_umem_odp with mlx5's use of it). Instead of pinning,
 * the region subscribes an MMU interval notifier to its range and keeps a mirror of the CPU page
 * table (the umem's pfn list: one hmm pfn per page). The mirror is filled by the HMM driver loop
 * (mmu_interval_read_begin -> hmm_range_fault -> retry on -EBUSY -> mmu_interval_read_retry
 * under the driver lock), either as a snapshot of what is resident or faulting pages in, and it
 * is emptied over whatever range an invalidation covers (migration, compaction, reclaim, munmap,
 * fork's write-protect, mprotect...), after which mm may move, swap or free those pages freely.
 *
 * The device here is an SVA device: it translates through the process's page table, and the
 * IOTLB/ATC invalidation for that happens through the SVA domain's own MMU notifier. So the
 * mirror is the strategy's own record of what it made ready for the device (what mlx5 keeps in
 * the NIC's MTT), not something the device reads; the device faults through IOPF on whatever
 * the CPU page table lacks when it gets there.
 */
import {
  ERRNO,
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  MMU_NOTIFY_EVENT_NAMES,
  MmuIntervalNotifier,
  PAGE_SIZE,
  VM_WRITE,
  hmmPfnToPfn,
  hmmRangeFault,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  type HmmRange,
  type MmStruct,
  type MmuIntervalNotifierOps,
} from '@svasim/kernel';

/**
 * Pages per hmm_range_fault call: an invalidation during a call restarts only its batch. 512
 * pages (2 MiB) is one PMD's worth, what a fault in hmm_vma_fault covers at most.
 */
export const ODP_FAULT_BATCH = 512;
/** hmm_range_fault attempts per batch before -EBUSY (the kernel's HMM_RANGE_DEFAULT_TIMEOUT, 1 s). */
export const ODP_FAULT_RETRIES = 1000;

/** How the mirror of a range is filled. */
export type OdpFaultMode =
  /** Mirror only what is resident; fault nothing (registration, PREFETCH_NO_FAULT). */
  | 'snapshot'
  /** Fault in what is missing, for reading (PREFETCH). */
  | 'read'
  /** Fault in what is missing, writable where the VMA allows writing (PREFETCH_WRITE). */
  | 'write';

/** What the regions of one strategy did (the strategy owns the object; every region adds to it). */
export interface OdpStats {
  /** Regions registered / deregistered (deregistrations include those at exit). */
  registrations: number;
  deregistrations: number;
  /** Regions dropped because their process exited without deregistering. */
  deregAtExit: number;
  /** Prefetch requests (odp_advise_mr with a fault), and the pages they made valid. */
  prefetches: number;
  prefetchedPages: number;
  /** Valid pages found by the snapshots of registrations (already resident). */
  snapshotPages: number;
  /** Invalidation callbacks that reached a region, and the valid mirror entries they dropped. */
  invalidations: number;
  invalidatedPages: number;
  /** Invalidation callbacks by MMU_NOTIFY_* event name ('MIGRATE', 'CLEAR', 'UNMAP'...). */
  invalidationsByEvent: Record<string, number>;
  /** Driver-loop restarts: hmm_range_fault -EBUSY, or mmu_interval_read_retry true. */
  retries: number;
}

/** emptyOdpStats - a zeroed OdpStats. */
export function emptyOdpStats(): OdpStats {
  return {
    registrations: 0,
    deregistrations: 0,
    deregAtExit: 0,
    prefetches: 0,
    prefetchedPages: 0,
    snapshotPages: 0,
    invalidations: 0,
    invalidatedPages: 0,
    invalidationsByEvent: {},
    retries: 0,
  };
}

/** The interval notifier of one region (container_of through a subclass, as test-hmm does). */
class OdpNotifier extends MmuIntervalNotifier {
  constructor(readonly mr: OdpMr) {
    super();
  }
}

/**
 * mlx5_ib_invalidate_range: under the region's lock, record the sequence and drop the mirror's
 * entries of the overlap (ib_umem_odp_unmap_dma_pages). Never refuses: nothing here sleeps.
 */
const odpNotifierOps: MmuIntervalNotifierOps = {
  invalidate(sub, range, curSeq) {
    const mr = (sub as OdpNotifier).mr;
    mmuIntervalSetSeq(sub, curSeq);
    mr.invalidate(range.start, range.end, range.event);
    return true;
  },
};

/** OdpMr - see the file comment. Made and inserted by the strategy's odp_reg_mr. */
export class OdpMr {
  /** The region's pages. */
  readonly nrPages: number;
  /**
   * The mirror (the umem's pfn list): per page an hmm pfn value, HMM_PFN_VALID set while the
   * strategy holds the page ready for the device, 0 once an invalidation dropped it.
   */
  readonly pfns: Float64Array;
  /** Invalidation callbacks of this region, and the valid entries they dropped. */
  invalidations = 0;
  invalidatedPages = 0;
  private readonly notifier: OdpNotifier;

  constructor(
    /** The address space the region belongs to. */
    readonly mm: MmStruct,
    /** The key odp_reg_mr returned (the MR's lkey, in spirit). */
    readonly key: number,
    /** First byte (page aligned). */
    readonly start: number,
    /** One past the last byte (page aligned). */
    readonly end: number,
    private readonly stats: OdpStats,
  ) {
    this.nrPages = (end - start) / PAGE_SIZE;
    this.pfns = new Float64Array(this.nrPages);
    this.notifier = new OdpNotifier(this);
  }

  /** insert - subscribe the notifier (mmu_interval_notifier_insert). 0 or its -errno. */
  insert(): number {
    return mmuIntervalNotifierInsert(
      this.notifier,
      this.mm,
      this.start,
      this.end - this.start,
      odpNotifierOps,
    );
  }

  /** remove - unsubscribe (mmu_interval_notifier_remove) and forget the mirror. */
  remove(): void {
    mmuIntervalNotifierRemove(this.notifier);
    this.pfns.fill(0);
  }

  /** contains - whether [start, end) lies inside the region. */
  contains(start: number, end: number): boolean {
    return start >= this.start && end <= this.end;
  }

  /** isValid - whether the page holding @addr is mirrored (ready for the device). */
  isValid(addr: number): boolean {
    if (addr < this.start || addr >= this.end) return false;
    return (this.pfns[Math.floor((addr - this.start) / PAGE_SIZE)] & HMM_PFN_VALID) !== 0;
  }

  /** validPages - pages mirrored now. */
  validPages(): number {
    let n = 0;
    for (let i = 0; i < this.nrPages; i++) if (this.pfns[i] & HMM_PFN_VALID) n++;
    return n;
  }

  /** mirroredPfn - the pfn the mirror holds for @addr's page, or -1 when it holds none. */
  mirroredPfn(addr: number): number {
    if (!this.isValid(addr)) return -1;
    return hmmPfnToPfn(this.pfns[Math.floor((addr - this.start) / PAGE_SIZE)]);
  }

  /**
   * invalidate - the notifier fired for [start, end) with @event: drop the overlap's entries.
   * Context: an invalidation callback (also called directly by the ops above).
   */
  invalidate(start: number, end: number, event: number): void {
    const from = Math.max(0, Math.floor((start - this.start) / PAGE_SIZE));
    const to = Math.min(this.nrPages, Math.ceil((end - this.start) / PAGE_SIZE));
    let dropped = 0;
    const pfns = this.pfns;
    for (let i = from; i < to; i++) {
      if (pfns[i] & HMM_PFN_VALID) dropped++;
      pfns[i] = 0;
    }
    this.invalidations++;
    this.invalidatedPages += dropped;
    const s = this.stats;
    s.invalidations++;
    s.invalidatedPages += dropped;
    const name = MMU_NOTIFY_EVENT_NAMES[event] ?? String(event);
    s.invalidationsByEvent[name] = (s.invalidationsByEvent[name] ?? 0) + 1;
  }

  /**
   * fault - fill the mirror of pages [@from, @to) of the region by the HMM driver loop, one
   * ODP_FAULT_BATCH at a time (ib_umem_odp_map_dma_and_lock). With a fault mode, batches whose
   * pages are all mirrored already (writable where wanted) are skipped: a prefetch after an
   * invalidation redoes only what was dropped.
   *
   * Return: the valid pages of the batches it walked (>= 0; skipped batches do not count), or -EFAULT (a requested page cannot be made valid: no
   * VMA, PROT_NONE, VM_IO/VM_PFNMAP), -EPERM (svasim never asks a write of a read-only VMA, so
   * only if the VMA changed under the loop), -EBUSY (ODP_FAULT_RETRIES restarts). The failing
   * batch's entries are cleared; earlier batches keep theirs.
   * Context: process context of the region's owner (the faults are charged to it).
   */
  fault(from: number, to: number, mode: OdpFaultMode): number {
    let made = 0;
    const want = new Uint8Array(Math.min(ODP_FAULT_BATCH, Math.max(0, to - from)));
    for (let i = from; i < to; i += ODP_FAULT_BATCH) {
      const n = Math.min(ODP_FAULT_BATCH, to - i);
      const w = want.subarray(0, n);
      if (mode === 'write') this.writableMask(i, w);
      if (mode !== 'snapshot' && this.satisfied(i, w, mode)) continue;
      const r = this.faultBatch(i, n, mode, w);
      if (r < 0) return r;
      made += r;
    }
    return made;
  }

  /** Per page of the batch at @first: 1 where the VMA may be written (a write is asked). */
  private writableMask(first: number, want: Uint8Array): void {
    want.fill(0);
    const end = this.start + (first + want.length) * PAGE_SIZE;
    let a = this.start + first * PAGE_SIZE;
    while (a < end) {
      const vma = this.mm.findVma(a);
      if (!vma || vma.start >= end) break;
      const from = Math.max(a, vma.start);
      const to = Math.min(end, vma.end);
      if (vma.flags & VM_WRITE)
        want.fill(1, (from - this.start) / PAGE_SIZE - first, (to - this.start) / PAGE_SIZE - first);
      a = to;
    }
  }

  /** Whether every page of the batch at @first is mirrored, writable where @want asks. */
  private satisfied(first: number, want: Uint8Array, mode: OdpFaultMode): boolean {
    const pfns = this.pfns;
    for (let k = 0; k < want.length; k++) {
      const v = pfns[first + k];
      if (!(v & HMM_PFN_VALID)) return false;
      if (mode === 'write' && want[k] && !(v & HMM_PFN_WRITE)) return false;
    }
    return true;
  }

  /** One batch through the driver loop; returns the valid pages it left, or -errno. */
  private faultBatch(first: number, n: number, mode: OdpFaultMode, want: Uint8Array): number {
    const out = this.pfns.subarray(first, first + n);
    const start = this.start + first * PAGE_SIZE;
    const range: HmmRange = {
      notifier: this.notifier,
      notifierSeq: 0,
      start,
      end: start + n * PAGE_SIZE,
      hmmPfns: out,
      defaultFlags: mode === 'snapshot' ? 0 : HMM_PFN_REQ_FAULT,
      // A write is asked per page (where the VMA is writable) through the input entries.
      pfnFlagsMask: mode === 'write' ? HMM_PFN_REQ_WRITE : 0,
      devPrivateOwner: null,
    };
    for (let tries = 0; ; tries++) {
      if (tries >= ODP_FAULT_RETRIES) {
        out.fill(0);
        return -ERRNO.EBUSY;
      }
      if (mode === 'write') for (let k = 0; k < n; k++) out[k] = want[k] ? HMM_PFN_REQ_WRITE : 0;
      range.notifierSeq = mmuIntervalReadBegin(this.notifier);
      const ret = hmmRangeFault(range);
      if (ret === -ERRNO.EBUSY) {
        this.stats.retries++;
        continue;
      }
      if (ret) {
        out.fill(0);
        return ret;
      }
      // The driver lock: an invalidation since read_begin means the snapshot is stale.
      if (mmuIntervalReadRetry(this.notifier, range.notifierSeq)) {
        this.stats.retries++;
        continue;
      }
      let valid = 0;
      for (let k = 0; k < n; k++) {
        const v = out[k];
        // Holes and unreadable VMAs of a snapshot: nothing mirrored there.
        if (v & HMM_PFN_ERROR || !(v & HMM_PFN_VALID)) out[k] = 0;
        else valid++;
      }
      return valid;
    }
  }
}
