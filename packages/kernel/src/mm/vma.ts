import type { MmStruct } from './mm-struct';

/** VmFault - what a vm_operations_struct.fault handler receives. */
export interface VmFault {
  vma: VmAreaStruct;
  address: number;
  /** FAULT_FLAG_* bits. */
  flags: number;
  /** Page offset of the fault inside the mapped object. */
  pgoff: number;
}

/**
 * VmOperations - vm_operations_struct: all members optional; the fault path answers as the
 * kernel does when one is missing (no .fault on a PFN mapping means SIGBUS).
 */
export interface VmOperations {
  /** A VMA was copied (split or fork). */
  open?(vma: VmAreaStruct): void;
  /** The VMA is going away (munmap, exit): frees whatever the mapping holds (uacce: the region slot). */
  close?(vma: VmAreaStruct): void;
  /** Resolve a fault by installing a pfn; returns VM_FAULT_* bits (0 = handled). */
  fault?(vmf: VmFault): number;
  /** mremap of this VMA; a negative errno refuses it. */
  mremap?(vma: VmAreaStruct): number;
  /** Name shown in /proc/PID/maps. */
  name?(vma: VmAreaStruct): string;
}

/**
 * VmAreaStruct - one VMA: [start, end) with flags, the object it maps and its page offset there.
 * Created by mmap (released by munmap or exit); split by munmap/mprotect/madvise/mlock.
 */
export class VmAreaStruct {
  /** Anonymous memory's reverse-map group (an anon_vma id), 0 until the first anonymous page. */
  anonVma = 0;
  /** The file mapped (device fd, shmem), or null for private anonymous memory. */
  file: unknown = null;
  /** Shared-memory object id backing MAP_SHARED|MAP_ANONYMOUS or a memfd, 0 when none. */
  shmem = 0;
  /** vm_ops of a device or special mapping. */
  vmOps: VmOperations | null = null;
  /** Driver data (vm_private_data). */
  privateData: unknown = null;
  /** Huge page size in bytes for VM_HUGETLB mappings (0 otherwise). */
  hugeSize = 0;
  /**
   * Private hugetlb reservations still unconsumed, by huge page number (address / hugeSize);
   * shared with the halves of a split, null when the mapping reserved nothing (MAP_NORESERVE,
   * or a fork child, which the kernel never gives reservations).
   */
  hugeResv: Set<number> | null = null;

  constructor(
    /** The address space this VMA belongs to. */
    readonly mm: MmStruct,
    /** First byte (page aligned). */
    public start: number,
    /** One past the last byte (page aligned). */
    public end: number,
    /** VM_* flags. */
    public flags: number,
    /** Offset in pages of `start` inside the mapped object (vm_pgoff). */
    public pgoff: number,
  ) {}

  /** Length in bytes. */
  get size(): number {
    return this.end - this.start;
  }

  /** True if `addr` lies inside this VMA. */
  contains(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }

  /** True for anonymous memory not backed by a file or shared object. */
  isAnonymous(): boolean {
    return this.file === null && this.shmem === 0 && this.vmOps === null;
  }
}
