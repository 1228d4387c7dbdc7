/**
 * Built-in workload implementations by kind. 'memcpy' is here; the accelerator workloads
 * ('zip-offload', 'crypto-stream', 'gpu-atomics', 'rdma-registration') are registered by whoever
 * builds the PluginRegistry with their plugins (createPluginRegistry({ workloads })).
 */
import type { WorkloadFactory } from '../activity';
import { memcpyWorkload } from './memcpy';

export * from './memcpy';

/** BUILTIN_WORKLOADS - the workload factories every registry starts with. */
export const BUILTIN_WORKLOADS: ReadonlyMap<string, WorkloadFactory> = new Map([['memcpy', memcpyWorkload]]);
