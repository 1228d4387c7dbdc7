export * from './cred';
export * from './rlimit';
export * from './pid';
export * from './current';
export * from './syscall-table';
