export * from './default-registry';
export * from './memcpy-device';
export * from './registry-module';
