/**
 * IOMMU domains (struct iommu_domain): the address spaces devices translate through. A DMA
 * domain owns an IOVA page table filled by the DMA API; an SVA domain shares a process's page
 * table (mm->pgd) and follows it through an MMU notifier.
 */
import type { MmStruct } from '../mm/mm-struct';
import { PageTable } from '../mm/page-table';
import { MmuNotifier, type MmuNotifierOps } from '../mmu-notifier/types';
import { PAGE_SIZE } from '../uapi/mman';
import type { Iommu } from './iommu';
import type { IommuGroup } from './iommu-group';
import { IovaDomain } from './iova';
import type { SvaBinding } from './types';

/** Domain type bits (include/linux/iommu.h). */
export const __IOMMU_DOMAIN_PAGING = 1 << 0;
export const __IOMMU_DOMAIN_DMA_API = 1 << 1;
export const __IOMMU_DOMAIN_PT = 1 << 2;
export const __IOMMU_DOMAIN_DMA_FQ = 1 << 3;
export const __IOMMU_DOMAIN_SVA = 1 << 4;
/** Domain types (include/linux/iommu.h). */
export const IOMMU_DOMAIN_BLOCKED = 0;
export const IOMMU_DOMAIN_IDENTITY = __IOMMU_DOMAIN_PT;
export const IOMMU_DOMAIN_UNMANAGED = __IOMMU_DOMAIN_PAGING;
export const IOMMU_DOMAIN_DMA = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API;
export const IOMMU_DOMAIN_DMA_FQ = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API | __IOMMU_DOMAIN_DMA_FQ;
export const IOMMU_DOMAIN_SVA = __IOMMU_DOMAIN_SVA;

/** iommu_map() protection flags (include/linux/iommu.h). */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;

/** IOMMU_NO_PASID - requests without a PASID (the RID's domain). */
export const IOMMU_NO_PASID = 0;
/** IOMMU_FIRST_GLOBAL_PASID - the lowest PASID the global allocator hands out. */
export const IOMMU_FIRST_GLOBAL_PASID = 1;

/** Invalidation and cost counters of one domain. */
export interface IommuDomainStats {
  /** IOTLB invalidations by range (TLBI by VA, page-selective). */
  iotlbInvRange: number;
  /** IOTLB invalidations of the whole domain (TLBI by ASID, domain-selective). */
  iotlbInvAll: number;
  /** ATC invalidation requests sent to devices. */
  atcInvalidations: number;
  /** Simulated time charged for all of them, ns. */
  invalidationNs: number;
}

/**
 * IommuDomain - struct iommu_domain. `id` tags the domain's IOTLB entries (an ASID on SMMUv3, a
 * domain id on VT-d and AMD). Allocated by the IOMMU core (a group's default DMA domain, or an SVA
 * bind); freed by iommuDomainFree when its last attachment goes.
 */
export abstract class IommuDomain {
  /** IOMMU_DOMAIN_*. */
  abstract readonly type: number;
  /** The page table devices walk on an IOTLB miss. */
  abstract readonly pgtable: PageTable;
  /** Groups attached without a PASID (RID attachments): their devices' ATC entries tagged 0. */
  readonly groups: IommuGroup[] = [];
  /** PASID attachments: their devices' ATC entries are tagged with the handle's PASID. */
  readonly handles: IommuAttachHandle[] = [];
  readonly stats: IommuDomainStats = {
    iotlbInvRange: 0,
    iotlbInvAll: 0,
    atcInvalidations: 0,
    invalidationNs: 0,
  };
  /** Set by iommuDomainFree: the id may belong to another domain afterwards. */
  freed = false;

  constructor(
    /** The IOMMU this domain lives in. */
    readonly iommu: Iommu,
    /** ASID / domain id, from iommu's domain-id allocator. */
    readonly id: number,
  ) {}
}

/**
 * IommuDmaDomain - a paging domain used by the DMA API (IOMMU_DOMAIN_DMA): its own I/O page
 * table, filled by iommuMap / dmaMapSg, and its IOVA allocator. Every group gets one as its
 * default domain at creation (iommu_group_alloc_default_domain).
 */
export class IommuDmaDomain extends IommuDomain {
  readonly type = IOMMU_DOMAIN_DMA;
  readonly pgtable = new PageTable();
  readonly iovad: IovaDomain;
  /** dmaMapSg bookkeeping: first IOVA page of each mapping -> pages the caller mapped. */
  readonly dmaMappings = new Map<number, number>();
  /** Pages currently mapped in the I/O page table. */
  mappedPages = 0;

  constructor(iommu: Iommu, id: number, iovad: IovaDomain) {
    super(iommu, id);
    this.iovad = iovad;
  }
}

/**
 * SvaMmuNotifier - the SVA domain's subscription to its mm (the arm_smmu_domain's embedded
 * mmu_notifier): registered at domain allocation, put at domain free.
 */
export class SvaMmuNotifier extends MmuNotifier {
  constructor(
    ops: MmuNotifierOps,
    /** The domain it keeps coherent with the CPU page table. */
    readonly domain: IommuSvaDomain,
  ) {
    super(ops);
  }
}

/**
 * IommuSvaDomain - an SVA domain (IOMMU_DOMAIN_SVA): devices walk the mm's own page table (the
 * context descriptor's TTB0 = mm->pgd). One per mm per IOMMU, shared by every device bound to the
 * mm (domain->users counts the attachments). Made and freed by iommuSvaBindDevice /
 * iommuSvaUnbindDevice.
 */
export class IommuSvaDomain extends IommuDomain implements SvaBinding {
  readonly type = IOMMU_DOMAIN_SVA;
  /** Attachments (iommu_sva_bind_device calls that made a handle) using this domain. */
  users = 0;
  /**
   * Set by the notifier's release (exit_mmap): the context descriptor was rewritten to fault all
   * accesses, so translations abort. The PASID stays allocated until the last unbind.
   */
  faultAll = false;
  /** The MMU-notifier subscription (set once registered). */
  notifier: SvaMmuNotifier | null = null;

  constructor(
    iommu: Iommu,
    id: number,
    /** The shared address space (domain->mm). */
    readonly mm: MmStruct,
    /** The mm's global PASID (mm->iommu_mm->pasid). */
    readonly pasid: number,
  ) {
    super(iommu, id);
  }

  /** The mm's page table. */
  get pgtable(): PageTable {
    return this.mm.pgtable;
  }
}

/**
 * IommuAttachHandle - struct iommu_attach_handle: a domain attached to a group at a PASID
 * (group->pasid_array). Made by iommuAttachDevicePasid (or an SVA bind, whose handle extends this
 * one); released by iommuDetachDevicePasid.
 */
export class IommuAttachHandle {
  /** References (an SVA handle counts repeat binds of the same device and mm). */
  users = 1;

  constructor(
    readonly domain: IommuDomain,
    readonly group: IommuGroup,
    /** The PASID the domain is attached at. */
    readonly attachedPasid: number,
  ) {}
}

/**
 * atcInvalidateGroup - invalidate [startVpn, endVpn) of @tag (a PASID, 0 for the RID) in the ATC
 * of every ATS device of @group, or all of @tag when @full. Returns the simulated cost (one ATS
 * invalidation request per device, profile invAtcNs); the caller charges it.
 */
export function atcInvalidateGroup(
  group: IommuGroup,
  tag: number,
  startVpn: number,
  endVpn: number,
  full: boolean,
): number {
  const iommu = group.iommu;
  let n = 0;
  for (const dev of group.devices) {
    const atc = dev.atc;
    if (!atc) continue;
    if (full) atc.invalidateAsid(tag);
    else atc.invalidateRange(tag, startVpn, endVpn);
    dev.stats.atcInvalidations++;
    iommu.stats.atcInvalidations++;
    n++;
  }
  return n;
}

/**
 * iommuDomainInvalidate - make the IOTLB and every attached device's ATC forget
 * [startVpn, endVpn) of @domain (the iotlb_sync of an unmap, or an SVA domain following a CPU TLB
 * flush): a range invalidation, or the whole domain when the range reaches the profile's
 * invRangeMaxPages (the CMDQ_MAX_TLBI_OPS rule), then one ATC invalidation per ATS device.
 * Charges the cost (profile invRangeNs / invAllNs + invAtcNs per device) to the current task and
 * returns it in ns.
 * Context: any; called from MMU-notifier callbacks under the page-table lock.
 */
export function iommuDomainInvalidate(domain: IommuDomain, startVpn: number, endVpn: number): number {
  const iommu = domain.iommu;
  const p = iommu.profile;
  const full = !(endVpn - startVpn < p.invRangeMaxPages);
  let ns: number;
  if (full) {
    iommu.iotlb.invalidateAsid(domain.id);
    ns = p.invAllNs;
    domain.stats.iotlbInvAll++;
    iommu.stats.iotlbInvAll++;
  } else {
    iommu.iotlb.invalidateRange(domain.id, startVpn, endVpn);
    ns = p.invRangeNs;
    domain.stats.iotlbInvRange++;
    iommu.stats.iotlbInvRange++;
  }
  let atc = 0;
  for (const g of domain.groups) atc += atcInvalidateGroup(g, IOMMU_NO_PASID, startVpn, endVpn, full);
  for (const h of domain.handles) atc += atcInvalidateGroup(h.group, h.attachedPasid, startVpn, endVpn, full);
  domain.stats.atcInvalidations += atc;
  ns += atc * p.invAtcNs;
  domain.stats.invalidationNs += ns;
  iommu.stats.invalidationNs += ns;
  iommu.charge(ns);
  return ns;
}

/**
 * iommuDomainInvalidateBytes - iommuDomainInvalidate for the byte range [start, end) (the CPU's
 * view: an MMU-notifier range may end at ULONG_MAX).
 */
export function iommuDomainInvalidateBytes(domain: IommuDomain, start: number, end: number): number {
  return iommuDomainInvalidate(domain, Math.floor(start / PAGE_SIZE), Math.ceil(end / PAGE_SIZE));
}
