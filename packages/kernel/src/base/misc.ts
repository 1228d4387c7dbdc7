import { ERRNO, KernelError } from '../uapi/errno';
import type { File, FileOperations } from '../fs/file';
import { MINOR, MINORMASK, MKDEV, type Inode } from '../fs/inode';
import type { Current } from '../proc/current';
import type { AttributeGroup, Device } from './device';
import { DeviceClass, type ClassRegistry } from './device-class';
import type { ChrdevRegistry } from './chrdev';
import type { DeviceModel } from './device-model';

/** The misc character major (include/uapi/linux/major.h). */
export const MISC_MAJOR = 10;
/** Ask misc_register for a dynamic minor (include/linux/miscdevice.h). */
export const MISC_DYNAMIC_MINOR = 255;
/** Dynamic minors are allocated upward from here (drivers/char/misc.c since 2025: above 255). */
export const MISC_DYNAMIC_MINOR_FIRST = MISC_DYNAMIC_MINOR + 1;

/**
 * MiscDevice - struct miscdevice: a single char device under major 10, with /dev/<nodename or
 * name> and /sys/class/misc/<name>. Opening it sets file.privateData to this object before the
 * driver's open runs (misc_open), so drivers need no open of their own.
 */
export interface MiscDevice {
  /** A fixed minor, or MISC_DYNAMIC_MINOR to get one (written back by miscRegister). */
  minor: number;
  name: string;
  fops: FileOperations;
  /** /dev node mode; 0 or absent means devtmpfs's 0600. */
  mode?: number;
  /** /dev node name if not `name` (may contain '/'). */
  nodename?: string;
  parent?: Device;
  /** Extra sysfs attribute groups (misc->groups). */
  groups?: AttributeGroup[];
  /** The class device, set while registered (misc->this_device). */
  thisDevice?: Device;
}

/**
 * MiscRegistry - one kernel's misc devices (drivers/char/misc.c). Creating it registers the
 * "misc" class and major 10 with the given registries.
 */
export class MiscRegistry {
  /** The misc class (/sys/class/misc). */
  readonly miscClass: DeviceClass;
  /** Newest first, as misc_list is. */
  private readonly list: MiscDevice[] = [];
  private readonly minors = new Set<number>();
  private readonly dynamic = new Set<MiscDevice>();

  /** Throws KernelError if the misc class or major 10 cannot be registered (a boot failure). */
  constructor(
    private readonly devices: DeviceModel,
    classes: ClassRegistry,
    chrdevs: ChrdevRegistry,
  ) {
    this.miscClass = new DeviceClass('misc', {
      devnode: (dev: Device) => {
        const c = dev.driverData as MiscDevice;
        return { mode: c.mode || undefined, name: c.nodename };
      },
    });
    const cret = classes.classRegister(this.miscClass);
    if (cret < 0) throw new KernelError(cret, 'misc class');
    const fops: FileOperations = Object.freeze({
      owner: 'misc',
      open: (inode: Inode, file: File, current: Current): number => this.miscOpen(inode, file, current),
    });
    // Every minor of major 10, as misc_init has claimed since dynamic minors went past 255.
    const ret = chrdevs.registerChrdev(MISC_MAJOR, 'misc', fops, 0, MINORMASK + 1);
    if (ret < 0) throw new KernelError(ret, 'unable to get major 10 for misc devices');
  }

  /**
   * miscRegister - register a misc device (misc_register): reserve its minor (a dynamic one
   * from 256 up if `minor` is MISC_DYNAMIC_MINOR, written back to misc.minor), create the class
   * device with /sys/class/misc/<name> and /dev/<nodename ?? name>.
   *
   * Returns 0, or:
   * - -EINVAL: empty or non-string name, missing fops, a minor that is not an integer in [0, 2^20);
   * - -EBUSY: the fixed minor is taken, or no dynamic minor is left;
   * - -EEXIST: a misc device of that name exists (device_create's error, as in the kernel).
   * On failure a dynamic minor is given back and misc.minor is MISC_DYNAMIC_MINOR again.
   * Released by {@link miscDeregister}.
   */
  miscRegister(misc: MiscDevice): number {
    if (typeof misc?.name !== 'string' || misc.name === '') return -ERRNO.EINVAL;
    if (typeof misc.fops !== 'object' || misc.fops === null) return -ERRNO.EINVAL;
    if (!Number.isInteger(misc.minor) || misc.minor < 0 || misc.minor > MINORMASK) return -ERRNO.EINVAL;
    if (this.list.includes(misc)) return -ERRNO.EBUSY;
    const isDynamic = misc.minor === MISC_DYNAMIC_MINOR;
    if (isDynamic) {
      const m = this.allocDynamicMinor();
      if (m < 0) return m;
      misc.minor = m;
    } else if (this.minors.has(misc.minor)) {
      return -ERRNO.EBUSY;
    }
    this.minors.add(misc.minor);
    try {
      misc.thisDevice = this.devices.deviceCreate(
        this.miscClass,
        misc.parent,
        MKDEV(MISC_MAJOR, misc.minor),
        misc,
        misc.name,
        misc.groups ?? [],
      );
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      this.minors.delete(misc.minor);
      if (isDynamic) misc.minor = MISC_DYNAMIC_MINOR;
      return e.errno;
    }
    if (isDynamic) this.dynamic.add(misc);
    this.list.unshift(misc);
    return 0;
  }

  /**
   * miscDeregister - undo {@link miscRegister} (misc_deregister): the device, its sysfs files
   * and /dev node go, the minor is freed (a dynamic one is reset to MISC_DYNAMIC_MINOR so the
   * structure can be registered again). Open files keep working. Returns 0, or -EINVAL if
   * `misc` is not registered.
   */
  miscDeregister(misc: MiscDevice): number {
    const i = this.list.indexOf(misc);
    if (i < 0) return -ERRNO.EINVAL;
    this.list.splice(i, 1);
    if (misc.thisDevice) this.devices.deviceUnregister(misc.thisDevice);
    misc.thisDevice = undefined;
    this.minors.delete(misc.minor);
    if (this.dynamic.delete(misc)) misc.minor = MISC_DYNAMIC_MINOR;
    return 0;
  }

  /** The registered misc devices, newest first (/proc/misc). */
  devicesList(): readonly MiscDevice[] {
    return [...this.list];
  }

  /** The registered misc device with `minor`, or undefined. */
  findByMinor(minor: number): MiscDevice | undefined {
    return this.list.find((c) => c.minor === minor);
  }

  private allocDynamicMinor(): number {
    for (let m = MISC_DYNAMIC_MINOR_FIRST; m <= MINORMASK; m++) if (!this.minors.has(m)) return m;
    return -ERRNO.EBUSY;
  }

  /** misc_open: find the device by minor (-ENODEV), hand the File to its fops with privateData = misc. */
  private miscOpen(inode: Inode, file: File, current: Current): number {
    const c = this.findByMinor(MINOR(inode.rdev));
    if (!c) return -ERRNO.ENODEV;
    file.privateData = c;
    file.fops = c.fops;
    const open = c.fops.open;
    return open ? open.call(c.fops, inode, file, current) : 0;
  }
}
