export * from './fuzz-helpers';
export * from './mm-model';
export * from './mm-commands';
export * from './pin-model';
export * from './pin-commands';
export * from './device-model';
export * from './device-commands';
