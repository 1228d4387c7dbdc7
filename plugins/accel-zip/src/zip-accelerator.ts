/**
 * ZipAccelerator - a HiSilicon-ZIP-like compression engine (drivers/crypto/hisilicon/zip in the
 * kernel, drv/hisi_comp.c in Linaro/uadk) on the VirtualAccelerator base: the base does the
 * queues, rings, doorbell, DMA through the IOMMU and IO page faults; this class computes the
 * result on the real bytes with node:zlib and says how long the engine was busy.
 *
 * Descriptor fields it reads: op (compress/decompress), alg (index into ZIP_ALGORITHMS), level
 * (0 = default, 1..9), flags (ACCEL_SQE_F_STREAM, ACCEL_SQE_F_STREAM_END), dst_len.
 *
 * Streams are per hardware queue (the hardware keeps a stream's context per queue, UADK's
 * ctx_buf): the first ACCEL_SQE_F_STREAM chunk opens it with its alg, op and level; later chunks
 * must name the same alg and op; the chunk with ACCEL_SQE_F_STREAM_END finishes (Z_FINISH) and
 * forgets it. The base runs a queue's stream chunks one at a time, in order.
 */
import {
  ACCEL_SQE_F_STREAM,
  ACCEL_SQE_F_STREAM_END,
  ERRNO,
  VirtualAccelerator,
  type AccelRequestParams,
  type AccelResult,
  type AccelSqe,
  type AcceleratorConfig,
  type Kernel,
} from '@svasim/kernel';
import {
  ZIP_ALGORITHMS,
  ZIP_LEVEL_DEFAULT,
  ZIP_LEVEL_MAX,
  ZIP_ZLIB_DEFAULT_LEVEL,
  type ZipAlgorithm,
} from './constants';
import { ZIP_CONFIG } from './config';
import { ZIP_CORE_MODEL, type ZipCoreModel } from './timing';
import {
  ZlibStream,
  zlibCompress,
  zlibDecompress,
  zlibStreamsSupported,
  type ZlibOutcome,
} from './zlib-engine';

type ZipOp = 'compress' | 'decompress';

/** What a hardware queue's stream slot holds: a live stream, or the mark of one that failed. */
type StreamSlot = { kind: 'live'; stream: ZlibStream; level: number } | { kind: 'broken' };

/** Per-kind counters of the device (beyond the base's AccelStats). */
export interface ZipStats {
  compressRequests: number;
  decompressRequests: number;
  streamChunks: number;
  /** Requests completed with ZIP_EBADDATA (corrupt compressed input). */
  badData: number;
}

/**
 * ZipAccelerator - build with `new ZipAccelerator(kernel)` (ZIP_CONFIG) or with another config or
 * core model for experiments; a plugin's register() does that and the kernel realizes it.
 */
export class ZipAccelerator extends VirtualAccelerator {
  readonly zipStats: ZipStats = { compressRequests: 0, decompressRequests: 0, streamChunks: 0, badData: 0 };
  readonly cores: Readonly<ZipCoreModel>;
  /** Streams by hardware queue index. */
  private readonly streams = new Map<number, StreamSlot>();
  /** When each core of a kind is next free (simulated ns). */
  private readonly coreFree: Record<ZipOp, number[]>;

  constructor(kernel: Kernel, config: AcceleratorConfig = ZIP_CONFIG, cores: ZipCoreModel = ZIP_CORE_MODEL) {
    super(kernel, config);
    this.cores = cores;
    this.coreFree = {
      compress: new Array<number>(Math.max(1, cores.compressCores)).fill(0),
      decompress: new Array<number>(Math.max(1, cores.decompressCores)).fill(0),
    };
  }

  /** Streams open (or broken and not yet ended), one per hardware queue at most. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** unrealize - hot removal; every stream goes with the queues (the base calls queueReset). */
  override unrealize(): void {
    super.unrealize();
    for (const q of [...this.streams.keys()]) this.queueReset(q);
    for (const free of Object.values(this.coreFree)) free.fill(0);
  }

  protected override queueReset(index: number): void {
    const s = this.streams.get(index);
    if (s?.kind === 'live') s.stream.close();
    this.streams.delete(index);
  }

  /**
   * process - the engine: check the descriptor (alg index, level, stream flags), run zlib on the
   * source bytes (stateless, or this queue's stream), and give the engine time (engineNs). Never
   * throws: bad input is a negative status (README "Errors").
   */
  protected process(op: string, src: Uint8Array, sqe: AccelSqe, params: AccelRequestParams): AccelResult {
    const zop = op as ZipOp;
    const alg = ZIP_ALGORITHMS[sqe.alg] as ZipAlgorithm | undefined;
    // An index outside the sysfs list: UADK refuses such an alg type with -WD_EINVAL
    // (fill_zip_comp_sqe), and the hardware would not know the request type.
    if (alg === undefined) return failed(-ERRNO.EINVAL);
    if (sqe.level > ZIP_LEVEL_MAX) return failed(-ERRNO.EINVAL);
    const level = sqe.level === ZIP_LEVEL_DEFAULT ? ZIP_ZLIB_DEFAULT_LEVEL : sqe.level;
    const stream = (sqe.flags & ACCEL_SQE_F_STREAM) !== 0;
    const end = (sqe.flags & ACCEL_SQE_F_STREAM_END) !== 0;
    // STREAM_END alone is not a stream chunk: a malformed descriptor.
    if (end && !stream) return failed(-ERRNO.EINVAL);
    if (zop === 'compress') this.zipStats.compressRequests++;
    else this.zipStats.decompressRequests++;

    let r: ZlibOutcome;
    if (stream) {
      this.zipStats.streamChunks++;
      const got = this.streamChunk(params.queue, alg, zop, level, src, end, sqe.dst_len);
      if (typeof got === 'number') return failed(got);
      r = got;
    } else if (zop === 'compress') {
      // A result larger than dst_len is the base's -ENOSPC, after the engine time.
      r = zlibCompress(alg, src, level);
    } else {
      r = zlibDecompress(alg, src, sqe.dst_len);
    }
    if (r.status < 0) {
      if (r.status !== -ERRNO.ENOSPC) this.zipStats.badData++;
      return failed(r.status);
    }
    const bytes = zop === 'compress' ? src.length : r.output.length;
    return { status: 0, produced: r.output.length, output: r.output, serviceNs: this.engineNs(zop, bytes) };
  }

  /**
   * One chunk of the stream of hardware queue @q: open it on the first chunk, check the chunk
   * belongs to it, feed it. Returns the outcome, or a negative errno for a descriptor that cannot
   * go to this stream (the stream is left as it was).
   */
  private streamChunk(
    q: number,
    alg: ZipAlgorithm,
    op: ZipOp,
    level: number,
    src: Uint8Array,
    end: boolean,
    dstLen: number,
  ): ZlibOutcome | number {
    let slot = this.streams.get(q);
    if (slot?.kind === 'broken') {
      // An earlier chunk failed: its output is lost, so later chunks must not look like a good
      // stream. They complete -EPIPE until the STREAM_END chunk, which clears the mark.
      if (end) this.streams.delete(q);
      return -ERRNO.EPIPE;
    }
    if (!slot) {
      if (!zlibStreamsSupported()) return -ERRNO.EOPNOTSUPP;
      const s = ZlibStream.open(alg, op, level);
      if (!s) return -ERRNO.EOPNOTSUPP;
      slot = { kind: 'live', stream: s, level };
      this.streams.set(q, slot);
    } else if (slot.stream.alg !== alg || slot.stream.op !== op) {
      return -ERRNO.EINVAL;
    }
    const r = slot.stream.write(src, end, dstLen);
    if (r.status < 0) {
      // The zlib state is gone (or its output is): mark the stream, unless this was its end.
      slot.stream.close();
      if (end) this.streams.delete(q);
      else this.streams.set(q, { kind: 'broken' });
    } else if (end) {
      this.streams.delete(q);
    }
    return r;
  }

  /**
   * The engine time of @bytes of @op starting now: wait for the earliest free core of the kind,
   * work bytes / rate on it, plus the fixed per-request time. Depends on the bytes and the other
   * requests only, never on the wall time zlib took.
   */
  private engineNs(op: ZipOp, bytes: number): number {
    const now = this.kernel.scheduler.now();
    const free = this.coreFree[op];
    let c = 0;
    for (let i = 1; i < free.length; i++) if (free[i] < free[c]) c = i;
    const rate = op === 'compress' ? this.cores.compressCoreBytesPerS : this.cores.decompressCoreBytesPerS;
    const start = Math.max(now, free[c]);
    const done = start + Math.round((bytes * 1e9) / rate);
    free[c] = done;
    return done - now + this.config.timing.perRequestNs;
  }
}

function failed(status: number): AccelResult {
  return { status, produced: 0, output: new Uint8Array(0) };
}
