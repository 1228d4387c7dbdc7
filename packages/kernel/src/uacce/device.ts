import type { Cdev } from '../base/chrdev';
import { Device } from '../base/device';
import { UACCE_MAX_REGION } from './constants';
import type { UacceOps } from './ops';
import type { UacceQueue } from './queue';
import type { UacceCore } from './core';

const uacceOfDevice = new WeakMap<Device, UacceDevice>();

/** What the {@link UacceDevice} constructor needs (uacceAlloc fills it in). */
export interface UacceDeviceInit {
  core: UacceCore;
  devId: number;
  /** The full device name, "<interface name>-<dev_id>". */
  name: string;
  parent: Device;
  /** Negotiated UACCE_DEV_* flags. */
  flags: number;
  ops: UacceOps;
  /** MKDEV(uacce major, dev_id). */
  devt: number;
}

/**
 * UacceDevice - struct uacce_device: an accelerator exposed to user space as
 * /dev/<name>-<id> and /sys/class/uacce/<name>-<id>. Made by uacceAlloc; the driver fills in
 * algs, apiVer, qfPgNum and priv, then calls uacceRegister; released by uacceRemove (open fds
 * keep the object, which is freed - `released` - when the last of them closes).
 */
export class UacceDevice {
  /** The kernel's uacce state this device belongs to (svasim: the C globals of uacce.c). */
  readonly core: UacceCore;
  /** Supported algorithms, newline-separated (the `algorithms` file). */
  algs: string | null = null;
  /** API version string (the `api` file); user space matches its driver on it. */
  apiVer: string | null = null;
  /** The driver's callbacks; null once removed (every later use must fail before reaching it). */
  ops: UacceOps | null;
  /** Pages of each region type (qf_pg_num): the region_*_size files, hidden when 0. */
  readonly qfPgNum: number[] = new Array<number>(UACCE_MAX_REGION).fill(0);
  /** The parent (hardware) device; null once removed. */
  parent: Device | null;
  /** A virtual function (is_vf). */
  isVf = false;
  /** Negotiated UACCE_DEV_* flags: check UACCE_DEV_SVA here, not in what was asked for. */
  flags: number;
  /** Global id (xa_alloc over 32-bit ids, lowest free first); also the minor. */
  readonly devId: number;
  /** The char device while registered (uacce->cdev); null before uacceRegister or if it failed. */
  cdev: Cdev | null = null;
  /** The class device (uacce->dev): sysfs directory and /dev node. */
  readonly dev: Device;
  /** Driver data (uacce->priv). */
  priv: unknown = null;
  /** Open queues, oldest first (uacce->queues). */
  readonly queues: UacceQueue[] = [];
  /** svasim: uacceRemove has run. */
  removed = false;
  /** svasim: the last reference went (uacce_release freed it). */
  released = false;

  /** @internal made by uacceAlloc. */
  constructor(init: UacceDeviceInit) {
    this.core = init.core;
    this.devId = init.devId;
    this.parent = init.parent;
    this.flags = init.flags;
    this.ops = init.ops;
    this.dev = new Device({
      name: init.name,
      parent: init.parent,
      devClass: init.core.uacceClass,
      devt: init.devt,
      groups: init.core.devGroups,
      release: () => {
        this.released = true;
      },
    });
    uacceOfDevice.set(this.dev, this);
  }

  /** dev_name(&uacce->dev): "<name>-<id>". */
  get name(): string {
    return this.dev.name;
  }
}

/** toUacceDevice - the UacceDevice whose class device is `dev` (to_uacce_device), or undefined. */
export function toUacceDevice(dev: Device): UacceDevice | undefined {
  return uacceOfDevice.get(dev);
}
