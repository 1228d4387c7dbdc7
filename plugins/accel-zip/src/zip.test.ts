import { describe, expect, it } from '@jest/globals';
import * as zlib from 'node:zlib';
import {
  ACCEL_CQE,
  ACCEL_DB_SQ_TAIL,
  ACCEL_OP_COMPRESS,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  ACCEL_SQE_F_STREAM_END,
  ERRNO,
  MAP_SHARED,
  O_RDWR,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  UACCE_CMD_START_Q,
  UACCE_DEV_SVA,
  UACCE_QFRT_DUS,
  UACCE_QFRT_MMIO,
  accelDusLayout,
  createKernel,
  type Kernel,
  type Process,
} from '@svasim/kernel';
import { openContext, type AccelContext, type AccelRequest } from '@svasim/user';
import {
  ZIP_ALGORITHMS,
  ZIP_CONFIG,
  ZIP_CORE_MODEL,
  ZIP_EBADDATA,
  zipPlugin,
  type ZipAccelerator,
  type ZipAlgorithm,
} from './index';

const KiB = 1024;
const MiB = 1 << 20;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

function boot(): { k: Kernel; acc: ZipAccelerator } {
  const k = createKernel({ memory: { nodes: [{ size: '512MiB' }] }, plugins: [zipPlugin] });
  return { k, acc: k.plugin<ZipAccelerator>('hisi_zip') };
}

/** Deterministic bytes: xorshift32 (incompressible). */
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

const WORDS =
  'the quick brown fox jumps over lazy dog accelerator page fault iommu kernel zlib deflate stream'.split(
    ' ',
  );

/** Deterministic English-like text (compresses well). */
function text(len: number, seed: number): Uint8Array {
  const parts: string[] = [];
  let x = seed || 1;
  let n = 0;
  while (n < len) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = WORDS[(x >>> 16) % WORDS.length];
    parts.push(w);
    n += w.length + 1;
  }
  return new Uint8Array(Buffer.from(parts.join(' ')).subarray(0, len));
}

/** node:zlib's one-shot for @alg at @level (0: default) with the device's 32 KiB window. */
function reference(alg: ZipAlgorithm, data: Uint8Array, level: number): Buffer {
  const o = { level: level === 0 ? zlib.constants.Z_DEFAULT_COMPRESSION : level, windowBits: 15 };
  return alg === 'deflate'
    ? zlib.deflateRawSync(data, o)
    : alg === 'zlib'
      ? zlib.deflateSync(data, o)
      : zlib.gzipSync(data, o);
}

/** A mapping holding @data (at least one page). */
function place(p: Process, data: Uint8Array): number {
  const a = p.mmap(Math.max(PAGE_SIZE, data.length));
  p.write(a, data);
  return a;
}

const req = (
  op: 'compress' | 'decompress',
  alg: string,
  src: number,
  srcLen: number,
  dst: number,
  dstLen: number,
  level?: number,
): AccelRequest => ({
  op,
  alg,
  src,
  srcLen,
  dst,
  dstLen,
  level,
});

/** Compress @data on the device, check it equals node:zlib, decompress it back, check the bytes. */
function roundTrip(ctx: AccelContext, p: Process, alg: ZipAlgorithm, data: Uint8Array, level: number): void {
  const want = reference(alg, data, level);
  const src = place(p, data);
  const bound = data.length + (data.length >> 6) + 1024;
  const dst = p.mmap(bound);
  const c = ctx.submitSync(req('compress', alg, src, data.length, dst, bound, level));
  expect(c).toMatchObject({ status: 0, consumed: data.length, produced: want.length });
  expect(same(p.read(dst, c.produced), want)).toBe(true);
  const back = p.mmap(Math.max(PAGE_SIZE, data.length));
  const d = ctx.submitSync(req('decompress', alg, dst, c.produced, back, data.length));
  expect(d).toMatchObject({ status: 0, produced: data.length });
  expect(same(p.read(back, data.length), Buffer.from(data))).toBe(true);
  p.munmap(src, Math.max(PAGE_SIZE, data.length));
  p.munmap(dst, bound);
  p.munmap(back, Math.max(PAGE_SIZE, data.length));
}

describe('hisi_zip device', () => {
  it('registers as hisi_zip-0 with SVA and lists deflate, zlib, gzip in that order', () => {
    const { k, acc } = boot();
    expect(acc.devPath).toBe('/dev/hisi_zip-0');
    const base = '/sys/class/uacce/hisi_zip-0';
    expect(k.readSysfs(`${base}/flags`)).toBe(`${UACCE_DEV_SVA}\n`);
    expect(k.readSysfs(`${base}/algorithms`).trim().split('\n')).toEqual(['deflate', 'zlib', 'gzip']);
    expect(k.readSysfs(`${base}/api`).trim()).toBe('hisi_qm_v2');
    expect(k.readSysfs(`${base}/available_instances`)).toBe(`${ZIP_CONFIG.queues}\n`);
    expect(ZIP_ALGORITHMS).toEqual(['deflate', 'zlib', 'gzip']);
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    expect(ctx.device).toBe('hisi_zip-0');
    expect(ctx.algorithms).toEqual(['deflate', 'zlib', 'gzip']);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('every timing figure names a source or says assumption', () => {
    const cited = /^assumption: |perf\.rst|zip_main\.c|CALIBRATION\.md/;
    for (const s of [...Object.values(ZIP_CONFIG.timing.sources), ...Object.values(ZIP_CORE_MODEL.sources)])
      expect(s).toMatch(cited);
  });
});

describe('stateless compress and decompress: byte-identical to node:zlib', () => {
  it('all three algorithms, several levels, random and text, 1 byte to 1 MiB', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'deflate');
    const sizes = [1, 100, 4095, 64 * KiB + 7, MiB];
    let seed = 1;
    for (const alg of ZIP_ALGORITHMS)
      for (const size of sizes)
        for (const [kind, level] of [
          ['random', 1],
          ['text', 0],
          ['text', 9],
        ] as const)
          roundTrip(ctx, p, alg, kind === 'random' ? random(size, seed++) : text(size, seed++), level);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('levels 1..9 each give zlib output of that level; 0 is the default (6)', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'zlib');
    const data = text(20 * KiB, 7);
    const src = place(p, data);
    const dst = p.mmap(64 * KiB);
    const outs: Buffer[] = [];
    for (let level = 0; level <= 9; level++) {
      const c = ctx.submitSync(req('compress', 'zlib', src, data.length, dst, 64 * KiB, level));
      expect(c.status).toBe(0);
      outs.push(Buffer.from(p.read(dst, c.produced)));
      expect(outs[level].equals(reference('zlib', data, level))).toBe(true);
    }
    // The level reaches zlib: level 1 and level 9 differ, and 0 is level 6.
    expect(outs[1].equals(outs[9])).toBe(false);
    expect(outs[0].equals(outs[6])).toBe(true);
    expect([outs[1][1], outs[6][1], outs[9][1]]).toEqual([0x01, 0x9c, 0xda]); // FLEVEL in the zlib header
    ctx.close();
  });

  it('16 MiB of random data (deflate, level 1) and of text (gzip, default level)', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    roundTrip(ctx, p, 'deflate', random(16 * MiB, 99), 1);
    roundTrip(ctx, p, 'gzip', text(16 * MiB, 98), 0);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('bad input completes with a negative status, never a throw or a hang', () => {
  it('corrupt or truncated compressed input: -EIO (hisi_zip acomp callback)', () => {
    const { k, acc } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'zlib');
    const data = text(10 * KiB, 3);
    const good = reference('zlib', data, 6);
    const out = p.mmap(16 * KiB);
    const garbage = place(p, random(512, 5));
    const truncated = place(p, good.subarray(0, good.length >> 1));
    const flipped = Buffer.from(good);
    flipped[good.length - 2] ^= 0xff; // the adler32 trailer
    const badsum = place(p, flipped);
    const gz = place(p, reference('gzip', data, 6));
    for (const [alg, src, len] of [
      ['zlib', garbage, 512],
      ['deflate', garbage, 512],
      ['gzip', garbage, 512],
      ['zlib', truncated, good.length >> 1],
      ['zlib', badsum, good.length],
      ['zlib', gz, 100], // a gzip stream is not a zlib one
      ['gzip', garbage, 0], // nothing at all
    ] as const) {
      const c = ctx.submitSync(req('decompress', alg, src, len, out, 16 * KiB));
      expect(c).toMatchObject({ status: ZIP_EBADDATA, produced: 0 });
    }
    expect(ZIP_EBADDATA).toBe(-ERRNO.EIO);
    expect(acc.zipStats.badData).toBe(7);
    // The queue still works.
    const src = place(p, good);
    expect(ctx.submitSync(req('decompress', 'zlib', src, good.length, out, 16 * KiB))).toMatchObject({
      status: 0,
      produced: data.length,
    });
    expect(same(p.read(out, data.length), Buffer.from(data))).toBe(true);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('dst too small: -ENOSPC for compress and decompress, nothing written past dst_len', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    const data = random(8 * KiB, 11);
    const src = place(p, data);
    const dst = p.mmap(4 * PAGE_SIZE);
    const canary = random(4 * PAGE_SIZE, 12);
    p.write(dst, canary);
    expect(ctx.submitSync(req('compress', 'gzip', src, data.length, dst, 8 * KiB)).status).toBe(
      -ERRNO.ENOSPC,
    );
    expect(ctx.submitSync(req('compress', 'gzip', src, data.length, dst, 0)).status).toBe(-ERRNO.ENOSPC);
    expect(same(p.read(dst, 4 * PAGE_SIZE), Buffer.from(canary))).toBe(true);
    // A zip bomb: 16 MiB of zeros compress to ~16 KiB; 1 MiB of dst is not enough.
    const bomb = place(p, reference('gzip', new Uint8Array(16 * MiB), 9));
    const big = p.mmap(MiB);
    expect(ctx.submitSync(req('decompress', 'gzip', bomb, 16 * KiB + 300, big, MiB)).status).toBe(
      -ERRNO.ENOSPC,
    );
    const packed = reference('deflate', data, 6);
    const psrc = place(p, packed);
    expect(
      ctx.submitSync(req('decompress', 'deflate', psrc, packed.length, dst, data.length - 1)).status,
    ).toBe(-ERRNO.ENOSPC);
    expect(ctx.submitSync(req('decompress', 'deflate', psrc, packed.length, dst, 0)).status).toBe(
      -ERRNO.ENOSPC,
    );
    expect(same(p.read(dst, 4 * PAGE_SIZE), Buffer.from(canary))).toBe(true);
    // Exactly enough is enough.
    expect(ctx.submitSync(req('decompress', 'deflate', psrc, packed.length, dst, data.length))).toMatchObject(
      {
        status: 0,
        produced: data.length,
      },
    );
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('unmapped or read-only buffers: -EFAULT', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'deflate');
    const buf = place(p, text(PAGE_SIZE, 1));
    const ro = p.mmap(PAGE_SIZE, { prot: PROT_READ });
    expect(ctx.submitSync(req('compress', 'deflate', 0x10000, 100, buf, PAGE_SIZE)).status).toBe(
      -ERRNO.EFAULT,
    );
    expect(ctx.submitSync(req('compress', 'deflate', buf, 100, 0x20000, PAGE_SIZE)).status).toBe(
      -ERRNO.EFAULT,
    );
    expect(ctx.submitSync(req('compress', 'deflate', buf, 100, ro, PAGE_SIZE)).status).toBe(-ERRNO.EFAULT);
    expect(ctx.submitSync(req('decompress', 'deflate', 0x30000, 100, buf, PAGE_SIZE)).status).toBe(
      -ERRNO.EFAULT,
    );
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a level above 9: -EINVAL; an alg the device does not list: the library refuses it (-EINVAL)', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'gzip');
    const buf = place(p, text(PAGE_SIZE, 2));
    const dst = p.mmap(2 * PAGE_SIZE);
    expect(ctx.submitSync(req('compress', 'gzip', buf, 100, dst, 2 * PAGE_SIZE, 10)).status).toBe(
      -ERRNO.EINVAL,
    );
    expect(ctx.submitSync(req('decompress', 'gzip', buf, 100, dst, 2 * PAGE_SIZE, 0xffffffff)).status).toBe(
      -ERRNO.EINVAL,
    );
    expect(ctx.submitSync(req('compress', 'lz77_zstd', buf, 100, dst, 2 * PAGE_SIZE))).toMatchObject({
      status: -ERRNO.EINVAL,
      latencyNs: 0,
    });
    // An op the device does not do: the base's -EOPNOTSUPP.
    expect(ctx.submitSync({ ...req('compress', 'gzip', buf, 16, dst, 16), op: 'encrypt' }).status).toBe(
      -ERRNO.EOPNOTSUPP,
    );
    ctx.close();
  });

  it('an algorithm no device offers: openContext ENODEV; a closed context: EBADF', async () => {
    const { k } = boot();
    const p = k.spawn();
    expect(() => openContext(p, 'lz4')).toThrow(errno('ENODEV'));
    expect(() => openContext(p, 'cbc(aes)')).toThrow(errno('ENODEV'));
    const ctx = openContext(p, 'zlib');
    const buf = place(p, text(PAGE_SIZE, 2));
    ctx.close();
    expect(() => ctx.submitSync(req('compress', 'zlib', buf, 10, buf, 10))).toThrow(errno('EBADF'));
    await expect(ctx.submit(req('compress', 'zlib', buf, 10, buf, 10))).rejects.toMatchObject({
      code: 'EBADF',
    });
    expect(k.checkInvariants()).toEqual([]);
  });
});

/** A raw queue on hisi_zip-0, for descriptors @svasim/user never builds. */
function rawQueue(k: Kernel, p: Process) {
  const name = 'hisi_zip-0';
  const dusSize = Number(k.readSysfs(`/sys/class/uacce/${name}/region_dus_size`));
  const fd = p.open(`/dev/${name}`, O_RDWR);
  const rw = PROT_READ | PROT_WRITE;
  const db = p.mmap(PAGE_SIZE, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_MMIO * PAGE_SIZE });
  const dus = p.mmap(dusSize, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_DUS * PAGE_SIZE });
  expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
  const layout = accelDusLayout(ACCEL_QUEUE_CTRL.decode(p.read(dus, ACCEL_QUEUE_CTRL.size)).sq_depth);
  let tail = 0;
  return {
    submit(fields: Partial<Parameters<typeof ACCEL_SQE.encode>[0]>): void {
      const sqe = ACCEL_SQE.encode({
        op: ACCEL_OP_COMPRESS,
        alg: 0,
        flags: 0,
        tag: tail + 1,
        src: 0,
        dst: 0,
        src_len: 0,
        dst_len: 0,
        key: 0,
        iv: 0,
        key_len: 0,
        iv_len: 0,
        level: 0,
        ...fields,
      });
      p.write(dus + layout.sqOff + (tail % layout.sqDepth) * ACCEL_SQE.size, sqe);
      tail++;
      const bell = new Uint8Array(4);
      new DataView(bell.buffer).setUint32(0, tail, true);
      p.write(db + ACCEL_DB_SQ_TAIL, bell);
    },
    /** Completion statuses in submission (tag) order. */
    statuses(): number[] {
      const c = ACCEL_QUEUE_CTRL.decode(p.read(dus, ACCEL_QUEUE_CTRL.size));
      const out: Array<{ tag: number; status: number }> = [];
      for (let i = c.cq_head; i !== c.cq_tail; i++) {
        const cqe = ACCEL_CQE.decode(
          p.read(dus + layout.cqOff + (i % layout.cqDepth) * ACCEL_CQE.size, ACCEL_CQE.size),
        );
        out.push({ tag: Number(cqe.tag), status: cqe.status });
      }
      return out.sort((a, b) => a.tag - b.tag).map((x) => x.status);
    },
  };
}

describe('descriptors only a raw queue can send', () => {
  it('an alg index outside the list and STREAM_END without STREAM: -EINVAL', async () => {
    const { k } = boot();
    const p = k.spawn();
    const q = rawQueue(k, p);
    const buf = place(p, text(PAGE_SIZE, 4));
    const dst = p.mmap(2 * PAGE_SIZE);
    q.submit({ alg: 3, src: buf, src_len: 100, dst, dst_len: 2 * PAGE_SIZE });
    q.submit({ alg: 0xffff, src: buf, src_len: 100, dst, dst_len: 2 * PAGE_SIZE });
    q.submit({ alg: 2, flags: ACCEL_SQE_F_STREAM_END, src: buf, src_len: 100, dst, dst_len: 2 * PAGE_SIZE });
    q.submit({ alg: 2, flags: 0x4, src: buf, src_len: 100, dst, dst_len: 2 * PAGE_SIZE });
    q.submit({ alg: 2, src: buf, src_len: 100, dst, dst_len: 2 * PAGE_SIZE });
    await k.runUntilIdle();
    expect(q.statuses()).toEqual([-ERRNO.EINVAL, -ERRNO.EINVAL, -ERRNO.EINVAL, -ERRNO.EOPNOTSUPP, 0]);
    expect(k.checkInvariants()).toEqual([]);
  });
});
