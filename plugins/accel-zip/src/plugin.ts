/**
 * zipPlugin - `createKernel({ plugins: [zipPlugin] })` adds one simulated HiSilicon ZIP,
 * /dev/hisi_zip-<id>, reachable as `kernel.plugin<ZipAccelerator>('hisi_zip')`.
 */
import { definePlugin, type Kernel } from '@svasim/kernel';
import { ZIP_CONFIG } from './config';
import { ZipAccelerator } from './zip-accelerator';

/**
 * zipPlugin - register() builds the device (cannot fail); the kernel realizes it (IOMMU probe,
 * IOPF queue, uacce register) after every plugin is registered and unrealizes it (hot removal)
 * at shutdown.
 */
export const zipPlugin = definePlugin({
  name: 'hisi_zip',
  kind: 'accelerator',
  register({ kernel }) {
    return new ZipAccelerator(kernel as Kernel, ZIP_CONFIG);
  },
});
