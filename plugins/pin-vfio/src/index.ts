/**
 * @svasim/pin-vfio - the 'vfio' pin strategy as a plugin: no SVA; prepare = a VFIO type1 DMA
 * mapping with IOVA == VA (FOLL_LONGTERM pins, RLIMIT_MEMLOCK charged to locked_vm).
 * `createKernel({ plugins: [accelWithoutSva, vfioStrategy] })`.
 */
import { PIN_STRATEGY, definePlugin, type Kernel } from '@svasim/kernel';
import { VfioStrategy } from './vfio-strategy';
import { VfioType1 } from './vfio-type1';

export * from './vfio-type1';
export * from './vfio-strategy';

/**
 * vfioStrategy - the plugin: builds the type1 backend (its syscalls are registered at realize)
 * and registers one VfioStrategy under PIN_STRATEGY; kernel.plugin('pin-vfio') returns it.
 */
export const vfioStrategy = definePlugin({
  name: 'pin-vfio',
  kind: 'pin-strategy',
  register({ container, kernel }) {
    const strategy = new VfioStrategy(new VfioType1(kernel as Kernel));
    container.registerInstance(PIN_STRATEGY, strategy);
    return strategy;
  },
});
