import { describe, it, expect } from '@jest/globals';
import { ERRNO, KernelError, SyscallError } from '../uapi/errno';
import { FdTable } from '../fs/fdtable';
import { Cred } from './cred';
import { Rlimits } from './rlimit';
import type { Current } from './current';
import { SyscallTable } from './syscall-table';

const cur: Current = {
  pid: 42,
  cred: Cred.create(),
  rlimits: new Rlimits(),
  files: new FdTable(),
  mm: { copyFromUser: () => -ERRNO.EFAULT, copyToUser: () => -ERRNO.EFAULT },
};

describe('SyscallTable', () => {
  it('invokes a registered handler with the caller and arguments', () => {
    const t = new SyscallTable();
    expect(t.registerSyscall('add', (c, a, b) => c.pid + (a as number) + (b as number))).toBe(0);
    expect(t.has('add')).toBe(true);
    expect(t.invoke(cur, 'add', [1, 2])).toBe(45);
  });

  it('answers ENOSYS for unknown calls', () => {
    const t = new SyscallTable();
    expect(t.invoke(cur, 'mempinfd', [])).toBe(-ERRNO.ENOSYS);
    expect(t.invokeNr(cur, 999, [])).toBe(-ERRNO.ENOSYS);
  });

  it('refuses duplicate names and numbers with EEXIST and bad names with EINVAL', () => {
    const t = new SyscallTable();
    expect(t.register('mempinfd', () => 0, { nr: 451 })).toBe(0);
    expect(t.register('mempinfd', () => 1)).toBe(-ERRNO.EEXIST);
    expect(t.register('other', () => 1, { nr: 451 })).toBe(-ERRNO.EEXIST);
    for (const bad of ['', 'Mempinfd', '1abc', 'a-b', 'a b'])
      expect(t.register(bad, () => 0)).toBe(-ERRNO.EINVAL);
    expect(t.register('x', 'nope' as never)).toBe(-ERRNO.EINVAL);
    expect(t.register('y', () => 0, { nr: -1 })).toBe(-ERRNO.EINVAL);
    expect(t.register('y', () => 0, { nr: 1.5 })).toBe(-ERRNO.EINVAL);
    expect(t.nrOf('mempinfd')).toBe(451);
    expect(t.invokeNr(cur, 451)).toBe(0);
  });

  it('turns thrown SyscallError and KernelError into -errno', () => {
    const t = new SyscallTable();
    t.register('a', () => {
      throw new SyscallError(-ERRNO.ENOMEM, 'a');
    });
    t.register('b', () => {
      throw new KernelError(-ERRNO.EBUSY);
    });
    expect(t.invoke(cur, 'a')).toBe(-ERRNO.ENOMEM);
    expect(t.invoke(cur, 'b')).toBe(-ERRNO.EBUSY);
  });

  it('lets other exceptions and non-number results propagate', () => {
    const t = new SyscallTable();
    t.register('bug', () => {
      throw new TypeError('boom');
    });
    t.register('str', () => 'x' as unknown as number);
    expect(() => t.invoke(cur, 'bug')).toThrow('boom');
    expect(() => t.invoke(cur, 'str')).toThrow(TypeError);
  });

  it('unregisters and lists names sorted', () => {
    const t = new SyscallTable();
    t.register('zz', () => 0, { nr: 5 });
    t.register('aa', () => 0);
    expect(t.names()).toEqual(['aa', 'zz']);
    expect(t.unregister('zz')).toBe(0);
    expect(t.unregister('zz')).toBe(-ERRNO.ENOENT);
    expect(t.invoke(cur, 'zz')).toBe(-ERRNO.ENOSYS);
    expect(t.register('again', () => 0, { nr: 5 })).toBe(0);
  });
});
