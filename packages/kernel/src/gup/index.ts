/**
 * gup - get_user_pages / pin_user_pages, the FOLL_* flags, GUP's reference bookkeeping, the
 * FOLL_LONGTERM rules and their costs (mm/gup.c); the range registry pinning interfaces share
 * (pinned-ranges.ts) and the per-page count of device DMA in flight (dma-inflight.ts).
 */
export * from './foll-flags';
export * from './gup-config';
export * from './pinnable';
export * from './pin-tracker';
export {
  LONGTERM_MAX_PASSES,
  memallocPinSave,
  memallocPinRestore,
  longtermNewFolio,
  checkAndMigrateMovablePages,
  gupLongtermLocked,
} from './longterm';
export * from './gup';
export * from './dma-inflight';
export * from './pinned-ranges';
