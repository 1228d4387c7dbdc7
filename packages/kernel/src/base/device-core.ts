import { Vfs, doSysOpen } from '../fs/vfs';
import type { Current } from '../proc/current';
import { Sysfs, type SysfsCaller } from './sysfs';
import { ClassRegistry, type DeviceClass, type DevnodeInfo } from './device-class';
import { ChrdevRegistry, cdevDeviceAdd, cdevDeviceDel, type Cdev } from './chrdev';
import { Devtmpfs } from './devtmpfs';
import { DeviceModel } from './device-model';
import { MiscRegistry, type MiscDevice } from './misc';
import type { Device } from './device';

/**
 * DeviceCore - everything one kernel needs for files and devices: the path namespace (/dev),
 * sysfs, classes, char device numbers, devtmpfs, the device model and misc devices.
 * Make one per kernel; two cores share nothing. Constructing it registers the misc class and
 * major 10, as misc_init does at boot.
 */
export class DeviceCore {
  readonly vfs: Vfs;
  readonly sysfs: Sysfs;
  readonly classes: ClassRegistry;
  readonly chrdevs: ChrdevRegistry;
  readonly devtmpfs: Devtmpfs;
  readonly devices: DeviceModel;
  readonly misc: MiscRegistry;

  constructor() {
    this.vfs = new Vfs();
    this.sysfs = new Sysfs();
    this.classes = new ClassRegistry();
    this.chrdevs = new ChrdevRegistry();
    this.devtmpfs = new Devtmpfs(this.vfs, this.chrdevs.defChrFops);
    this.devices = new DeviceModel(this.sysfs, this.classes, this.devtmpfs);
    this.misc = new MiscRegistry(this.devices, this.classes, this.chrdevs);
  }

  /** open(2) on this kernel's namespace: see doSysOpen. Returns the fd or -errno. */
  open(current: Current, path: string, flags: number): number {
    return doSysOpen(this.vfs, current, path, flags);
  }

  /** classRegister - see ClassRegistry.classRegister (0, -EINVAL, -EEXIST). */
  classRegister(cls: DeviceClass): number {
    return this.classes.classRegister(cls);
  }

  /** classUnregister - see ClassRegistry.classUnregister (0, -ENOENT, -EBUSY). */
  classUnregister(cls: DeviceClass): number {
    return this.classes.classUnregister(cls);
  }

  /** deviceAdd - see DeviceModel.deviceAdd (0, -EINVAL, -EEXIST); undone by deviceDel. */
  deviceAdd(dev: Device, opts?: DevnodeInfo): number {
    return this.devices.deviceAdd(dev, opts);
  }

  /** deviceDel - see DeviceModel.deviceDel. */
  deviceDel(dev: Device): void {
    this.devices.deviceDel(dev);
  }

  /** cdevDeviceAdd - see chrdev.ts cdevDeviceAdd (0 or -errno); undone by cdevDeviceDel. */
  cdevDeviceAdd(cdev: Cdev, dev: Device, opts?: DevnodeInfo): number {
    return cdevDeviceAdd(this, cdev, dev, opts);
  }

  /** cdevDeviceDel - see chrdev.ts cdevDeviceDel. */
  cdevDeviceDel(cdev: Cdev, dev: Device): void {
    cdevDeviceDel(this, cdev, dev);
  }

  /** allocChrdevRegion - see ChrdevRegistry.allocChrdevRegion (first dev_t, or -EINVAL/-EBUSY). */
  allocChrdevRegion(baseminor: number, count: number, name: string): number {
    return this.chrdevs.allocChrdevRegion(baseminor, count, name);
  }

  /** unregisterChrdevRegion - see ChrdevRegistry.unregisterChrdevRegion. */
  unregisterChrdevRegion(from: number, count: number): number {
    return this.chrdevs.unregisterChrdevRegion(from, count);
  }

  /** miscRegister - see MiscRegistry.miscRegister (0, -EINVAL, -EBUSY, -EEXIST); undone by miscDeregister. */
  miscRegister(misc: MiscDevice): number {
    return this.misc.miscRegister(misc);
  }

  /** miscDeregister - see MiscRegistry.miscDeregister (0 or -EINVAL). */
  miscDeregister(misc: MiscDevice): number {
    return this.misc.miscDeregister(misc);
  }

  /** readSysfs - Sysfs.read: the text or -errno. `current` omitted means the kernel (root). */
  readSysfs(path: string, current?: SysfsCaller): string | number {
    return this.sysfs.read(path, current);
  }

  /** writeSysfs - Sysfs.write: store's count or -errno. */
  writeSysfs(path: string, value: string | number, current?: SysfsCaller): number {
    return this.sysfs.write(path, value, current);
  }
}
