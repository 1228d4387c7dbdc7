export * from './device';
export * from './sysfs';
export * from './device-class';
export * from './devtmpfs';
export * from './chrdev';
export * from './device-model';
export * from './misc';
export * from './device-core';
