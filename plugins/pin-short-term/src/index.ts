/**
 * @svasim/pin-short-term - the 'short-term' pin strategy: a short-term page reference released by
 * a migration callback that revokes the device mapping, lets the page move and reinstates it
 * (seeds/003; see README.md). `createKernel({ plugins: [accel, shortTermStrategy] })`.
 */
import { PIN_STRATEGY, definePlugin, type Kernel } from '@svasim/kernel';
import { ShortTermStrategy } from './short-term';

export {
  SHORT_TERM_REF_GET,
  SHORT_TERM_REF_PUT,
  SHORT_TERM_REF_SYSCALL,
  ShortTermStrategy,
  type ShortTermStats,
} from './short-term';

/**
 * shortTermStrategy - the plugin: registers a ShortTermStrategy under PIN_STRATEGY (it is also
 * what kernel.plugin('pin-short-term') returns); realize() adds the short_term_ref system call.
 */
export const shortTermStrategy = definePlugin({
  name: 'pin-short-term',
  kind: 'pin-strategy',
  register({ container, kernel }) {
    const strategy = new ShortTermStrategy(kernel as Kernel);
    container.registerInstance(PIN_STRATEGY, strategy);
    return strategy;
  },
});
