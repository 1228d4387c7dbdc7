import type { MmStruct } from '../mm/mm-struct';
import type { MmuNotifierRange } from '../mm/notifier-hooks';

/**
 * MmuNotifierOps - struct mmu_notifier_ops: what a secondary MMU (an IOMMU SVA domain, an HMM
 * mirror, an RDMA ODP region, a KVM shadow table) wants to hear about one mm. Every member is
 * optional; the framework skips a missing one as the kernel does.
 *
 * A subscriber implements either archInvalidateSecondaryTlbs (its TLB mirrors the CPU page table,
 * as an SMMUv3 sharing the CPU's page table does) or invalidateRangeStart/End (it keeps its own
 * shadow entries), never both: mmuNotifierRegister refuses that with -EINVAL.
 */
export interface MmuNotifierOps {
  /**
   * release - the mm is going away (exit_mmap, before any page is freed) or this subscription is
   * being unregistered. Tear down every secondary translation of the mm; after it returns the
   * device must not reach the mm's pages. Called at most once per registration.
   */
  release?(sub: MmuNotifier, mm: MmStruct): void;
  /**
   * invalidateRangeStart - entries in [range.start, range.end) are about to change (they are
   * still mapped). Drop secondary translations of the range and create none until the matching
   * invalidateRangeEnd. Returns 0, or -EAGAIN when the range is not blockable
   * (mmuNotifierRangeBlockable false) and the subscriber would have to sleep; then no end call
   * follows for this subscriber.
   */
  invalidateRangeStart?(sub: MmuNotifier, range: Readonly<MmuNotifierRange>): number | void;
  /** invalidateRangeEnd - the pair of invalidateRangeStart: the change is done (pages may be freed). */
  invalidateRangeEnd?(sub: MmuNotifier, range: Readonly<MmuNotifierRange>): void;
  /**
   * archInvalidateSecondaryTlbs - the CPU TLB was flushed for [start, end): a device TLB that
   * shares the CPU page table must flush the same range (named invalidate_range before v6.6).
   * Called under the page-table lock: must not sleep.
   */
  archInvalidateSecondaryTlbs?(sub: MmuNotifier, mm: MmStruct, start: number, end: number): void;
  /**
   * allocNotifier - make the subscription mmuNotifierGet registers when none with these ops
   * exists on the mm. Returns it, or throws KernelError. Released through freeNotifier.
   */
  allocNotifier?(mm: MmStruct): MmuNotifier;
  /** freeNotifier - free a subscription whose last reference mmuNotifierPut dropped. */
  freeNotifier?(sub: MmuNotifier): void;
}

/**
 * MmuNotifier - struct mmu_notifier: one subscription of a secondary MMU to one mm. Drivers
 * embed it (extend the class) the way C drivers embed the struct and use container_of.
 * Registered by mmuNotifierRegister (released by mmuNotifierUnregister) or obtained by
 * mmuNotifierGet (released by mmuNotifierPut).
 */
export class MmuNotifier {
  /** The mm this subscription watches (set by registration; kept after release). */
  mm: MmStruct | null = null;
  /** References taken by mmuNotifierGet (1 after mmuNotifierRegister). */
  users = 0;
  /**
   * @internal On the mm's subscription list (the kernel's !hlist_unhashed): cleared by release,
   * unregister and the last put.
   */
  hashed = false;

  constructor(
    /** The callbacks. */
    public ops: MmuNotifierOps,
  ) {}
}

/**
 * MmuIntervalNotifierOps - struct mmu_interval_notifier_ops.
 */
export interface MmuIntervalNotifierOps {
  /**
   * invalidate - an invalidation overlaps the subscribed interval. Under the driver's own lock,
   * call mmuIntervalSetSeq(sub, curSeq) and stop using (and stop creating) translations of the
   * overlap. Returns true, or false only when the range is not blockable and the driver would
   * have to sleep (then the invalidation fails with -EAGAIN).
   */
  invalidate(sub: MmuIntervalNotifier, range: Readonly<MmuNotifierRange>, curSeq: number): boolean;
}

/**
 * MmuIntervalNotifier - struct mmu_interval_notifier: a subscription to invalidations of one
 * virtual range [start, last] of an mm, with a collision-retry sequence number for building
 * secondary translations (mmuIntervalReadBegin / mmuIntervalReadRetry).
 * Inserted by mmuIntervalNotifierInsert, released by mmuIntervalNotifierRemove.
 */
export class MmuIntervalNotifier {
  /** The mm watched, once inserted. */
  mm: MmStruct | null = null;
  /** The callbacks, once inserted. */
  ops: MmuIntervalNotifierOps | null = null;
  /** First byte watched. */
  start = 0;
  /** Last byte watched (inclusive, as the kernel's interval tree keeps it). */
  last = 0;
  /** The sequence number the driver last stored with mmuIntervalSetSeq (always odd once set). */
  invalidateSeq = 0;
  /** @internal In the interval tree (a deferred insert is not yet). */
  inTree = false;
  /** @internal Waiting on the deferred list for the current invalidation to end. */
  deferred = false;
  /** @internal Removed while an invalidation was running: callbacks are no longer made. */
  removed = false;
}
