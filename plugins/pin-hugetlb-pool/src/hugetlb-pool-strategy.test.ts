import { describe, expect, it } from '@jest/globals';
import { ERRNO, PAGE_SIZE, createKernel, type Kernel } from '@svasim/kernel';
import { describePinStrategyConformance, memcpyAccelPlugin, migrateBufferPages } from '@svasim/testkit';
import { openContext } from '@svasim/user';
import {
  HUGETLB_POOL_DEFAULTS,
  HugetlbPoolStrategy,
  POOL_BLOCK_SIZE,
  PoolChunk,
  createHugetlbPoolStrategy,
  hugetlbPoolStrategy,
} from './index';

const KiB = 1024;
const MiB = 1 << 20;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });

describePinStrategyConformance(hugetlbPoolStrategy, {
  name: 'hugetlb-pool',
  expect: { faultsAfterPrepare: 0, pins: false, survivesMigration: true, charge: 'none' },
});

function boot(
  plugin = hugetlbPoolStrategy,
  hugepages = 0,
  size = '256MiB',
): { k: Kernel; s: HugetlbPoolStrategy } {
  const k = createKernel({
    memory: { nodes: [{ size }], hugepages: { '2MiB': hugepages } },
    plugins: [memcpyAccelPlugin, plugin],
  });
  return { k, s: k.plugin<HugetlbPoolStrategy>('pin-hugetlb-pool') };
}

describe('PoolChunk', () => {
  it('hands out runs of 4 KiB blocks first fit and takes back only exact allocations', () => {
    const c = new PoolChunk(0x200000, 2 * MiB);
    expect(c.freeBlocks).toBe(512);
    const a = c.alloc(3);
    const b = c.alloc(1);
    expect([a, b]).toEqual([0x200000, 0x200000 + 3 * POOL_BLOCK_SIZE]);
    expect(c.free(a, 2)).toBe(false); // not the allocation's size
    expect(c.free(a + POOL_BLOCK_SIZE, 1)).toBe(false); // not its start
    expect(c.free(a, 3)).toBe(true);
    expect(c.free(a, 3)).toBe(false); // double free
    expect(c.alloc(2)).toBe(a); // the hole is reused
    expect(c.alloc(600)).toBe(-1);
    expect(c.allocated(b, POOL_BLOCK_SIZE)).toBe(true);
    expect(c.allocated(b, POOL_BLOCK_SIZE + 1)).toBe(false);
  });
});

describe('pin-hugetlb-pool', () => {
  it('reserves its huge pages at boot when the kernel has fewer, and gives them back at shutdown', () => {
    const { k, s } = boot();
    expect(s).toMatchObject({ name: 'hugetlb-pool', addressing: 'sva', addedHugepages: 8 });
    expect(k.hugetlb.stats('2MiB')).toMatchObject({ nr: HUGETLB_POOL_DEFAULTS.hugepages, free: 8 });
    expect(k.dmesg().some((l) => l.includes('pin-hugetlb-pool: reserved 8 more 2MiB huge pages'))).toBe(true);
    k.shutdown();
    expect(k.hugetlb.stats('2MiB').nr).toBe(0);
    // The kernel's own hugepages option (hugepages= at boot) sizes it when it is larger.
    const big = boot(hugetlbPoolStrategy, 32);
    expect(big.s.addedHugepages).toBe(0);
    expect(big.k.hugetlb.stats('2MiB').nr).toBe(32);
    expect(() => boot(createHugetlbPoolStrategy({ chunkPages: 0 }))).toThrow(RangeError);
  });

  it('allocBuffer carves 4 KiB blocks from per-process hugetlb mappings, populated and huge', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const t = { kernel: k, proc: p, fd: -1, device: '' };
    const a = s.allocBuffer(t, 100);
    const b = s.allocBuffer(t, 3 * PAGE_SIZE);
    expect(b - a).toBe(POOL_BLOCK_SIZE);
    expect(p.pagemap(a)).toMatchObject({ present: true, huge: '2MiB', pinned: false });
    expect(s.poolInfo(t)).toEqual({
      chunks: 1,
      bytes: 2 * MiB,
      freeBytes: 2 * MiB - 4 * PAGE_SIZE,
      buffers: 2,
    });
    expect(k.hugetlb.stats('2MiB').free).toBe(7);
    const big = s.allocBuffer(t, 3 * MiB); // needs a chunk of its own: 2 huge pages
    expect(s.poolInfo(t)).toMatchObject({ chunks: 2, bytes: 6 * MiB });
    s.freeBuffer(t, a, 100);
    expect(s.allocBuffer(t, PAGE_SIZE)).toBe(a); // reused
    s.freeBuffer(t, big, 3 * MiB);
    expect(k.hugetlb.stats('2MiB').free).toBe(5); // a pool keeps its memory while the process lives
    p.exit();
    expect(k.hugetlb.stats('2MiB').free).toBe(8);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('errno table of allocBuffer and freeBuffer; prepare and release never fail', () => {
    const { k, s } = boot(createHugetlbPoolStrategy({ hugepages: 2 }));
    const p = k.spawn();
    const t = { kernel: k, proc: p, fd: -1, device: '' };
    for (const len of [0, -1, 1.5, NaN, Number.MAX_SAFE_INTEGER + 1])
      expect(() => s.allocBuffer(t, len)).toThrow(
        expect.objectContaining({ code: 'EINVAL', syscall: 'hugetlb_pool_alloc' }),
      );
    expect(() => s.allocBuffer(t, 5 * MiB)).toThrow(errno('ENOMEM')); // 3 huge pages, the kernel has 2
    const a = s.allocBuffer(t, 8 * KiB);
    expect(() => s.freeBuffer(t, a, 4 * KiB)).toThrow(errno('EINVAL')); // wrong length
    expect(() => s.freeBuffer(t, a + 4 * KiB, 4 * KiB)).toThrow(errno('EINVAL')); // not its start
    expect(() => s.freeBuffer(t, 0x1000, 4 * KiB)).toThrow(errno('EINVAL')); // not pool memory
    expect(() => s.freeBuffer(t, a, 0)).toThrow(errno('EINVAL'));
    s.freeBuffer(t, a, 8 * KiB);
    expect(() => s.freeBuffer(t, a, 8 * KiB)).toThrow(errno('EINVAL')); // double free
    // prepare/release make no syscall: no input is refused.
    for (const [addr, len] of [
      [a, 0],
      [a + 1, 3],
      [NaN, -1],
      [Number.MAX_SAFE_INTEGER, PAGE_SIZE],
      [0x1000, PAGE_SIZE],
    ]) {
      expect(() => s.prepare(t, addr, len)).not.toThrow();
      expect(() => s.release(t, addr, len)).not.toThrow();
    }
    expect(s.stats.preparedInPool).toBe(0); // a was freed
    expect(k.checkInvariants()).toEqual([]);
  });

  it('pool memory: no IO page fault, no pin, no charge; memory not from the pool still faults', () => {
    const { k, s } = boot();
    const p = k.spawn({ uid: 0 });
    const ctx = openContext(p, 'memcpy', { kernel: k });
    const len = 64 * KiB;
    const copy = (src: number, dst: number) =>
      ctx.submitSync({ op: 'copy', alg: 'memcpy', src, srcLen: len, dst, dstLen: len });

    const src = ctx.allocBuffer(len);
    const dst = ctx.allocBuffer(len);
    p.write(src, new Uint8Array(len).fill(7));
    ctx.prepare(src, len);
    ctx.prepare(dst, len);
    expect(s.stats).toMatchObject({ preparedInPool: 2, preparedOutside: 0 });
    expect(copy(src, dst)).toMatchObject({ status: 0, faults: 0 });
    expect(p.status()).toMatchObject({ vmLck: 0, vmPin: 0 });
    expect(k.vmstat().nr_foll_pin_acquired).toBe(0);

    // An application that does not use the pool: prepare does nothing for it either.
    const msrc = p.mmap(len);
    const mdst = p.mmap(len);
    p.write(msrc, new Uint8Array(len).fill(9));
    ctx.prepare(msrc, len);
    ctx.prepare(mdst, len);
    expect(s.stats).toMatchObject({ preparedInPool: 2, preparedOutside: 2 });
    expect(copy(msrc, mdst)).toMatchObject({ status: 0, faults: len / PAGE_SIZE });

    // mm's migrations leave hugetlb pages alone: no move, no fault (the 4 KiB buffer moves).
    expect(migrateBufferPages(k, p, dst, len, { windowNs: 1_000_000 })).toMatchObject({
      moved: 0,
      skipped: 16,
    });
    expect(migrateBufferPages(k, p, mdst, len, { windowNs: 1_000_000 })).toMatchObject({ moved: 16 });
    expect(copy(src, dst).faults).toBe(0);
    expect(copy(msrc, mdst).faults).toBe(len / PAGE_SIZE);
    for (const b of [src, dst, msrc, mdst]) ctx.release(b, len);
    expect(s.stats.released).toBe(4);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('1 GiB pages: assembled at boot when memory allows; a shortfall is logged and allocBuffer says ENOMEM', () => {
    const gig = createHugetlbPoolStrategy({ pageSize: '1GiB', hugepages: 1 });
    const { k, s } = boot(gig, 0, '2GiB');
    expect(s.addedHugepages).toBe(1);
    expect(k.hugetlb.stats('1GiB').nr).toBe(1);
    const p = k.spawn();
    const t = { kernel: k, proc: p, fd: -1, device: '' };
    const a = s.allocBuffer(t, 64 * KiB);
    expect(p.pagemap(a)).toMatchObject({ present: true, huge: '1GiB' });
    p.exit();
    expect(k.checkInvariants()).toEqual([]);

    const small = boot(gig); // 256 MiB: no 1 GiB range to assemble
    expect(small.s.addedHugepages).toBe(0);
    expect(small.k.dmesg().some((l) => l.includes('only 0 of 1 1GiB huge pages'))).toBe(true);
    const q = small.k.spawn();
    expect(() => small.s.allocBuffer({ kernel: small.k, proc: q, fd: -1, device: '' }, PAGE_SIZE)).toThrow(
      errno('ENOMEM'),
    );
  });
});
