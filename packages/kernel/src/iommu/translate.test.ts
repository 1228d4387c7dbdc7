import { describe, expect, it } from '@jest/globals';
import { Device } from '../base/device';
import { GFP_HIGHUSER_MOVABLE, __GFP_THISNODE } from '../mm/gfp';
import { completeDueMigrations, isolateLruFolio, migratePages } from '../mm/migrate';
import { MIGRATE_SYNC, MR_NUMA_MISPLACED } from '../mm/migrate-types';
import { PTE_DIRTY, PTE_YOUNG } from '../mm/pte';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE } from '../uapi/mman';
import { initIommu, type Iommu, type IommuProbeOptions } from './iommu';
import { checkIommuInvariants } from './iommu-check';
import type { IommuDevice } from './iommu-device';
import { iommuSvaBindDevice, iommuSvaUnbindDevice, type IommuSvaHandle } from './sva';
import { TRANSLATION_ABORT, TRANSLATION_FAULT, iommuTranslate } from './translate';

interface Rig {
  k: Kernel;
  iommu: Iommu;
  dev: IommuDevice;
  p: Process;
  h: IommuSvaHandle;
  pasid: number;
}

function rig(
  opts: { nodes?: number; size?: string; profile?: string; probe?: IommuProbeOptions; thp?: boolean } = {},
): Rig {
  const k = createKernel({
    memory: { nodes: Array.from({ length: opts.nodes ?? 1 }, () => ({ size: opts.size ?? '64MiB' })) },
    sysctl: { transparent_hugepage: opts.thp ? 'always' : 'never' },
    iommu: { profile: opts.profile ?? 'smmuv3' },
  });
  const iommu = initIommu(k.mmCore, { profile: opts.profile ?? 'smmuv3' });
  const dev = iommu.iommuProbeDevice(new Device({ name: 'acc0' }), { ats: true, ...opts.probe });
  const p = k.spawn();
  const h = iommuSvaBindDevice(dev, p.mm);
  return { k, iommu, dev, p, h, pasid: h.pasid };
}

function ok(r: Rig): void {
  expect(checkIommuInvariants(r.iommu)).toEqual([]);
  expect(r.k.checkInvariants()).toEqual([]);
}

/** The raw PTE flag word of `va` in `p`'s page table. */
function pteHi(p: Process, va: number): number {
  const pt = p.mm.pgtable;
  const t = pt.walk(va, false);
  return t ? t[pt.slot + 1] : 0;
}

describe('iommuTranslate', () => {
  it('walks on the first access, then hits the ATC; a device without ATS hits the IOTLB', () => {
    const r = rig();
    const { dev, p, pasid, iommu } = r;
    const prof = iommu.profile;
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([7]));
    const pfn = p.pagemap(a).pfn!;
    expect(iommuTranslate(dev, pasid, a + 123, false)).toBe(pfn);
    expect(dev.lastTranslationLevels).toBe(4);
    expect(dev.lastTranslationNs).toBe(prof.atcHitNs + prof.iotlbHitNs + 4 * prof.walkPerLevelNs);
    expect(iommuTranslate(dev, pasid, a, true)).toBe(pfn);
    expect(dev.lastTranslationNs).toBe(prof.atcHitNs);
    expect(dev.stats).toMatchObject({ translations: 2, atcHits: 1, walks: 1, faults: 0 });
    const other = iommu.iommuProbeDevice(new Device({ name: 'acc1' }), { ats: false });
    const h2 = iommuSvaBindDevice(other, p.mm);
    expect(iommuTranslate(other, pasid, a, false)).toBe(pfn);
    expect(other.lastTranslationNs).toBe(prof.iotlbHitNs);
    expect(other.stats.iotlbHits).toBe(1);
    iommuSvaUnbindDevice(h2);
    ok(r);
  });

  it('reports a fault for a page not present, without touching the page table', () => {
    const r = rig();
    const { dev, p, pasid } = r;
    const a = p.mmap(2 * PAGE_SIZE);
    expect(iommuTranslate(dev, pasid, a, false)).toBe(TRANSLATION_FAULT);
    expect(p.pagemap(a).present).toBe(false);
    expect(iommuTranslate(dev, pasid, 0x1000, false)).toBe(TRANSLATION_FAULT); // no VMA: still a page request
    p.read(a, 1); // the zero page, read-only
    const zero = p.pagemap(a).pfn!;
    const before = pteHi(p, a);
    expect(iommuTranslate(dev, pasid, a, true)).toBe(TRANSLATION_FAULT);
    expect(pteHi(p, a)).toBe(before); // no accessed/dirty bits set by a failed walk
    expect(iommuTranslate(dev, pasid, a, false)).toBe(zero);
    // The CPU's COW of the zero page replaces the cached read-only translation.
    p.write(a, new Uint8Array([1]));
    const fresh = p.pagemap(a).pfn!;
    expect(fresh).not.toBe(zero);
    expect(iommuTranslate(dev, pasid, a, false)).toBe(fresh);
    expect(iommuTranslate(dev, pasid, a, true)).toBe(fresh);
    expect(dev.stats.faults).toBe(3);
    ok(r);
  });

  it('marks pages accessed, and dirty only on a write; a clean writable page is re-walked on write', () => {
    const r = rig();
    const { dev, p, pasid } = r;
    const a = p.mmap(PAGE_SIZE);
    p.touch(a, PAGE_SIZE, { write: true });
    const pt = p.mm.pgtable;
    const t = pt.walk(a, false)!;
    t[pt.slot + 1] &= ~(PTE_YOUNG | PTE_DIRTY); // as reclaim aging / writeback would leave it
    expect(iommuTranslate(dev, pasid, a, false)).toBe(p.pagemap(a).pfn);
    expect(pteHi(p, a) & PTE_YOUNG).toBeTruthy();
    expect(pteHi(p, a) & PTE_DIRTY).toBeFalsy();
    const walks = dev.stats.walks;
    expect(iommuTranslate(dev, pasid, a, true)).toBe(p.pagemap(a).pfn);
    expect(dev.stats.walks).toBe(walks + 1); // the read-only cached entry did not serve the write
    expect(pteHi(p, a) & PTE_DIRTY).toBeTruthy();
    expect(iommuTranslate(dev, pasid, a, true)).toBe(p.pagemap(a).pfn);
    expect(dev.stats.walks).toBe(walks + 1);
    ok(r);
  });

  it('aborts for a PASID nothing is attached at, and for a released device', () => {
    const r = rig();
    const { dev, p, pasid, iommu } = r;
    const a = p.mmap(PAGE_SIZE);
    p.touch(a, PAGE_SIZE);
    expect(iommuTranslate(dev, pasid + 1, a, false)).toBe(TRANSLATION_ABORT);
    expect(iommuTranslate(dev, 2 ** 20 + 5, a, false)).toBe(TRANSLATION_ABORT);
    expect(iommuTranslate(dev, 0, a, false)).toBe(TRANSLATION_ABORT); // no IOVA mapping there
    iommuSvaUnbindDevice(r.h);
    iommu.iommuReleaseDevice(dev);
    expect(iommuTranslate(dev, pasid, a, false)).toBe(TRANSLATION_ABORT);
    expect(dev.stats.aborts).toBe(4);
    expect(r.k.dmesg().some((l) => l.includes('DMA aborted'))).toBe(true);
  });

  it('never returns a stale pfn after munmap, and charges the invalidation to the caller', () => {
    const r = rig();
    const { dev, p, pasid, iommu } = r;
    const a = p.mmap(8 * PAGE_SIZE);
    p.touch(a, 8 * PAGE_SIZE, { write: true });
    for (let i = 0; i < 8; i++)
      expect(iommuTranslate(dev, pasid, a + i * PAGE_SIZE, true)).toBeGreaterThan(0);
    const cpu = p.cpuNs;
    const inv = r.h.svaDomain.stats.iotlbInvRange;
    p.munmap(a + 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    expect(r.h.svaDomain.stats.iotlbInvRange).toBeGreaterThan(inv);
    expect(p.cpuNs - cpu).toBeGreaterThanOrEqual(iommu.profile.invRangeNs + iommu.profile.invAtcNs);
    ok(r);
    for (let i = 0; i < 8; i++) {
      const got = iommuTranslate(dev, pasid, a + i * PAGE_SIZE, false);
      if (i >= 2 && i < 5) expect(got).toBe(TRANSLATION_FAULT);
      else expect(got).toBe(p.pagemap(a + i * PAGE_SIZE).pfn);
    }
    // A new mapping at the same address gets new pages; the device sees them.
    p.mmap(3 * PAGE_SIZE, { addr: a + 2 * PAGE_SIZE, flags: 0x32 /* MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED */ });
    p.touch(a + 2 * PAGE_SIZE, 3 * PAGE_SIZE, { write: true });
    for (let i = 2; i < 5; i++)
      expect(iommuTranslate(dev, pasid, a + i * PAGE_SIZE, true)).toBe(p.pagemap(a + i * PAGE_SIZE).pfn);
    ok(r);
  });

  it('flushes the whole ASID for a range of CMDQ_MAX_TLBI_OPS pages or more (smmuv3)', () => {
    const r = rig();
    const { dev, p, pasid, iommu } = r;
    const n = iommu.profile.invRangeMaxPages;
    const a = p.mmap((n + 4) * PAGE_SIZE);
    const b = p.mmap(PAGE_SIZE);
    p.touch(a, (n + 4) * PAGE_SIZE, { write: true });
    p.touch(b, PAGE_SIZE, { write: true });
    iommuTranslate(dev, pasid, b, true);
    iommuTranslate(dev, pasid, a, true);
    const all = r.h.svaDomain.stats.iotlbInvAll;
    p.munmap(a, (n + 4) * PAGE_SIZE);
    expect(r.h.svaDomain.stats.iotlbInvAll).toBe(all + 1);
    expect(iommu.iotlb.validEntries).toBe(0); // b's entry went too: a TLBI by ASID
    expect(iommuTranslate(dev, pasid, b, true)).toBe(p.pagemap(b).pfn);
    ok(r);
  });

  it('follows mprotect: no write through a read-only page, nothing through PROT_NONE', () => {
    const r = rig();
    const { dev, p, pasid } = r;
    const a = p.mmap(PAGE_SIZE);
    p.touch(a, PAGE_SIZE, { write: true });
    const pfn = p.pagemap(a).pfn!;
    expect(iommuTranslate(dev, pasid, a, true)).toBe(pfn);
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    ok(r);
    expect(iommuTranslate(dev, pasid, a, true)).toBe(TRANSLATION_FAULT);
    expect(iommuTranslate(dev, pasid, a, false)).toBe(pfn);
    p.mprotect(a, PAGE_SIZE, PROT_NONE);
    ok(r);
    expect(iommuTranslate(dev, pasid, a, false)).toBe(TRANSLATION_FAULT);
    p.mprotect(a, PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.touch(a, PAGE_SIZE, { write: true });
    expect(iommuTranslate(dev, pasid, a, true)).toBe(p.pagemap(a).pfn);
    ok(r);
  });

  it('follows COW after fork: the parent device write faults, then lands in the parent copy', () => {
    const r = rig();
    const { dev, p, pasid } = r;
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([5]));
    const before = p.pagemap(a).pfn!;
    expect(iommuTranslate(dev, pasid, a, true)).toBe(before);
    const child = p.fork();
    ok(r);
    expect(iommuTranslate(dev, pasid, a, true)).toBe(TRANSLATION_FAULT); // write-protected for COW
    expect(iommuTranslate(dev, pasid, a, false)).toBe(before);
    p.write(a, new Uint8Array([6])); // the parent breaks COW (what the page request would do)
    const after = p.pagemap(a).pfn!;
    expect(after).not.toBe(before);
    expect(child.pagemap(a).pfn).toBe(before);
    expect(iommuTranslate(dev, pasid, a, false)).toBe(after);
    expect(iommuTranslate(dev, pasid, a, true)).toBe(after);
    ok(r);
  });

  it('follows migration: a fault during the copy window, the new pfn afterwards, never the old one', () => {
    const r = rig({ nodes: 2 });
    const { k, dev, p, pasid } = r;
    const a = p.mmap(4 * PAGE_SIZE);
    p.touch(a, 4 * PAGE_SIZE, { write: true });
    const old = [0, 1, 2, 3].map((i) => p.pagemap(a + i * PAGE_SIZE).pfn!);
    for (let i = 0; i < 4; i++) expect(iommuTranslate(dev, pasid, a + i * PAGE_SIZE, true)).toBe(old[i]);
    const to1 = (_src: number, order: number) =>
      k.phys.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_THISNODE, order, 1);
    for (const f of old.slice(0, 2)) expect(isolateLruFolio(k.mmCore, f)).toBe(true);
    expect(migratePages(k.mmCore, old.slice(0, 2), to1, MIGRATE_SYNC, MR_NUMA_MISPLACED)).toBe(0);
    ok(r);
    for (let i = 0; i < 2; i++) {
      const got = iommuTranslate(dev, pasid, a + i * PAGE_SIZE, true);
      expect(got).not.toBe(old[i]);
      expect(got).toBe(p.pagemap(a + i * PAGE_SIZE).pfn);
      expect(p.pagemap(a + i * PAGE_SIZE).node).toBe(1);
    }
    // Deferred copy: the migration entry makes the device fault until the copy completes.
    for (const f of old.slice(2)) expect(isolateLruFolio(k.mmCore, f)).toBe(true);
    const done = k.now() + 50_000;
    migratePages(k.mmCore, old.slice(2), to1, MIGRATE_SYNC, MR_NUMA_MISPLACED, undefined, {
      completeAt: done,
    });
    expect(iommuTranslate(dev, pasid, a + 2 * PAGE_SIZE, false)).toBe(TRANSLATION_FAULT);
    ok(r);
    completeDueMigrations(k.mmCore, done);
    for (let i = 2; i < 4; i++) {
      const got = iommuTranslate(dev, pasid, a + i * PAGE_SIZE, false);
      expect(got).not.toBe(old[i]);
      expect(got).toBe(p.pagemap(a + i * PAGE_SIZE).pfn);
    }
    expect(p.read(a, 1)[0]).toBe(0);
    ok(r);
  });

  it('follows compaction: pages moved by compact_memory are translated to where they went', () => {
    const r = rig({ size: '32MiB' });
    const { k, dev, p, pasid } = r;
    // Interleave two processes' pages over all of memory, hide what stays free in 2 MiB blocks,
    // then free the other's: p's pages are spread over fragmented pageblocks.
    const other = k.spawn();
    const n = Math.floor((k.phys.nrFreePages() - 2048) / 2);
    const pa = p.mmap(n * PAGE_SIZE);
    const oa = other.mmap(n * PAGE_SIZE);
    for (let i = 0; i < n; i++) {
      p.write(pa + i * PAGE_SIZE, new Uint8Array([i & 255]));
      other.write(oa + i * PAGE_SIZE, new Uint8Array([1]));
    }
    const hidden: Array<[number, number]> = [];
    k.phys.forEachFreeBlock((pfn, order) => {
      if (order >= 9) hidden.push([pfn, 2 ** order]);
    });
    for (const [pfn, len] of hidden) expect(k.phys.takeFreeRange(pfn, len)).toBe(true);
    other.exit();
    const before: number[] = [];
    for (let i = 0; i < n; i++) {
      before.push(p.pagemap(pa + i * PAGE_SIZE).pfn!);
      expect(iommuTranslate(dev, pasid, pa + i * PAGE_SIZE, i % 2 === 0)).toBe(before[i]);
    }
    k.compactMemory();
    ok(r);
    let moved = 0;
    for (let i = 0; i < n; i++) {
      const now = p.pagemap(pa + i * PAGE_SIZE).pfn!;
      if (now !== before[i]) moved++;
      expect(iommuTranslate(dev, pasid, pa + i * PAGE_SIZE, true)).toBe(now);
    }
    expect(moved).toBeGreaterThan(n / 4);
    for (let i = 0; i < n; i += 97) expect(p.read(pa + i * PAGE_SIZE, 1)[0]).toBe(i & 255);
    ok(r);
  });

  it('translates the right subpage of a transparent huge page, and follows its split', () => {
    const r = rig({ thp: true });
    const { dev, p, pasid } = r;
    const huge = 2 * 1024 * 1024;
    const a = p.mmap(2 * huge);
    const base = Math.ceil(a / huge) * huge;
    p.touch(base, huge, { write: true });
    expect(p.pagemap(base).huge).toBe('2MiB');
    const head = p.pagemap(base).pfn!;
    expect(iommuTranslate(dev, pasid, base + 37 * PAGE_SIZE + 5, true)).toBe(head + 37);
    expect(dev.lastTranslationLevels).toBe(3); // a PMD leaf
    p.mprotect(base + 10 * PAGE_SIZE, PAGE_SIZE, PROT_READ); // splits the PMD
    ok(r);
    expect(iommuTranslate(dev, pasid, base + 10 * PAGE_SIZE, true)).toBe(TRANSLATION_FAULT);
    expect(iommuTranslate(dev, pasid, base + 37 * PAGE_SIZE, true)).toBe(
      p.pagemap(base + 37 * PAGE_SIZE).pfn,
    );
    ok(r);
  });

  it('keeps every profile coherent under the same sequence', () => {
    for (const profile of ['smmuv3', 'vtd', 'amd-iommuv2']) {
      const r = rig({ profile });
      const { dev, p, pasid } = r;
      const a = p.mmap(64 * PAGE_SIZE);
      p.touch(a, 64 * PAGE_SIZE, { write: true });
      for (let i = 0; i < 64; i++) iommuTranslate(dev, pasid, a + i * PAGE_SIZE, i % 2 === 0);
      p.munmap(a + 8 * PAGE_SIZE, 8 * PAGE_SIZE);
      p.mprotect(a, 8 * PAGE_SIZE, PROT_READ);
      const c = p.fork();
      ok(r);
      for (let i = 0; i < 64; i++) {
        const got = iommuTranslate(dev, pasid, a + i * PAGE_SIZE, false);
        const pm = p.pagemap(a + i * PAGE_SIZE);
        expect(got).toBe(pm.present ? pm.pfn : TRANSLATION_FAULT);
      }
      c.exit();
      p.exit();
      ok(r);
    }
  });
});
