import type { Device } from '../base/device';
import type { MmStruct } from '../mm/mm-struct';

/**
 * UacceSvaHandle - one bond of a device to an address space (struct iommu_sva as uacce uses it):
 * the PASID the device tags its DMA with, and how to drop the bond.
 */
export interface UacceSvaHandle {
  /** The bond's PASID (iommu_sva_get_pasid); IOMMU_PASID_INVALID makes uacce's open fail -ENODEV. */
  readonly pasid: number;
  /** iommu_sva_unbind_device: drop this bond. Called exactly once per successful bind. */
  unbind(): void;
}

/**
 * UacceSvaOps - what uacce needs from the IOMMU's SVA support. The IOMMU core supplies the real
 * one (iommu_sva_bind_device and friends); tests and kernels without an IOMMU model use
 * FakeUacceSvaOps.
 */
export interface UacceSvaOps {
  /**
   * bind - iommu_sva_bind_device(parent, mm): bind `mm` to the device, or take another reference
   * on the existing bond of that (device, mm) pair (same PASID).
   *
   * Returns the handle, released by handle.unbind(). Throws KernelError carrying the bind's errno
   * (-ENODEV without SVA support, -ENOSPC without a free PASID, ...); uacce's open() fails with it.
   */
  bind(parent: Device, mm: MmStruct): UacceSvaHandle;
  /**
   * supported - can `parent` do SVA (and the IO page faults it needs)? uacceAlloc asks this to
   * negotiate UACCE_DEV_SVA (the IOMMU_DEV_FEAT_IOPF + IOMMU_DEV_FEAT_SVA enables of v5.13-v6.x).
   */
  supported(parent: Device): boolean;
}
