/**
 * uacce - Unified/User-space-access Accelerator Framework (drivers/misc/uacce): accelerators
 * expose queues to user space as /dev/<name>-<id>; a queue is opened, mapped (MMIO doorbells,
 * DUS rings), started and put, and works on the process's own addresses through SVA.
 */
export * from './uapi';
export * from './constants';
export * from './ops';
export * from './queue';
export * from './device';
export * from './sva-ops';
export * from './core';
export * from './fops';
export * from './sysfs';
export * from './uacce';
export * from './fake-sva';
export * from './tokens';
