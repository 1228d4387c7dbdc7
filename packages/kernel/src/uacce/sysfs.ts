import type { AttributeGroup, Device, DeviceAttribute } from '../base/device';
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { UACCE_MAX_ERR_THRESHOLD } from './constants';
import { toUacceDevice, type UacceDevice } from './device';
import { kstrtoul } from './kstrtox';
import { UACCE_QFRT_DUS, UACCE_QFRT_MMIO } from './uapi';

/** Mode of a DEVICE_ATTR_RO attribute. */
const ATTR_RO = 0o444;
/** Mode of a DEVICE_ATTR_RW attribute. */
const ATTR_RW = 0o644;

function uacceOf(dev: Device): UacceDevice {
  const u = toUacceDevice(dev);
  if (!u) throw new Error(`uacce attribute on non-uacce device ${dev.name}`);
  return u;
}

/** printf's "%s" of a possibly NULL string. */
function str(s: string | null): string {
  return s ?? '(null)';
}

/** printf's "%d" of an int and "%u" of a u32. */
const asInt = (n: number): number => n | 0;
const asU32 = (n: number): number => n >>> 0;

/** api: the API version string. */
export const UACCE_ATTR_API: DeviceAttribute = Object.freeze({
  name: 'api',
  mode: ATTR_RO,
  show: (dev: Device) => `${str(uacceOf(dev).apiVer)}\n`,
});

/** flags: the negotiated UACCE_DEV_* flags ("%u"). */
export const UACCE_ATTR_FLAGS: DeviceAttribute = Object.freeze({
  name: 'flags',
  mode: ATTR_RO,
  show: (dev: Device) => `${asU32(uacceOf(dev).flags)}\n`,
});

/** available_instances: free queues ("%d"), or -ENODEV without get_available_instances. */
export const UACCE_ATTR_AVAILABLE_INSTANCES: DeviceAttribute = Object.freeze({
  name: 'available_instances',
  mode: ATTR_RO,
  show: (dev: Device) => {
    const u = uacceOf(dev);
    if (!u.ops?.getAvailableInstances) return -ERRNO.ENODEV;
    return `${asInt(u.ops.getAvailableInstances(u))}\n`;
  },
});

/** algorithms: newline-separated algorithm names. */
export const UACCE_ATTR_ALGORITHMS: DeviceAttribute = Object.freeze({
  name: 'algorithms',
  mode: ATTR_RO,
  show: (dev: Device) => `${str(uacceOf(dev).algs)}\n`,
});

/** region_mmio_size: bytes of the MMIO region (qf_pg_num << PAGE_SHIFT); hidden when 0. */
export const UACCE_ATTR_REGION_MMIO_SIZE: DeviceAttribute = Object.freeze({
  name: 'region_mmio_size',
  mode: ATTR_RO,
  show: (dev: Device) => `${uacceOf(dev).qfPgNum[UACCE_QFRT_MMIO] * PAGE_SIZE}\n`,
});

/** region_dus_size: bytes of the DUS region; hidden when 0. */
export const UACCE_ATTR_REGION_DUS_SIZE: DeviceAttribute = Object.freeze({
  name: 'region_dus_size',
  mode: ATTR_RO,
  show: (dev: Device) => `${uacceOf(dev).qfPgNum[UACCE_QFRT_DUS] * PAGE_SIZE}\n`,
});

/** isolate: 0 working, 1 isolated ("%d" of get_isolate_state); hidden without the op. */
export const UACCE_ATTR_ISOLATE: DeviceAttribute = Object.freeze({
  name: 'isolate',
  mode: ATTR_RO,
  show: (dev: Device) => {
    const u = uacceOf(dev);
    // Hidden without the op, so this only answers if visibility was bypassed.
    if (!u.ops?.getIsolateState) return -ERRNO.ENOENT;
    return `${asInt(u.ops.getIsolateState(u))}\n`;
  },
});

/**
 * isolate_strategy: the hardware-error threshold per hour (0 = never isolate), read "%u" and
 * written as a kstrtoul(…, 0) number up to UACCE_MAX_ERR_THRESHOLD. A missing op answers -ENOENT;
 * an unparsable or too large value -EINVAL; the driver's write error is passed through.
 */
export const UACCE_ATTR_ISOLATE_STRATEGY: DeviceAttribute = Object.freeze({
  name: 'isolate_strategy',
  mode: ATTR_RW,
  show: (dev: Device) => {
    const u = uacceOf(dev);
    if (!u.ops?.isolateErrThresholdRead) return -ERRNO.ENOENT;
    return `${asU32(u.ops.isolateErrThresholdRead(u))}\n`;
  },
  store: (dev: Device, value: string) => {
    const u = uacceOf(dev);
    if (!u.ops?.isolateErrThresholdWrite) return -ERRNO.ENOENT;
    const val = kstrtoul(value, 0);
    if (typeof val === 'number') return -ERRNO.EINVAL;
    if (val > BigInt(UACCE_MAX_ERR_THRESHOLD)) return -ERRNO.EINVAL;
    const ret = u.ops.isolateErrThresholdWrite(u, Number(val));
    if (ret) return ret;
    return value.length;
  },
});

/**
 * uacceDevIsVisible - uacce_dev_is_visible, evaluated when the device is registered: the region
 * sizes are hidden when their page count is 0, `isolate` without get_isolate_state, and
 * `isolate_strategy` only when both threshold ops are missing.
 */
export function uacceDevIsVisible(dev: Device, attr: DeviceAttribute): number {
  const u = uacceOf(dev);
  if (attr === UACCE_ATTR_REGION_MMIO_SIZE && !u.qfPgNum[UACCE_QFRT_MMIO]) return 0;
  if (attr === UACCE_ATTR_REGION_DUS_SIZE && !u.qfPgNum[UACCE_QFRT_DUS]) return 0;
  if (
    attr === UACCE_ATTR_ISOLATE_STRATEGY &&
    !u.ops?.isolateErrThresholdRead &&
    !u.ops?.isolateErrThresholdWrite
  )
    return 0;
  if (attr === UACCE_ATTR_ISOLATE && !u.ops?.getIsolateState) return 0;
  return attr.mode;
}

/** uacceDevGroup - the attribute group of every uacce device (uacce_dev_group), in the kernel's order. */
export const uacceDevGroup: AttributeGroup = Object.freeze({
  attrs: [
    UACCE_ATTR_API,
    UACCE_ATTR_FLAGS,
    UACCE_ATTR_AVAILABLE_INSTANCES,
    UACCE_ATTR_ALGORITHMS,
    UACCE_ATTR_REGION_MMIO_SIZE,
    UACCE_ATTR_REGION_DUS_SIZE,
    UACCE_ATTR_ISOLATE,
    UACCE_ATTR_ISOLATE_STRATEGY,
  ],
  isVisible: uacceDevIsVisible,
});
