import type { AddressSpace } from './address-space';
import type { VmAreaStruct } from './vma';

/**
 * MmapFile - what mm needs of an open file it maps (a device fd, a memfd): its access mode and
 * its mmap method. The fs layer adapts its File to this, so mm never imports fs.
 */
export interface MmapFile {
  /** Opened with read access (FMODE_READ). */
  readonly readable: boolean;
  /** Opened with write access (FMODE_WRITE). */
  readonly writable: boolean;
  /** The driver's mmap: set up `vma` (flags, vmOps, pfns); 0 or -errno. */
  mmap(vma: VmAreaStruct): number;
  /** The file's address_space: VMAs mapping it are tracked there (for unmapMappingRange). */
  readonly mapping?: AddressSpace;
  /** The VMA takes a reference on the file (get_file); released by put. */
  get(): void;
  put(): void;
}
