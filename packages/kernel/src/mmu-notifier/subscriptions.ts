import { ERRNO } from '../uapi/errno';
import type { MmStruct } from '../mm/mm-struct';
import { MMU_NOTIFIER_RANGE_BLOCKABLE } from '../mm/mmu-notify';
import { MMU_NOTIFY_RELEASE, type MmNotifierHooks, type MmuNotifierRange } from '../mm/notifier-hooks';
import type { MmuIntervalNotifier, MmuNotifier } from './types';

/** The end of the address space as the release invalidation names it (ULONG_MAX in C). */
export const MMU_NOTIFIER_RANGE_MAX = Number.MAX_SAFE_INTEGER;

/** Subscriptions per mm: one object for the mm's lifetime, installed as mm.notifier while in use. */
const subscriptionsOf = new WeakMap<MmStruct, MmuNotifierSubscriptions>();

/**
 * mmuNotifierRangeBlockable - may the subscriber sleep for this range
 * (mmu_notifier_range_blockable)? False only for the OOM reaper's non-blocking invalidations.
 */
export function mmuNotifierRangeBlockable(range: Readonly<MmuNotifierRange>): boolean {
  return (range.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0;
}

/**
 * MmuNotifierSubscriptions - struct mmu_notifier_subscriptions: the subscription list, the
 * interval tree and its collision-retry sequence for one mm. It is the mm's MmNotifierHooks:
 * mm calls it around every change of a present entry (mm/mmu-notify.ts) and at exit_mmap.
 *
 * invalidateSeq follows mm/mmu_notifier.c: even when no invalidation overlapping an interval
 * subscription runs; made odd (seq |= 1) when one starts; made even again (seq++) when the last
 * active range ends. Interval inserts and removes that arrive while it is odd are deferred to
 * that moment, so the tree never changes under an invalidation.
 *
 * Callbacks run inside a read-side section (the kernel's SRCU): a subscription whose last
 * reference is put during one is freed (freeNotifier) when the outermost section ends.
 */
export class MmuNotifierSubscriptions implements MmNotifierHooks {
  /** Registered subscriptions, newest first (hlist_add_head). */
  readonly list: MmuNotifier[] = [];
  /** An interval subscription was ever inserted (has_itree). */
  hasItree = false;
  /** See the class comment. Starts at 2, as __mmu_notifier_register sets it. */
  invalidateSeq = 2;
  /** Invalidations between start and end right now (nested ones count each). */
  activeInvalidateRanges = 0;
  /** Interval subscriptions sorted by start (then insertion): the kernel's interval tree. */
  readonly itree: MmuIntervalNotifier[] = [];
  /** Inserts and removes waiting for the running invalidation to end. */
  readonly deferredList: MmuIntervalNotifier[] = [];
  /** True once exit_mmap released the mm. */
  released = false;
  private srcuDepth = 0;
  private readonly pendingFree: MmuNotifier[] = [];
  private readonly vmInvalidations: number;
  private readonly vmIntervalInvalidations: number;

  constructor(readonly mm: MmStruct) {
    this.vmInvalidations = mm.core.vmstat.register('mmu_notifier_invalidations');
    this.vmIntervalInvalidations = mm.core.vmstat.register('mmu_interval_notifier_invalidations');
  }

  // ---- MmNotifierHooks ----

  /**
   * invalidateRangeStart - __mmu_notifier_invalidate_range_start: interval subscribers overlapping
   * the range, then every invalidateRangeStart. Returns 0, or -EAGAIN for a non-blockable range
   * a subscriber could not handle (then the caller must not call invalidateRangeEnd).
   */
  invalidateRangeStart(range: MmuNotifierRange): number {
    this.mm.core.vmstat.inc(this.vmInvalidations);
    if (this.hasItree) {
      const r = this.itreeInvalidate(range);
      if (r) return r;
    }
    if (this.list.length) {
      const r = this.hlistInvalidateRangeStart(range);
      // The kernel returns here with the interval tree still held; release it, since the caller
      // will not call invalidate_range_end.
      if (r && this.hasItree) this.itreeInvEnd();
      return r;
    }
    return 0;
  }

  /**
   * invalidateRangeEnd - the CPU TLB flush that precedes it reaches archInvalidateSecondaryTlbs,
   * then the interval tree's write side is released, then every invalidateRangeEnd runs.
   */
  invalidateRangeEnd(range: MmuNotifierRange): void {
    if (this.list.length) {
      this.srcuLock();
      try {
        for (const sub of [...this.list]) {
          if (sub.hashed && sub.ops.archInvalidateSecondaryTlbs)
            sub.ops.archInvalidateSecondaryTlbs(sub, this.mm, range.start, range.end);
        }
      } finally {
        this.srcuUnlock();
      }
    }
    if (this.hasItree) this.itreeInvEnd();
    if (this.list.length) {
      this.srcuLock();
      try {
        for (const sub of [...this.list]) if (sub.hashed) sub.ops.invalidateRangeEnd?.(sub, range);
      } finally {
        this.srcuUnlock();
      }
    }
  }

  /**
   * release - __mmu_notifier_release (exit_mmap, before the pages are freed): every interval
   * subscriber sees a MMU_NOTIFY_RELEASE invalidation of the whole address space, then every
   * subscription's release runs once and the list is emptied.
   */
  release(mm: MmStruct): void {
    this.released = true;
    if (this.hasItree) {
      const range: MmuNotifierRange = {
        mm,
        start: 0,
        end: MMU_NOTIFIER_RANGE_MAX,
        event: MMU_NOTIFY_RELEASE,
        flags: MMU_NOTIFIER_RANGE_BLOCKABLE,
        owner: null,
      };
      const { subs, seq } = this.itreeInvStartRange(range);
      this.srcuLock();
      try {
        for (const sub of subs) {
          if (sub.removed) continue;
          this.mm.core.vmstat.inc(this.vmIntervalInvalidations);
          if (!sub.ops!.invalidate(sub, range, seq)) this.warn('interval invalidate failed at release');
        }
      } finally {
        this.srcuUnlock();
      }
      this.itreeInvEnd();
    }
    if (this.list.length) {
      this.srcuLock();
      try {
        for (const sub of [...this.list]) if (sub.hashed) sub.ops.release?.(sub, mm);
        for (const sub of this.list) sub.hashed = false;
        this.list.length = 0;
      } finally {
        this.srcuUnlock();
      }
    }
  }

  // ---- subscription list ----

  /** add - hlist_add_head: newest subscriptions are called first. */
  add(sub: MmuNotifier): void {
    sub.hashed = true;
    this.list.unshift(sub);
    this.install();
  }

  /** remove - hlist_del_init: take `sub` off the list (nothing if it is not on it). */
  remove(sub: MmuNotifier): void {
    const i = this.list.indexOf(sub);
    if (i >= 0) this.list.splice(i, 1);
    sub.hashed = false;
    this.maybeUninstall();
  }

  /** find - the first subscription on the list whose ops are `ops` (find_get_mmu_notifier). */
  find(ops: unknown): MmuNotifier | null {
    for (const sub of this.list) if (sub.ops === ops) return sub;
    return null;
  }

  /**
   * freeAfterGracePeriod - call_srcu(mmu_notifier_free_rcu): run ops.freeNotifier once no
   * callback of this mm is running (at once when none is).
   */
  freeAfterGracePeriod(sub: MmuNotifier): void {
    this.pendingFree.push(sub);
    if (this.srcuDepth === 0) this.flushPendingFree();
  }

  /** synchronize - mmu_notifier_synchronize: every pending freeNotifier has run when it returns. */
  synchronize(): void {
    if (this.srcuDepth === 0) this.flushPendingFree();
  }

  // ---- interval tree ----

  /** isInvalidating - mn_itree_is_invalidating: an invalidation overlapping an interval runs. */
  isInvalidating(): boolean {
    return (this.invalidateSeq & 1) === 1;
  }

  /** itreeInsert - put `sub` in the tree, keeping it sorted by start (then insertion order). */
  itreeInsert(sub: MmuIntervalNotifier): void {
    let i = this.itree.length;
    while (i > 0 && this.itree[i - 1].start > sub.start) i--;
    this.itree.splice(i, 0, sub);
    sub.inTree = true;
  }

  /** itreeRemove - take `sub` out of the tree. */
  itreeRemove(sub: MmuIntervalNotifier): void {
    const i = this.itree.indexOf(sub);
    if (i >= 0) this.itree.splice(i, 1);
    sub.inTree = false;
  }

  /** Install as mm.notifier (the mm calls us from now on). */
  install(): void {
    if (!this.released && this.mm.alive) this.mm.notifier = this;
  }

  /**
   * Stop being called when nothing is subscribed and nothing is in flight (no callback running,
   * no interval invalidation active); the object and its sequence number stay for the mm's
   * lifetime, as the kernel keeps them until mmdrop.
   */
  maybeUninstall(): void {
    if (
      this.list.length === 0 &&
      this.itree.length === 0 &&
      this.deferredList.length === 0 &&
      this.activeInvalidateRanges === 0 &&
      this.srcuDepth === 0 &&
      this.mm.notifier === this
    )
      this.mm.notifier = null;
  }

  /** warn - a WARN_ON in the kernel: logged, and the simulation continues. */
  warn(msg: string): void {
    this.mm.core.dmesg.printkRatelimited('mmu_notifier', `WARNING: mmu_notifier: ${msg} (mm ${this.mm.id})`);
  }

  /**
   * mn_itree_inv_start_range: count the range as active; when it overlaps an interval, take the
   * write side (seq |= 1). Returns the overlapping subscriptions in tree order and the seq.
   */
  private itreeInvStartRange(range: MmuNotifierRange): { subs: MmuIntervalNotifier[]; seq: number } {
    this.activeInvalidateRanges++;
    const subs: MmuIntervalNotifier[] = [];
    const last = range.end - 1;
    for (const sub of this.itree) {
      if (sub.start > last) break;
      if (sub.last >= range.start) subs.push(sub);
    }
    if (subs.length) this.invalidateSeq |= 1;
    return { subs, seq: this.invalidateSeq };
  }

  /** mn_itree_inv_end: the last active range releases the write side and applies deferred changes. */
  private itreeInvEnd(): void {
    if (--this.activeInvalidateRanges > 0 || !this.isInvalidating()) {
      this.maybeUninstall();
      return;
    }
    this.invalidateSeq++;
    const deferred = this.deferredList.splice(0);
    for (const sub of deferred) {
      sub.deferred = false;
      if (!sub.inTree && !sub.removed) this.itreeInsert(sub);
      else if (sub.inTree) this.itreeRemove(sub);
    }
    this.maybeUninstall();
  }

  /** mn_itree_invalidate: call every overlapping interval subscriber. */
  private itreeInvalidate(range: MmuNotifierRange): number {
    const { subs, seq } = this.itreeInvStartRange(range);
    this.srcuLock();
    try {
      for (const sub of subs) {
        if (sub.removed) continue;
        this.mm.core.vmstat.inc(this.vmIntervalInvalidations);
        if (sub.ops!.invalidate(sub, range, seq)) continue;
        if (mmuNotifierRangeBlockable(range)) {
          this.warn('interval invalidate returned false for a blockable range');
          continue;
        }
        // On -EAGAIN the non-blocking caller will not call invalidate_range_end.
        this.itreeInvEnd();
        return -ERRNO.EAGAIN;
      }
    } finally {
      this.srcuUnlock();
    }
    return 0;
  }

  /** mn_hlist_invalidate_range_start. */
  private hlistInvalidateRangeStart(range: MmuNotifierRange): number {
    const blockable = mmuNotifierRangeBlockable(range);
    const subs = [...this.list];
    let ret = 0;
    this.srcuLock();
    try {
      for (const sub of subs) {
        const start = sub.ops.invalidateRangeStart;
        if (!sub.hashed || !start) continue;
        const r = start.call(sub.ops, sub, range) ?? 0;
        if (r === 0) continue;
        this.mm.core.dmesg.printkRatelimited(
          'mmu_notifier_start',
          `mmu_notifier: invalidate_range_start callback failed with ${r} in ${blockable ? '' : 'non-'}blockable context`,
        );
        if (blockable || r !== -ERRNO.EAGAIN)
          this.warn('invalidate_range_start may fail only with -EAGAIN when not blockable');
        if (sub.ops.invalidateRangeEnd) this.warn('a start that may fail must not have an end');
        // A blockable caller cannot be told: the kernel ignores the error there (after the WARN).
        if (!blockable) ret = r;
      }
      if (ret) {
        // Non-blocking failure: those whose start succeeded still expect their end, now.
        for (const sub of subs) if (sub.hashed) sub.ops.invalidateRangeEnd?.(sub, range);
      }
    } finally {
      this.srcuUnlock();
    }
    return ret;
  }

  /** withReadLock - run `fn` as a callback section (srcu_read_lock / srcu_read_unlock). */
  withReadLock(fn: () => void): void {
    this.srcuLock();
    try {
      fn();
    } finally {
      this.srcuUnlock();
    }
  }

  private srcuLock(): void {
    this.srcuDepth++;
  }

  private srcuUnlock(): void {
    if (--this.srcuDepth > 0) return;
    if (this.pendingFree.length) this.flushPendingFree();
    this.maybeUninstall();
  }

  private flushPendingFree(): void {
    while (this.pendingFree.length) {
      const sub = this.pendingFree.shift()!;
      sub.ops.freeNotifier?.(sub);
    }
  }
}

/**
 * mmSubscriptions - the mm's subscriptions object, made (not installed) when `create` is set;
 * null when the mm never had one.
 */
export function mmSubscriptions(mm: MmStruct, create: boolean): MmuNotifierSubscriptions | null {
  let s = subscriptionsOf.get(mm) ?? null;
  if (!s && create) {
    s = new MmuNotifierSubscriptions(mm);
    subscriptionsOf.set(mm, s);
  }
  return s;
}
