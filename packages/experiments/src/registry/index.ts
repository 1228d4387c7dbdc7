export * from './default-registry';
