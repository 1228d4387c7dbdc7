/**
 * The 'memcpy' workload: an application copying buffers through the reference copy device
 * (@svasim/testkit's memcpy_accel, algorithm 'memcpy') with a number of requests in flight,
 * fresh or reused buffers, a working set and a count or a rate, preparing its buffers through
 * whichever pin strategy the run loaded (RequestStreamWorkload). With `verify` each source
 * carries an 8-byte stamp the copy is checked for.
 */
import type { Process } from '@svasim/kernel';
import type { AccelRequest, Completion } from '@svasim/user';
import type { MemcpyWorkloadSpec, WorkloadSpec } from '../../scenario';
import type { Workload } from '../activity';
import { RequestStreamWorkload, type StreamRequestInfo, type StreamSlot } from './request-stream';

/** The 8-byte stamp written at the start of each source, checked in the copy when `verify`. */
function stamp(info: StreamRequestInfo): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, info.n * 1024 + info.lane, true);
  return b;
}

/** MemcpyWorkload - see the file comment. Made by memcpyWorkload(spec). */
export class MemcpyWorkload extends RequestStreamWorkload<MemcpyWorkloadSpec> {
  protected get alg(): string {
    return 'memcpy';
  }

  protected srcBytes(): number {
    return this.len;
  }

  protected dstBytes(): number {
    return this.len;
  }

  protected setup(): void {}

  protected fill(proc: Process, slot: StreamSlot, info: StreamRequestInfo): AccelRequest {
    proc.write(slot.src, stamp(info).subarray(0, Math.min(8, this.len)));
    return { op: 'copy', alg: 'memcpy', src: slot.src, srcLen: this.len, dst: slot.dst, dstLen: this.len };
  }

  protected verifies(): boolean {
    return this.spec.verify && this.len >= 8;
  }

  protected check(proc: Process, slot: StreamSlot, _c: Completion, info: StreamRequestInfo): boolean {
    return Buffer.from(proc.read(slot.dst, 8)).equals(Buffer.from(stamp(info)));
  }
}

/** memcpyWorkload - the WorkloadFactory of kind 'memcpy'. */
export function memcpyWorkload(spec: WorkloadSpec): Workload {
  if (spec.kind !== 'memcpy') throw new RangeError(`memcpyWorkload: kind '${spec.kind}'`);
  return new MemcpyWorkload(spec);
}
