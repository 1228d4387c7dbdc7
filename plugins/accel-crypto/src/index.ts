/**
 * @svasim/accel-crypto - a HiSilicon SEC2-like crypto accelerator (cbc/ctr/xts/gcm AES, SHA-1/256/512,
 * HMAC-SHA256) behind uacce with SVA, computing real results with node:crypto.
 */
export * from './algorithms';
export * from './engine';
export * from './timing';
export * from './device';
export * from './plugin';
