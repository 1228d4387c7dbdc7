import type { Benchmark } from '../benchmark';
import { eventsBenchmark } from './events';
import { mmBenchmark } from './mm';

/** BENCHMARKS - every benchmark module, in run order: add a module with one line. */
export const BENCHMARKS: readonly Benchmark[] = [eventsBenchmark, mmBenchmark];
