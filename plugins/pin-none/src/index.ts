/**
 * @svasim/pin-none - the 'none' pin strategy as a plugin: plain SVA, the device faults through
 * IOPF on whatever is not present. `createKernel({ plugins: [accel, noPinStrategy] })`.
 */
import { PIN_STRATEGY, definePlugin } from '@svasim/kernel';
import { NoPinStrategy } from './no-pin-strategy';

export * from './no-pin-strategy';

/**
 * noPinStrategy - the plugin: registers one NoPinStrategy under PIN_STRATEGY; kernel.plugin('pin-none')
 * returns it. Loading it is the same as loading no strategy at all, but names the choice.
 */
export const noPinStrategy = definePlugin({
  name: 'pin-none',
  kind: 'pin-strategy',
  register({ container }) {
    const strategy = new NoPinStrategy();
    container.registerInstance(PIN_STRATEGY, strategy);
    return strategy;
  },
});
