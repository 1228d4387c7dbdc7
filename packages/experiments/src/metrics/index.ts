/**
 * Metrics of a run: API.md's names, the per-run collector, kernel probes, HDR latency
 * histograms and aggregation over seeds.
 */
export * from './types';
export * from './latency';
export * from './kernel-probes';
export * from './migrate-reasons';
export * from './collector';
export * from './aggregate';
