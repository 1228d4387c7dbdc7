/**
 * The prepare/release hook: how @svasim/user makes a buffer ready for DMA (ctx.prepare) and undoes
 * it (ctx.release). The library knows no pinning scheme itself: it calls the kernel's chosen
 * PinStrategy (Kernel.pinStrategy(): the one a pin-strategy plugin registered under
 * PIN_STRATEGY, or the default 'none'), unless a caller passes one in openContext's options.
 */
import { defaultPinStrategy, type Kernel, type PinStrategy } from '@svasim/kernel';

export { PIN_STRATEGY, type PinStrategy, type PinTarget } from '@svasim/kernel';

/** noPin - nothing to do: the device takes IO page faults on whatever is not present. */
export const noPin: PinStrategy = defaultPinStrategy;

/** loadedPinStrategy - the strategy @kernel uses (noPin when no strategy plugin is loaded). */
export function loadedPinStrategy(kernel: Kernel): PinStrategy {
  return kernel.pinStrategy();
}
