import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_SHARED, PAGE_SIZE } from '../uapi/mman';
import { GFP_HIGHUSER_MOVABLE, __GFP_THISNODE } from './gfp';
import {
  completeDueMigrations,
  emptyMigrateStats,
  isolateLruFolio,
  migratePages,
  pendingMigrations,
  putbackMovableFolio,
} from './migrate';
import { MIGRATE_SYNC, MR_NUMA_MISPLACED, NR_MAX_MIGRATE_PAGES_RETRY } from './migrate-types';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';
import type { Kernel } from '../plugin/kernel';

function twoNodes(extra = {}) {
  return createKernel({ memory: { nodes: [{ size: '128MiB' }, { size: '128MiB' }], ...extra } });
}

/** Destination on node 1. */
const toNode1 = (k: Kernel) => (_src: number, order: number) =>
  k.phys.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_THISNODE, order, 1);

describe('migratePages', () => {
  it('moves anonymous pages to another node with their data, in every process mapping them', () => {
    const k = twoNodes();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    const bytes = new Uint8Array(4 * PAGE_SIZE).map((_, i) => (i * 7) & 255);
    p.write(a, bytes);
    const c = p.fork(); // the pages are now COW-shared by two mms
    const folios = [0, 1, 2, 3].map((i) => p.pagemap(a + i * PAGE_SIZE).pfn!);
    for (const f of folios) expect(isolateLruFolio(k.mmCore, f)).toBe(true);
    const stats = emptyMigrateStats();
    expect(migratePages(k.mmCore, folios, toNode1(k), MIGRATE_SYNC, MR_NUMA_MISPLACED, stats)).toBe(0);
    expect(stats.succeeded).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(p.pagemap(a + i * PAGE_SIZE).node).toBe(1);
      expect(c.pagemap(a + i * PAGE_SIZE).pfn).toBe(p.pagemap(a + i * PAGE_SIZE).pfn);
    }
    expect(p.read(a, bytes.length)).toEqual(bytes);
    expect(c.read(a, bytes.length)).toEqual(bytes);
    expect(k.vmstat().pgmigrate_success).toBe(4);
    expect(k.checkInvariants()).toEqual([]);
    c.write(a, new Uint8Array([1])); // COW still works on the moved page
    expect(p.read(a, 1)[0]).toBe(bytes[0]);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('fails a page with an extra reference after the retries, leaving it mapped and isolated for putback', () => {
    const k = twoNodes();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([42]));
    const pfn = p.pagemap(a).pfn!;
    k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS; // as a FOLL_PIN would
    expect(isolateLruFolio(k.mmCore, pfn)).toBe(true);
    const calls: number[] = [];
    const stats = emptyMigrateStats();
    const alloc = (s: number, o: number) => (calls.push(s), toNode1(k)(s, o));
    expect(migratePages(k.mmCore, [pfn], alloc, MIGRATE_SYNC, MR_NUMA_MISPLACED, stats)).toBe(1);
    expect(stats.failedFolios).toEqual([pfn]);
    expect(calls).toEqual([]); // never got as far as allocating
    expect(k.vmstat().pgmigrate_fail).toBe(1);
    putbackMovableFolio(k.mmCore, pfn);
    k.phys.frames.refcount[pfn] -= GUP_PIN_COUNTING_BIAS;
    expect(p.pagemap(a).pfn).toBe(pfn);
    expect(p.read(a, 1)[0]).toBe(42);
    expect(k.checkInvariants()).toEqual([]);
    expect(NR_MAX_MIGRATE_PAGES_RETRY).toBe(10);
  });

  it('moves shared memory and hugetlb pages', () => {
    const k = twoNodes({ hugepages: { '2MiB': 4 } });
    const p = k.spawn();
    const s = p.mmap(PAGE_SIZE, { flags: MAP_SHARED | MAP_ANONYMOUS });
    p.write(s, new Uint8Array([5]));
    const c = p.fork();
    expect(c.read(s, 1)[0]).toBe(5);
    const h = p.mmap(2 * 2 ** 20, { flags: MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB });
    p.write(h + 12345, new Uint8Array([9]));
    const spfn = p.pagemap(s).pfn!;
    const hpfn = p.pagemap(h).pfn!;
    expect(isolateLruFolio(k.mmCore, spfn)).toBe(true);
    expect(isolateLruFolio(k.mmCore, hpfn)).toBe(true);
    const dst = (src: number, order: number) =>
      order === 0 ? toNode1(k)(src, 0) : k.hugetlb.allocHugetlbFolio('2MiB', -1);
    expect(migratePages(k.mmCore, [spfn, hpfn], dst, MIGRATE_SYNC, MR_NUMA_MISPLACED)).toBe(0);
    expect(p.pagemap(s).pfn).not.toBe(spfn);
    expect(c.pagemap(s).pfn ?? p.pagemap(s).pfn).toBe(p.pagemap(s).pfn);
    c.write(s, new Uint8Array([6]));
    expect(p.read(s, 1)[0]).toBe(6);
    expect(p.pagemap(h).pfn).not.toBe(hpfn);
    expect(p.read(h + 12345, 1)[0]).toBe(9);
    expect(k.checkInvariants()).toEqual([]);
    c.exit();
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('keeps migration entries through the copy window; a CPU access waits for it', () => {
    const k = twoNodes();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array([1]));
    p.write(a + PAGE_SIZE, new Uint8Array([2]));
    const f0 = p.pagemap(a).pfn!;
    const f1 = p.pagemap(a + PAGE_SIZE).pfn!;
    isolateLruFolio(k.mmCore, f0);
    isolateLruFolio(k.mmCore, f1);
    const done = k.now() + 50_000;
    expect(
      migratePages(k.mmCore, [f0, f1], toNode1(k), MIGRATE_SYNC, MR_NUMA_MISPLACED, undefined, {
        completeAt: done,
      }),
    ).toBe(0);
    expect(pendingMigrations(k.mmCore)).toBe(2);
    expect(p.pagemap(a).present).toBe(false);
    expect(k.checkInvariants()).toEqual([]);
    const before = p.cpuNs;
    expect(p.read(a, 1)[0]).toBe(1); // waits for the copy
    expect(p.cpuNs - before).toBeGreaterThanOrEqual(50_000);
    expect(p.pagemap(a).node).toBe(1);
    expect(pendingMigrations(k.mmCore)).toBe(1);
    p.munmap(a + PAGE_SIZE, PAGE_SIZE); // unmapped during its window
    expect(completeDueMigrations(k.mmCore, done)).toBe(1);
    expect(pendingMigrations(k.mmCore)).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });
});
