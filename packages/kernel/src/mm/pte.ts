/**
 * Page-table entry bits. An entry is two 32-bit words: `lo` holds a pfn (leaf), a child table
 * number (upper levels), or a swap slot (swap entries); `hi` holds these bits. Bit values are
 * svasim's own; the names follow arch/x86/include/asm/pgtable_types.h and the generic swap/
 * migration entry helpers.
 */
export const PTE_PRESENT = 1 << 0;
export const PTE_WRITE = 1 << 1;
export const PTE_USER = 1 << 2;
export const PTE_DIRTY = 1 << 3;
/** Accessed ("young"): set by every CPU access, cleared by reclaim's aging. */
export const PTE_YOUNG = 1 << 4;
/** pte_special: maps the zero page or a PFN without a struct page to account. */
export const PTE_SPECIAL = 1 << 5;
/** PROT_NONE: present for the kernel but not accessible (mprotect(PROT_NONE) or a NUMA hint). */
export const PTE_PROTNONE = 1 << 6;
/** Leaf at PMD (2 MiB) or PUD (1 GiB) level. */
export const PTE_HUGE = 1 << 7;
/** Upper-level entry pointing at a child table. */
export const PTE_TABLE = 1 << 8;
/** Not present: `lo` is a swap slot. */
export const PTE_SWAP = 1 << 9;
/** Not present: `lo` is the pfn of a page under migration; CPU faults wait for it. */
export const PTE_MIGRATION = 1 << 10;
/** Not present: `lo` is a device-private pfn (HMM). */
export const PTE_DEVICE_PRIVATE = 1 << 11;
/** Not present for the CPU: `lo` is a page a device holds exclusively for atomics. */
export const PTE_DEVICE_EXCLUSIVE = 1 << 12;
/** A migration entry that was writable (restored writable). */
export const PTE_MIGRATION_WRITE = 1 << 13;
/** The mapping was NUMA-hinted (PROT_NONE set by NUMA balancing, not by mprotect). */
export const PTE_NUMA = 1 << 14;
/** The mapped page was anon-exclusive when the non-present entry was made. */
export const PTE_SWP_EXCLUSIVE = 1 << 15;

/** Non-present entries that still refer to something (swap, migration, device). */
export const PTE_NONPRESENT_MASK = PTE_SWAP | PTE_MIGRATION | PTE_DEVICE_PRIVATE | PTE_DEVICE_EXCLUSIVE;

/** pteNone - the entry maps nothing at all. */
export function pteNone(hi: number): boolean {
  return hi === 0;
}

/** pteAccessible - a CPU access of this kind may use the entry without faulting. */
export function pteAccessible(hi: number, write: boolean): boolean {
  if ((hi & (PTE_PRESENT | PTE_PROTNONE)) !== PTE_PRESENT) return false;
  return !write || (hi & PTE_WRITE) !== 0;
}
