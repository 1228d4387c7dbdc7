/**
 * Bad input: every rejected request completes with the errno the SEC driver or UADK gives
 * (README's table), never throws and never hangs; the device keeps serving afterwards.
 */
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ERRNO, PAGE_SIZE, PROT_READ, createKernel, type Process } from '@svasim/kernel';
import { openContext, type AccelContext, type AccelOp, type AccelRequest } from '@svasim/user';
import { SEC_ALGORITHMS, SEC_MAX_AAD_LEN, SEC_MAX_INPUT_DATA_LEN, cryptoPlugin, secCompute } from './index';

const MiB = 1 << 20;
const E = ERRNO;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });
const filled = (n: number, v = 0x5a) => new Uint8Array(n).fill(v);
const seq = (n: number, from = 1) => Uint8Array.from({ length: n }, (_, i) => (i + from) & 0xff);

function boot() {
  const k = createKernel({ seed: 3, memory: { nodes: [{ size: '512MiB' }] }, plugins: [cryptoPlugin] });
  const p = k.spawn();
  return { k, p, ctx: openContext(p, 'cbc(aes)') };
}

/** A populated scratch area: src at buf, dst at buf + 2 pages (each up to 2 pages). */
function scratch(p: Process) {
  const buf = p.mmap(4 * PAGE_SIZE);
  p.write(buf, seq(4 * PAGE_SIZE));
  return buf;
}

function req(buf: number, fields: Partial<AccelRequest> & { op: AccelOp; alg: string }): AccelRequest {
  return { src: buf, srcLen: 64, dst: buf + 2 * PAGE_SIZE, dstLen: 2 * PAGE_SIZE, ...fields };
}

const K16 = seq(16, 3);
const IV16 = seq(16, 40);
const IV12 = seq(12, 80);

describe('bad parameters complete -EINVAL', () => {
  it('key lengths: AES 16/24/32, xts 32/64 with different halves, hmac 4..64 in whole words', () => {
    const { k, p, ctx } = boot();
    const buf = scratch(p);
    const bad: Array<Partial<AccelRequest> & { op: AccelOp; alg: string }> = [
      { op: 'encrypt', alg: 'cbc(aes)', iv: IV16 }, // no key
      { op: 'encrypt', alg: 'cbc(aes)', key: seq(15), iv: IV16 },
      { op: 'encrypt', alg: 'cbc(aes)', key: seq(17), iv: IV16 },
      { op: 'decrypt', alg: 'cbc(aes)', key: seq(64), iv: IV16 },
      { op: 'encrypt', alg: 'ctr(aes)', key: seq(8), iv: IV16 },
      { op: 'encrypt', alg: 'xts(aes)', key: seq(16), iv: IV16 },
      { op: 'encrypt', alg: 'xts(aes)', key: seq(48), iv: IV16 }, // XTS-AES-192: no BD encoding
      { op: 'encrypt', alg: 'xts(aes)', key: seq(24), iv: IV16 },
      { op: 'encrypt', alg: 'xts(aes)', key: filled(32, 7), iv: IV16 }, // identical halves
      { op: 'decrypt', alg: 'xts(aes)', key: filled(64, 9), iv: IV16 },
      { op: 'encrypt', alg: 'gcm(aes)', key: seq(20), iv: IV12 },
      { op: 'hmac', alg: 'hmac(sha256)' }, // HMAC without a key
      { op: 'hmac', alg: 'hmac(sha256)', key: seq(3) },
      { op: 'hmac', alg: 'hmac(sha256)', key: seq(6) }, // not whole 32-bit words
      { op: 'hmac', alg: 'hmac(sha256)', key: seq(68) }, // over 64 for SHA-256
      { op: 'digest', alg: 'sha256', key: seq(16) }, // a plain digest has no key
    ];
    for (const f of bad) {
      const c = ctx.submitSync(req(buf, f));
      expect({ ...f, status: c.status, produced: c.produced }).toEqual({
        ...f,
        status: -E.EINVAL,
        produced: 0,
      });
      expect(c.latencyNs).toBeGreaterThan(0); // the device answered, not the library
    }
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('IV lengths: 16 for cbc/ctr/xts, 12 for gcm, none for the digests', () => {
    const { p, ctx } = boot();
    const buf = scratch(p);
    const bad: Array<Partial<AccelRequest> & { op: AccelOp; alg: string }> = [
      { op: 'encrypt', alg: 'cbc(aes)', key: K16 }, // no IV
      { op: 'encrypt', alg: 'cbc(aes)', key: K16, iv: seq(12) },
      { op: 'decrypt', alg: 'cbc(aes)', key: K16, iv: seq(17) },
      { op: 'encrypt', alg: 'ctr(aes)', key: K16, iv: seq(15) },
      { op: 'encrypt', alg: 'xts(aes)', key: seq(32), iv: seq(8) },
      { op: 'encrypt', alg: 'gcm(aes)', key: K16, iv: IV16 },
      { op: 'decrypt', alg: 'gcm(aes)', key: K16 },
      { op: 'digest', alg: 'sha1', iv: IV16 },
      { op: 'hmac', alg: 'hmac(sha256)', key: K16, iv: IV16 },
    ];
    for (const f of bad)
      expect({ ...f, status: ctx.submitSync(req(buf, f)).status }).toEqual({ ...f, status: -E.EINVAL });
    ctx.close();
  });

  it('lengths: cbc whole blocks, xts at least one block, nothing empty, nothing over 16 MiB - 512', () => {
    const { k, p, ctx } = boot();
    const buf = scratch(p);
    const cbc = { op: 'encrypt', alg: 'cbc(aes)', key: K16, iv: IV16 } as const;
    const xts = { op: 'encrypt', alg: 'xts(aes)', key: seq(32), iv: IV16 } as const;
    const ctr = { op: 'decrypt', alg: 'ctr(aes)', key: K16, iv: IV16 } as const;
    for (const srcLen of [1, 15, 17, 33, 4095])
      expect(ctx.submitSync(req(buf, { ...cbc, srcLen })).status).toBe(-E.EINVAL);
    for (const srcLen of [1, 15]) expect(ctx.submitSync(req(buf, { ...xts, srcLen })).status).toBe(-E.EINVAL);
    for (const f of [cbc, xts, ctr])
      expect(ctx.submitSync(req(buf, { ...f, srcLen: 0 })).status).toBe(-E.EINVAL);
    // ... while these lengths are fine.
    expect(ctx.submitSync(req(buf, { ...cbc, srcLen: 32 })).status).toBe(0);
    expect(ctx.submitSync(req(buf, { ...xts, srcLen: 17 })).status).toBe(0);
    expect(ctx.submitSync(req(buf, { ...ctr, srcLen: 1 })).status).toBe(0);
    // One BD carries at most MAX_INPUT_DATA_LEN bytes.
    const big = p.mmap(16 * MiB + PAGE_SIZE);
    const over = { src: big, dst: big, srcLen: SEC_MAX_INPUT_DATA_LEN + 16, dstLen: 16 * MiB + PAGE_SIZE };
    expect(ctx.submitSync({ ...cbc, ...over }).status).toBe(-E.EINVAL);
    expect(ctx.submitSync({ op: 'digest', alg: 'sha256', ...over, srcLen: 16 * MiB }).status).toBe(-E.EINVAL);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('an op that means nothing for the algorithm, or associated data outside gcm', () => {
    const { p, ctx } = boot();
    const buf = scratch(p);
    const bad: Array<Partial<AccelRequest> & { op: AccelOp; alg: string }> = [
      { op: 'encrypt', alg: 'sha1' },
      { op: 'decrypt', alg: 'sha512' },
      { op: 'digest', alg: 'cbc(aes)', key: K16, iv: IV16 },
      { op: 'hmac', alg: 'ctr(aes)', key: K16, iv: IV16 },
      { op: 'hmac', alg: 'sha256', key: K16 },
      { op: 'digest', alg: 'hmac(sha256)', key: K16 },
      { op: 'encrypt', alg: 'hmac(sha256)', key: K16 },
      { op: 'encrypt', alg: 'cbc(aes)', key: K16, iv: IV16, level: 16 },
      { op: 'digest', alg: 'sha256', level: 1 },
    ];
    for (const f of bad)
      expect({ ...f, status: ctx.submitSync(req(buf, f)).status }).toEqual({ ...f, status: -E.EINVAL });
    // Ops the device does not implement at all are refused by the base before any DMA.
    expect(ctx.submitSync(req(buf, { op: 'compress', alg: 'sha1' })).status).toBe(-E.EOPNOTSUPP);
    expect(ctx.submitSync(req(buf, { op: 'copy', alg: 'sha1' })).status).toBe(-E.EOPNOTSUPP);
    ctx.close();
  });

  it('a descriptor alg index past the list (the engine itself, as a raw SQE would reach it)', () => {
    const r = secCompute({
      op: 'encrypt',
      alg: SEC_ALGORITHMS[99],
      src: seq(16),
      key: K16,
      iv: IV16,
      assoclen: 0,
    });
    expect(r).toEqual({ status: -E.EINVAL, output: new Uint8Array(0) });
  });
});

describe('gcm(aes) tag and AAD', () => {
  function sealed(ctx: AccelContext, p: Process, aadLen: number) {
    const buf = scratch(p);
    const aad = seq(aadLen, 200);
    const pt = seq(100, 9);
    p.write(buf, Uint8Array.from([...aad, ...pt]));
    const c = ctx.submitSync({
      op: 'encrypt',
      alg: 'gcm(aes)',
      src: buf,
      srcLen: aadLen + 100,
      dst: buf + 2 * PAGE_SIZE,
      dstLen: PAGE_SIZE,
      key: K16,
      iv: IV12,
      level: aadLen,
    });
    expect(c).toMatchObject({ status: 0, produced: aadLen + 116 });
    return { buf, sealed: p.read(buf + 2 * PAGE_SIZE, aadLen + 116), len: aadLen + 116 };
  }

  it('a tag that does not verify completes -EBADMSG and writes nothing', () => {
    const { k, p, ctx } = boot();
    const { buf, sealed: s, len } = sealed(ctx, p, 8);
    const open = (bytes: Uint8Array, fields: Partial<AccelRequest> = {}) => {
      p.write(buf, bytes);
      p.write(buf + 2 * PAGE_SIZE, filled(len, 0xee));
      const c = ctx.submitSync({
        op: 'decrypt',
        alg: 'gcm(aes)',
        src: buf,
        srcLen: bytes.length,
        dst: buf + 2 * PAGE_SIZE,
        dstLen: PAGE_SIZE,
        key: K16,
        iv: IV12,
        level: 8,
        ...fields,
      });
      return { c, dst: p.read(buf + 2 * PAGE_SIZE, len) };
    };
    expect(open(s).c).toMatchObject({ status: 0, produced: 108 });
    const flip = (i: number) => {
      const b = Uint8Array.from(s);
      b[i] ^= 1;
      return b;
    };
    for (const [what, bytes, fields] of [
      ['ciphertext bit', flip(8 + 50), {}],
      ['tag bit', flip(len - 1), {}],
      ['AAD bit', flip(0), {}],
      ['wrong key', s, { key: seq(16, 4) }],
      ['wrong IV', s, { iv: seq(12, 81) }],
      ['truncated tag', s.subarray(0, len - 1), {}],
    ] as const) {
      const r = open(bytes, fields);
      expect([what, r.c.status, r.c.produced]).toEqual([what, -E.EBADMSG, 0]);
      expect(Buffer.from(r.dst).equals(Buffer.from(filled(len, 0xee)))).toBe(true);
    }
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('AAD longer than the source or than 65535, or a ciphertext shorter than the tag: -EINVAL', () => {
    const { p, ctx } = boot();
    const buf = scratch(p);
    const g = { alg: 'gcm(aes)', key: K16, iv: IV12 } as const;
    expect(ctx.submitSync(req(buf, { ...g, op: 'encrypt', srcLen: 10, level: 11 })).status).toBe(-E.EINVAL);
    expect(ctx.submitSync(req(buf, { ...g, op: 'decrypt', srcLen: 15 })).status).toBe(-E.EINVAL);
    expect(ctx.submitSync(req(buf, { ...g, op: 'decrypt', srcLen: 20, level: 5 })).status).toBe(-E.EINVAL);
    const big = p.mmap(SEC_MAX_AAD_LEN + PAGE_SIZE);
    const aad = { src: big, dst: big, srcLen: SEC_MAX_AAD_LEN + 1, dstLen: SEC_MAX_AAD_LEN + PAGE_SIZE };
    expect(ctx.submitSync({ ...g, op: 'encrypt', ...aad, level: SEC_MAX_AAD_LEN + 1 }).status).toBe(
      -E.EINVAL,
    );
    // The largest AAD is fine (65535 bytes of AAD, no payload: a tag over the AAD alone).
    expect(
      ctx.submitSync({ ...g, op: 'encrypt', ...aad, srcLen: SEC_MAX_AAD_LEN, level: SEC_MAX_AAD_LEN }),
    ).toMatchObject({
      status: 0,
      produced: SEC_MAX_AAD_LEN + 16,
    });
    ctx.close();
  });
});

describe('buffers', () => {
  it('dst too small for the output completes -ENOSPC and writes nothing', () => {
    const { k, p, ctx } = boot();
    const buf = scratch(p);
    const dst = buf + 2 * PAGE_SIZE;
    p.write(dst, filled(128, 0xcc));
    const cases: Array<Partial<AccelRequest> & { op: AccelOp; alg: string }> = [
      { op: 'encrypt', alg: 'cbc(aes)', key: K16, iv: IV16, srcLen: 64, dstLen: 48 },
      { op: 'encrypt', alg: 'ctr(aes)', key: K16, iv: IV16, srcLen: 7, dstLen: 6 },
      { op: 'encrypt', alg: 'gcm(aes)', key: K16, iv: IV12, srcLen: 64, dstLen: 64 }, // no room for the tag
      { op: 'digest', alg: 'sha256', srcLen: 64, dstLen: 31 },
      { op: 'digest', alg: 'sha512', srcLen: 64, dstLen: 32 },
      { op: 'hmac', alg: 'hmac(sha256)', key: K16, srcLen: 64, dstLen: 0 },
    ];
    for (const f of cases) {
      expect({ ...f, status: ctx.submitSync(req(buf, f)).status }).toEqual({ ...f, status: -E.ENOSPC });
      expect(Buffer.from(p.read(dst, 128)).equals(Buffer.from(filled(128, 0xcc)))).toBe(true);
    }
    // Exactly the digest size is enough.
    expect(ctx.submitSync(req(buf, { op: 'digest', alg: 'sha1', dstLen: 20 }))).toMatchObject({
      status: 0,
      produced: 20,
    });
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('unmapped, read-only or another process memory: -EFAULT, nothing written anywhere', () => {
    const { k, p, ctx } = boot();
    const buf = scratch(p);
    const enc = { op: 'encrypt', alg: 'cbc(aes)', key: K16, iv: IV16 } as const;
    const hole = 0x10000;
    expect(ctx.submitSync(req(buf, { ...enc, src: hole })).status).toBe(-E.EFAULT);
    expect(ctx.submitSync(req(buf, { ...enc, dst: hole })).status).toBe(-E.EFAULT);
    expect(ctx.submitSync(req(buf, { op: 'digest', alg: 'sha1', src: hole })).status).toBe(-E.EFAULT);
    // A source running off the end of its mapping into a hole.
    const edge = p.mmap(2 * PAGE_SIZE);
    p.write(edge, seq(PAGE_SIZE));
    p.munmap(edge + PAGE_SIZE, PAGE_SIZE);
    expect(ctx.submitSync(req(buf, { ...enc, src: edge + PAGE_SIZE - 32 })).status).toBe(-E.EFAULT);
    const ro = p.mmap(PAGE_SIZE, { prot: PROT_READ });
    expect(ctx.submitSync(req(buf, { ...enc, dst: ro })).status).toBe(-E.EFAULT);
    // Another process's buffer: this queue is bound to p's address space only.
    const other = k.spawn();
    other.mmap(64 * MiB); // push other's next mapping below anything p has mapped
    const theirs = other.mmap(PAGE_SIZE);
    other.write(theirs, filled(64, 0x77));
    expect(() => p.read(theirs, 1)).toThrow(errno('EFAULT'));
    expect(ctx.submitSync(req(buf, { ...enc, src: theirs })).status).toBe(-E.EFAULT);
    expect(ctx.submitSync(req(buf, { ...enc, dst: theirs })).status).toBe(-E.EFAULT);
    expect(Buffer.from(other.read(theirs, 64)).equals(Buffer.from(filled(64, 0x77)))).toBe(true);
    // The context keeps working.
    const c = ctx.submitSync(req(buf, { ...enc, srcLen: 32 }));
    expect(c.status).toBe(0);
    const want = createCipheriv('aes-128-cbc', K16, IV16).setAutoPadding(false).update(seq(32));
    expect(Buffer.from(p.read(buf + 2 * PAGE_SIZE, 32)).equals(want)).toBe(true);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('contexts', () => {
  it("an algorithm the device does not offer: openContext ENODEV; in a request, the library's -EINVAL", () => {
    const { k, p, ctx } = boot();
    expect(() => openContext(p, 'cbc(des)')).toThrow(errno('ENODEV'));
    expect(() => openContext(p, 'deflate')).toThrow(errno('ENODEV'));
    const buf = scratch(p);
    expect(ctx.submitSync(req(buf, { op: 'encrypt', alg: 'cbc(des)', key: seq(8), iv: seq(8) }))).toEqual({
      status: -E.EINVAL,
      consumed: 0,
      produced: 0,
      latencyNs: 0,
      faults: 0,
    });
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a closed context: EBADF, sync and async; its queue is back in available_instances', async () => {
    const { k, p, ctx } = boot();
    const buf = scratch(p);
    const free = () => k.readSysfs('/sys/class/uacce/hisi_sec2-0/available_instances');
    expect(free()).toBe('15\n');
    ctx.close();
    expect(free()).toBe('16\n');
    const r = req(buf, { op: 'digest', alg: 'sha256' });
    expect(() => ctx.submitSync(r)).toThrow(errno('EBADF'));
    await expect(ctx.submit(r)).rejects.toMatchObject({ code: 'EBADF' });
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('fuzz', () => {
  it('random requests never throw or hang; each completes 0 or a documented errno', () => {
    const { k, p, ctx } = boot();
    const buf = scratch(p);
    const allowed = new Set([0, -E.EINVAL, -E.EBADMSG, -E.ENOSPC, -E.EOPNOTSUPP, -E.EFAULT]);
    const ops: AccelOp[] = ['encrypt', 'decrypt', 'digest', 'hmac', 'copy', 'compress'];
    const seen = new Set<number>();
    // Mostly lengths some algorithm accepts, so valid requests come up as well as invalid ones.
    const sized = (...lens: number[]) =>
      fc.constantFrom(...lens).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
    fc.assert(
      fc.property(
        fc.constantFrom(...ops),
        fc.constantFrom(...SEC_ALGORITHMS.map((a) => a.name)),
        fc.option(fc.oneof(sized(4, 16, 24, 32, 64), fc.uint8Array({ maxLength: 80 })), {
          freq: 2,
          nil: undefined,
        }),
        fc.option(fc.oneof(sized(12, 16), fc.uint8Array({ maxLength: 24 })), { freq: 2, nil: undefined }),
        fc.integer({ min: 0, max: 2 * PAGE_SIZE }),
        fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 2 * PAGE_SIZE })),
        fc.constantFrom(0, 0, 0, 1, 13, 100, 70_000),
        fc.integer({ min: 0, max: 8 }),
        (op, alg, key, iv, srcLen, dstLen, level, srcShift) => {
          const c = ctx.submitSync({
            op,
            alg,
            src: buf + srcShift * 997,
            srcLen,
            dst: buf + 2 * PAGE_SIZE,
            dstLen,
            key,
            iv,
            level,
          });
          seen.add(c.status);
          return allowed.has(c.status) && c.latencyNs > 0 && Number.isFinite(c.latencyNs);
        },
      ),
      { numRuns: 500, seed: 5 },
    );
    // The generator reached the interesting outcomes, not only one of them.
    for (const s of [0, -E.EINVAL, -E.ENOSPC, -E.EOPNOTSUPP]) expect(seen).toContain(s);
    expect(ctx.pending).toBe(0);
    expect(ctx.submitSync(req(buf, { op: 'digest', alg: 'sha1' })).status).toBe(0);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});
