import { describe, expect, it } from '@jest/globals';
import { Vmstat } from '../sim/vmstat';
import { checkBuddyInvariants } from './buddy-check';
import { cmaAllocFree, cmaAreaOf, cmaRelease } from './cma';
import { GFP_HIGHUSER_MOVABLE } from './gfp';
import { PageAllocator } from './page-alloc';

const MiB = 2 ** 20;

function boot(cmaMiB = 16): { alloc: PageAllocator; vmstat: Vmstat } {
  const vmstat = new Vmstat();
  const alloc = new PageAllocator(
    { nodes: [{ size: 64 * MiB, cma: cmaMiB * MiB }, { size: 64 * MiB }] },
    vmstat,
  );
  alloc.debugVm = true;
  return { alloc, vmstat };
}

describe('CMA', () => {
  it('allocates free contiguous ranges and releases them', () => {
    const { alloc, vmstat } = boot();
    const area = alloc.cmaAreas[0];
    const info = alloc.buddyinfo();
    const a = cmaAllocFree(alloc, area, 1000, 4);
    expect(a).toBe(area.basePfn);
    expect(alloc.frames.refcount[a + 999]).toBe(1);
    expect(alloc.isFreeBuddy(a + 999)).toBe(false);
    expect(alloc.nrFreeCmaPages()).toBe(area.count - 1000);
    // The next range starts at the next aligned pfn past the first.
    const b = cmaAllocFree(alloc, area, 512, 9);
    expect(b).toBe(area.basePfn + 1024);
    expect(cmaAreaOf(alloc, b)).toBe(area);
    expect(cmaAreaOf(alloc, 0)).toBeUndefined();
    expect(cmaAllocFree(alloc, area, area.count, 0)).toBe(-1);
    expect(vmstat.read('cma_alloc_success')).toBe(2);
    expect(vmstat.read('cma_alloc_fail')).toBe(1);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);

    expect(cmaRelease(alloc, area, a, 1000)).toBe(true);
    expect(cmaRelease(alloc, area, b, 512)).toBe(true);
    expect(alloc.buddyinfo()).toBe(info);
    expect(area.allocatedPages).toBe(0);
    expect(cmaRelease(alloc, area, 0, 1)).toBe(false);
    expect(() => cmaRelease(alloc, area, a, 1)).toThrow(/not allocated/);
  });

  it('skips ranges holding busy pages (no migration yet)', () => {
    const { alloc } = boot(40);
    const area = alloc.cmaAreas[0];
    // CMA is over half of node 0's free memory, so movable allocations land there first.
    const busy = alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0, 0);
    expect(busy).toBeGreaterThanOrEqual(area.basePfn);
    expect(busy).toBeLessThan(area.endPfn);
    const got = cmaAllocFree(alloc, area, 256, 8);
    expect(got).toBeGreaterThan(busy);
    expect(got % 256).toBe(0);
    // A request as large as the area cannot avoid the busy page.
    expect(cmaAllocFree(alloc, area, area.count, 0)).toBe(-1);
    expect(checkBuddyInvariants(alloc, true)).toEqual([]);
  });
});
