import { ERRNO } from '../uapi/errno';
import type { MmStruct } from '../mm/mm-struct';
import { mmSubscriptions } from './subscriptions';
import type { MmuIntervalNotifier, MmuIntervalNotifierOps } from './types';

/** The highest address an interval may reach (ULONG_MAX in C; the simulator's integers stop here). */
const MAX_LAST = Number.MAX_SAFE_INTEGER;

/**
 * mmuIntervalNotifierInsert - subscribe `sub` to invalidations of [start, start + length) of `mm`
 * (mmu_interval_notifier_insert). `ops.invalidate` is then called for every invalidation that
 * overlaps the interval, and only for those.
 *
 * If an invalidation is running, the insert takes effect when it ends, and sub's sequence is set
 * so that mmuIntervalReadBegin reports it: translations for the interval must be built through the
 * mmuIntervalReadBegin / mmuIntervalReadRetry protocol from the start.
 * Returns 0, or -EOVERFLOW (length 0, or start + length - 1 beyond the address space), -EINVAL
 * (not integers, or the mm has no users: a WARN in the kernel), -EBUSY (`sub` is already inserted).
 * Context: process context. Released by mmuIntervalNotifierRemove.
 */
export function mmuIntervalNotifierInsert(
  sub: MmuIntervalNotifier,
  mm: MmStruct,
  start: number,
  length: number,
  ops: MmuIntervalNotifierOps,
): number {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0)
    return -ERRNO.EINVAL;
  if (length === 0 || start + length - 1 > MAX_LAST) return -ERRNO.EOVERFLOW;
  if (!mm.alive || mm.users <= 0) return -ERRNO.EINVAL;
  if (sub.inTree || sub.deferred) {
    mm.core.dmesg.printk('WARNING: mmu_interval_notifier_insert: interval inserted twice');
    return -ERRNO.EBUSY;
  }
  const subs = mmSubscriptions(mm, true)!;
  subs.hasItree = true;
  sub.mm = mm;
  sub.ops = ops;
  sub.start = start;
  sub.last = start + length - 1;
  sub.removed = false;
  if (subs.activeInvalidateRanges) {
    if (subs.isInvalidating()) {
      sub.deferred = true;
      subs.deferredList.push(sub);
    } else {
      // Some range is being invalidated and we cannot tell which: assume it covers this one.
      subs.invalidateSeq |= 1;
      subs.itreeInsert(sub);
    }
    sub.invalidateSeq = subs.invalidateSeq;
  } else {
    // Odd, and not the current (even) value: read_begin does not wait, read_retry sees no change.
    sub.invalidateSeq = subs.invalidateSeq - 1;
    subs.itreeInsert(sub);
  }
  subs.install();
  return 0;
}

/**
 * mmuIntervalNotifierRemove - end a subscription made by mmuIntervalNotifierInsert
 * (mmu_interval_notifier_remove). Once it returns, ops.invalidate is not called for `sub` again.
 * The kernel forbids calling it from an ops callback (it would wait on its own invalidation);
 * here such a call takes effect at once for the callbacks and in the tree when the invalidation
 * ends. Removing something never inserted does nothing.
 */
export function mmuIntervalNotifierRemove(sub: MmuIntervalNotifier): void {
  const mm = sub.mm;
  if (!mm) return;
  const subs = mmSubscriptions(mm, false);
  if (!subs) return;
  if (!sub.inTree && !sub.deferred) return;
  if (subs.isInvalidating()) {
    if (!sub.inTree) {
      // Inserted, then removed, before the deferred insert happened.
      const i = subs.deferredList.indexOf(sub);
      if (i >= 0) subs.deferredList.splice(i, 1);
      sub.deferred = false;
    } else if (!sub.deferred) {
      sub.deferred = true;
      subs.deferredList.push(sub);
    }
    sub.removed = true;
  } else {
    subs.itreeRemove(sub);
    sub.removed = true;
  }
  subs.maybeUninstall();
}

/**
 * mmuIntervalReadBegin - begin building secondary translations of the interval
 * (mmu_interval_read_begin). Returns the sequence number to pass to mmuIntervalReadRetry,
 * which answers true if an invalidation of the interval started since.
 *
 * The kernel sleeps here while an invalidation of the interval is in progress; in the
 * single-threaded simulator that can only be a call from inside an invalidation callback, which
 * deadlocks in the kernel too, so it throws an Error.
 */
export function mmuIntervalReadBegin(sub: MmuIntervalNotifier): number {
  const mm = sub.mm;
  if (!mm) throw new Error('mmu_interval_read_begin: interval notifier never inserted');
  const subs = mmSubscriptions(mm, false)!;
  const seq = sub.invalidateSeq;
  if (seq === subs.invalidateSeq)
    throw new Error(
      'mmu_interval_read_begin: an invalidation of this interval is in progress ' +
        '(called from an invalidation callback: it would wait for itself)',
    );
  return seq;
}

/**
 * mmuIntervalReadRetry - must translations built since mmuIntervalReadBegin returned `seq` be
 * thrown away (mmu_interval_read_retry)? Call it under the same driver lock that the invalidate
 * callback takes around mmuIntervalSetSeq, just before making the translations visible.
 */
export function mmuIntervalReadRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

/**
 * mmuIntervalCheckRetry - the lockless early hint of mmuIntervalReadRetry
 * (mmu_interval_check_retry): true means a retry is certain; false proves nothing.
 */
export function mmuIntervalCheckRetry(sub: MmuIntervalNotifier, seq: number): boolean {
  return sub.invalidateSeq !== seq;
}

/**
 * mmuIntervalSetSeq - record the invalidation's sequence number (mmu_interval_set_seq). Every
 * ops.invalidate must call it with its curSeq (odd), under the driver lock, before returning.
 */
export function mmuIntervalSetSeq(sub: MmuIntervalNotifier, curSeq: number): void {
  sub.invalidateSeq = curSeq;
}
