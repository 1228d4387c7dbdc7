import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { O_CLOEXEC, O_RDWR } from '../uapi/fcntl';
import { Cred } from '../proc/cred';
import { RLIMIT_NOFILE, Rlimits } from '../proc/rlimit';
import type { Current } from '../proc/current';
import { FdTable, isValidFd } from './fdtable';
import { File, fput } from './file';
import { Inode, S_IFCHR } from './inode';

function current(files = new FdTable()): Current {
  return {
    pid: 1,
    cred: Cred.create(),
    rlimits: new Rlimits(),
    files,
    mm: { copyFromUser: () => -ERRNO.EFAULT, copyToUser: () => -ERRNO.EFAULT },
  };
}

function counted(): { file: File; releases: () => number } {
  let n = 0;
  const file = new File(new Inode({ mode: S_IFCHR | 0o600 }), { release: () => void n++ }, O_RDWR);
  return { file, releases: () => n };
}

describe('FdTable', () => {
  it('hands out the lowest free fd', () => {
    const t = new FdTable();
    const cur = current(t);
    expect(t.install(counted().file)).toBe(0);
    expect(t.install(counted().file)).toBe(1);
    expect(t.install(counted().file)).toBe(2);
    expect(t.close(1, cur)).toBe(0);
    expect(t.install(counted().file)).toBe(1);
    expect(t.install(counted().file)).toBe(3);
    expect(t.count).toBe(4);
    expect(t.fds()).toEqual([0, 1, 2, 3]);
  });

  it('answers EBADF for anything that is not an open fd', () => {
    const t = new FdTable();
    const cur = current(t);
    const { file } = counted();
    const fd = t.install(file);
    expect(t.get(fd)).toBe(file);
    for (const bad of [NaN, -1, 1.5, 7, Infinity, '0' as unknown as number, undefined as unknown as number]) {
      expect(isValidFd(bad) && t.get(bad) !== undefined).toBe(false);
      expect(t.get(bad)).toBeUndefined();
      expect(t.close(bad, cur)).toBe(-ERRNO.EBADF);
      expect(t.dup(bad)).toBe(-ERRNO.EBADF);
    }
    expect(t.close(fd, cur)).toBe(0);
    expect(t.close(fd, cur)).toBe(-ERRNO.EBADF); // closed
    expect(t.get(fd)).toBeUndefined();
  });

  it('answers EMFILE at the limit; the caller keeps its reference', () => {
    const t = new FdTable(2);
    t.install(counted().file);
    t.install(counted().file);
    const extra = counted();
    expect(t.install(extra.file)).toBe(-ERRNO.EMFILE);
    expect(t.getUnusedFd()).toBe(-ERRNO.EMFILE);
    expect(t.dup(0)).toBe(-ERRNO.EMFILE);
    expect(extra.file.refcount).toBe(1);
    fput(extra.file);
    expect(extra.releases()).toBe(1);
    t.setMax(3);
    expect(t.install(counted().file)).toBe(2);
  });

  it('follows a limit function such as RLIMIT_NOFILE', () => {
    const rl = new Rlimits();
    expect(rl.set(RLIMIT_NOFILE, 1, 1)).toBe(0);
    const t = new FdTable(() => rl.cur(RLIMIT_NOFILE));
    expect(t.install(counted().file)).toBe(0);
    expect(t.install(counted().file)).toBe(-ERRNO.EMFILE);
    rl.set(RLIMIT_NOFILE, 2, 2);
    expect(t.install(counted().file)).toBe(1);
  });

  it('reserves fds and gives back unused ones', () => {
    const t = new FdTable();
    const fd = t.getUnusedFd(O_CLOEXEC);
    expect(fd).toBe(0);
    expect(t.get(fd)).toBeUndefined();
    expect(t.getUnusedFd()).toBe(1);
    t.putUnusedFd(fd);
    expect(() => t.putUnusedFd(fd)).toThrow();
    expect(() => t.fdInstall(5, counted().file)).toThrow();
    const { file } = counted();
    expect(t.install(file, O_CLOEXEC)).toBe(0);
    expect(t.isCloseOnExec(0)).toBe(true);
  });

  it('releases a file shared by dup and fork only after every fd is closed', () => {
    const parent = new FdTable();
    const pcur = current(parent);
    const { file, releases } = counted();
    const fd = parent.install(file);
    const dupfd = parent.dup(fd);
    expect(dupfd).toBe(1);
    const child = parent.dupForFork();
    const ccur = current(child);
    expect(child.fds()).toEqual([0, 1]);
    expect(child.get(0)).toBe(file);
    expect(file.refcount).toBe(4);
    expect(parent.close(fd, pcur)).toBe(0);
    expect(parent.close(dupfd, pcur)).toBe(0);
    expect(releases()).toBe(0);
    expect(child.close(0, ccur)).toBe(0);
    expect(releases()).toBe(0);
    child.closeAll(ccur);
    expect(releases()).toBe(1);
    expect(child.count).toBe(0);
  });

  it('gives a forked child its own limit', () => {
    const parentRl = new Rlimits();
    const childRl = parentRl.clone();
    const parent = new FdTable(() => parentRl.cur(RLIMIT_NOFILE));
    parent.install(counted().file);
    const child = parent.dupForFork(() => childRl.cur(RLIMIT_NOFILE));
    childRl.set(RLIMIT_NOFILE, 1, 1);
    expect(child.install(counted().file)).toBe(-ERRNO.EMFILE);
    expect(parent.install(counted().file)).toBe(1);
    expect(new FdTable(3).dupForFork().max).toBe(3);
  });

  it('closeAll releases everything once', () => {
    const t = new FdTable();
    const a = counted();
    const b = counted();
    t.install(a.file);
    t.install(b.file);
    t.getUnusedFd();
    t.closeAll(current(t));
    expect([a.releases(), b.releases()]).toEqual([1, 1]);
    expect(t.fds()).toEqual([]);
    expect(t.install(counted().file)).toBe(0);
  });

  it('fget takes a reference that outlives the fd', () => {
    const t = new FdTable();
    const { file, releases } = counted();
    t.install(file);
    const held = t.fget(0)!;
    t.close(0, current(t));
    expect(releases()).toBe(0);
    fput(held);
    expect(releases()).toBe(1);
    expect(t.fget(0)).toBeUndefined();
  });
});
