/**
 * A device behind the IOMMU (the kernel's struct dev_iommu hanging off struct device): what the
 * IOMMU knows about it (group, PASID width, ATS and its ATC, SVA support) and its translation
 * statistics.
 */
import type { Device } from '../base/device';
import type { Iommu } from './iommu';
import type { IommuGroup } from './iommu-group';
import { SetAssocTlb } from './tlb-cache';

/** Translation counters of one device. */
export interface IommuDeviceStats {
  /** iommuTranslate calls. */
  translations: number;
  /** Answered by the device's own ATC. */
  atcHits: number;
  /** Answered by the IOMMU's IOTLB. */
  iotlbHits: number;
  /** Page-table walks (IOTLB misses). */
  walks: number;
  /** Translations that need a page request (TRANSLATION_FAULT). */
  faults: number;
  /** Translations refused outright (TRANSLATION_ABORT). */
  aborts: number;
  /** Simulated time of every translation, ns. */
  translationNs: number;
  /** ATC invalidation requests this device received. */
  atcInvalidations: number;
}

/** What a device is capable of, fixed at probe time. */
export interface IommuDeviceCaps {
  /** PASID width the device and IOMMU both support (0: no PASID). */
  pasidBits: number;
  /** PCIe ATS: the device has an ATC. */
  ats: boolean;
  /** SVA (and the IO page faults it needs) can be enabled. */
  sva: boolean;
  /** DMA mask width, bits. */
  dmaMaskBits: number;
}

const devIommuOf = new WeakMap<Device, IommuDevice>();

/**
 * IommuDevice - a device behind the IOMMU (dev->iommu). Made by Iommu.iommuProbeDevice, released
 * by Iommu.iommuReleaseDevice.
 */
export class IommuDevice {
  /** The device name (dev_name). */
  readonly name: string;
  /** PASID width, bits (0: the device cannot tag requests with a PASID). */
  readonly pasidBits: number;
  /** dev->iommu->max_pasids: PASIDs are 0 .. maxPasids - 1 (0 when there is no PASID support). */
  readonly maxPasids: number;
  /** PCIe ATS capable and enabled: `atc` caches translations on the device. */
  readonly ats: boolean;
  /** The device's ATC (device TLB), sized by the profile; null without ATS. */
  readonly atc: SetAssocTlb | null;
  /** SVA supported (iommuSvaBindDevice answers -ENODEV otherwise). */
  readonly svaSupported: boolean;
  /** DMA mask width: the DMA API allocates IOVAs below 2^dmaMaskBits. */
  readonly dmaMaskBits: number;
  /** Simulated time of the last iommuTranslate (ATC, IOTLB and walk as taken), ns. */
  lastTranslationNs = 0;
  /** Page-table levels read by the last translation's walk (0 when a TLB answered). */
  lastTranslationLevels = 0;
  /**
   * dev->iommu->fault_param: a slot for the IO page fault pipeline's per-device state (its queue
   * of pending page requests). The IOMMU core never reads it.
   */
  faultParam: unknown = null;
  /** Set by iommuReleaseDevice. */
  released = false;
  readonly stats: IommuDeviceStats = {
    translations: 0,
    atcHits: 0,
    iotlbHits: 0,
    walks: 0,
    faults: 0,
    aborts: 0,
    translationNs: 0,
    atcInvalidations: 0,
  };

  constructor(
    /** The IOMMU it sits behind. */
    readonly iommu: Iommu,
    /** The device model object it describes. */
    readonly dev: Device,
    /** Its group. */
    readonly group: IommuGroup,
    caps: IommuDeviceCaps,
  ) {
    this.name = dev.name;
    this.pasidBits = caps.pasidBits;
    this.maxPasids = caps.pasidBits > 0 ? 2 ** caps.pasidBits : 0;
    this.ats = caps.ats;
    this.atc = caps.ats ? new SetAssocTlb(iommu.profile.atcEntries, iommu.profile.atcWays) : null;
    this.svaSupported = caps.sva && this.maxPasids > 0;
    this.dmaMaskBits = caps.dmaMaskBits;
  }
}

/**
 * devIommu - the IommuDevice of @dev (dev->iommu), or null when no IOMMU probed it. An
 * IommuDevice is returned as is.
 */
export function devIommu(dev: Device | IommuDevice): IommuDevice | null {
  if (dev instanceof IommuDevice) return dev;
  return devIommuOf.get(dev) ?? null;
}

/** @internal link or unlink dev->iommu (Iommu.iommuProbeDevice / iommuReleaseDevice). */
export function setDevIommu(dev: Device, idev: IommuDevice | null): void {
  if (idev) devIommuOf.set(dev, idev);
  else devIommuOf.delete(dev);
}
