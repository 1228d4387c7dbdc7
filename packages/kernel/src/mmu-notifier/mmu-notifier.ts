import { ERRNO, KernelError } from '../uapi/errno';
import type { MmStruct } from '../mm/mm-struct';
import { MMU_NOTIFIER_RANGE_BLOCKABLE } from '../mm/mmu-notify';
import type { MmuNotifierRange } from '../mm/notifier-hooks';
import { mmSubscriptions } from './subscriptions';
import { MmuNotifier, type MmuNotifierOps } from './types';

/** mmAlive - the mm still has users and has not been torn down (mm_users > 0). */
function mmAlive(mm: MmStruct): boolean {
  return mm.alive && mm.users > 0;
}

/**
 * mmuNotifierRegister - subscribe `sub` to invalidations of `mm` (mmu_notifier_register).
 * @sub: the subscription (sub.ops set); its mm and users are filled in.
 * @mm: a live address space.
 *
 * From now on `sub`'s callbacks run around every change of a present entry of `mm`, and release
 * runs once, at exit_mmap before any page is freed (or at unregister).
 * Returns 0, or -EINVAL when the ops ask for both archInvalidateSecondaryTlbs and
 * invalidateRangeStart/End (a WARN in the kernel) or the mm has no users left (the kernel BUGs),
 * -EBUSY when `sub` is already registered (the kernel would corrupt its list).
 * Context: process context, may sleep. Released by mmuNotifierUnregister.
 */
export function mmuNotifierRegister(sub: MmuNotifier, mm: MmStruct): number {
  const ops = sub.ops;
  if (ops.archInvalidateSecondaryTlbs && (ops.invalidateRangeStart || ops.invalidateRangeEnd)) {
    mm.core.dmesg.printk('WARNING: mmu_notifier_register: arch_invalidate_secondary_tlbs with range ops');
    return -ERRNO.EINVAL;
  }
  if (!mmAlive(mm)) return -ERRNO.EINVAL;
  if (sub.hashed) {
    mm.core.dmesg.printk('WARNING: mmu_notifier_register: subscription registered twice');
    return -ERRNO.EBUSY;
  }
  const subs = mmSubscriptions(mm, true)!;
  sub.mm = mm;
  sub.users = 1;
  subs.add(sub);
  return 0;
}

/**
 * mmuNotifierUnregister - end a subscription made by mmuNotifierRegister
 * (mmu_notifier_unregister). If exit_mmap has not released it yet, ops.release runs now, so the
 * subscriber drops its secondary translations in one place either way. After it returns no
 * callback of `sub` runs any more. Calling it after the mm exited is fine (and releases nothing).
 * Context: process context, may sleep; not from a callback of the same subscription.
 */
export function mmuNotifierUnregister(sub: MmuNotifier, mm: MmStruct): void {
  const subs = mmSubscriptions(mm, false);
  if (!subs || !sub.hashed) return;
  const release = sub.ops.release;
  if (release) subs.withReadLock(() => release.call(sub.ops, sub, mm));
  subs.remove(sub);
}

/**
 * mmuNotifierGet - the single subscription of `ops` on `mm`, shared by every caller
 * (mmu_notifier_get): an existing one gets another user; otherwise ops.allocNotifier(mm) makes
 * one and it is registered.
 * Returns the subscription, or throws KernelError: -EINVAL (no allocNotifier, ops refused by
 * mmuNotifierRegister, dead mm), whatever allocNotifier threw. A subscription that failed to
 * register is handed to ops.freeNotifier.
 * Context: process context, may sleep. Released by mmuNotifierPut.
 */
export function mmuNotifierGet(ops: MmuNotifierOps, mm: MmStruct): MmuNotifier {
  const existing = mmSubscriptions(mm, false)?.find(ops);
  if (existing) {
    existing.users++;
    return existing;
  }
  if (!ops.allocNotifier)
    throw new KernelError(-ERRNO.EINVAL, 'mmu_notifier_get: ops without alloc_notifier');
  const sub = ops.allocNotifier(mm);
  sub.ops = ops;
  const ret = mmuNotifierRegister(sub, mm);
  if (ret < 0) {
    ops.freeNotifier?.(sub);
    throw new KernelError(ret, 'mmu_notifier_get');
  }
  return sub;
}

/**
 * mmuNotifierPut - drop a reference taken by mmuNotifierGet (mmu_notifier_put). The last one
 * takes the subscription off the mm and hands it to ops.freeNotifier once no callback of the mm
 * is running (the kernel's SRCU grace period). release is not called: the caller must already
 * have stopped using the mm. Allowed from the subscription's own release callback.
 */
export function mmuNotifierPut(sub: MmuNotifier): void {
  const mm = sub.mm;
  if (!mm) return;
  const subs = mmSubscriptions(mm, false);
  if (!subs) return;
  if (sub.users <= 0) {
    subs.warn('mmu_notifier_put without a reference');
    return;
  }
  if (--sub.users > 0) return;
  subs.remove(sub);
  subs.freeAfterGracePeriod(sub);
}

/**
 * mmuNotifierSynchronize - wait until every freeNotifier queued by mmuNotifierPut has run
 * (mmu_notifier_synchronize). In the simulation only a put made from inside a callback is
 * still pending, and only until that callback returns.
 */
export function mmuNotifierSynchronize(mm: MmStruct): void {
  mmSubscriptions(mm, false)?.synchronize();
}

/**
 * mmuNotifierRangeInit - fill a range for an invalidation (mmu_notifier_range_init).
 * @event: MMU_NOTIFY_*; @flags: MMU_NOTIFIER_RANGE_BLOCKABLE or 0; @owner: the pgmap owner
 * for MMU_NOTIFY_MIGRATE / EXCLUSIVE (mmu_notifier_range_init_owner), else null.
 * Returns a fresh range to pass to the start and end calls.
 */
export function mmuNotifierRangeInit(
  event: number,
  flags: number,
  mm: MmStruct,
  start: number,
  end: number,
  owner: unknown = null,
): MmuNotifierRange {
  return { mm, start, end, event, flags, owner };
}

/**
 * mmuNotifierInvalidateRangeStartNonblock - announce an invalidation from a context that must
 * not sleep (mmu_notifier_invalidate_range_start_nonblock; the OOM reaper's). Clears
 * MMU_NOTIFIER_RANGE_BLOCKABLE from `range`.
 * Returns 0 (then call mmuNotifierInvalidateRangeEnd(range) when done), or -EAGAIN when a
 * subscriber would have had to sleep (then do not change the range and do not call the end).
 */
export function mmuNotifierInvalidateRangeStartNonblock(range: MmuNotifierRange): number {
  range.flags &= ~MMU_NOTIFIER_RANGE_BLOCKABLE;
  const n = range.mm.notifier;
  return n ? n.invalidateRangeStart(range) : 0;
}

/** mmHasNotifiers - someone subscribed to invalidations of `mm` (mm_has_notifiers). */
export function mmHasNotifiers(mm: MmStruct): boolean {
  return mm.notifier !== null;
}
