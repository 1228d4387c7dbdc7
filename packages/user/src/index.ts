/**
 * @svasim/user - the user-space accelerator library (UADK-like, API.md): contexts on uacce
 * queues, sync and async requests, the pin-strategy hook and the hugetlb block pool.
 */
export * from './context';
export * from './block-pool';
export * from './pin-hook';
export * from './kernel-of';
