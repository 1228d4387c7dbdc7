/**
 * NoPinStrategy - plain SVA, the baseline every other strategy is measured against: prepare and
 * release do nothing at all, so the device reaches the buffer through the process's PASID and
 * takes an IO page fault (PRI page request -> iopf workqueue -> handle_mm_fault -> response ->
 * retry) on every page that is not present, not writable for a write, or in the middle of a
 * migration. This is what uacce with UACCE_DEV_SVA gives an application that does nothing.
 */
import type { PinStrategy, PinTarget } from '@svasim/kernel';

/** The strategy name (API.md): the package name without `pin-`. */
export const NO_PIN_STRATEGY_NAME = 'none';

/**
 * NoPinStrategy - the 'none' strategy. Stateless, so one instance could serve every kernel; the
 * plugin still makes one per kernel, as every strategy plugin does.
 */
export class NoPinStrategy implements PinStrategy {
  readonly name = NO_PIN_STRATEGY_NAME;
  readonly addressing = 'sva' as const;

  /**
   * prepare - nothing: no syscall is made, so no input is refused (not even a zero, unaligned or
   * unmapped range) and nothing is charged. Context: any.
   */
  prepare(_target: PinTarget, _addr: number, _len: number): void {}

  /** release - nothing, for the same reason; a release without a prepare is not an error. */
  release(_target: PinTarget, _addr: number, _len: number): void {}
}
