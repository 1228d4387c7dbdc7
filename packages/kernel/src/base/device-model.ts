import { ERRNO, KernelError } from '../uapi/errno';
import { MAJOR, MINOR } from '../fs/inode';
import type { Sysfs } from './sysfs';
import type { ClassRegistry, DeviceClass, DevnodeInfo } from './device-class';
import { DEVTMPFS_DEFAULT_MODE, type Devtmpfs } from './devtmpfs';
import { Device, putDevice, type AttributeGroup, type DeviceAttribute } from './device';

/** Mode of the `dev` attribute every device with a number gets. */
const DEV_ATTR_MODE = 0o444;

/** The `dev` attribute: "major:minor\n" (drivers/base/core.c dev_show). */
const DEV_ATTR: DeviceAttribute = Object.freeze({
  name: 'dev',
  mode: DEV_ATTR_MODE,
  show: (dev: Device) => `${MAJOR(dev.devt)}:${MINOR(dev.devt)}\n`,
});

/** sysfs names cannot hold '/': the kobject core turns it into '!' (kobject_set_name_vargs). */
function kobjName(name: string): string {
  return name.replaceAll('/', '!');
}

/**
 * DeviceModel - device_add/device_del for one kernel (drivers/base/core.c): a device's sysfs
 * directory and attributes, its class membership and its /dev node.
 *
 * Devices of a class live in /sys/class/<class>/<name>; class-less devices in
 * /sys/devices/<parent chain>/<name>.
 */
export class DeviceModel {
  private readonly dirs = new Map<string, Device>();
  private readonly dirOf = new Map<Device, string>();

  constructor(
    private readonly sysfs: Sysfs,
    private readonly classes: ClassRegistry,
    private readonly devtmpfs: Devtmpfs,
  ) {}

  /**
   * deviceAdd - make `dev` visible (device_add): its sysfs directory with the `dev` attribute
   * (if it has a major), the class's dev groups and its own groups (hidden attributes are not
   * created), then its /dev node. `opts` are udev's overrides of the node's mode and owner;
   * otherwise the class decides, else 0600 root:root.
   *
   * Returns 0, or -EINVAL (empty name, unregistered class), -EEXIST (already added, or the name
   * is taken in its directory, or two attributes collide; nothing is left behind).
   * Undone by {@link deviceDel}. A /dev node that cannot be made is skipped, as devtmpfs does.
   */
  deviceAdd(dev: Device, opts?: DevnodeInfo): number {
    if (typeof dev.name !== 'string' || dev.name === '') return -ERRNO.EINVAL;
    if (dev.realized) return -ERRNO.EEXIST;
    const cls = dev.devClass;
    if (cls && !this.classes.has(cls)) return -ERRNO.EINVAL;
    const dir = this.sysfsDir(dev);
    if (this.dirs.has(dir)) return -ERRNO.EEXIST;

    const files: Array<[string, DeviceAttribute, number]> = [];
    if (MAJOR(dev.devt) !== 0) files.push([`${dir}/dev`, DEV_ATTR, DEV_ATTR.mode]);
    for (const group of [...(cls?.devGroups ?? []), ...dev.groups]) this.collect(dev, dir, group, files);
    const added: string[] = [];
    for (const [path, attr, mode] of files) {
      const ret = this.sysfs.add(path, attr, dev, mode);
      if (ret < 0) {
        for (const p of added) this.sysfs.remove(p);
        return ret === -ERRNO.ENOTDIR ? -ERRNO.EEXIST : ret;
      }
      added.push(path);
    }

    this.dirs.set(dir, dev);
    this.dirOf.set(dev, dir);
    cls?.devices.push(dev);
    dev.realized = true;
    if (MAJOR(dev.devt) !== 0) {
      const info = cls?.devnode?.(dev) ?? {};
      this.devtmpfs.createNode(dev, {
        name: opts?.name ?? info.name ?? dev.name,
        mode: opts?.mode ?? info.mode ?? cls?.devnodeMode ?? DEVTMPFS_DEFAULT_MODE,
        uid: opts?.uid ?? info.uid ?? 0,
        gid: opts?.gid ?? info.gid ?? 0,
      });
    }
    return 0;
  }

  /**
   * deviceDel - undo {@link deviceAdd} (device_del): the /dev node, the sysfs files and the
   * class membership go. References are not dropped (see deviceUnregister). No-op if not added.
   */
  deviceDel(dev: Device): void {
    if (!dev.realized) return;
    this.devtmpfs.deleteNode(dev);
    this.sysfs.removeDevice(dev);
    const dir = this.dirOf.get(dev);
    if (dir !== undefined) this.dirs.delete(dir);
    this.dirOf.delete(dev);
    const list = dev.devClass?.devices;
    const i = list ? list.indexOf(dev) : -1;
    if (list && i >= 0) list.splice(i, 1);
    dev.realized = false;
  }

  /** deviceRegister - device_register: {@link deviceAdd} (the constructor already initialized). */
  deviceRegister(dev: Device, opts?: DevnodeInfo): number {
    return this.deviceAdd(dev, opts);
  }

  /** deviceUnregister - device_unregister: {@link deviceDel}, then drop the caller's reference. */
  deviceUnregister(dev: Device): void {
    this.deviceDel(dev);
    putDevice(dev);
  }

  /**
   * deviceCreate - make and add a class device (device_create_with_groups).
   * Returns the Device (released by deviceDestroy or deviceUnregister); throws KernelError with
   * deviceAdd's errno on failure, after dropping the new device.
   */
  deviceCreate(
    cls: DeviceClass,
    parent: Device | undefined,
    devt: number,
    driverData: unknown,
    name: string,
    groups: AttributeGroup[] = [],
    opts?: DevnodeInfo,
  ): Device {
    const dev = new Device({ name, parent, devClass: cls, devt, driverData, groups });
    const ret = this.deviceAdd(dev, opts);
    if (ret < 0) {
      putDevice(dev);
      throw new KernelError(ret, `device_create ${String(name)}`);
    }
    return dev;
  }

  /** deviceDestroy - unregister the device of class `cls` with number `devt` (device_destroy). Returns 0 or -ENOENT. */
  deviceDestroy(cls: DeviceClass, devt: number): number {
    const dev = cls.devices.find((d) => d.devt === devt);
    if (!dev) return -ERRNO.ENOENT;
    this.deviceUnregister(dev);
    return 0;
  }

  /** The sysfs directory of an added device, or undefined. */
  devicePath(dev: Device): string | undefined {
    return this.dirOf.get(dev);
  }

  /** The added device whose sysfs directory is `dir`, or undefined. */
  findByPath(dir: string): Device | undefined {
    return this.dirs.get(dir);
  }

  private sysfsDir(dev: Device): string {
    if (dev.devClass) return `/sys/class/${dev.devClass.name}/${kobjName(dev.name)}`;
    const chain: string[] = [];
    for (let d: Device | undefined = dev; d; d = d.parent) chain.unshift(kobjName(d.name));
    return `/sys/devices/${chain.join('/')}`;
  }

  private collect(
    dev: Device,
    dir: string,
    group: AttributeGroup,
    out: Array<[string, DeviceAttribute, number]>,
  ): void {
    const base = group.name ? `${dir}/${group.name}` : dir;
    for (const attr of group.attrs) {
      const mode = group.isVisible ? group.isVisible(dev, attr) : attr.mode;
      if (mode === 0) continue;
      out.push([`${base}/${attr.name}`, attr, mode]);
    }
  }
}
