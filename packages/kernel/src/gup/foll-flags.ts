/**
 * FOLL_* flags of get_user_pages and pin_user_pages, with the kernel's values.
 *
 * External flags (include/linux/mm_types.h, enum foll_flags) are what callers pass; internal
 * flags (mm/internal.h) are set by the GUP entry points themselves, and is_valid_gup_args refuses
 * them from callers.
 */

/** Check that the pages are writable (a write fault breaks COW first). */
export const FOLL_WRITE = 1 << 0;
/** Take a plain reference on each page (released with gupPutFolio(..., FOLL_GET), put_page). */
export const FOLL_GET = 1 << 1;
/** Core dumping: return -EFAULT for holes and the zero page instead of faulting them in. */
export const FOLL_DUMP = 1 << 2;
/** Ignore VMA protections (ptrace): writes to private R/O mappings go through COW. */
export const FOLL_FORCE = 1 << 3;
/** Do not wait for I/O in faults (svasim faults never wait for I/O, so this only marks the call). */
export const FOLL_NOWAIT = 1 << 4;
/** Do not fault in missing pages: a missing page ends the walk with -EFAULT. */
export const FOLL_NOFAULT = 1 << 5;
/** Return -EHWPOISON instead of -EFAULT for a poisoned page. */
export const FOLL_HWPOISON = 1 << 6;
/** Only anonymous VMAs: anything else is -EFAULT. */
export const FOLL_ANON = 1 << 7;
/** The pin may be held indefinitely: the pages must be pinnable (not CMA, not ZONE_MOVABLE). */
export const FOLL_LONGTERM = 1 << 8;
/** Split a PMD-mapped THP before following it (-EOPNOTSUPP on hugetlb). */
export const FOLL_SPLIT_PMD = 1 << 9;
/** Allow PCI peer-to-peer DMA pages. */
export const FOLL_PCI_P2PDMA = 1 << 10;
/** Let non-fatal signals interrupt faults. */
export const FOLL_INTERRUPTIBLE = 1 << 11;
/** Take NUMA hinting faults on PROT_NONE-mapped pages instead of following them. */
export const FOLL_HONOR_NUMA_FAULT = 1 << 12;

/** Internal: mark the page accessed (and dirty for writes). */
export const FOLL_TOUCH = 1 << 16;
/** Internal: a retry after the fault path dropped the mmap lock. */
export const FOLL_TRIED = 1 << 17;
/** Internal: the mm is not the caller's own (faults get FAULT_FLAG_REMOTE). */
export const FOLL_REMOTE = 1 << 18;
/** Internal: pin (released with unpin_user_page*), counted apart from plain references. */
export const FOLL_PIN = 1 << 19;
/** Internal: GUP-fast only, never fall back to the slow path. */
export const FOLL_FAST_ONLY = 1 << 20;
/** Internal: the slow path may drop the mmap lock. */
export const FOLL_UNLOCKABLE = 1 << 21;
/** Internal: VMA checks compatible with MADV_POPULATE_(READ|WRITE). */
export const FOLL_MADV_POPULATE = 1 << 22;

/** INTERNAL_GUP_FLAGS (mm/internal.h): what is_valid_gup_args refuses from callers. */
export const INTERNAL_GUP_FLAGS =
  FOLL_TOUCH | FOLL_TRIED | FOLL_REMOTE | FOLL_PIN | FOLL_FAST_ONLY | FOLL_UNLOCKABLE | FOLL_MADV_POPULATE;

/** The flags GUP-fast accepts (gup_fast_fallback); anything else is -EINVAL there. */
export const GUP_FAST_FLAGS =
  FOLL_WRITE |
  FOLL_LONGTERM |
  FOLL_FORCE |
  FOLL_PIN |
  FOLL_GET |
  FOLL_FAST_ONLY |
  FOLL_NOFAULT |
  FOLL_PCI_P2PDMA |
  FOLL_HONOR_NUMA_FAULT;

const NAMES: ReadonlyArray<[number, string]> = [
  [FOLL_WRITE, 'WRITE'],
  [FOLL_GET, 'GET'],
  [FOLL_DUMP, 'DUMP'],
  [FOLL_FORCE, 'FORCE'],
  [FOLL_NOWAIT, 'NOWAIT'],
  [FOLL_NOFAULT, 'NOFAULT'],
  [FOLL_HWPOISON, 'HWPOISON'],
  [FOLL_ANON, 'ANON'],
  [FOLL_LONGTERM, 'LONGTERM'],
  [FOLL_SPLIT_PMD, 'SPLIT_PMD'],
  [FOLL_PCI_P2PDMA, 'PCI_P2PDMA'],
  [FOLL_INTERRUPTIBLE, 'INTERRUPTIBLE'],
  [FOLL_HONOR_NUMA_FAULT, 'HONOR_NUMA_FAULT'],
  [FOLL_TOUCH, 'TOUCH'],
  [FOLL_TRIED, 'TRIED'],
  [FOLL_REMOTE, 'REMOTE'],
  [FOLL_PIN, 'PIN'],
  [FOLL_FAST_ONLY, 'FAST_ONLY'],
  [FOLL_UNLOCKABLE, 'UNLOCKABLE'],
  [FOLL_MADV_POPULATE, 'MADV_POPULATE'],
];

/** follFlagNames - the FOLL_* names set in `flags`, joined by '|' (for messages). */
export function follFlagNames(flags: number): string {
  const out: string[] = [];
  for (const [bit, name] of NAMES) if (flags & bit) out.push(name);
  return out.join('|') || '0';
}
