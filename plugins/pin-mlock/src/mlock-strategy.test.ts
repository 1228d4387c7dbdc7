import { describe, expect, it } from '@jest/globals';
import {
  ERRNO,
  PAGE_SIZE,
  TASK_SIZE,
  createKernel,
  type Kernel,
  type Process,
  type SpawnOptions,
} from '@svasim/kernel';
import { describePinStrategyConformance, memcpyAccelPlugin, migrateBufferPages } from '@svasim/testkit';
import { openContext } from '@svasim/user';
import { LockCounts, MlockStrategy, mlockStrategy } from './index';

const KiB = 1024;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });

describePinStrategyConformance(mlockStrategy, {
  name: 'mlock',
  expect: {
    faultsAfterPrepare: 0,
    pins: false,
    survivesMigration: false,
    charge: 'vmLck',
    faultsAfterFork: 'some',
  },
});

function boot(): { k: Kernel; s: MlockStrategy } {
  const k = createKernel({
    memory: { nodes: [{ size: '256MiB' }] },
    plugins: [memcpyAccelPlugin, mlockStrategy],
  });
  return { k, s: k.plugin<MlockStrategy>('pin-mlock') };
}

function setup(spawn: SpawnOptions = {}) {
  const { k, s } = boot();
  const p = k.spawn(spawn);
  const t = { kernel: k, proc: p, fd: -1, device: '' };
  return { k, s, p, t };
}

/** The errno name @fn threw (a SyscallError's code), or 'ok'. */
function codeOf(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

const locked = (p: Process, addr: number, pages: number) =>
  Array.from({ length: pages }, (_, i) => p.pagemap(addr + i * PAGE_SIZE).mlocked);

describe('LockCounts', () => {
  it('counts holders per page and reports the runs whose last holder left', () => {
    const c = new LockCounts();
    c.acquire(10, 4); // 10..13
    c.acquire(12, 4); // 12..15
    expect([10, 11, 12, 13, 14, 15, 16].map((p) => c.count(p))).toEqual([1, 1, 2, 2, 1, 1, 0]);
    expect(c.heldAll(10, 6)).toBe(true);
    expect(c.heldAll(9, 2)).toBe(false);
    expect(c.unheldRuns(8, 10)).toEqual([
      [8, 2],
      [16, 2],
    ]);
    expect(c.release(10, 4)).toEqual([[10, 2]]);
    expect(c.release(12, 4)).toEqual([[12, 4]]);
    expect(c.pages).toBe(0);
  });
});

describe('pin-mlock', () => {
  it('registers an MlockStrategy named mlock with SVA addressing', () => {
    const { k, s } = boot();
    expect(k.pinStrategy()).toBe(s);
    expect(s).toMatchObject({ name: 'mlock', addressing: 'sva' });
  });

  it('prepare mlocks and charges VmLck, release munlocks and gives it back', () => {
    const { k, s, p, t } = setup({ uid: 1000, rlimits: { memlock: 1 << 20 } });
    const a = p.mmap(8 * PAGE_SIZE);
    s.prepare(t, a, 8 * PAGE_SIZE);
    expect(locked(p, a, 8)).toEqual(new Array(8).fill(true)); // faulted in and on the unevictable list
    expect(p.status().vmLck).toBe(8 * PAGE_SIZE);
    expect(p.status().vmPin).toBe(0);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(0); // not a pin
    s.release(t, a, 8 * PAGE_SIZE);
    expect(locked(p, a, 8)).toEqual(new Array(8).fill(false));
    expect(p.status().vmLck).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('errno table of prepare (mlock) and release (munlock)', () => {
    const { k, s, p, t } = setup({ uid: 1000, rlimits: { memlock: 16 * KiB } });
    const a = p.mmap(8 * PAGE_SIZE);
    p.munmap(a + 4 * PAGE_SIZE, PAGE_SIZE); // a hole at page 4
    const cases: Array<[string, number, number, keyof typeof ERRNO]> = [
      ['negative address', -PAGE_SIZE, PAGE_SIZE, 'EINVAL'],
      ['negative length', a, -1, 'EINVAL'],
      ['fractional length', a, 1.5, 'EINVAL'],
      ['not a number', NaN, PAGE_SIZE, 'EINVAL'],
      ['wrapping range', Number.MAX_SAFE_INTEGER - 2 * PAGE_SIZE, 4 * PAGE_SIZE, 'EINVAL'],
      ['unmapped memory', 0x10000, PAGE_SIZE, 'ENOMEM'],
      ['beyond TASK_SIZE', TASK_SIZE, PAGE_SIZE, 'ENOMEM'],
      ['a range with a hole', a + 3 * PAGE_SIZE, 2 * PAGE_SIZE, 'ENOMEM'],
      ['over RLIMIT_MEMLOCK (16 KiB)', a, 5 * PAGE_SIZE + 1, 'ENOMEM'],
    ];
    const got = cases.map(([what, addr, len]) => [what, codeOf(() => s.prepare(t, addr, len))]);
    expect(got).toEqual(cases.map(([what, , , code]) => [what, code]));
    // A failed prepare locked nothing, not even the VMAs before the hole.
    expect(p.status().vmLck).toBe(0);
    expect(locked(p, a, 4)).toEqual([false, false, false, false]);
    // Zero length: mlock(addr, 0) succeeds and does nothing.
    s.prepare(t, a, 0);
    s.release(t, a, 0);
    expect(s.heldPages(t)).toBe(0);
    // Release of what was never prepared, and a second release.
    expect(() => s.release(t, a, PAGE_SIZE)).toThrow(errno('EINVAL'));
    s.prepare(t, a, PAGE_SIZE);
    s.release(t, a, PAGE_SIZE);
    expect(() => s.release(t, a, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => s.release(t, NaN, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(k.checkInvariants()).toEqual([]);
  });

  it('without permission: EPERM with RLIMIT_MEMLOCK 0, unless CAP_IPC_LOCK (which also lifts the limit)', () => {
    const { k, s, p, t } = setup({ uid: 1000, rlimits: { memlock: 0 } });
    const a = p.mmap(4 * PAGE_SIZE);
    expect(() => s.prepare(t, a, PAGE_SIZE)).toThrow(
      expect.objectContaining({ code: 'EPERM', syscall: 'mlock' }),
    );
    const capable = k.spawn({ uid: 1000, caps: ['CAP_IPC_LOCK'], rlimits: { memlock: 0 } });
    const b = capable.mmap(64 * PAGE_SIZE);
    const ct = { ...t, proc: capable };
    s.prepare(ct, b, 64 * PAGE_SIZE);
    expect(capable.status().vmLck).toBe(64 * PAGE_SIZE);
    s.release(ct, b, 64 * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('rounds unaligned ranges to whole pages, as mlock does', () => {
    const { s, p, t } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    s.prepare(t, a + 100, PAGE_SIZE); // pages 0 and 1
    expect(locked(p, a, 3)).toEqual([true, true, false]);
    s.prepare(t, a + 5, 10); // page 0 again
    expect(s.holders(t, a)).toBe(2);
    s.release(t, a + 100, PAGE_SIZE);
    expect(locked(p, a, 2)).toEqual([true, false]); // page 0 still held by the second prepare
    s.release(t, a + 5, 10);
    expect(locked(p, a, 2)).toEqual([false, false]);
  });

  it('overlapping prepares: a release munlocks only the pages no other prepare holds', () => {
    const { k, s, p, t } = setup();
    const a = p.mmap(8 * PAGE_SIZE);
    s.prepare(t, a, 4 * PAGE_SIZE); // A: pages 0-3
    s.prepare(t, a + 2 * PAGE_SIZE, 4 * PAGE_SIZE); // B: pages 2-5
    expect(p.status().vmLck).toBe(6 * PAGE_SIZE); // locked_vm counts pages, not prepares
    s.release(t, a, 4 * PAGE_SIZE); // A
    expect(locked(p, a, 7)).toEqual([false, false, true, true, true, true, false]);
    expect(p.status().vmLck).toBe(4 * PAGE_SIZE);
    s.release(t, a + 3 * PAGE_SIZE, PAGE_SIZE); // part of B: counting is per page
    expect(locked(p, a, 6)).toEqual([false, false, true, false, true, true]);
    expect(() => s.release(t, a + 2 * PAGE_SIZE, 4 * PAGE_SIZE)).toThrow(errno('EINVAL')); // page 3 is free now
    s.release(t, a + 2 * PAGE_SIZE, PAGE_SIZE);
    s.release(t, a + 4 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(0);
    expect(s.heldPages(t)).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('forgets a prepared range the process unmapped', () => {
    const { k, s, p, t } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    s.prepare(t, a, 4 * PAGE_SIZE);
    p.munmap(a, 4 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(0); // the lock went with the VMA
    expect(() => s.release(t, a, 4 * PAGE_SIZE)).not.toThrow();
    expect(s.heldPages(t)).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('with the accelerator: no IO page fault after prepare, until mm migrates the pages', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy', { kernel: k });
    const len = 64 * KiB;
    const src = ctx.allocBuffer(len);
    const dst = ctx.allocBuffer(len);
    const req = { op: 'copy' as const, alg: 'memcpy', src, srcLen: len, dst, dstLen: len };
    // Without prepare, fresh buffers fault on every page (src on the zero page it maps for reading).
    expect(ctx.submitSync(req).faults).toBe((2 * len) / PAGE_SIZE);
    const src2 = ctx.allocBuffer(len);
    const dst2 = ctx.allocBuffer(len);
    ctx.prepare(src2, len);
    ctx.prepare(dst2, len);
    const req2 = { ...req, src: src2, dst: dst2 };
    expect(ctx.submitSync(req2)).toMatchObject({ status: 0, faults: 0 });
    // Unevictable, not pinned: migration moves every page, and a request during the copy window
    // faults on each of them (waiting for the copy).
    const m = migrateBufferPages(k, p, dst2, len, { windowNs: 1_000_000 });
    expect(m).toMatchObject({ moved: len / PAGE_SIZE, failed: 0 });
    expect(ctx.submitSync(req2)).toMatchObject({ status: 0, faults: len / PAGE_SIZE });
    expect(ctx.submitSync(req2).faults).toBe(0); // the new pages are mlocked and present
    expect(p.pagemap(dst2).mlocked).toBe(true);
    ctx.release(dst2, len);
    ctx.release(src2, len);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a forked child inherits no lock and no hold', () => {
    const { k, s, p, t } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    s.prepare(t, a, 4 * PAGE_SIZE);
    const child = p.fork();
    const ct = { ...t, proc: child };
    expect(child.status().vmLck).toBe(0);
    expect(s.heldPages(ct)).toBe(0);
    expect(() => s.release(ct, a, 4 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    s.release(t, a, 4 * PAGE_SIZE);
    child.exit();
    expect(k.checkInvariants()).toEqual([]);
  });
});
