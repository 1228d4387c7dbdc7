/**
 * @svasim/experiments - scenario files, the experiment runner, metrics and reports
 * (docs/experiments.md).
 */
export * from './scenario';
export * from './metrics';
export * from './runner';
export * from './report';
export * from './registry';
export * from './strategies';
