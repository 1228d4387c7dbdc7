import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_NONBLOCK, POLLIN } from '../uapi/fcntl';
import type { VmAreaStruct } from '../mm/vma';
import { Cred } from '../proc/cred';
import { Rlimits } from '../proc/rlimit';
import type { Current } from '../proc/current';
import { FdTable } from './fdtable';
import { Inode, S_IFCHR } from './inode';
import {
  DEFAULT_POLLMASK,
  ENOIOCTLCMD,
  FMODE_READ,
  FMODE_WRITE,
  File,
  filpClose,
  fput,
  getFile,
  openFmode,
  vfsIoctl,
  vfsMmap,
  vfsPoll,
  vfsRead,
  vfsWrite,
  type FileOperations,
} from './file';

const cur: Current = {
  pid: 1,
  cred: Cred.create(),
  rlimits: new Rlimits(),
  files: new FdTable(),
  mm: { copyFromUser: () => -ERRNO.EFAULT, copyToUser: () => -ERRNO.EFAULT },
};
const inode = new Inode({ mode: S_IFCHR | 0o600 });
const vma = {} as VmAreaStruct;

describe('File', () => {
  it('derives f_mode from the access mode and drops open-only flags', () => {
    expect(openFmode(O_RDONLY)).toBe(FMODE_READ);
    expect(openFmode(O_WRONLY)).toBe(FMODE_WRITE);
    expect(openFmode(O_RDWR)).toBe(FMODE_READ | FMODE_WRITE);
    expect(openFmode(3)).toBe(0);
    const f = new File(inode, {}, O_RDWR | O_CREAT | O_NONBLOCK);
    expect(f.fFlags).toBe(O_RDWR | O_NONBLOCK);
  });

  it('calls release exactly once, when the last reference goes', () => {
    let released = 0;
    const f = new File(inode, { release: () => void released++ }, O_RDWR);
    getFile(f);
    fput(f, cur);
    expect(released).toBe(0);
    fput(f, cur);
    expect(released).toBe(1);
    expect(f.released).toBe(true);
    expect(() => fput(f, cur)).toThrow(/underflow/);
    expect(() => getFile(f)).toThrow();
    expect(released).toBe(1);
  });

  it('returns flush errors from close but drops the reference anyway', () => {
    let released = 0;
    const f = new File(inode, { flush: () => -ERRNO.EIO, release: () => void released++ }, O_RDWR);
    expect(filpClose(f, cur)).toBe(-ERRNO.EIO);
    expect(released).toBe(1);
  });
});

describe('missing file operations', () => {
  const bare = new File(inode, {}, O_RDWR);

  it('ioctl: ENOTTY, and a driver ENOIOCTLCMD becomes ENOTTY', () => {
    expect(vfsIoctl(bare, 0x5700, undefined, cur)).toBe(-ERRNO.ENOTTY);
    const f = new File(inode, { unlockedIoctl: (_f, cmd) => (cmd === 1 ? 7 : -ENOIOCTLCMD) }, O_RDWR);
    expect(vfsIoctl(f, 1, undefined, cur)).toBe(7);
    expect(vfsIoctl(f, 2, undefined, cur)).toBe(-ERRNO.ENOTTY);
  });

  it('mmap: ENODEV', () => {
    expect(vfsMmap(bare, vma, cur)).toBe(-ERRNO.ENODEV);
    const f = new File(inode, { mmap: () => -ERRNO.EINVAL }, O_RDWR);
    expect(vfsMmap(f, vma, cur)).toBe(-ERRNO.EINVAL);
  });

  it('poll: DEFAULT_POLLMASK', () => {
    expect(vfsPoll(bare, cur)).toBe(DEFAULT_POLLMASK);
    expect(vfsPoll(new File(inode, { poll: () => 0 }, O_RDWR), cur)).toBe(0);
    expect(vfsPoll(new File(inode, { poll: () => POLLIN }, O_RDWR), cur)).toBe(POLLIN);
  });

  it('read/write: EINVAL without a method, EBADF without the access mode', () => {
    const buf = new Uint8Array(4);
    expect(vfsRead(bare, buf, cur)).toBe(-ERRNO.EINVAL);
    expect(vfsWrite(bare, buf, cur)).toBe(-ERRNO.EINVAL);
    const fops: FileOperations = { read: (_f, b) => b.length, write: (_f, b) => b.length };
    expect(vfsRead(new File(inode, fops, O_WRONLY), buf, cur)).toBe(-ERRNO.EBADF);
    expect(vfsWrite(new File(inode, fops, O_RDONLY), buf, cur)).toBe(-ERRNO.EBADF);
    expect(vfsRead(new File(inode, fops, 3), buf, cur)).toBe(-ERRNO.EBADF);
  });

  it('read/write advance the position by the count', () => {
    const seen: number[] = [];
    const fops: FileOperations = {
      read: (_f, b, pos) => {
        seen.push(pos);
        return Math.min(b.length, 2);
      },
    };
    const f = new File(inode, fops, O_RDONLY);
    expect(vfsRead(f, new Uint8Array(8), cur)).toBe(2);
    expect(vfsRead(f, new Uint8Array(8), cur)).toBe(2);
    expect(seen).toEqual([0, 2]);
    expect(f.pos).toBe(4);
  });
});
