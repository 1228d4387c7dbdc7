export * from './memcpy-accel';
export * from './fuzz';
export * from './conformance';
export * from './strategies';
