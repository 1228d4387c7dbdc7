import { afterEach, describe, it, expect } from '@jest/globals';
import { Device } from '../base/device';
import { MAJOR, MINOR, MKDEV, S_IFCHR } from '../fs/inode';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import { ERRNO, KernelError } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { UACCE_MAX_ERR_THRESHOLD, UACCE_MAX_NAME_SIZE } from './constants';
import { UacceCore, type UacceCoreOptions } from './core';
import { FakeUacceSvaOps } from './fake-sva';
import { kstrtoul } from './kstrtox';
import { UACCE_DEV_ISOLATE, UACCE_DEV_NORMAL, type UacceOps } from './ops';
import { UACCE_CMD_PUT_Q, UACCE_CMD_START_Q, UACCE_DEV_SVA, UACCE_QFRT_DUS, UACCE_QFRT_MMIO } from './uapi';
import { uacceAlloc, uacceRegister, uacceRemove } from './uacce';

const kernels: Kernel[] = [];

function boot(opts: UacceCoreOptions = {}, sva = new FakeUacceSvaOps()) {
  const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
  kernels.push(k);
  // The kernel starts a UacceCore wired to its IOMMU; these tests want their own options and a
  // fake SVA, so retire the kernel's first (it has no devices yet).
  expect(k.uacce.exit()).toBe(0);
  const core = new UacceCore(k.devices, k.mmCore, sva, opts);
  k.addInvariantCheck('uacce', () => core.checkInvariants());
  return { k, core, sva };
}

/** A PCI function to hang accelerators off. */
function pciDev(bdf = '0000:75:00.0'): Device {
  return new Device({ name: bdf });
}

const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });

afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

describe('uapi constants', () => {
  it('match include/uapi/misc/uacce/uacce.h and include/linux/uacce.h', () => {
    expect(UACCE_CMD_START_Q).toBe(0x5700);
    expect(UACCE_CMD_PUT_Q).toBe(0x5701);
    expect(UACCE_DEV_SVA).toBe(1);
    expect([UACCE_QFRT_MMIO, UACCE_QFRT_DUS]).toEqual([0, 1]);
    expect(UACCE_MAX_NAME_SIZE).toBe(64);
    expect(UACCE_MAX_ERR_THRESHOLD).toBe(65535);
  });
});

describe('uacceAlloc', () => {
  it('names devices <name>-<id> with ids global across devices, lowest free first', () => {
    const { core } = boot();
    const a = uacceAlloc(core, pciDev('0000:75:00.0'), { name: 'hisi_zip', flags: 0, ops: {} });
    const b = uacceAlloc(core, pciDev('0000:76:00.0'), { name: 'hisi_sec2', flags: 0, ops: {} });
    const c = uacceAlloc(core, pciDev('0000:77:00.0'), { name: 'hisi_zip', flags: 0, ops: {} });
    expect([a.name, b.name, c.name]).toEqual(['hisi_zip-0', 'hisi_sec2-1', 'hisi_zip-2']);
    expect([a.devId, b.devId, c.devId]).toEqual([0, 1, 2]);
    expect(MAJOR(b.dev.devt)).toBe(core.major);
    expect(MINOR(b.dev.devt)).toBe(1);
    uacceRemove(b);
    const d = uacceAlloc(core, pciDev('0000:78:00.0'), { name: 'hisi_hpre', flags: 0, ops: {} });
    expect(d.name).toBe('hisi_hpre-1');
    expect(core.deviceList()).toEqual([a, d, c]);
    for (const u of [a, c, d]) uacceRemove(u);
  });

  it('rejects interfaces that are not one with EINVAL', () => {
    const { core } = boot();
    const bad: unknown[] = [
      { name: '', flags: 0, ops: {} },
      { name: 'x'.repeat(UACCE_MAX_NAME_SIZE), flags: 0, ops: {} },
      { name: 'a/b', flags: 0, ops: {} },
      { name: 42, flags: 0, ops: {} },
      { name: 'zip', flags: -1, ops: {} },
      { name: 'zip', flags: 2 ** 32, ops: {} },
      { name: 'zip', flags: 0.5, ops: {} },
      { name: 'zip', flags: 0, ops: null },
      null,
    ];
    for (const iface of bad)
      expect(() => uacceAlloc(core, pciDev(), iface as never)).toThrow(
        expect.objectContaining({ name: 'KernelError', code: 'EINVAL' }),
      );
    expect(() => uacceAlloc(core, null as never, { name: 'zip', flags: 0, ops: {} })).toThrow(KernelError);
    // 63 characters plus the NUL fill name[64].
    const u = uacceAlloc(core, pciDev(), { name: 'x'.repeat(UACCE_MAX_NAME_SIZE - 1), flags: 0, ops: {} });
    expect(u.devId).toBe(0);
    uacceRemove(u);
  });

  it('throws EBUSY when every id is taken', () => {
    const { core } = boot({ maxDevId: 1 });
    const a = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    const b = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    expect(() => uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} })).toThrow(errno('EBUSY'));
    uacceRemove(a);
    expect(uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} }).devId).toBe(0);
    uacceRemove(b);
    uacceRemove(core.xaLoad(0));
  });

  it('negotiates UACCE_DEV_SVA: cleared silently (with a dmesg line) when the parent cannot do SVA', () => {
    const { k, core, sva } = boot();
    const noSva = pciDev('0000:80:00.0');
    sva.setSupported(noSva, false);
    const u = uacceAlloc(core, noSva, { name: 'zip', flags: UACCE_DEV_SVA | 0x10, ops: {} });
    expect(u.flags).toBe(0x10);
    expect(k.dmesg().some((l) => l.includes('0000:80:00.0: failed to enable SVA feature'))).toBe(true);
    const v = uacceAlloc(core, pciDev(), { name: 'zip', flags: UACCE_DEV_SVA, ops: {} });
    expect(v.flags).toBe(UACCE_DEV_SVA);
    expect(uacceRegister(u)).toBe(0);
    expect(uacceRegister(v)).toBe(0);
    expect(k.readSysfs('/sys/class/uacce/zip-0/flags')).toBe('16\n');
    expect(k.readSysfs('/sys/class/uacce/zip-1/flags')).toBe('1\n');
    uacceRemove(u);
    uacceRemove(v);
  });

  it("keeps the flags as asked with svaNegotiation 'copy' (2025)", () => {
    const { core } = boot({ svaNegotiation: 'copy' }, new FakeUacceSvaOps(false));
    const u = uacceAlloc(core, pciDev(), { name: 'zip', flags: UACCE_DEV_SVA, ops: {} });
    expect(u.flags).toBe(UACCE_DEV_SVA);
    uacceRemove(u);
  });
});

describe('uacceRegister', () => {
  it('creates /dev/<name>-<id> (0600 root) and /sys/class/uacce/<name>-<id>', () => {
    const { k, core } = boot();
    uacceRemove(uacceAlloc(core, pciDev(), { name: 'burn', flags: 0, ops: {} })); // id 0 is free again
    const u = uacceAlloc(core, pciDev(), { name: 'hisi_zip', flags: 0, ops: {} });
    expect(uacceRegister(u)).toBe(0);
    const node = k.devices.vfs.lookup('/dev/hisi_zip-0')!;
    expect(node.mode).toBe(S_IFCHR | 0o600);
    expect([node.uid, node.gid, node.rdev]).toEqual([0, 0, MKDEV(core.major, 0)]);
    expect(k.readSysfs('/sys/class/uacce/hisi_zip-0/dev')).toBe(`${core.major}:0\n`);
    expect(core.uacceClass.devices).toEqual([u.dev]);
    // A non-root process cannot open it without a udev rule.
    const user = k.spawn({ uid: 1000 });
    expect(() => user.open('/dev/hisi_zip-0')).toThrow(errno('EACCES'));
    uacceRemove(u);
  });

  it('answers ENODEV for no device or a removed one, EEXIST when registered twice', () => {
    const { k, core } = boot();
    expect(uacceRegister(null)).toBe(-ERRNO.ENODEV);
    const u = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    expect(uacceRegister(u)).toBe(0);
    expect(uacceRegister(u)).toBe(-ERRNO.EEXIST);
    expect(k.readSysfs('/sys/class/uacce/zip-0/api')).toBe('(null)\n');
    uacceRemove(u);
    expect(uacceRegister(u)).toBe(-ERRNO.ENODEV);
  });

  it('passes cdev_device_add errors through and leaves cdev null', () => {
    const { k, core } = boot();
    const u = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    // Another device already holds the sysfs directory name.
    const squatter = new Device({ name: 'zip-0', devClass: core.uacceClass });
    expect(k.devices.deviceAdd(squatter)).toBe(0);
    expect(uacceRegister(u)).toBe(-ERRNO.EEXIST);
    expect(u.cdev).toBeNull();
    expect(k.devices.chrdevs.lookup(u.dev.devt)).toBeUndefined();
    k.devices.deviceDel(squatter);
    uacceRemove(u);
  });
});

describe('sysfs attributes', () => {
  function device(ops: UacceOps, qf: [number, number] = [1, 2]) {
    const env = boot();
    const u = uacceAlloc(env.core, pciDev(), { name: 'hisi_zip', flags: UACCE_DEV_SVA, ops });
    u.apiVer = 'hisi_qm_v2';
    u.algs = 'zlib\ngzip';
    u.qfPgNum[UACCE_QFRT_MMIO] = qf[0];
    u.qfPgNum[UACCE_QFRT_DUS] = qf[1];
    expect(uacceRegister(u)).toBe(0);
    const dir = '/sys/class/uacce/hisi_zip-0';
    const ls = () => (env.k.devices.sysfs.readdir(dir) as string[]).filter((n) => n !== 'dev');
    return { ...env, u, dir, ls };
  }

  it('shows api, flags, available_instances, algorithms and the region sizes', () => {
    let free = 7;
    const { k, u, dir, ls } = device({ getAvailableInstances: () => free });
    expect(ls()).toEqual([
      'algorithms',
      'api',
      'available_instances',
      'flags',
      'region_dus_size',
      'region_mmio_size',
    ]);
    expect(k.readSysfs(`${dir}/api`)).toBe('hisi_qm_v2\n');
    expect(k.readSysfs(`${dir}/flags`)).toBe('1\n');
    expect(k.readSysfs(`${dir}/algorithms`)).toBe('zlib\ngzip\n');
    expect(k.readSysfs(`${dir}/available_instances`)).toBe('7\n');
    free = 6;
    expect(k.readSysfs(`${dir}/available_instances`)).toBe('6\n');
    expect(k.readSysfs(`${dir}/region_mmio_size`)).toBe(`${PAGE_SIZE}\n`);
    expect(k.readSysfs(`${dir}/region_dus_size`)).toBe(`${2 * PAGE_SIZE}\n`);
    for (const f of ['api', 'flags', 'available_instances', 'algorithms', 'region_mmio_size'])
      expect(() => k.writeSysfs(`${dir}/${f}`, '1')).toThrow(errno('EACCES'));
    uacceRemove(u);
  });

  it('answers ENODEV for available_instances without the op', () => {
    const { k, u, dir } = device({});
    expect(() => k.readSysfs(`${dir}/available_instances`)).toThrow(errno('ENODEV'));
    uacceRemove(u);
  });

  it('hides region sizes of 0 and the isolate files without their ops', () => {
    const { u, ls } = device({}, [0, 0]);
    expect(ls()).toEqual(['algorithms', 'api', 'available_instances', 'flags']);
    uacceRemove(u);
  });

  it('shows isolate and isolate_strategy with the ops; checks isolate_strategy writes', () => {
    let threshold = 0;
    let state = UACCE_DEV_NORMAL;
    const { k, u, dir, ls } = device({
      getIsolateState: () => state,
      isolateErrThresholdRead: () => threshold,
      isolateErrThresholdWrite: (_u, n) => {
        if (n === 13) return -ERRNO.EIO;
        threshold = n;
        return 0;
      },
    });
    expect(ls()).toContain('isolate');
    expect(ls()).toContain('isolate_strategy');
    expect(k.devices.sysfs.stat(`${dir}/isolate`)!.mode).toBe(0o444);
    expect(k.devices.sysfs.stat(`${dir}/isolate_strategy`)!.mode).toBe(0o644);
    expect(k.readSysfs(`${dir}/isolate`)).toBe('0\n');
    state = UACCE_DEV_ISOLATE;
    expect(k.readSysfs(`${dir}/isolate`)).toBe('1\n');
    expect(k.readSysfs(`${dir}/isolate_strategy`)).toBe('0\n');

    const accepted: Array<[string, number]> = [
      ['10\n', 10],
      ['0x10', 16],
      ['010', 8],
      ['+5', 5],
      ['65535', UACCE_MAX_ERR_THRESHOLD],
      ['0', 0],
    ];
    for (const [text, value] of accepted) {
      expect(k.devices.writeSysfs(`${dir}/isolate_strategy`, text)).toBe(text.length);
      expect(threshold).toBe(value);
      expect(k.readSysfs(`${dir}/isolate_strategy`)).toBe(`${value}\n`);
    }
    for (const text of [
      '65536',
      '-1',
      'abc',
      ' 5',
      '5 ',
      '5\n\n',
      '08',
      '0x',
      '1e3',
      '99999999999999999999999',
    ])
      expect(k.devices.writeSysfs(`${dir}/isolate_strategy`, text)).toBe(-ERRNO.EINVAL);
    // The driver's error is passed through.
    expect(k.devices.writeSysfs(`${dir}/isolate_strategy`, '13')).toBe(-ERRNO.EIO);
    expect(threshold).toBe(0);
    // Only root may write (0644).
    const user = k.spawn({ uid: 1000 });
    expect(k.devices.writeSysfs(`${dir}/isolate_strategy`, '3', user)).toBe(-ERRNO.EACCES);
    expect(k.devices.readSysfs(`${dir}/isolate_strategy`, user)).toBe('0\n');
    uacceRemove(u);
  });

  it('shows isolate_strategy when one threshold op exists, answering ENOENT for the missing one', () => {
    const r = device({ isolateErrThresholdRead: () => 4 });
    expect(r.ls()).toContain('isolate_strategy');
    expect(r.ls()).not.toContain('isolate');
    expect(r.k.readSysfs(`${r.dir}/isolate_strategy`)).toBe('4\n');
    expect(r.k.devices.writeSysfs(`${r.dir}/isolate_strategy`, '1')).toBe(-ERRNO.ENOENT);
    uacceRemove(r.u);
    expect(r.k.checkInvariants()).toEqual([]);

    const w = device({ isolateErrThresholdWrite: () => 0 });
    expect(w.k.devices.readSysfs(`${w.dir}/isolate_strategy`)).toBe(-ERRNO.ENOENT);
    expect(w.k.devices.writeSysfs(`${w.dir}/isolate_strategy`, '1')).toBe(1);
    uacceRemove(w.u);
  });

  it('decides visibility at registration time', () => {
    const { k, core } = boot();
    const u = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    u.qfPgNum[UACCE_QFRT_DUS] = 4;
    expect(uacceRegister(u)).toBe(0);
    u.qfPgNum[UACCE_QFRT_MMIO] = 1; // too late: the file was not created
    expect(k.devices.readSysfs('/sys/class/uacce/zip-0/region_mmio_size')).toBe(-ERRNO.ENOENT);
    expect(k.readSysfs('/sys/class/uacce/zip-0/region_dus_size')).toBe(`${4 * PAGE_SIZE}\n`);
    uacceRemove(u);
  });
});

describe('uacceRemove', () => {
  it('takes the /dev node, sysfs directory and id away; a second call and null are no-ops', () => {
    const { k, core } = boot();
    const u = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    expect(uacceRegister(u)).toBe(0);
    uacceRemove(u);
    expect(k.devices.vfs.lookup('/dev/zip-0')).toBeUndefined();
    expect(k.devices.sysfs.readdir('/sys/class/uacce/zip-0')).toBe(-ERRNO.ENOENT);
    expect(core.xaLoad(0)).toBeUndefined();
    expect(u.removed).toBe(true);
    expect(u.released).toBe(true);
    expect(u.ops).toBeNull();
    expect(u.parent).toBeNull();
    uacceRemove(u);
    uacceRemove(null);
    expect(() => k.spawn().open('/dev/zip-0')).toThrow(errno('ENOENT'));
  });

  it('frees the id of a device that was never registered', () => {
    const { core } = boot();
    const u = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    uacceRemove(u);
    expect(core.deviceList()).toEqual([]);
  });
});

describe('UacceCore', () => {
  it('is one per kernel and exits only without devices', () => {
    const { k, core } = boot();
    expect(() => new UacceCore(k.devices, k.mmCore, new FakeUacceSvaOps())).toThrow(errno('EEXIST'));
    const u = uacceAlloc(core, pciDev(), { name: 'zip', flags: 0, ops: {} });
    expect(core.exit()).toBe(-ERRNO.EBUSY);
    uacceRemove(u);
    expect(core.exit()).toBe(0);
    expect(k.devices.classes.get('uacce')).toBeUndefined();
    expect(k.devices.chrdevs.listRegions().some((r) => r.name === 'uacce')).toBe(false);
  });

  it('validates its options', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
    const sva = new FakeUacceSvaOps();
    expect(() => new UacceCore(k.devices, k.mmCore, sva, { putQ: 'x' as never })).toThrow(RangeError);
    expect(() => new UacceCore(k.devices, k.mmCore, sva, { svaNegotiation: 'x' as never })).toThrow(
      RangeError,
    );
    expect(() => new UacceCore(k.devices, k.mmCore, sva, { maxDevId: -1 })).toThrow(RangeError);
    expect(() => new UacceCore(k.devices, k.mmCore, sva, { maxDevId: 2 ** 32 })).toThrow(RangeError);
  });
});

describe('kstrtoul', () => {
  it('parses as lib/kstrtox.c does', () => {
    expect(kstrtoul('42')).toBe(42n);
    expect(kstrtoul('42\n')).toBe(42n);
    expect(kstrtoul('0x2A')).toBe(42n);
    expect(kstrtoul('0X2a\n')).toBe(42n);
    expect(kstrtoul('052')).toBe(42n);
    expect(kstrtoul('+42')).toBe(42n);
    expect(kstrtoul('18446744073709551615')).toBe(18446744073709551615n);
    expect(kstrtoul('18446744073709551616')).toBe(-ERRNO.ERANGE);
    expect(kstrtoul('ff', 16)).toBe(255n);
    expect(kstrtoul('0xff', 16)).toBe(255n);
    for (const s of ['', '+', '-1', '0x', '0xg', '09', '4 2', '42\n\n', '\n', 'x'])
      expect(kstrtoul(s)).toBe(-ERRNO.EINVAL);
  });
});
