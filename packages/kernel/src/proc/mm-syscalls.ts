import { ERRNO } from '../uapi/errno';
import { MAP_ANONYMOUS, PAGE_SIZE } from '../uapi/mman';
import { getFile, fput, vfsMmap, FMODE_READ, FMODE_WRITE } from '../fs/file';
import { doMadvise } from '../mm/madvise';
import { doMlock, doMlockall, doMunlock, doMunlockall } from '../mm/mlock';
import { doMmap, doMunmap, isUserNumber } from '../mm/mmap';
import type { MmapFile } from '../mm/mmap-file';
import { AddressSpace } from '../mm/address-space';
import { doMprotect } from '../mm/mprotect';
import { MLOCK_ONFAULT } from '../uapi/mman';
import type { Current } from './current';
import { isProcessContext, type ProcessContext } from './process-context';
import type { SyscallTable } from './syscall-table';

function ctx(current: Current): ProcessContext {
  if (!isProcessContext(current)) throw new TypeError('mm syscalls need a process context');
  return current;
}

const num = (v: unknown, dflt = 0): number => (v === undefined ? dflt : (v as number));

/**
 * registerMmSyscalls - the memory-management system calls: mmap, munmap, mprotect, madvise,
 * mlock, mlock2, munlock, mlockall, munlockall. Arguments are the C ones in order
 * (mmap: addr, length, prot, flags, fd, offset); each returns what the kernel's does.
 */
export function registerMmSyscalls(table: SyscallTable): void {
  table.register('mmap', (current, addr, length, prot, flags, fd, offset) => {
    const p = ctx(current);
    const f = num(flags);
    // sys_mmap checks the offset before anything else, the fd included (off & ~PAGE_MASK).
    const off = num(offset);
    if (!isUserNumber(off) || off % PAGE_SIZE) return -ERRNO.EINVAL;
    let file: MmapFile | null = null;
    if (!(f & MAP_ANONYMOUS)) {
      const fl = typeof fd === 'number' ? p.files.get(fd) : undefined;
      if (!fl) return -ERRNO.EBADF;
      // The file's address_space, so its driver can zap every mapping (unmapMappingRange).
      if (!(fl.fMapping instanceof AddressSpace)) fl.fMapping = new AddressSpace();
      file = {
        mapping: fl.fMapping as AddressSpace,
        readable: (fl.fMode & FMODE_READ) !== 0,
        writable: (fl.fMode & FMODE_WRITE) !== 0,
        mmap: (vma) => vfsMmap(fl, vma, p),
        get: () => void getFile(fl),
        put: () => fput(fl),
      };
      vmaFileOf.set(file, fl);
    }
    return doMmap(p.mm, p.mmCaller(), {
      addr: num(addr),
      len: length as number,
      prot: prot as number,
      flags: f,
      file,
      offset: num(offset),
    });
  });
  table.register('munmap', (current, addr, length) =>
    doMunmap(ctx(current).mm, addr as number, length as number),
  );
  table.register('mprotect', (current, addr, length, prot) =>
    doMprotect(ctx(current).mm, addr as number, length as number, prot as number),
  );
  table.register('madvise', (current, addr, length, advice) =>
    doMadvise(ctx(current).mm, addr as number, length as number, advice as number),
  );
  table.register('mlock', (current, addr, length) => {
    const p = ctx(current);
    return doMlock(p.mm, p.mmCaller(), addr as number, length as number);
  });
  table.register('mlock2', (current, addr, length, flags) => {
    const p = ctx(current);
    const fl = num(flags);
    if (!Number.isInteger(fl) || fl & ~MLOCK_ONFAULT) return -ERRNO.EINVAL;
    return doMlock(p.mm, p.mmCaller(), addr as number, length as number, fl === MLOCK_ONFAULT);
  });
  table.register('munlock', (current, addr, length) =>
    doMunlock(ctx(current).mm, addr as number, length as number),
  );
  table.register('mlockall', (current, flags) => {
    const p = ctx(current);
    return doMlockall(p.mm, p.mmCaller(), flags as number);
  });
  table.register('munlockall', (current) => doMunlockall(ctx(current).mm));
}

/** The File behind an MmapFile adapter (so drivers can find their file from a VMA). */
export const vmaFileOf = new WeakMap<MmapFile, import('../fs/file').File>();
