import { ERRNO } from '../uapi/errno';
import type { AttributeGroup, Device } from './device';

/** What a class says about a device's /dev node (the class devnode callback). */
export interface DevnodeInfo {
  /** Node name under /dev (may contain '/'), instead of the device name. */
  name?: string;
  /** Permission bits of the node. */
  mode?: number;
  uid?: number;
  gid?: number;
}

/** Options of a {@link DeviceClass}. */
export interface DeviceClassInit {
  /** Mode of every /dev node of the class, unless `devnode` says otherwise. */
  devnodeMode?: number;
  /** Per-device node name and mode (struct class .devnode), e.g. misc's nodename and mode. */
  devnode?(dev: Device): DevnodeInfo | undefined;
  /** Attribute groups every device of the class gets (class->dev_groups). */
  devGroups?: AttributeGroup[];
}

/**
 * DeviceClass - struct class: a kind of device (misc, uacce) with a /sys/class/<name> directory.
 * Registered with {@link ClassRegistry.classRegister}, released by classUnregister.
 */
export class DeviceClass {
  readonly name: string;
  devnodeMode?: number;
  devnode?: (dev: Device) => DevnodeInfo | undefined;
  devGroups: AttributeGroup[];
  /** The class's added devices, in the order they were added. */
  readonly devices: Device[] = [];

  constructor(name: string, init: DeviceClassInit = {}) {
    this.name = name;
    this.devnodeMode = init.devnodeMode;
    this.devnode = init.devnode;
    this.devGroups = init.devGroups ?? [];
  }
}

/** Class names are sysfs directory names. */
function validClassName(name: unknown): boolean {
  return typeof name === 'string' && name.length > 0 && !name.includes('/') && name !== '.' && name !== '..';
}

/** ClassRegistry - one kernel's registered classes (class_register/class_unregister). */
export class ClassRegistry {
  private readonly classes = new Map<string, DeviceClass>();

  /**
   * classRegister - make `cls` available to devices. Returns 0, -EINVAL for a name that cannot be
   * a directory, or -EEXIST if the name is taken. Released by {@link classUnregister}.
   */
  classRegister(cls: DeviceClass): number {
    if (!validClassName(cls?.name)) return -ERRNO.EINVAL;
    if (this.classes.has(cls.name)) return -ERRNO.EEXIST;
    this.classes.set(cls.name, cls);
    return 0;
  }

  /**
   * classUnregister - remove `cls`. Returns 0, -ENOENT if it is not registered, or -EBUSY while
   * devices of the class are still added (the kernel would leave them dangling; svasim refuses).
   */
  classUnregister(cls: DeviceClass): number {
    if (this.classes.get(cls.name) !== cls) return -ERRNO.ENOENT;
    if (cls.devices.length > 0) return -ERRNO.EBUSY;
    this.classes.delete(cls.name);
    return 0;
  }

  /** True if this very class object is registered. */
  has(cls: DeviceClass): boolean {
    return this.classes.get(cls.name) === cls;
  }

  /** The class registered under `name`, or undefined. */
  get(name: string): DeviceClass | undefined {
    return this.classes.get(name);
  }

  /** Registered class names, sorted. */
  names(): string[] {
    return [...this.classes.keys()].sort();
  }
}
