import { describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import { ERRNO } from '../uapi/errno';
import { MAP_ANONYMOUS, MAP_SHARED, PAGE_SIZE } from '../uapi/mman';
import { cmaRelease } from './cma';
import { allocContigRange, cmaAlloc, cmaAllocBytes, contigCounters, freeContigRange } from './contig-alloc';
import { GFP_KERNEL, MIGRATE_CMA, MIGRATE_MOVABLE } from './gfp';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';

const MiB = 2 ** 20;

/**
 * 256 MiB with a 160 MiB CMA area: CMA holds over half the free memory, so the buddy lends it to
 * movable allocations first (the kernel's CMA balancing) and process pages land in it.
 */
function machine(): Kernel {
  return createKernel({
    memory: { nodes: [{ size: '256MiB', cma: '160MiB' }] },
    sysctl: { transparent_hugepage: 'never' },
  });
}

/** A process with @pages pages written with a pattern; returns a checker of its data. */
function populate(k: Kernel, pages: number, flags?: number) {
  const p = k.spawn();
  const a = p.mmap(pages * PAGE_SIZE, flags === undefined ? {} : { flags });
  for (let i = 0; i < pages; i++) p.write(a + i * PAGE_SIZE, new Uint8Array([i & 255, (i >> 8) & 255, 0x77]));
  return {
    p,
    a,
    pfn: (i: number) => p.pagemap(a + i * PAGE_SIZE).pfn!,
    check() {
      for (let i = 0; i < pages; i++) {
        const b = p.read(a + i * PAGE_SIZE, 3);
        if (b[0] !== (i & 255) || b[1] !== ((i >> 8) & 255) || b[2] !== 0x77)
          throw new Error(`page ${i} corrupted`);
      }
    },
  };
}

function pinned(k: Kernel, pfn: number) {
  k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS;
  let held = true;
  k.addRefSource((refs) => {
    if (held) refs.set(pfn, (refs.get(pfn) ?? 0) + GUP_PIN_COUNTING_BIAS);
  });
  return () => {
    k.phys.frames.refcount[pfn] -= GUP_PIN_COUNTING_BIAS;
    held = false;
  };
}

describe('alloc_contig_range and CMA', () => {
  it('cma_alloc migrates the movable pages the buddy lent out of the area', () => {
    const k = machine();
    const area = k.phys.cmaAreas[0];
    const proc = populate(k, 4096);
    const inCma = [...Array(4096).keys()].filter(
      (i) => proc.pfn(i) >= area.basePfn && proc.pfn(i) < area.endPfn,
    );
    expect(inCma.length).toBe(4096);
    expect(proc.p.pagemap(proc.a).migratetype).toBe('CMA');
    expect(k.cmaAlloc('160MiB')).toBe(true);
    for (let i = 0; i < 4096; i += 97)
      expect(proc.p.pagemap(proc.a + i * PAGE_SIZE).migratetype).not.toBe('CMA');
    proc.check();
    const vm = k.vmstat();
    expect(vm.cma_alloc_success).toBe(1);
    expect(vm.cma_alloc_fail).toBe(0);
    expect(contigCounters(k.mmCore).migrated).toBe(4096);
    expect(area.allocatedPages).toBe(area.count);
    expect(k.checkInvariants()).toEqual([]);
    // Full: the next request fails without touching anything.
    expect(k.cmaAlloc('1MiB')).toBe(false);
    expect(k.vmstat().cma_alloc_fail).toBe(1);
    expect(k.cmaRelease()).toBe(1);
    expect(k.cmaRelease()).toBe(0);
    expect(area.allocatedPages).toBe(0);
    expect(k.phys.nrFreeCmaPages()).toBe(area.count);
    expect(k.checkInvariants()).toEqual([]);
    proc.p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a pinned page in the area makes cma_alloc fail with -EBUSY; ranges avoiding it still work', () => {
    const k = machine();
    const area = k.phys.cmaAreas[0];
    const proc = populate(k, 4096);
    const victim = proc.pfn(3000);
    const unpin = pinned(k, victim);
    const r = cmaAllocBytes(k.mmCore, 160 * MiB);
    expect(r.ok).toBe(false);
    expect(r.errno).toBe(-ERRNO.EBUSY);
    expect(r.latencyNs).toBeGreaterThan(4000 * 1000); // it migrated the rest out before failing
    expect(k.vmstat().cma_alloc_fail).toBe(1);
    expect(
      k.dmesg().some((l) => l.includes('cma_alloc: alloc failed, req-size: 40960 pages, ret: -16')),
    ).toBe(true);
    const c = contigCounters(k.mmCore);
    expect(c.busy).toBe(1);
    expect(c.skippedPinned).toBeGreaterThanOrEqual(1);
    expect(proc.pfn(3000)).toBe(victim);
    expect(area.allocatedPages).toBe(0);
    proc.check();
    expect(k.checkInvariants()).toEqual([]);
    // 16 MiB candidates, 1 MiB aligned, are tried from the bottom of the area: every one holding
    // the pinned page fails (each after migrating its other pages out), the first past it succeeds.
    const busyBefore = contigCounters(k.mmCore).busy;
    let holding = 0;
    for (let s = area.basePfn; s <= victim; s += 256) if (s + 4096 > victim) holding++;
    expect(holding).toBeGreaterThan(1);
    const r2 = cmaAllocBytes(k.mmCore, 16 * MiB);
    expect(r2.ok).toBe(true);
    expect(r2.pfn).toBe(area.basePfn + holding * 256);
    expect(k.vmstat().cma_alloc_success).toBe(1);
    expect(contigCounters(k.mmCore).busy - busyBefore).toBe(holding);
    cmaRelease(k.phys, r2.area!, r2.pfn!, r2.nrPages);
    expect(k.checkInvariants()).toEqual([]);
    unpin();
    expect(k.cmaAlloc('64MiB')).toBe(true);
    expect(k.cmaAlloc('64MiB')).toBe(true);
    expect(k.cmaRelease(0)).toBe(1);
    expect(k.cmaRelease()).toBe(1);
    proc.check();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a pinned shared-memory page fails migration; the range gives up after 5 passes without progress', () => {
    const k = machine();
    const area = k.phys.cmaAreas[0];
    const shm = populate(k, 64, MAP_SHARED | MAP_ANONYMOUS);
    const victim = shm.pfn(10);
    expect(victim).toBeGreaterThanOrEqual(area.basePfn);
    const unpin = pinned(k, victim);
    const start = victim - (victim % 512);
    const fail0 = k.vmstat().pgmigrate_fail;
    expect(allocContigRange(k.mmCore, start, start + 512, MIGRATE_CMA)).toBe(-ERRNO.EBUSY);
    // Isolated (shmem has a mapping), then failed once in the first batch and 4 more passes.
    expect(k.vmstat().pgmigrate_fail - fail0).toBe(5);
    expect(shm.pfn(10)).toBe(victim);
    shm.check();
    expect(k.checkInvariants()).toEqual([]);
    unpin();
    expect(allocContigRange(k.mmCore, start, start + 512, MIGRATE_CMA)).toBe(0);
    expect(shm.pfn(10)).not.toBe(victim);
    shm.check();
    expect(freeContigRange(k.mmCore, start, 512)).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('fails at once on an unmovable page, and for ranges across zones', () => {
    const k = createKernel({ memory: { nodes: [{ size: '256MiB', movable: '128MiB' }] } });
    const kernelPage = k.phys.allocPages(GFP_KERNEL, 0, 0);
    const start = kernelPage - (kernelPage % 512);
    const fail0 = k.vmstat().pgmigrate_fail;
    expect(allocContigRange(k.mmCore, start, start + 512, MIGRATE_MOVABLE)).toBe(-ERRNO.EBUSY);
    expect(k.vmstat().pgmigrate_fail).toBe(fail0);
    const movStart = k.phys.zone(0, 2).startPfn;
    expect(allocContigRange(k.mmCore, movStart - 512, movStart + 512, MIGRATE_MOVABLE)).toBe(-ERRNO.EINVAL);
    expect(allocContigRange(k.mmCore, movStart, movStart + 1024, MIGRATE_MOVABLE)).toBe(0);
    expect(k.phys.frames.refcount[movStart + 1023]).toBe(1);
    expect(freeContigRange(k.mmCore, movStart, 1024)).toBe(0);
    k.phys.freePages(kernelPage, 0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('cmaAlloc follows cma_alloc: aligned candidates, bitmap, errno on failure', () => {
    const k = machine();
    const area = k.phys.cmaAreas[0];
    const a = cmaAlloc(k.mmCore, area, 100, 4);
    expect(a).toBe(area.basePfn);
    const b = cmaAlloc(k.mmCore, area, 100, 4);
    expect(b).toBe(area.basePfn + 112);
    expect(cmaAlloc(k.mmCore, area, area.count, 0, true)).toBe(-ERRNO.ENOMEM);
    expect(cmaAlloc(k.mmCore, area, 0)).toBe(-ERRNO.EINVAL);
    expect(cmaRelease(k.phys, area, a, 100)).toBe(true);
    expect(cmaRelease(k.phys, area, b, 100)).toBe(true);
    expect(k.vmstat().cma_alloc_success).toBe(2);
    // A zero-sized request is refused before anything is counted, as cma_alloc does.
    expect(k.vmstat().cma_alloc_fail).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });
});
