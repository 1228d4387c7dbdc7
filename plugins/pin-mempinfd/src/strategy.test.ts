import { afterEach, describe, expect, it } from '@jest/globals';
import {
  DMA_BIDIRECTIONAL,
  PAGE_SIZE,
  SyscallError,
  createKernel,
  definePlugin,
  dmaInflight,
  dmaMapSg,
  dmaUnmapSg,
  gupState,
  type Kernel,
  type Plugin,
} from '@svasim/kernel';
import { MEMCPY_ACCEL_CONFIG, MemcpyAccelerator, memcpyAccelPlugin } from '@svasim/testkit';
import { openContext, type AccelContext, type Completion } from '@svasim/user';
import { MEM_CMD_PIN, Mempinfd, mempinfdPlugin } from './index';

const P = PAGE_SIZE;
const MiB = 1 << 20;

const kernels: Kernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

function boot(accel: Plugin = memcpyAccelPlugin): Kernel {
  const k = createKernel({ memory: { nodes: [{ size: '256MiB' }] }, plugins: [accel, mempinfdPlugin] });
  kernels.push(k);
  return k;
}

function errOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof SyscallError) return e.code;
    throw e;
  }
}

const pattern = (len: number, seed: number) => new Uint8Array(len).map((_, i) => (i * 31 + seed) & 0xff);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** The same memcpy device without SVA: DMA addresses are IOVAs the kernel maps (PASID 0). */
const iovaMemcpyPlugin = definePlugin({
  name: 'memcpy_iova',
  kind: 'accelerator',
  register({ kernel }) {
    return new MemcpyAccelerator(kernel as Kernel, { ...MEMCPY_ACCEL_CONFIG, sva: false });
  },
});

/** Run the machine in small steps until @cond holds (at most @maxSteps steps of @stepNs). */
async function runUntil(k: Kernel, cond: () => boolean, stepNs = 50, maxSteps = 10_000): Promise<void> {
  for (let i = 0; i < maxSteps && !cond(); i++) await k.runFor(stepNs);
  expect(cond()).toBe(true);
}

describe("the 'mempinfd' strategy from @svasim/user", () => {
  it('after ctx.prepare the device copy takes no IO page fault; without it every page faults', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    expect(ctx.pin.name).toBe('mempinfd');
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    ctx.prepare(src, MiB);
    ctx.prepare(dst, MiB);
    expect(p.status().vmPin).toBe(2 * MiB);
    p.write(src, pattern(MiB, 5));
    const iopf0 = k.vmstat().iopf_count;
    const c = ctx.submitSync({ op: 'copy', alg: 'memcpy', src, srcLen: MiB, dst, dstLen: MiB });
    expect(c).toMatchObject({ status: 0, faults: 0, produced: MiB });
    expect(k.vmstat().iopf_count).toBe(iopf0);
    expect(same(p.read(dst, MiB), pattern(MiB, 5))).toBe(true);
    // The control: fresh buffers, nothing prepared.
    const src2 = p.mmap(MiB);
    const dst2 = p.mmap(MiB);
    const c2 = ctx.submitSync({ op: 'copy', alg: 'memcpy', src: src2, srcLen: MiB, dst: dst2, dstLen: MiB });
    expect(c2.status).toBe(0);
    expect(c2.faults).toBe((2 * MiB) / P);
    ctx.release(src, MiB);
    ctx.release(dst, MiB);
    expect(p.status().vmPin).toBe(0);
    expect(gupState(k.mmCore).pinnedPages).toBe(0);
    ctx.close();
  });

  it('opens one mempinfd fd per process and reopens it if the process closed it', () => {
    const k = boot();
    const drv = k.plugin<Mempinfd>('pin-mempinfd');
    const p = k.spawn();
    const q = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const ctxQ = openContext(q, 'memcpy');
    const a = p.mmap(8 * P);
    const b = q.mmap(8 * P);
    ctx.prepare(a, 4 * P);
    ctx.prepare(a + 4 * P, 4 * P);
    ctxQ.prepare(b, 8 * P);
    expect(drv.files()).toHaveLength(2);
    const fd = (drv.strategy as unknown as { fdOf(proc: unknown): number }).fdOf(p);
    p.close(fd); // the pins go with it
    expect(p.status().vmPin).toBe(0);
    expect(errOf(() => ctx.release(a, 4 * P))).toBe('ENODEV'); // a new, empty registry
    ctx.prepare(a, P);
    expect(p.status().vmPin).toBe(P);
    expect(drv.files()).toHaveLength(2); // the closed fd's registry went with it
    ctx.close();
    ctxQ.close();
    p.exit();
    q.exit();
    expect(drv.files()).toHaveLength(0);
    expect(gupState(k.mmCore).pinnedPages).toBe(0);
  });

  it("passes on the syscall's errors", () => {
    const k = boot();
    k.spawn().chmod('/dev/memcpy_accel-0', 0o666); // as a udev rule would, for the unprivileged users
    const p = k.spawn({ uid: 1000, rlimits: { memlock: 16 * 1024 } });
    const ctx = openContext(p, 'memcpy');
    const a = p.mmap(8 * P);
    expect(errOf(() => ctx.prepare(0x10000, P))).toBe('EFAULT');
    expect(errOf(() => ctx.prepare(a, 0))).toBe('EINVAL');
    expect(errOf(() => ctx.prepare(a, 8 * P))).toBe('ENOMEM');
    ctx.prepare(a, 4 * P);
    expect(errOf(() => ctx.prepare(a, P))).toBe('EBUSY');
    expect(errOf(() => ctx.release(a, P))).toBe('EINVAL');
    ctx.release(a, 4 * P);
    expect(errOf(() => ctx.release(a, 4 * P))).toBe('ENODEV');
    const locked = k.spawn({ uid: 1000, rlimits: { memlock: 0 } });
    const ctxL = openContext(locked, 'memcpy');
    expect(errOf(() => ctxL.prepare(locked.mmap(P), P))).toBe('EPERM');
    ctx.close();
    ctxL.close();
  });

  it('exit with prepared buffers and a context open unpins everything', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const a = p.mmap(64 * P);
    ctx.prepare(a, 32 * P);
    ctx.prepare(a + 32 * P, 32 * P);
    p.exit();
    expect(gupState(k.mmCore).pinnedPages).toBe(0);
    expect(k.plugin<Mempinfd>('pin-mempinfd').files()).toHaveLength(0);
  });
});

describe('unpin with DMA in flight', () => {
  it('SVA: detected and reported; the device still reaches the right memory, or faults', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const dma = dmaInflight(k.mmCore);
    const buf = p.mmap(4 * P);
    p.write(buf, pattern(4 * P, 9));
    ctx.prepare(buf, 4 * P);
    const pfn = p.pagemap(buf).pfn!;
    const events: Array<{ busyPages: number }> = [];
    k.trace.on('gup_unpin_dma_inflight', (e) => events.push(e));

    // In place (src == dst): the device reads the pages, works, then writes them back.
    let done: Completion | null = null;
    void ctx
      .submit({ op: 'copy', alg: 'memcpy', src: buf, srcLen: 4 * P, dst: buf, dstLen: 4 * P })
      .then((c) => (done = c));
    await runUntil(k, () => dma.count(pfn) > 0);
    ctx.release(buf, 4 * P);
    expect(k.vmstat().unpin_dma_inflight).toBe(4);
    expect(events).toEqual([expect.objectContaining({ owner: 'mempinfd', busyPages: 4, pfn })]);
    await k.runUntilIdle();
    expect(done).toMatchObject({ status: 0, produced: 4 * P });
    expect(same(p.read(buf, 4 * P), pattern(4 * P, 9))).toBe(true);
    expect(dma.count(pfn)).toBe(0);

    // Unpin and unmap while the device works: the mm no longer maps the pages, the MMU notifier
    // took them out of the device's view, and the write-back faults instead of landing anywhere.
    ctx.prepare(buf, 4 * P);
    let second: Completion | null = null;
    void ctx
      .submit({ op: 'copy', alg: 'memcpy', src: buf, srcLen: 4 * P, dst: buf, dstLen: 4 * P })
      .then((c) => (second = c));
    const pfn2 = p.pagemap(buf).pfn!;
    await runUntil(k, () => dma.count(pfn2) > 0);
    ctx.release(buf, 4 * P);
    p.munmap(buf, 4 * P);
    expect(k.vmstat().unpin_dma_inflight).toBe(8);
    await k.runUntilIdle();
    expect(second).toMatchObject({ status: -14 }); // -EFAULT: no use-after-free with SVA
    expect(dma.total).toBe(0);
    ctx.close();
  });

  it('a request cancelled mid-flight (PUT_Q at close) ends its DMA; exit with DMA in flight reports it', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const dma = dmaInflight(k.mmCore);
    const buf = p.mmap(8 * P);
    ctx.prepare(buf, 8 * P);
    void ctx.submit({ op: 'copy', alg: 'memcpy', src: buf, srcLen: 8 * P, dst: buf, dstLen: 8 * P });
    await runUntil(k, () => dma.total > 0);
    ctx.close(); // the device cancels the request: its pages are no longer in flight
    expect(dma.total).toBe(0);
    expect(k.vmstat().unpin_dma_inflight).toBe(0);
    // The mempinfd fd is closed before the queue at exit when it is the lower fd.
    const q = k.spawn();
    const fd = q.syscall('mempinfd');
    const ctxQ = openContext(q, 'memcpy');
    const qbuf = q.mmap(4 * P);
    q.ioctl(fd, MEM_CMD_PIN, { addr: qbuf, size: 4 * P });
    const lost = ctxQ.submit({
      op: 'copy',
      alg: 'memcpy',
      src: qbuf,
      srcLen: 4 * P,
      dst: qbuf,
      dstLen: 4 * P,
    });
    lost.catch(() => undefined); // its poller finds the process gone (ESRCH)
    await runUntil(k, () => dma.total > 0);
    q.exit();
    expect(k.vmstat().unpin_dma_inflight).toBe(4);
    expect(dma.total).toBe(0);
    await k.runUntilIdle();
  });

  it('non-SVA (IOVA): the unpinned page is freed and reused while the device still writes it', async () => {
    const k = boot(iovaMemcpyPlugin);
    const acc = k.plugin<MemcpyAccelerator>('memcpy_iova');
    expect(acc.config.sva).toBe(false);
    const p = k.spawn();
    const ctx: AccelContext = openContext(p, 'memcpy');
    const dma = dmaInflight(k.mmCore);
    const buf = p.mmap(P);
    const old = pattern(P, 1);
    p.write(buf, old);
    ctx.prepare(buf, P); // mempinfd pins the page ...
    const pfn = p.pagemap(buf).pfn!;
    // ... and the driver maps it for the device with the DMA API (no page reference taken).
    const m = dmaMapSg(acc.parent!, [pfn], DMA_BIDIRECTIONAL);
    expect(m.error).toBe(0);

    let done: Completion | null = null;
    void ctx
      .submit({ op: 'copy', alg: 'memcpy', src: m.iova, srcLen: P, dst: m.iova, dstLen: P })
      .then((c) => (done = c));
    await runUntil(k, () => dma.count(pfn) > 0);
    expect(done).toBeNull();

    // The application unpins and frees its buffer while the device is still working on it.
    const lines = k.dmesg().length;
    ctx.release(buf, P);
    p.munmap(buf, P);
    expect(k.vmstat().unpin_dma_inflight).toBe(1); // detected and reported
    expect(k.dmesg().slice(lines).join('\n')).toMatch(/mempinfd: .* with DMA in flight on 1 of them/);
    expect(k.phys.frames.refcount[pfn]).toBe(0); // nothing holds the page: it is free
    expect(k.checkInvariants().join('\n')).toMatch(/maps free page pfn \d+ \(DMA into a freed page\)/);

    // Another process gets the very page and fills it.
    const victim = k.spawn({ name: 'victim' });
    const v = victim.mmap(64 * P);
    victim.touch(v, 64 * P, { write: true });
    let at = -1;
    for (let i = 0; i < 64 && at < 0; i++) if (victim.pagemap(v + i * P).pfn === pfn) at = v + i * P;
    expect(at).toBeGreaterThanOrEqual(0);
    const mine = pattern(P, 200);
    victim.write(at, mine);

    // The device finishes and writes the old buffer's bytes over the victim's page.
    await k.runUntilIdle();
    expect(done).toMatchObject({ status: 0, produced: P });
    expect(same(victim.read(at, P), mine)).toBe(false);
    expect(same(victim.read(at, P), old)).toBe(true);

    dmaUnmapSg(acc.parent!, m.iova, 1);
    expect(dma.total).toBe(0);
    ctx.close();
  });
});
