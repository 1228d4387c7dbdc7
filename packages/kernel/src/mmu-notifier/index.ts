/**
 * mmu-notifier - MMU notifiers (include/linux/mmu_notifier.h, mm/mmu_notifier.c): how secondary
 * MMUs (IOMMU SVA domains, HMM mirrors, RDMA ODP, device TLBs) learn that an mm's page tables
 * change. See docs/mmu-notifier.md.
 */
export * from './types';
export * from './subscriptions';
export * from './mmu-notifier';
export * from './interval-notifier';
