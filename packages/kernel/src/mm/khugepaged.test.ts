import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import { MADV_HUGEPAGE, PAGE_SIZE } from '../uapi/mman';
import {
  collapseHugePage,
  initKhugepaged,
  khugepagedStats,
  SCAN_EXCEED_NONE_PTE,
  SCAN_PAGE_COUNT,
  SCAN_SUCCEED,
} from './khugepaged';
import { thpConfig } from './huge-memory';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';

const MiB = 2 ** 20;
/** THP at fault time off ('madvise' without the advice), so ranges start as 4 KiB pages. */
function setup() {
  const k = createKernel({
    memory: { nodes: [{ size: '256MiB' }] },
    sysctl: { transparent_hugepage: 'madvise' },
  });
  const p = k.spawn();
  const a = p.mmap(2 * MiB);
  const data = new Uint8Array(2 * MiB).map((_, i) => (i * 31 + 7) & 255);
  p.write(a, data);
  expect(p.pagemap(a).huge).toBeUndefined();
  p.madvise(a, 2 * MiB, MADV_HUGEPAGE);
  return { k, p, a, data };
}

describe('khugepaged', () => {
  it('collapses 512 small pages into one huge page with the same bytes', () => {
    const { k, p, a, data } = setup();
    const vma = p.mm.vmaLookup(a)!;
    expect(collapseHugePage(vma, a)).toBe(SCAN_SUCCEED);
    expect(p.pagemap(a).huge).toBe('2MiB');
    expect(Buffer.compare(Buffer.from(p.read(a, 2 * MiB)), Buffer.from(data))).toBe(0);
    expect(k.vmstat().thp_collapse_alloc).toBe(1);
    expect(p.status().vmRss).toBe(2 * MiB);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('refuses a range holding a pinned page, and one with too many empty PTEs', () => {
    const { k, p, a } = setup();
    const pfn = p.pagemap(a + 10 * PAGE_SIZE).pfn!;
    k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS;
    const vma = p.mm.vmaLookup(a)!;
    expect(collapseHugePage(vma, a)).toBe(SCAN_PAGE_COUNT);
    k.phys.frames.refcount[pfn] -= GUP_PIN_COUNTING_BIAS;
    thpConfig(k.mmCore).maxPtesNone = 0;
    p.madvise(a, PAGE_SIZE, 4 /* MADV_DONTNEED */);
    expect(collapseHugePage(p.mm.vmaLookup(a)!, a)).toBe(SCAN_EXCEED_NONE_PTE);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('runs in the background every 10 s of simulated time', async () => {
    const { k, p, a } = setup();
    initKhugepaged(k.mmCore);
    initKhugepaged(k.mmCore); // idempotent
    await k.runUntilIdle();
    expect(p.pagemap(a).huge).toBeUndefined(); // background work does not keep an idle machine busy
    await k.runFor(10e9);
    expect(p.pagemap(a).huge).toBe('2MiB');
    expect(khugepagedStats(k.mmCore).pagesCollapsed).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });
});
