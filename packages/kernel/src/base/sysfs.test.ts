import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { Cred } from '../proc/cred';
import { Device, type DeviceAttribute } from './device';
import { SYSFS_PAGE_SIZE, Sysfs } from './sysfs';

const root = { cred: Cred.create() };
const user = { cred: Cred.create({ uid: 1000 }) };
const dacUser = { cred: Cred.create({ uid: 1000, caps: ['CAP_DAC_OVERRIDE'] }) };

function setup() {
  const sysfs = new Sysfs();
  const dev = new Device({ name: 'hisi_zip-0' });
  let threshold = 0;
  const attrs: Record<string, DeviceAttribute> = {
    flags: { name: 'flags', mode: 0o444, show: () => '1\n' },
    strategy: {
      name: 'isolate_strategy',
      mode: 0o644,
      show: () => `${threshold}\n`,
      store: (_d, v) => {
        const n = Number(v.trim());
        if (!Number.isInteger(n) || n < 0 || n > 65535) return -ERRNO.EINVAL;
        threshold = n;
        return v.length;
      },
    },
    secret: { name: 'secret', mode: 0o400, show: () => 's\n' },
    wo: { name: 'wo', mode: 0o200, store: (_d, v) => v.length },
    noshow: { name: 'noshow', mode: 0o444 },
    nostore: { name: 'nostore', mode: 0o644, show: () => 'x\n' },
    failing: { name: 'available_instances', mode: 0o444, show: () => -ERRNO.ENODEV },
    big: { name: 'big', mode: 0o444, show: () => 'x'.repeat(SYSFS_PAGE_SIZE + 10) },
    bad: { name: 'bad', mode: 0o444, show: () => 5 },
  };
  const dir = '/sys/class/uacce/hisi_zip-0';
  for (const a of Object.values(attrs)) expect(sysfs.add(`${dir}/${a.name}`, a, dev)).toBe(0);
  return { sysfs, dev, dir, threshold: () => threshold };
}

describe('Sysfs', () => {
  it('reads show output and writes through store', () => {
    const { sysfs, dir, threshold } = setup();
    expect(sysfs.read(`${dir}/flags`)).toBe('1\n');
    expect(sysfs.read(`${dir}/flags`, user)).toBe('1\n');
    expect(sysfs.write(`${dir}/isolate_strategy`, '12\n', root)).toBe(3);
    expect(threshold()).toBe(12);
    expect(sysfs.read(`${dir}/isolate_strategy`)).toBe('12\n');
    expect(sysfs.write(`${dir}/isolate_strategy`, 7)).toBe(1);
    expect(sysfs.write(`${dir}/isolate_strategy`, '65536', root)).toBe(-ERRNO.EINVAL);
    expect(sysfs.write(`${dir}/isolate_strategy`, '', root)).toBe(0);
    expect(threshold()).toBe(7);
  });

  it('answers ENOENT for missing files and EISDIR for directories', () => {
    const { sysfs, dir } = setup();
    expect(sysfs.read(`${dir}/nope`)).toBe(-ERRNO.ENOENT);
    expect(sysfs.write(`${dir}/nope`, '1')).toBe(-ERRNO.ENOENT);
    expect(sysfs.read(dir)).toBe(-ERRNO.EISDIR);
    expect(sysfs.read('relative')).toBe(-ERRNO.ENOENT);
  });

  it('enforces mode bits: EACCES for non-root, and for root on files with no read/write bit', () => {
    const { sysfs, dir } = setup();
    expect(sysfs.write(`${dir}/isolate_strategy`, '1', user)).toBe(-ERRNO.EACCES);
    expect(sysfs.write(`${dir}/isolate_strategy`, '1', dacUser)).toBe(1);
    expect(sysfs.read(`${dir}/secret`, user)).toBe(-ERRNO.EACCES);
    expect(sysfs.read(`${dir}/secret`, root)).toBe('s\n');
    expect(sysfs.write(`${dir}/flags`, '1', root)).toBe(-ERRNO.EACCES);
    expect(sysfs.write(`${dir}/flags`, '1')).toBe(-ERRNO.EACCES);
    expect(sysfs.read(`${dir}/wo`, root)).toBe(-ERRNO.EACCES);
    expect(sysfs.write(`${dir}/wo`, 'abc', root)).toBe(3);
    expect(sysfs.write(`${dir}/wo`, 'abc', user)).toBe(-ERRNO.EACCES);
  });

  it('answers EIO without show/store and propagates show errors', () => {
    const { sysfs, dir } = setup();
    expect(sysfs.read(`${dir}/noshow`)).toBe(-ERRNO.EIO);
    expect(sysfs.write(`${dir}/nostore`, '1')).toBe(-ERRNO.EIO);
    expect(sysfs.read(`${dir}/available_instances`)).toBe(-ERRNO.ENODEV);
    expect(() => sysfs.read(`${dir}/bad`)).toThrow(TypeError);
  });

  it('cuts output at a page', () => {
    const { sysfs, dir } = setup();
    expect((sysfs.read(`${dir}/big`) as string).length).toBe(SYSFS_PAGE_SIZE - 1);
  });

  it('lists, refuses duplicates and removes per device', () => {
    const { sysfs, dev, dir } = setup();
    const other = new Device({ name: 'o' });
    expect(sysfs.add(`${dir}/flags`, { name: 'flags', mode: 0o444 }, other)).toBe(-ERRNO.EEXIST);
    expect(sysfs.add(dir, { name: 'x', mode: 0o444 }, other)).toBe(-ERRNO.EEXIST);
    expect(sysfs.add(`${dir}/flags/x`, { name: 'x', mode: 0o444 }, other)).toBe(-ERRNO.ENOTDIR);
    expect(sysfs.add('/sys/class/other/o/x', { name: 'x', mode: 0o444 }, other)).toBe(0);
    expect(sysfs.readdir('/sys/class')).toEqual(['other', 'uacce']);
    expect(sysfs.list(dir)).toHaveLength(9);
    expect(sysfs.stat(`${dir}/flags`)?.mode).toBe(0o444);
    expect(sysfs.removeDevice(dev)).toBe(9);
    expect(sysfs.read(`${dir}/flags`)).toBe(-ERRNO.ENOENT);
    expect(sysfs.readdir('/sys/class')).toEqual(['other']);
    expect(sysfs.remove('/sys/class/other/o/x')).toBe(0);
    expect(sysfs.remove('/sys/class/other/o/x')).toBe(-ERRNO.ENOENT);
    expect(sysfs.readdir('/sys')).toBe(-ERRNO.ENOENT);
  });
});
