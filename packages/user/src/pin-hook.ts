/**
 * The prepare/release hook: how @svasim/user makes a buffer ready for DMA (ctx.prepare) and undoes
 * it (ctx.release). The library itself knows no pinning scheme; a pin-strategy plugin registers a
 * PinStrategy instance under PIN_STRATEGY in the kernel's DI container (or a caller passes one in
 * openContext's options), and every context of that kernel goes through it. With none loaded the
 * hook is noPin: plain SVA, the device faults through IOPF (API.md "pin-none").
 *
 * This file is the seam the pinning-strategy issue fills; the contract is deliberately small.
 */
import type { Kernel, Process } from '@svasim/kernel';

/** What a strategy sees of the context preparing a buffer. */
export interface PinTarget {
  readonly kernel: Kernel;
  readonly proc: Process;
  /** The queue's fd (for ioctl-based strategies such as uacce-ctrl). */
  readonly fd: number;
  /** The uacce device name, e.g. 'memcpy_accel-0'. */
  readonly device: string;
}

/**
 * PinStrategy - one pinning scheme. prepare/release throw SyscallError on failure (as the
 * syscalls they make would); release undoes exactly one earlier prepare of the same range.
 */
export interface PinStrategy {
  /** The strategy's name as API.md spells it ('none', 'mlock', 'mempinfd', ...). */
  readonly name: string;
  prepare(target: PinTarget, addr: number, len: number): void;
  release(target: PinTarget, addr: number, len: number): void;
}

/** PIN_STRATEGY - the DI token a pin-strategy plugin registers its instance under. */
export const PIN_STRATEGY = Symbol.for('@svasim/user/PinStrategy') as symbol & { __type?: PinStrategy };

/** noPin - nothing to do: the device takes IO page faults on whatever is not present. */
export const noPin: PinStrategy = Object.freeze({
  name: 'none',
  prepare(): void {},
  release(): void {},
});

/**
 * loadedPinStrategy - the strategy registered in @kernel's container, or noPin when none is.
 */
export function loadedPinStrategy(kernel: Kernel): PinStrategy {
  const c = kernel.container;
  return c.isRegistered(PIN_STRATEGY, true) ? c.resolve<PinStrategy>(PIN_STRATEGY) : noPin;
}
