import { describe, expect, it } from '@jest/globals';
import { PAGE_SIZE, createKernel, defaultPinStrategy, type Kernel } from '@svasim/kernel';
import { describePinStrategyConformance, memcpyAccelPlugin } from '@svasim/testkit';
import { openContext, type Completion } from '@svasim/user';
import { NoPinStrategy, noPinStrategy } from './index';

const KiB = 1024;

function boot(withStrategy = true): Kernel {
  return createKernel({
    memory: { nodes: [{ size: '256MiB' }] },
    plugins: withStrategy ? [memcpyAccelPlugin, noPinStrategy] : [memcpyAccelPlugin],
  });
}

describePinStrategyConformance(noPinStrategy, {
  name: 'none',
  expect: {
    faultsAfterPrepare: 'some',
    pins: false,
    survivesMigration: false,
    charge: 'none',
    faultsAfterFork: 'some',
  },
});

describe('pin-none', () => {
  it('registers a NoPinStrategy named none as the kernel strategy', () => {
    const k = boot();
    const s = k.plugin<NoPinStrategy>('pin-none');
    expect(s).toBeInstanceOf(NoPinStrategy);
    expect(k.pinStrategy()).toBe(s);
    expect(s.name).toBe('none');
    expect(s.addressing).toBe('sva');
    expect(noPinStrategy.kind).toBe('pin-strategy');
  });

  it('prepare and release accept any range and change nothing (errno table: no syscall, no errno)', () => {
    const k = boot();
    const p = k.spawn({ uid: 1000, rlimits: { memlock: 0 } });
    const s = k.pinStrategy();
    const target = { kernel: k, proc: p, fd: -1, device: '' };
    const a = p.mmap(4 * PAGE_SIZE);
    const before = { vm: k.vmstat(), st: p.status() };
    const ranges: Array<[string, number, number]> = [
      ['zero length', a, 0],
      ['unaligned', a + 5, 100],
      ['wrapping', Number.MAX_SAFE_INTEGER - PAGE_SIZE, 4 * PAGE_SIZE],
      ['unmapped', 0x1000, PAGE_SIZE],
      ['negative', -PAGE_SIZE, PAGE_SIZE],
      ['not a number', NaN, NaN],
      ['over RLIMIT_MEMLOCK 0 without CAP_IPC_LOCK', a, 4 * PAGE_SIZE],
    ];
    for (const [, addr, len] of ranges) {
      expect(() => s.prepare(target, addr, len)).not.toThrow();
      expect(() => s.prepare(target, addr, len)).not.toThrow(); // twice
      expect(() => s.release(target, addr, len)).not.toThrow();
      expect(() => s.release(target, addr, len)).not.toThrow(); // double release
      expect(() => s.release(target, addr, len)).not.toThrow(); // release without prepare
    }
    const after = { vm: k.vmstat(), st: p.status() };
    expect(after.vm.nr_foll_pin_acquired).toBe(before.vm.nr_foll_pin_acquired);
    expect(after.st).toEqual(before.st);
    expect(p.pagemap(a).present).toBe(false); // not even faulted in
    expect(k.checkInvariants()).toEqual([]);
  });

  it('leaves the device to fault on fresh buffers, once per page, and never again', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy', { kernel: k });
    const len = 64 * KiB;
    const src = ctx.allocBuffer(len);
    const dst = ctx.allocBuffer(len);
    p.write(src, new Uint8Array(len).fill(0x5a));
    ctx.prepare(src, len);
    ctx.prepare(dst, len);
    const req = { op: 'copy' as const, alg: 'memcpy', src, srcLen: len, dst, dstLen: len };
    const first = ctx.submitSync(req);
    expect(first).toMatchObject({ status: 0, produced: len, faults: len / PAGE_SIZE }); // dst only
    expect(ctx.submitSync(req)).toMatchObject({ status: 0, faults: 0 });
    ctx.release(dst, len);
    ctx.release(src, len);
    expect(Buffer.from(p.read(dst, len)).equals(Buffer.from(p.read(src, len)))).toBe(true);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('behaves exactly as loading no strategy at all (the kernel default)', () => {
    const run = (k: Kernel): Completion[] => {
      const p = k.spawn();
      const ctx = openContext(p, 'memcpy', { kernel: k });
      const len = 32 * KiB;
      const src = ctx.allocBuffer(len);
      const dst = ctx.allocBuffer(len);
      ctx.prepare(src, len);
      ctx.prepare(dst, len);
      const req = { op: 'copy' as const, alg: 'memcpy', src, srcLen: len, dst, dstLen: len };
      return [ctx.submitSync(req), ctx.submitSync(req)];
    };
    const plain = boot(false);
    expect(plain.pinStrategy()).toBe(defaultPinStrategy);
    expect(run(boot())).toEqual(run(plain));
  });
});
