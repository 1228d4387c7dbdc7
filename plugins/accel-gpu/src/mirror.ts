/**
 * The GPU's page table for one context: a mirror of the process's address space, filled on
 * demand by hmm_range_fault and kept coherent by an MMU interval notifier over the whole address
 * space (Documentation/mm/hmm.rst; KERNEL-FACTS section 6). Faults follow the driver loop:
 * read_begin -> hmm_range_fault (again on -EBUSY) -> take the driver lock -> read_retry
 * (again when an invalidation ran meanwhile) -> program the device page table.
 *
 * Entries are `pfn * 4 + tag` in a Map keyed by virtual page number (the xarray of
 * lib/test_hmm.c): tag READ, WRITE, or ATOMIC for a page the GPU holds through a
 * device-exclusive entry.
 */
import {
  ERRNO,
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  MmuIntervalNotifier,
  PAGE_SIZE,
  hmmPfnToPage,
  hmmRangeFault,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  type HmmRange,
  type MmStruct,
  type MmuNotifierRange,
} from '@svasim/kernel';

/** Mirror tags. */
export const TAG_READ = 0;
export const TAG_WRITE = 1;
export const TAG_ATOMIC = 2;

/** Pages per hmm_range_fault call (the kernel drivers' on-stack arrays of 64). */
export const MIRROR_BATCH = 64;
/** hmm_range_fault attempts before -EBUSY (test_hmm's 1 s timeout, as a count). */
const RANGE_FAULT_RETRIES = 1000;
/** The whole user address space, for the interval (ULONG_MAX & PAGE_MASK in the kernel). */
const WHOLE_MM = 2 ** 53 - PAGE_SIZE;

/** What an invalidation removed from the mirror. */
export interface MirrorInvalidation {
  /** Entries removed. */
  entries: number;
  /** Virtual page numbers whose ATOMIC entry was removed. */
  atomics: number[];
}

/** MirrorHooks - the context's reaction to an invalidation (called under the "driver lock"). */
export interface MirrorHooks {
  invalidated(range: Readonly<MmuNotifierRange>, removed: MirrorInvalidation): void;
}

/** The notifier, knowing its mirror (container_of). */
class MirrorNotifier extends MmuIntervalNotifier {
  constructor(readonly mirror: GpuMirror) {
    super();
  }
}

const mirrorOps = {
  invalidate(sub: MmuIntervalNotifier, range: Readonly<MmuNotifierRange>, curSeq: number): boolean {
    const m = (sub as MirrorNotifier).mirror;
    mmuIntervalSetSeq(sub, curSeq);
    const removed = m.clearRange(range.start, range.end);
    m.hooks.invalidated(range, removed);
    return true;
  },
};

/** The result of one fault call: how many hmm_range_fault passes it took, which own pages came back read-only. */
export interface MirrorFault {
  /** 0, or -errno (hmm_range_fault's: -EFAULT, -EPERM, -EBUSY). */
  ret: number;
  /** Calls to hmm_range_fault that returned 0 (each is one GPU fault batch). */
  batches: number;
  /**
   * Pages of this GPU's memory that hmm_range_fault reported read-only although a write was
   * requested (it never faults the caller's own device-private pages: after fork they stay
   * read-only). The caller migrates them back to system memory and faults again.
   */
  ownReadOnly: number[];
}

/**
 * GpuMirror - one context's device page table. Made per open file; insert() registers the
 * notifier, remove() unregisters it and forgets everything.
 */
export class GpuMirror {
  readonly pt = new Map<number, number>();
  readonly notifier: MirrorNotifier;
  private readonly range: HmmRange;

  constructor(
    readonly mm: MmStruct,
    /** The device: hmm_range_fault's dev_private_owner. */
    readonly owner: object,
    /** Is @pfn a page of this GPU's device memory? */
    readonly isOwnPage: (pfn: number) => boolean,
    readonly hooks: MirrorHooks,
  ) {
    this.notifier = new MirrorNotifier(this);
    this.range = {
      notifier: this.notifier,
      notifierSeq: 0,
      start: 0,
      end: 0,
      hmmPfns: new Float64Array(MIRROR_BATCH),
      defaultFlags: 0,
      pfnFlagsMask: 0,
      devPrivateOwner: owner,
    };
  }

  /** insert - watch the whole address space. Return: 0 or mmuIntervalNotifierInsert's -errno. */
  insert(): number {
    return mmuIntervalNotifierInsert(this.notifier, this.mm, 0, WHOLE_MM, mirrorOps);
  }

  /** remove - stop watching and forget every entry. */
  remove(): void {
    if (this.notifier.inTree || this.notifier.deferred) mmuIntervalNotifierRemove(this.notifier);
    this.pt.clear();
  }

  /** get - the entry of virtual page @vpn (pfn * 4 + tag), or undefined. */
  get(vpn: number): number | undefined {
    return this.pt.get(vpn);
  }

  /** set - map @vpn to @pfn with @tag. */
  set(vpn: number, pfn: number, tag: number): void {
    this.pt.set(vpn, pfn * 4 + tag);
  }

  /** clearRange - forget the entries of [start, end) (dmirror_do_update). */
  clearRange(start: number, end: number): MirrorInvalidation {
    const out: MirrorInvalidation = { entries: 0, atomics: [] };
    if (this.pt.size === 0) return out;
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    const drop = (vpn: number, e: number): void => {
      this.pt.delete(vpn);
      out.entries++;
      if (e % 4 === TAG_ATOMIC) out.atomics.push(vpn);
    };
    if (last - first > this.pt.size) {
      for (const [vpn, e] of [...this.pt]) if (vpn >= first && vpn < last) drop(vpn, e);
    } else
      for (let vpn = first; vpn < last; vpn++) {
        const e = this.pt.get(vpn);
        if (e !== undefined) drop(vpn, e);
      }
    return out;
  }

  /**
   * fault - fault [start, end) (page aligned) into the mirror, MIRROR_BATCH pages per
   * hmm_range_fault call, for reading or @write (dmirror_fault / nouveau_range_fault).
   * Return: see MirrorFault. Context: the ioctl's; the kernel charges the walk and the faults.
   */
  fault(start: number, end: number, write: boolean): MirrorFault {
    const out: MirrorFault = { ret: 0, batches: 0, ownReadOnly: [] };
    if (!this.mm.alive) {
      out.ret = -ERRNO.EFAULT;
      return out;
    }
    const range = this.range;
    range.defaultFlags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    range.pfnFlagsMask = 0;
    for (let addr = start; addr < end; addr = range.end) {
      range.start = addr;
      range.end = Math.min(addr + MIRROR_BATCH * PAGE_SIZE, end);
      const ret = this.rangeFault(range, write, out);
      if (ret) {
        out.ret = ret;
        return out;
      }
      out.batches++;
    }
    return out;
  }

  /** The driver loop for one batch, then the device page table update under the lock. */
  private rangeFault(range: HmmRange, write: boolean, out: MirrorFault): number {
    for (let tries = 0; ; tries++) {
      if (tries >= RANGE_FAULT_RETRIES) return -ERRNO.EBUSY;
      range.notifierSeq = mmuIntervalReadBegin(range.notifier);
      const ret = hmmRangeFault(range);
      if (ret === -ERRNO.EBUSY) continue;
      if (ret) return ret;
      // driver lock: an invalidation since read_begin spoils what hmm_range_fault returned.
      if (mmuIntervalReadRetry(range.notifier, range.notifierSeq)) continue;
      return this.install(range, write, out);
    }
  }

  private install(range: HmmRange, write: boolean, out: MirrorFault): number {
    const n = (range.end - range.start) / PAGE_SIZE;
    const base = range.start / PAGE_SIZE;
    for (let i = 0; i < n; i++) {
      const v = range.hmmPfns[i];
      if (v & HMM_PFN_ERROR || !(v & HMM_PFN_VALID)) return -ERRNO.EFAULT;
      const pfn = hmmPfnToPage(v);
      if (v & HMM_PFN_WRITE) this.set(base + i, pfn, TAG_WRITE);
      else if (!write) this.set(base + i, pfn, TAG_READ);
      else if (this.isOwnPage(pfn)) out.ownReadOnly.push(base + i);
      else return -ERRNO.EFAULT;
    }
    return 0;
  }

  /**
   * query - what hmm_range_fault reports for [start, end) without faulting anything (a
   * snapshot), MIRROR_BATCH pages at a time, under a temporary interval notifier of the range so
   * that any change meanwhile restarts the batch. @fn receives each batch's start and hmm pfns.
   * Return: 0 or -errno (-EBUSY after too many restarts, the insert's -errno).
   */
  query(
    start: number,
    end: number,
    fn: (batchStart: number, hmmPfns: Float64Array, n: number) => void,
  ): number {
    const range: HmmRange = {
      notifier: this.notifier,
      notifierSeq: 0,
      start: 0,
      end: 0,
      hmmPfns: new Float64Array(MIRROR_BATCH),
      defaultFlags: 0,
      pfnFlagsMask: 0,
      devPrivateOwner: this.owner,
    };
    for (let addr = start; addr < end; addr = range.end) {
      range.start = addr;
      range.end = Math.min(addr + MIRROR_BATCH * PAGE_SIZE, end);
      // A notifier of its own per batch, as dmirror_range_snapshot does.
      const notifier = new MmuIntervalNotifier();
      range.notifier = notifier;
      const ret = mmuIntervalNotifierInsert(notifier, this.mm, range.start, range.end - range.start, {
        invalidate(sub, _r, seq) {
          mmuIntervalSetSeq(sub, seq);
          return true;
        },
      });
      if (ret) return ret;
      let r = -ERRNO.EBUSY;
      try {
        for (let tries = 0; tries < RANGE_FAULT_RETRIES; tries++) {
          range.notifierSeq = mmuIntervalReadBegin(notifier);
          r = hmmRangeFault(range);
          if (r === -ERRNO.EBUSY) continue;
          if (r === 0 && mmuIntervalReadRetry(notifier, range.notifierSeq)) {
            r = -ERRNO.EBUSY;
            continue;
          }
          break;
        }
      } finally {
        mmuIntervalNotifierRemove(notifier);
      }
      if (r) return r;
      fn(range.start, range.hmmPfns, (range.end - range.start) / PAGE_SIZE);
    }
    return 0;
  }
}
