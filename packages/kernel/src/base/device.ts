import type { DeviceClass } from './device-class';

/**
 * DeviceAttribute - one sysfs file of a device (struct device_attribute).
 * `show` renders the value (a string, or -errno); `store` parses a write and returns the count
 * consumed (normally value.length) or -errno. A missing method answers -EIO, as dev_attr_show
 * and dev_attr_store do.
 */
export interface DeviceAttribute {
  /** File name. */
  name: string;
  /** Permission bits: 0o444 read-only, 0o644 root-writable, 0o200 write-only, ... */
  mode: number;
  show?(dev: Device): string | number;
  store?(dev: Device, value: string): number;
}

/**
 * AttributeGroup - a set of attributes created together (struct attribute_group), in a
 * subdirectory when `name` is set. `isVisible` decides at creation time: 0 hides an attribute,
 * any other value is the mode its file gets.
 */
export interface AttributeGroup {
  name?: string;
  attrs: DeviceAttribute[];
  isVisible?(dev: Device, attr: DeviceAttribute): number;
}

/** Fields of a new {@link Device}. */
export interface DeviceInit {
  /** dev_name: the sysfs directory name and, by default, the /dev node name. */
  name: string;
  parent?: Device;
  devClass?: DeviceClass;
  /** MKDEV(major, minor) of a char device, 0 for none. */
  devt?: number;
  /** Driver data (dev_get_drvdata). */
  driverData?: unknown;
  /** Attribute groups of this device (dev->groups), added by deviceAdd. */
  groups?: AttributeGroup[];
  /** Called once when the last reference is dropped (dev->release). */
  release?(dev: Device): void;
}

/**
 * Device - struct device. The constructor is device_initialize (one reference, cannot fail);
 * DeviceModel.deviceAdd makes it visible (sysfs, /dev) and sets `realized`; deviceDel undoes
 * that; {@link putDevice} drops references, calling `release` at the last.
 */
export class Device {
  name: string;
  parent?: Device;
  devClass?: DeviceClass;
  devt: number;
  driverData: unknown;
  groups: AttributeGroup[];
  /** True between deviceAdd and deviceDel. */
  realized = false;
  /** Reference count (kobject kref). */
  refcount = 1;
  release?: (dev: Device) => void;

  constructor(init: DeviceInit) {
    this.name = init.name;
    this.parent = init.parent;
    this.devClass = init.devClass;
    this.devt = init.devt ?? 0;
    this.driverData = init.driverData ?? null;
    this.groups = init.groups ?? [];
    this.release = init.release;
  }
}

/** getDevice - take a reference (get_device). Released by {@link putDevice}. Throws on a released device. */
export function getDevice(dev: Device): Device {
  if (dev.refcount <= 0) throw new Error(`get_device on released device ${dev.name}`);
  dev.refcount++;
  return dev;
}

/**
 * putDevice - drop a reference (put_device); the last one calls dev.release once.
 * Throws on an underflow (a simulator bug).
 */
export function putDevice(dev: Device): void {
  if (dev.refcount <= 0) throw new Error(`put_device: refcount underflow on ${dev.name}`);
  if (--dev.refcount === 0) dev.release?.(dev);
}

/** devName - dev_name(). */
export function devName(dev: Device): string {
  return dev.name;
}

/** devGetDrvdata - dev_get_drvdata(). */
export function devGetDrvdata<T = unknown>(dev: Device): T {
  return dev.driverData as T;
}

/** devSetDrvdata - dev_set_drvdata(). */
export function devSetDrvdata(dev: Device, data: unknown): void {
  dev.driverData = data;
}
