import { ERRNO } from '../uapi/errno';
import type { File, FileOperations } from '../fs/file';
import { MAJOR, MINOR, MINORMASK, MKDEV, type Inode } from '../fs/inode';
import type { Current } from '../proc/current';
import type { Device } from './device';
import type { DeviceModel } from './device-model';
import type { DevnodeInfo } from './device-class';

/** CHRDEV_MAJOR_MAX: majors are below this (include/linux/fs.h). */
export const CHRDEV_MAJOR_MAX = 512;
/** Dynamic majors are taken from 254 down to CHRDEV_MAJOR_DYN_END ... */
export const CHRDEV_MAJOR_DYN_START = 254;
export const CHRDEV_MAJOR_DYN_END = 234;
/** ... then from CHRDEV_MAJOR_DYN_EXT_START down to CHRDEV_MAJOR_DYN_EXT_END (fs/char_dev.c find_dynamic_major). */
export const CHRDEV_MAJOR_DYN_EXT_START = 511;
export const CHRDEV_MAJOR_DYN_EXT_END = 384;
/** register_chrdev claims this many minors. */
export const CHRDEV_LEGACY_MINORS = 256;

/**
 * Cdev - struct cdev: the file operations behind a range of device numbers.
 * The constructor is cdev_init; {@link ChrdevRegistry.cdevAdd} makes it reachable, cdevDel
 * unreachable (open files keep their operations).
 */
export class Cdev {
  /** First device number served (set by cdevAdd). */
  dev = 0;
  /** Number of consecutive minors served. */
  count = 0;
  /** True between cdevAdd and cdevDel. */
  added = false;

  constructor(
    public fops: FileOperations,
    public owner?: string,
  ) {}
}

/** A registered device-number range (struct char_device_struct). */
export interface ChrdevRegion {
  readonly major: number;
  readonly baseminor: number;
  readonly count: number;
  readonly name: string;
}

function validCount(count: number): boolean {
  return Number.isInteger(count) && count > 0;
}

/**
 * ChrdevRegistry - one kernel's character device numbers (fs/char_dev.c): region reservations
 * and the device-number -> Cdev map that opens of char nodes go through.
 */
export class ChrdevRegistry {
  private readonly regions: ChrdevRegion[] = [];
  /** Newest first: a later cdevAdd over the same numbers wins, as kobj_map lookups do. */
  private readonly cdevs: Cdev[] = [];

  /**
   * defChrFops - the operations of every char inode (def_chr_fops): open looks up the Cdev by
   * the inode's device number (-ENXIO if none), switches the File to the Cdev's operations and
   * calls their open.
   */
  readonly defChrFops: FileOperations = Object.freeze({
    owner: 'chrdev',
    open: (inode: Inode, file: File, current: Current): number => this.chrdevOpen(inode, file, current),
  });

  /**
   * registerChrdevRegion - reserve `count` device numbers from `from` (register_chrdev_region).
   * Returns 0, -EINVAL for a bad major (>= CHRDEV_MAJOR_MAX), count or a range past the last
   * minor, or -EBUSY if it overlaps a reserved range. Released by {@link unregisterChrdevRegion}.
   */
  registerChrdevRegion(from: number, count: number, name: string): number {
    if (!Number.isInteger(from) || from < 0 || !validCount(count)) return -ERRNO.EINVAL;
    return this.reserve(MAJOR(from), MINOR(from), count, name);
  }

  /**
   * allocChrdevRegion - reserve `count` minors from `baseminor` under a free dynamic major
   * (alloc_chrdev_region): 254 down to 234, then 511 down to 384, first free wins.
   * Returns the first device number MKDEV(major, baseminor) (the C out-parameter), or -EINVAL
   * (bad arguments) or -EBUSY (no free major). Released by {@link unregisterChrdevRegion}.
   */
  allocChrdevRegion(baseminor: number, count: number, name: string): number {
    if (!Number.isInteger(baseminor) || baseminor < 0 || !validCount(count)) return -ERRNO.EINVAL;
    const major = this.findDynamicMajor();
    if (major < 0) return major;
    const ret = this.reserve(major, baseminor, count, name);
    return ret < 0 ? ret : MKDEV(major, baseminor);
  }

  /** unregisterChrdevRegion - release the range reserved at `from` with `count`. Returns 0 or -ENOENT. */
  unregisterChrdevRegion(from: number, count: number): number {
    const i = this.regions.findIndex(
      (r) => r.major === MAJOR(from) && r.baseminor === MINOR(from) && r.count === count,
    );
    if (i < 0) return -ERRNO.ENOENT;
    this.regions.splice(i, 1);
    return 0;
  }

  /**
   * registerChrdev - claim `count` minors from `baseminor` of `major` (0 = a dynamic major) and
   * serve them with `fops` (register_chrdev claims minors 0-255; the extra arguments are
   * __register_chrdev's). Returns the major when `major` was 0, else 0; or -errno as
   * {@link registerChrdevRegion}. Released by {@link unregisterChrdev} with the same range.
   */
  registerChrdev(
    major: number,
    name: string,
    fops: FileOperations,
    baseminor = 0,
    count = CHRDEV_LEGACY_MINORS,
  ): number {
    if (!Number.isInteger(major) || major < 0) return -ERRNO.EINVAL;
    let base: number;
    if (major === 0) {
      base = this.allocChrdevRegion(baseminor, count, name);
      if (base < 0) return base;
    } else {
      if (!Number.isInteger(baseminor) || baseminor < 0) return -ERRNO.EINVAL;
      base = MKDEV(major, baseminor);
      const ret = this.registerChrdevRegion(base, count, name);
      if (ret < 0) return ret;
    }
    this.cdevAdd(new Cdev(fops, name), base, count);
    return major === 0 ? MAJOR(base) : 0;
  }

  /** unregisterChrdev - undo {@link registerChrdev} (same major, range and name). Returns 0 or -ENOENT. */
  unregisterChrdev(major: number, name: string, baseminor = 0, count = CHRDEV_LEGACY_MINORS): number {
    const base = MKDEV(major, baseminor);
    const cdev = this.cdevs.find((c) => c.dev === base && c.count === count && c.owner === name);
    if (cdev) this.cdevDel(cdev);
    return this.unregisterChrdevRegion(base, count);
  }

  /**
   * cdevAdd - make `cdev` serve `count` device numbers from `dev` (cdev_add). Returns 0, or
   * -EINVAL for a bad range or a cdev already added. Undone by {@link cdevDel}.
   */
  cdevAdd(cdev: Cdev, dev: number, count: number): number {
    if (cdev.added || !Number.isInteger(dev) || dev < 0 || !validCount(count)) return -ERRNO.EINVAL;
    cdev.dev = dev;
    cdev.count = count;
    cdev.added = true;
    this.cdevs.unshift(cdev);
    return 0;
  }

  /** cdevDel - stop serving `cdev`'s numbers (cdev_del). New opens get -ENXIO; open Files are unaffected. */
  cdevDel(cdev: Cdev): void {
    const i = this.cdevs.indexOf(cdev);
    if (i >= 0) this.cdevs.splice(i, 1);
    cdev.added = false;
  }

  /** lookup - the Cdev serving device number `devt`, or undefined. */
  lookup(devt: number): Cdev | undefined {
    return this.cdevs.find((c) => devt >= c.dev && devt < c.dev + c.count && MAJOR(devt) === MAJOR(c.dev));
  }

  /** The reserved ranges, by major then minor (/proc/devices). */
  listRegions(): ChrdevRegion[] {
    return [...this.regions].sort((a, b) => a.major - b.major || a.baseminor - b.baseminor);
  }

  private chrdevOpen(inode: Inode, file: File, current: Current): number {
    const cdev = this.lookup(inode.rdev);
    if (!cdev) return -ERRNO.ENXIO;
    file.fops = cdev.fops;
    const open = cdev.fops.open;
    return open ? open.call(cdev.fops, inode, file, current) : 0;
  }

  private reserve(major: number, baseminor: number, count: number, name: string): number {
    if (major >= CHRDEV_MAJOR_MAX) return -ERRNO.EINVAL;
    if (baseminor + count - 1 > MINORMASK) return -ERRNO.EINVAL;
    const end = baseminor + count;
    const clash = this.regions.some(
      (r) => r.major === major && baseminor < r.baseminor + r.count && r.baseminor < end,
    );
    if (clash) return -ERRNO.EBUSY;
    this.regions.push(Object.freeze({ major, baseminor, count, name }));
    return 0;
  }

  private findDynamicMajor(): number {
    const used = new Set(this.regions.map((r) => r.major));
    for (let m = CHRDEV_MAJOR_DYN_START; m >= CHRDEV_MAJOR_DYN_END; m--) if (!used.has(m)) return m;
    for (let m = CHRDEV_MAJOR_DYN_EXT_START; m >= CHRDEV_MAJOR_DYN_EXT_END; m--) if (!used.has(m)) return m;
    return -ERRNO.EBUSY;
  }
}

/** Where a char device's /dev node should differ from the class default (udev rules: MODE, OWNER, GROUP). */
export type DevnodeOptions = DevnodeInfo;

/** What {@link cdevDeviceAdd} needs: the chrdev map and the device model (a DeviceCore has both). */
export interface CdevContext {
  readonly chrdevs: ChrdevRegistry;
  readonly devices: DeviceModel;
}

/**
 * cdevDeviceAdd - add `cdev` for dev.devt and then the device (cdev_device_add): sysfs
 * entries and the /dev node (default 0600 root:root, or the class's or `opts`' mode/owner).
 * Returns 0, or the -errno of cdevAdd or deviceAdd (the cdev is removed again on failure).
 * Undone by {@link cdevDeviceDel}.
 */
export function cdevDeviceAdd(ctx: CdevContext, cdev: Cdev, dev: Device, opts?: DevnodeOptions): number {
  if (dev.devt) {
    const ret = ctx.chrdevs.cdevAdd(cdev, dev.devt, 1);
    if (ret < 0) return ret;
  }
  const ret = ctx.devices.deviceAdd(dev, opts);
  if (ret < 0 && dev.devt) ctx.chrdevs.cdevDel(cdev);
  return ret;
}

/**
 * cdevDeviceDel - remove the device (sysfs, /dev node) and then the cdev (cdev_device_del).
 * Files already open keep their File and operations; the driver decides what they see.
 */
export function cdevDeviceDel(ctx: CdevContext, cdev: Cdev, dev: Device): void {
  ctx.devices.deviceDel(dev);
  if (dev.devt) ctx.chrdevs.cdevDel(cdev);
}
