import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import { MADV_HUGEPAGE, MADV_NOHUGEPAGE, PAGE_SIZE, PMD_SIZE, PROT_READ } from '../uapi/mman';
import type { KernelOptions } from '../plugin/kernel-options';
import { GFP_HIGHUSER_MOVABLE, __GFP_COMP, __GFP_THISNODE } from './gfp';
import { isolateLruFolio, migratePages } from './migrate';
import { MIGRATE_SYNC, MR_NUMA_MISPLACED } from './migrate-types';
import { splitFolio } from './huge-memory';
import { FOLL_WRITE, pinUserPages, unpinUserPages } from '../gup';

const MiB = 2 ** 20;
function boot(opts: KernelOptions = {}) {
  return createKernel({ memory: { nodes: [{ size: '256MiB' }, { size: '256MiB' }] }, ...opts });
}
/** Byte-exact comparison without jest's element-by-element diffing (slow on MiBs). */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

describe('transparent huge pages', () => {
  it('maps a write fault in a 2 MiB-aligned anonymous region with one huge page', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * MiB);
    expect(a % PMD_SIZE).toBe(0);
    p.write(a + 5, new Uint8Array([1]));
    expect(p.pagemap(a).huge).toBe('2MiB');
    expect(p.pagemap(a + 100 * PAGE_SIZE).pfn).toBe(p.pagemap(a).pfn! + 100);
    expect(k.vmstat().thp_fault_alloc).toBe(1);
    expect(p.status().vmRss).toBe(2 * MiB);
    const data = pattern(2 * MiB, 1);
    p.write(a, data);
    expect(same(p.read(a, 2 * MiB), data)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('follows the mode: never, madvise with and without MADV_HUGEPAGE, MADV_NOHUGEPAGE', () => {
    const never = boot({ sysctl: { transparent_hugepage: 'never' } }).spawn();
    const a = never.mmap(2 * MiB);
    never.write(a, new Uint8Array([1]));
    expect(never.pagemap(a).huge).toBeUndefined();
    const k = boot({ sysctl: { transparent_hugepage: 'madvise' } });
    const p = k.spawn();
    const b = p.mmap(4 * MiB);
    p.write(b, new Uint8Array([1]));
    expect(p.pagemap(b).huge).toBeUndefined();
    p.madvise(b + 2 * MiB, 2 * MiB, MADV_HUGEPAGE);
    p.write(b + 2 * MiB, new Uint8Array([1]));
    expect(p.pagemap(b + 2 * MiB).huge).toBe('2MiB');
    const c = boot().spawn();
    const d = c.mmap(2 * MiB);
    c.madvise(d, 2 * MiB, MADV_NOHUGEPAGE);
    c.write(d, new Uint8Array([1]));
    expect(c.pagemap(d).huge).toBeUndefined();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('splits the PMD for a partial munmap or mprotect and keeps the rest exact', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * MiB);
    const data = pattern(2 * MiB, 2);
    p.write(a, data);
    p.munmap(a + MiB, PAGE_SIZE);
    expect(p.pagemap(a).huge).toBeUndefined();
    expect(same(p.read(a, MiB), data.subarray(0, MiB))).toBe(true);
    expect(() => p.read(a + MiB, 1)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    p.mprotect(a, 64 * PAGE_SIZE, PROT_READ);
    expect(() => p.write(a, new Uint8Array([0]))).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    expect(same(p.read(a + MiB + PAGE_SIZE, 4096), data.subarray(MiB + PAGE_SIZE, MiB + 2 * PAGE_SIZE))).toBe(
      true,
    );
    expect(p.status().vmRss).toBe(2 * MiB - PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('shares a THP with a fork child and COW-breaks one 4 KiB page on write', () => {
    const k = boot();
    const free0 = k.vmstat().nr_free_pages;
    const p = k.spawn();
    const a = p.mmap(2 * MiB);
    const data = pattern(2 * MiB, 3);
    p.write(a, data);
    const c = p.fork();
    expect(c.pagemap(a).pfn).toBe(p.pagemap(a).pfn);
    expect(c.pagemap(a).huge).toBe('2MiB');
    c.write(a + 3 * PAGE_SIZE, new Uint8Array([7]));
    expect(same(p.read(a, 2 * MiB), data)).toBe(true);
    const cd = c.read(a, 2 * MiB);
    expect(cd[3 * PAGE_SIZE]).toBe(7);
    expect(same(cd.subarray(4 * PAGE_SIZE), data.subarray(4 * PAGE_SIZE))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    p.write(a, new Uint8Array([9])); // the parent's own copy of page 0, or reuse when exclusive
    expect(c.read(a, 1)[0]).toBe(data[0]);
    expect(k.checkInvariants()).toEqual([]);
    c.exit();
    p.exit();
    expect(k.vmstat().nr_free_pages).toBe(free0);
  });

  it('copies a pinned THP for the child at fork (early COW)', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * MiB);
    p.write(a, pattern(2 * MiB, 4));
    const head = p.pagemap(a).pfn!;
    // A device pins the first page of the THP (FOLL_PIN on a large folio: one pincount).
    const pages = [-1];
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    expect(pages[0]).toBe(head);
    const c = p.fork();
    expect(c.pagemap(a).pfn).not.toBe(head);
    expect(p.pagemap(a + 8 * PAGE_SIZE).pfn).toBe(head + 8);
    expect(same(c.read(a, 2 * MiB), p.read(a, 2 * MiB))).toBe(true);
    p.write(a, new Uint8Array([1])); // the parent keeps writing to the pinned page
    expect(p.pagemap(a).pfn).toBe(head);
    expect(k.checkInvariants()).toEqual([]);
    unpinUserPages(k.mmCore, pages, 1);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('migrates a whole THP, and splitFolio refuses a pinned one', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * MiB);
    const data = pattern(2 * MiB, 5);
    p.write(a, data);
    const head = p.pagemap(a).pfn!;
    expect(isolateLruFolio(k.mmCore, head)).toBe(true);
    const dst = (_s: number, order: number) =>
      k.phys.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_THISNODE, order, 1);
    expect(migratePages(k.mmCore, [head], dst, MIGRATE_SYNC, MR_NUMA_MISPLACED)).toBe(0);
    expect(p.pagemap(a).node).toBe(1);
    expect(p.pagemap(a).huge).toBe('2MiB');
    expect(same(p.read(a, 2 * MiB), data)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    const h2 = p.pagemap(a).pfn!;
    k.phys.frames.refcount[h2] += 1;
    expect(splitFolio(k.mmCore, h2)).toBe(-16);
    k.phys.frames.refcount[h2] -= 1;
    expect(splitFolio(k.mmCore, h2)).toBe(0);
    expect(p.pagemap(a).huge).toBeUndefined();
    expect(same(p.read(a, 2 * MiB), data)).toBe(true);
    expect(k.vmstat().thp_split_page).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('counts a locked THP as 512 locked pages', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * MiB);
    p.mlock(a, 2 * MiB);
    expect(p.pagemap(a).huge).toBe('2MiB');
    expect(p.pagemap(a).mlocked).toBe(true);
    expect(k.vmstat().nr_mlock).toBe(512);
    p.munlock(a, MiB);
    expect(k.checkInvariants()).toEqual([]);
  });
});
