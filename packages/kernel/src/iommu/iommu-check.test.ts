import { describe, expect, it } from '@jest/globals';
import { Device } from '../base/device';
import { createKernel } from '../plugin/create-kernel';
import { PAGE_SIZE, PROT_READ } from '../uapi/mman';
import { initIommu } from './iommu';
import { checkIommuInvariants } from './iommu-check';
import { iommuSvaBindDevice } from './sva';
import { TLB_PERM_READ, TLB_PERM_WRITE } from './tlb-cache';
import { iommuTranslate } from './translate';

function rig() {
  const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
  const iommu = initIommu(k.mmCore);
  const dev = iommu.iommuProbeDevice(new Device({ name: 'acc0' }), { ats: true });
  const p = k.spawn();
  const h = iommuSvaBindDevice(dev, p.mm);
  const a = p.mmap(2 * PAGE_SIZE);
  p.touch(a, 2 * PAGE_SIZE, { write: true });
  return { k, iommu, dev, p, h, a, vpn: a / PAGE_SIZE };
}

describe('checkIommuInvariants', () => {
  it('holds for a coherent state', () => {
    const { iommu, dev, h, a } = rig();
    iommuTranslate(dev, h.pasid, a, true);
    expect(checkIommuInvariants(iommu)).toEqual([]);
  });

  it('reports a stale IOTLB entry (wrong pfn) and an ATC entry wider than the page table', () => {
    const { iommu, dev, p, h, a, vpn } = rig();
    const pfn = p.pagemap(a).pfn!;
    iommu.iotlb.insert(h.svaDomain.id, vpn, pfn + 1, TLB_PERM_READ);
    p.mprotect(a + PAGE_SIZE, PAGE_SIZE, PROT_READ);
    dev.atc!.insert(h.pasid, vpn + 1, p.pagemap(a + PAGE_SIZE).pfn!, TLB_PERM_READ | TLB_PERM_WRITE);
    const v = checkIommuInvariants(iommu).join('\n');
    expect(v).toMatch(/IOTLB .*stale entry .* page table has pfn/);
    expect(v).toMatch(/ATC acc0 .*is writable, the page table's is not/);
  });

  it('reports an entry for an unmapped page, a freed domain, an unattached PASID and an exited mm', () => {
    const { iommu, dev, p, h, a, vpn } = rig();
    dev.atc!.insert(h.pasid, vpn + 100, 5, TLB_PERM_READ);
    iommu.iotlb.insert(999, vpn, 5, TLB_PERM_READ);
    dev.atc!.insert(h.pasid + 1, vpn, 5, TLB_PERM_READ);
    let v = checkIommuInvariants(iommu).join('\n');
    expect(v).toMatch(/no usable mapping any more/);
    expect(v).toMatch(/IOTLB domain 999: .* of no live domain/);
    expect(v).toMatch(new RegExp(`ATC acc0 PASID ${h.pasid + 1}: .* of no live domain`));
    dev.atc!.invalidateAll();
    iommu.iotlb.invalidateAll();
    p.exit();
    iommu.iotlb.insert(h.svaDomain.id, a / PAGE_SIZE, 5, TLB_PERM_READ);
    v = checkIommuInvariants(iommu).join('\n');
    expect(v).toMatch(/of exited mm/);
  });

  it('reports broken SVA bookkeeping', () => {
    const { iommu, h } = rig();
    h.svaDomain.users = 2;
    iommu.pasidIda.free(h.pasid);
    const v = checkIommuInvariants(iommu).join('\n');
    expect(v).toMatch(/2 users but 1 attachments/);
    expect(v).toMatch(/PASID 1 is not allocated/);
  });
});
