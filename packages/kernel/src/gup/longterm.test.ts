import { afterEach, describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import type { Process } from '../proc/process';
import { ERRNO } from '../uapi/errno';
import {
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
} from '../uapi/mman';
import { checkMmInvariants } from '../mm/debug-vm';
import { GFP_HIGHUSER_MOVABLE, MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_MOVABLE } from '../mm/gfp';
import { FOLL_LONGTERM, FOLL_WRITE } from './foll-flags';
import { getUserPages, gupPutPages, pinUserPages, pinUserPagesFast, unpinUserPages } from './gup';
import { folioIsLongtermPinnable, memallocPinRestore, memallocPinSave } from './longterm';
import { checkGupInvariants, gupAttach, gupState } from './pin-tracker';

const booted: Kernel[] = [];

function boot(opts: KernelOptions): Kernel {
  const k = createKernel(opts);
  gupAttach(k.mmCore, k);
  booted.push(k);
  return k;
}

afterEach(() => {
  for (const k of booted.splice(0)) {
    expect(k.checkInvariants()).toEqual([]);
    expect(checkGupInvariants(k.mmCore)).toEqual([]);
    const refs = new Map<number, number>();
    gupState(k.mmCore).addRefs(refs);
    expect(checkMmInvariants(k.mmCore, refs)).toEqual([]);
  }
});

/** The brief's machine: 512 MiB with 256 MiB of ZONE_MOVABLE and a 64 MiB CMA area. */
const MOVABLE_CMA: KernelOptions = {
  memory: { nodes: [{ size: '512MiB', movable: '256MiB', cma: '64MiB' }] },
};

const pinned = (k: Kernel) => k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released;
const where = (p: Process, a: number) => {
  const e = p.pagemap(a);
  return `${e.zone}/${e.migratetype}`;
};

/**
 * A process with `n` pages in ZONE_MOVABLE (faulted first: movable allocations prefer it) and a
 * window of `n` pages of which most are in the CMA area, each page holding its own byte pattern.
 * The window is found in a ballast faulted until the allocator turns to CMA (once the zone's free
 * memory is mostly CMA it takes CMA and ordinary pageblocks in turn); the rest of the ballast is
 * unmapped again, so there is room to migrate to. `inCma` tells which window pages are CMA.
 */
function movableAndCma(k: Kernel, n: number) {
  const p = k.spawn();
  const mov = p.mmap(n * PAGE_SIZE);
  for (let i = 0; i < n; i++) p.write(mov + i * PAGE_SIZE, new Uint8Array([0x10 + i, 0xaa]));
  const chunk = 2 ** 20;
  const ballastLen = 480 * chunk;
  const ballast = p.mmap(ballastLen);
  p.madvise(ballast, ballastLen, MADV_NOHUGEPAGE); // small pages, so CMA ones can be picked singly
  const isCma = (a: number) => p.pagemap(a).migratetype === 'CMA';
  let cma = -1;
  for (let off = 0; off < ballastLen && cma < 0; off += chunk) {
    p.touch(ballast + off, chunk, { write: true });
    for (let a = ballast + off; a + n * PAGE_SIZE <= ballast + off + chunk; a += PAGE_SIZE) {
      let hits = 0;
      for (let i = 0; i < n; i++) if (isCma(a + i * PAGE_SIZE)) hits++;
      if (isCma(a) && hits * 2 >= n) {
        cma = a;
        break;
      }
    }
  }
  expect(cma).toBeGreaterThan(0);
  p.munmap(ballast, cma - ballast);
  p.munmap(cma + n * PAGE_SIZE, ballast + ballastLen - cma - n * PAGE_SIZE);
  const inCma: boolean[] = [];
  for (let i = 0; i < n; i++) {
    p.write(cma + i * PAGE_SIZE, new Uint8Array([0x40 + i, 0xbb]));
    inCma.push(isCma(cma + i * PAGE_SIZE));
    expect(where(p, mov + i * PAGE_SIZE)).toBe('MOVABLE/MOVABLE');
    expect(where(p, cma + i * PAGE_SIZE)).toMatch(/^DMA32\/(CMA|MOVABLE)$/);
  }
  return { p, mov, cma, inCma };
}

function expectData(p: Process, a: number, n: number, first: number, tag: number) {
  for (let i = 0; i < n; i++) expect(Array.from(p.read(a + i * PAGE_SIZE, 2))).toEqual([first + i, tag]);
}

describe('folioIsLongtermPinnable', () => {
  it('refuses ZONE_MOVABLE, CMA and ISOLATE pageblocks; the zero page is always pinnable', () => {
    const k = boot(MOVABLE_CMA);
    const core = k.mmCore;
    const normal = k.phys.allocPages(GFP_HIGHUSER_MOVABLE & ~0, 0, 0); // lands in ZONE_MOVABLE
    expect(k.phys.placement(normal).zone).toBe('MOVABLE');
    expect(folioIsLongtermPinnable(core, normal)).toBe(false);
    expect(folioIsLongtermPinnable(core, k.phys.zeroPfn)).toBe(true);
    const cmaPfn = k.phys.cmaAreas[0].basePfn;
    expect(folioIsLongtermPinnable(core, cmaPfn)).toBe(false);
    const dma = k.phys.cmaAreas[0].basePfn - 4096;
    expect(k.phys.placement(dma).migratetype).toBe('MOVABLE');
    expect(folioIsLongtermPinnable(core, dma)).toBe(true);
    k.phys.pageblocks.setPageblockMigratetype(dma, MIGRATE_ISOLATE);
    expect(folioIsLongtermPinnable(core, dma)).toBe(false);
    expect(gupState(core).isPinnable(dma)).toBe(false);
    k.phys.pageblocks.setPageblockMigratetype(dma, MIGRATE_MOVABLE);
    k.phys.freePages(normal, 0);
  });
});

describe('FOLL_LONGTERM migrates out of ZONE_MOVABLE and CMA', () => {
  for (const [name, pin] of [
    ['pin_user_pages', pinUserPages],
    ['pin_user_pages_fast', pinUserPagesFast],
  ] as const) {
    it(`${name}: every pinned page ends up pinnable, data intact, nothing else pinned`, () => {
      const k = boot(MOVABLE_CMA);
      const n = 8;
      const { p, mov, cma, inCma } = movableAndCma(k, n);
      const st = gupState(k.mmCore);
      const migrated0 = k.vmstat().pgmigrate_success;
      const cmaPages = inCma.filter(Boolean).length;
      for (const [a, first, tag, unpinnable] of [
        [mov, 0x10, 0xaa, inCma.map(() => true)],
        [cma, 0x40, 0xbb, inCma],
      ] as const) {
        const old = Array.from({ length: n }, (_, i) => p.pagemap(a + i * PAGE_SIZE).pfn);
        const pages = new Int32Array(n);
        expect(pin(p.mm, a, n, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(n);
        for (let i = 0; i < n; i++) {
          expect(pages[i]).toBe(p.pagemap(a + i * PAGE_SIZE).pfn);
          // Only the unpinnable pages moved.
          expect(pages[i] !== old[i]).toBe(unpinnable[i]);
          expect(folioIsLongtermPinnable(k.mmCore, pages[i])).toBe(true);
          expect(where(p, a + i * PAGE_SIZE)).toBe('DMA32/MOVABLE');
          expect(p.pagemap(a + i * PAGE_SIZE).pinned).toBe(true);
          expect(st.longtermPins(pages[i])).toBe(1);
        }
        expectData(p, a, n, first, tag);
        expect(pinned(k)).toBe(n);
        expect(checkGupInvariants(k.mmCore)).toEqual([]);
        unpinUserPages(k.mmCore, pages, n);
      }
      expect(cmaPages).toBeGreaterThan(0);
      expect(k.vmstat().pgmigrate_success - migrated0).toBe(n + cmaPages);
      expect(st.stats.longtermMigrated).toBe(n + cmaPages);
      if (pin === pinUserPagesFast) expect(st.stats.fastFallbacks).toBe(2);
    });
  }

  it('shared anonymous (shmem) pages move for every process mapping them', () => {
    const k = boot(MOVABLE_CMA);
    const p = k.spawn();
    const s = p.mmap(4 * PAGE_SIZE, { flags: MAP_SHARED | MAP_ANONYMOUS });
    for (let i = 0; i < 4; i++) p.write(s + i * PAGE_SIZE, new Uint8Array([i + 1]));
    const c = p.fork();
    c.touch(s, 4 * PAGE_SIZE);
    expect(where(p, s)).toBe('MOVABLE/MOVABLE');
    const pages = new Int32Array(4);
    expect(pinUserPages(p.mm, s, 4, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(c.pagemap(s + i * PAGE_SIZE).pfn).toBe(pages[i]);
      expect(where(c, s + i * PAGE_SIZE)).toBe('DMA32/MOVABLE');
      expect(c.read(s + i * PAGE_SIZE, 1)[0]).toBe(i + 1);
    }
    unpinUserPages(k.mmCore, pages, 4);
    c.exit();
  });

  it('pages faulted during a long-term pin are allocated pinnable at once (memalloc_pin_save)', () => {
    const k = boot(MOVABLE_CMA);
    const p = k.spawn();
    const a = p.mmap(16 * PAGE_SIZE);
    const migrated0 = k.vmstat().pgmigrate_success;
    const pages = new Int32Array(16);
    expect(pinUserPages(p.mm, a, 16, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(16);
    expect(k.vmstat().pgmigrate_success).toBe(migrated0);
    for (let i = 0; i < 16; i++) expect(folioIsLongtermPinnable(k.mmCore, pages[i])).toBe(true);
    unpinUserPages(k.mmCore, pages, 16);
    // Outside the scope, the same faults land in ZONE_MOVABLE again.
    const b = p.mmap(PAGE_SIZE);
    p.touch(b, PAGE_SIZE, { write: true });
    expect(where(p, b)).toBe('MOVABLE/MOVABLE');
  });

  it('memalloc_pin_save scopes nest and restore the allocator', () => {
    const k = boot(MOVABLE_CMA);
    const fn = k.phys.allocPages;
    memallocPinSave(k.mmCore);
    memallocPinSave(k.mmCore);
    const a = k.phys.allocPages(GFP_HIGHUSER_MOVABLE, 0, 0);
    memallocPinRestore(k.mmCore);
    const b = k.phys.allocPages(GFP_HIGHUSER_MOVABLE, 0, 0);
    memallocPinRestore(k.mmCore);
    const c = k.phys.allocPages(GFP_HIGHUSER_MOVABLE, 0, 0);
    expect(k.phys.placement(a).zone).not.toBe('MOVABLE');
    expect(k.phys.placement(b).zone).not.toBe('MOVABLE');
    expect(k.phys.placement(c).zone).toBe('MOVABLE');
    expect(k.phys.allocPages).toBe(fn);
    expect(Object.prototype.hasOwnProperty.call(k.phys, 'allocPages')).toBe(false);
    for (const pfn of [a, b, c]) k.phys.freePages(pfn, 0);
  });

  it('a page that cannot migrate (an extra reference) fails the pin with -ENOMEM and nothing pinned', () => {
    const k = boot(MOVABLE_CMA);
    const n = 4;
    const p = k.spawn();
    const mov = p.mmap(n * PAGE_SIZE); // the first allocations come from ZONE_MOVABLE
    for (let i = 0; i < n; i++) p.write(mov + i * PAGE_SIZE, new Uint8Array([0x10 + i, 0xaa]));
    const held = [0];
    expect(getUserPages(p.mm, mov + 2 * PAGE_SIZE, 1, 0, held)).toBe(1); // a GET reference
    const st = gupState(k.mmCore);
    const stuck = () => {
      expect(p.pagemap(mov + 2 * PAGE_SIZE).pfn).toBe(held[0]);
      expect(where(p, mov + 2 * PAGE_SIZE)).toBe('MOVABLE/MOVABLE');
      expectData(p, mov, n, 0x10, 0xaa);
      expect(checkGupInvariants(k.mmCore)).toEqual([]);
      expect(k.checkInvariants()).toEqual([]);
    };
    const pages = new Int32Array(n);
    expect(pinUserPages(p.mm, mov, n, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(-ERRNO.ENOMEM);
    expect(pinned(k)).toBe(0);
    for (let i = 0; i < n; i++) expect(p.pagemap(mov + i * PAGE_SIZE).pinned).toBe(false);
    expect(Array.from(pages)).toEqual([-1, -1, -1, -1]);
    // migrate_pages moved what it could: only the referenced page stayed behind.
    expect(where(p, mov)).toBe('DMA32/MOVABLE');
    stuck();
    // GUP-fast pins the two pinnable pages before the stuck one; the slow path then fails:
    // the partial count is returned (gup_fast_fallback), and only those two are pinned.
    expect(pinUserPagesFast(p.mm, mov, n, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(2);
    expect(pinned(k)).toBe(2);
    expect(Array.from(pages.subarray(2))).toEqual([-1, -1]);
    unpinUserPages(k.mmCore, pages, 2);
    expect(pinned(k)).toBe(0);
    expect(pinUserPagesFast(p.mm, mov + 2 * PAGE_SIZE, 2, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(
      -ERRNO.ENOMEM,
    );
    expect(pinned(k)).toBe(0);
    stuck();
    expect(st.stats.longtermFailures).toBe(3);
    gupPutPages(k.mmCore, held, 1);
    // With the reference gone, the same pin succeeds.
    expect(pinUserPages(p.mm, mov, n, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(n);
    expect(where(p, mov + 2 * PAGE_SIZE)).toBe('DMA32/MOVABLE');
    unpinUserPages(k.mmCore, pages, n);
  });

  it('a short-term pin may stay in ZONE_MOVABLE; only FOLL_LONGTERM moves the page', () => {
    const k = boot(MOVABLE_CMA);
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.touch(a, PAGE_SIZE, { write: true });
    const pages = [0];
    expect(pinUserPagesFast(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    expect(where(p, a)).toBe('MOVABLE/MOVABLE');
    expect(gupState(k.mmCore).longtermPins(pages[0])).toBe(0);
    expect(checkGupInvariants(k.mmCore)).toEqual([]);
    // A second, long-term pin of the same page: it is pinned already, so it cannot move.
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE | FOLL_LONGTERM, [0])).toBe(-ERRNO.ENOMEM);
    unpinUserPages(k.mmCore, pages, 1);
  });
});

describe('transparent huge pages', () => {
  it('a PMD-mapped THP is pinned per subpage and migrated whole under FOLL_LONGTERM', () => {
    const k = boot(MOVABLE_CMA);
    const p = k.spawn();
    const len = 4 * 2 ** 21;
    const raw = p.mmap(len);
    const a = Math.ceil(raw / 2 ** 21) * 2 ** 21;
    p.write(a + 3 * PAGE_SIZE, new Uint8Array([3, 1, 4]));
    const head = p.pagemap(a).pfn!;
    const f = k.phys.frames;
    const order = f.getOrder(head);
    if (order === 0) return; // this kernel maps no THP here: nothing THP-specific to check
    expect(p.pagemap(a).huge).toBe('2MiB');
    const pages = new Int32Array(512);
    expect(pinUserPagesFast(p.mm, a, 512, FOLL_WRITE, pages)).toBe(512);
    expect(pages[3]).toBe(head + 3);
    expect(f.privateData[head + 1]).toBe(512);
    unpinUserPages(k.mmCore, pages, 512);
    expect(f.privateData[head + 1]).toBe(0);
    expect(where(p, a)).toBe('MOVABLE/MOVABLE');
    expect(pinUserPages(p.mm, a, 512, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(512);
    expect(pages[0]).not.toBe(head);
    expect(f.getOrder(pages[0])).toBe(order);
    expect(f.privateData[pages[0] + 1]).toBe(512);
    expect(folioIsLongtermPinnable(k.mmCore, pages[0])).toBe(true);
    expect(Array.from(p.read(a + 3 * PAGE_SIZE, 3))).toEqual([3, 1, 4]);
    unpinUserPages(k.mmCore, pages, 512);
  });
});

describe('FOLL_LONGTERM on hugetlb', () => {
  const HUGE: KernelOptions = { memory: { nodes: [{ size: '512MiB' }], hugepages: { '2MiB': 2 } } };
  const mapHuge = (p: Process) => p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });

  it('pool pages are pinnable; one in an unpinnable pageblock moves to a pinnable pool page', () => {
    const k = boot(HUGE);
    const p = k.spawn();
    const h = mapHuge(p);
    p.write(h + 7 * PAGE_SIZE, new Uint8Array([1, 2, 3]));
    const old = p.pagemap(h).pfn!;
    expect(folioIsLongtermPinnable(k.mmCore, old)).toBe(true);
    k.phys.pageblocks.setPageblockMigratetype(old, MIGRATE_CMA); // as if it sat in a CMA area
    const pages = new Int32Array(512);
    expect(pinUserPages(p.mm, h, 512, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(512);
    expect(pages[0]).not.toBe(old);
    expect(p.pagemap(h).pfn).toBe(pages[0]);
    expect(p.pagemap(h).huge).toBe('2MiB');
    expect(k.phys.frames.privateData[pages[0] + 1]).toBe(512);
    expect(Array.from(p.read(h + 7 * PAGE_SIZE, 3))).toEqual([1, 2, 3]);
    expect(k.hugetlb.stats('2MiB').free).toBe(1); // the old page went back to the pool
    unpinUserPages(k.mmCore, pages, 512);
    k.phys.pageblocks.setPageblockMigratetype(old, MIGRATE_MOVABLE);
  });

  it('with no pinnable pool page left the migration fails: -ENOMEM, nothing pinned', () => {
    const k = boot(HUGE);
    const p = k.spawn();
    const h1 = mapHuge(p);
    const h2 = mapHuge(p);
    p.write(h1, new Uint8Array([9]));
    p.write(h2, new Uint8Array([8]));
    const old = p.pagemap(h1).pfn!;
    k.phys.pageblocks.setPageblockMigratetype(old, MIGRATE_CMA);
    const pages = new Int32Array(512);
    for (const pin of [pinUserPages, pinUserPagesFast]) {
      expect(pin(p.mm, h1, 512, FOLL_LONGTERM, pages)).toBe(-ERRNO.ENOMEM);
      expect(pinned(k)).toBe(0);
      expect(k.phys.frames.privateData[old + 1]).toBe(0);
      expect(p.pagemap(h1).pfn).toBe(old);
      expect(p.read(h1, 1)[0]).toBe(9);
    }
    k.phys.pageblocks.setPageblockMigratetype(old, MIGRATE_MOVABLE);
  });
});

describe('checkGupInvariants', () => {
  it('reports a long-term pin in an unpinnable pageblock, a pincount GUP does not hold, and vmstat drift', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 1 } } });
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    const pages = [0];
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(1);
    k.phys.pageblocks.setPageblockMigratetype(pages[0], MIGRATE_CMA);
    expect(checkGupInvariants(k.mmCore).join('\n')).toMatch(/FOLL_LONGTERM pin in .* CMA/);
    k.phys.pageblocks.setPageblockMigratetype(pages[0], MIGRATE_MOVABLE);
    expect(checkGupInvariants(k.mmCore)).toEqual([]);
    unpinUserPages(k.mmCore, pages, 1);

    const h = p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    p.touch(h, PAGE_SIZE, { write: true });
    const head = p.pagemap(h).pfn!;
    k.phys.frames.privateData[head + 1]++;
    expect(checkGupInvariants(k.mmCore).join('\n')).toMatch(/pincount 1 not held by GUP/);
    k.phys.frames.privateData[head + 1]--;

    k.counters.inc(k.counters.register('nr_foll_pin_acquired'));
    expect(checkGupInvariants(k.mmCore).join('\n')).toMatch(
      /nr_foll_pin_acquired \d+ - nr_foll_pin_released \d+ != 0 pinned pages/,
    );
    k.counters.inc(k.counters.register('nr_foll_pin_released'));
    expect(checkGupInvariants(k.mmCore)).toEqual([]);
  });

  it('gupAttach registers once per kernel', () => {
    const k = boot({});
    expect(gupAttach(k.mmCore, k)).toBe(false);
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    const pages = [0];
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    expect(k.checkInvariants()).toEqual([]); // the pin's bias is accounted once, not twice
    unpinUserPages(k.mmCore, pages, 1);
  });
});
