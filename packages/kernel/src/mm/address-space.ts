import type { VmAreaStruct } from './vma';

/**
 * AddressSpace - the VMAs mapping one file (struct address_space's i_mmap), so a driver can zap
 * every user mapping of its file at once (unmapMappingRange), as uacce_remove does.
 * mmap adds VMAs of files that expose one; unmap, exit and split keep it current.
 */
export class AddressSpace {
  readonly vmas = new Set<VmAreaStruct>();
}
