import { describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { accountLockedVm } from './mlock';

describe('accountLockedVm', () => {
  it('charges locked_vm (VmLck) against RLIMIT_MEMLOCK beside mlock, and the invariants know it', () => {
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const p = k.spawn({ uid: 1000, rlimits: { memlock: 8 * PAGE_SIZE } });
    const caller = p.mmCaller();
    expect(accountLockedVm(p.mm, 6, true, caller)).toBe(0);
    expect(p.status().vmLck).toBe(6 * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
    // The driver's charge counts against mlock, and mlock's against the driver.
    const a = p.mmap(4 * PAGE_SIZE);
    expect(() => p.mlock(a, 4 * PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    p.mlock(a, 2 * PAGE_SIZE);
    expect(accountLockedVm(p.mm, 1, true, caller)).toBe(-ERRNO.ENOMEM);
    expect(p.status().vmLck).toBe(8 * PAGE_SIZE);
    expect(accountLockedVm(p.mm, 100, true, { ...caller, ipcLock: true })).toBe(0); // CAP_IPC_LOCK
    expect(k.checkInvariants()).toEqual([]);
    // munmap of the locked VMA takes only its own pages off.
    p.munmap(a, 4 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(106 * PAGE_SIZE);
    expect(accountLockedVm(p.mm, 107, false, caller)).toBe(-ERRNO.EINVAL); // more than was charged
    expect(accountLockedVm(p.mm, -1, true, caller)).toBe(-ERRNO.EINVAL);
    expect(accountLockedVm(p.mm, 106, false, caller)).toBe(0);
    expect(p.status().vmLck).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('an uncharged driver charge is an invariant violation', () => {
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const p = k.spawn();
    p.mm.lockedVm += 3; // charged without accounting it
    expect(k.checkInvariants().join('\n')).toMatch(/locked_vm 3 but locked VMAs span 0 pages/);
    p.mm.lockedVm -= 3;
  });
});
