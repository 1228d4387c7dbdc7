/**
 * The uacce user-space ABI (include/uapi/misc/uacce/uacce.h): ioctl numbers, device flags and
 * the queue file region types that select what an mmap of a queue fd maps.
 */
import { _IO } from '../uapi/ioctl';

/** UACCE_CMD_START_Q - start the queue of this fd (0x5700); undone by UACCE_CMD_PUT_Q or close. */
export const UACCE_CMD_START_Q = _IO('W', 0);
/** UACCE_CMD_PUT_Q - stop the queue of this fd (0x5701); see UacceCoreOptions.putQ for what else it does. */
export const UACCE_CMD_PUT_Q = _IO('W', 1);

/**
 * UACCE_DEV_SVA - the device shares the CPU's page tables through the IOMMU (Shared Virtual
 * Addressing): open() binds the caller's mm and the queue gets its PASID. BIT(0).
 */
export const UACCE_DEV_SVA = 1 << 0;

/** UACCE_QFRT_MMIO - region 0: device MMIO (doorbells); mmap offset 0. enum uacce_qfrt. */
export const UACCE_QFRT_MMIO = 0;
/** UACCE_QFRT_DUS - region 1: device user share (queue rings in RAM); mmap offset PAGE_SIZE. */
export const UACCE_QFRT_DUS = 1;
