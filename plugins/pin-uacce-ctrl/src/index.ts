/**
 * @svasim/pin-uacce-ctrl - the /dev/uacce_ctrl misc device of seeds/002 with its review applied,
 * and the 'uacce-ctrl' pin strategy (README.md).
 */
export * from './uapi';
export * from './strategy';
export * from './uacce-ctrl';
export * from './plugin';
