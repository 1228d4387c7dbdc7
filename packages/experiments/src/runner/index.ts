/**
 * The runner: strategies x seeds on fresh kernels, in worker threads or in process, with the
 * workload and background-activity seams and their built-in implementations.
 */
export * from './activity';
export * from './registry';
export * from './registry-module';
export * from './workloads';
export * from './background';
export * from './trace-capture';
export * from './types';
export * from './run-one';
export * from './summary';
export * from './progress';
export * from './pool';
export * from './experiment';
