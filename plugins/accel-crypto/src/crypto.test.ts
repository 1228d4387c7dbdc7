/**
 * Real results: every algorithm byte-identical to node:crypto (and to published known-answer
 * vectors), encrypt/decrypt round trips on random and text data from one block (one byte for ctr
 * and the digests) to 16 MiB, and a fast-check property over random keys, IVs and lengths. All
 * through @svasim/user, as an application would use the device.
 */
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PAGE_SIZE, createKernel, type Process } from '@svasim/kernel';
import { openContext, type AccelContext, type AccelOp, type Completion } from '@svasim/user';
import { GCM_TAG_SIZE, SEC_MAX_INPUT_DATA_LEN, cryptoPlugin } from './index';

const MiB = 1 << 20;
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

function boot() {
  const k = createKernel({ seed: 7, memory: { nodes: [{ size: '512MiB' }] }, plugins: [cryptoPlugin] });
  const p = k.spawn();
  const ctx = openContext(p, 'cbc(aes)');
  return { k, p, ctx };
}

/** Deterministic pseudo-random bytes (xorshift32), so a failure reproduces. */
function randomBytes(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const TEXT = Buffer.from(
  'It was the best of times, it was the worst of times; the accelerator shared the address space ' +
    'of the process and every page it touched had to be there when the device looked for it.\n',
);
function text(len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let off = 0; off < len; off += TEXT.length)
    out.set(TEXT.subarray(0, Math.min(TEXT.length, len - off)), off);
  return out;
}

interface Job {
  op: AccelOp;
  alg: string;
  data: Uint8Array;
  key?: Uint8Array;
  iv?: Uint8Array;
  /** gcm: the AAD length at the front of data. */
  level?: number;
  dstLen?: number;
}

/** One request through the context: data copied into fresh memory, the output read back. */
function run(ctx: AccelContext, p: Process, job: Job): { c: Completion; out: Uint8Array } {
  const dstLen = job.dstLen ?? job.data.length + 64;
  const src = p.mmap(Math.max(job.data.length, 1));
  const dst = p.mmap(Math.max(dstLen, 1));
  if (job.data.length) p.write(src, job.data);
  const c = ctx.submitSync({
    op: job.op,
    alg: job.alg,
    src,
    srcLen: job.data.length,
    dst,
    dstLen,
    key: job.key,
    iv: job.iv,
    level: job.level,
  });
  const out = c.status === 0 && c.produced ? p.read(dst, c.produced) : new Uint8Array(0);
  p.munmap(src, Math.max(job.data.length, 1));
  p.munmap(dst, Math.max(dstLen, 1));
  return { c, out };
}

/** node:crypto's answer for a cipher mode, no padding. */
function nodeCipher(
  mode: 'cbc' | 'ctr' | 'xts',
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
): Uint8Array {
  const bits = mode === 'xts' ? key.length * 4 : key.length * 8;
  const c = createCipheriv(`aes-${bits}-${mode}`, key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/** node:crypto's gcm: AAD || ciphertext || tag (the device's layout). */
function nodeGcm(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv(`aes-${key.length * 8}-gcm` as 'aes-128-gcm', key, iv);
  if (aad.length) c.setAAD(aad);
  const body = Buffer.concat([c.update(data), c.final()]);
  return Buffer.concat([aad, body, c.getAuthTag()]);
}

const CIPHERS = [
  { alg: 'cbc(aes)', mode: 'cbc', keys: [16, 24, 32] },
  { alg: 'ctr(aes)', mode: 'ctr', keys: [16, 24, 32] },
  { alg: 'xts(aes)', mode: 'xts', keys: [32, 64] },
] as const;

describe('known-answer vectors', () => {
  it('match the published vectors (NIST SP 800-38A, IEEE 1619, GCM spec, FIPS 180, RFC 4231)', () => {
    const { k, p, ctx } = boot();
    const nistKey = hex('2b7e151628aed2a6abf7158809cf4f3c');
    const nistPt = hex('6bc1bee22e409f96e93d7e117393172a');
    const cases: Array<[Job, string]> = [
      // SP 800-38A F.2.1 CBC-AES128.Encrypt, block 1
      [
        {
          op: 'encrypt',
          alg: 'cbc(aes)',
          data: nistPt,
          key: nistKey,
          iv: hex('000102030405060708090a0b0c0d0e0f'),
        },
        '7649abac8119b246cee98e9b12e9197d',
      ],
      // SP 800-38A F.5.1 CTR-AES128.Encrypt, block 1
      [
        {
          op: 'encrypt',
          alg: 'ctr(aes)',
          data: nistPt,
          key: nistKey,
          iv: hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff'),
        },
        '874d6191b620e3261bef6864990db6ce',
      ],
      // IEEE 1619-2007 XTS-AES-128 vector 2 (data unit 0x3333333333 as the little-endian tweak)
      [
        {
          op: 'encrypt',
          alg: 'xts(aes)',
          data: new Uint8Array(32).fill(0x44),
          key: Uint8Array.from([...new Uint8Array(16).fill(0x11), ...new Uint8Array(16).fill(0x22)]),
          iv: hex('33333333330000000000000000000000'),
        },
        'c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0',
      ],
      // McGrew & Viega GCM test case 2: ciphertext || tag
      [
        {
          op: 'encrypt',
          alg: 'gcm(aes)',
          data: new Uint8Array(16),
          key: new Uint8Array(16),
          iv: new Uint8Array(12),
        },
        '0388dace60b6a392f328c2b971b2fe78' + 'ab6e47d42cec13bdf53a67b21257bddf',
      ],
      [{ op: 'digest', alg: 'sha1', data: Buffer.from('abc') }, 'a9993e364706816aba3e25717850c26c9cd0d89d'],
      [
        { op: 'digest', alg: 'sha256', data: Buffer.from('abc') },
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      ],
      [
        { op: 'digest', alg: 'sha512', data: Buffer.from('abc') },
        'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
          '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
      ],
      // The empty message (a BD3 device accepts it).
      [
        { op: 'digest', alg: 'sha256', data: new Uint8Array(0) },
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ],
      // RFC 4231 test case 2
      [
        {
          op: 'hmac',
          alg: 'hmac(sha256)',
          data: Buffer.from('what do ya want for nothing?'),
          key: Buffer.from('Jefe'),
        },
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      ],
    ];
    for (const [job, want] of cases) {
      const { c, out } = run(ctx, p, job);
      expect({ alg: job.alg, status: c.status, out: Buffer.from(out).toString('hex') }).toEqual({
        alg: job.alg,
        status: 0,
        out: want,
      });
      expect(c.produced).toBe(want.length / 2);
      expect(c.consumed).toBe(job.data.length);
    }
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('byte-identical to node:crypto', () => {
  it('every cipher mode and key size, both directions, random and text data', () => {
    const { k, p, ctx } = boot();
    let seed = 1;
    for (const { alg, mode, keys } of CIPHERS)
      for (const keyLen of keys)
        for (const len of mode === 'ctr' ? [1, 15, 16, 1000, 65_536 + 3] : [16, 48, 4096, 65_536]) {
          for (const data of [randomBytes(len, seed++), text(len)]) {
            const key = randomBytes(keyLen, seed++);
            const iv = randomBytes(16, seed++);
            const enc = run(ctx, p, { op: 'encrypt', alg, data, key, iv });
            const want = nodeCipher(mode, key, iv, data);
            expect([alg, keyLen, len, enc.c.status, enc.c.produced]).toEqual([alg, keyLen, len, 0, len]);
            expect(same(enc.out, want)).toBe(true);
            const dec = run(ctx, p, { op: 'decrypt', alg, data: enc.out, key, iv });
            expect(dec.c.status).toBe(0);
            expect(same(dec.out, data)).toBe(true);
          }
        }
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('xts with a partial final block: ciphertext stealing, as node and the kernel do', () => {
    const { p, ctx } = boot();
    for (const len of [17, 31, 33, 4095]) {
      const key = randomBytes(64, len);
      const iv = randomBytes(16, len + 1);
      const data = randomBytes(len, len + 2);
      const enc = run(ctx, p, { op: 'encrypt', alg: 'xts(aes)', data, key, iv });
      expect(enc.c).toMatchObject({ status: 0, produced: len });
      expect(same(enc.out, nodeCipher('xts', key, iv, data))).toBe(true);
      expect(same(run(ctx, p, { op: 'decrypt', alg: 'xts(aes)', data: enc.out, key, iv }).out, data)).toBe(
        true,
      );
    }
    ctx.close();
  });

  it('gcm(aes): ciphertext || tag out, with and without AAD, every key size; decrypt verifies', () => {
    const { k, p, ctx } = boot();
    let seed = 100;
    for (const keyLen of [16, 24, 32])
      for (const [aadLen, len] of [
        [0, 0],
        [0, 1],
        [0, 16],
        [13, 1000],
        [20, 4096],
        [0, 65_536],
      ]) {
        const key = randomBytes(keyLen, seed++);
        const iv = randomBytes(12, seed++);
        const aad = text(aadLen);
        const data = randomBytes(len, seed++);
        const enc = run(ctx, p, {
          op: 'encrypt',
          alg: 'gcm(aes)',
          data: Buffer.concat([aad, data]),
          key,
          iv,
          level: aadLen,
        });
        expect(enc.c).toMatchObject({
          status: 0,
          produced: aadLen + len + GCM_TAG_SIZE,
          consumed: aadLen + len,
        });
        expect(same(enc.out, nodeGcm(key, iv, aad, data))).toBe(true);
        const dec = run(ctx, p, { op: 'decrypt', alg: 'gcm(aes)', data: enc.out, key, iv, level: aadLen });
        expect(dec.c).toMatchObject({ status: 0, produced: aadLen + len });
        expect(same(dec.out, Buffer.concat([aad, data]))).toBe(true);
      }
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('sha1, sha256, sha512 and hmac(sha256) from 1 byte up', () => {
    const { k, p, ctx } = boot();
    for (const len of [1, 55, 56, 64, 1000, 4096 + 7, MiB + 1]) {
      const data = len % 2 ? randomBytes(len, len) : text(len);
      for (const alg of ['sha1', 'sha256', 'sha512'] as const) {
        const { c, out } = run(ctx, p, { op: 'digest', alg, data });
        expect(c.status).toBe(0);
        expect(Buffer.from(out).toString('hex')).toBe(createHash(alg).update(data).digest('hex'));
      }
      for (const keyLen of [4, 32, 64]) {
        const key = randomBytes(keyLen, len + keyLen);
        const { c, out } = run(ctx, p, { op: 'hmac', alg: 'hmac(sha256)', data, key });
        expect(c).toMatchObject({ status: 0, produced: 32 });
        expect(Buffer.from(out).toString('hex')).toBe(createHmac('sha256', key).update(data).digest('hex'));
      }
    }
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('in place (dst == src) works: the engine reads the whole source before writing', () => {
    const { p, ctx } = boot();
    const key = randomBytes(32, 1);
    const iv = randomBytes(16, 2);
    const data = text(8192);
    const buf = p.mmap(8192);
    p.write(buf, data);
    const c = ctx.submitSync({
      op: 'encrypt',
      alg: 'ctr(aes)',
      src: buf,
      srcLen: 8192,
      dst: buf,
      dstLen: 8192,
      key,
      iv,
    });
    expect(c.status).toBe(0);
    expect(same(p.read(buf, 8192), nodeCipher('ctr', key, iv, data))).toBe(true);
    ctx.close();
  });
});

describe('large requests', () => {
  it('the largest BD (16 MiB - 512): cbc round trip and sha256, byte-exact', () => {
    const { k, p, ctx } = boot();
    const len = SEC_MAX_INPUT_DATA_LEN;
    const data = randomBytes(len, 99);
    const key = randomBytes(32, 5);
    const iv = randomBytes(16, 6);
    const enc = run(ctx, p, { op: 'encrypt', alg: 'cbc(aes)', data, key, iv, dstLen: len });
    expect(enc.c).toMatchObject({ status: 0, produced: len });
    expect(same(enc.out, nodeCipher('cbc', key, iv, data))).toBe(true);
    const dec = run(ctx, p, { op: 'decrypt', alg: 'cbc(aes)', data: enc.out, key, iv, dstLen: len });
    expect(dec.c.status).toBe(0);
    expect(same(dec.out, data)).toBe(true);
    const h = run(ctx, p, { op: 'digest', alg: 'sha256', data });
    expect(Buffer.from(h.out).toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('16 MiB of text in two BDs with the IV chained equals node one-shot (cbc and ctr)', () => {
    const { k, p, ctx } = boot();
    const total = 16 * MiB;
    const data = text(total);
    const key = randomBytes(16, 11);
    const iv0 = randomBytes(16, 12);
    const split = SEC_MAX_INPUT_DATA_LEN; // a whole number of blocks
    const src = p.mmap(total);
    const dst = p.mmap(total);
    p.write(src, data);

    // cbc: the next IV is the last ciphertext block (what UADK's update_iv does between BDs).
    const a = ctx.submitSync({
      op: 'encrypt',
      alg: 'cbc(aes)',
      src,
      srcLen: split,
      dst,
      dstLen: split,
      key,
      iv: iv0,
    });
    const iv1 = p.read(dst + split - 16, 16);
    const b = ctx.submitSync({
      op: 'encrypt',
      alg: 'cbc(aes)',
      src: src + split,
      srcLen: total - split,
      dst: dst + split,
      dstLen: total - split,
      key,
      iv: iv1,
    });
    expect([a.status, b.status, a.produced + b.produced]).toEqual([0, 0, total]);
    expect(same(p.read(dst, total), nodeCipher('cbc', key, iv0, data))).toBe(true);

    // ctr: the counter advances by the blocks of the first BD (UADK's ctr_iv_inc).
    const ctrIv1 = Buffer.from(iv0);
    let carry = split / 16;
    for (let i = 15; i >= 0 && carry; i--) {
      carry += ctrIv1[i];
      ctrIv1[i] = carry & 0xff;
      carry = Math.floor(carry / 256);
    }
    const c1 = ctx.submitSync({
      op: 'encrypt',
      alg: 'ctr(aes)',
      src,
      srcLen: split,
      dst,
      dstLen: split,
      key,
      iv: iv0,
    });
    const c2 = ctx.submitSync({
      op: 'encrypt',
      alg: 'ctr(aes)',
      src: src + split,
      srcLen: total - split,
      dst: dst + split,
      dstLen: total - split,
      key,
      iv: ctrIv1,
    });
    expect([c1.status, c2.status]).toEqual([0, 0]);
    expect(same(p.read(dst, total), nodeCipher('ctr', key, iv0, data))).toBe(true);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('property: random keys, IVs and lengths', () => {
  it('cbc, ctr, gcm and hmac agree with node:crypto and round-trip', () => {
    const { k, p, ctx } = boot();
    const keyArb = fc.constantFrom(16, 24, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
    fc.assert(
      fc.property(
        fc.constantFrom('cbc(aes)', 'ctr(aes)', 'gcm(aes)', 'hmac(sha256)'),
        keyArb,
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 1, max: 3 * PAGE_SIZE }),
        fc.integer(),
        (alg, key, iv16, rawLen, seed) => {
          const data = randomBytes(alg === 'cbc(aes)' ? Math.max(16, rawLen & ~15) : rawLen, seed);
          if (alg === 'hmac(sha256)') {
            const hkey = key.subarray(0, key.length & ~3);
            const { c, out } = run(ctx, p, { op: 'hmac', alg, data, key: hkey });
            return (
              c.status === 0 && Buffer.from(out).equals(createHmac('sha256', hkey).update(data).digest())
            );
          }
          if (alg === 'gcm(aes)') {
            const iv = iv16.subarray(0, 12);
            const enc = run(ctx, p, { op: 'encrypt', alg, data, key, iv });
            const dec = run(ctx, p, { op: 'decrypt', alg, data: enc.out, key, iv });
            return (
              enc.c.status === 0 &&
              same(enc.out, nodeGcm(key, iv, new Uint8Array(0), data)) &&
              dec.c.status === 0 &&
              same(dec.out, data)
            );
          }
          const mode = alg === 'cbc(aes)' ? 'cbc' : 'ctr';
          const enc = run(ctx, p, { op: 'encrypt', alg, data, key, iv: iv16 });
          const dec = run(ctx, p, { op: 'decrypt', alg, data: enc.out, key, iv: iv16 });
          return (
            enc.c.status === 0 &&
            same(enc.out, nodeCipher(mode, key, iv16, data)) &&
            dec.c.status === 0 &&
            same(dec.out, data)
          );
        },
      ),
      { numRuns: 60, seed: 42 },
    );
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});
