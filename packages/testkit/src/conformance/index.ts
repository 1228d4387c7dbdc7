/**
 * The accelerator conformance suite: what every accelerator plugin must do under svasim (see
 * docs/plugin-authoring.md). describeAcceleratorConformance for a jest test file,
 * runAcceleratorConformance for a programmatic run.
 */
export * from './types';
export * from './failure';
export { CONFORMANCE_DEFAULT_MEMORY, sampleBytes } from './harness';
export { conformanceChecks, servesCheckName, type ConformanceCheckDef } from './checks';
export * from './run';
export * from './describe';
export * from './memcpy-target';
