import { describe, expect, it } from '@jest/globals';
import { Vmstat } from '../sim/vmstat';
import { checkBuddyInvariants } from './buddy-check';
import { MIGRATE_CMA, ZONE_MOVABLE } from './gfp';
import { PageAllocator } from './page-alloc';
import { PG_anon, PG_head, PG_hugetlb, PG_tail } from './page-flags';
import type { PhysMemConfig } from './phys-types';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function boot(config: PhysMemConfig): { alloc: PageAllocator; vmstat: Vmstat } {
  const vmstat = new Vmstat();
  const alloc = new PageAllocator(config, vmstat);
  alloc.debugVm = true;
  return { alloc, vmstat };
}

describe('HugetlbPools', () => {
  it('preallocates both sizes at boot, 1 GiB pages from memblock, nodes in turn', () => {
    const { alloc, vmstat } = boot({
      nodes: [
        { size: 4 * GiB, movable: 512 * MiB, cma: 256 * MiB },
        { size: 4 * GiB, movable: 512 * MiB },
      ],
      hugepages: { '1GiB': 3, '2MiB': 10 },
    });
    const h = alloc.hugetlb;
    expect(h.stats('1GiB')).toEqual({ nr: 3, free: 3, resv: 0, surplus: 0 });
    expect(h.stats('1GiB', 0)).toEqual({ nr: 2, free: 2, resv: 0, surplus: 0 });
    expect(h.stats('1GiB', 1)).toEqual({ nr: 1, free: 1, resv: 0, surplus: 0 });
    expect(h.stats('2MiB')).toEqual({ nr: 10, free: 10, resv: 0, surplus: 0 });
    expect(h.stats('2MiB', 0).nr).toBe(5);
    expect(vmstat.read('htlb_buddy_alloc_success')).toBe(10);

    const g = h.allocHugetlbFolio('1GiB', 1);
    const f = alloc.frames;
    expect(alloc.nodeOf(g)).toBe(1);
    expect(g % 2 ** 18).toBe(0);
    expect(f.flags[g] & (PG_hugetlb | PG_head)).toBe(PG_hugetlb | PG_head);
    expect(f.getOrder(g)).toBe(18);
    expect(f.refcount[g]).toBe(1);
    expect(f.compoundHead(g + 2 ** 18 - 1)).toBe(g);
    // Top-down below CMA and ZONE_MOVABLE, never in them.
    expect(alloc.isMovableZone(g)).toBe(false);
    expect(alloc.migratetypeOf(g + 2 ** 18 - 1)).not.toBe(MIGRATE_CMA);
    // 1 GiB pages never went through the buddy; they count as managed once hugetlb took them.
    const z = alloc.zoneOf(g);
    expect(z.managedPages).toBeGreaterThan(z.freePages + 2 ** 18 - 1);

    const s = h.allocHugetlbFolio('2MiB');
    expect(f.getOrder(s)).toBe(9);
    expect(f.flags[s + 1] & PG_tail).toBeTruthy();
    expect(alloc.isMovableZone(s)).toBe(false);
    expect(alloc.migratetypeOf(s)).not.toBe(MIGRATE_CMA);
    expect(h.stats('2MiB').free).toBe(9);

    alloc.data.writable(s + 3)[10] = 7;
    f.flags[s] |= PG_anon; // as the VM layer leaves it: freeing resets the folio
    f.refcount[s] = 0;
    h.freeHugetlbFolio(s);
    expect(alloc.data.view(s + 3)).toBeUndefined();
    expect(h.stats('2MiB').free).toBe(10);
    f.refcount[g] = 0;
    h.freeHugetlbFolio(g);
    expect(h.stats('1GiB').free).toBe(3);
    expect(alloc.bootMessages).toContain('HugeTLB: registered 1.00 GiB page size, pre-allocated 3 pages');
    expect(alloc.bootMessages).toContain('HugeTLB: registered 2.00 MiB page size, pre-allocated 10 pages');
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
  });

  it('allocates what fits and reports the shortfall', () => {
    const { alloc } = boot({ nodes: [{ size: 2 * GiB }], hugepages: { '1GiB': 4, '2MiB': 100000 } });
    const h = alloc.hugetlb;
    // 2 GiB minus the reserved bottom leaves room for one 1 GiB page.
    expect(h.stats('1GiB').nr).toBe(1);
    expect(h.bootMessages).toContain(
      'HugeTLB: allocating 4 of page size 1.00 GiB failed.  Only allocated 1 hugepages.',
    );
    const n2m = h.stats('2MiB').nr;
    expect(n2m).toBeGreaterThan(400);
    expect(n2m).toBeLessThan(512);
    expect(h.bootMessages).toContain(
      `HugeTLB: allocating 100000 of page size 2.00 MiB failed.  Only allocated ${n2m} hugepages.`,
    );
    // The buddy kept its watermark reserve.
    const z = alloc.zone(0, 0);
    expect(z.freePages).toBeGreaterThanOrEqual(z.watermarkMin);
  });

  it('reserves and unreserves against free pages', () => {
    const { alloc } = boot({ nodes: [{ size: 256 * MiB }], hugepages: { '2MiB': 4 } });
    const h = alloc.hugetlb;
    expect(h.reserve('2MiB', 3)).toBe(true);
    expect(h.stats('2MiB').resv).toBe(3);
    expect(h.reserve('2MiB', 2)).toBe(false);
    // One page is unreserved: an allocation without a reservation gets it, a second does not.
    const a = h.allocHugetlbFolio('2MiB');
    expect(a).toBeGreaterThanOrEqual(0);
    expect(h.allocHugetlbFolio('2MiB')).toBe(-1);
    // A fault in the reserving mapping consumes a reservation.
    const b = h.allocHugetlbFolio('2MiB', -1, true);
    expect(b).toBeGreaterThanOrEqual(0);
    expect(h.stats('2MiB')).toEqual({ nr: 4, free: 2, resv: 2, surplus: 0 });
    h.unreserve('2MiB', 2);
    expect(h.stats('2MiB').resv).toBe(0);
    expect(() => h.unreserve('2MiB', 1)).toThrow(/exceeds/);
    expect(() => h.allocHugetlbFolio('2MiB', -1, true)).toThrow(/no reservation/);
  });

  it('grows and shrinks the 2 MiB pool at run time', () => {
    const { alloc, vmstat } = boot({ nodes: [{ size: 128 * MiB }, { size: 128 * MiB }] });
    const h = alloc.hugetlb;
    const free0 = alloc.nrFreePages();
    const info0 = alloc.buddyinfo();
    expect(h.setNrHugepages('2MiB', 8)).toBe(8);
    expect(h.stats('2MiB', 0).nr).toBe(4);
    expect(h.stats('2MiB', 1).nr).toBe(4);
    expect(alloc.nrFreePages()).toBe(free0 - 8 * 512);
    // Growing past what memory holds stops where the buddy refuses, without failing.
    const most = h.setNrHugepages('2MiB', 10000);
    expect(most).toBeGreaterThan(8);
    expect(most).toBeLessThan(128);
    expect(vmstat.read('htlb_buddy_alloc_fail')).toBeGreaterThan(0);

    // Shrinking never frees pages in use: the excess becomes surplus, freed when released.
    h.setNrHugepages('2MiB', 3);
    const used = [h.allocHugetlbFolio('2MiB'), h.allocHugetlbFolio('2MiB'), h.allocHugetlbFolio('2MiB')];
    expect(h.setNrHugepages('2MiB', 1)).toBe(1);
    expect(h.stats('2MiB')).toEqual({ nr: 3, free: 0, resv: 0, surplus: 2 });
    for (const p of used) {
      alloc.frames.refcount[p] = 0;
      h.freeHugetlbFolio(p);
    }
    expect(h.stats('2MiB')).toEqual({ nr: 1, free: 1, resv: 0, surplus: 0 });
    expect(h.setNrHugepages('2MiB', 0)).toBe(0);
    expect(alloc.nrFreePages()).toBe(free0);
    expect(alloc.buddyinfo()).toBe(info0);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
  });

  it('shrinks the 1 GiB pool into the buddy; it cannot grow it yet', () => {
    const { alloc } = boot({ nodes: [{ size: 4 * GiB, movable: 1 * GiB }], hugepages: { '1GiB': 2 } });
    const h = alloc.hugetlb;
    const free0 = alloc.nrFreePages();
    const maxOrder0 = alloc.zoneInfo()[0].freeByOrder[10];
    expect(h.setNrHugepages('1GiB', 1)).toBe(1);
    expect(alloc.nrFreePages()).toBe(free0 + 2 ** 18);
    expect(alloc.zoneInfo()[0].freeByOrder[10]).toBe(maxOrder0 + 256);
    expect(h.setNrHugepages('1GiB', 5)).toBe(1);
    expect(alloc.zone(0, ZONE_MOVABLE).freePages).toBe(2 ** 18);
    expect(checkBuddyInvariants(alloc)).toEqual([]);
  });
});
