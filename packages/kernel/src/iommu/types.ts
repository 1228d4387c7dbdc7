/**
 * Contracts of the IOMMU subsystem shared by its parts (device/domain/SVA/caches, the IO page
 * fault pipeline, and uacce above it). See KERNEL-FACTS.md sections 4 and 5.
 */
import type { MmStruct } from '../mm/mm-struct';

/** IOMMU_PASID_INVALID. */
export const IOMMU_PASID_INVALID = 0xffffffff;

/** Page request flags (IOMMU_FAULT_PAGE_REQUEST_*). */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;
/** Access permissions of a page request (IOMMU_FAULT_PERM_*). */
export const IOMMU_FAULT_PERM_READ = 1 << 0;
export const IOMMU_FAULT_PERM_WRITE = 1 << 1;
export const IOMMU_FAULT_PERM_EXEC = 1 << 2;
export const IOMMU_FAULT_PERM_PRIV = 1 << 3;

/** enum iommu_page_response_code. */
export const IOMMU_PAGE_RESP_SUCCESS = 0;
export const IOMMU_PAGE_RESP_INVALID = 1;
export const IOMMU_PAGE_RESP_FAILURE = 2;

/** A page request from a device (struct iommu_fault_page_request). */
export interface PageRequest {
  flags: number;
  pasid: number;
  grpid: number;
  perm: number;
  /** Faulting virtual address (page aligned). */
  addr: number;
}

/**
 * A latency/size profile of an IOMMU and its devices, loaded from a data file that cites its
 * sources. All times in ns.
 */
export interface IommuProfile {
  name: string;
  description: string;
  /** Where each figure comes from. */
  sources: string[];
  /** IOTLB (in the IOMMU): entries and associativity. */
  iotlbEntries: number;
  iotlbWays: number;
  /** ATC (device TLB, PCIe ATS): entries and associativity. */
  atcEntries: number;
  atcWays: number;
  /** Translation costs: ATC hit, IOTLB hit (ATS round trip), page-table walk per level. */
  atcHitNs: number;
  iotlbHitNs: number;
  walkPerLevelNs: number;
  /** Invalidations: one range command, a whole-address-space flush, ATC invalidation. */
  invRangeNs: number;
  invAllNs: number;
  invAtcNs: number;
  /** Above this many pages a range invalidation becomes a full flush (CMDQ_MAX_TLBI_OPS). */
  invRangeMaxPages: number;
  /** Page request queue depth (entries) before overflow. */
  prqDepth: number;
  /** Interrupt: delivery latency and coalescing window. */
  irqLatencyNs: number;
  irqCoalesceNs: number;
  /** Workqueue dispatch latency after the interrupt handler queues the fault group. */
  wqDispatchNs: number;
  /** Page response delivery to the device, and the device's retry of the translation. */
  responseNs: number;
  retryNs: number;
  /**
   * IO page fault service-time distribution (log-normal by median and sigma, clamped to
   * [min, max]); extra per fault already in flight (contention: the 5-140 us rise of Vesely).
   */
  iopfMedianNs: number;
  iopfSigma: number;
  iopfMinNs: number;
  iopfMaxNs: number;
  iopfPerInflightNs: number;
  /**
   * A second, rare mode of the service time (a mixture with the one above): with probability
   * iopfTailProb a fault takes a log-normal time of median iopfTailMedianNs and sigma
   * iopfTailSigma instead (clamped the same way). 0 for a single log-normal. VT-d's measured
   * histogram has such a tail (1.5% of faults above 100 us).
   */
  iopfTailProb: number;
  iopfTailMedianNs: number;
  iopfTailSigma: number;
  /** The CPU fault this profile's IO page fault is compared with (3-80x). */
  cpuFaultNs: number;
  /** PASID width the IOMMU supports (SMMUv3 IDR1.SSIDSIZE, VT-d ECAP.PSS + 1, AMD PASmax + 1), bits. */
  pasidBits: number;
  /** Width of domain ids: ASIDs (SMMUv3), domain ids (VT-d DID, AMD DTE), bits. */
  domainIdBits: number;
  /** Input address width of a DMA domain's IOVA space (the aperture), bits. */
  iovaBits: number;
  /** Whether a device probed without saying otherwise has PCIe ATS (an ATC). */
  atsDefault: boolean;
  /** Where each figure above comes from: a CALIBRATION.md row, a kernel constant, or "assumption: why". */
  figureSources: Record<IommuProfileFigure, string>;
}

/** The fields of an IommuProfile that are figures (everything but its name, description and sources). */
export type IommuProfileFigure = Exclude<
  keyof IommuProfile,
  'name' | 'description' | 'sources' | 'figureSources'
>;

/**
 * The address space a translation walks: an SVA bond's mm (by PASID) or a DMA domain's IOVA
 * page table. The IOPF pipeline resolves faults on the mm.
 */
export interface SvaBinding {
  readonly pasid: number;
  readonly mm: MmStruct;
}
