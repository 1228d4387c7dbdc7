import { describe, expect, it } from '@jest/globals';
import { Vmstat } from '../sim/vmstat';
import { checkBuddyInvariants } from './buddy-check';
import {
  GFP_ATOMIC,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_NOWAIT,
  GFP_TRANSHUGE,
  MIGRATE_CMA,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_UNMOVABLE,
  PAGEBLOCK_NR_PAGES,
  ZONE_DMA32,
  ZONE_MOVABLE,
  ZONE_NORMAL,
  __GFP_COMP,
  __GFP_PIN,
  __GFP_THISNODE,
} from './gfp';
import { PageAllocator } from './page-alloc';
import { PG_buddy, PG_head, PG_reserved, PG_tail, PG_zero } from './page-flags';
import type { PhysMemConfig } from './phys-types';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const PAGES_PER_MIB = 256;

function boot(config: PhysMemConfig): { alloc: PageAllocator; vmstat: Vmstat } {
  const vmstat = new Vmstat();
  const alloc = new PageAllocator(config, vmstat);
  alloc.debugVm = true;
  return { alloc, vmstat };
}

/** Every free block as "pfn:order", sorted: the shape of the free lists, types aside. */
function freeBlocks(alloc: PageAllocator): string[] {
  const out: string[] = [];
  alloc.forEachFreeBlock((pfn, order) => out.push(`${pfn}:${order}`));
  return out.sort();
}

const small2Node: PhysMemConfig = {
  nodes: [
    { size: 64 * MiB, movable: 16 * MiB, cma: 8 * MiB },
    { size: 64 * MiB, movable: 16 * MiB, cma: 8 * MiB },
  ],
};

describe('PageAllocator boot', () => {
  it('lays out two nodes with DMA32, NORMAL, MOVABLE, CMA and reserved memory', () => {
    const { alloc } = boot({
      nodes: [
        { size: 6 * GiB, movable: 1 * GiB, cma: 256 * MiB },
        { size: 2 * GiB, movable: 512 * MiB, cma: 128 * MiB },
      ],
    });
    const pg = (bytes: number) => bytes / 4096;
    expect(alloc.maxPfn).toBe(pg(8 * GiB));
    expect(alloc.nodes.map((n) => [n.startPfn, n.spannedPages, n.reservedPages])).toEqual([
      [0, pg(6 * GiB), pg(96 * MiB)],
      [pg(6 * GiB), pg(2 * GiB), pg(32 * MiB)],
    ]);
    const spans = alloc.zones.map((z) => [z.nid, z.name, z.startPfn, z.spannedPages]);
    expect(spans).toEqual([
      [0, 'DMA32', 0, pg(4 * GiB)],
      [0, 'NORMAL', pg(4 * GiB), pg(1 * GiB)],
      [0, 'MOVABLE', pg(5 * GiB), pg(1 * GiB)],
      [1, 'DMA32', pg(6 * GiB), 0],
      [1, 'NORMAL', pg(6 * GiB), pg(1.5 * GiB)],
      [1, 'MOVABLE', pg(7.5 * GiB), pg(512 * MiB)],
    ]);
    // Managed = spanned minus the reserved bottom of each node.
    expect(alloc.zone(0, ZONE_DMA32).managedPages).toBe(pg(4 * GiB - 96 * MiB));
    expect(alloc.zone(1, ZONE_NORMAL).managedPages).toBe(pg(1.5 * GiB - 32 * MiB));
    expect(alloc.nrFreePages()).toBe(pg(8 * GiB - 128 * MiB));

    expect(alloc.migratetypeOf(0)).toBe(MIGRATE_UNMOVABLE);
    expect(alloc.migratetypeOf(pg(96 * MiB) - 1)).toBe(MIGRATE_UNMOVABLE);
    expect(alloc.migratetypeOf(pg(96 * MiB))).toBe(MIGRATE_MOVABLE);
    expect(alloc.migratetypeOf(pg(4.75 * GiB) - 1)).toBe(MIGRATE_MOVABLE);
    expect(alloc.migratetypeOf(pg(4.75 * GiB))).toBe(MIGRATE_CMA);
    expect(alloc.migratetypeOf(pg(5 * GiB) - 1)).toBe(MIGRATE_CMA);
    expect(alloc.migratetypeOf(pg(5 * GiB))).toBe(MIGRATE_MOVABLE);
    expect(alloc.placement(pg(7.5 * GiB) - 1)).toEqual({ nid: 1, zone: 'NORMAL', migratetype: 'CMA' });
    expect(alloc.placement(pg(7.5 * GiB))).toEqual({ nid: 1, zone: 'MOVABLE', migratetype: 'MOVABLE' });
    expect(alloc.isMovableZone(pg(5 * GiB))).toBe(true);
    expect(alloc.nodeOf(pg(6 * GiB))).toBe(1);

    expect(alloc.cmaAreas.map((a) => [a.name, a.nid, a.basePfn, a.count])).toEqual([
      ['pernuma0', 0, pg(4.75 * GiB), pg(256 * MiB)],
      ['pernuma1', 1, pg(7.375 * GiB), pg(128 * MiB)],
    ]);
    expect(alloc.nrFreeCmaPages()).toBe(pg(384 * MiB));

    const f = alloc.frames;
    expect(f.flags[0] & PG_reserved).toBeTruthy();
    expect(f.flags[pg(6 * GiB) + 5] & PG_reserved).toBeTruthy();
    expect(f.flags[pg(96 * MiB)] & PG_reserved).toBe(0);
    expect(alloc.zeroPfn).toBe(pg(96 * MiB) - 1);
    expect(f.flags[alloc.zeroPfn] & (PG_zero | PG_reserved)).toBe(PG_zero | PG_reserved);
    expect(f.refcount[alloc.zeroPfn]).toBe(1);
    expect(checkBuddyInvariants(alloc)).toEqual([]);
    expect(alloc.bootMessages).toContain('  Node 0: 0x0000000140000000');
    expect(alloc.bootMessages).toContain('cma: Reserved 256 MiB at 0x0000000130000000 on node 0');
  });

  it('computes the kernel watermarks', () => {
    const { alloc } = boot({ nodes: [{ size: 1 * GiB }] });
    const z = alloc.zone(0, ZONE_DMA32);
    // managed 258048 pages = 1032192 KiB; int_sqrt(1032192 * 16) = 4063 KiB = 1015 pages.
    expect(alloc.minFreeKbytes).toBe(4063);
    expect([z.watermarkMin, z.watermarkLow, z.watermarkHigh]).toEqual([1015, 1015 + 258, 1015 + 516]);

    const m = boot({ nodes: [{ size: 1 * GiB, movable: 512 * MiB }] }).alloc;
    // ZONE_MOVABLE: managed/1024 clamped to [32, 128]; kswapd distance from the scale factor.
    const mz = m.zone(0, ZONE_MOVABLE);
    expect(mz.watermarkMin).toBe(128);
    // tmp = pages_min * managed / lowmem = 712 * 131072 / 126976; distance max(tmp / 4, 131).
    expect(m.minFreeKbytes).toBe(2850);
    expect(mz.watermarkLow).toBe(128 + (Math.floor((712 * 131072) / 126976) >> 2));
    // DMA32 keeps a lowmem reserve against allocations that could have used ZONE_MOVABLE.
    expect(m.zone(0, ZONE_DMA32).lowmemReserve[ZONE_MOVABLE]).toBe(Math.floor(131072 / 256));
  });

  it('rejects configs it cannot boot, naming node and field', () => {
    const bad = (config: PhysMemConfig) => () => new PageAllocator(config, new Vmstat());
    expect(bad({ nodes: [] })).toThrow(/at least one node/);
    expect(bad({ nodes: [{ size: 3 * MiB }] })).toThrow(/node 0: size 3 MiB is not a positive multiple/);
    expect(bad({ nodes: [{ size: 0 }] })).toThrow(RangeError);
    expect(bad({ nodes: [{ size: 64 * MiB }, { size: 64 * MiB, cma: 1 * MiB }] })).toThrow(
      /node 1: cma 1 MiB/,
    );
    expect(bad({ nodes: [{ size: 64 * MiB, movable: 48 * MiB, cma: 16 * MiB }] })).toThrow(
      /node 0: movable \(48 MiB\) \+ cma \(16 MiB\) \+ reserved \(1 MiB\) exceed the node size \(64 MiB\)/,
    );
    expect(bad({ nodes: [{ size: 6 * GiB, movable: 1 * GiB, cma: 2 * GiB }] })).toThrow(/4 GiB boundary/);
    expect(bad({ nodes: [{ size: 64 * MiB }], reservedFraction: 1 })).toThrow(/reservedFraction/);
  });

  it('boots a 64 GiB two-node machine', () => {
    const { alloc, vmstat } = boot({ nodes: [{ size: 32 * GiB }, { size: 32 * GiB }] });
    expect(alloc.maxPfn).toBe(16 * 2 ** 20);
    expect(alloc.nrFreePages()).toBe(16 * 2 ** 20 - (2 * (32 * GiB)) / 64 / 4096);
    expect(vmstat.read('nr_free_pages')).toBe(alloc.nrFreePages());
    expect(alloc.zoneInfo().map((z) => [z.nid, z.zone])).toEqual([
      [0, 'DMA32'],
      [0, 'NORMAL'],
      [1, 'NORMAL'],
    ]);
    const pfn = alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, 1);
    expect(alloc.nodeOf(pfn)).toBe(1);
    alloc.freePages(pfn, 0);
  });
});

describe('PageAllocator alloc and free', () => {
  it('restores nr_free and buddyinfo exactly after a round trip', () => {
    const { alloc, vmstat } = boot(small2Node);
    const before = { free: alloc.nrFreePages(), info: alloc.buddyinfo(), blocks: freeBlocks(alloc) };
    const got: Array<[number, number]> = [];
    const gfps = [GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_TRANSHUGE, GFP_ATOMIC];
    for (let i = 0; i < 200; i++) {
      const order = i % 7 === 0 ? 9 : i % 4;
      const pfn = alloc.allocPages(gfps[i % gfps.length], order, i % 3 === 0 ? 1 : -1);
      expect(pfn).toBeGreaterThanOrEqual(0);
      got.push([pfn, order]);
    }
    expect(alloc.nrFreePages()).toBeLessThan(before.free);
    expect(vmstat.read('pgalloc')).toBe(got.reduce((s, [, o]) => s + (1 << o), 0));
    for (const [pfn, order] of got.reverse()) alloc.freePages(pfn, order);
    expect(alloc.nrFreePages()).toBe(before.free);
    expect(alloc.buddyinfo()).toBe(before.info);
    expect(freeBlocks(alloc)).toEqual(before.blocks);
    expect(vmstat.read('pgfree')).toBe(vmstat.read('pgalloc'));
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
  });

  it('merges freed pages back into a max-order block', () => {
    const { alloc } = boot(small2Node);
    const info = alloc.buddyinfo();
    const pfn = alloc.allocPages(GFP_HIGHUSER_MOVABLE, 10);
    expect(pfn % 1024).toBe(0);
    expect(alloc.isFreeBuddy(pfn)).toBe(false);
    // Free the block page by page in a scrambled order, as split_page users do.
    for (let i = 0; i < 1024; i++) alloc.freePages(pfn + ((i * 389) % 1024), 0);
    expect(alloc.frames.flags[pfn] & PG_buddy).toBeTruthy();
    expect(alloc.frames.getOrder(pfn)).toBe(10);
    expect(alloc.buddyinfo()).toBe(info);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
  });

  it('steals whole pageblocks for an unmovable fallback', () => {
    // A pageblock-aligned reserve leaves no free UNMOVABLE pages at boot.
    const { alloc } = boot({ nodes: [{ size: 64 * MiB }], reservedFraction: 1 / 32 });
    const pfn = alloc.allocPages(GFP_KERNEL, 0);
    expect(alloc.migratetypeOf(pfn)).toBe(MIGRATE_UNMOVABLE);
    // The largest fallback block was order 10: both of its pageblocks changed hands.
    const block = pfn - (pfn % 1024);
    expect(alloc.migratetypeOf(block)).toBe(MIGRATE_UNMOVABLE);
    expect(alloc.migratetypeOf(block + PAGEBLOCK_NR_PAGES)).toBe(MIGRATE_UNMOVABLE);
    expect(alloc.migratetypeOf(block + 1024)).toBe(MIGRATE_MOVABLE);
    // Further unmovable allocations use the claimed blocks.
    const next = alloc.allocPages(GFP_KERNEL, 0);
    expect(next - (next % 1024)).toBe(block);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
    alloc.freePages(next, 0);
    alloc.freePages(pfn, 0);
    expect(alloc.frames.getOrder(block)).toBe(10);
  });

  it('never gives CMA or ZONE_MOVABLE pages to a long-term pin', () => {
    const { alloc } = boot({ nodes: [{ size: 64 * MiB, movable: 16 * MiB, cma: 24 * MiB }] });
    const pins: number[] = [];
    for (;;) {
      const pfn = alloc.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_PIN, 0);
      if (pfn < 0) break;
      pins.push(pfn);
    }
    expect(pins.length).toBeGreaterThan(1000);
    for (const pfn of pins) {
      expect(alloc.migratetypeOf(pfn)).not.toBe(MIGRATE_CMA);
      expect(alloc.isMovableZone(pfn)).toBe(false);
    }
    // CMA and ZONE_MOVABLE are still untouched and serve unpinned movable allocations.
    expect(alloc.nrFreeCmaPages()).toBe(24 * PAGES_PER_MIB);
    expect(alloc.zone(0, ZONE_MOVABLE).freePages).toBe(16 * PAGES_PER_MIB);
    expect(alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0)).toBeGreaterThanOrEqual(0);
  });

  it('takes movable allocations from CMA when CMA holds over half the free memory', () => {
    const mostlyCma = boot({ nodes: [{ size: 64 * MiB, cma: 40 * MiB }] }).alloc;
    const a = mostlyCma.allocPages(GFP_HIGHUSER_MOVABLE, 0);
    expect(mostlyCma.migratetypeOf(a)).toBe(MIGRATE_CMA);
    // Unmovable allocations never use CMA.
    expect(mostlyCma.migratetypeOf(mostlyCma.allocPages(GFP_KERNEL, 0))).not.toBe(MIGRATE_CMA);

    const littleCma = boot({ nodes: [{ size: 64 * MiB, cma: 8 * MiB }] }).alloc;
    expect(littleCma.migratetypeOf(littleCma.allocPages(GFP_HIGHUSER_MOVABLE, 0))).toBe(MIGRATE_MOVABLE);
  });

  it('fails below the watermark, leaving the reserve to atomic allocations', () => {
    const { alloc, vmstat } = boot({ nodes: [{ size: 32 * MiB }] });
    const zone = alloc.zone(0, ZONE_DMA32);
    let n = 0;
    while (alloc.allocPages(GFP_KERNEL, 0) >= 0) n++;
    expect(n).toBeGreaterThan(0);
    // The slow path stops at the min watermark (an allocation needs free > min beforehand).
    expect(zone.freePages).toBe(zone.watermarkMin);
    expect(vmstat.read('pgalloc_fail')).toBe(1);
    // GFP_NOWAIT gets nothing more, GFP_ATOMIC (__GFP_HIGH, cannot sleep) digs into the reserve.
    expect(alloc.allocPages(GFP_NOWAIT, 0)).toBe(-1);
    expect(alloc.allocPages(GFP_ATOMIC, 0)).toBeGreaterThanOrEqual(0);
  });

  it('calls the slow-path hooks and retries', () => {
    const { alloc } = boot({ nodes: [{ size: 32 * MiB }] });
    const held: number[] = [];
    for (let p = alloc.allocPages(GFP_KERNEL, 0); p >= 0; p = alloc.allocPages(GFP_KERNEL, 0)) held.push(p);
    const calls: string[] = [];
    alloc.setHooks({
      wakeKswapd: (nid, zone, order) => calls.push(`kswapd ${nid} ${zone} ${order}`),
      directCompact: () => {
        calls.push('compact');
        return false;
      },
      directReclaim: () => {
        calls.push('reclaim');
        for (let i = 0; i < 64; i++) alloc.freePages(held.pop()!, 0);
        return 64;
      },
    });
    expect(alloc.allocPages(GFP_KERNEL, 2)).toBeGreaterThanOrEqual(0);
    expect(calls).toEqual(['kswapd 0 0 2', 'compact', 'reclaim']);
  });

  it('keeps __GFP_THISNODE allocations on their node', () => {
    const { alloc } = boot(small2Node);
    let n = 0;
    for (;;) {
      const pfn = alloc.allocPages(GFP_KERNEL | __GFP_THISNODE, 0, 1);
      if (pfn < 0) break;
      expect(alloc.nodeOf(pfn)).toBe(1);
      n++;
    }
    expect(n).toBeGreaterThan(1000);
    // Without __GFP_THISNODE the allocation spills to node 0.
    const spill = alloc.allocPages(GFP_KERNEL, 0, 1);
    expect(alloc.nodeOf(spill)).toBe(0);
  });

  it('builds compound pages with head and tail links', () => {
    const { alloc } = boot(small2Node);
    const info = alloc.buddyinfo();
    const head = alloc.allocPages(GFP_TRANSHUGE, 9);
    const f = alloc.frames;
    expect(f.flags[head] & PG_head).toBeTruthy();
    expect(f.getOrder(head)).toBe(9);
    expect(f.folioNrPages(head)).toBe(512);
    expect(f.refcount[head]).toBe(1);
    for (const t of [head + 1, head + 100, head + 511]) {
      expect(f.flags[t] & PG_tail).toBeTruthy();
      expect(f.compoundHead(t)).toBe(head);
      expect(f.refcount[t]).toBe(0);
    }
    alloc.data.writable(head + 7)[0] = 42;
    alloc.freeFolio(head);
    expect(f.flags[head + 1]).toBe(0);
    expect(f.dataSlot[head + 7]).toBe(0);
    expect(alloc.buddyinfo()).toBe(info);
    // Without __GFP_COMP the block is plain pages.
    const plain = alloc.allocPages(GFP_KERNEL & ~__GFP_COMP, 3);
    expect(f.flags[plain + 1]).toBe(0);
  });

  it('throws on double free and on freeing reserved pages', () => {
    const { alloc } = boot(small2Node);
    const pfn = alloc.allocPages(GFP_KERNEL, 0);
    alloc.freePages(pfn, 0);
    expect(() => alloc.freePages(pfn, 0)).toThrow(/already free/);
    // A page inside a larger free block is free too.
    const big = alloc.allocPages(GFP_KERNEL, 3);
    alloc.freePages(big, 3);
    expect(() => alloc.freePages(big + 5, 0)).toThrow(/already free/);
    expect(() => alloc.freePages(alloc.zeroPfn, 0)).toThrow(/reserved/);
    expect(checkBuddyInvariants(alloc)).toEqual([]);
  });

  it('isolates and un-isolates pageblocks, moving their free pages', () => {
    const { alloc } = boot(small2Node);
    const free = alloc.nrFreePages();
    const info = alloc.buddyinfo();
    const pb = 8 * PAGES_PER_MIB; // a pageblock wholly free at boot, half of an order-10 block
    alloc.setPageblockMigratetype(pb, MIGRATE_ISOLATE);
    expect(alloc.nrFreePages()).toBe(free - PAGEBLOCK_NR_PAGES);
    expect(alloc.migratetypeOf(pb)).toBe(MIGRATE_ISOLATE);
    expect(checkBuddyInvariants(alloc)).toEqual([]);
    alloc.setPageblockMigratetype(pb, MIGRATE_MOVABLE);
    expect(alloc.nrFreePages()).toBe(free);
    expect(alloc.buddyinfo()).toBe(info);
    expect(checkBuddyInvariants(alloc)).toEqual([]);
  });

  it('takes single free pages and whole free ranges off the buddy', () => {
    const { alloc } = boot(small2Node);
    const free = alloc.nrFreePages();
    const info = alloc.buddyinfo();
    const target = 8 * PAGES_PER_MIB + 333;
    expect(alloc.takeFreePage(target)).toBe(true);
    expect(alloc.isFreeBuddy(target)).toBe(false);
    expect(alloc.isFreeBuddy(target + 1)).toBe(true);
    expect(alloc.nrFreePages()).toBe(free - 1);
    expect(alloc.takeFreePage(target)).toBe(false);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
    alloc.freePages(target, 0);
    expect(alloc.buddyinfo()).toBe(info);

    expect(alloc.takeFreeRange(target, 3000)).toBe(true);
    expect(alloc.nrFreePages()).toBe(free - 3000);
    expect(alloc.firstBusyPfn(target - 10, target + 10)).toBe(target);
    expect(alloc.takeFreeRange(target + 2999, 2)).toBe(false);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
    alloc.freeRange(target, 3000);
    expect(alloc.buddyinfo()).toBe(info);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
  });

  it('reports /proc/buddyinfo and zoneinfo', () => {
    const { alloc } = boot({ nodes: [{ size: 64 * MiB }] });
    const lines = alloc.buddyinfo().split('\n');
    expect(lines[0]).toMatch(/^Node 0, zone {4}DMA32 +(\d+ +){11}$/);
    const [zi] = alloc.zoneInfo();
    expect(zi.freeByOrder.reduce((s, n, o) => s + n * 2 ** o, 0)).toBe(zi.freePages);
    expect(zi.managedPages).toBe(64 * PAGES_PER_MIB - PAGES_PER_MIB);
  });
});
