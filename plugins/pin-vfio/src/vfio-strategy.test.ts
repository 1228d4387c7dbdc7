import { describe, expect, it } from '@jest/globals';
import {
  ERRNO,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_READ,
  createKernel,
  type Kernel,
  type KernelOptions,
  type Process,
  type SpawnOptions,
} from '@svasim/kernel';
import {
  describePinStrategyConformance,
  memcpyAccelNoSvaPlugin,
  memcpyAccelPlugin,
  migrateBufferPages,
} from '@svasim/testkit';
import { openContext, type AccelContext } from '@svasim/user';
import { VFIO_MAP_DMA_SYSCALL, VfioStrategy, vfioStrategy } from './index';

const KiB = 1024;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });

describePinStrategyConformance(vfioStrategy, {
  name: 'vfio',
  accelerator: memcpyAccelNoSvaPlugin,
  expect: { faultsAfterPrepare: 0, pins: true, survivesMigration: true, charge: 'vmLck', faultsAfterFork: 0 },
});

function boot(opts: KernelOptions = {}, accel = memcpyAccelNoSvaPlugin): { k: Kernel; s: VfioStrategy } {
  const k = createKernel({
    memory: { nodes: [{ size: '256MiB' }] },
    ...opts,
    plugins: [accel, vfioStrategy],
  });
  return { k, s: k.plugin<VfioStrategy>('pin-vfio') };
}

/** A process with a context on memcpy_accel-0 (the device node opened up to it first). */
function user(k: Kernel, spawn: SpawnOptions = {}): { p: Process; ctx: AccelContext } {
  const root = k.spawn();
  root.chmod('/dev/memcpy_accel-0', 0o666);
  root.exit();
  const p = k.spawn(spawn);
  return { p, ctx: openContext(p, 'memcpy', { kernel: k }) };
}

/** The errno name @fn threw, or 'ok'. */
function codeOf(fn: () => void): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

const copyReq = (src: number, dst: number, len: number) =>
  ({ op: 'copy', alg: 'memcpy', src, srcLen: len, dst, dstLen: len }) as const;

describe('pin-vfio', () => {
  it('registers a VfioStrategy named vfio with IOVA addressing and its two syscalls', () => {
    const { k, s } = boot();
    expect(k.pinStrategy()).toBe(s);
    expect(s).toMatchObject({ name: 'vfio', addressing: 'iova' });
    expect(k.syscalls.has(VFIO_MAP_DMA_SYSCALL)).toBe(true);
    // Shutdown tears the mappings down before the device goes (no "still DMA-mapped" warning).
    const { p, ctx } = user(k);
    const a = p.mmap(4 * PAGE_SIZE);
    ctx.prepare(a, 4 * PAGE_SIZE);
    k.shutdown();
    expect(k.syscalls.has(VFIO_MAP_DMA_SYSCALL)).toBe(false);
    expect(s.mappedBytes(ctx)).toBe(0);
    expect(p.pagemap(a).pinned).toBe(false);
    expect(p.status().vmLck).toBe(0);
    expect(k.dmesg().filter((l) => l.includes('still DMA-mapped'))).toEqual([]);
  });

  it('without SVA the device reaches only what prepare mapped: -EFAULT before, zero faults after', () => {
    const { k, s } = boot();
    const { p, ctx } = user(k);
    const len = 64 * KiB;
    const src = ctx.allocBuffer(len);
    const dst = ctx.allocBuffer(len);
    p.write(src, new Uint8Array(len).fill(0x3c));
    expect(ctx.submitSync(copyReq(src, dst, len))).toMatchObject({ status: -ERRNO.EFAULT, faults: 0 });
    ctx.prepare(src, len);
    ctx.prepare(dst, len);
    expect(s.mappedBytes(ctx)).toBe(2 * len);
    expect(ctx.submitSync(copyReq(src, dst, len))).toMatchObject({ status: 0, produced: len, faults: 0 });
    expect(p.read(dst, 4)).toEqual(new Uint8Array(4).fill(0x3c));
    // After release the IOVAs are gone from the domain: the device cannot write a freed page.
    ctx.release(dst, len);
    expect(ctx.submitSync(copyReq(src, dst, len)).status).toBe(-ERRNO.EFAULT);
    ctx.release(src, len);
    ctx.close();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('pins with FOLL_LONGTERM: pages leave ZONE_MOVABLE first, and charges locked_vm (VmLck)', () => {
    const { k } = boot({ memory: { nodes: [{ size: '256MiB', movable: '192MiB' }] } });
    const { p, ctx } = user(k, { uid: 1000, rlimits: { memlock: 1 << 20 } });
    const len = 16 * PAGE_SIZE;
    const buf = p.mmap(len);
    p.write(buf, new Uint8Array(len).fill(1));
    expect(p.pagemap(buf).zone).toBe('MOVABLE');
    ctx.prepare(buf, len);
    for (let i = 0; i < 16; i++)
      expect(p.pagemap(buf + i * PAGE_SIZE)).toMatchObject({
        pinned: true,
        zone: expect.not.stringMatching('MOVABLE'),
      });
    expect(p.read(buf, len)).toEqual(new Uint8Array(len).fill(1));
    expect(p.status()).toMatchObject({ vmLck: len, vmPin: 0 });
    // Unmovable now: a migration attempt fails on every page.
    expect(migrateBufferPages(k, p, buf, len)).toMatchObject({ moved: 0, failed: 16 });
    ctx.release(buf, len);
    expect(p.status().vmLck).toBe(0);
    expect(p.pagemap(buf).pinned).toBe(false);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('errno table of prepare (VFIO_IOMMU_MAP_DMA)', () => {
    const { k } = boot();
    const { p, ctx } = user(k, { uid: 1000, rlimits: { memlock: 64 * KiB } });
    const a = p.mmap(8 * PAGE_SIZE);
    p.munmap(a + 4 * PAGE_SIZE, PAGE_SIZE);
    ctx.prepare(a + 6 * PAGE_SIZE, PAGE_SIZE); // for the overlap cases
    const big = p.mmap(32 * PAGE_SIZE);
    const cases: Array<[string, number, number, keyof typeof ERRNO]> = [
      ['zero size', a, 0, 'EINVAL'],
      ['unaligned address', a + 100, PAGE_SIZE, 'EINVAL'],
      ['unaligned size', a, PAGE_SIZE + 1, 'EINVAL'],
      ['negative address', -PAGE_SIZE, PAGE_SIZE, 'EINVAL'],
      ['not a number', NaN, PAGE_SIZE, 'EINVAL'],
      ['wrapping range', 2 ** 53 - 2 * PAGE_SIZE, 4 * PAGE_SIZE, 'EINVAL'],
      ['beyond the IOVA aperture', 2 ** 48, PAGE_SIZE, 'EINVAL'],
      ['unmapped memory', 0x10000, PAGE_SIZE, 'EFAULT'],
      ['a range with a hole', a + 3 * PAGE_SIZE, 2 * PAGE_SIZE, 'EFAULT'],
      ['the same range again', a + 6 * PAGE_SIZE, PAGE_SIZE, 'EEXIST'],
      ['an overlapping range', a + 5 * PAGE_SIZE, 2 * PAGE_SIZE, 'EEXIST'],
      ['over RLIMIT_MEMLOCK (64 KiB)', big, 32 * PAGE_SIZE, 'ENOMEM'],
    ];
    const pinsBefore = k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released;
    const got = cases.map(([what, addr, len]) => [what, codeOf(() => ctx.prepare(addr, len))]);
    expect(got).toEqual(cases.map(([what, , , code]) => [what, code]));
    // Nothing was left pinned, mapped or charged by the failures.
    expect(k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released).toBe(pinsBefore);
    expect(p.status().vmLck).toBe(PAGE_SIZE);
    expect(p.pagemap(a).present).toBe(false);
    expect(codeOf(() => ctx.prepare(a, PAGE_SIZE))).toBe('ok');
    expect(k.checkInvariants()).toEqual([]);
  });

  it('without permission: RLIMIT_MEMLOCK 0 is ENOMEM (VFIO has no can_do_mlock EPERM); CAP_IPC_LOCK is exempt', () => {
    const { k } = boot();
    const { p, ctx } = user(k, { uid: 1000, rlimits: { memlock: 0 } });
    const a = p.mmap(PAGE_SIZE);
    expect(() => ctx.prepare(a, PAGE_SIZE)).toThrow(
      expect.objectContaining({ code: 'ENOMEM', syscall: 'vfio_iommu_map_dma' }),
    );
    const { p: q, ctx: qctx } = user(k, { uid: 1000, caps: ['CAP_IPC_LOCK'], rlimits: { memlock: 0 } });
    const b = q.mmap(64 * PAGE_SIZE, { addr: 0x10000000 });
    qctx.prepare(b, 64 * PAGE_SIZE);
    expect(q.status().vmLck).toBe(64 * PAGE_SIZE); // charged, just not limited
    qctx.release(b, 64 * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('errno table of release (VFIO_IOMMU_UNMAP_DMA): no mapping is 0 bytes, a cut is EINVAL', () => {
    const { k, s } = boot();
    const { p, ctx } = user(k);
    const a = p.mmap(8 * PAGE_SIZE);
    ctx.prepare(a, 2 * PAGE_SIZE);
    ctx.prepare(a + 4 * PAGE_SIZE, 2 * PAGE_SIZE);
    const rel = (addr: number, len: number) => codeOf(() => ctx.release(addr, len));
    expect([
      rel(a, 0),
      rel(a + 1, PAGE_SIZE),
      rel(a, PAGE_SIZE + 1),
      rel(NaN, PAGE_SIZE),
      rel(2 ** 53 - PAGE_SIZE, 2 * PAGE_SIZE),
      rel(a, PAGE_SIZE), // cuts the first mapping
      rel(a + PAGE_SIZE, 2 * PAGE_SIZE), // starts inside it
    ]).toEqual(['EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL']);
    expect(s.mappedBytes(ctx)).toBe(4 * PAGE_SIZE); // the refused releases unmapped nothing
    expect(s.unmapDma(ctx, a + 2 * PAGE_SIZE, 2 * PAGE_SIZE)).toBe(0); // nothing mapped there
    expect(s.unmapDma(ctx, a, 8 * PAGE_SIZE)).toBe(4 * PAGE_SIZE); // both mappings at once
    expect(s.unmapDma(ctx, a, 2 * PAGE_SIZE)).toBe(0); // double release: nothing left
    expect(p.status().vmLck).toBe(0);
    const stranger = { kernel: k, proc: p, fd: -1, device: 'nonexistent-0' };
    expect(() => s.prepare(stranger, a, PAGE_SIZE)).toThrow(errno('ENODEV'));
    expect(() => s.release({ ...stranger, device: '' }, a, PAGE_SIZE)).toThrow(errno('ENODEV'));
    expect(k.checkInvariants()).toEqual([]);
  });

  it('the library maps its own key/IV area for the device, and unmaps it at close', () => {
    const { k, s } = boot();
    const { p, ctx } = user(k);
    const len = 4 * PAGE_SIZE;
    const src = ctx.allocBuffer(len);
    const dst = ctx.allocBuffer(len);
    ctx.prepare(src, len);
    ctx.prepare(dst, len);
    const key = new Uint8Array(16).fill(0xaa);
    expect(ctx.submitSync({ ...copyReq(src, dst, len), key })).toMatchObject({ status: 0, faults: 0 });
    expect(s.mappedBytes(ctx)).toBeGreaterThan(2 * len); // the parameter area too
    ctx.release(src, len);
    ctx.release(dst, len);
    ctx.close();
    expect(s.mappedBytes(ctx)).toBe(0);
    expect(p.status().vmLck).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('maps a read-only buffer read-only: the device may read it, not write it', () => {
    const { k } = boot();
    const { p, ctx } = user(k);
    const len = 4 * PAGE_SIZE;
    const ro = p.mmap(len, { prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const rw = p.mmap(len);
    ctx.prepare(ro, len);
    ctx.prepare(rw, len);
    expect(ctx.submitSync(copyReq(ro, rw, len))).toMatchObject({ status: 0, faults: 0 });
    expect(ctx.submitSync(copyReq(rw, ro, len)).status).toBe(-ERRNO.EFAULT);
    expect(k.checkInvariants()).toEqual([]);
    ctx.release(ro, len);
    ctx.release(rw, len);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('one DMA domain per device: two processes mapping the same address collide (EEXIST)', () => {
    const { k } = boot();
    const one = user(k);
    const two = user(k);
    const a = one.p.mmap(PAGE_SIZE, { addr: 0x40000000 });
    const b = two.p.mmap(PAGE_SIZE, { addr: 0x40000000 });
    expect(a).toBe(b);
    one.ctx.prepare(a, PAGE_SIZE);
    expect(() => two.ctx.prepare(b, PAGE_SIZE)).toThrow(errno('EEXIST'));
    expect(two.p.status().vmLck).toBe(0); // the failed map gave its charge back
    one.p.exit();
    two.ctx.prepare(b, PAGE_SIZE); // the exit released the first mapping
    two.ctx.release(b, PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('with an SVA device the pins alone keep it from faulting (the IOVA mapping is unused)', () => {
    const { k } = boot({}, memcpyAccelPlugin);
    const { p, ctx } = user(k);
    const len = 16 * PAGE_SIZE;
    const src = p.mmap(len);
    const dst = p.mmap(len);
    ctx.prepare(src, len);
    ctx.prepare(dst, len);
    expect(ctx.submitSync(copyReq(src, dst, len))).toMatchObject({ status: 0, faults: 0 });
    ctx.release(src, len);
    ctx.release(dst, len);
    expect(k.checkInvariants()).toEqual([]);
  });
});
