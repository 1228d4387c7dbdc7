/**
 * The zip device's engine: node:zlib on the real bytes, stateless and streaming, with the errors
 * mapped to what a ZIP completion reports. Nothing here throws: every outcome is a ZlibOutcome.
 *
 * Stateless requests use the public one-shot functions (deflateRawSync, deflateSync, gzipSync and
 * their inflates), so a stateless result is byte-identical to them by construction.
 *
 * Streams need a zlib state that survives between requests and a synchronous call per chunk. Node
 * 20 has no public synchronous incremental API: the stream classes run zlib on the threadpool,
 * and their internal `_processChunk(chunk, flag)` (what deflateSync uses) closes the handle after
 * one call (lib/zlib.js processChunkSync ends with _close(self)), so it cannot carry a stream.
 * ZlibStream therefore drives the native handle the same way processChunkSync does:
 * `handle.writeSync(flush, in, inOff, inLen, out, outOff, outLen)` then the [availOut, availIn]
 * pair in `_writeState`, looping while the output buffer fills, with `handle.onerror` (called
 * synchronously from writeSync by the native side) replaced to collect the zlib error instead of
 * destroying the JS stream. zlibStreamsSupported() checks those internals exist; without them
 * stream requests complete -EOPNOTSUPP rather than misbehave.
 */
import * as zlib from 'node:zlib';
import { ERRNO } from '@svasim/kernel';
import { ZIP_WINDOW_BITS, type ZipAlgorithm } from './constants';

const { Z_FINISH, Z_SYNC_FLUSH } = zlib.constants;

/** What the engine did: status 0 with the output, or a negative errno. */
export interface ZlibOutcome {
  status: number;
  output: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * ZIP_EBADDATA - the status of corrupt or truncated compressed input: -EIO, what the kernel's
 * hisi_zip acomp callback returns for any hardware error status (zip_crypto.c hisi_zip_acomp_cb:
 * `status != 0 && status != HZIP_NC_ERR` -> err = -EIO); UADK reports the same condition as
 * WD_IN_EPARA (drv/hisi_comp.c parse_zip_sqe).
 */
export const ZIP_EBADDATA = -ERRNO.EIO;

function fail(status: number): ZlibOutcome {
  return { status, output: EMPTY };
}

/** The compression options for @level (already validated, 1..9): 32 KiB window, node defaults otherwise. */
function deflateOptions(level: number): zlib.ZlibOptions {
  return { level, windowBits: ZIP_WINDOW_BITS };
}

/** Map an exception of a node:zlib call to a completion status. */
function errorStatus(e: unknown): number {
  const code = (e as { code?: unknown } | null)?.code;
  // maxOutputLength exceeded: the output does not fit in dst.
  if (code === 'ERR_BUFFER_TOO_LARGE') return -ERRNO.ENOSPC;
  // Z_DATA_ERROR, Z_BUF_ERROR ("unexpected end of file"), Z_NEED_DICT, bad gzip header...
  if (typeof code === 'string' && code.startsWith('Z_')) return ZIP_EBADDATA;
  return -ERRNO.EIO;
}

/**
 * zlibCompress - compress @src in one shot with @alg at zlib @level (1..9): output identical to
 * deflateRawSync / deflateSync / gzipSync with { level, windowBits: 15 }. Returns -EIO only if
 * zlib itself fails (it does not for valid options).
 */
export function zlibCompress(alg: ZipAlgorithm, src: Uint8Array, level: number): ZlibOutcome {
  try {
    const o = deflateOptions(level);
    const out =
      alg === 'deflate'
        ? zlib.deflateRawSync(src, o)
        : alg === 'zlib'
          ? zlib.deflateSync(src, o)
          : zlib.gzipSync(src, o);
    return { status: 0, output: out };
  } catch (e) {
    return fail(errorStatus(e));
  }
}

/**
 * zlibDecompress - decompress @src in one shot with the inflate matching @alg (inflateRawSync,
 * inflateSync, gunzipSync), producing at most @maxOut bytes. Returns -ENOSPC when the output would
 * exceed @maxOut (zlib stops there: a bomb costs no more than @maxOut), ZIP_EBADDATA (-EIO) for
 * corrupt or truncated input.
 */
export function zlibDecompress(alg: ZipAlgorithm, src: Uint8Array, maxOut: number): ZlibOutcome {
  try {
    // maxOutputLength must be >= 1; a zero-sized dst is checked after.
    const o: zlib.ZlibOptions = { windowBits: ZIP_WINDOW_BITS, maxOutputLength: Math.max(1, maxOut) };
    const out =
      alg === 'deflate'
        ? zlib.inflateRawSync(src, o)
        : alg === 'zlib'
          ? zlib.inflateSync(src, o)
          : zlib.gunzipSync(src, o);
    if (out.length > maxOut) return fail(-ERRNO.ENOSPC);
    return { status: 0, output: out };
  } catch (e) {
    return fail(errorStatus(e));
  }
}

/** The parts of a node:zlib stream object ZlibStream uses (internals; see the file comment). */
interface ZlibInternals {
  _handle: {
    writeSync(
      flush: number,
      input: Uint8Array,
      inOff: number,
      inLen: number,
      out: Uint8Array,
      outOff: number,
      outLen: number,
    ): void;
    close(): void;
    onerror: ((message: string, errno: number, code?: string) => void) | null;
  } | null;
  _writeState: Uint32Array;
}

function internals(s: unknown): ZlibInternals | null {
  const z = s as Partial<ZlibInternals> | null;
  const h = z?._handle;
  if (!h || typeof h.writeSync !== 'function' || typeof h.close !== 'function') return null;
  // Not instanceof: node's internals may come from another realm (jest's vm contexts).
  const ws = z._writeState as unknown;
  if (!ArrayBuffer.isView(ws) || Object.prototype.toString.call(ws) !== '[object Uint32Array]') return null;
  if ((ws as Uint32Array).length < 2) return null;
  return z as ZlibInternals;
}

let supported: boolean | null = null;

/**
 * zlibStreamsSupported - true when this Node's zlib objects have the synchronous handle ZlibStream
 * drives. Checked once by compressing a few bytes through a stream and comparing with deflateRawSync.
 */
export function zlibStreamsSupported(): boolean {
  if (supported !== null) return supported;
  supported = false;
  try {
    const s = ZlibStream.open('deflate', 'compress', 6);
    if (!s) return false;
    const probe = new TextEncoder().encode('svasim zlib probe svasim zlib probe');
    const r = s.write(probe, true, Number.MAX_SAFE_INTEGER);
    s.close();
    supported = r.status === 0 && Buffer.from(r.output).equals(zlib.deflateRawSync(probe, deflateOptions(6)));
  } catch {
    supported = false;
  }
  return supported;
}

/** Output buffer size per writeSync round (node's default chunk size). */
const OUT_CHUNK = 16 * 1024;

/**
 * ZlibStream - one deflate or inflate stream kept between requests. write() feeds a chunk with
 * Z_SYNC_FLUSH (so the chunk's output is whole bytes a reader can use) or, for the last one,
 * Z_FINISH; the concatenated outputs equal what a node:zlib stream created with
 * { flush: Z_SYNC_FLUSH } emits for the same chunks. After an error the stream is closed.
 */
export class ZlibStream {
  private z: ZlibInternals | null;
  private err: { errno: number; code?: string } | null = null;

  private constructor(
    z: ZlibInternals,
    /** The algorithm and op the stream was opened for (later chunks must match). */
    readonly alg: ZipAlgorithm,
    readonly op: 'compress' | 'decompress',
  ) {
    this.z = z;
    // Collect the error instead of letting the JS stream destroy itself (and emit 'error' later).
    z._handle!.onerror = (_message, errno, code) => {
      this.err = { errno, code };
    };
  }

  /** open - a stream for @alg/@op (@level 1..9 for compress); null when the internals are missing. */
  static open(alg: ZipAlgorithm, op: 'compress' | 'decompress', level: number): ZlibStream | null {
    let s: unknown;
    if (op === 'compress') {
      const o = deflateOptions(level);
      s =
        alg === 'deflate'
          ? zlib.createDeflateRaw(o)
          : alg === 'zlib'
            ? zlib.createDeflate(o)
            : zlib.createGzip(o);
    } else {
      const o: zlib.ZlibOptions = { windowBits: ZIP_WINDOW_BITS };
      s =
        alg === 'deflate'
          ? zlib.createInflateRaw(o)
          : alg === 'zlib'
            ? zlib.createInflate(o)
            : zlib.createGunzip(o);
    }
    const z = internals(s);
    return z ? new ZlibStream(z, alg, op) : null;
  }

  /** True until close() or an error. */
  get open(): boolean {
    return this.z !== null;
  }

  /**
   * write - feed @chunk (Z_FINISH when @last, else Z_SYNC_FLUSH); at most @maxOut output bytes.
   * Returns the chunk's output, -ENOSPC past @maxOut, ZIP_EBADDATA for corrupt input, -EIO when
   * the stream is closed. Any error closes the stream (its zlib state is no longer usable).
   */
  write(chunk: Uint8Array, last: boolean, maxOut: number): ZlibOutcome {
    const z = this.z;
    if (!z || !z._handle) return fail(-ERRNO.EIO);
    const h = z._handle;
    const state = z._writeState;
    const flush = last ? Z_FINISH : Z_SYNC_FLUSH;
    const parts: Uint8Array[] = [];
    let total = 0;
    let inOff = 0;
    let inLen = chunk.length;
    try {
      for (;;) {
        const out = new Uint8Array(OUT_CHUNK);
        h.writeSync(flush, chunk, inOff, inLen, out, 0, OUT_CHUNK);
        if (this.err) {
          this.close();
          return fail(ZIP_EBADDATA);
        }
        const availOut = state[0];
        const availIn = state[1];
        const have = OUT_CHUNK - availOut;
        if (have > 0) {
          total += have;
          if (total > maxOut) {
            this.close();
            return fail(-ERRNO.ENOSPC);
          }
          parts.push(out.subarray(0, have));
        }
        inOff += inLen - availIn;
        inLen = availIn;
        // A full output buffer means zlib has more to give for this flush.
        if (availOut !== 0) break;
      }
    } catch {
      this.close();
      return fail(-ERRNO.EIO);
    }
    if (last) this.close();
    return { status: 0, output: parts.length === 1 ? parts[0] : Buffer.concat(parts, total) };
  }

  /** close - free the native zlib state. Idempotent. */
  close(): void {
    const z = this.z;
    this.z = null;
    if (!z || !z._handle) return;
    try {
      z._handle.onerror = null;
      z._handle.close();
    } catch {
      // Already closed by node: nothing left to free.
    }
    z._handle = null;
  }
}
