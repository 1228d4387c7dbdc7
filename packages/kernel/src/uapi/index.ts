export * from './errno';
export * from './mman';
export * from './fcntl';
export * from './ioctl';
export * from './capability';
