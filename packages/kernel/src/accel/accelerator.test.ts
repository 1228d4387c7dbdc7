import { afterEach, describe, expect, it } from '@jest/globals';
import { DMA_BIDIRECTIONAL, dmaMapSg, dmaUnmapSg } from '../iommu/dma-api';
import { GFP_KERNEL } from '../mm/gfp';
import { PG_slab } from '../mm/page-flags';
import { putPage } from '../mm/page-ref';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { UACCE_CMD_START_Q, UACCE_QFRT_DUS, UACCE_QFRT_MMIO } from '../uacce/uapi';
import { ERRNO } from '../uapi/errno';
import { O_RDWR } from '../uapi/fcntl';
import {
  MAP_ANONYMOUS,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../uapi/mman';
import {
  VirtualAccelerator,
  accelServiceNs,
  type AccelResult,
  type AccelSqe,
  type AcceleratorConfig,
} from './accelerator';
import {
  ACCEL_CQE,
  ACCEL_OP_COPY,
  ACCEL_OP_ENCRYPT,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  accelDusLayout,
  accelOpCode,
} from './layout';

/** A toy device: 'encrypt' XORs every byte with sqe.level; level 0x1313 makes it throw, 0x707 fail. */
class XorAccel extends VirtualAccelerator {
  protected process(_op: string, src: Uint8Array, sqe: AccelSqe): AccelResult {
    if (sqe.level === 0x1313) throw new Error('engine bug');
    if (sqe.level === 0x707) return { status: -ERRNO.EINVAL, produced: 0, output: src };
    return { status: 0, produced: src.length, output: src.map((b) => b ^ sqe.level) };
  }
}

const TIMING = {
  throughputBytesPerS: 1e9,
  perRequestNs: 2000,
  doorbellNs: 100,
  sources: {
    throughputBytesPerS: 'assumption: test',
    perRequestNs: 'assumption: test',
    doorbellNs: 'assumption: test',
  },
};

const kernels: Kernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

function boot(cfg: Partial<AcceleratorConfig> = {}) {
  const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
  kernels.push(k);
  const acc = new XorAccel(k, {
    name: 'xor',
    parentName: '0000:01:00.0',
    apiVer: 'xor_v1',
    algorithms: ['xor'],
    ops: ['encrypt'],
    timing: TIMING,
    queues: 2,
    engines: 2,
    ringDepth: 2,
    ...cfg,
  });
  expect(acc.realize()).toBe(0);
  return { k, acc };
}

const populated = (p: Process, len: number) =>
  p.mmap(len, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE });

function openQueue(p: Process, acc: VirtualAccelerator) {
  const fd = p.open(acc.devPath!, O_RDWR);
  const rw = PROT_READ | PROT_WRITE;
  const db = p.mmap(PAGE_SIZE, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_MMIO * PAGE_SIZE });
  const dus = p.mmap(acc.layout.size, {
    prot: rw,
    flags: MAP_SHARED,
    fd,
    offset: UACCE_QFRT_DUS * PAGE_SIZE,
  });
  expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
  const { sqOff, cqOff, sqDepth } = acc.layout;
  let tail = 0;
  const ctrl = () => ACCEL_QUEUE_CTRL.decode(p.read(dus, ACCEL_QUEUE_CTRL.size));
  const ring = () => p.write(db, new Uint8Array(new Uint32Array([tail]).buffer));
  return {
    db,
    ctrl,
    ring,
    put(fields: Parameters<typeof ACCEL_SQE.encode>[0]) {
      p.write(dus + sqOff + (tail % sqDepth) * ACCEL_SQE.size, ACCEL_SQE.encode(fields));
      tail++;
    },
    submit(fields: Parameters<typeof ACCEL_SQE.encode>[0]) {
      this.put(fields);
      ring();
    },
    reap() {
      const c = ctrl();
      if (c.cq_head === c.cq_tail) return null;
      const cqe = ACCEL_CQE.decode(
        p.read(dus + cqOff + (c.cq_head % sqDepth) * ACCEL_CQE.size, ACCEL_CQE.size),
      );
      p.write(
        dus + ACCEL_QUEUE_CTRL.offsetOf('cq_head'),
        new Uint8Array(new Uint32Array([c.cq_head + 1]).buffer),
      );
      return cqe;
    },
  };
}

describe('layout', () => {
  it('has fixed descriptor sizes and a page-aligned DUS layout', () => {
    expect([ACCEL_SQE.size, ACCEL_CQE.size, ACCEL_QUEUE_CTRL.size]).toEqual([64, 32, 24]);
    expect(ACCEL_SQE.offsetOf('src')).toBe(16);
    expect(accelDusLayout(64)).toEqual({
      sqDepth: 64,
      cqDepth: 64,
      sqOff: PAGE_SIZE,
      cqOff: 2 * PAGE_SIZE,
      size: 3 * PAGE_SIZE,
      pages: 3,
    });
    expect(accelDusLayout(256).cqOff).toBe(5 * PAGE_SIZE);
    expect(() => accelDusLayout(3)).toThrow(RangeError);
    expect(accelOpCode('copy')).toBe(ACCEL_OP_COPY);
    expect(accelOpCode('nope')).toBe(-1);
    expect(accelServiceNs(TIMING, 1e6)).toBe(2000 + 1e6);
  });
});

describe('VirtualAccelerator', () => {
  it('runs two queues on two engines in parallel, with the service-time model', async () => {
    const { k, acc } = boot();
    const ps = [k.spawn(), k.spawn()];
    const qs = ps.map((p) => openQueue(p, acc));
    const bufs = ps.map((p) => populated(p, 2 * PAGE_SIZE));
    ps.forEach((p, i) => p.write(bufs[i], new Uint8Array(PAGE_SIZE).fill(i + 1)));
    const t0 = k.now();
    qs.forEach((q, i) =>
      q.submit({
        op: ACCEL_OP_ENCRYPT,
        tag: i,
        src: bufs[i],
        dst: bufs[i] + PAGE_SIZE,
        src_len: PAGE_SIZE,
        dst_len: PAGE_SIZE,
        level: 0xf0,
      }),
    );
    await k.runUntilIdle();
    const done = qs.map((q) => q.reap()!);
    const service = accelServiceNs(TIMING, PAGE_SIZE);
    for (const [i, c] of done.entries()) {
      expect(c).toMatchObject({ tag: i, status: 0, faults: 0, produced: PAGE_SIZE });
      // doorbell + service + translations (no faults: the buffers were populated)
      expect(c.latency_ns).toBeGreaterThanOrEqual(TIMING.doorbellNs + service);
      expect(c.latency_ns).toBeLessThan(TIMING.doorbellNs + service + 5000);
      expect(ps[i].read(bufs[i] + PAGE_SIZE, 4)).toEqual(new Uint8Array(4).fill((i + 1) ^ 0xf0));
    }
    // In parallel: the whole run took about one request, not two.
    expect(k.now() - t0).toBeLessThan(2 * service);
  });

  it('stops fetching while the CQ is full, until the doorbell rings again', async () => {
    const { k, acc } = boot({ engines: 1 });
    const p = k.spawn();
    const q = openQueue(p, acc);
    const buf = populated(p, PAGE_SIZE);
    const sqe = { op: ACCEL_OP_ENCRYPT, src: buf, dst: buf, src_len: 64, dst_len: 64 };
    q.put({ ...sqe, tag: 1 });
    q.put({ ...sqe, tag: 2 });
    q.ring();
    await k.runUntilIdle();
    expect(q.ctrl()).toMatchObject({ sq_head: 2, cq_tail: 2, cq_head: 0 });
    q.submit({ ...sqe, tag: 3 });
    await k.runUntilIdle();
    expect(q.ctrl()).toMatchObject({ sq_tail: 3, sq_head: 2, cq_tail: 2 });
    expect(q.reap()!.tag).toBe(1);
    // A 64-bit doorbell store works too (the low word is the tail).
    p.write(q.db, new Uint8Array(new BigUint64Array([3n]).buffer));
    await k.runUntilIdle();
    expect(q.ctrl()).toMatchObject({ sq_head: 3, cq_tail: 3 });
    expect([q.reap()!.tag, q.reap()!.tag, q.reap()]).toEqual([2, 3, null]);
  });

  it('completes unsupported ops, bad lengths, process errors and throws with a negative status', async () => {
    const { k, acc } = boot({ ringDepth: 8, maxLen: 1 << 20, engines: 1 });
    const p = k.spawn();
    const q = openQueue(p, acc);
    const buf = populated(p, PAGE_SIZE);
    const sqe = { op: ACCEL_OP_ENCRYPT, src: buf, dst: buf, src_len: 64, dst_len: 64 };
    q.submit({ ...sqe, op: ACCEL_OP_COPY });
    q.submit({ ...sqe, op: 99 });
    q.submit({ ...sqe, flags: 1 });
    q.submit({ ...sqe, src_len: 2 << 20 });
    q.submit({ ...sqe, level: 0x707 });
    q.submit({ ...sqe, level: 0x1313 });
    q.submit({ ...sqe, dst_len: 8 });
    await k.runUntilIdle();
    const got = Array.from({ length: 7 }, () => q.reap()!.status);
    const E = ERRNO;
    expect(got).toEqual([
      -E.EOPNOTSUPP,
      -E.EOPNOTSUPP,
      -E.EOPNOTSUPP,
      -E.EINVAL,
      -E.EINVAL,
      -E.EIO,
      -E.ENOSPC,
    ]);
    expect(acc.stats).toMatchObject({ submitted: 7, completed: 7, errors: 7 });
  });

  it('without SVA works on DMA addresses (IOVAs) mapped by the kernel; an unmapped IOVA is -EFAULT', async () => {
    const { k, acc } = boot({ sva: false, engines: 1 });
    expect(k.readSysfs(`/sys/class/uacce/${acc.uacce!.name}/flags`)).toBe('0\n');
    // A kernel buffer (as a driver's dma_alloc would give), mapped for the device.
    const pfns = [k.phys.allocPages(GFP_KERNEL, 0), k.phys.allocPages(GFP_KERNEL, 0)];
    for (const pfn of pfns) k.phys.frames.flags[pfn] |= PG_slab;
    k.mmCore.data.write(pfns[0], 0, new Uint8Array([1, 2, 3, 4]), 0, 4);
    const m = dmaMapSg(acc.parent!, pfns, DMA_BIDIRECTIONAL);
    expect(m.error).toBe(0);
    const p = k.spawn();
    const q = openQueue(p, acc);
    q.submit({
      op: ACCEL_OP_ENCRYPT,
      src: m.iova,
      dst: m.iova + PAGE_SIZE,
      src_len: 4,
      dst_len: 4,
      level: 1,
    });
    q.submit({ op: ACCEL_OP_ENCRYPT, src: m.iova + 16 * PAGE_SIZE, dst: m.iova, src_len: 4, dst_len: 4 });
    await k.runUntilIdle();
    expect(q.reap()).toMatchObject({ status: 0, faults: 0 });
    expect(q.reap()).toMatchObject({ status: -ERRNO.EFAULT, faults: 0 });
    expect(k.mmCore.data.view(pfns[1])!.subarray(0, 4)).toEqual(new Uint8Array([0, 3, 2, 5]));
    dmaUnmapSg(acc.parent!, m.iova, 2);
    for (const pfn of pfns) {
      k.phys.frames.flags[pfn] &= ~PG_slab;
      putPage(k.mmCore, pfn);
    }
  });

  it('realizes once; unrealize is idempotent and a new realize gets a new device', () => {
    const { k, acc } = boot();
    expect(acc.realize()).toBe(-ERRNO.EBUSY);
    const first = acc.devPath;
    acc.unrealize();
    acc.unrealize();
    expect(acc.devPath).toBeNull();
    expect(acc.realize()).toBe(0);
    expect(acc.devPath).toBe(first); // the id was freed and is reused
    expect(k.checkInvariants()).toEqual([]);
    acc.unrealize();
  });
});
