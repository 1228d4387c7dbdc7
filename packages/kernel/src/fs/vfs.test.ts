import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { O_CREAT, O_DIRECTORY, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../uapi/fcntl';
import { Cred } from '../proc/cred';
import { Rlimits } from '../proc/rlimit';
import type { Current } from '../proc/current';
import { FdTable } from './fdtable';
import { FMODE_READ, FMODE_WRITE, File, type FileOperations } from './file';
import { Inode, S_IFCHR } from './inode';
import { Vfs, doSysOpen, parsePath, vfsOpen } from './vfs';

function proc(uid = 0, caps: string[] = [], gid?: number): Current {
  return {
    pid: 100 + uid,
    cred: Cred.create({ uid, gid, caps }),
    rlimits: new Rlimits(),
    files: new FdTable(),
    mm: { copyFromUser: () => -ERRNO.EFAULT, copyToUser: () => -ERRNO.EFAULT },
  };
}

function node(mode: number, fops: FileOperations = {}, uid = 0, gid = 0): Inode {
  return new Inode({ mode: S_IFCHR | mode, fops, uid, gid });
}

describe('parsePath', () => {
  it('normalises absolute paths', () => {
    expect(parsePath('//dev///foo/')).toEqual({ path: '/dev/foo', mustBeDir: true });
    expect(parsePath('/dev/./x/../foo')).toEqual({ path: '/dev/foo', mustBeDir: false });
    expect(parsePath('/../..')).toEqual({ path: '/', mustBeDir: false });
  });

  it('rejects relative, empty, non-string and over-long paths', () => {
    expect(parsePath('dev/foo')).toBe(-ERRNO.ENOENT);
    expect(parsePath('')).toBe(-ERRNO.ENOENT);
    expect(parsePath(3)).toBe(-ERRNO.EFAULT);
    expect(parsePath('/' + 'a'.repeat(256))).toBe(-ERRNO.ENAMETOOLONG);
    expect(parsePath('/a'.repeat(2048))).toBe(-ERRNO.ENAMETOOLONG);
  });
});

describe('Vfs', () => {
  it('links, looks up, lists and unlinks nodes', () => {
    const vfs = new Vfs();
    const a = node(0o600);
    expect(vfs.mknod('/dev/foo', a)).toBe(0);
    expect(a.ino).toBeGreaterThan(0);
    expect(a.nlink).toBe(1);
    expect(vfs.mknod('/dev//foo', node(0o600))).toBe(-ERRNO.EEXIST);
    expect(vfs.mknod('/dev', node(0o600))).toBe(-ERRNO.EEXIST);
    expect(vfs.mknod('/dev/foo/bar', node(0o600))).toBe(-ERRNO.ENOTDIR);
    expect(vfs.mknod('dev/rel', node(0o600))).toBe(-ERRNO.ENOENT);
    expect(vfs.mknod('/dev/dri/card0', node(0o666))).toBe(0);
    expect(vfs.lookup('/dev/foo')).toBe(a);
    expect(vfs.lookup('/dev')).toBeUndefined();
    expect(vfs.list('/dev')).toEqual(['/dev/dri/card0', '/dev/foo']);
    expect(vfs.readdir('/dev')).toEqual(['dri', 'foo']);
    expect(vfs.readdir('/dev/foo')).toBe(-ERRNO.ENOTDIR);
    expect(vfs.readdir('/nope')).toBe(-ERRNO.ENOENT);
    expect(vfs.unlink('/dev')).toBe(-ERRNO.EISDIR);
    expect(vfs.unlink('/dev/foo')).toBe(0);
    expect(a.nlink).toBe(0);
    expect(vfs.unlink('/dev/foo')).toBe(-ERRNO.ENOENT);
    expect(vfs.unlink('/dev/dri/card0')).toBe(0);
    expect(vfs.readdir('/dev')).toBe(-ERRNO.ENOENT);
    expect(vfs.readdir('/')).toEqual([]);
  });
});

describe('vfsOpen', () => {
  it('answers ENOENT for a missing path and EISDIR/ENOTDIR for the wrong kind', () => {
    const vfs = new Vfs();
    vfs.mknod('/dev/foo', node(0o666));
    expect(vfsOpen(vfs, proc(), '/dev/missing', O_RDWR)).toBe(-ERRNO.ENOENT);
    expect(vfsOpen(vfs, proc(), 'dev/foo', O_RDWR)).toBe(-ERRNO.ENOENT);
    expect(vfsOpen(vfs, proc(), '/dev', O_RDONLY)).toBe(-ERRNO.EISDIR);
    expect(vfsOpen(vfs, proc(), '/dev/foo/', O_RDONLY)).toBe(-ERRNO.ENOTDIR);
    expect(vfsOpen(vfs, proc(), '/dev/foo/x', O_RDONLY)).toBe(-ERRNO.ENOTDIR);
    expect(vfsOpen(vfs, proc(), '/dev/foo', O_RDONLY | O_DIRECTORY)).toBe(-ERRNO.ENOTDIR);
    expect(vfsOpen(vfs, proc(), '/dev/foo', O_CREAT | O_EXCL | O_RDWR)).toBe(-ERRNO.EEXIST);
  });

  it('answers EINVAL for malformed flags', () => {
    const vfs = new Vfs();
    vfs.mknod('/dev/foo', node(0o666));
    for (const bad of [NaN, -1, 1.5, 2 ** 32])
      expect(vfsOpen(vfs, proc(), '/dev/foo', bad)).toBe(-ERRNO.EINVAL);
  });

  it('refuses a non-root user a 0600 root device, unless CAP_DAC_OVERRIDE', () => {
    const vfs = new Vfs();
    vfs.mknod('/dev/accel', node(0o600));
    expect(vfsOpen(vfs, proc(1000), '/dev/accel', O_RDWR)).toBe(-ERRNO.EACCES);
    expect(vfsOpen(vfs, proc(1000), '/dev/accel', O_RDONLY)).toBe(-ERRNO.EACCES);
    expect(vfsOpen(vfs, proc(1000, ['CAP_DAC_READ_SEARCH']), '/dev/accel', O_RDONLY)).toBeInstanceOf(File);
    expect(vfsOpen(vfs, proc(1000, ['CAP_DAC_READ_SEARCH']), '/dev/accel', O_RDWR)).toBe(-ERRNO.EACCES);
    expect(vfsOpen(vfs, proc(1000, ['CAP_DAC_OVERRIDE']), '/dev/accel', O_RDWR)).toBeInstanceOf(File);
    expect(vfsOpen(vfs, proc(0), '/dev/accel', O_RDWR)).toBeInstanceOf(File);
  });

  it('checks owner, group and other bits by the access mode', () => {
    const vfs = new Vfs();
    vfs.mknod('/dev/x', node(0o640, {}, 1000, 50));
    expect(vfsOpen(vfs, proc(1000), '/dev/x', O_RDWR)).toBeInstanceOf(File);
    expect(vfsOpen(vfs, proc(2000, [], 50), '/dev/x', O_RDONLY)).toBeInstanceOf(File);
    expect(vfsOpen(vfs, proc(2000, [], 50), '/dev/x', O_WRONLY)).toBe(-ERRNO.EACCES);
    expect(vfsOpen(vfs, proc(2000, [], 50), '/dev/x', O_RDONLY | O_TRUNC)).toBe(-ERRNO.EACCES);
    expect(vfsOpen(vfs, proc(3000), '/dev/x', O_RDONLY)).toBe(-ERRNO.EACCES);
    vfs.mknod('/dev/ro', node(0o644));
    expect(vfsOpen(vfs, proc(3000), '/dev/ro', O_RDONLY)).toBeInstanceOf(File);
    expect(vfsOpen(vfs, proc(3000), '/dev/ro', O_RDWR)).toBe(-ERRNO.EACCES);
    // access mode 3 (ioctl only) needs read and write permission and grants neither
    expect(vfsOpen(vfs, proc(3000), '/dev/ro', 3)).toBe(-ERRNO.EACCES);
    const f = vfsOpen(vfs, proc(0), '/dev/ro', 3) as File;
    expect(f.fMode & (FMODE_READ | FMODE_WRITE)).toBe(0);
  });

  it('calls fops.open and hands back a File with one reference', () => {
    const vfs = new Vfs();
    let opened = 0;
    vfs.mknod('/dev/foo', node(0o666, { open: (_i, file) => ((file.privateData = 'drv'), opened++, 0) }));
    const f = vfsOpen(vfs, proc(), '//dev/foo', O_RDWR) as File;
    expect(opened).toBe(1);
    expect(f.privateData).toBe('drv');
    expect(f.refcount).toBe(1);
    expect(f.path).toBe('/dev/foo');
    expect(f.fMode).toBe(FMODE_READ | FMODE_WRITE);
  });
});

describe('doSysOpen', () => {
  it('propagates an fops.open error, leaks no fd and never calls release', () => {
    const vfs = new Vfs();
    let released = 0;
    vfs.mknod('/dev/bad', node(0o666, { open: () => -ERRNO.ENODEV, release: () => void released++ }));
    vfs.mknod('/dev/good', node(0o666));
    const p = proc();
    expect(doSysOpen(vfs, p, '/dev/good', O_RDWR)).toBe(0);
    expect(doSysOpen(vfs, p, '/dev/bad', O_RDWR)).toBe(-ERRNO.ENODEV);
    expect(p.files.fds()).toEqual([0]);
    expect(released).toBe(0);
    expect(doSysOpen(vfs, p, '/dev/good', O_RDWR)).toBe(1);
    expect(doSysOpen(vfs, p, '/dev/missing', O_RDWR)).toBe(-ERRNO.ENOENT);
    expect(doSysOpen(vfs, p, '/dev/good', NaN)).toBe(-ERRNO.EINVAL);
    expect(p.files.count).toBe(2);
  });

  it('answers EMFILE before looking at the path', () => {
    const vfs = new Vfs();
    vfs.mknod('/dev/good', node(0o666));
    const p = proc();
    p.files.setMax(1);
    expect(doSysOpen(vfs, p, '/dev/good', O_RDWR)).toBe(0);
    expect(doSysOpen(vfs, p, '/dev/good', O_RDWR)).toBe(-ERRNO.EMFILE);
    expect(doSysOpen(vfs, p, '/dev/missing', O_RDWR)).toBe(-ERRNO.EMFILE);
  });
});
