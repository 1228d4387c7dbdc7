/**
 * Page flags (include/linux/page-flags.h, the subset svasim models), kept in PageFrames.flags.
 * Bits, not an enum: several are set at once.
 */
export const PG_locked = 1 << 0;
/** A free block head in the buddy allocator (the kernel's PageBuddy page type). */
export const PG_buddy = 1 << 1;
/** Head of a compound page (folio of order >= 1); the order is in PageFrames.order. */
export const PG_head = 1 << 2;
/** Tail page of a compound page; PageFrames.mapping holds the head pfn + 1. */
export const PG_tail = 1 << 3;
/** Anonymous page (folio_test_anon); mapping is its anon_vma id. */
export const PG_anon = 1 << 4;
/** PageAnonExclusive: mapped by exactly one mm, so a write may reuse it without COW. */
export const PG_anon_exclusive = 1 << 5;
export const PG_dirty = 1 << 6;
export const PG_referenced = 1 << 7;
export const PG_lru = 1 << 8;
export const PG_mlocked = 1 << 9;
export const PG_unevictable = 1 << 10;
export const PG_swapbacked = 1 << 11;
export const PG_swapcache = 1 << 12;
/** Never given to the buddy allocator (memmap, kernel image, memory holes). */
export const PG_reserved = 1 << 13;
/** Belongs to a hugetlb pool (free or in use). */
export const PG_hugetlb = 1 << 14;
/** Isolated from the LRU for migration or compaction. */
export const PG_isolated = 1 << 15;
/** A shmem (tmpfs) page: mapping is the shmem object id, index the page offset. */
export const PG_shmem = 1 << 16;
/** ZONE_DEVICE private memory (HMM). */
export const PG_device_private = 1 << 17;
/** Allocated for the kernel itself (slab, page tables): never migrated. */
export const PG_slab = 1 << 18;
/** Offline (memory hot-remove took it). */
export const PG_offline = 1 << 19;
export const PG_hwpoison = 1 << 20;
/** The shared zero page. */
export const PG_zero = 1 << 21;
/** Under writeback or being migrated (a migration entry points at it). */
export const PG_migrating = 1 << 22;

/** Human-readable flag names, for dump_page-style output. */
export const PAGE_FLAG_NAMES: ReadonlyArray<[number, string]> = [
  [PG_locked, 'locked'],
  [PG_buddy, 'buddy'],
  [PG_head, 'head'],
  [PG_tail, 'tail'],
  [PG_anon, 'anon'],
  [PG_anon_exclusive, 'anon_exclusive'],
  [PG_dirty, 'dirty'],
  [PG_referenced, 'referenced'],
  [PG_lru, 'lru'],
  [PG_mlocked, 'mlocked'],
  [PG_unevictable, 'unevictable'],
  [PG_swapbacked, 'swapbacked'],
  [PG_swapcache, 'swapcache'],
  [PG_reserved, 'reserved'],
  [PG_hugetlb, 'hugetlb'],
  [PG_isolated, 'isolated'],
  [PG_shmem, 'shmem'],
  [PG_device_private, 'device_private'],
  [PG_slab, 'slab'],
  [PG_offline, 'offline'],
  [PG_hwpoison, 'hwpoison'],
  [PG_zero, 'zero'],
  [PG_migrating, 'migrating'],
];

/** pageFlagNames - the names of the flags set in `flags`, joined by '|'. */
export function pageFlagNames(flags: number): string {
  const out: string[] = [];
  for (const [bit, name] of PAGE_FLAG_NAMES) if (flags & bit) out.push(name);
  return out.join('|');
}
