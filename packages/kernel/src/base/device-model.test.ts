import { describe, it, expect } from '@jest/globals';
import { ERRNO, KernelError } from '../uapi/errno';
import { MKDEV, S_IFCHR } from '../fs/inode';
import { Device, getDevice, putDevice, type AttributeGroup } from './device';
import { DeviceClass } from './device-class';
import { DeviceCore } from './device-core';

function uacceLike(qfPages: number): AttributeGroup {
  return {
    attrs: [
      { name: 'api', mode: 0o444, show: () => 'hisi_qm_v2\n' },
      { name: 'region_dus_size', mode: 0o444, show: () => `${qfPages * 4096}\n` },
    ],
    isVisible: (_dev, attr) => (attr.name === 'region_dus_size' && qfPages === 0 ? 0 : attr.mode),
  };
}

describe('DeviceModel', () => {
  it('creates /sys/class/<class>/<name> attributes, the dev file and the /dev node', () => {
    const core = new DeviceCore();
    const cls = new DeviceClass('uacce');
    expect(core.classRegister(cls)).toBe(0);
    const dev = new Device({
      name: 'hisi_zip-0',
      devClass: cls,
      devt: MKDEV(240, 0),
      groups: [uacceLike(0)],
    });
    expect(core.deviceAdd(dev)).toBe(0);
    expect(dev.realized).toBe(true);
    expect(cls.devices).toEqual([dev]);
    expect(core.readSysfs('/sys/class/uacce/hisi_zip-0/dev')).toBe('240:0\n');
    expect(core.readSysfs('/sys/class/uacce/hisi_zip-0/api')).toBe('hisi_qm_v2\n');
    expect(core.readSysfs('/sys/class/uacce/hisi_zip-0/region_dus_size')).toBe(-ERRNO.ENOENT);
    const node = core.vfs.lookup('/dev/hisi_zip-0')!;
    expect(node.mode).toBe(S_IFCHR | 0o600);
    expect([node.uid, node.gid, node.rdev]).toEqual([0, 0, MKDEV(240, 0)]);

    core.deviceDel(dev);
    expect(dev.realized).toBe(false);
    expect(cls.devices).toEqual([]);
    expect(core.sysfs.list('/sys/class/uacce')).toEqual([]);
    expect(core.vfs.lookup('/dev/hisi_zip-0')).toBeUndefined();
    core.deviceDel(dev); // no-op
    expect(core.classUnregister(cls)).toBe(0);
  });

  it('puts named groups in subdirectories and applies class groups and devnode modes', () => {
    const core = new DeviceCore();
    const cls = new DeviceClass('gpu', {
      devnodeMode: 0o666,
      devnode: (d) => (d.name === 'card0' ? { name: 'dri/card0' } : undefined),
      devGroups: [{ attrs: [{ name: 'vendor', mode: 0o444, show: () => '0x19e5\n' }] }],
    });
    core.classRegister(cls);
    const dev = new Device({
      name: 'card0',
      devClass: cls,
      devt: MKDEV(226, 0),
      groups: [{ name: 'power', attrs: [{ name: 'control', mode: 0o644, show: () => 'auto\n' }] }],
    });
    expect(core.deviceAdd(dev)).toBe(0);
    expect(core.readSysfs('/sys/class/gpu/card0/vendor')).toBe('0x19e5\n');
    expect(core.readSysfs('/sys/class/gpu/card0/power/control')).toBe('auto\n');
    expect(core.vfs.lookup('/dev/dri/card0')!.mode).toBe(S_IFCHR | 0o666);
    const dev2 = new Device({ name: 'renderD128', devClass: cls, devt: MKDEV(226, 128) });
    expect(core.deviceAdd(dev2, { mode: 0o660, gid: 44 })).toBe(0);
    const n2 = core.vfs.lookup('/dev/renderD128')!;
    expect([n2.mode & 0o777, n2.gid]).toEqual([0o660, 44]);
  });

  it('refuses bad names, unregistered classes and duplicates, leaving nothing behind', () => {
    const core = new DeviceCore();
    const cls = new DeviceClass('c');
    expect(core.deviceAdd(new Device({ name: 'x', devClass: cls }))).toBe(-ERRNO.EINVAL);
    core.classRegister(cls);
    expect(core.classRegister(new DeviceClass('c'))).toBe(-ERRNO.EEXIST);
    expect(core.classRegister(new DeviceClass(''))).toBe(-ERRNO.EINVAL);
    expect(core.deviceAdd(new Device({ name: '', devClass: cls }))).toBe(-ERRNO.EINVAL);
    const a = new Device({ name: 'x', devClass: cls, devt: MKDEV(300, 1) });
    expect(core.deviceAdd(a)).toBe(0);
    expect(core.deviceAdd(a)).toBe(-ERRNO.EEXIST);
    expect(core.deviceAdd(new Device({ name: 'x', devClass: cls }))).toBe(-ERRNO.EEXIST);
    const clash = new Device({
      name: 'y',
      devClass: cls,
      groups: [{ attrs: [{ name: 'a', mode: 0o444 }] }, { attrs: [{ name: 'a', mode: 0o444 }] }],
    });
    expect(core.deviceAdd(clash)).toBe(-ERRNO.EEXIST);
    expect(core.sysfs.list('/sys/class/c/y')).toEqual([]);
    expect(clash.realized).toBe(false);
    expect(core.classUnregister(cls)).toBe(-ERRNO.EBUSY);
  });

  it('places class-less devices under /sys/devices by parent', () => {
    const core = new DeviceCore();
    const parent = new Device({ name: '0000:75:00.0' });
    const child = new Device({
      name: 'sub/dev',
      parent,
      groups: [{ attrs: [{ name: 'x', mode: 0o444, show: () => '1\n' }] }],
    });
    expect(core.deviceAdd(child)).toBe(0);
    expect(core.devices.devicePath(child)).toBe('/sys/devices/0000:75:00.0/sub!dev');
    expect(core.readSysfs('/sys/devices/0000:75:00.0/sub!dev/x')).toBe('1\n');
  });

  it('deviceCreate throws KernelError on failure; release runs at the last put', () => {
    const core = new DeviceCore();
    const cls = new DeviceClass('k');
    core.classRegister(cls);
    const d = core.devices.deviceCreate(cls, undefined, MKDEV(250, 3), 'drv', 'k0');
    expect(d.driverData).toBe('drv');
    expect(() => core.devices.deviceCreate(cls, undefined, MKDEV(250, 4), null, 'k0')).toThrow(KernelError);
    let released = 0;
    d.release = () => void released++;
    getDevice(d);
    expect(core.devices.deviceDestroy(cls, MKDEV(250, 3))).toBe(0);
    expect(released).toBe(0);
    putDevice(d);
    expect(released).toBe(1);
    expect(() => putDevice(d)).toThrow();
    expect(core.devices.deviceDestroy(cls, MKDEV(250, 3))).toBe(-ERRNO.ENOENT);
  });

  it('keeps two cores apart', () => {
    const a = new DeviceCore();
    const b = new DeviceCore();
    const cls = new DeviceClass('uacce');
    expect(a.classRegister(cls)).toBe(0);
    expect(b.classRegister(new DeviceClass('uacce'))).toBe(0);
    expect(a.deviceAdd(new Device({ name: 'q', devClass: cls, devt: MKDEV(240, 0) }))).toBe(0);
    expect(b.vfs.lookup('/dev/q')).toBeUndefined();
    expect(b.sysfs.list()).toEqual([]);
    expect(a.allocChrdevRegion(0, 1, 'x')).toBe(b.allocChrdevRegion(0, 1, 'x'));
  });
});
