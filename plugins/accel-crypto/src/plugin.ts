/**
 * cryptoPlugin - `createKernel({ plugins: [cryptoPlugin] })` loads one SEC2-like device. register()
 * only builds the instance (it cannot fail); the kernel realizes it (IOMMU probe + uacce register,
 * /dev/hisi_sec2-<id>) after every plugin is registered and unrealizes it (hot removal) at shutdown.
 * `kernel.plugin<CryptoAccelerator>('hisi_sec2')` hands the instance out.
 */
import { definePlugin, type Kernel } from '@svasim/kernel';
import { CRYPTO_ACCEL_CONFIG, CryptoAccelerator } from './device';

export const cryptoPlugin = definePlugin({
  name: 'hisi_sec2',
  kind: 'accelerator',
  register({ kernel }) {
    return new CryptoAccelerator(kernel as Kernel, CRYPTO_ACCEL_CONFIG);
  },
});
