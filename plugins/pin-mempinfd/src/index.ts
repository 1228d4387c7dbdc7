/**
 * @svasim/pin-mempinfd - the mempinfd() syscall of seeds/001 with its review applied, and the
 * 'mempinfd' pin strategy (README.md).
 */
export * from './uapi';
export * from './strategy';
export * from './mempinfd';
export * from './plugin';
