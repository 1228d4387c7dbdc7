/**
 * The DMA API on top of the IOMMU (drivers/iommu/dma-iommu.c): mapping pages for a device at
 * addresses (IOVAs) of its group's default DMA domain, and the iommu_map/iommu_unmap layer below.
 */
import type { Device } from '../base/device';
import { PTE_DIRTY, PTE_PRESENT, PTE_USER, PTE_WRITE } from '../mm/pte';
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { IOMMU_READ, IOMMU_WRITE, iommuDomainInvalidate, type IommuDmaDomain } from './domain';
import { devIommu, type IommuDevice } from './iommu-device';

/** enum dma_data_direction (include/linux/dma-direction.h). */
export const DMA_BIDIRECTIONAL = 0;
export const DMA_TO_DEVICE = 1;
export const DMA_FROM_DEVICE = 2;
export const DMA_NONE = 3;

/** DMA_MAPPING_ERROR - the address a failed dmaMapPage returns (the kernel's all-ones dma_addr_t). */
export const DMA_MAPPING_ERROR = -1;

/** The result of dmaMapSg. */
export interface DmaMapResult {
  /** The DMA address of the first page (DMA_MAPPING_ERROR on failure). */
  iova: number;
  /** Pages mapped, contiguously from iova (0 on failure, as dma_map_sg returns 0). */
  nents: number;
  /** 0, or why it failed: -ENODEV (no IOMMU), -EINVAL (bad direction or list), -ENOMEM (no IOVA space). */
  error: number;
}

/** dma_direction_to_prot: what the device may do with a mapping of @dir (0 for DMA_NONE / invalid). */
export function dmaDirectionToProt(dir: number): number {
  switch (dir) {
    case DMA_BIDIRECTIONAL:
      return IOMMU_READ | IOMMU_WRITE;
    case DMA_TO_DEVICE:
      return IOMMU_READ;
    case DMA_FROM_DEVICE:
      return IOMMU_WRITE;
    default:
      return 0;
  }
}

function validPage(pfn: number): boolean {
  return Number.isSafeInteger(pfn) && pfn >= 0 && pfn <= 0xffffffff;
}

/**
 * iommuMap - map @size bytes at physical address @paddr into @domain at @iova (iommu_map), one
 * 4 KiB I/O page table entry per page. IOMMU_WRITE makes the entries writable (a device may always
 * read a mapping it may write, as SMMU and VT-d page tables cannot express write-only).
 * Returns 0; -EINVAL (unaligned, empty, outside the aperture, no permission), -EEXIST (a page is
 * mapped already; nothing is changed).
 * Context: any. Released by iommuUnmap.
 */
export function iommuMap(
  domain: IommuDmaDomain,
  iova: number,
  paddr: number,
  size: number,
  prot: number,
): number {
  if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(paddr) || !Number.isSafeInteger(size))
    return -ERRNO.EINVAL;
  if (iova % PAGE_SIZE || paddr % PAGE_SIZE || size % PAGE_SIZE || size <= 0 || iova < 0 || paddr < 0)
    return -ERRNO.EINVAL;
  if (!(prot & (IOMMU_READ | IOMMU_WRITE))) return -ERRNO.EINVAL;
  const first = iova / PAGE_SIZE;
  const n = size / PAGE_SIZE;
  if (first + n - 1 > domain.iovad.endPfn || !validPage(paddr / PAGE_SIZE + n - 1)) return -ERRNO.EINVAL;
  const pt = domain.pgtable;
  for (let i = 0; i < n; i++) {
    const t = pt.walk((first + i) * PAGE_SIZE, false);
    if (t && t[pt.slot + 1] !== 0) return -ERRNO.EEXIST;
  }
  const hi = PTE_PRESENT | PTE_USER | (prot & IOMMU_WRITE ? PTE_WRITE | PTE_DIRTY : 0);
  const pfn0 = paddr / PAGE_SIZE;
  for (let i = 0; i < n; i++) {
    pt.walk((first + i) * PAGE_SIZE, true);
    pt.set(pt.tableId, pt.slot, pfn0 + i, hi);
  }
  domain.mappedPages += n;
  return 0;
}

/**
 * iommuUnmap - remove the mappings of [@iova, @iova + @size) from @domain and invalidate the
 * IOTLB and the attached devices' ATCs for it (iommu_unmap with its iotlb_sync; strict mode),
 * charging the profile's invalidation cost to the caller.
 * Returns the number of bytes that were mapped and are now unmapped (holes are skipped).
 */
export function iommuUnmap(domain: IommuDmaDomain, iova: number, size: number): number {
  if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(size) || iova % PAGE_SIZE || size <= 0) return 0;
  const first = iova / PAGE_SIZE;
  const n = Math.ceil(size / PAGE_SIZE);
  const pt = domain.pgtable;
  let unmapped = 0;
  for (let i = 0; i < n; i++) {
    const t = pt.walk((first + i) * PAGE_SIZE, false);
    if (!t || t[pt.slot + 1] === 0) continue;
    pt.set(pt.tableId, pt.slot, 0, 0);
    unmapped++;
  }
  domain.mappedPages -= unmapped;
  if (unmapped) iommuDomainInvalidate(domain, first, first + n);
  return unmapped * PAGE_SIZE;
}

/** iommuIovaToPhys - the physical address @iova maps to in @domain (iommu_iova_to_phys), or 0. */
export function iommuIovaToPhys(domain: IommuDmaDomain, iova: number): number {
  const pt = domain.pgtable;
  const t = pt.walk(iova, false);
  if (!t || !(t[pt.slot + 1] & PTE_PRESENT)) return 0;
  return t[pt.slot] * PAGE_SIZE + (iova % PAGE_SIZE);
}

/** The IOVA limit (last page) for @idev: its DMA mask capped by the domain aperture. */
function dmaLimitPfn(idev: IommuDevice, domain: IommuDmaDomain): number {
  return Math.min(2 ** idev.dmaMaskBits / PAGE_SIZE - 1, domain.iovad.endPfn);
}

function fail(error: number): DmaMapResult {
  return { iova: DMA_MAPPING_ERROR, nents: 0, error };
}

/**
 * dmaMapSg - map the pages @pfns for DMA by @dev in direction @dir (dma_map_sg through
 * iommu_dma_map_sg): one IOVA range is allocated top-down below the device's DMA mask (rounded up
 * to a power of two below 32 pages, as alloc_iova_fast does) and the pages are mapped in order,
 * contiguously, in the group's default DMA domain.
 *
 * It does NOT take page references: as in the kernel, a caller must keep the pages from being
 * freed or migrated while they are mapped (pin them first, e.g. pinUserPages with
 * FOLL_LONGTERM), and unmap before unpinning. checkIommuInvariants reports DMA mappings of freed
 * pages.
 * Returns { iova, nents: pfns.length, error: 0 }, or { DMA_MAPPING_ERROR, 0, -errno } (-ENODEV:
 * the device is not behind this IOMMU; -EINVAL: DMA_NONE or a bad direction (WARN), an empty list,
 * a bad pfn; -ENOMEM: no IOVA space below the mask).
 * Context: any. Released by dmaUnmapSg(dev, iova, nents).
 */
export function dmaMapSg(dev: Device | IommuDevice, pfns: readonly number[], dir: number): DmaMapResult {
  const idev = devIommu(dev);
  if (!idev || idev.released) return fail(-ERRNO.ENODEV);
  const iommu = idev.iommu;
  const prot = dmaDirectionToProt(dir);
  if (!prot) {
    iommu.warn('dma_dir', `${idev.name}: dma_map_sg with invalid direction ${dir}`);
    return fail(-ERRNO.EINVAL);
  }
  const n = pfns.length;
  if (n === 0) return fail(-ERRNO.EINVAL);
  for (let i = 0; i < n; i++) if (!validPage(pfns[i])) return fail(-ERRNO.EINVAL);
  const domain = idev.group.domain;
  const lo = domain.iovad.allocIovaFast(n, dmaLimitPfn(idev, domain));
  if (lo < 0) return fail(-ERRNO.ENOMEM);
  const pt = domain.pgtable;
  const hi = PTE_PRESENT | PTE_USER | (prot & IOMMU_WRITE ? PTE_WRITE | PTE_DIRTY : 0);
  for (let i = 0; i < n; i++) {
    pt.walk((lo + i) * PAGE_SIZE, true);
    pt.set(pt.tableId, pt.slot, pfns[i], hi);
  }
  domain.mappedPages += n;
  domain.dmaMappings.set(lo, n);
  return { iova: lo * PAGE_SIZE, nents: n, error: 0 };
}

/**
 * dmaUnmapSg - undo dmaMapSg (dma_unmap_sg): unmap the pages, invalidate the IOTLB and the group's
 * ATCs for the range (charged to the caller from the profile: strict invalidation, no flush
 * queue) and free the IOVA range. Unmapping an address that is not the start of a mapping WARNs
 * and does nothing; a @nents different from the mapped count WARNs and unmaps the whole mapping.
 */
export function dmaUnmapSg(dev: Device | IommuDevice, iova: number, nents: number): void {
  const idev = devIommu(dev);
  if (!idev) return;
  const iommu = idev.iommu;
  const domain = idev.group.domain;
  const lo = Number.isSafeInteger(iova) && iova % PAGE_SIZE === 0 ? iova / PAGE_SIZE : -1;
  const mapped = lo >= 0 ? domain.dmaMappings.get(lo) : undefined;
  if (mapped === undefined) {
    iommu.warn('dma_unmap', `${idev.name}: unmapping IOVA 0x${iova.toString(16)} that is not mapped`);
    return;
  }
  if (nents !== mapped)
    iommu.warn('dma_unmap', `${idev.name}: unmapping ${nents} entries of a ${mapped}-page mapping`);
  domain.dmaMappings.delete(lo);
  iommuUnmap(domain, lo * PAGE_SIZE, mapped * PAGE_SIZE);
  domain.iovad.freeIova(lo);
}

/**
 * dmaMapPage - map @size bytes at byte @offset of the physically contiguous pages from @pfn for
 * DMA by @dev (dma_map_page). Same rules as dmaMapSg (no page references taken).
 * Returns the DMA address of byte @offset, or DMA_MAPPING_ERROR. Released by dmaUnmapPage.
 */
export function dmaMapPage(
  dev: Device | IommuDevice,
  pfn: number,
  offset: number,
  size: number,
  dir: number,
): number {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size <= 0)
    return DMA_MAPPING_ERROR;
  const first = pfn + Math.floor(offset / PAGE_SIZE);
  const n = Math.ceil(((offset % PAGE_SIZE) + size) / PAGE_SIZE);
  const pfns: number[] = [];
  for (let i = 0; i < n; i++) pfns.push(first + i);
  const r = dmaMapSg(dev, pfns, dir);
  return r.nents ? r.iova + (offset % PAGE_SIZE) : DMA_MAPPING_ERROR;
}

/** dmaUnmapPage - undo dmaMapPage(dev, ..., size, ...) given the address it returned (dma_unmap_page). */
export function dmaUnmapPage(dev: Device | IommuDevice, addr: number, size: number): void {
  if (!Number.isSafeInteger(addr) || addr < 0) {
    dmaUnmapSg(dev, addr, 0);
    return;
  }
  const off = addr % PAGE_SIZE;
  dmaUnmapSg(dev, addr - off, Math.ceil((off + size) / PAGE_SIZE));
}

/** dmaMappingError - whether @addr is the error address a DMA map returned (dma_mapping_error). */
export function dmaMappingError(addr: number): boolean {
  return addr === DMA_MAPPING_ERROR;
}
