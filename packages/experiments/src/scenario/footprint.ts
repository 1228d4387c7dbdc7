/**
 * workloadFootprint - the memory a workload's process will hold (buffers it maps and touches),
 * used to refuse scenarios whose processes cannot fit in the machine before anything runs.
 */
import { parseSize } from './units';
import type { WorkloadSpec } from './workload-schema';

/**
 * workloadFootprint - bytes @w keeps resident at most: for request streams a source and a
 * destination per request in flight, or the working set when it is larger (reused buffers); the
 * GPU buffer; the RDMA working set (the rest of its region is never touched); a resident
 * process's memory (twice it while 'scatter' faults it in).
 *
 * Return: bytes; throws RangeError only for a size the schema's pattern let through but the
 * kernel's parser refuses (semantic checks report those first).
 */
export function workloadFootprint(w: WorkloadSpec): number {
  switch (w.kind) {
    case 'memcpy':
    case 'zip-offload':
    case 'crypto-stream': {
      const perRequest = 2 * parseSize(w.requestSize);
      const inflight = w.inflight * perRequest;
      return w.buffers === 'reused'
        ? Math.max(inflight, w.workingSet === undefined ? 0 : parseSize(w.workingSet))
        : inflight;
    }
    case 'gpu-atomics':
      return parseSize(w.buffer);
    case 'resident':
      // 'scatter' holds a second mapping of the same size until the first is faulted in.
      return (w.scatter ? 2 : 1) * parseSize(w.size);
    case 'rdma-registration': {
      if (w.workingSet !== undefined) return parseSize(w.workingSet);
      const region = parseSize(w.region);
      return w.workingSetFraction === undefined ? region : Math.ceil(region * w.workingSetFraction);
    }
  }
}
