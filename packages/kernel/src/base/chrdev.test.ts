import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { O_RDWR } from '../uapi/fcntl';
import { Inode, MAJOR, MINOR, MKDEV, S_IFCHR } from '../fs/inode';
import { FdTable } from '../fs/fdtable';
import { File, vfsIoctl } from '../fs/file';
import { vfsOpen } from '../fs/vfs';
import { Cred } from '../proc/cred';
import { Rlimits } from '../proc/rlimit';
import type { Current } from '../proc/current';
import { Cdev, ChrdevRegistry } from './chrdev';
import { Device } from './device';
import { DeviceClass } from './device-class';
import { DeviceCore } from './device-core';

function proc(uid = 0, caps: string[] = []): Current {
  return {
    pid: 10,
    cred: Cred.create({ uid, caps }),
    rlimits: new Rlimits(),
    files: new FdTable(),
    mm: { copyFromUser: () => -ERRNO.EFAULT, copyToUser: () => -ERRNO.EFAULT },
  };
}

describe('ChrdevRegistry regions', () => {
  it('allocates dynamic majors from 254 down, then from 511 down', () => {
    const r = new ChrdevRegistry();
    const first = r.allocChrdevRegion(0, 1 << 20, 'uacce');
    expect(MAJOR(first)).toBe(254);
    expect(MINOR(first)).toBe(0);
    expect(MAJOR(r.allocChrdevRegion(5, 2, 'b'))).toBe(253);
    expect(MINOR(r.allocChrdevRegion(5, 2, 'c'))).toBe(5);
    for (let m = 251; m >= 234; m--) expect(MAJOR(r.allocChrdevRegion(0, 1, 'x'))).toBe(m);
    expect(MAJOR(r.allocChrdevRegion(0, 1, 'ext'))).toBe(511);
  });

  it('refuses overlapping and malformed ranges', () => {
    const r = new ChrdevRegistry();
    expect(r.registerChrdevRegion(MKDEV(240, 0), 10, 'a')).toBe(0);
    expect(r.registerChrdevRegion(MKDEV(240, 9), 1, 'b')).toBe(-ERRNO.EBUSY);
    expect(r.registerChrdevRegion(MKDEV(240, 10), 1, 'b')).toBe(0);
    expect(r.registerChrdevRegion(MKDEV(512, 0), 1, 'c')).toBe(-ERRNO.EINVAL);
    expect(r.registerChrdevRegion(MKDEV(241, (1 << 20) - 1), 2, 'c')).toBe(-ERRNO.EINVAL);
    expect(r.registerChrdevRegion(MKDEV(241, 0), 0, 'c')).toBe(-ERRNO.EINVAL);
    expect(r.allocChrdevRegion(-1, 1, 'c')).toBe(-ERRNO.EINVAL);
    expect(r.allocChrdevRegion(0, 1.5, 'c')).toBe(-ERRNO.EINVAL);
    expect(r.unregisterChrdevRegion(MKDEV(240, 0), 10)).toBe(0);
    expect(r.unregisterChrdevRegion(MKDEV(240, 0), 10)).toBe(-ERRNO.ENOENT);
    expect(r.registerChrdevRegion(MKDEV(240, 9), 1, 'b')).toBe(0);
    expect(r.listRegions().map((x) => x.name)).toEqual(['b', 'b']);
  });

  it('runs out of dynamic majors with EBUSY', () => {
    const r = new ChrdevRegistry();
    const n = 254 - 234 + 1 + (511 - 384 + 1);
    for (let i = 0; i < n; i++) expect(r.allocChrdevRegion(0, 1, 'x')).toBeGreaterThan(0);
    expect(r.allocChrdevRegion(0, 1, 'x')).toBe(-ERRNO.EBUSY);
  });
});

describe('cdevDeviceAdd / open dispatch', () => {
  function setup(opts?: { mode?: number }) {
    const core = new DeviceCore();
    const cls = new DeviceClass('uacce');
    core.classRegister(cls);
    const devt = core.allocChrdevRegion(0, 16, 'uacce');
    const opened: string[] = [];
    const cdev = new Cdev(
      {
        open: (_i, file) => {
          file.privateData = 'queue';
          opened.push('open');
          return 0;
        },
        unlockedIoctl: (file) => (file.privateData === 'queue' ? 0 : -ERRNO.ENXIO),
      },
      'uacce',
    );
    const dev = new Device({ name: 'hisi_zip-0', devClass: cls, devt });
    expect(core.cdevDeviceAdd(cdev, dev, opts)).toBe(0);
    return { core, cls, cdev, dev, devt, opened };
  }

  it('creates a 0600 root:root node whose open reaches the cdev fops', () => {
    const { core, cdev, devt, opened } = setup();
    const node = core.vfs.lookup('/dev/hisi_zip-0')!;
    expect(node.mode).toBe(S_IFCHR | 0o600);
    expect(node.rdev).toBe(devt);
    expect(core.readSysfs('/sys/class/uacce/hisi_zip-0/dev')).toBe(`${MAJOR(devt)}:0\n`);
    const root = proc();
    const f = vfsOpen(core.vfs, root, '/dev/hisi_zip-0', O_RDWR) as File;
    expect(f).toBeInstanceOf(File);
    expect(f.fops).toBe(cdev.fops);
    expect(opened).toEqual(['open']);
    expect(vfsIoctl(f, 0x5700, undefined, root)).toBe(0);
    expect(core.open(root, '/dev/hisi_zip-0', O_RDWR)).toBe(0);
  });

  it('refuses non-root users unless udev made the node accessible', () => {
    expect(setup().core.open(proc(1000), '/dev/hisi_zip-0', O_RDWR)).toBe(-ERRNO.EACCES);
    expect(setup().core.open(proc(1000, ['CAP_DAC_OVERRIDE']), '/dev/hisi_zip-0', O_RDWR)).toBe(0);
    expect(setup({ mode: 0o666 }).core.open(proc(1000), '/dev/hisi_zip-0', O_RDWR)).toBe(0);
  });

  it('removes the node and sysfs on cdevDeviceDel while open files keep working', () => {
    const { core, cdev, dev } = setup();
    const root = proc();
    const f = vfsOpen(core.vfs, root, '/dev/hisi_zip-0', O_RDWR) as File;
    core.cdevDeviceDel(cdev, dev);
    expect(core.vfs.lookup('/dev/hisi_zip-0')).toBeUndefined();
    expect(core.readSysfs('/sys/class/uacce/hisi_zip-0/dev')).toBe(-ERRNO.ENOENT);
    expect(core.open(root, '/dev/hisi_zip-0', O_RDWR)).toBe(-ERRNO.ENOENT);
    expect(vfsIoctl(f, 0x5700, undefined, root)).toBe(0);
    expect(cdev.added).toBe(false);
  });

  it('answers ENXIO opening a node whose number has no cdev', () => {
    const { core, cdev, devt } = setup();
    core.vfs.mknod(
      '/dev/stale',
      new Inode({ mode: S_IFCHR | 0o666, rdev: devt, fops: core.chrdevs.defChrFops }),
    );
    core.chrdevs.cdevDel(cdev);
    expect(core.open(proc(), '/dev/stale', O_RDWR)).toBe(-ERRNO.ENXIO);
    core.vfs.mknod(
      '/dev/nothing',
      new Inode({ mode: S_IFCHR | 0o666, rdev: MKDEV(99, 1), fops: core.chrdevs.defChrFops }),
    );
    expect(core.open(proc(), '/dev/nothing', O_RDWR)).toBe(-ERRNO.ENXIO);
  });

  it('removes the cdev again when the device cannot be added', () => {
    const { core, cls, devt } = setup();
    const cdev2 = new Cdev({});
    const dup = new Device({ name: 'hisi_zip-0', devClass: cls, devt: devt + 1 });
    expect(core.cdevDeviceAdd(cdev2, dup)).toBe(-ERRNO.EEXIST);
    expect(cdev2.added).toBe(false);
    expect(core.chrdevs.lookup(devt + 1)).toBeUndefined();
    expect(core.chrdevs.cdevAdd(cdev2, devt + 1, 1)).toBe(0);
    expect(core.chrdevs.cdevAdd(cdev2, devt + 1, 1)).toBe(-ERRNO.EINVAL);
  });
});

describe('registerChrdev', () => {
  it('serves a whole range with one set of fops, dynamic or fixed', () => {
    const r = new ChrdevRegistry();
    const fops = {};
    expect(r.registerChrdev(0, 'dyn', fops)).toBe(254);
    expect(r.lookup(MKDEV(254, 255))?.fops).toBe(fops);
    expect(r.lookup(MKDEV(254, 256))).toBeUndefined();
    expect(r.registerChrdev(10, 'misc', fops, 0, 1 << 20)).toBe(0);
    expect(r.lookup(MKDEV(10, 300))?.fops).toBe(fops);
    expect(r.registerChrdev(10, 'again', fops)).toBe(-ERRNO.EBUSY);
    expect(r.registerChrdev(-1, 'bad', fops)).toBe(-ERRNO.EINVAL);
    expect(r.unregisterChrdev(10, 'misc', 0, 1 << 20)).toBe(0);
    expect(r.lookup(MKDEV(10, 300))).toBeUndefined();
    expect(r.unregisterChrdev(10, 'misc', 0, 1 << 20)).toBe(-ERRNO.ENOENT);
  });
});
