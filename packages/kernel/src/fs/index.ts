export * from './inode';
export * from './file';
export * from './fdtable';
export * from './permission';
export * from './vfs';
export * from './anon-inodes';
export * from './struct-layout';
export * from './gup-test';
