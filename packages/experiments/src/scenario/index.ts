/**
 * Scenario files: schema, units, loader with line-accurate errors, semantic checks, JSON Schema.
 */
export * from './units';
export * from './fields';
export * from './machine-schema';
export * from './workload-schema';
export * from './resident-schema';
export * from './crypto-params';
export * from './background-schema';
export * from './scenario-schema';
export * from './errors';
export * from './catalog';
export * from './footprint';
export * from './kernel-options';
export * from './semantic';
export * from './load';
export * from './header';
export * from './json-schema';
