/**
 * @svasim/pin-mlock - the 'mlock' pin strategy as a plugin: prepare = mlock, release = munlock
 * (unevictable and charged to RLIMIT_MEMLOCK, but still migrated).
 * `createKernel({ plugins: [accel, mlockStrategy] })`.
 */
import { PIN_STRATEGY, definePlugin } from '@svasim/kernel';
import { MlockStrategy } from './mlock-strategy';

export * from './lock-counts';
export * from './mlock-strategy';

/**
 * mlockStrategy - the plugin: registers one MlockStrategy under PIN_STRATEGY;
 * kernel.plugin('pin-mlock') returns it. It adds no kernel part: mlock is a syscall.
 */
export const mlockStrategy = definePlugin({
  name: 'pin-mlock',
  kind: 'pin-strategy',
  register({ container }) {
    const strategy = new MlockStrategy();
    container.registerInstance(PIN_STRATEGY, strategy);
    return strategy;
  },
});
