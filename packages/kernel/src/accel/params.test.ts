/**
 * The VirtualAccelerator additions accelerator plugins rely on for parameters: the key and IV a
 * descriptor points to are DMA-read through the IOMMU (with IO page faults) before the source and
 * handed to process(); SQE flag bits a device did not opt into are refused; a result's serviceNs
 * replaces the timing model's service time.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
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
  type AccelRequestParams,
  type AccelResult,
  type AccelSqe,
  type AcceleratorConfig,
} from './accelerator';
import {
  ACCEL_CQE,
  ACCEL_OP_ENCRYPT,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  ACCEL_SQE_F_STREAM,
  ACCEL_SQE_F_STREAM_END,
} from './layout';

/**
 * A toy device: 'encrypt' outputs key || iv || src, so a test sees exactly what the DMA engine read
 * for each parameter. A non-zero sqe.level is the service time it claims, in ns.
 */
class EchoParamsAccel extends VirtualAccelerator {
  readonly seen: AccelRequestParams[] = [];
  protected process(_op: string, src: Uint8Array, sqe: AccelSqe, params: AccelRequestParams): AccelResult {
    this.seen.push(params);
    const out = new Uint8Array(params.key.length + params.iv.length + src.length);
    out.set(params.key, 0);
    out.set(params.iv, params.key.length);
    out.set(src, params.key.length + params.iv.length);
    return {
      status: 0,
      produced: out.length,
      output: out,
      ...(sqe.level ? { serviceNs: sqe.level } : {}),
    };
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
  const acc = new EchoParamsAccel(k, {
    name: 'echo',
    parentName: '0000:02:00.0',
    apiVer: 'echo_v1',
    algorithms: ['echo'],
    ops: ['encrypt'],
    timing: TIMING,
    queues: 1,
    engines: 1,
    ringDepth: 8,
    ...cfg,
  });
  expect(acc.realize()).toBe(0);
  const p = k.spawn();
  return { k, acc, p, q: openQueue(p, acc) };
}

const populated = (p: Process, len: number) =>
  p.mmap(len, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE });

/** Open a queue by hand (as accelerator.test.ts does): submit one descriptor, reap one completion. */
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
  return {
    submit(fields: Parameters<typeof ACCEL_SQE.encode>[0]) {
      p.write(
        dus + sqOff + (tail % sqDepth) * ACCEL_SQE.size,
        ACCEL_SQE.encode({ op: ACCEL_OP_ENCRYPT, ...fields }),
      );
      tail++;
      p.write(db, new Uint8Array(new Uint32Array([tail]).buffer));
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

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('VirtualAccelerator key and IV parameters', () => {
  it('reads key and IV by DMA and hands them to process(): output is key || iv || src', async () => {
    const { k, acc, p, q } = boot();
    const buf = populated(p, 2 * PAGE_SIZE);
    const key = bytes(32, 1);
    const iv = bytes(16, 2);
    const src = bytes(100, 3);
    // Key and IV straddle nothing special: just other bytes of the same buffer, at odd offsets.
    p.write(buf + 1000, key);
    p.write(buf + 2001, iv);
    p.write(buf, src);
    q.submit({
      src: buf,
      dst: buf + PAGE_SIZE,
      src_len: 100,
      dst_len: 200,
      key: buf + 1000,
      key_len: 32,
      iv: buf + 2001,
      iv_len: 16,
    });
    await k.runUntilIdle();
    expect(q.reap()).toMatchObject({ status: 0, faults: 0, produced: 148, consumed: 100 });
    expect(same(p.read(buf + PAGE_SIZE, 148), Uint8Array.from([...key, ...iv, ...src]))).toBe(true);
    expect(acc.seen[0].queue).toBe(0);
  });

  it('a key on a never-touched page takes an IO page fault and still works (the zero page)', async () => {
    const { k, p, q } = boot();
    const buf = populated(p, 2 * PAGE_SIZE);
    p.write(buf, bytes(64, 5));
    const fresh = p.mmap(PAGE_SIZE); // never touched by the CPU: no PTE yet
    const iopf = k.vmstat().iopf_count;
    q.submit({ src: buf, dst: buf + PAGE_SIZE, src_len: 64, dst_len: 128, key: fresh + 64, key_len: 16 });
    await k.runUntilIdle();
    expect(q.reap()).toMatchObject({ status: 0, faults: 1, produced: 80 });
    expect(k.vmstat().iopf_count - iopf).toBe(1);
    // The fault mapped the page for reading; an untouched anonymous page reads as zeros.
    expect(same(p.read(buf + PAGE_SIZE, 80), Uint8Array.from([...new Uint8Array(16), ...bytes(64, 5)]))).toBe(
      true,
    );

    // Written by the CPU later, the same page gives its bytes, now without a fault.
    p.write(fresh + 64, bytes(16, 9));
    q.submit({ src: buf, dst: buf + PAGE_SIZE, src_len: 64, dst_len: 128, key: fresh + 64, key_len: 16 });
    await k.runUntilIdle();
    expect(q.reap()).toMatchObject({ status: 0, produced: 80 });
    expect(same(p.read(buf + PAGE_SIZE, 16), bytes(16, 9))).toBe(true);
  });

  it('an IV on a never-touched page faults too, after the key', async () => {
    const { k, p, q } = boot();
    const buf = populated(p, 2 * PAGE_SIZE);
    p.write(buf, bytes(64, 1));
    const fresh = p.mmap(2 * PAGE_SIZE);
    q.submit({
      src: buf,
      dst: buf + PAGE_SIZE,
      src_len: 64,
      dst_len: 128,
      key: fresh,
      key_len: 8,
      iv: fresh + PAGE_SIZE,
      iv_len: 12,
    });
    await k.runUntilIdle();
    expect(q.reap()).toMatchObject({ status: 0, faults: 2, produced: 84 });
  });

  it('an unmapped key or IV address completes -EFAULT, before the source is read', async () => {
    const { k, acc, p, q } = boot();
    const buf = populated(p, 2 * PAGE_SIZE);
    const untouchedSrc = p.mmap(PAGE_SIZE);
    const hole = 0x10000; // below every mapping
    q.submit({ src: untouchedSrc, dst: buf, src_len: 64, dst_len: 128, key: hole, key_len: 16 });
    q.submit({ src: untouchedSrc, dst: buf, src_len: 64, dst_len: 128, iv: hole, iv_len: 16 });
    q.submit({
      src: buf,
      dst: buf + PAGE_SIZE,
      src_len: 64,
      dst_len: 128,
      key: buf,
      key_len: 16,
      iv: hole,
      iv_len: 16,
    });
    await k.runUntilIdle();
    // One page request each (for the parameter): the untouched source was never reached.
    expect(q.reap()).toMatchObject({ status: -ERRNO.EFAULT, faults: 1, produced: 0 });
    expect(q.reap()).toMatchObject({ status: -ERRNO.EFAULT, faults: 1, produced: 0 });
    expect(q.reap()).toMatchObject({ status: -ERRNO.EFAULT, faults: 1, produced: 0 });
    expect(p.pagemap(untouchedSrc).present).toBe(false);
    expect(acc.seen).toHaveLength(0);
  });

  it('key_len 0 gives an empty key and IV without reading the addresses', async () => {
    const { k, acc, p, q } = boot();
    const buf = populated(p, 2 * PAGE_SIZE);
    p.write(buf, bytes(32, 4));
    q.submit({
      src: buf,
      dst: buf + PAGE_SIZE,
      src_len: 32,
      dst_len: 32,
      key: 0x10000,
      key_len: 0,
      iv: 0x20000,
      iv_len: 0,
    });
    await k.runUntilIdle();
    expect(q.reap()).toMatchObject({ status: 0, faults: 0, produced: 32 });
    expect([acc.seen[0].key.length, acc.seen[0].iv.length]).toEqual([0, 0]);
    expect(same(p.read(buf + PAGE_SIZE, 32), bytes(32, 4))).toBe(true);
  });
});

describe('VirtualAccelerator SQE flags', () => {
  it('a flag bit the device did not opt into completes -EOPNOTSUPP; an opted-in one is served', async () => {
    const plain = boot();
    const buf = populated(plain.p, 2 * PAGE_SIZE);
    const sqe = { src: buf, dst: buf + PAGE_SIZE, src_len: 16, dst_len: 16 };
    plain.q.submit({ ...sqe, flags: ACCEL_SQE_F_STREAM });
    plain.q.submit({ ...sqe, flags: 0x80 });
    plain.q.submit(sqe);
    await plain.k.runUntilIdle();
    expect([plain.q.reap()!.status, plain.q.reap()!.status, plain.q.reap()!.status]).toEqual([
      -ERRNO.EOPNOTSUPP,
      -ERRNO.EOPNOTSUPP,
      0,
    ]);
    expect(plain.acc.seen).toHaveLength(1);

    const streaming = boot({ sqeFlags: ACCEL_SQE_F_STREAM | ACCEL_SQE_F_STREAM_END });
    const b2 = populated(streaming.p, 2 * PAGE_SIZE);
    const s2 = { src: b2, dst: b2 + PAGE_SIZE, src_len: 16, dst_len: 16 };
    streaming.q.submit({ ...s2, flags: ACCEL_SQE_F_STREAM });
    streaming.q.submit({ ...s2, flags: ACCEL_SQE_F_STREAM | ACCEL_SQE_F_STREAM_END });
    streaming.q.submit({ ...s2, flags: ACCEL_SQE_F_STREAM | 0x100 });
    await streaming.k.runUntilIdle();
    expect([streaming.q.reap()!.status, streaming.q.reap()!.status, streaming.q.reap()!.status]).toEqual([
      0,
      0,
      -ERRNO.EOPNOTSUPP,
    ]);
  });
});

describe('VirtualAccelerator AccelResult.serviceNs', () => {
  it('replaces perRequestNs + bytes / throughput as the engine busy time', async () => {
    const { k, p, q } = boot();
    const buf = populated(p, 4 * PAGE_SIZE);
    const len = 2 * PAGE_SIZE;
    const modelNs = accelServiceNs(TIMING, len);
    // The model's time: doorbell + service + translations (the buffers are populated).
    q.submit({ src: buf, dst: buf + len, src_len: len, dst_len: len });
    await k.runUntilIdle();
    const byModel = q.reap()!;
    expect(byModel).toMatchObject({ status: 0, faults: 0 });
    expect(byModel.latency_ns).toBeGreaterThanOrEqual(TIMING.doorbellNs + modelNs);
    expect(byModel.latency_ns).toBeLessThan(TIMING.doorbellNs + modelNs + 5000);

    // A much longer claimed service time shows up in the latency, the same bytes moved.
    const claimed = 1_000_000;
    q.submit({ src: buf, dst: buf + len, src_len: len, dst_len: len, level: claimed });
    await k.runUntilIdle();
    const byResult = q.reap()!;
    expect(byResult).toMatchObject({ status: 0, faults: 0, produced: len });
    expect(byResult.latency_ns).toBeGreaterThanOrEqual(TIMING.doorbellNs + claimed);
    expect(byResult.latency_ns).toBeLessThan(TIMING.doorbellNs + claimed + 5000);

    // And a shorter one: 1 ns of service, so the latency is only doorbell + translations.
    q.submit({ src: buf, dst: buf + len, src_len: len, dst_len: len, level: 1 });
    await k.runUntilIdle();
    const fast = q.reap()!;
    expect(fast.latency_ns).toBeLessThan(modelNs);
    expect(fast.latency_ns).toBe(byResult.latency_ns - claimed + 1);
  });
});
