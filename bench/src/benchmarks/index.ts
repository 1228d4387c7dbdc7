import type { Benchmark } from '../benchmark';
import { compactionBenchmark } from './compaction';
import { eventsBenchmark } from './events';
import { gupBenchmark } from './gup';
import { iommuBenchmark } from './iommu';
import { mmBenchmark } from './mm';
import { zipBenchmark } from './zip';

/** BENCHMARKS - every benchmark module, in run order: add a module with one line. */
export const BENCHMARKS: readonly Benchmark[] = [
  eventsBenchmark,
  mmBenchmark,
  gupBenchmark,
  compactionBenchmark,
  iommuBenchmark,
  zipBenchmark,
];
