/**
 * Built-in background activities, one per kind of the scenario schema. They need only the
 * kernel (docs/mm.md's APIs), never an accelerator plugin.
 */
import type { BackgroundFactory } from '../activity';
import { cmaAllocActivity } from './cma-alloc';
import { compactionActivity } from './compaction';
import { forkStormActivity } from './fork-storm';
import { fragmentationActivity } from './fragmentation';
import { hugepageAllocActivity } from './hugepage-alloc';
import { memoryOfflineActivity } from './memory-offline';
import { memoryPressureActivity } from './memory-pressure';
import { numaImbalanceActivity } from './numa-imbalance';
import { thpActivity } from './thp';

export * from './common';
export * from './fragmentation';
export * from './compaction';
export * from './thp';
export * from './numa-imbalance';
export * from './cma-alloc';
export * from './hugepage-alloc';
export * from './hugepage-probe';
export * from './memory-offline';
export * from './memory-pressure';
export * from './fork-storm';
export * from './fork-copies';

/** BUILTIN_BACKGROUNDS - the background factories every registry starts with. */
export const BUILTIN_BACKGROUNDS: ReadonlyMap<string, BackgroundFactory> = new Map<string, BackgroundFactory>(
  [
    ['fragmentation', fragmentationActivity],
    ['compaction', compactionActivity],
    ['thp', thpActivity],
    ['numa-imbalance', numaImbalanceActivity],
    ['cma-alloc', cmaAllocActivity],
    ['hugepage-alloc', hugepageAllocActivity],
    ['memory-offline', memoryOfflineActivity],
    ['memory-pressure', memoryPressureActivity],
    ['fork-storm', forkStormActivity],
  ],
);
