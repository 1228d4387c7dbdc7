import { describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { MAP_ANONYMOUS, MAP_HUGE_1GB, MAP_HUGETLB, MAP_PRIVATE, PAGE_SIZE } from '../uapi/mman';
import { compactionCounters, initCompaction } from './compaction';
import { contigCounters } from './contig-alloc';
import { PAGEBLOCK_NR_PAGES } from './gfp';
import { allocHugetlbPoolPage } from './hugetlb-alloc';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';

const GiB_PAGES = 2 ** 18;

/** Pins as FOLL_PIN would, reported to the invariant checker. */
function pinner(k: Kernel) {
  const pins = new Set<number>();
  k.addRefSource((refs) => {
    for (const pfn of pins) refs.set(pfn, (refs.get(pfn) ?? 0) + GUP_PIN_COUNTING_BIAS);
  });
  return {
    pin(pfn: number) {
      k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS;
      pins.add(pfn);
    },
    unpin(pfn: number) {
      k.phys.frames.refcount[pfn] -= GUP_PIN_COUNTING_BIAS;
      pins.delete(pfn);
    },
  };
}

/**
 * Make the next page allocations land at @target: every free page below it is taken off the buddy
 * (and given back by the returned function).
 */
function allocateFrom(k: Kernel, target: number): () => void {
  const below: Array<[number, number]> = [];
  k.phys.forEachFreeBlock((pfn, order) => {
    if (pfn < target) below.push([pfn, Math.min(2 ** order, target - pfn)]);
  });
  for (const [pfn, n] of below) expect(k.phys.takeFreeRange(pfn, n)).toBe(true);
  return () => {
    for (const [pfn, n] of below) k.phys.freeRange(pfn, n);
  };
}

/** Write @pages pages with a pattern in a new mapping of @p. */
function populate(p: Process, pages: number) {
  const a = p.mmap(pages * PAGE_SIZE);
  for (let i = 0; i < pages; i++) p.write(a + i * PAGE_SIZE, new Uint8Array([0x3c, i & 255, i >> 8]));
  return {
    a,
    pfn: (i: number) => p.pagemap(a + i * PAGE_SIZE).pfn!,
    check() {
      for (let i = 0; i < pages; i++) {
        const b = p.read(a + i * PAGE_SIZE, 3);
        if (b[0] !== 0x3c || b[1] !== (i & 255) || b[2] !== i >> 8) throw new Error(`page ${i} corrupted`);
      }
    },
  };
}

describe('run-time huge pages', () => {
  it('assembles 2 MiB pages from the buddy, stealing nothing from CMA or ZONE_MOVABLE', () => {
    const k = createKernel({ memory: { nodes: [{ size: '512MiB', movable: '128MiB', cma: '64MiB' }] } });
    for (let i = 0; i < 4; i++) expect(k.allocHugepage('2MiB')).toBe(true);
    expect(k.hugetlb.stats('2MiB')).toEqual({ nr: 4, free: 4, resv: 0, surplus: 0 });
    expect(k.vmstat().htlb_buddy_alloc_success).toBe(4);
    const head = k.hugetlb.allocHugetlbFolio('2MiB');
    expect(k.phys.placement(head)).toEqual({ nid: 0, zone: 'DMA32', migratetype: 'MOVABLE' });
    k.hugetlb.freeHugetlbFolio(head);
    expect(k.checkInvariants()).toEqual([]);
    expect(() => k.allocHugepage('2MiB', 3)).toThrow(RangeError);
    k.hugetlb.setNrHugepages('2MiB', 0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('cannot assemble a 2 MiB page once every pageblock holds a pinned page', () => {
    const k = createKernel({
      memory: { nodes: [{ size: '128MiB' }] },
      sysctl: { transparent_hugepage: 'never' },
    });
    initCompaction(k.mmCore);
    const procs = [0, 1].map(() => k.spawn());
    const pages = Math.floor((k.phys.nrFreePages() - 2048) / 2);
    const maps = procs.map((p) => p.mmap(pages * PAGE_SIZE));
    for (let i = 0; i < pages; i++)
      for (let j = 0; j < 2; j++) procs[j].write(maps[j] + i * PAGE_SIZE, new Uint8Array([j, 1]));
    // Take what stayed free in 2 MiB blocks, then free every other page.
    const hidden: Array<[number, number]> = [];
    k.phys.forEachFreeBlock((pfn, order) => {
      if (order >= 9) hidden.push([pfn, 2 ** order]);
    });
    for (const [pfn, n] of hidden) k.phys.takeFreeRange(pfn, n);
    procs[1].exit();
    // One pinned page per pageblock: 1/512 of the memory.
    const pins = pinner(k);
    const seen = new Set<number>();
    for (let i = 0; i < pages; i++) {
      const pfn = procs[0].pagemap(maps[0] + i * PAGE_SIZE).pfn!;
      const pb = Math.floor(pfn / PAGEBLOCK_NR_PAGES);
      if (seen.has(pb)) continue;
      seen.add(pb);
      pins.pin(pfn);
    }
    const free = k.phys.nrFreePages();
    expect(free).toBeGreaterThan(pages / 2); // plenty of memory, none of it usable for 2 MiB
    const r = allocHugetlbPoolPage(k.mmCore, '2MiB');
    expect(r.ok).toBe(false);
    expect(r.latencyNs).toBeGreaterThan(0);
    const vm = k.vmstat();
    expect(vm.compact_stall).toBeGreaterThanOrEqual(1);
    expect(vm.compact_fail).toBe(vm.compact_stall);
    expect(vm.htlb_buddy_alloc_fail).toBe(1);
    expect(compactionCounters(k.mmCore).skippedPinned).toBeGreaterThan(50);
    expect(k.checkInvariants()).toEqual([]);
    // Without the pins, the same machine assembles one.
    const pinnedPfns = [...seen].length;
    expect(pinnedPfns).toBeGreaterThan(50);
    for (let i = 0; i < pages; i++) {
      const pfn = procs[0].pagemap(maps[0] + i * PAGE_SIZE).pfn!;
      if (k.phys.frames.refcount[pfn] >= GUP_PIN_COUNTING_BIAS) pins.unpin(pfn);
    }
    expect(k.allocHugepage('2MiB')).toBe(true);
    expect(k.vmstat().compact_success).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
    for (const [pfn, n] of hidden) k.phys.freeRange(pfn, n);
  });

  it('assembles a 1 GiB page by migrating the pages in the way', () => {
    const k = createKernel({
      memory: { nodes: [{ size: '4GiB' }] },
      sysctl: { transparent_hugepage: 'never' },
    });
    const p = k.spawn();
    const give = allocateFrom(k, GiB_PAGES);
    const data = populate(p, 2048);
    give();
    expect(data.pfn(0)).toBe(GiB_PAGES);
    const r = allocHugetlbPoolPage(k.mmCore, '1GiB');
    expect(r).toMatchObject({ ok: true, nid: 0, pfn: GiB_PAGES });
    expect(r.latencyNs).toBeGreaterThan(2048 * 1000);
    expect(k.hugetlb.stats('1GiB')).toEqual({ nr: 1, free: 1, resv: 0, surplus: 0 });
    for (let i = 0; i < 2048; i++) {
      const pfn = data.pfn(i);
      expect(pfn < GiB_PAGES || pfn >= 2 * GiB_PAGES).toBe(true);
    }
    data.check();
    expect(contigCounters(k.mmCore).migrated).toBe(2048);
    expect(k.checkInvariants()).toEqual([]);
    // The page serves a MAP_HUGETLB mapping, and goes back to the buddy when the pool shrinks.
    const h = p.mmap(2 ** 30, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB });
    p.write(h + 12345, new Uint8Array([42]));
    expect(p.pagemap(h).pfn).toBe(GiB_PAGES);
    expect(p.read(h + 12345, 1)[0]).toBe(42);
    expect(k.checkInvariants()).toEqual([]);
    p.munmap(h, 2 ** 30);
    expect(k.hugetlb.setNrHugepages('1GiB', 0)).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('fails a 1 GiB page when one pinned page sits in every candidate range', () => {
    const k = createKernel({
      memory: { nodes: [{ size: '4GiB' }] },
      sysctl: { transparent_hugepage: 'never' },
    });
    const p = k.spawn();
    const pins = pinner(k);
    const gives: Array<() => void> = [];
    const victims: number[] = [];
    // Candidates: [1, 2), [2, 3) and [3, 4) GiB; [0, 1) holds the kernel's reserved pages.
    for (const g of [1, 2, 3]) {
      gives.push(allocateFrom(k, g * GiB_PAGES + 1000));
      const d = populate(p, 1);
      expect(Math.floor(d.pfn(0) / GiB_PAGES)).toBe(g);
      victims.push(d.pfn(0));
      pins.pin(d.pfn(0));
    }
    for (const give of gives.reverse()) give();
    const r = allocHugetlbPoolPage(k.mmCore, '1GiB');
    expect(r.ok).toBe(false);
    expect(contigCounters(k.mmCore)).toMatchObject({ attempts: 3, successes: 0, busy: 3 });
    expect(k.hugetlb.stats('1GiB').nr).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    // Three pinned 4 KiB pages (12 KiB of 4 GiB) stop it; release the one in [2, 3) GiB.
    pins.unpin(victims[1]);
    const r2 = allocHugetlbPoolPage(k.mmCore, '1GiB');
    expect(r2).toMatchObject({ ok: true, pfn: 2 * GiB_PAGES });
    expect(k.checkInvariants()).toEqual([]);
  });
});
