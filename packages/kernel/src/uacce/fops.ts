import { getDevice, putDevice } from '../base/device';
import type { File, FileOperations, IoctlArg } from '../fs/file';
import { MINOR, type Inode } from '../fs/inode';
import { AddressSpace } from '../mm/address-space';
import type { VmAreaStruct, VmOperations } from '../mm/vma';
import { VM_DONTCOPY, VM_DONTEXPAND, VM_WIPEONFORK } from '../mm/vm-flags';
import type { Current } from '../proc/current';
import { ERRNO } from '../uapi/errno';
import { POLLIN, POLLRDNORM } from '../uapi/fcntl';
import { UACCE_MAX_REGION } from './constants';
import type { UacceCore } from './core';
import type { UacceQfileRegion } from './ops';
import { UacceQState, UacceQueue, uacceQueueIsValid } from './queue';
import {
  uacceBindQueue,
  uaccePutQueue,
  uacceStartQueue,
  uacceStopQueue,
  uacceUnbindQueue,
} from './queue-ops';
import { UACCE_CMD_PUT_Q, UACCE_CMD_START_Q } from './uapi';

/** EPOLLIN | EPOLLRDNORM: what poll reports for a queue with completions. */
export const UACCE_POLL_READY = POLLIN | POLLRDNORM;

function queueOf(file: File): UacceQueue {
  const q = file.privateData;
  if (!(q instanceof UacceQueue)) throw new Error(`uacce: file ${file.path} has no queue`);
  return q;
}

/**
 * uacceVmOps - the vm_operations of every queue mapping: close frees the region slot the VMA's
 * pgoff names (so the region can be mapped again); mremap is refused with -EPERM (2025).
 */
export const uacceVmOps: VmOperations = Object.freeze({
  close: (vma: VmAreaStruct) => {
    const q = vma.privateData as UacceQueue;
    if (vma.pgoff < UACCE_MAX_REGION) q.qfrs[vma.pgoff] = null;
  },
  mremap: () => -ERRNO.EPERM,
});

/**
 * createUacceFops - the file operations of /dev/<name>-<id> for one kernel's uacce (uacce_fops).
 *
 * - open: find the device by minor (-ENODEV once removed; -EINVAL if removal is under way), bind
 *   the caller's mm for SVA devices (the bind's errno; -ENODEV for an invalid PASID), call
 *   get_queue (its errno, after unbinding); the queue is INIT and file.privateData. One fd = one
 *   queue. Released by release (the last close).
 * - release: put the queue (stop if STARTED, put_queue), unbind, free. Safe after removal.
 * - unlockedIoctl: -ENXIO unless the queue is INIT or STARTED; START_Q (-EINVAL unless INIT, or
 *   start_queue's errno); PUT_Q (core.options.putQ); anything else to ops.ioctl, else -EINVAL.
 * - mmap: region = pgoff (offset / PAGE_SIZE): -EINVAL from UACCE_MAX_REGION up; the VMA is
 *   VM_DONTCOPY | VM_DONTEXPAND | VM_WIPEONFORK; -ENXIO for a dead queue, -EEXIST if the region is
 *   mapped, -EINVAL without ops.mmap, else the driver's result.
 * - poll: EPOLLIN | EPOLLRDNORM when is_q_updated says so, else 0 (also for a dead queue).
 */
export function createUacceFops(core: UacceCore): FileOperations {
  return Object.freeze({
    owner: 'uacce',

    open(inode: Inode, file: File, current: Current): number {
      const uacce = core.xaLoad(MINOR(inode.rdev));
      if (!uacce) return -ERRNO.ENODEV;
      // uacceRemove clears parent under uacce->mutex; an open that got here first loses the race.
      if (!uacce.parent) return -ERRNO.EINVAL;
      const q = new UacceQueue(uacce);
      let ret = uacceBindQueue(uacce, q, current);
      if (ret) return ret;
      const ops = uacce.ops;
      if (ops?.getQueue) {
        ret = ops.getQueue(uacce, q.pasid, q);
        if (ret < 0) {
          uacceUnbindQueue(q);
          return ret;
        }
      }
      file.privateData = q;
      q.setState(UacceQState.UACCE_Q_INIT);
      // f_mapping: mmap tracks this file's VMAs here, so uacceRemove can zap them.
      if (!(file.fMapping instanceof AddressSpace)) file.fMapping = new AddressSpace();
      q.mapping = file.fMapping as AddressSpace;
      uacce.queues.push(q);
      // The open file pins the device (chrdev_open's cdev reference), so removal cannot free it.
      getDevice(uacce.dev);
      return 0;
    },

    release(_inode: Inode, file: File): number {
      const q = queueOf(file);
      const uacce = q.uacce;
      uaccePutQueue(q);
      uacceUnbindQueue(q);
      const i = uacce.queues.indexOf(q);
      if (i >= 0) uacce.queues.splice(i, 1);
      file.privateData = null;
      putDevice(uacce.dev);
      return 0;
    },

    unlockedIoctl(file: File, cmd: number, arg: IoctlArg, current: Current): number {
      const q = queueOf(file);
      const uacce = q.uacce;
      if (!uacceQueueIsValid(q)) return -ERRNO.ENXIO;
      switch (cmd) {
        case UACCE_CMD_START_Q:
          return uacceStartQueue(q);
        case UACCE_CMD_PUT_Q:
          if (core.options.putQ === 'stop') return uacceStopQueue(q);
          uaccePutQueue(q);
          return 0;
        default:
          return uacce.ops?.ioctl ? uacce.ops.ioctl(q, cmd, arg, current) : -ERRNO.EINVAL;
      }
    },

    mmap(file: File, vma: VmAreaStruct): number {
      const q = queueOf(file);
      const uacce = q.uacce;
      if (!(vma.pgoff < UACCE_MAX_REGION)) return -ERRNO.EINVAL;
      const type = vma.pgoff;
      const qfr: UacceQfileRegion = { type };
      vma.flags |= VM_DONTCOPY | VM_DONTEXPAND | VM_WIPEONFORK;
      vma.vmOps = uacceVmOps;
      vma.privateData = q;
      if (!uacceQueueIsValid(q)) return -ERRNO.ENXIO;
      if (q.qfrs[type]) return -ERRNO.EEXIST;
      if (!uacce.ops?.mmap) return -ERRNO.EINVAL;
      const ret = uacce.ops.mmap(q, vma, qfr);
      if (ret) return ret;
      q.qfrs[type] = qfr;
      return 0;
    },

    poll(file: File): number {
      const q = queueOf(file);
      if (!uacceQueueIsValid(q)) return 0;
      const ops = q.uacce.ops;
      return ops?.isQUpdated && ops.isQUpdated(q) ? UACCE_POLL_READY : 0;
    },
  });
}
