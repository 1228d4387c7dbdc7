import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { FdTable } from '../fs/fdtable';
import { Cred } from './cred';
import { Rlimits } from './rlimit';
import { copyFromUser, copyToUser, type Current, type IUserAccess } from './current';

/** User memory mapped at [0x1000, 0x2000). */
function fakeMm(): IUserAccess & { mem: Uint8Array } {
  const mem = new Uint8Array(0x1000);
  const ok = (addr: number, len: number) => addr >= 0x1000 && addr + len <= 0x2000;
  return {
    mem,
    copyFromUser(dst, addr) {
      if (!ok(addr, dst.length)) return -ERRNO.EFAULT;
      dst.set(mem.subarray(addr - 0x1000, addr - 0x1000 + dst.length));
      return 0;
    },
    copyToUser(addr, src) {
      if (!ok(addr, src.length)) return -ERRNO.EFAULT;
      mem.set(src, addr - 0x1000);
      return 0;
    },
  };
}

function current(): Current & { mm: ReturnType<typeof fakeMm> } {
  return { pid: 1, cred: Cred.create(), rlimits: new Rlimits(), files: new FdTable(), mm: fakeMm() };
}

describe('copyFromUser / copyToUser', () => {
  it('delegate to the process memory', () => {
    const cur = current();
    expect(copyToUser(cur, 0x1800, new Uint8Array([1, 2, 3]))).toBe(0);
    const buf = new Uint8Array(3);
    expect(copyFromUser(cur, buf, 0x1800)).toBe(0);
    expect([...buf]).toEqual([1, 2, 3]);
  });

  it('answer EFAULT for unmapped memory', () => {
    const cur = current();
    expect(copyFromUser(cur, new Uint8Array(4), 0x1ffe)).toBe(-ERRNO.EFAULT);
    expect(copyToUser(cur, 0x10, new Uint8Array(1))).toBe(-ERRNO.EFAULT);
  });

  it('answer EFAULT for addresses that are not non-negative integers', () => {
    const cur = current();
    for (const bad of [-1, 1.5, NaN, Infinity, '0x1000' as unknown as number]) {
      expect(copyFromUser(cur, new Uint8Array(1), bad)).toBe(-ERRNO.EFAULT);
      expect(copyToUser(cur, bad, new Uint8Array(1))).toBe(-ERRNO.EFAULT);
    }
  });
});
