/**
 * VfioStrategy - the classic pinned DMA mapping, no SVA: what user-space drivers on VFIO do
 * (DPDK, SPDK, QEMU) and what the uacce_ctrl review held up against "SVA + pin". prepare maps the
 * buffer for the device with IOVA == VA through the type1 backend (VfioType1: FOLL_LONGTERM pins,
 * RLIMIT_MEMLOCK charged to locked_vm, iommu_map into the device's DMA domain); release unmaps
 * and unpins. Requests keep carrying the buffer's virtual address, which is its IOVA, so
 * @svasim/user changes nothing in them; the accelerator must work without SVA (uacce flags
 * without UACCE_DEV_SVA, VirtualAccelerator config `sva: false`), where it translates through
 * the DMA domain and a page that was not mapped aborts the request (-EFAULT) instead of faulting.
 *
 * The mapping is read-write when every VMA of the range is writable, else read-only (the device
 * may only read a read-only buffer, and FOLL_WRITE would refuse it).
 *
 * Ranges are taken as VFIO takes them: page-aligned address and length, or EINVAL; a second
 * prepare of an overlapping range is EEXIST (VFIO mappings do not nest); release of a range that
 * holds no mapping unmaps nothing and succeeds (the ioctl reports 0 bytes: see unmapDma).
 */
import { PAGE_SIZE, VM_WRITE, type MmStruct, type PinStrategy, type PinTarget } from '@svasim/kernel';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_MAP_DMA_SYSCALL,
  VFIO_UNMAP_DMA_SYSCALL,
  type VfioType1,
} from './vfio-type1';

/** The strategy name (API.md): the package name without `pin-`. */
export const VFIO_STRATEGY_NAME = 'vfio';

/** Whether every VMA over [addr, addr + len) is writable (holes: true, the map reports them). */
function writable(mm: MmStruct, addr: number, len: number): boolean {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len <= 0) return true;
  for (let cursor = addr; cursor < addr + len;) {
    const vma = mm.findVma(cursor);
    if (!vma || vma.start > cursor) return true;
    if (!(vma.flags & VM_WRITE)) return false;
    cursor = vma.end;
  }
  return true;
}

/**
 * VfioStrategy - the 'vfio' strategy of one kernel (user-space side); `type1` is its kernel part.
 * Realizable: realize() registers the type1 syscalls.
 */
export class VfioStrategy implements PinStrategy {
  readonly name = VFIO_STRATEGY_NAME;
  readonly addressing = 'iova' as const;

  constructor(
    /** The kernel part: the DMA mapping table and its syscalls. */
    readonly type1: VfioType1,
  ) {}

  /** realize - register the type1 syscalls. Returns 0 or -EEXIST. */
  realize(): number {
    return this.type1.realize();
  }

  /** unrealize - remove them. */
  unrealize(): void {
    this.type1.unrealize();
  }

  /**
   * prepare - VFIO_IOMMU_MAP_DMA of [@addr, @addr + @len) at IOVA @addr for @target's device.
   * Throws SyscallError (syscall 'vfio_iommu_map_dma'): EINVAL (zero, unaligned or wrapping
   * range), EEXIST (overlaps a mapping), EFAULT (unmapped memory, or a read-only page asked
   * writable), ENOMEM (locked_vm would exceed RLIMIT_MEMLOCK without CAP_IPC_LOCK; also when the
   * pin cannot migrate a page out of CMA / ZONE_MOVABLE), ENODEV (no device for @target).
   * Nothing is left pinned or mapped by a failed prepare. Released by release() or exit.
   */
  prepare(target: PinTarget, addr: number, len: number): void {
    const flags =
      VFIO_DMA_MAP_FLAG_READ | (writable(target.proc.mm, addr, len) ? VFIO_DMA_MAP_FLAG_WRITE : 0);
    target.proc.syscall(VFIO_MAP_DMA_SYSCALL, target.device, addr, addr, len, flags);
  }

  /**
   * release - VFIO_IOMMU_UNMAP_DMA of [@addr, @addr + @len): every mapping inside it is unmapped
   * and unpinned. Throws SyscallError (syscall 'vfio_iommu_unmap_dma') EINVAL for a zero,
   * unaligned or wrapping range or one that cuts a mapping in two, ENODEV for no device.
   */
  release(target: PinTarget, addr: number, len: number): void {
    this.unmapDma(target, addr, len);
  }

  /** unmapDma - release() returning the bytes unmapped, as the ioctl reports them (0: nothing was mapped). */
  unmapDma(target: PinTarget, iova: number, size: number): number {
    return target.proc.syscall(VFIO_UNMAP_DMA_SYSCALL, target.device, iova, size);
  }

  /** mappedBytes - bytes @target's process has mapped for DMA (on every device). */
  mappedBytes(target: Pick<PinTarget, 'proc'>): number {
    let pages = 0;
    for (const d of this.type1.mappings(target.proc.mm)) pages += d.npages;
    return pages * PAGE_SIZE;
  }
}
