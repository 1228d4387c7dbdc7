import { describe, expect, it } from '@jest/globals';
import { ERRNO, PAGE_SIZE, SyscallError, createKernel, definePlugin, type Kernel } from '@svasim/kernel';
import { memcpyAccelPlugin } from '@svasim/testkit';
import {
  PIN_STRATEGY,
  createBlockPool,
  noPin,
  openContext,
  registerKernel,
  type AccelRequest,
  type Completion,
  type PinStrategy,
} from './index';

const MiB = 1 << 20;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function boot(hugepages = 0): Kernel {
  return createKernel({
    memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': hugepages } },
    plugins: [memcpyAccelPlugin],
  });
}

const copy = (src: number, dst: number, len: number, dstLen = len): AccelRequest => ({
  op: 'copy',
  alg: 'memcpy',
  src,
  srcLen: len,
  dst,
  dstLen,
});

const instances = (k: Kernel) => k.readSysfs('/sys/class/uacce/memcpy_accel-0/available_instances');

describe('openContext', () => {
  it('finds the memcpy device by sysfs algorithms and takes one queue', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    expect(ctx.device).toBe('memcpy_accel-0');
    expect(ctx.kernel).toBe(k);
    expect(ctx.pin).toBe(noPin);
    expect(instances(k)).toBe('3\n');
    ctx.close();
    expect(instances(k)).toBe('4\n');
    expect(k.checkInvariants()).toEqual([]);
  });

  it('takes the kernel from opts or from registerKernel', () => {
    const k = boot();
    const p = k.spawn();
    openContext(p, 'memcpy', { kernel: k }).close();
    const unregister = registerKernel(k);
    try {
      expect(openContext(p, 'memcpy').kernel).toBe(k);
    } finally {
      unregister();
    }
  });

  it('ENODEV for an algorithm no device lists, or a device that does not exist', () => {
    const k = boot();
    const p = k.spawn();
    expect(() => openContext(p, 'gzip')).toThrow(errno('ENODEV'));
    expect(() => openContext(p, 'memcpy', { device: 'hisi_zip-0' })).toThrow(errno('ENODEV'));
    expect(() => openContext(createKernel().spawn(), 'memcpy')).toThrow(errno('ENODEV'));
    expect(k.checkInvariants()).toEqual([]);
  });

  it('EBUSY once every queue is taken; a closed context gives its queue back', () => {
    const k = boot();
    const p = k.spawn();
    const ctxs = [0, 1, 2, 3].map(() => openContext(p, 'memcpy'));
    expect(instances(k)).toBe('0\n');
    expect(() => openContext(p, 'memcpy')).toThrow(errno('EBUSY'));
    expect(() => openContext(k.spawn(), 'memcpy')).toThrow(errno('EBUSY'));
    ctxs[2].close();
    const again = openContext(p, 'memcpy');
    for (const c of [...ctxs, again]) c.close();
    expect(instances(k)).toBe('4\n');
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('AccelContext.submitSync', () => {
  it('copies 1 MiB of fresh memory through IO page faults, then again without any', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    p.write(src, pattern(MiB, 5));
    const iopf = k.vmstat().iopf_count;
    const first = ctx.submitSync(copy(src, dst, MiB));
    expect(first).toMatchObject({ status: 0, consumed: MiB, produced: MiB });
    // The source was written by the CPU (present); every destination page faults once.
    expect(first.faults).toBe(MiB / PAGE_SIZE);
    expect(k.vmstat().iopf_count - iopf).toBe(first.faults);
    expect(first.latencyNs).toBeGreaterThan(0);
    expect(same(p.read(dst, MiB), pattern(MiB, 5))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);

    p.write(src, pattern(MiB, 9));
    const second = ctx.submitSync(copy(src, dst, MiB));
    expect(second).toMatchObject({ status: 0, faults: 0, produced: MiB });
    expect(second.latencyNs * 20).toBeLessThan(first.latencyNs);
    expect(same(p.read(dst, MiB), pattern(MiB, 9))).toBe(true);
    expect(ctx.pending).toBe(0);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('many requests: more than the ring depth, one after another', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const buf = p.mmap(2 * PAGE_SIZE);
    for (let i = 0; i < ctx.layout.sqDepth + 5; i++) {
      p.write(buf, pattern(64, i));
      expect(ctx.submitSync(copy(buf, buf + PAGE_SIZE, 64)).status).toBe(0);
      expect(p.read(buf + PAGE_SIZE, 64)).toEqual(pattern(64, i));
    }
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('bad input completes with a negative status and the context keeps working', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const buf = p.mmap(2 * PAGE_SIZE);
    // Unmapped source: the device's page request is answered INVALID.
    expect(ctx.submitSync(copy(0x10000, buf, PAGE_SIZE)).status).toBe(-ERRNO.EFAULT);
    // Unmapped destination.
    expect(ctx.submitSync(copy(buf, 0x20000, PAGE_SIZE)).status).toBe(-ERRNO.EFAULT);
    // Destination too small.
    expect(ctx.submitSync(copy(buf, buf + PAGE_SIZE, PAGE_SIZE, 16)).status).toBe(-ERRNO.ENOSPC);
    // An op the device does not do.
    expect(ctx.submitSync({ ...copy(buf, buf, 8), op: 'compress' }).status).toBe(-ERRNO.EOPNOTSUPP);
    // What the library refuses itself.
    expect(ctx.submitSync({ ...copy(buf, buf, 8), alg: 'gzip' })).toEqual({
      status: -ERRNO.EINVAL,
      consumed: 0,
      produced: 0,
      latencyNs: 0,
      faults: 0,
    });
    expect(ctx.submitSync({ ...copy(buf, buf, 8), op: 'bogus' as never }).status).toBe(-ERRNO.EINVAL);
    expect(ctx.submitSync(copy(buf, buf, -1)).status).toBe(-ERRNO.EINVAL);
    p.write(buf, pattern(100, 1));
    expect(ctx.submitSync(copy(buf, buf + PAGE_SIZE, 100))).toMatchObject({ status: 0, produced: 100 });
    expect(p.read(buf + PAGE_SIZE, 100)).toEqual(pattern(100, 1));
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('works from inside a task', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const src = p.mmap(PAGE_SIZE);
    const dst = p.mmap(PAGE_SIZE);
    p.write(src, pattern(PAGE_SIZE, 3));
    let got: Completion | null = null;
    p.run(async (task) => {
      await task.sleep(1000);
      got = ctx.submitSync(copy(src, dst, PAGE_SIZE));
    });
    await k.runUntilIdle();
    expect(got).toMatchObject({ status: 0, produced: PAGE_SIZE });
    expect(p.read(dst, PAGE_SIZE)).toEqual(pattern(PAGE_SIZE, 3));
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('AccelContext.submit', () => {
  it('resolves in simulated time from a task', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    p.write(src, pattern(MiB, 2));
    let got: Completion | null = null;
    let at = 0;
    p.run(async () => {
      got = await ctx.submit(copy(src, dst, MiB));
      at = k.now();
    });
    await k.runUntilIdle();
    const c = got as Completion | null;
    expect(c).toMatchObject({ status: 0, produced: MiB, faults: MiB / PAGE_SIZE });
    expect(at).toBeGreaterThanOrEqual(c!.latencyNs);
    expect(same(p.read(dst, MiB), pattern(MiB, 2))).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    ctx.close();
  });

  it('several in flight from one task, and from plain code', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const buf = p.mmap(8 * PAGE_SIZE);
    for (let i = 0; i < 4; i++) p.write(buf + i * PAGE_SIZE, pattern(PAGE_SIZE, i));
    let results: Completion[] = [];
    p.run(async () => {
      results = await Promise.all(
        [0, 1, 2, 3].map((i) => ctx.submit(copy(buf + i * PAGE_SIZE, buf + (4 + i) * PAGE_SIZE, PAGE_SIZE))),
      );
    });
    await k.runUntilIdle();
    expect(results.map((r) => r.status)).toEqual([0, 0, 0, 0]);
    for (let i = 0; i < 4; i++)
      expect(p.read(buf + (4 + i) * PAGE_SIZE, PAGE_SIZE)).toEqual(pattern(PAGE_SIZE, i));

    // Not from a task: the library runs the poll in a task of the process.
    p.write(buf, pattern(PAGE_SIZE, 77));
    const pending = ctx.submit(copy(buf, buf + PAGE_SIZE, PAGE_SIZE));
    await k.runUntilIdle();
    await expect(pending).resolves.toMatchObject({ status: 0 });
    expect(p.read(buf + PAGE_SIZE, PAGE_SIZE)).toEqual(pattern(PAGE_SIZE, 77));
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('AccelContext.submit, ring full', () => {
  it('more requests at once than the ring holds: the rest wait for room', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const n = ctx.layout.sqDepth + 3;
    const src = p.mmap(PAGE_SIZE);
    const dst = p.mmap(n * 64);
    p.write(src, pattern(64, 4));
    let results: Completion[] = [];
    p.run(async () => {
      results = await Promise.all(
        Array.from({ length: n }, (_, i) => ctx.submit(copy(src, dst + i * 64, 64))),
      );
    });
    await k.runUntilIdle();
    expect(results.map((r) => r.status)).toEqual(new Array(n).fill(0));
    for (let i = 0; i < n; i++) expect(p.read(dst + i * 64, 64)).toEqual(pattern(64, 4));
    expect(ctx.pending).toBe(0);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('AccelContext.close', () => {
  it('then submit: SyscallError EBADF (sync) or a rejected promise (async)', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const buf = p.mmap(2 * PAGE_SIZE);
    ctx.close();
    expect(ctx.isClosed).toBe(true);
    expect(() => ctx.submitSync(copy(buf, buf + PAGE_SIZE, 8))).toThrow(SyscallError);
    expect(() => ctx.submitSync(copy(buf, buf + PAGE_SIZE, 8))).toThrow(errno('EBADF'));
    await expect(ctx.submit(copy(buf, buf + PAGE_SIZE, 8))).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => ctx.prepare(buf, 8)).toThrow(errno('EBADF'));
    ctx.close(); // idempotent
    expect(instances(k)).toBe('4\n');
    expect(k.checkInvariants()).toEqual([]);
  });

  it('cancels a request in flight: its promise resolves -ECANCELED', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const pending = ctx.submit(copy(p.mmap(MiB), p.mmap(MiB), MiB));
    await k.runFor(100_000);
    ctx.close();
    await k.runUntilIdle();
    await expect(pending).resolves.toMatchObject({ status: -ERRNO.ECANCELED });
    expect(instances(k)).toBe('4\n');
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('prepare/release hook', () => {
  it('goes through the strategy registered under PIN_STRATEGY, or opts.pin', () => {
    const calls: string[] = [];
    const spy: PinStrategy = {
      name: 'spy',
      prepare: (t, addr, len) => void calls.push(`prepare ${t.device} ${addr} ${len}`),
      release: (t, addr, len) => void calls.push(`release ${t.device} ${addr} ${len}`),
    };
    const spyPlugin = definePlugin({
      name: 'pin-spy',
      kind: 'pin-strategy',
      register: ({ container }) => void container.registerInstance(PIN_STRATEGY, spy),
    });
    const k = createKernel({
      memory: { nodes: [{ size: '256MiB' }] },
      plugins: [memcpyAccelPlugin, spyPlugin],
    });
    expect(k.pinStrategy()).toBe(spy);
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    expect(ctx.pin).toBe(spy);
    ctx.prepare(0x1000, 10);
    ctx.release(0x1000, 10);
    expect(calls).toEqual(['prepare memcpy_accel-0 4096 10', 'release memcpy_accel-0 4096 10']);
    ctx.close();
    const plain = openContext(p, 'memcpy', { pin: noPin });
    expect(plain.pin).toBe(noPin);
    plain.close();
  });
});

describe('BlockPool', () => {
  it('allocates and frees fixed-size blocks from hugetlb memory', () => {
    const k = boot(2);
    const p = k.spawn();
    const pool = createBlockPool(p, { blockSize: 1000, blockNum: 8 });
    expect(pool.blockSize).toBe(1024);
    expect(pool.size).toBe(2 * MiB);
    expect(p.pagemap(pool.base)).toMatchObject({ present: true, huge: '2MiB' });
    const blocks = Array.from({ length: 8 }, () => pool.alloc());
    expect(blocks).not.toContain(null);
    expect(new Set(blocks).size).toBe(8);
    for (const b of blocks) expect(pool.contains(b!, pool.blockSize)).toBe(true);
    expect(pool.alloc()).toBeNull();
    pool.free(blocks[3]!);
    expect(() => pool.free(blocks[3]!)).toThrow(errno('EINVAL'));
    expect(() => pool.free(pool.base + 1)).toThrow(errno('EINVAL'));
    expect(pool.alloc()).toBe(blocks[3]);
    pool.destroy();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('ENOMEM when there are no hugetlb pages; EINVAL for a bad shape', () => {
    const k = boot(0);
    const p = k.spawn();
    expect(() => createBlockPool(p, { blockSize: 4096, blockNum: 4 })).toThrow(errno('ENOMEM'));
    expect(() => createBlockPool(p, { blockSize: 0, blockNum: 4 })).toThrow(errno('EINVAL'));
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a copy between pool blocks takes no IO page faults', () => {
    const k = boot(1);
    const p = k.spawn();
    const pool = createBlockPool(p, { blockSize: 64 * 1024, blockNum: 4 });
    const ctx = openContext(p, 'memcpy');
    const src = pool.alloc()!;
    const dst = pool.alloc()!;
    p.write(src, pattern(64 * 1024, 11));
    const c = ctx.submitSync(copy(src, dst, 64 * 1024));
    expect(c).toMatchObject({ status: 0, produced: 64 * 1024, faults: 0 });
    expect(same(p.read(dst, 64 * 1024), pattern(64 * 1024, 11))).toBe(true);
    ctx.close();
    pool.free(src);
    pool.free(dst);
    pool.destroy();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('AccelContext.submit, a pipeline of awaits', () => {
  it('several loops awaiting submit in one task keep that many in flight and never stall', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const n = 60;
    const src = p.mmap(PAGE_SIZE);
    const dst = p.mmap(n * 64);
    p.write(src, pattern(64, 6));
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      // The next submit is made by the continuation of the last one: it runs while the task sleeps
      // in the poll that settled it, and must still be polled (it once joined a finished poller).
      while (next < n) {
        const i = next++;
        expect((await ctx.submit(copy(src, dst + i * 64, 64))).status).toBe(0);
        done++;
      }
    };
    p.run(async () => {
      await Promise.all([worker(), worker(), worker(), worker()]);
    });
    await k.runUntilIdle();
    expect(done).toBe(n);
    for (let i = 0; i < n; i++) expect(p.read(dst + i * 64, 64)).toEqual(pattern(64, 6));
    expect(ctx.pending).toBe(0);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('AccelContext, device hot-removed under it', () => {
  it('ends pending and later requests with -ENODEV, never throws or hangs; close() still releases', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    // Fresh memory: the copy takes hundreds of IO page faults, so it is still running at removal.
    const pending = ctx.submit(copy(src, dst, MiB));
    await k.runFor(50_000);
    expect(ctx.pending).toBe(1);
    k.plugin<{ unrealize(): void }>('memcpy_accel').unrealize();
    await k.runUntilIdle();
    await expect(pending).resolves.toMatchObject({ status: -ERRNO.ENODEV });
    expect(ctx.submitSync(copy(src, dst, PAGE_SIZE)).status).toBe(-ERRNO.ENODEV);
    await expect(ctx.submit(copy(src, dst, PAGE_SIZE))).resolves.toMatchObject({ status: -ERRNO.ENODEV });
    expect(() => ctx.close()).not.toThrow();
    expect(ctx.isClosed).toBe(true);
    expect(() => ctx.submitSync(copy(src, dst, PAGE_SIZE))).toThrow(errno('EBADF'));
    expect(() => openContext(p, 'memcpy')).toThrow(errno('ENODEV'));
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });
});
