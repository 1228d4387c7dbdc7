/**
 * @svasim/kernel - the simulated kernel's public surface (API.md).
 */
export * from './uapi';
export * from './sim';
export * from './mm';
export * from './gup';
export * from './mmu-notifier';
export * from './hmm';
export * from './iommu';
export * from './uacce';
export * from './fs';
export * from './base';
export * from './proc';
export * from './plugin';
export * from './accel';
