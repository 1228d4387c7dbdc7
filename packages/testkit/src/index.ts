export * from './memcpy-accel';
export * from './fuzz';
