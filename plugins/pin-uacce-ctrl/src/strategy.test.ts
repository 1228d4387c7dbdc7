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
import { openContext, type Completion } from '@svasim/user';
import { UacceCtrl, uacceCtrlPlugin } from './index';

const P = PAGE_SIZE;
const MiB = 1 << 20;

const kernels: Kernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

function boot(accel: Plugin = memcpyAccelPlugin): Kernel {
  const k = createKernel({ memory: { nodes: [{ size: '256MiB' }] }, plugins: [accel, uacceCtrlPlugin] });
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

async function runUntil(k: Kernel, cond: () => boolean, stepNs = 50, maxSteps = 10_000): Promise<void> {
  for (let i = 0; i < maxSteps && !cond(); i++) await k.runFor(stepNs);
  expect(cond()).toBe(true);
}

describe("the 'uacce-ctrl' strategy from @svasim/user", () => {
  it('after ctx.prepare the device copy takes no IO page fault', () => {
    const k = boot();
    const p = k.spawn(); // root: /dev/uacce_ctrl is 0600 root
    const ctx = openContext(p, 'memcpy');
    expect(ctx.pin.name).toBe('uacce-ctrl');
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    ctx.prepare(src, MiB);
    ctx.prepare(dst, MiB);
    p.write(src, pattern(MiB, 3));
    const iopf0 = k.vmstat().iopf_count;
    const c = ctx.submitSync({ op: 'copy', alg: 'memcpy', src, srcLen: MiB, dst, dstLen: MiB });
    expect(c).toMatchObject({ status: 0, faults: 0, produced: MiB });
    expect(k.vmstat().iopf_count).toBe(iopf0);
    expect(same(p.read(dst, MiB), pattern(MiB, 3))).toBe(true);
    expect(k.plugin<UacceCtrl>('pin-uacce-ctrl').files()).toHaveLength(1); // one open per process
    ctx.release(src, MiB);
    ctx.release(dst, MiB);
    expect(p.status().vmPin).toBe(0);
    ctx.close();
    p.exit();
    expect(k.plugin<UacceCtrl>('pin-uacce-ctrl').files()).toHaveLength(0);
  });

  it('an unprivileged target process gets EACCES from prepare, until root opens the node to it', () => {
    const k = boot();
    const root = k.spawn();
    root.chmod('/dev/memcpy_accel-0', 0o666);
    const user = k.spawn({ uid: 1000 });
    const ctx = openContext(user, 'memcpy');
    const a = user.mmap(4 * P);
    expect(errOf(() => ctx.prepare(a, 4 * P))).toBe('EACCES');
    root.chmod('/dev/uacce_ctrl', 0o660);
    expect(errOf(() => ctx.prepare(a, 4 * P))).toBe('EACCES'); // still not in the group
    root.chmod('/dev/uacce_ctrl', 0o666);
    ctx.prepare(a, 4 * P);
    expect(user.status().vmPin).toBe(4 * P);
    expect(errOf(() => ctx.prepare(a, P))).toBe('EBUSY');
    ctx.release(a, 4 * P);
    expect(errOf(() => ctx.release(a, 4 * P))).toBe('ENODEV');
    ctx.close();
  });

  it('exit with prepared buffers unpins everything', () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const a = p.mmap(64 * P);
    ctx.prepare(a, 64 * P);
    p.exit();
    expect(gupState(k.mmCore).pinnedPages).toBe(0);
  });
});

describe('unpin with DMA in flight', () => {
  it('SVA: detected and reported; the data stays right', async () => {
    const k = boot();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const dma = dmaInflight(k.mmCore);
    const buf = p.mmap(2 * P);
    p.write(buf, pattern(2 * P, 4));
    ctx.prepare(buf, 2 * P);
    const pfn = p.pagemap(buf).pfn!;
    let done: Completion | null = null;
    void ctx
      .submit({ op: 'copy', alg: 'memcpy', src: buf, srcLen: 2 * P, dst: buf, dstLen: 2 * P })
      .then((c) => (done = c));
    await runUntil(k, () => dma.count(pfn) > 0);
    ctx.release(buf, 2 * P);
    expect(k.vmstat().unpin_dma_inflight).toBe(2);
    await k.runUntilIdle();
    expect(done).toMatchObject({ status: 0 });
    expect(same(p.read(buf, 2 * P), pattern(2 * P, 4))).toBe(true);
    expect(dma.total).toBe(0);
    ctx.close();
  });

  it('non-SVA (IOVA): the freed page is reused while the device still writes it', async () => {
    const iova = definePlugin({
      name: 'memcpy_iova',
      kind: 'accelerator',
      register({ kernel }) {
        return new MemcpyAccelerator(kernel as Kernel, { ...MEMCPY_ACCEL_CONFIG, sva: false });
      },
    });
    const k = boot(iova);
    const acc = k.plugin<MemcpyAccelerator>('memcpy_iova');
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy');
    const dma = dmaInflight(k.mmCore);
    const buf = p.mmap(P);
    const old = pattern(P, 8);
    p.write(buf, old);
    ctx.prepare(buf, P);
    const pfn = p.pagemap(buf).pfn!;
    const m = dmaMapSg(acc.parent!, [pfn], DMA_BIDIRECTIONAL);
    let done: Completion | null = null;
    void ctx
      .submit({ op: 'copy', alg: 'memcpy', src: m.iova, srcLen: P, dst: m.iova, dstLen: P })
      .then((c) => (done = c));
    await runUntil(k, () => dma.count(pfn) > 0);
    ctx.release(buf, P);
    p.munmap(buf, P);
    expect(k.vmstat().unpin_dma_inflight).toBe(1);
    expect(k.phys.frames.refcount[pfn]).toBe(0);
    const victim = k.spawn();
    const v = victim.mmap(64 * P);
    victim.touch(v, 64 * P, { write: true });
    let at = -1;
    for (let i = 0; i < 64 && at < 0; i++) if (victim.pagemap(v + i * P).pfn === pfn) at = v + i * P;
    expect(at).toBeGreaterThanOrEqual(0);
    victim.write(at, pattern(P, 99));
    await k.runUntilIdle();
    expect(done).toMatchObject({ status: 0 });
    expect(same(victim.read(at, P), old)).toBe(true); // the device overwrote the victim's page
    dmaUnmapSg(acc.parent!, m.iova, 1);
    ctx.close();
  });
});
