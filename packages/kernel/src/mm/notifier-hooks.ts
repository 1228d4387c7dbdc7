import type { MmStruct } from './mm-struct';

/**
 * MMU notifier events (enum mmu_notifier_event), raised by every page-table change so secondary
 * MMUs (IOMMU SVA domains, HMM mirrors, ODP) drop their copies.
 */
export const MMU_NOTIFY_UNMAP = 0;
export const MMU_NOTIFY_CLEAR = 1;
export const MMU_NOTIFY_PROTECTION_VMA = 2;
export const MMU_NOTIFY_PROTECTION_PAGE = 3;
export const MMU_NOTIFY_SOFT_DIRTY = 4;
export const MMU_NOTIFY_RELEASE = 5;
export const MMU_NOTIFY_MIGRATE = 6;
export const MMU_NOTIFY_EXCLUSIVE = 7;
export const MMU_NOTIFY_EVENT_NAMES = [
  'UNMAP',
  'CLEAR',
  'PROTECTION_VMA',
  'PROTECTION_PAGE',
  'SOFT_DIRTY',
  'RELEASE',
  'MIGRATE',
  'EXCLUSIVE',
] as const;

/** MmuNotifierRange - struct mmu_notifier_range. */
export interface MmuNotifierRange {
  mm: MmStruct;
  start: number;
  end: number;
  event: number;
  /** MMU_NOTIFIER_RANGE_BLOCKABLE. */
  flags: number;
  /** For MIGRATE and EXCLUSIVE: the pgmap owner whose own notifier may skip the event. */
  owner: unknown;
}

/**
 * MmNotifierHooks - how mm reaches the MMU-notifier layer above it without importing upward.
 * The mmu-notifier subsystem installs one per mm that has subscriptions; mm calls it around
 * every change of a present entry, exactly as mmu_notifier_invalidate_range_start/end and
 * arch_invalidate_secondary_tlbs are called in the kernel.
 */
export interface MmNotifierHooks {
  invalidateRangeStart(range: MmuNotifierRange): number;
  invalidateRangeEnd(range: MmuNotifierRange): void;
  /** exit_mmap / unregister: secondary MMUs must drop every translation of this mm. */
  release(mm: MmStruct): void;
}
