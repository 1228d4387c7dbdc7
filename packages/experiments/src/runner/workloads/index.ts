/**
 * Built-in workload implementations by kind: 'memcpy' (memcpy_accel), 'zip-offload' (hisi_zip)
 * and 'crypto-stream' (hisi_sec2), all request streams over @svasim/user. They name algorithms,
 * not plugins, so the runner does not depend on the device packages; 'rdma-registration' (a
 * sparse registration on the 'memcpy' device standing in for a NIC) too. 'gpu-atomics' drives
 * @svasim/accel-gpu's /dev/svasim_gpu0 (GPU kernels doing atomics on system memory; the one
 * workload that depends on a device package, since the GPU is not a uacce device). 'resident' is a process
 * that is mostly memory (no device): a heap with DMA buffers scattered in it, or a bystander.
 */
import type { WorkloadFactory } from '../activity';
import { cryptoStreamWorkload } from './crypto-stream';
import { memcpyWorkload } from './memcpy';
import { residentWorkload } from './resident';
import { zipOffloadWorkload } from './zip-offload';
import { rdmaRegistrationWorkload } from './rdma-registration';
import { gpuAtomicsWorkload } from './gpu-atomics';

export * from './request-stream';
export * from './payload';
export * from './memcpy';
export * from './zip-offload';
export * from './crypto-stream';
export * from './resident';
export * from './rdma-registration';
export * from './gpu-atomics';

/** BUILTIN_WORKLOADS - the workload factories every registry starts with. */
export const BUILTIN_WORKLOADS: ReadonlyMap<string, WorkloadFactory> = new Map([
  ['memcpy', memcpyWorkload],
  ['zip-offload', zipOffloadWorkload],
  ['crypto-stream', cryptoStreamWorkload],
  ['resident', residentWorkload],
  ['rdma-registration', rdmaRegistrationWorkload],
  ['gpu-atomics', gpuAtomicsWorkload],
]);
