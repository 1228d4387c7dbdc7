import { describe, it, expect } from '@jest/globals';
import { ERRNO } from '../uapi/errno';
import { PID_MAX_LIMIT, PidAllocator, RESERVED_PIDS } from './pid';

describe('PidAllocator', () => {
  it('counts up from 1 and does not reuse freed pids before wrapping', () => {
    const a = new PidAllocator();
    expect(a.pidMax).toBe(PID_MAX_LIMIT);
    expect([a.allocPid(), a.allocPid(), a.allocPid()]).toEqual([1, 2, 3]);
    expect(a.freePid(2)).toBe(true);
    expect(a.freePid(2)).toBe(false);
    expect(a.allocPid()).toBe(4);
    expect(a.count).toBe(3);
  });

  it('wraps to RESERVED_PIDS, skips pids in use and reports EAGAIN when full', () => {
    const max = RESERVED_PIDS + 5;
    const a = new PidAllocator(max);
    for (let i = 1; i < max; i++) expect(a.allocPid()).toBe(i);
    expect(a.allocPid()).toBe(-ERRNO.EAGAIN);
    a.freePid(5); // below RESERVED_PIDS: not handed out again after the wrap
    expect(a.allocPid()).toBe(-ERRNO.EAGAIN);
    a.freePid(RESERVED_PIDS + 2);
    expect(a.allocPid()).toBe(RESERVED_PIDS + 2);
  });

  it('rejects an absurd pid_max', () => {
    expect(() => new PidAllocator(10)).toThrow(RangeError);
  });
});
