import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createKernel } from '../plugin/create-kernel';
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { dmaInflight } from './dma-inflight';
import { gupState } from './pin-tracker';
import {
  PinnedRanges,
  accountPinnedVm,
  pinRangePages,
  readPinRange,
  unaccountPinnedVm,
} from './pinned-ranges';

const P = PAGE_SIZE;
const E = ERRNO;

function boot() {
  return createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
}

describe('pinRangePages', () => {
  it('covers every page the range touches', () => {
    expect(pinRangePages(0n, 1n)).toEqual({ first: 0, nrPages: 1 });
    expect(pinRangePages(4095n, 2n)).toEqual({ first: 0, nrPages: 2 });
    expect(pinRangePages(4096n, 4096n)).toEqual({ first: 1, nrPages: 1 });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 50n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 30n) - 1n }),
        (addr, size) => {
          const r = pinRangePages(addr, size);
          if (size === 0n) return r === -E.EINVAL;
          const first = addr / 4096n;
          const end = (addr + size + 4095n) / 4096n;
          return typeof r === 'object' && r.first === Number(first) && r.nrPages === Number(end - first);
        },
      ),
    );
  });

  it('refuses a zero size and a range that wraps 2^64, also when only its page-aligned end does', () => {
    const top = 1n << 64n;
    expect(pinRangePages(0n, 0n)).toBe(-E.EINVAL);
    expect(pinRangePages(top - 1n, 1n)).toBe(-E.EINVAL);
    expect(pinRangePages(top - 4096n, 4095n)).toBe(-E.EINVAL);
    expect(pinRangePages(top - 8192n, 4096n)).toEqual({ first: Number((top - 8192n) / 4096n), nrPages: 1 });
    expect(pinRangePages(top - 1n, top - 1n)).toBe(-E.EINVAL);
  });
});

describe('readPinRange', () => {
  it('reads the 16-byte struct exactly from user memory, or from a plain object', () => {
    const k = boot();
    const p = k.spawn();
    const at = p.mmap(P);
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, (1n << 64n) - 1n, true);
    new DataView(b.buffer).setBigUint64(8, 12345n, true);
    p.write(at, b);
    expect(readPinRange(p.mm, at)).toEqual({ addr: (1n << 64n) - 1n, size: 12345n });
    expect(readPinRange(p.mm, { addr: 10, size: 20n })).toEqual({ addr: 10n, size: 20n });
    expect(readPinRange(p.mm, {})).toEqual({ addr: 0n, size: 0n });
  });

  it('EFAULT for a bad pointer, EINVAL for what a __u64 struct cannot hold', () => {
    const k = boot();
    const p = k.spawn();
    const at = p.mmap(P);
    expect(readPinRange(p.mm, at + P - 8)).toBe(-E.EFAULT); // runs off the mapping
    expect(readPinRange(p.mm, 0)).toBe(-E.EFAULT);
    expect(readPinRange(p.mm, -1)).toBe(-E.EFAULT);
    expect(readPinRange(p.mm, 1.5)).toBe(-E.EFAULT);
    for (const bad of [undefined, null, 'x', [1, 2], new Uint8Array(16)])
      expect(readPinRange(p.mm, bad)).toBe(-E.EFAULT);
    for (const bad of [{ addr: 1, len: 2 }, { addr: -1 }, { size: 2.5 }, { addr: 1n << 64n }, { addr: '1' }])
      expect(readPinRange(p.mm, bad)).toBe(-E.EINVAL);
  });
});

describe('accountPinnedVm', () => {
  it('charges pinned_vm against RLIMIT_MEMLOCK in pages; CAP_IPC_LOCK is counted but never refused', () => {
    const k = boot();
    const mm = k.spawn().mm;
    const user = { ipcLock: false, memlockLimit: 10 * P + 100 };
    expect(accountPinnedVm(mm, user, 10)).toBe(0);
    expect(accountPinnedVm(mm, user, 1)).toBe(-E.ENOMEM);
    expect(mm.pinnedVm).toBe(10);
    expect(accountPinnedVm(mm, { ipcLock: true, memlockLimit: 0 }, 1000)).toBe(0);
    expect(accountPinnedVm(mm, { ipcLock: false, memlockLimit: Infinity }, 1000)).toBe(0);
    expect(mm.pinnedVm).toBe(2010);
    unaccountPinnedVm(mm, 2010);
    expect(mm.pinnedVm).toBe(0);
  });
});

describe('DmaInflight', () => {
  it('counts per pfn; an unbalanced end WARNs (rate-limited) and changes nothing', () => {
    const k = boot();
    const d = dmaInflight(k.mmCore);
    expect(dmaInflight(k.mmCore)).toBe(d);
    d.begin(5);
    d.begin(5);
    d.begin(70000);
    expect([d.count(5), d.count(6), d.count(70000), d.count(-1), d.total]).toEqual([2, 0, 1, 0, 3]);
    expect(d.busyPages([4, 5, -1, 70000, 9], 5)).toBe(2);
    expect(d.firstBusy).toBe(5);
    expect(d.busyPages([1, 2], 2)).toBe(0);
    expect(d.firstBusy).toBe(-1);
    d.end(5);
    d.end(5);
    d.end(70000);
    const lines = k.dmesg().length;
    for (let i = 0; i < 100; i++) d.end(5);
    expect(d.count(5)).toBe(0);
    expect(d.total).toBe(0);
    const warned = k.dmesg().length - lines;
    expect(warned).toBeGreaterThan(0);
    expect(warned).toBeLessThanOrEqual(10);
  });
});

describe('PinnedRanges against a model', () => {
  const NPAGES = 32;
  const HOLE = [24, 25];
  type Cmd =
    | { t: 'pin'; page: number; off: number; size: number }
    | { t: 'unpin'; page: number; off: number; size: number }
    | { t: 'close' };
  const rangeArb = {
    page: fc.integer({ min: 0, max: NPAGES + 2 }),
    off: fc.integer({ min: 0, max: P - 1 }),
    size: fc.integer({ min: 0, max: 10 * P }),
  };
  const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.constant('pin' as const), ...rangeArb }) },
    { weight: 4, arbitrary: fc.record({ t: fc.constant('unpin' as const), ...rangeArb }) },
    { weight: 1, arbitrary: fc.constant({ t: 'close' as const }) },
  );

  it('gives the errno the rules say, charges pinned_vm exactly and keeps GUP in step', () => {
    fc.assert(
      fc.property(
        fc.array(cmdArb, { maxLength: 40 }),
        fc.constantFrom(0, 6, 20, Infinity),
        fc.boolean(),
        (cmds, limitPages, ipcLock) => {
          const k = boot();
          const p = k.spawn();
          const a = p.mmap(NPAGES * P);
          p.munmap(a + HOLE[0] * P, HOLE.length * P);
          const caller = { ipcLock, memlockLimit: limitPages * P };
          let reg = new PinnedRanges(p.mm, 'test');
          const model = new Map<number, number>(); // first page -> pages
          const charged = () => [...model.values()].reduce((s, n) => s + n, 0);
          for (const c of cmds) {
            if (c.t === 'close') {
              reg.releaseAll();
              expect(reg.pin(caller, BigInt(a), BigInt(P))).toBe(-E.EBADF);
              reg = new PinnedRanges(p.mm, 'test');
              model.clear();
              continue;
            }
            const addr = a + c.page * P + c.off;
            const first = c.page;
            const n = c.size === 0 ? 0 : Math.ceil((c.off + c.size) / P);
            let want: number;
            if (c.t === 'pin') {
              if (c.size === 0) want = -E.EINVAL;
              else if (limitPages === 0 && !ipcLock) want = -E.EPERM;
              else if (model.has(first)) want = -E.EBUSY;
              else if (!ipcLock && charged() + n > limitPages) want = -E.ENOMEM;
              else if (first + n > NPAGES || (first <= HOLE[1] && first + n > HOLE[0])) want = -E.EFAULT;
              else want = 0;
              expect(reg.pin(caller, BigInt(addr), BigInt(c.size))).toBe(want);
              if (want === 0) model.set(first, n);
            } else {
              if (c.size === 0) want = -E.EINVAL;
              else if (!model.has(first)) want = -E.ENODEV;
              else if (model.get(first) !== n) want = -E.EINVAL;
              else want = 0;
              expect(reg.unpin(BigInt(addr), BigInt(c.size))).toBe(want);
              if (want === 0) model.delete(first);
            }
            expect(p.mm.pinnedVm).toBe(charged());
            expect(reg.pinnedPages).toBe(charged());
            expect(reg.checkInvariants()).toEqual([]);
          }
          // Every page is pinned once per model range covering it.
          const st = gupState(k.mmCore);
          for (let i = 0; i < NPAGES; i++) {
            if (HOLE.includes(i)) continue;
            let cover = 0;
            for (const [f, n] of model) if (f <= i && i < f + n) cover++;
            const e = p.pagemap(a + i * P);
            expect(e.present ? st.pins(e.pfn!) : 0).toBe(cover);
          }
          expect(k.checkInvariants()).toEqual([]);
          reg.releaseAll();
          expect(p.mm.pinnedVm).toBe(0);
          expect(st.pinnedPages).toBe(0);
          p.exit();
          expect(k.checkInvariants()).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });
});
