/**
 * mempinfdPlugin - `createKernel({ plugins: [mempinfdPlugin, ...] })` adds the mempinfd() syscall
 * and makes 'mempinfd' the pin strategy (@svasim/user's ctx.prepare/release pin through it).
 */
import { PIN_STRATEGY, definePlugin, type Kernel } from '@svasim/kernel';
import { Mempinfd } from './mempinfd';

export const mempinfdPlugin = definePlugin({
  name: 'pin-mempinfd',
  kind: 'pin-strategy',
  register({ container, kernel }) {
    const drv = new Mempinfd(kernel as Kernel);
    container.registerInstance(PIN_STRATEGY, drv.strategy);
    return drv;
  },
});
