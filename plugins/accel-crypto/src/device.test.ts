/**
 * The device as a whole: registration through uacce (sysfs, SVA), the timing model and its IO page
 * faults, many queues and processes at once, hot removal with queues open, determinism.
 */
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { ERRNO, PAGE_SIZE, UACCE_DEV_SVA, createKernel, type Process } from '@svasim/kernel';
import { openContext, type AccelContext, type Completion } from '@svasim/user';
import {
  SEC_ALGORITHMS,
  SEC_ENGINES,
  SEC_TIMING,
  cryptoPlugin,
  secServiceNs,
  type CryptoAccelerator,
} from './index';

const MiB = 1 << 20;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const seq = (n: number, from = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + from) & 0xff);

function boot(seed = 1) {
  const k = createKernel({ seed, memory: { nodes: [{ size: '512MiB' }] }, plugins: [cryptoPlugin] });
  return { k, acc: k.plugin<CryptoAccelerator>('hisi_sec2') };
}

const sysfs = (k: ReturnType<typeof boot>['k'], attr: string) =>
  k.readSysfs(`/sys/class/uacce/hisi_sec2-0/${attr}`);

describe('registration', () => {
  it('is /dev/hisi_sec2-0, SVA, with the algorithms in the ABI order', () => {
    const { k, acc } = boot();
    expect(acc.devPath).toBe('/dev/hisi_sec2-0');
    expect(sysfs(k, 'flags')).toBe(`${UACCE_DEV_SVA}\n`);
    expect(sysfs(k, 'api')).toBe('hisi_qm_v3\n');
    expect(sysfs(k, 'algorithms').trim().split('\n')).toEqual([
      'cbc(aes)',
      'ctr(aes)',
      'xts(aes)',
      'gcm(aes)',
      'sha1',
      'sha256',
      'sha512',
      'hmac(sha256)',
    ]);
    expect(SEC_ALGORITHMS.map((a) => a.name)).toEqual(sysfs(k, 'algorithms').trim().split('\n'));
    expect(sysfs(k, 'available_instances')).toBe('16\n');
    // Every algorithm finds the device.
    const p = k.spawn();
    for (const a of SEC_ALGORITHMS) {
      const ctx = openContext(p, a.name);
      expect(ctx.device).toBe('hisi_sec2-0');
      ctx.close();
    }
    expect(k.checkInvariants()).toEqual([]);
  });

  it('every timing figure names its source or says it is an assumption', () => {
    for (const s of Object.values(SEC_TIMING.sources))
      expect(s).toMatch(/^assumption: |CALIBRATION|perf\.rst/);
    expect(SEC_TIMING.sources.throughputBytesPerS).toMatch(/^assumption: .*CALIBRATION\.md section 6/);
  });
});

describe('timing', () => {
  it('service time per class: doorbell + perRequest + bytes / throughput of the class', () => {
    const { k } = boot();
    const p = k.spawn();
    // Hashes run slower than AES on the engine.
    expect(secServiceNs('hash', MiB)).toBeGreaterThan(secServiceNs('skcipher', MiB));
    expect(secServiceNs('aead', MiB)).toBe(secServiceNs('skcipher', MiB));
    const ctx = openContext(p, 'cbc(aes)');
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    p.write(src, seq(MiB));
    p.write(dst, seq(MiB)); // populated: no IO page faults, so the latency is the model's
    const cbc = ctx.submitSync({
      op: 'encrypt',
      alg: 'cbc(aes)',
      src,
      srcLen: MiB,
      dst,
      dstLen: MiB,
      key: seq(16),
      iv: seq(16),
    });
    const sha = ctx.submitSync({ op: 'digest', alg: 'sha256', src, srcLen: MiB, dst, dstLen: 32 });
    for (const [c, cls] of [
      [cbc, 'skcipher'],
      [sha, 'hash'],
    ] as const) {
      expect(c).toMatchObject({ status: 0, faults: 0 });
      const model = SEC_TIMING.doorbellNs + secServiceNs(cls, MiB);
      expect(c.latencyNs).toBeGreaterThanOrEqual(model);
      // Plus one IOTLB lookup (and walk, on a miss) per page the DMA engine touched: under 1 us each.
      const pages = (MiB + (cls === 'hash' ? PAGE_SIZE : MiB)) / PAGE_SIZE;
      expect(c.latencyNs).toBeLessThan(model + pages * 1000);
    }
    ctx.close();
  });

  it('fresh SVA memory: every destination page takes one IO page fault, the second pass none', () => {
    const { k } = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'ctr(aes)');
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    p.write(src, seq(MiB));
    const iopf = k.vmstat().iopf_count;
    const r = {
      op: 'encrypt',
      alg: 'ctr(aes)',
      src,
      srcLen: MiB,
      dst,
      dstLen: MiB,
      key: seq(32),
      iv: seq(16),
    } as const;
    const first = ctx.submitSync(r);
    expect(first).toMatchObject({ status: 0, faults: MiB / PAGE_SIZE });
    expect(k.vmstat().iopf_count - iopf).toBe(MiB / PAGE_SIZE);
    const second = ctx.submitSync(r);
    expect(second).toMatchObject({ status: 0, faults: 0 });
    expect(second.latencyNs * 3).toBeLessThan(first.latencyNs);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it(`${SEC_ENGINES} engines: ${SEC_ENGINES} requests at once take one service time, twice as many two`, async () => {
    const { k } = boot();
    const p = k.spawn();
    const ctxs = Array.from({ length: 2 * SEC_ENGINES }, () => openContext(p, 'sha512'));
    const src = p.mmap(MiB);
    const dst = p.mmap(PAGE_SIZE);
    p.write(src, seq(MiB));
    p.write(dst, seq(PAGE_SIZE));
    const service = secServiceNs('hash', MiB);
    const batch = async (n: number) => {
      const all = Promise.all(
        ctxs
          .slice(0, n)
          .map((c) => c.submit({ op: 'digest', alg: 'sha512', src, srcLen: MiB, dst, dstLen: 64 })),
      );
      await k.runUntilIdle();
      const res = await all;
      expect(res.map((r) => r.status)).toEqual(new Array(n).fill(0));
      return res.map((r) => r.latencyNs).sort((a, b) => a - b);
    };
    // The engines work in parallel: one wave of service (plus translations of the shared pages).
    const one = await batch(SEC_ENGINES);
    for (const l of one) expect(l).toBeGreaterThan(service);
    expect(one[SEC_ENGINES - 1]).toBeLessThan(1.5 * service);
    // Twice as many: the requests beyond the engines wait for a second wave.
    const two = await batch(2 * SEC_ENGINES);
    const [first, second] = [two.slice(0, SEC_ENGINES), two.slice(SEC_ENGINES)];
    expect(first[SEC_ENGINES - 1]).toBeLessThan(1.5 * service);
    expect(second[0] / first[0]).toBeGreaterThan(1.8);
    expect(second[SEC_ENGINES - 1] / first[0]).toBeLessThan(2.2);
    for (const c of ctxs) c.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('is deterministic for a seed', () => {
    const run = () => {
      const { k } = boot(42);
      const p = k.spawn();
      const ctx = openContext(p, 'gcm(aes)');
      const src = p.mmap(256 * 1024);
      const dst = p.mmap(256 * 1024 + PAGE_SIZE);
      p.write(src, seq(256 * 1024));
      return ctx.submitSync({
        op: 'encrypt',
        alg: 'gcm(aes)',
        src,
        srcLen: 256 * 1024,
        dst,
        dstLen: 256 * 1024 + PAGE_SIZE,
        key: seq(32),
        iv: seq(12),
      });
    };
    const a = run();
    expect(a.faults).toBeGreaterThan(0);
    expect(run()).toEqual(a);
  });
});

/** What node:crypto answers for the mixed jobs of the concurrency test. */
function expected(alg: string, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  switch (alg) {
    case 'cbc(aes)':
    case 'ctr(aes)': {
      const c = createCipheriv(`aes-${key.length * 8}-${alg.slice(0, 3)}`, key, iv).setAutoPadding(false);
      return Buffer.concat([c.update(data), c.final()]);
    }
    case 'gcm(aes)': {
      const c = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([c.update(data), c.final()]);
      return Buffer.concat([body, c.getAuthTag()]);
    }
    case 'hmac(sha256)':
      return createHmac('sha256', key).update(data).digest();
    default:
      return createHash(alg).update(data).digest();
  }
}

describe('many queues and processes at once', () => {
  it('4 processes x 3 contexts, 8 async requests each over mixed algorithms: all byte-exact', async () => {
    const { k, acc } = boot();
    const algs = ['cbc(aes)', 'ctr(aes)', 'gcm(aes)', 'sha1', 'sha256', 'sha512', 'hmac(sha256)'];
    interface Job {
      p: Process;
      alg: string;
      dst: number;
      want: Uint8Array;
      done: Promise<Completion>;
    }
    const jobs: Job[] = [];
    const ctxs: AccelContext[] = [];
    let n = 0;
    for (let pi = 0; pi < 4; pi++) {
      const p = k.spawn();
      for (let ci = 0; ci < 3; ci++) {
        const ctx = openContext(p, algs[(pi + ci) % algs.length]);
        ctxs.push(ctx);
        for (let r = 0; r < 8; r++, n++) {
          const alg = algs[n % algs.length];
          const len = 16 * (1 + ((n * 37) % 700)); // whole blocks, 16 B to ~11 KiB
          const data = seq(len, n);
          const key =
            alg === 'hmac(sha256)' ? seq(32, n + 1) : alg === 'gcm(aes)' ? seq(32, n + 2) : seq(16, n + 3);
          const iv = alg === 'gcm(aes)' ? seq(12, n) : seq(16, n);
          const cipher = alg.includes('(aes)');
          const src = p.mmap(len); // fresh memory: faults interleave across processes
          const dst = p.mmap(len + PAGE_SIZE);
          p.write(src, data);
          const done = ctx.submit({
            op: cipher ? 'encrypt' : alg.startsWith('hmac') ? 'hmac' : 'digest',
            alg,
            src,
            srcLen: len,
            dst,
            dstLen: len + PAGE_SIZE,
            ...(cipher ? { key, iv } : alg.startsWith('hmac') ? { key } : {}),
          });
          jobs.push({ p, alg, dst, want: expected(alg, key, iv, data), done });
        }
      }
    }
    expect(sysfs(k, 'available_instances')).toBe('4\n');
    await k.runUntilIdle();
    const results = await Promise.all(jobs.map((j) => j.done));
    expect(results.map((r) => r.status)).toEqual(new Array(jobs.length).fill(0));
    jobs.forEach((j, i) => {
      expect([j.alg, results[i].produced]).toEqual([j.alg, j.want.length]);
      expect(same(j.p.read(j.dst, j.want.length), j.want)).toBe(true);
    });
    expect(acc.stats).toMatchObject({ submitted: 96, completed: 96, errors: 0 });
    expect(results.some((r) => r.faults > 0)).toBe(true);
    for (const c of ctxs) c.close();
    expect(sysfs(k, 'available_instances')).toBe('16\n');
    expect(k.checkInvariants()).toEqual([]);
  });

  it('every queue taken: the next openContext is EBUSY; a process exit gives its queues back', async () => {
    const { k } = boot();
    const ps = [k.spawn(), k.spawn()];
    const ctxs = Array.from({ length: 16 }, (_, i) => openContext(ps[i % 2], 'sha1'));
    expect(() => openContext(ps[0], 'sha1')).toThrow(errno('EBUSY'));
    ps[1].exit();
    await k.runUntilIdle();
    expect(sysfs(k, 'available_instances')).toBe('8\n');
    const again = openContext(ps[0], 'sha1');
    const buf = ps[0].mmap(PAGE_SIZE);
    expect(
      again.submitSync({ op: 'digest', alg: 'sha1', src: buf, srcLen: 3, dst: buf + 64, dstLen: 20 }).status,
    ).toBe(0);
    again.close();
    for (let i = 0; i < 16; i += 2) ctxs[i].close();
    expect(sysfs(k, 'available_instances')).toBe('16\n');
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('hot removal with queues open', () => {
  it('requests in flight complete -ENODEV, nothing hangs, the device is gone, invariants hold', async () => {
    const { k, acc } = boot();
    const ps = [k.spawn(), k.spawn()];
    const ctxs = ps.flatMap((p) => [openContext(p, 'sha256'), openContext(p, 'xts(aes)')]);
    const cqes: number[] = [];
    acc.onInterrupt = (_q, cqe) => void cqes.push(cqe.status);
    const pending: Array<Promise<Completion>> = [];
    for (const ctx of ctxs) {
      const p = ctx.proc;
      const src = p.mmap(MiB); // fresh: the engine is still faulting pages in when the device goes
      const dst = p.mmap(MiB);
      for (let i = 0; i < 3; i++)
        pending.push(
          i === 1
            ? ctx.submit({
                op: 'encrypt',
                alg: 'xts(aes)',
                src,
                srcLen: MiB,
                dst,
                dstLen: MiB,
                key: seq(64),
                iv: seq(16),
              })
            : ctx.submit({ op: 'digest', alg: 'sha256', src, srcLen: MiB, dst, dstLen: 32 }),
        );
    }
    await k.runFor(100_000);
    expect(acc.busy).toBe(pending.length);
    acc.unrealize();
    // The device answered every request it held, through the CQ and the interrupt...
    expect(cqes).toEqual(new Array(pending.length).fill(-ERRNO.ENODEV));
    expect(acc.busy).toBe(0);
    // ... and uacceRemove zapped the rings: the library sees them gone and every promise
    // settles (none hangs) with -ENODEV.
    await k.runUntilIdle();
    const settled = await Promise.all(pending);
    for (const c of settled) expect(c.status).toBe(-ERRNO.ENODEV);
    expect(k.checkInvariants()).toEqual([]);
    // The device is gone for new users; the old contexts answer -ENODEV.
    expect(() => openContext(ps[0], 'sha256')).toThrow(errno('ENODEV'));
    expect(() => ps[0].open('/dev/hisi_sec2-0')).toThrow();
    const buf = ps[0].mmap(PAGE_SIZE);
    expect(
      ctxs[0].submitSync({ op: 'digest', alg: 'sha256', src: buf, srcLen: 8, dst: buf, dstLen: 32 }).status,
    ).toBe(-ERRNO.ENODEV);
    // close() still releases the fd and mappings.
    for (const c of ctxs) c.close();
    for (const p of ps) p.exit();
    await k.runUntilIdle();
    expect(k.checkInvariants()).toEqual([]);
    // A new realize brings a fresh device that works.
    expect(acc.realize()).toBe(0);
    const p = k.spawn();
    const ctx = openContext(p, 'sha256');
    const b = p.mmap(PAGE_SIZE);
    p.write(b, Buffer.from('abc'));
    expect(
      ctx.submitSync({ op: 'digest', alg: 'sha256', src: b, srcLen: 3, dst: b + 64, dstLen: 32 }).status,
    ).toBe(0);
    expect(Buffer.from(p.read(b + 64, 32)).toString('hex')).toBe(
      createHash('sha256').update('abc').digest('hex'),
    );
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});
