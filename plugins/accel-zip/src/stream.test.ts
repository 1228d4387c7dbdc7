import { describe, expect, it } from '@jest/globals';
import * as zlib from 'node:zlib';
import { ERRNO, PAGE_SIZE, createKernel, type Kernel, type Process } from '@svasim/kernel';
import { openContext, type AccelContext, type AccelRequest, type Completion } from '@svasim/user';
import { ZIP_ALGORITHMS, ZIP_EBADDATA, zipPlugin, type ZipAccelerator, type ZipAlgorithm } from './index';

const KiB = 1024;

function boot(): { k: Kernel; acc: ZipAccelerator } {
  const k = createKernel({ memory: { nodes: [{ size: '512MiB' }] }, plugins: [zipPlugin] });
  return { k, acc: k.plugin<ZipAccelerator>('hisi_zip') };
}

function random(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = seed || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function text(len: number, seed: number): Uint8Array {
  const words = 'svasim shares process memory with devices through the iommu and takes page faults'.split(
    ' ',
  );
  let s = '';
  let x = seed;
  while (s.length < len) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += words[(x >>> 16) % words.length] + (x & 1 ? ' ' : '\n');
  }
  return new Uint8Array(Buffer.from(s.slice(0, len)));
}

/** What a node:zlib stream with { flush: Z_SYNC_FLUSH } emits for @chunks (the last with Z_FINISH). */
function nodeStream(
  alg: ZipAlgorithm,
  op: 'compress' | 'decompress',
  chunks: Uint8Array[],
  level = 6,
): Promise<Buffer> {
  const o = { level, windowBits: 15, flush: zlib.constants.Z_SYNC_FLUSH };
  const s =
    op === 'compress'
      ? alg === 'deflate'
        ? zlib.createDeflateRaw(o)
        : alg === 'zlib'
          ? zlib.createDeflate(o)
          : zlib.createGzip(o)
      : alg === 'deflate'
        ? zlib.createInflateRaw(o)
        : alg === 'zlib'
          ? zlib.createInflate(o)
          : zlib.createGunzip(o);
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    s.on('data', (b: Buffer) => out.push(b));
    s.on('end', () => resolve(Buffer.concat(out)));
    s.on('error', reject);
    for (const c of chunks.slice(0, -1)) s.write(c);
    s.end(chunks[chunks.length - 1]);
  });
}

function inflateOneShot(alg: ZipAlgorithm, b: Uint8Array, finish = true): Buffer {
  const o = finish ? {} : { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  return alg === 'deflate'
    ? zlib.inflateRawSync(b, o)
    : alg === 'zlib'
      ? zlib.inflateSync(b, o)
      : zlib.gunzipSync(b, o);
}

/** Buffers for chunk i: src holds the chunk, dst has room for @dstLen. */
class Stream {
  readonly outputs: Uint8Array[] = [];
  readonly completions: Completion[] = [];
  constructor(
    readonly ctx: AccelContext,
    readonly p: Process,
    readonly alg: string,
    readonly op: 'compress' | 'decompress',
    readonly level = 0,
  ) {}

  request(
    chunk: Uint8Array,
    last: boolean,
    dstLen = chunk.length * 2 + 1024,
  ): { r: AccelRequest; dst: number } {
    const src = this.p.mmap(Math.max(PAGE_SIZE, chunk.length));
    this.p.write(src, chunk);
    const dst = this.p.mmap(Math.max(PAGE_SIZE, dstLen));
    return {
      r: {
        op: this.op,
        alg: this.alg,
        src,
        srcLen: chunk.length,
        dst,
        dstLen,
        level: this.level,
        stream: { last },
      },
      dst,
    };
  }

  /** Submit one chunk and wait for it; records its output. */
  chunk(chunk: Uint8Array, last: boolean, dstLen?: number): Completion {
    const { r, dst } = this.request(chunk, last, dstLen);
    const c = this.ctx.submitSync(r);
    this.completions.push(c);
    if (c.status === 0) this.outputs.push(this.p.read(dst, c.produced));
    return c;
  }

  get joined(): Buffer {
    return Buffer.concat(this.outputs);
  }
}

const CHUNKS = (): Uint8Array[] => [
  text(1000, 1),
  random(70_000, 2),
  text(85_000, 3),
  new Uint8Array(0),
  text(10, 4),
];

describe('compress streams', () => {
  it.each(ZIP_ALGORITHMS)(
    '%s: the outputs concatenate to what node:zlib emits for the same chunks and flushes',
    async (alg) => {
      const { k, acc } = boot();
      const p = k.spawn();
      const ctx = openContext(p, alg);
      const chunks = CHUNKS();
      const s = new Stream(ctx, p, alg, 'compress', 9);
      chunks.forEach((c, i) => expect(s.chunk(c, i === chunks.length - 1).status).toBe(0));
      expect(s.joined.equals(await nodeStream(alg, 'compress', chunks, 9))).toBe(true);
      // Each non-final output ends on a sync flush: everything so far decodes from it.
      for (let i = 1; i < chunks.length; i++) {
        const prefix = Buffer.concat(s.outputs.slice(0, i));
        expect(inflateOneShot(alg, prefix, false).equals(Buffer.concat(chunks.slice(0, i)))).toBe(true);
      }
      expect(inflateOneShot(alg, s.joined).equals(Buffer.concat(chunks))).toBe(true);
      expect(acc.openStreams).toBe(0);
      ctx.close();
      expect(k.checkInvariants()).toEqual([]);
    },
  );

  it('a one-chunk stream (STREAM|END) equals the stateless result', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    const data = text(5000, 9);
    const s = new Stream(ctx, p, 'gzip', 'compress');
    expect(s.chunk(data, true).status).toBe(0);
    expect(s.joined.equals(zlib.gzipSync(data))).toBe(true);
    ctx.close();
  });

  it('stateless requests between chunks leave the stream alone', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'zlib');
    const s = new Stream(ctx, p, 'zlib', 'compress');
    const other = new Stream(ctx, p, 'gzip', 'compress');
    const a = text(3000, 1);
    const b = text(4000, 2);
    s.chunk(a, false);
    const { r, dst } = other.request(b, false);
    const c = ctx.submitSync({ ...r, stream: undefined });
    expect(c.status).toBe(0);
    expect(Buffer.from(p.read(dst, c.produced)).equals(zlib.gzipSync(b))).toBe(true);
    s.chunk(b, true);
    expect(zlib.inflateSync(s.joined).equals(Buffer.concat([a, b]))).toBe(true);
    ctx.close();
  });
});

describe('decompress streams', () => {
  it.each(ZIP_ALGORITHMS)('%s: compressed bytes cut anywhere decode to the original', async (alg) => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, alg);
    const data = Buffer.concat([text(50_000, 5), random(20_000, 6), text(30_000, 7)]);
    const packed =
      alg === 'deflate'
        ? zlib.deflateRawSync(data)
        : alg === 'zlib'
          ? zlib.deflateSync(data)
          : zlib.gzipSync(data);
    const cuts = [0, 1, 2, 777, 5000, packed.length - 9, packed.length - 1, packed.length];
    const chunks = cuts.slice(1).map((end, i) => packed.subarray(cuts[i], end));
    const s = new Stream(ctx, p, alg, 'decompress');
    chunks.forEach((c, i) => expect(s.chunk(c, i === chunks.length - 1, 128 * KiB).status).toBe(0));
    expect(s.joined.equals(data)).toBe(true);
    expect(s.joined.equals(await nodeStream(alg, 'decompress', chunks))).toBe(true);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a stream compressed on the device decompresses on the device', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    const chunks = CHUNKS();
    const c = new Stream(ctx, p, 'gzip', 'compress');
    chunks.forEach((x, i) => c.chunk(x, i === chunks.length - 1));
    const d = new Stream(ctx, p, 'gzip', 'decompress');
    c.outputs.forEach((x, i) => expect(d.chunk(x, i === c.outputs.length - 1, 256 * KiB).status).toBe(0));
    expect(d.joined.equals(Buffer.concat(chunks))).toBe(true);
    ctx.close();
  });
});

describe('streams on many queues at once', () => {
  it('each queue keeps its own stream; async chunks of a queue run in order', async () => {
    const { k, acc } = boot();
    const procs = [k.spawn(), k.spawn()];
    const ctxs = [
      openContext(procs[0], 'deflate'),
      openContext(procs[0], 'zlib'),
      openContext(procs[1], 'gzip'),
    ];
    const algs: ZipAlgorithm[] = ['deflate', 'zlib', 'gzip'];
    const data = [0, 1, 2].map((i) => Array.from({ length: 6 }, (_, j) => text(3000 + 1000 * j, 10 * i + j)));
    const results: Completion[][] = [[], [], []];
    const dsts: number[][] = [[], [], []];
    for (const [pi, proc] of procs.entries()) {
      proc.run(async () => {
        await Promise.all(
          ctxs.map(async (ctx, i) => {
            if (ctx.proc !== proc) return;
            const s = new Stream(ctx, proc, algs[i], 'compress');
            // All chunks in flight at once: the device must still take them in order.
            const reqs = data[i].map((c, j) => s.request(c, j === data[i].length - 1));
            dsts[i] = reqs.map((x) => x.dst);
            results[i] = await Promise.all(reqs.map((x) => ctx.submit(x.r)));
          }),
        );
      }, `p${pi}`);
    }
    await k.runUntilIdle();
    for (let i = 0; i < 3; i++) {
      expect(results[i].map((c) => c.status)).toEqual([0, 0, 0, 0, 0, 0]);
      const p = ctxs[i].proc;
      const joined = Buffer.concat(results[i].map((c, j) => p.read(dsts[i][j], c.produced)));
      expect(joined.equals(await nodeStream(algs[i], 'compress', data[i], 6))).toBe(true);
    }
    expect(acc.openStreams).toBe(0);
    for (const c of ctxs) c.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('stream errors', () => {
  it('a corrupt chunk fails -EIO; later chunks -EPIPE until the END chunk; then a new stream works', () => {
    const { k, acc } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'zlib');
    const data = text(40_000, 3);
    const packed = zlib.deflateSync(data);
    // After the 2-byte zlib header, 0xff starts a block of the reserved type 3: invalid.
    const bad = Buffer.alloc(100, 0xff);
    const s = new Stream(ctx, p, 'zlib', 'decompress');
    expect(s.chunk(packed.subarray(0, 2), false, 64 * KiB).status).toBe(0);
    expect(s.chunk(bad, false, 64 * KiB).status).toBe(ZIP_EBADDATA);
    expect(s.chunk(packed.subarray(200, 300), false, 64 * KiB).status).toBe(-ERRNO.EPIPE);
    expect(acc.openStreams).toBe(1);
    expect(s.chunk(packed.subarray(300), true, 64 * KiB).status).toBe(-ERRNO.EPIPE);
    expect(acc.openStreams).toBe(0);
    const again = new Stream(ctx, p, 'zlib', 'decompress');
    expect(again.chunk(packed, true, 64 * KiB)).toMatchObject({ status: 0, produced: data.length });
    expect(again.joined.equals(data)).toBe(true);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a truncated stream fails at its END chunk', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    const packed = zlib.gzipSync(text(10_000, 1));
    const s = new Stream(ctx, p, 'gzip', 'decompress');
    expect(s.chunk(packed.subarray(0, 50), false, 64 * KiB).status).toBe(0);
    expect(s.chunk(packed.subarray(50, packed.length - 4), true, 64 * KiB).status).toBe(ZIP_EBADDATA);
    ctx.close();
  });

  it('dst too small for a chunk: -ENOSPC, and the stream is broken (-EPIPE) until its END', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'deflate');
    const s = new Stream(ctx, p, 'deflate', 'compress');
    expect(s.chunk(text(1000, 1), false).status).toBe(0);
    expect(s.chunk(random(8000, 2), false, 100).status).toBe(-ERRNO.ENOSPC);
    expect(s.chunk(text(1000, 3), false).status).toBe(-ERRNO.EPIPE);
    expect(s.chunk(text(1000, 4), true).status).toBe(-ERRNO.EPIPE);
    expect(s.chunk(text(1000, 5), true).status).toBe(0);
    expect(zlib.inflateRawSync(s.outputs[1]).equals(Buffer.from(text(1000, 5)))).toBe(true);
    ctx.close();
  });

  it('a chunk naming another alg or op than its stream: -EINVAL, the stream goes on', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    const s = new Stream(ctx, p, 'gzip', 'compress');
    const a = text(2000, 1);
    const b = text(2000, 2);
    s.chunk(a, false);
    expect(new Stream(ctx, p, 'zlib', 'compress').chunk(b, false).status).toBe(-ERRNO.EINVAL);
    expect(new Stream(ctx, p, 'gzip', 'decompress').chunk(b, false).status).toBe(-ERRNO.EINVAL);
    s.chunk(b, true);
    expect(zlib.gunzipSync(s.joined).equals(Buffer.concat([a, b]))).toBe(true);
    ctx.close();
  });

  it('a queue given back mid-stream forgets it: the next user starts fresh', () => {
    const { k, acc } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'deflate', { device: 'hisi_zip-0' });
    new Stream(ctx, p, 'deflate', 'compress').chunk(text(5000, 1), false);
    expect(acc.openStreams).toBe(1);
    ctx.close();
    expect(acc.openStreams).toBe(0);
    // Every queue: whichever the next context gets, its first chunk opens a new stream.
    const ctxs = Array.from({ length: 16 }, () => openContext(p, 'deflate'));
    const data = text(3000, 2);
    for (const c of ctxs) {
      const s = new Stream(c, p, 'deflate', 'compress');
      expect(s.chunk(data, true).status).toBe(0);
      expect(s.joined.equals(zlib.deflateRawSync(data))).toBe(true);
    }
    for (const c of ctxs) c.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});
