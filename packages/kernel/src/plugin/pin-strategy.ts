/**
 * PinStrategy - how user space makes a buffer ready for device DMA and undoes it: the seam every
 * pinning-strategy plugin fills (none, mlock, mempinfd, uacce-ctrl, hugetlb-pool, odp,
 * short-term, migration-control, vfio). @svasim/user's ctx.prepare/ctx.release call it; whatever
 * kernel part a strategy needs (a syscall, a misc device, a notifier) its plugin registers itself.
 *
 * A plugin registers its strategy instance(s) in the kernel's container under PIN_STRATEGY;
 * Kernel.pinStrategy() picks the one in use (kernel options `pinStrategy` names one when several
 * are loaded; none loaded: defaultPinStrategy, plain SVA).
 */
import type { Process } from '../proc/process';
import type { Kernel } from './kernel';

/** What a strategy sees of the buffer's owner: the process and, when there is one, its queue. */
export interface PinTarget {
  readonly kernel: Kernel;
  readonly proc: Process;
  /** The accelerator queue's fd in `proc`, or -1 when the buffer is not tied to a queue. */
  readonly fd: number;
  /** The uacce device name (e.g. 'hisi_zip-0'), or '' when none. */
  readonly device: string;
}

/**
 * PinStrategy - one scheme. prepare/release throw SyscallError with the errno their syscalls
 * give; release undoes exactly one earlier prepare of the same range.
 */
export interface PinStrategy {
  /** The name API.md gives ('none', 'mlock', 'mempinfd', 'uacce-ctrl', ...). */
  readonly name: string;
  /**
   * How the device addresses buffers under this strategy: 'sva' (user virtual addresses through
   * the process's PASID, the default) or 'iova' (no SVA: prepare maps IOVA == VA into the
   * device's DMA domain, as VFIO's type1 map does).
   */
  readonly addressing?: 'sva' | 'iova';
  prepare(target: PinTarget, addr: number, len: number): void;
  release(target: PinTarget, addr: number, len: number): void;
  /**
   * allocBuffer - a buffer allocated the strategy's way (hugetlb-pool hands out pool blocks);
   * absent: an anonymous private mapping. Returns the address; throws SyscallError.
   */
  allocBuffer?(target: PinTarget, len: number): number;
  /** freeBuffer - give back a buffer allocBuffer returned. */
  freeBuffer?(target: PinTarget, addr: number, len: number): void;
}

/** PIN_STRATEGY - the DI token strategy plugins register their instances under. */
export const PIN_STRATEGY = Symbol.for('@svasim/PinStrategy');

/** defaultPinStrategy - nothing is done: the device takes IO page faults on whatever is missing. */
export const defaultPinStrategy: PinStrategy = Object.freeze({
  name: 'none',
  addressing: 'sva' as const,
  prepare(): void {},
  release(): void {},
});
