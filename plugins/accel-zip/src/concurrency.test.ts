import { describe, expect, it } from '@jest/globals';
import * as zlib from 'node:zlib';
import { ERRNO, PAGE_SIZE, createKernel, type Kernel, type Process } from '@svasim/kernel';
import { openContext, type AccelContext, type AccelRequest, type Completion } from '@svasim/user';
import { ZIP_ALGORITHMS, ZIP_CONFIG, zipPlugin, type ZipAccelerator, type ZipAlgorithm } from './index';

const KiB = 1024;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });

function boot(seed = 1): { k: Kernel; acc: ZipAccelerator } {
  const k = createKernel({ seed, memory: { nodes: [{ size: '512MiB' }] }, plugins: [zipPlugin] });
  return { k, acc: k.plugin<ZipAccelerator>('hisi_zip') };
}

function data(len: number, seed: number): Uint8Array {
  // Half text-like (compressible), half noise.
  const b = new Uint8Array(len);
  let x = seed || 1;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = i % 2048 < 1024 ? 97 + ((x >>> 16) % 8) : x >>> 24;
  }
  return b;
}

function compressRef(alg: ZipAlgorithm, b: Uint8Array): Buffer {
  return alg === 'deflate' ? zlib.deflateRawSync(b) : alg === 'zlib' ? zlib.deflateSync(b) : zlib.gzipSync(b);
}

interface Job {
  ctx: AccelContext;
  req: AccelRequest;
  /** The bytes dst must hold afterwards. */
  want: Buffer;
}

/** A compress or decompress job of @len bytes on @ctx, with its buffers in the context's process. */
function job(
  ctx: AccelContext,
  alg: ZipAlgorithm,
  op: 'compress' | 'decompress',
  len: number,
  seed: number,
): Job {
  const p: Process = ctx.proc;
  const plain = data(len, seed);
  const packed = compressRef(alg, plain);
  const input = op === 'compress' ? plain : packed;
  const want = op === 'compress' ? packed : Buffer.from(plain);
  const src = p.mmap(Math.max(PAGE_SIZE, input.length));
  p.write(src, input);
  const dstLen = want.length + 64;
  const dst = p.mmap(Math.max(PAGE_SIZE, dstLen));
  return { ctx, req: { op, alg, src, srcLen: input.length, dst, dstLen }, want };
}

describe('many queues and processes at once', () => {
  it('4 processes x 3 contexts, every request async at once: all results exact', async () => {
    const run = async (seed: number) => {
      const { k, acc } = boot(seed);
      const procs = [0, 1, 2, 3].map(() => k.spawn());
      const ctxs = procs.flatMap((p, i) =>
        ZIP_ALGORITHMS.map((alg) => openContext(p, alg, { mode: i % 2 ? 'async' : 'sync' })),
      );
      expect(k.readSysfs('/sys/class/uacce/hisi_zip-0/available_instances')).toBe(
        `${ZIP_CONFIG.queues! - 12}\n`,
      );
      const jobs: Job[] = [];
      ctxs.forEach((ctx, i) => {
        const alg = ctx.algorithms[i % 3] as ZipAlgorithm;
        for (let j = 0; j < 4; j++)
          jobs.push(
            job(
              ctx,
              alg,
              j % 2 ? 'decompress' : 'compress',
              1000 + ((i * 7 + j * 13) % 9) * 7 * KiB,
              i * 10 + j,
            ),
          );
      });
      const got = new Map<Job, Completion>();
      for (const p of procs)
        p.run(async () => {
          const mine = jobs.filter((j) => j.ctx.proc === p);
          const cs = await Promise.all(mine.map((j) => j.ctx.submit(j.req)));
          cs.forEach((c, i) => got.set(mine[i], c));
        });
      await k.runUntilIdle();
      expect(got.size).toBe(jobs.length);
      for (const j of jobs) {
        const c = got.get(j)!;
        expect(c).toMatchObject({ status: 0, produced: j.want.length });
        expect(Buffer.from(j.ctx.proc.read(j.req.dst, c.produced)).equals(j.want)).toBe(true);
      }
      expect(acc.stats).toMatchObject({ submitted: jobs.length, completed: jobs.length, errors: 0 });
      for (const c of ctxs) c.close();
      expect(k.checkInvariants()).toEqual([]);
      return { latencies: jobs.map((j) => got.get(j)!.latencyNs), end: k.now() };
    };
    const a = await run(5);
    // Deterministic for a seed.
    expect(await run(5)).toEqual(a);
  });

  it('more contexts than queues: EBUSY; closing one gives its queue back', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctxs = Array.from({ length: ZIP_CONFIG.queues! }, () => openContext(p, 'gzip'));
    expect(() => openContext(k.spawn(), 'zlib')).toThrow(errno('EBUSY'));
    ctxs[3].close();
    const again = openContext(k.spawn(), 'zlib');
    for (const c of [...ctxs, again]) c.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it("a process's buffers are its own: another process's address faults as unmapped (-EFAULT)", () => {
    const { k } = boot();
    const a = k.spawn();
    const b = k.spawn();
    const ctxA = openContext(a, 'gzip');
    const j = job(ctxA, 'gzip', 'compress', 4 * KiB, 1);
    // b's context, a's addresses: b has nothing mapped there.
    const ctxB = openContext(b, 'gzip');
    expect(ctxB.submitSync(j.req).status).toBe(-ERRNO.EFAULT);
    expect(ctxA.submitSync(j.req).status).toBe(0);
    ctxA.close();
    ctxB.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('hot removal with queues open', () => {
  it('pending requests complete negative, later submits fail, nothing is left behind', async () => {
    const { k, acc } = boot();
    const procs = [k.spawn(), k.spawn()];
    const ctxs = procs.map((p) => openContext(p, 'deflate'));
    // Per process one small request (done long before the removal) and two big ones (still
    // queued or on an engine when the device goes).
    const jobs = ctxs.flatMap((ctx, i) =>
      [4, 2048, 2048].map((kib, j) => job(ctx, 'deflate', 'compress', kib * KiB, i * 3 + j)),
    );
    const settled = new Map<Job, Completion | Error>();
    for (const p of procs)
      p.run(async () => {
        const mine = jobs.filter((j) => j.ctx.proc === p);
        const rs = await Promise.allSettled(mine.map((j) => j.ctx.submit(j.req)));
        rs.forEach((r, i) => settled.set(mine[i], r.status === 'fulfilled' ? r.value : (r.reason as Error)));
      });
    await k.runFor(300_000);
    expect(acc.stats.completed).toBe(2);
    expect(acc.busy).toBe(4);
    acc.unrealize();
    expect(acc.busy).toBe(0);
    expect(acc.stats.errors).toBe(4);
    await k.runUntilIdle();
    expect(settled.size).toBe(jobs.length);
    for (const j of jobs) {
      const r = settled.get(j)!;
      if (j.req.srcLen === 4 * KiB) {
        // Finished before the removal: exact.
        expect(r).toMatchObject({ status: 0, produced: j.want.length });
        expect(Buffer.from(j.ctx.proc.read(j.req.dst, j.want.length)).equals(j.want)).toBe(true);
      } else {
        // Cancelled by the removal: the library sees the rings gone and answers -ENODEV.
        expect(r).not.toBeInstanceOf(Error);
        expect((r as { status: number }).status).toBe(-ERRNO.ENODEV);
      }
    }
    // The device is gone: no new context; the old ones answer -ENODEV.
    expect(() => openContext(k.spawn(), 'deflate')).toThrow(errno('ENODEV'));
    const late = job(ctxs[0], 'deflate', 'compress', KiB, 99);
    expect(ctxs[0].submitSync(late.req).status).toBe(-ERRNO.ENODEV);
    await expect(ctxs[1].submit(late.req)).resolves.toMatchObject({ status: -ERRNO.ENODEV });
    // close() releases everything (PUT_Q's ENXIO on a removed device is not an error for it).
    for (const c of ctxs) c.close();
    for (const c of ctxs) expect(c.isClosed).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    // The processes exit cleanly afterwards.
    for (const p of procs) p.exit();
    await k.runUntilIdle();
    expect(k.checkInvariants()).toEqual([]);
  });
});
