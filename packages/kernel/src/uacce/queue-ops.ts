/**
 * The queue operations shared by the file operations and uacceRemove (uacce.c's
 * uacce_start_queue / uacce_stop_queue / uacce_put_queue / uacce_bind_queue / uacce_unbind_queue).
 * Internal to uacce: not exported from the package.
 */
import { IOMMU_PASID_INVALID } from '../iommu/types';
import { isProcessContext } from '../proc/process-context';
import type { Current } from '../proc/current';
import { ERRNO, KernelError } from '../uapi/errno';
import type { UacceDevice } from './device';
import { UacceQState, type UacceQueue } from './queue';
import type { UacceSvaHandle } from './sva-ops';
import { UACCE_DEV_SVA } from './uapi';

/** START_Q: INIT -> STARTED after the driver's start_queue. 0, -EINVAL (not INIT) or its -errno. */
export function uacceStartQueue(q: UacceQueue): number {
  if (q.state !== UacceQState.UACCE_Q_INIT) return -ERRNO.EINVAL;
  const ops = q.uacce.ops;
  if (ops?.startQueue) {
    const ret = ops.startQueue(q);
    if (ret < 0) return ret;
  }
  q.setState(UacceQState.UACCE_Q_STARTED);
  return 0;
}

/** Stop a STARTED queue (stop_queue) -> INIT; nothing to do in any other state. Returns 0. */
export function uacceStopQueue(q: UacceQueue): number {
  if (q.state !== UacceQState.UACCE_Q_STARTED) return 0;
  q.uacce.ops?.stopQueue?.(q);
  q.setState(UacceQState.UACCE_Q_INIT);
  return 0;
}

/** Stop if needed, then give the hardware back (put_queue) -> ZOMBIE. A ZOMBIE queue is left alone. */
export function uaccePutQueue(q: UacceQueue): void {
  uacceStopQueue(q);
  if (q.state !== UacceQState.UACCE_Q_INIT) return;
  q.uacce.ops?.putQueue?.(q);
  q.setState(UacceQState.UACCE_Q_ZOMBIE);
}

/**
 * Bind the caller's mm for an SVA device (uacce_bind_queue): q.handle and q.pasid. Returns 0
 * (also without UACCE_DEV_SVA: pasid stays 0), the bind's -errno, -ENODEV when the bond has no
 * valid PASID (after unbinding it), or -EINVAL for a caller without an address space.
 */
export function uacceBindQueue(uacce: UacceDevice, q: UacceQueue, current: Current): number {
  if (!(uacce.flags & UACCE_DEV_SVA)) return 0;
  if (!isProcessContext(current) || !uacce.parent) return -ERRNO.EINVAL;
  let handle: UacceSvaHandle;
  try {
    handle = uacce.core.svaOps.bind(uacce.parent, current.mm);
  } catch (e) {
    if (e instanceof KernelError) return e.errno;
    throw e;
  }
  if (handle.pasid === IOMMU_PASID_INVALID) {
    handle.unbind();
    return -ERRNO.ENODEV;
  }
  q.handle = handle;
  q.pasid = handle.pasid;
  return 0;
}

/** Drop the queue's SVA bond, if it has one (uacce_unbind_queue). */
export function uacceUnbindQueue(q: UacceQueue): void {
  const h = q.handle;
  if (!h) return;
  q.handle = null;
  h.unbind();
}
