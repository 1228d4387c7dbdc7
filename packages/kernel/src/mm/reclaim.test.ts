import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import type { Process } from '../proc/process';
import { PAGE_SIZE } from '../uapi/mman';
import { MMU_NOTIFY_CLEAR } from './notifier-hooks';
import { PG_anon_exclusive } from './page-flags';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';
import { PTE_SWAP, PTE_SWP_EXCLUSIVE, PTE_WRITE } from './pte';
import { initReclaim } from './reclaim';
import { SWAP_TUNABLE_DEFAULTS } from './reclaim-config';
import { swapInfoOf, type SwapInfo } from './swap';
import { madvisePageout, reclaimPages } from './vmscan';

const MiB = 1 << 20;

/** A small machine (32 MiB, one node) with reclaim set up, swap as given. */
function boot(swap: KernelOptions['swap'] = '64MiB', extra: KernelOptions = {}): Kernel {
  // Overcommit always: these tests map more than RAM + swap on purpose, to run out at fault time.
  const k = createKernel({
    memory: { nodes: [{ size: '32MiB' }] },
    swap,
    ...extra,
    sysctl: { 'vm.overcommit_memory': 1, ...extra.sysctl },
  });
  initReclaim(k.mmCore, { swap: k.options.swap });
  return k;
}

function swapOf(k: Kernel): SwapInfo {
  const si = swapInfoOf(k.mmCore);
  if (!si) throw new Error('no swap');
  return si;
}

/** Seeded bytes (xorshift32): the same for the same seed, and incompressible. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** The hi word of the entry mapping `va` in `p` (0 when none). */
function pteHi(p: Process, va: number): number {
  const pt = p.mm.pgtable;
  const t = pt.walk(va, false);
  return t ? t[pt.slot + 1] : 0;
}

function swapEntriesIn(p: Process, a: number, len: number): number {
  let n = 0;
  for (let va = a; va < a + len; va += PAGE_SIZE) if (pteHi(p, va) & PTE_SWAP) n++;
  return n;
}

describe('reclaim and swap under memory pressure', () => {
  it('swaps out a working set larger than RAM and reads every byte back', () => {
    const k = boot();
    const p = k.spawn();
    const len = 48 * MiB;
    const a = p.mmap(len);
    const data = randomBytes(len, 12345);
    p.write(a, data);
    expect(k.checkInvariants()).toEqual([]);
    const v = k.vmstat();
    expect(v.pswpout).toBeGreaterThan(0);
    expect(v.pgsteal_direct).toBe(v.pswpout); // nothing ran kswapd: every page went by direct reclaim
    expect(v.allocstall_dma32 + v.allocstall_normal + v.allocstall_movable).toBeGreaterThan(0);
    // Every page is either resident or in swap.
    expect(p.mm.rssAnon + p.mm.swapEnts).toBe(len / PAGE_SIZE);
    expect(p.mm.swapEnts).toBe(swapOf(k).inusePages);
    expect(p.status().vmRss).toBeLessThan(32 * MiB);

    expect(sameBytes(p.read(a, len), data)).toBe(true);
    const r = k.vmstat();
    expect(r.pswpin).toBeGreaterThan(0);
    // Every page read from the device came with a major fault or by readahead around one.
    expect(r.pswpin).toBe(r.pgmajfault + r.swap_ra);
    expect(r.swap_ra_hit).toBeGreaterThan(0);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(swapOf(k).inusePages).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('is deterministic: the same run gives the same counters', () => {
    const run = () => {
      const k = boot();
      const p = k.spawn();
      const a = p.mmap(40 * MiB);
      p.write(a, randomBytes(40 * MiB, 7));
      p.read(a, 40 * MiB);
      return k.vmstat();
    };
    expect(run()).toEqual(run());
  });

  it('charges a swap-in the device read latency', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, randomBytes(PAGE_SIZE, 3));
    expect(madvisePageout(p.mm.vmaLookup(a)!, a, a + PAGE_SIZE)).toBe(1);
    const before = p.cpuNs;
    p.read(a, 1);
    expect(p.cpuNs - before).toBeGreaterThanOrEqual(SWAP_TUNABLE_DEFAULTS.readLatencyNs.value);
  });

  it('reads ahead: one major fault brings the aligned window of 8 swapped pages', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(32 * PAGE_SIZE);
    const data = randomBytes(32 * PAGE_SIZE, 15);
    p.write(a, data);
    madvisePageout(p.mm.vmaLookup(a)!, a, a + 32 * PAGE_SIZE);
    const w = 8 * PAGE_SIZE;
    const first = Math.ceil(a / w) * w; // an aligned window inside the mapping
    const before = p.cpuNs;
    expect(sameBytes(p.read(first, w), data.subarray(first - a, first - a + w))).toBe(true);
    const v = k.vmstat();
    expect(v.pgmajfault).toBe(1);
    expect(v.swap_ra).toBe(7);
    expect(v.swap_ra_hit).toBe(7);
    expect(v.pswpin).toBe(8);
    // One device read for eight pages.
    expect(p.cpuNs - before).toBeLessThan(2 * SWAP_TUNABLE_DEFAULTS.readLatencyNs.value);
    expect(sameBytes(p.read(a, 32 * PAGE_SIZE), data)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('without swap reclaims no anonymous page: the fault fails with ENOMEM', () => {
    const k = boot(0);
    expect(swapInfoOf(k.mmCore)).toBeNull();
    const p = k.spawn();
    const len = 48 * MiB;
    const a = p.mmap(len);
    expect(() => p.write(a, randomBytes(len, 1))).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    const v = k.vmstat();
    expect(v.pswpout).toBe(0);
    expect(v.pgsteal_direct + v.pgsteal_kswapd).toBe(0);
    expect(v.pgalloc_fail).toBeGreaterThan(0);
    expect(p.mm.swapEnts).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('fails with ENOMEM once the swap area is full, and leaks nothing', () => {
    const k = boot('1MiB');
    const p = k.spawn();
    const len = 48 * MiB;
    const a = p.mmap(len);
    expect(() => p.write(a, randomBytes(len, 2))).toThrow(expect.objectContaining({ code: 'ENOMEM' }));
    expect(swapOf(k).freePages).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(swapOf(k).inusePages).toBe(0);
    expect(swapOf(k).usage().pagesWithData).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('never swaps mlocked or DMA-pinned pages', () => {
    const k = boot();
    const locker = k.spawn();
    const la = locker.mmap(4 * MiB);
    locker.write(la, randomBytes(4 * MiB, 4));
    locker.mlock(la, 4 * MiB);
    const pinner = k.spawn();
    const pa = pinner.mmap(64 * PAGE_SIZE);
    pinner.write(pa, randomBytes(64 * PAGE_SIZE, 5));
    const pinned: number[] = [];
    for (let i = 0; i < 64; i++) pinned.push(pinner.pagemap(pa + i * PAGE_SIZE).pfn!);
    for (const pfn of pinned) k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS; // as FOLL_PIN would
    k.addRefSource((refs) => {
      for (const pfn of pinned)
        if (k.phys.frames.refcount[pfn] >= GUP_PIN_COUNTING_BIAS) refs.set(pfn, GUP_PIN_COUNTING_BIAS);
    });

    const hog = k.spawn();
    const ha = hog.mmap(40 * MiB);
    hog.write(ha, randomBytes(40 * MiB, 6));
    expect(k.vmstat().pswpout).toBeGreaterThan(0);
    for (let va = la; va < la + 4 * MiB; va += PAGE_SIZE) {
      const e = locker.pagemap(va);
      expect(e.present && e.mlocked).toBe(true);
    }
    for (let i = 0; i < 64; i++) expect(pinner.pagemap(pa + i * PAGE_SIZE).pfn).toBe(pinned[i]);
    expect(swapEntriesIn(locker, la, 4 * MiB) + swapEntriesIn(pinner, pa, 64 * PAGE_SIZE)).toBe(0);
    const totals = initReclaim(k.mmCore).totals.direct;
    expect(totals.nrUnevictable).toBeGreaterThan(0);
    expect(totals.nrPinned).toBeGreaterThan(0);
    expect(k.checkInvariants()).toEqual([]);

    for (const pfn of pinned) k.phys.frames.refcount[pfn] -= GUP_PIN_COUNTING_BIAS; // unpin
    expect(madvisePageout(pinner.mm.vmaLookup(pa)!, pa, pa + 64 * PAGE_SIZE)).toBe(64); // now it can go
    expect(k.checkInvariants()).toEqual([]);
  });

  it('replaces every PTE under an MMU_NOTIFY_CLEAR invalidation', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    p.write(a, randomBytes(8 * PAGE_SIZE, 8));
    const events: Array<[number, number, number]> = [];
    p.mm.notifier = {
      invalidateRangeStart: (r) => (events.push([r.event, r.start, r.end]), 0),
      invalidateRangeEnd: () => {},
      release: () => {},
    };
    expect(madvisePageout(p.mm.vmaLookup(a)!, a, a + 8 * PAGE_SIZE)).toBe(8);
    expect(events).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => [MMU_NOTIFY_CLEAR, a + i * PAGE_SIZE, a + (i + 1) * PAGE_SIZE]),
    );
    p.mm.notifier = null;
    for (let i = 0; i < 8; i++) expect(pteHi(p, a + i * PAGE_SIZE)).toBe(PTE_SWAP | PTE_SWP_EXCLUSIVE);
    expect(p.mm.rssAnon).toBe(0);
    expect(p.mm.swapEnts).toBe(8);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('writes nothing for pages that read as zero (swpout_zero / swpin_zero)', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(16 * PAGE_SIZE);
    p.touch(a, 16 * PAGE_SIZE, { write: true });
    expect(madvisePageout(p.mm.vmaLookup(a)!, a, a + 16 * PAGE_SIZE)).toBe(16);
    expect(k.vmstat().swpout_zero).toBe(16);
    expect(k.vmstat().pswpout).toBe(0);
    expect(p.read(a, 16 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    expect(k.vmstat().swpin_zero).toBe(16);
    expect(k.vmstat().pswpin).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('maps a swapped-in exclusive page writable, so a write needs no fault', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, randomBytes(PAGE_SIZE, 9));
    madvisePageout(p.mm.vmaLookup(a)!, a, a + PAGE_SIZE);
    p.read(a, 1);
    expect(pteHi(p, a) & PTE_WRITE).toBe(PTE_WRITE);
    const faults = k.vmstat().pgfault;
    p.write(a, new Uint8Array([1]));
    expect(k.vmstat().pgfault).toBe(faults);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('swap entries, fork, munmap and exit', () => {
  it('survive fork: both processes read the data, and COW keeps them apart after swap-in', () => {
    const k = boot();
    const p = k.spawn();
    const n = 8;
    const a = p.mmap(n * PAGE_SIZE);
    const data = randomBytes(n * PAGE_SIZE, 10);
    p.write(a, data);
    expect(madvisePageout(p.mm.vmaLookup(a)!, a, a + n * PAGE_SIZE)).toBe(n);
    const c = p.fork();
    const si = swapOf(k);
    expect(si.inusePages).toBe(n);
    for (let i = 0; i < n; i++) {
      const hi = pteHi(p, a + i * PAGE_SIZE);
      expect(hi & (PTE_SWAP | PTE_SWP_EXCLUSIVE)).toBe(PTE_SWAP); // no longer exclusive
      expect(pteHi(c, a + i * PAGE_SIZE)).toBe(hi);
      expect(si.swapCount(p.mm.pgtable.table(p.mm.pgtable.tableId)[p.mm.pgtable.slot])).toBe(2);
    }
    expect(c.mm.swapEnts).toBe(n);
    expect(k.checkInvariants()).toEqual([]);

    // The parent reads first: the slot is still shared, so its copy is mapped read-only.
    expect(sameBytes(p.read(a, n * PAGE_SIZE), data)).toBe(true);
    expect(pteHi(p, a) & PTE_WRITE).toBe(0);
    expect(k.phys.frames.flags[p.pagemap(a).pfn!] & PG_anon_exclusive).toBe(0);
    expect(si.inusePages).toBe(n); // the child's entries still hold the slots
    // The child reads the last reference: exclusive.
    expect(sameBytes(c.read(a, n * PAGE_SIZE), data)).toBe(true);
    expect(si.inusePages).toBe(0);
    expect(pteHi(c, a) & PTE_WRITE).toBe(PTE_WRITE);
    expect(k.checkInvariants()).toEqual([]);

    c.write(a, new Uint8Array([data[0] ^ 0xff]));
    p.write(a + PAGE_SIZE, new Uint8Array([data[PAGE_SIZE] ^ 0xff]));
    expect(p.read(a, 1)[0]).toBe(data[0]);
    expect(c.read(a, 1)[0]).toBe(data[0] ^ 0xff);
    expect(c.read(a + PAGE_SIZE, 1)[0]).toBe(data[PAGE_SIZE]);
    expect(p.read(a + PAGE_SIZE, 1)[0]).toBe(data[PAGE_SIZE] ^ 0xff);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('swaps out a page COW-shared by parent and child: one slot, one entry in each', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    const data = randomBytes(4 * PAGE_SIZE, 11);
    p.write(a, data);
    const c = p.fork();
    const pfns = [0, 1, 2, 3].map((i) => p.pagemap(a + i * PAGE_SIZE).pfn!);
    expect(reclaimPages(k.mmCore, pfns)).toBe(4);
    const si = swapOf(k);
    expect(si.inusePages).toBe(4);
    expect(p.mm.swapEnts + c.mm.swapEnts).toBe(8);
    expect(k.checkInvariants()).toEqual([]);
    c.write(a, new Uint8Array([1, 2, 3]));
    expect(sameBytes(p.read(a, 4 * PAGE_SIZE), data)).toBe(true);
    expect(Array.from(c.read(a, 3))).toEqual([1, 2, 3]);
    expect(sameBytes(c.read(a + 3, 4 * PAGE_SIZE - 3), data.subarray(3))).toBe(true);
    expect(si.inusePages).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('munmap and exit free the swap slots', () => {
    const k = boot();
    const si = swapOf(k);
    const p = k.spawn();
    const a = p.mmap(32 * PAGE_SIZE);
    p.write(a, randomBytes(32 * PAGE_SIZE, 12));
    madvisePageout(p.mm.vmaLookup(a)!, a, a + 32 * PAGE_SIZE);
    expect(si.inusePages).toBe(32);
    p.munmap(a, 16 * PAGE_SIZE);
    expect(si.inusePages).toBe(16);
    expect(p.mm.swapEnts).toBe(16);
    expect(k.checkInvariants()).toEqual([]);
    const c = p.fork();
    expect(si.inusePages).toBe(16);
    p.exit();
    expect(si.inusePages).toBe(16); // the child still refers to them
    expect(k.checkInvariants()).toEqual([]);
    c.exit();
    expect(si.inusePages).toBe(0);
    expect(si.freePages).toBe(si.totalPages);
    expect(si.usage().pagesWithData).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('MADV_PAGEOUT leaves shared and locked memory alone', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, randomBytes(4 * PAGE_SIZE, 13));
    const c = p.fork();
    expect(madvisePageout(p.mm.vmaLookup(a)!, a, a + 4 * PAGE_SIZE)).toBe(0); // mapped twice
    c.exit();
    p.mlock(a, 4 * PAGE_SIZE);
    expect(madvisePageout(p.mm.vmaLookup(a)!, a, a + 4 * PAGE_SIZE)).toBe(-22); // -EINVAL
    expect(k.checkInvariants()).toEqual([]);
  });

  it('mlock swaps a swapped-out range back in and keeps it', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    const data = randomBytes(8 * PAGE_SIZE, 14);
    p.write(a, data);
    madvisePageout(p.mm.vmaLookup(a)!, a, a + 8 * PAGE_SIZE);
    p.mlock(a, 8 * PAGE_SIZE);
    expect(p.mm.swapEnts).toBe(0);
    for (let i = 0; i < 8; i++) expect(p.pagemap(a + i * PAGE_SIZE).mlocked).toBe(true);
    expect(sameBytes(p.read(a, 8 * PAGE_SIZE), data)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('KernelOptions.swap', () => {
  it('defaults to no swap and accepts sizes, refusing areas below 40 KiB or not page-sized', () => {
    expect(createKernel().options.swap).toBe(0);
    expect(createKernel({ swap: '64MiB' }).options.swap).toBe(64 * MiB);
    expect(() => createKernel({ swap: '36KiB' })).toThrow(RangeError);
    expect(() => createKernel({ swap: 40 * 1024 + 1 })).toThrow(RangeError);
  });

  it('initReclaim is idempotent and logs the swapon line', () => {
    const k = boot('8MiB');
    const s1 = initReclaim(k.mmCore, { swap: 0 });
    expect(initReclaim(k.mmCore)).toBe(s1);
    expect(s1.swap?.totalPages).toBe(2047);
    expect(k.dmesg().some((l) => l.includes('Adding 8188k swap on /dev/svasim-swap.'))).toBe(true);
  });
});

describe('MADV_PAGEOUT and VmSwap', () => {
  it('pages a range out to swap now, and VmSwap shows it', async () => {
    const { MADV_PAGEOUT } = await import('../uapi/mman');
    const k = createKernel({
      memory: { nodes: [{ size: '64MiB' }] },
      swap: '16MiB',
      sysctl: { transparent_hugepage: 'never' },
    });
    initReclaim(k.mmCore, { swap: k.options.swap });
    const p = k.spawn();
    const a = p.mmap(16 * 4096);
    const data = new Uint8Array(16 * 4096).map((_, i) => (i * 13) & 255);
    p.write(a, data);
    p.madvise(a, 16 * 4096, MADV_PAGEOUT);
    expect(p.status().vmSwap).toBe(16 * 4096);
    expect(p.status().vmRss).toBe(0);
    expect(Buffer.compare(Buffer.from(p.read(a, data.length)), Buffer.from(data))).toBe(0);
    expect(p.status().vmSwap).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });
});
