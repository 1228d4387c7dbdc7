/**
 * IOMMU groups (struct iommu_group): the smallest set of devices the IOMMU can isolate from each
 * other. Devices of a group share one default DMA domain and one PASID table.
 */
import type { IommuAttachHandle, IommuDmaDomain } from './domain';
import type { Iommu } from './iommu';
import type { IommuDevice } from './iommu-device';

/**
 * IommuGroup - struct iommu_group. Made by Iommu.iommuGroupAlloc (with its default DMA domain);
 * freed when its last device is released (Iommu.iommuReleaseDevice).
 */
export class IommuGroup {
  /** Devices in the group, in probe order. */
  readonly devices: IommuDevice[] = [];
  /**
   * group->pasid_array: the domain attached at each PASID (an SVA bond, or a domain a driver
   * attached with iommuAttachDevicePasid). PASID 0 is never here: it is `domain`.
   */
  readonly pasidArray = new Map<number, IommuAttachHandle>();

  constructor(
    /** The IOMMU the group's devices sit behind. */
    readonly iommu: Iommu,
    /** Group number (iommu_group_id), as /sys/kernel/iommu_groups/<id> names it. */
    readonly id: number,
    /** The default domain every device of the group translates PASID-less requests through. */
    readonly domain: IommuDmaDomain,
  ) {}
}
