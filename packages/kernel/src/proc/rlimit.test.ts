import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { Cred } from './cred';
import {
  MLOCK_LIMIT,
  RLIMIT_AS,
  RLIMIT_MEMLOCK,
  RLIMIT_NOFILE,
  RLIM_INFINITY,
  RLIM_NLIMITS,
  Rlimits,
  canDoMlock,
} from './rlimit';

const user = Cred.create({ uid: 1000 });
const admin = Cred.create({ uid: 1000, caps: ['CAP_SYS_RESOURCE'] });

describe('Rlimits', () => {
  it('has the kernel defaults', () => {
    const r = new Rlimits();
    expect(r.get(RLIMIT_MEMLOCK)).toEqual({ cur: 8 * 1024 * 1024, max: MLOCK_LIMIT });
    expect(r.get(RLIMIT_NOFILE)).toEqual({ cur: 1024, max: 4096 });
    expect(r.cur(RLIMIT_AS)).toBe(RLIM_INFINITY);
    expect(() => r.get(RLIM_NLIMITS)).toThrow(RangeError);
  });

  it('rejects cur > max and malformed values with EINVAL', () => {
    const r = new Rlimits();
    expect(r.set(RLIMIT_MEMLOCK, 200, 100, user)).toBe(-ERRNO.EINVAL);
    expect(r.set(RLIMIT_MEMLOCK, -1, 100, user)).toBe(-ERRNO.EINVAL);
    expect(r.set(RLIMIT_MEMLOCK, NaN, 100, user)).toBe(-ERRNO.EINVAL);
    expect(r.set(RLIMIT_MEMLOCK, 1.5, 100, user)).toBe(-ERRNO.EINVAL);
    expect(r.set(99, 1, 1, user)).toBe(-ERRNO.EINVAL);
    expect(r.set(-1, 1, 1, user)).toBe(-ERRNO.EINVAL);
    expect(r.get(RLIMIT_MEMLOCK)).toEqual({ cur: MLOCK_LIMIT, max: MLOCK_LIMIT });
  });

  it('lets anyone lower limits but only CAP_SYS_RESOURCE raise the hard one', () => {
    const r = new Rlimits();
    expect(r.set(RLIMIT_MEMLOCK, 4096, 65536, user)).toBe(0);
    expect(r.set(RLIMIT_MEMLOCK, 65536, 65536, user)).toBe(0); // soft up to hard is fine
    expect(r.set(RLIMIT_MEMLOCK, 4096, 65537, user)).toBe(-ERRNO.EPERM);
    expect(r.set(RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY, admin)).toBe(0);
    expect(r.get(RLIMIT_MEMLOCK)).toEqual({ cur: Infinity, max: Infinity });
    // without a cred the kernel itself is setting up the task
    const k = new Rlimits();
    expect(k.set(RLIMIT_MEMLOCK, Infinity, Infinity)).toBe(0);
  });

  it('caps RLIMIT_NOFILE at fs.nr_open even for CAP_SYS_RESOURCE', () => {
    const r = new Rlimits();
    expect(r.set(RLIMIT_NOFILE, 1024, 1024 * 1024 + 1, admin)).toBe(-ERRNO.EPERM);
    expect(r.set(RLIMIT_NOFILE, 1024, RLIM_INFINITY, admin)).toBe(-ERRNO.EPERM);
    expect(r.set(RLIMIT_NOFILE, 1024, 1024 * 1024, admin)).toBe(0);
  });

  it('clones independently', () => {
    const a = new Rlimits();
    const b = a.clone();
    expect(b.set(RLIMIT_MEMLOCK, 0, 0)).toBe(0);
    expect(a.cur(RLIMIT_MEMLOCK)).toBe(MLOCK_LIMIT);
    expect(b.cur(RLIMIT_MEMLOCK)).toBe(0);
  });
});

describe('canDoMlock', () => {
  it('is true with a non-zero RLIMIT_MEMLOCK or CAP_IPC_LOCK', () => {
    const r = new Rlimits();
    expect(canDoMlock(user, r)).toBe(true);
    expect(r.set(RLIMIT_MEMLOCK, 0, 0)).toBe(0);
    expect(canDoMlock(user, r)).toBe(false);
    expect(canDoMlock(Cred.create({ uid: 1000, caps: ['CAP_IPC_LOCK'] }), r)).toBe(true);
    expect(canDoMlock(Cred.create(), r)).toBe(true);
  });
});
