import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { O_RDWR } from '../uapi/fcntl';
import { MKDEV, S_IFCHR } from '../fs/inode';
import { FdTable } from '../fs/fdtable';
import { File } from '../fs/file';
import { vfsOpen } from '../fs/vfs';
import { Cred } from '../proc/cred';
import { Rlimits } from '../proc/rlimit';
import type { Current } from '../proc/current';
import { DeviceCore } from './device-core';
import { MISC_DYNAMIC_MINOR, MISC_MAJOR, type MiscDevice } from './misc';

function proc(uid = 0): Current {
  return {
    pid: 10,
    cred: Cred.create({ uid }),
    rlimits: new Rlimits(),
    files: new FdTable(),
    mm: { copyFromUser: () => -ERRNO.EFAULT, copyToUser: () => -ERRNO.EFAULT },
  };
}

describe('miscRegister', () => {
  it('registers a dynamic minor with /dev and /sys/class/misc entries', () => {
    const core = new DeviceCore();
    const m: MiscDevice = { minor: MISC_DYNAMIC_MINOR, name: 'mempinfd', fops: {} };
    expect(core.miscRegister(m)).toBe(0);
    expect(m.minor).toBe(256);
    const node = core.vfs.lookup('/dev/mempinfd')!;
    expect(node.mode).toBe(S_IFCHR | 0o600);
    expect(node.rdev).toBe(MKDEV(MISC_MAJOR, 256));
    expect(core.readSysfs('/sys/class/misc/mempinfd/dev')).toBe('10:256\n');
    const m2: MiscDevice = { minor: MISC_DYNAMIC_MINOR, name: 'other', fops: {}, mode: 0o666 };
    expect(core.miscRegister(m2)).toBe(0);
    expect(m2.minor).toBe(257);
    expect(core.vfs.lookup('/dev/other')!.mode).toBe(S_IFCHR | 0o666);
  });

  it('answers EBUSY for a taken minor and EEXIST for a taken name', () => {
    const core = new DeviceCore();
    expect(core.miscRegister({ minor: 130, name: 'watchdog', fops: {} })).toBe(0);
    expect(core.miscRegister({ minor: 130, name: 'watchdog2', fops: {} })).toBe(-ERRNO.EBUSY);
    const dupName: MiscDevice = { minor: MISC_DYNAMIC_MINOR, name: 'watchdog', fops: {} };
    expect(core.miscRegister(dupName)).toBe(-ERRNO.EEXIST);
    expect(dupName.minor).toBe(MISC_DYNAMIC_MINOR);
    // the dynamic minor tried for the failed registration is free again
    const ok: MiscDevice = { minor: MISC_DYNAMIC_MINOR, name: 'fine', fops: {} };
    expect(core.miscRegister(ok)).toBe(0);
    expect(ok.minor).toBe(256);
    expect(core.miscRegister(ok)).toBe(-ERRNO.EBUSY);
  });

  it('answers EINVAL for absurd input', () => {
    const core = new DeviceCore();
    expect(core.miscRegister({ minor: MISC_DYNAMIC_MINOR, name: '', fops: {} })).toBe(-ERRNO.EINVAL);
    expect(core.miscRegister({ minor: MISC_DYNAMIC_MINOR, name: 5 as never, fops: {} })).toBe(-ERRNO.EINVAL);
    expect(core.miscRegister({ minor: -1, name: 'x', fops: {} })).toBe(-ERRNO.EINVAL);
    expect(core.miscRegister({ minor: 1.5, name: 'x', fops: {} })).toBe(-ERRNO.EINVAL);
    expect(core.miscRegister({ minor: 1 << 20, name: 'x', fops: {} })).toBe(-ERRNO.EINVAL);
    expect(core.miscRegister({ minor: 1, name: 'x', fops: null as never })).toBe(-ERRNO.EINVAL);
  });

  it('opens through misc_open: privateData is the miscdevice, then the driver open runs', () => {
    const core = new DeviceCore();
    const seen: unknown[] = [];
    const m: MiscDevice = {
      minor: MISC_DYNAMIC_MINOR,
      name: 'gup_test',
      nodename: 'kernel/debug/gup_test',
      fops: { open: (_i, f) => (seen.push(f.privateData), 0) },
    };
    core.miscRegister(m);
    const f = vfsOpen(core.vfs, proc(), '/dev/kernel/debug/gup_test', O_RDWR) as File;
    expect(f).toBeInstanceOf(File);
    expect(f.privateData).toBe(m);
    expect(f.fops).toBe(m.fops);
    expect(seen).toEqual([m]);
    expect(core.open(proc(1000), '/dev/kernel/debug/gup_test', O_RDWR)).toBe(-ERRNO.EACCES);
  });

  it('deregisters: node and sysfs go, open files stay, the structure can register again', () => {
    const core = new DeviceCore();
    let released = 0;
    const m: MiscDevice = { minor: MISC_DYNAMIC_MINOR, name: 'x', fops: { release: () => void released++ } };
    core.miscRegister(m);
    const p = proc();
    const fd = core.open(p, '/dev/x', O_RDWR);
    expect(core.miscDeregister(m)).toBe(0);
    expect(core.miscDeregister(m)).toBe(-ERRNO.EINVAL);
    expect(m.minor).toBe(MISC_DYNAMIC_MINOR);
    expect(core.vfs.lookup('/dev/x')).toBeUndefined();
    expect(core.sysfs.list('/sys/class/misc')).toEqual([]);
    expect(p.files.close(fd, p)).toBe(0);
    expect(released).toBe(1);
    expect(core.miscRegister(m)).toBe(0);
    expect(core.misc.devicesList()).toEqual([m]);
  });

  it('answers ENODEV for a misc-major node with no device behind its minor', () => {
    const core = new DeviceCore();
    const m: MiscDevice = { minor: 42, name: 'gone', fops: {} };
    core.miscRegister(m);
    const node = core.vfs.lookup('/dev/gone')!;
    core.miscDeregister(m);
    core.vfs.mknod('/dev/gone2', node);
    expect(core.open(proc(), '/dev/gone2', O_RDWR)).toBe(-ERRNO.ENODEV);
  });
});
