export * from './mm-model';
export * from './mm-commands';
