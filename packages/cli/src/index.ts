export * from './demo';
export * from './cli';
export * from './io';
export * from './default-command';
export * from './new-plugin';
