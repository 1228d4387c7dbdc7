export * from './mm-model';
export * from './mm-commands';
export * from './pin-model';
export * from './pin-commands';
