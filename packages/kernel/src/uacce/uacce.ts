import { Cdev } from '../base/chrdev';
import { Device, putDevice } from '../base/device';
import { MKDEV } from '../fs/inode';
import { unmapMappingRange } from '../mm/device-map';
import { ERRNO, KernelError } from '../uapi/errno';
import { UACCE_MAX_NAME_SIZE, UACCE_NAME } from './constants';
import type { UacceCore } from './core';
import { UacceDevice } from './device';
import type { UacceInterface } from './ops';
import { uaccePutQueue, uacceUnbindQueue } from './queue-ops';
import { UACCE_DEV_SVA } from './uapi';

/** Largest u32, the type of uacce_interface.flags. */
const U32_MAX = 0xffffffff;

function validName(name: unknown): name is string {
  return (
    typeof name === 'string' && name.length > 0 && name.length < UACCE_MAX_NAME_SIZE && !name.includes('/')
  );
}

/**
 * uacceAlloc - allocate an accelerator (uacce_alloc): a global dev_id, the class device
 * "<name>-<id>" (not yet visible) and the negotiated flags.
 *
 * UACCE_DEV_SVA is negotiated with core.svaOps.supported(parent): with core.options.svaNegotiation
 * 'clear' (the default, v5.13 until 2025) it is cleared when the parent cannot do SVA, silently
 * for the caller (a dev_err line in dmesg), so the driver must check the returned uacce.flags;
 * with 'copy' (2025+) the flags are kept as asked.
 *
 * The driver then fills in algs, apiVer, qfPgNum, priv and calls {@link uacceRegister}.
 *
 * Returns the device. Throws KernelError: -EINVAL for an interface that is not one (name empty,
 * 64+ characters or containing '/', flags not a u32, ops not an object), -EBUSY when every
 * 32-bit id is taken (xa_alloc). Released by {@link uacceRemove}, which also undoes a failed
 * uacceRegister.
 */
export function uacceAlloc(core: UacceCore, parent: Device, iface: UacceInterface): UacceDevice {
  if (!(parent instanceof Device)) throw new KernelError(-ERRNO.EINVAL, 'uacce_alloc: no parent device');
  if (!iface || !validName(iface.name))
    throw new KernelError(-ERRNO.EINVAL, `uacce_alloc: bad name ${String(iface?.name)}`);
  let flags = iface.flags;
  if (!Number.isInteger(flags) || flags < 0 || flags > U32_MAX)
    throw new KernelError(-ERRNO.EINVAL, `uacce_alloc: bad flags ${String(flags)}`);
  if (typeof iface.ops !== 'object' || iface.ops === null)
    throw new KernelError(-ERRNO.EINVAL, 'uacce_alloc: no uacce_ops');
  if (flags & UACCE_DEV_SVA && core.options.svaNegotiation === 'clear' && !core.svaOps.supported(parent)) {
    flags = (flags & ~UACCE_DEV_SVA) >>> 0;
    core.mmCore.dmesg.printk(
      `${UACCE_NAME}: ${parent.name}: failed to enable SVA feature, UACCE_DEV_SVA cleared`,
    );
  }
  const ops = iface.ops;
  const r = core.xaAlloc(
    (devId) =>
      new UacceDevice({
        core,
        devId,
        name: `${iface.name}-${devId}`,
        parent,
        flags,
        ops,
        devt: MKDEV(core.major, devId),
      }),
  );
  if (typeof r === 'number') throw new KernelError(r, 'uacce_alloc: no free dev_id');
  return r;
}

/**
 * uacceRegister - make the accelerator visible (uacce_register): the char device for its dev_t,
 * /dev/<name>-<id> (mode 0600 root:root: uacce's class sets no devnode mode, so devtmpfs's
 * default applies until udev rules say otherwise) and /sys/class/uacce/<name>-<id>/ with the
 * attributes visible for the ops and region sizes set now.
 *
 * Returns 0, -ENODEV for no device (or one already removed), -EEXIST if it is already registered
 * (svasim refuses rather than leaking the first cdev), or cdev_device_add's -errno (uacce.cdev
 * stays null). Undone by {@link uacceRemove}.
 */
export function uacceRegister(uacce: UacceDevice | null | undefined): number {
  if (!uacce || uacce.removed) return -ERRNO.ENODEV;
  if (uacce.cdev) return -ERRNO.EEXIST;
  const cdev = new Cdev(uacce.core.fops, UACCE_NAME);
  const ret = uacce.core.devices.cdevDeviceAdd(cdev, uacce.dev);
  if (ret) return ret;
  uacce.cdev = cdev;
  return 0;
}

/**
 * uacceRemove - remove the accelerator (uacce_remove), e.g. when its driver unbinds. For every
 * open queue: put it (stop_queue if STARTED, put_queue, ZOMBIE), drop its SVA bond and zap every
 * user mapping of its file (the next CPU access there is SIGBUS: EFAULT in svasim). Then the
 * /dev node, sysfs directory and cdev go, the dev_id is freed for reuse, ops and parent are
 * cleared and the allocation reference is dropped.
 *
 * Open fds keep the device object: their ioctl and mmap answer -ENXIO, poll 0, and close is
 * safe (the object is freed - uacce.released - at the last one). New opens fail (the node is
 * gone; an open already past the node gets -ENODEV). A null device, or a second call, does
 * nothing. Nothing to release.
 */
export function uacceRemove(uacce: UacceDevice | null | undefined): void {
  if (!uacce || uacce.removed) return;
  for (const q of [...uacce.queues]) {
    uaccePutQueue(q);
    uacceUnbindQueue(q);
    if (q.mapping) unmapMappingRange(q.mapping);
  }
  const core = uacce.core;
  if (uacce.cdev) core.devices.cdevDeviceDel(uacce.cdev, uacce.dev);
  core.xaErase(uacce.devId);
  uacce.ops = null;
  uacce.parent = null;
  uacce.removed = true;
  putDevice(uacce.dev);
}
