import { describe, it, expect } from '@jest/globals';
import { ERRNO, KernelError } from '../uapi/errno';
import { O_CLOEXEC, O_NONBLOCK, O_RDWR } from '../uapi/fcntl';
import { Cred } from '../proc/cred';
import { Rlimits } from '../proc/rlimit';
import type { Current } from '../proc/current';
import { ANON_INODE, anonInodeGetfd, anonInodeGetfile } from './anon-inodes';
import { FdTable } from './fdtable';
import { fput } from './file';

function proc(files = new FdTable()): Current {
  return {
    pid: 1,
    cred: Cred.create({ uid: 1000 }),
    rlimits: new Rlimits(),
    files,
    mm: { copyFromUser: () => -ERRNO.EFAULT, copyToUser: () => -ERRNO.EFAULT },
  };
}

describe('anonInodeGetfd', () => {
  it('installs a file on the shared anon inode with the given fops and private data', () => {
    const p = proc();
    const fops = { poll: () => 0 };
    const fd = anonInodeGetfd(p, 'mempinfd', fops, { id: 1 }, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    expect(fd).toBe(0);
    const f = p.files.get(fd)!;
    expect(f.inode).toBe(ANON_INODE);
    expect(f.fops).toBe(fops);
    expect(f.privateData).toEqual({ id: 1 });
    expect(f.path).toBe('anon_inode:[mempinfd]');
    expect(f.fFlags).toBe(O_RDWR | O_NONBLOCK);
    expect(p.files.isCloseOnExec(fd)).toBe(true);
    expect(anonInodeGetfd(p, 'x', {}, null, O_RDWR)).toBe(1);
    expect(p.files.get(1)!.inode).toBe(ANON_INODE);
  });

  it('releases the file when the last fd, including inherited ones, is closed', () => {
    const parent = proc();
    let released = 0;
    const fd = anonInodeGetfd(parent, 'q', { release: () => void released++ }, null, O_RDWR);
    const child = proc(parent.files.dupForFork());
    expect(parent.files.close(fd, parent)).toBe(0);
    expect(released).toBe(0);
    expect(child.files.close(fd, child)).toBe(0);
    expect(released).toBe(1);
  });

  it('answers EMFILE without creating (or releasing) a file, and EINVAL for bad flags', () => {
    const p = proc(new FdTable(0));
    let released = 0;
    expect(anonInodeGetfd(p, 'q', { release: () => void released++ }, null, O_RDWR)).toBe(-ERRNO.EMFILE);
    expect(released).toBe(0);
    expect(anonInodeGetfd(proc(), 'q', {}, null, NaN)).toBe(-ERRNO.EINVAL);
  });

  it('anonInodeGetfile returns an uninstalled file, or throws KernelError for bad flags', () => {
    let released = 0;
    const f = anonInodeGetfile('x', { release: () => void released++ }, null, O_RDWR);
    expect(f.refcount).toBe(1);
    fput(f);
    expect(released).toBe(1);
    expect(() => anonInodeGetfile('x', {}, null, -1)).toThrow(KernelError);
  });

  it('shares an immutable inode', () => {
    expect(Object.isFrozen(ANON_INODE)).toBe(true);
  });
});
