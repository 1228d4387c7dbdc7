import type { IoctlArg } from '../fs/file';
import type { VmAreaStruct } from '../mm/vma';
import type { Current } from '../proc/current';
import type { UacceDevice } from './device';
import type { UacceQueue } from './queue';

/** enum uacce_dev_state - what the `isolate` sysfs file reports. */
export enum UacceDevState {
  /** The device is working. */
  UACCE_DEV_NORMAL = 0,
  /** The device was isolated after too many hardware errors. */
  UACCE_DEV_ISOLATE = 1,
}

/** UACCE_DEV_NORMAL - see {@link UacceDevState}. */
export const UACCE_DEV_NORMAL = UacceDevState.UACCE_DEV_NORMAL;
/** UACCE_DEV_ISOLATE - see {@link UacceDevState}. */
export const UACCE_DEV_ISOLATE = UacceDevState.UACCE_DEV_ISOLATE;

/**
 * UacceQfileRegion - struct uacce_qfile_region: one mapped region of a queue. Made by mmap of the
 * queue fd, owned by the queue's qfrs[type] slot while a VMA maps it; the VMA's close frees it.
 */
export interface UacceQfileRegion {
  /** UACCE_QFRT_MMIO or UACCE_QFRT_DUS. */
  readonly type: number;
}

/**
 * UacceOps - struct uacce_ops, the driver's callbacks. Every member is optional: the framework
 * answers as the kernel does when one is missing (see each member). Methods are called on the
 * ops object (`this` is the ops table).
 */
export interface UacceOps {
  /**
   * Free queues left, shown by the `available_instances` sysfs file ("%d"). Without it the
   * file reads -ENODEV.
   */
  getAvailableInstances?(uacce: UacceDevice): number;
  /**
   * Give the new queue `q` hardware (open(), after the SVA bind). `pasid` is the bond's PASID, or
   * 0 without UACCE_DEV_SVA. Returns 0 or -errno (open fails with it, after unbinding).
   * Released by putQueue. Without it, open succeeds with no hardware behind the queue.
   */
  getQueue?(uacce: UacceDevice, pasid: number, q: UacceQueue): number;
  /** Release what getQueue took (the final release of an INIT queue: close, or uacceRemove). */
  putQueue?(q: UacceQueue): void;
  /** Start the queue (UACCE_CMD_START_Q). Returns 0 or -errno (the queue stays INIT). */
  startQueue?(q: UacceQueue): number;
  /** Stop a STARTED queue (PUT_Q, close, uacceRemove). Only called in state STARTED. */
  stopQueue?(q: UacceQueue): void;
  /** True (or non-zero) when the queue has completions: poll() reports EPOLLIN | EPOLLRDNORM. */
  isQUpdated?(q: UacceQueue): boolean | number;
  /**
   * Map region `qfr.type` of `q` into `vma` (remapPfnRange for MMIO, vmInsertPage for DUS).
   * Returns 0 or -errno (the mmap fails with it). Without it every queue mmap is -EINVAL.
   */
  mmap?(q: UacceQueue, vma: VmAreaStruct, qfr: UacceQfileRegion): number;
  /**
   * Any ioctl other than START_Q/PUT_Q on a valid queue. Returns >= 0 or -errno. Without it
   * such ioctls are -EINVAL. svasim passes `current` so the driver can copy from user memory.
   */
  ioctl?(q: UacceQueue, cmd: number, arg: IoctlArg, current: Current): number;
  /** The `isolate` sysfs file ("%d"); the file is hidden without it. */
  getIsolateState?(uacce: UacceDevice): UacceDevState | number;
  /**
   * Store a new error threshold from `isolate_strategy` (0..UACCE_MAX_ERR_THRESHOLD). Returns 0
   * or -errno (the write fails with it). Without it writes are -ENOENT.
   */
  isolateErrThresholdWrite?(uacce: UacceDevice, num: number): number;
  /** The current error threshold, shown by `isolate_strategy` ("%u"). Without it reads are -ENOENT. */
  isolateErrThresholdRead?(uacce: UacceDevice): number;
}

/**
 * UacceInterface - struct uacce_interface, what a driver passes to uacceAlloc.
 */
export interface UacceInterface {
  /** Device name: the device is "<name>-<dev_id>". 1..63 characters, no '/'. */
  name: string;
  /** UACCE_DEV_* flags requested; uacceAlloc returns the negotiated ones in uacce.flags. */
  flags: number;
  /** The driver's callbacks (all optional; `{}` is valid). */
  ops: UacceOps;
}
