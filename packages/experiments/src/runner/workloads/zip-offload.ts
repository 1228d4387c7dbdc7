/**
 * The 'zip-offload' workload: an nginx-like web server offloading gzip (or zlib, raw deflate) to a
 * zip accelerator (@svasim/accel-zip's hisi_zip) through @svasim/user, as nginx's UADK/QAT
 * offload modules do: each request compresses `requestSize` bytes of a response (text and
 * already-compressed content in the share `compressibility` says) at `level`, with `inflight`
 * requests in flight, into fresh or reused buffers prepared through the run's pin strategy
 * (RequestStreamWorkload). `op: decompress` inflates instead (the reverse proxy's side).
 *
 * The data is real: the device runs node:zlib on the bytes in simulated memory, and one request
 * in `verifyEvery` is checked here: its output inflated (or compared, for decompress) with
 * node:zlib must give the source back (data_mismatch otherwise). dma_bytes counts uncompressed
 * bytes for both ops, so throughput is what the application got through.
 */
import {
  deflateRawSync,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateRawSync,
  inflateSync,
  type ZlibOptions,
} from 'node:zlib';
import type { Process } from '@svasim/kernel';
import type { AccelRequest, Completion } from '@svasim/user';
import type { WorkloadSpec, ZipOffloadWorkloadSpec } from '../../scenario';
import type { Workload, WorkloadContext } from '../activity';
import { makePayload } from './payload';
import { RequestStreamWorkload, type StreamRequestInfo, type StreamSlot } from './request-stream';

/** Distinct payloads a workload cycles through (enough that consecutive requests differ). */
const PAYLOADS = 4;

type Alg = ZipOffloadWorkloadSpec['alg'];

const COMPRESS: Record<Alg, (b: Buffer, o: ZlibOptions) => Buffer> = {
  deflate: deflateRawSync,
  zlib: deflateSync,
  gzip: gzipSync,
};
const INFLATE: Record<Alg, (b: Buffer) => Buffer> = {
  deflate: inflateRawSync,
  zlib: inflateSync,
  gzip: gunzipSync,
};

/**
 * zipBound - room for the compressed form of @len bytes: zlib's deflateBound for stored blocks
 * (len + len/4096 + len/16384 + 13) plus the largest wrapper (gzip's 18-byte header and trailer),
 * rounded up generously; incompressible data never needs more.
 */
export function zipBound(len: number): number {
  return len + (len >>> 12) + (len >>> 14) + 64;
}

/** ZipOffloadWorkload - see the file comment. Made by zipOffloadWorkload(spec). */
export class ZipOffloadWorkload extends RequestStreamWorkload<ZipOffloadWorkloadSpec> {
  private plain: Buffer[] = [];
  private packed: Buffer[] = [];
  private maxPacked = 0;

  protected get alg(): string {
    return this.spec.alg;
  }

  private get decompress(): boolean {
    return this.spec.op === 'decompress';
  }

  protected srcBytes(): number {
    return this.decompress ? this.maxPacked : this.len;
  }

  protected dstBytes(): number {
    return this.decompress ? this.len : zipBound(this.len);
  }

  protected setup(w: WorkloadContext): void {
    const spec = this.spec;
    for (let i = 0; i < PAYLOADS; i++) this.plain.push(makePayload(w.rng, this.len, spec.compressibility));
    if (this.decompress) {
      const opts: ZlibOptions = {
        windowBits: 15,
        ...(spec.level === undefined ? {} : { level: spec.level }),
      };
      this.packed = this.plain.map((b) => COMPRESS[spec.alg](b, opts));
      this.maxPacked = Math.max(...this.packed.map((b) => b.length));
    }
  }

  private which(info: StreamRequestInfo): number {
    return info.n % PAYLOADS;
  }

  protected fill(proc: Process, slot: StreamSlot, info: StreamRequestInfo): AccelRequest {
    const i = this.which(info);
    const src = this.decompress ? this.packed[i] : this.plain[i];
    proc.write(slot.src, src);
    const req: AccelRequest = {
      op: this.spec.op,
      alg: this.spec.alg,
      src: slot.src,
      srcLen: src.length,
      dst: slot.dst,
      dstLen: this.dstBytes(),
    };
    if (this.spec.level !== undefined) req.level = this.spec.level;
    return req;
  }

  protected override countedBytes(c: Completion): number {
    return this.decompress ? c.produced : c.consumed;
  }

  protected verifies(info: StreamRequestInfo): boolean {
    return this.spec.verifyEvery > 0 && info.n % this.spec.verifyEvery === 0;
  }

  protected check(proc: Process, slot: StreamSlot, c: Completion, info: StreamRequestInfo): boolean {
    const want = this.plain[this.which(info)];
    const out = Buffer.from(proc.read(slot.dst, c.produced));
    if (this.decompress) return out.equals(want);
    try {
      return INFLATE[this.spec.alg](out).equals(want);
    } catch {
      return false; // not a valid stream of this format: the device wrote garbage
    }
  }
}

/** zipOffloadWorkload - the WorkloadFactory of kind 'zip-offload'. */
export function zipOffloadWorkload(spec: WorkloadSpec): Workload {
  if (spec.kind !== 'zip-offload') throw new RangeError(`zipOffloadWorkload: kind '${spec.kind}'`);
  return new ZipOffloadWorkload(spec);
}
