/**
 * uacceCtrlPlugin - `createKernel({ plugins: [uacceCtrlPlugin, ...] })` adds /dev/uacce_ctrl and
 * makes 'uacce-ctrl' the pin strategy (@svasim/user's ctx.prepare/release pin through it).
 */
import { PIN_STRATEGY, definePlugin, type Kernel } from '@svasim/kernel';
import { UacceCtrl } from './uacce-ctrl';

export const uacceCtrlPlugin = definePlugin({
  name: 'pin-uacce-ctrl',
  kind: 'pin-strategy',
  register({ container, kernel }) {
    const drv = new UacceCtrl(kernel as Kernel);
    container.registerInstance(PIN_STRATEGY, drv.strategy);
    return drv;
  },
});
