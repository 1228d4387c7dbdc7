import { describe, expect, it } from '@jest/globals';
import { Device } from '../base/device';
import { FOLL_LONGTERM, FOLL_WRITE } from '../gup/foll-flags';
import { pinUserPages, unpinUserPages } from '../gup/gup';
import { createKernel } from '../plugin/create-kernel';
import { PAGE_SIZE } from '../uapi/mman';
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_NONE,
  DMA_TO_DEVICE,
  dmaMapPage,
  dmaMapSg,
  dmaMappingError,
  dmaUnmapPage,
  dmaUnmapSg,
  iommuIovaToPhys,
  iommuMap,
  iommuUnmap,
} from './dma-api';
import { IOMMU_READ, IOMMU_WRITE } from './domain';
import { initIommu, type IommuProbeOptions } from './iommu';
import { checkIommuInvariants } from './iommu-check';
import { IovaDomain } from './iova';
import { iommuAttachDevicePasid, iommuDetachDevicePasid } from './sva';
import { TRANSLATION_ABORT, iommuTranslate } from './translate';

function rig(probe: IommuProbeOptions = {}) {
  const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
  const iommu = initIommu(k.mmCore);
  const dev = iommu.iommuProbeDevice(new Device({ name: 'nic0' }), { ats: true, ...probe });
  const p = k.spawn();
  return { k, iommu, dev, p };
}

/** Pin `n` pages of fresh anonymous memory of `p` (as a driver does before dma_map_sg). */
function pinned(k: ReturnType<typeof rig>['k'], p: ReturnType<typeof rig>['p'], n: number) {
  const a = p.mmap(n * PAGE_SIZE);
  p.touch(a, n * PAGE_SIZE, { write: true });
  const pages: number[] = [];
  expect(pinUserPages(p.mm, a, n, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(n);
  return { a, pages, unpin: () => unpinUserPages(k.mmCore, pages, n) };
}

describe('IovaDomain', () => {
  it('allocates top-down below the limit, size-aligned, and reuses freed ranges', () => {
    const d = new IovaDomain(1, 1023);
    expect(d.allocIova(4, 1023, true)).toBe(1020);
    expect(d.allocIova(3, 1023, true)).toBe(1016); // aligned to 4
    expect(d.allocIova(3, 1023, false)).toBe(1013);
    expect(d.allocIova(8, 511, true)).toBe(504); // below a lower limit
    expect(d.findIova(1018)).toBeGreaterThanOrEqual(0);
    expect(d.pfnLo(d.findIova(1018))).toBe(1016);
    expect(d.pfnHi(d.findIova(1018))).toBe(1018);
    expect(d.findIova(1019)).toBe(-1);
    expect(d.freeIova(1020)).toBe(4);
    expect(d.freeIova(1020)).toBe(0);
    expect(d.allocIova(2, 1023, true)).toBe(1022); // the highest hole that fits
    expect(d.allocIova(2, 1023, true)).toBe(1020);
    expect(d.nrRanges).toBe(5);
  });

  it('never hands out page 0 and fails when nothing fits', () => {
    const d = new IovaDomain(1, 15);
    expect(d.allocIova(15, 15, false)).toBe(1);
    expect(d.allocIova(1, 15, false)).toBe(-1);
    d.freeIova(1);
    expect(d.allocIova(16, 15, false)).toBe(-1);
    expect(d.allocIova(8, 15, true)).toBe(8);
    expect(d.allocIova(8, 15, true)).toBe(-1); // 0..7 would include page 0
    expect(d.allocIovaFast(3, 15)).toBe(4); // rounded to 4 pages, aligned
    expect(d.pfnHi(d.findIova(4))).toBe(7);
    expect(() => new IovaDomain(0, 10)).toThrow(RangeError);
  });
});

describe('dmaMapSg / dmaUnmapSg', () => {
  it('maps pinned pages contiguously at the top of the device DMA space, translated with no PASID', () => {
    const { k, iommu, dev, p } = rig();
    const { pages, unpin } = pinned(k, p, 3);
    const r = dmaMapSg(dev, pages, DMA_BIDIRECTIONAL);
    expect(r.error).toBe(0);
    expect(r.nents).toBe(3);
    expect(r.iova).toBe((2 ** 36 - 4) * PAGE_SIZE); // 3 pages rounded to 4, top of 48 bits
    for (let i = 0; i < 3; i++) {
      expect(iommuTranslate(dev, 0, r.iova + i * PAGE_SIZE + 9, true)).toBe(pages[i]);
      expect(iommuIovaToPhys(dev.group.domain, r.iova + i * PAGE_SIZE + 9)).toBe(pages[i] * PAGE_SIZE + 9);
    }
    expect(iommuTranslate(dev, 0, r.iova + 3 * PAGE_SIZE, false)).toBe(TRANSLATION_ABORT); // padding page
    expect(checkIommuInvariants(iommu)).toEqual([]);
    const cpu = p.cpuNs;
    k.setCurrent(p);
    dmaUnmapSg(dev, r.iova, 3);
    k.setCurrent(null);
    expect(p.cpuNs - cpu).toBe(iommu.profile.invRangeNs + iommu.profile.invAtcNs);
    for (let i = 0; i < 3; i++)
      expect(iommuTranslate(dev, 0, r.iova + i * PAGE_SIZE, false)).toBe(TRANSLATION_ABORT);
    expect(dev.group.domain.mappedPages).toBe(0);
    expect(dmaMapSg(dev, pages, DMA_TO_DEVICE).iova).toBe(r.iova); // the IOVA was freed
    unpin();
    expect(checkIommuInvariants(iommu)).toEqual([]);
  });

  it('enforces the direction: a DMA_TO_DEVICE buffer cannot be written by the device', () => {
    const { k, dev, p } = rig();
    const { pages } = pinned(k, p, 2);
    const to = dmaMapSg(dev, pages.slice(0, 1), DMA_TO_DEVICE);
    const from = dmaMapSg(dev, pages.slice(1), DMA_FROM_DEVICE);
    expect(iommuTranslate(dev, 0, to.iova, false)).toBe(pages[0]);
    expect(iommuTranslate(dev, 0, to.iova, true)).toBe(TRANSLATION_ABORT);
    expect(iommuTranslate(dev, 0, from.iova, true)).toBe(pages[1]);
    expect(from.iova).toBeLessThan(to.iova);
  });

  it('respects a 32-bit DMA mask', () => {
    const { k, dev, p } = rig({ dmaMaskBits: 32 });
    const { pages } = pinned(k, p, 1);
    const r = dmaMapSg(dev, pages, DMA_BIDIRECTIONAL);
    expect(r.iova).toBe(2 ** 32 - PAGE_SIZE);
  });

  it('refuses bad requests: no IOMMU, DMA_NONE, an empty list, a bad pfn', () => {
    const { k, dev } = rig();
    expect(dmaMapSg(new Device({ name: 'lost' }), [1], DMA_TO_DEVICE)).toEqual({
      iova: DMA_MAPPING_ERROR,
      nents: 0,
      error: -19,
    });
    expect(dmaMapSg(dev, [1], DMA_NONE).error).toBe(-22);
    expect(k.dmesg().some((l) => l.includes('invalid direction'))).toBe(true);
    expect(dmaMapSg(dev, [], DMA_TO_DEVICE).error).toBe(-22);
    expect(dmaMapSg(dev, [-1], DMA_TO_DEVICE).error).toBe(-22);
    expect(dmaMappingError(dmaMapPage(dev, 1, 0, 0, DMA_TO_DEVICE))).toBe(true);
  });

  it('WARNs and does nothing when unmapping an address that is not mapped', () => {
    const { k, iommu, dev, p } = rig();
    const { pages } = pinned(k, p, 2);
    const r = dmaMapSg(dev, pages, DMA_BIDIRECTIONAL);
    dmaUnmapSg(dev, r.iova + PAGE_SIZE, 1);
    dmaUnmapSg(dev, 0x1234, 1);
    expect(k.dmesg().filter((l) => l.includes('that is not mapped')).length).toBe(2);
    expect(iommuTranslate(dev, 0, r.iova + PAGE_SIZE, false)).toBe(pages[1]);
    dmaUnmapSg(dev, r.iova, 1); // wrong count: WARN, the whole mapping goes
    expect(k.dmesg().some((l) => l.includes('unmapping 1 entries of a 2-page mapping'))).toBe(true);
    expect(iommuTranslate(dev, 0, r.iova + PAGE_SIZE, false)).toBe(TRANSLATION_ABORT);
    expect(checkIommuInvariants(iommu)).toEqual([]);
  });

  it('maps a byte range with dmaMapPage', () => {
    const { k, dev, p } = rig();
    const { pages } = pinned(k, p, 1);
    const addr = dmaMapPage(dev, pages[0], 100, 200, DMA_BIDIRECTIONAL);
    expect(addr % PAGE_SIZE).toBe(100);
    expect(iommuTranslate(dev, 0, addr, true)).toBe(pages[0]);
    dmaUnmapPage(dev, addr, 200);
    expect(iommuTranslate(dev, 0, addr, true)).toBe(TRANSLATION_ABORT);
  });

  it('reports a DMA mapping whose page was freed (the caller did not pin)', () => {
    const { iommu, dev, p } = rig();
    const a = p.mmap(PAGE_SIZE);
    p.touch(a, PAGE_SIZE, { write: true });
    const r = dmaMapSg(dev, [p.pagemap(a).pfn!], DMA_BIDIRECTIONAL);
    expect(checkIommuInvariants(iommu)).toEqual([]);
    p.munmap(a, PAGE_SIZE);
    expect(checkIommuInvariants(iommu).join('\n')).toMatch(/DMA into a freed page/);
    dmaUnmapSg(dev, r.iova, 1);
    expect(checkIommuInvariants(iommu)).toEqual([]);
  });
});

describe('iommuMap / iommuUnmap on a driver-managed domain attached at a PASID', () => {
  it('maps, translates through the PASID, unmaps with invalidation', () => {
    const { k, iommu, dev, p } = rig();
    const { pages, unpin } = pinned(k, p, 2);
    const domain = iommu.iommuPagingDomainAlloc();
    expect(iommuMap(domain, 0x10000, pages[0] * PAGE_SIZE, PAGE_SIZE, IOMMU_READ)).toBe(0);
    expect(iommuMap(domain, 0x11000, pages[1] * PAGE_SIZE, PAGE_SIZE, IOMMU_READ | IOMMU_WRITE)).toBe(0);
    expect(iommuMap(domain, 0x10000, pages[1] * PAGE_SIZE, PAGE_SIZE, IOMMU_READ)).toBe(-17); // EEXIST
    expect(iommuMap(domain, 0x10001, 0, PAGE_SIZE, IOMMU_READ)).toBe(-22);
    expect(iommuAttachDevicePasid(domain, dev, 7)).toBe(0);
    expect(iommuTranslate(dev, 7, 0x10000, false)).toBe(pages[0]);
    expect(iommuTranslate(dev, 7, 0x10000, true)).toBe(TRANSLATION_ABORT);
    expect(iommuTranslate(dev, 7, 0x11000, true)).toBe(pages[1]);
    expect(iommuTranslate(dev, 7, 0x11000, true)).toBe(pages[1]);
    expect(dev.stats.atcHits).toBe(1);
    expect(iommuUnmap(domain, 0x10000, 2 * PAGE_SIZE)).toBe(2 * PAGE_SIZE);
    expect(iommuTranslate(dev, 7, 0x11000, false)).toBe(TRANSLATION_ABORT);
    expect(checkIommuInvariants(iommu)).toEqual([]);
    iommu.iommuDomainFree(domain); // still attached: WARN, nothing done
    expect(domain.freed).toBe(false);
    iommuDetachDevicePasid(domain, dev, 7);
    iommu.iommuDomainFree(domain);
    expect(domain.freed).toBe(true);
    unpin();
    expect(checkIommuInvariants(iommu)).toEqual([]);
    expect(k.checkInvariants()).toEqual([]);
  });
});
