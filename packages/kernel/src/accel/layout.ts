/**
 * The user-visible layout of a virtual accelerator queue: what user space writes into the DUS
 * region (submission descriptors), what the device writes back (completions and ring indices), and
 * how it rings the doorbell. Little-endian, natural alignment (defineStruct), so a process builds
 * a descriptor with `ACCEL_SQE.encode({...})` and `p.write(dus + sqOff + slot * ACCEL_SQE.size, ...)`.
 *
 * DUS region (one per queue, mapped at offset UACCE_QFRT_DUS * PAGE_SIZE):
 *
 *   page 0            struct accel_queue_ctrl (ring indices)
 *   sqOff = 1 page    sqDepth x struct accel_sqe (64 bytes)
 *   cqOff             cqDepth x struct accel_cqe (32 bytes), page aligned
 *
 * Indices are free-running u32 counters; the slot of index i is i % depth. User space owns
 * sq_tail (told to the device by the doorbell) and cq_head; the device owns sq_head and cq_tail.
 *
 * MMIO region (UACCE_QFRT_MMIO, one page per queue): a 32-bit store of the new sq_tail at
 * ACCEL_DB_SQ_TAIL makes the device fetch the descriptors up to it.
 */
import { defineStruct } from '../fs/struct-layout';
import { PAGE_SIZE } from '../uapi/mman';

/** struct accel_sqe - one submission descriptor (64 bytes). */
export const ACCEL_SQE = defineStruct('accel_sqe', [
  /** ACCEL_OP_*. */
  ['op', 'u16'],
  /** Driver-defined algorithm index (0 when the op has one algorithm). */
  ['alg', 'u16'],
  /** ACCEL_SQE_F_* bits (0 for a stateless request). */
  ['flags', 'u32'],
  /** Opaque, echoed in the completion. */
  ['tag', 'u64'],
  /** Source and destination: user virtual addresses (SVA) or IOVAs (no SVA). */
  ['src', 'u64'],
  ['dst', 'u64'],
  ['src_len', 'u32'],
  ['dst_len', 'u32'],
  ['key', 'u64'],
  ['iv', 'u64'],
  ['key_len', 'u16'],
  ['iv_len', 'u16'],
  /** Compression level, or another per-op parameter. */
  ['level', 'u32'],
] as const);

/** struct accel_cqe - one completion record (32 bytes). */
export const ACCEL_CQE = defineStruct('accel_cqe', [
  ['tag', 'u64'],
  /** 0 or -errno. */
  ['status', 's32'],
  /** IO page requests the device issued for this request. */
  ['faults', 'u32'],
  ['consumed', 'u32'],
  ['produced', 'u32'],
  /** Doorbell to completion, simulated ns. */
  ['latency_ns', 'u64'],
] as const);

/** struct accel_queue_ctrl - the ring indices at offset 0 of the DUS region. */
export const ACCEL_QUEUE_CTRL = defineStruct('accel_queue_ctrl', [
  /** Last tail the doorbell announced (device-written mirror). */
  ['sq_tail', 'u32'],
  /** Descriptors the device has fetched (device-written). */
  ['sq_head', 'u32'],
  /** Completions the device has written (device-written). */
  ['cq_tail', 'u32'],
  /** Completions user space has consumed (user-written; the device stalls fetching when full). */
  ['cq_head', 'u32'],
  ['sq_depth', 'u32'],
  ['cq_depth', 'u32'],
] as const);

/**
 * ACCEL_SQE_F_STREAM - the descriptor is a chunk of a stream whose state the device keeps per
 * hardware queue (e.g. one deflate stream over many requests). A device that accepts it runs a
 * queue's stream chunks one at a time, in submission order.
 */
export const ACCEL_SQE_F_STREAM = 0x1;
/** ACCEL_SQE_F_STREAM_END - the last chunk: finish the stream (Z_FINISH) and forget its state. */
export const ACCEL_SQE_F_STREAM_END = 0x2;

/** Byte offset of the sq_tail doorbell in a queue's MMIO page: a 32-bit store (or 64-bit, low word). */
export const ACCEL_DB_SQ_TAIL = 0;

/** Operation codes (the `op` field); names follow @svasim/user's request ops. */
export const ACCEL_OP_COPY = 1;
export const ACCEL_OP_COMPRESS = 2;
export const ACCEL_OP_DECOMPRESS = 3;
export const ACCEL_OP_ENCRYPT = 4;
export const ACCEL_OP_DECRYPT = 5;
export const ACCEL_OP_DIGEST = 6;
export const ACCEL_OP_HMAC = 7;

/** The op names user space uses, by code. */
export const ACCEL_OP_NAMES: Readonly<Record<number, string>> = Object.freeze({
  [ACCEL_OP_COPY]: 'copy',
  [ACCEL_OP_COMPRESS]: 'compress',
  [ACCEL_OP_DECOMPRESS]: 'decompress',
  [ACCEL_OP_ENCRYPT]: 'encrypt',
  [ACCEL_OP_DECRYPT]: 'decrypt',
  [ACCEL_OP_DIGEST]: 'digest',
  [ACCEL_OP_HMAC]: 'hmac',
});

/** accelOpCode - the code of an op name, or -1. */
export function accelOpCode(name: string): number {
  for (const [code, n] of Object.entries(ACCEL_OP_NAMES)) if (n === name) return Number(code);
  return -1;
}

/** Where things are in a queue's DUS region, for a ring depth. */
export interface AccelDusLayout {
  sqDepth: number;
  cqDepth: number;
  /** Offset of the submission ring. */
  sqOff: number;
  /** Offset of the completion ring. */
  cqOff: number;
  /** Region size in bytes (a whole number of pages: the DUS mapping must be exactly this). */
  size: number;
  pages: number;
}

/**
 * accelDusLayout - the DUS layout for rings of `depth` entries (a power of two, 2..4096).
 * Throws RangeError otherwise.
 */
export function accelDusLayout(depth: number): AccelDusLayout {
  if (!Number.isInteger(depth) || depth < 2 || depth > 4096 || (depth & (depth - 1)) !== 0)
    throw new RangeError(`accel: ring depth must be a power of two in 2..4096, got ${depth}`);
  const pagesFor = (bytes: number) => Math.ceil(bytes / PAGE_SIZE);
  const sqOff = PAGE_SIZE;
  const cqOff = sqOff + pagesFor(depth * ACCEL_SQE.size) * PAGE_SIZE;
  const size = cqOff + pagesFor(depth * ACCEL_CQE.size) * PAGE_SIZE;
  return { sqDepth: depth, cqDepth: depth, sqOff, cqOff, size, pages: size / PAGE_SIZE };
}
