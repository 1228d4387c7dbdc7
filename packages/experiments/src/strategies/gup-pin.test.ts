import { describe, expect, it } from '@jest/globals';
import { ERRNO, PAGE_SIZE, SyscallError, createKernel, type Kernel, type PinTarget } from '@svasim/kernel';
import { GupPinStrategy, gupPinStrategy } from './gup-pin';
import { EXPERIMENT_STRATEGIES } from '.';

function boot(cma?: string): { k: Kernel; s: GupPinStrategy } {
  const k = createKernel({ memory: { nodes: [{ size: '256MiB', cma }] }, plugins: [gupPinStrategy] });
  return { k, s: k.pinStrategy() as GupPinStrategy };
}

function errnoOf(fn: () => void): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError) return -e.errno;
    throw e;
  }
  return 0;
}

const pins = (k: Kernel) => k.counters.read('nr_foll_pin_acquired') - k.counters.read('nr_foll_pin_released');

describe("the experiment-only 'gup-pin' strategy", () => {
  it('is the kernel strategy of its name and listed in EXPERIMENT_STRATEGIES', () => {
    const { k, s } = boot();
    expect(s.name).toBe('gup-pin');
    expect(EXPERIMENT_STRATEGIES['gup-pin']).toBe(gupPinStrategy);
    k.shutdown();
  });

  it('pins every page until release, without FOLL_LONGTERM: a page lent from CMA stays there', () => {
    const { k, s } = boot('128MiB');
    const p = k.spawn();
    const t: PinTarget = { kernel: k, proc: p, fd: -1, device: '' };
    const len = 16 * PAGE_SIZE;
    const a = p.mmap(len);
    p.touch(a, len, { write: true });
    const before = Array.from({ length: 16 }, (_, i) => p.pagemap(a + i * PAGE_SIZE));
    // More than half of free memory is CMA, so the page allocator lent CMA pageblocks.
    expect(before.every((e) => e.migratetype === 'CMA')).toBe(true);
    s.prepare(t, a, len);
    expect(pins(k)).toBe(16);
    expect(s.pinnedPages(p.mm)).toBe(16);
    for (let i = 0; i < 16; i++) {
      const e = p.pagemap(a + i * PAGE_SIZE);
      expect(e.pinned).toBe(true);
      expect(e.pfn).toBe(before[i].pfn); // not migrated, unlike a FOLL_LONGTERM pin
    }
    expect(k.counters.read('pgmigrate_success')).toBe(0);
    // CMA cannot have the area's pages while they are pinned.
    expect(k.cmaAlloc('128MiB')).toBe(false);
    s.release(t, a, len);
    expect(pins(k)).toBe(0);
    expect(k.cmaAlloc('64MiB')).toBe(true);
    k.shutdown();
  });

  it('refuses bad input with the errno and pins nothing', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const t: PinTarget = { kernel: k, proc: p, fd: -1, device: '' };
    const a = p.mmap(4 * PAGE_SIZE);
    expect(errnoOf(() => s.prepare(t, a, 0))).toBe(ERRNO.EINVAL);
    expect(errnoOf(() => s.prepare(t, -PAGE_SIZE, PAGE_SIZE))).toBe(ERRNO.EINVAL);
    expect(errnoOf(() => s.prepare(t, a, Number.NaN))).toBe(ERRNO.EINVAL);
    expect(errnoOf(() => s.prepare(t, a + 1.5, PAGE_SIZE))).toBe(ERRNO.EINVAL);
    // Part of the range unmapped: the pages before the hole are not left pinned.
    expect(errnoOf(() => s.prepare(t, a + 2 * PAGE_SIZE, 4 * PAGE_SIZE))).toBe(ERRNO.EFAULT);
    expect(pins(k)).toBe(0);
    s.prepare(t, a, PAGE_SIZE);
    expect(errnoOf(() => s.prepare(t, a, PAGE_SIZE))).toBe(ERRNO.EEXIST);
    expect(errnoOf(() => s.release(t, a, 2 * PAGE_SIZE))).toBe(ERRNO.EINVAL);
    s.release(t, a, PAGE_SIZE);
    expect(errnoOf(() => s.release(t, a, PAGE_SIZE))).toBe(ERRNO.EINVAL);
    expect(pins(k)).toBe(0);
    k.shutdown();
  });

  it('a process that exits without releasing leaves no pin behind', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const t: PinTarget = { kernel: k, proc: p, fd: -1, device: '' };
    const a = p.mmap(8 * PAGE_SIZE);
    s.prepare(t, a, 4 * PAGE_SIZE);
    s.prepare(t, a + 4 * PAGE_SIZE, 4 * PAGE_SIZE);
    expect(pins(k)).toBe(8);
    p.exit();
    expect(pins(k)).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    k.shutdown();
  });
});
