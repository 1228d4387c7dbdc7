import { describe, expect, it } from '@jest/globals';
import {
  ACCEL_CQE,
  ACCEL_DB_SQ_TAIL,
  ACCEL_OP_COPY,
  ACCEL_QUEUE_CTRL,
  ACCEL_SQE,
  ERRNO,
  MAP_SHARED,
  O_RDWR,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  UACCE_CMD_PUT_Q,
  UACCE_CMD_START_Q,
  UACCE_DEV_SVA,
  UACCE_QFRT_DUS,
  UACCE_QFRT_MMIO,
  createKernel,
  type AccelCqe,
  type Kernel,
  type Process,
} from '@svasim/kernel';
import { MemcpyAccelerator, memcpyAccelPlugin } from './index';

const MiB = 1 << 20;
const errno = (code: keyof typeof ERRNO) => expect.objectContaining({ code });

function boot(seed = 1) {
  const k = createKernel({ seed, memory: { nodes: [{ size: '256MiB' }] }, plugins: [memcpyAccelPlugin] });
  const acc = k.plugin<MemcpyAccelerator>('memcpy_accel');
  return { k, acc };
}

/** Find the device as UADK does: the uacce class device whose algorithms list 'memcpy'. */
function findDevice(k: Kernel): string {
  const names = k.devices.sysfs.readdir('/sys/class/uacce') as string[];
  const name = names.find((n) =>
    k.readSysfs(`/sys/class/uacce/${n}/algorithms`).split('\n').includes('memcpy'),
  );
  if (!name) throw new Error('no memcpy device');
  return name;
}

/** A user-space queue: open, map both regions, START_Q; submit descriptors, reap completions. */
function openQueue(k: Kernel, p: Process) {
  const name = findDevice(k);
  const dusSize = Number(k.readSysfs(`/sys/class/uacce/${name}/region_dus_size`));
  const fd = p.open(`/dev/${name}`, O_RDWR);
  const rw = PROT_READ | PROT_WRITE;
  const db = p.mmap(PAGE_SIZE, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_MMIO * PAGE_SIZE });
  const dus = p.mmap(dusSize, { prot: rw, flags: MAP_SHARED, fd, offset: UACCE_QFRT_DUS * PAGE_SIZE });
  expect(p.ioctl(fd, UACCE_CMD_START_Q)).toBe(0);
  const ctrl = () => ACCEL_QUEUE_CTRL.decode(p.read(dus, ACCEL_QUEUE_CTRL.size));
  const { sq_depth: depth } = ctrl();
  const sqOff = PAGE_SIZE;
  const cqOff = sqOff + Math.ceil((depth * ACCEL_SQE.size) / PAGE_SIZE) * PAGE_SIZE;
  let tail = 0;
  let tag = 0;
  return {
    fd,
    db,
    dus,
    /** Write one descriptor and ring the doorbell with the new tail. */
    submit(fields: Parameters<typeof ACCEL_SQE.encode>[0]): number {
      p.write(dus + sqOff + (tail % depth) * ACCEL_SQE.size, ACCEL_SQE.encode({ tag: ++tag, ...fields }));
      tail = (tail + 1) >>> 0;
      const bell = new Uint8Array(4);
      new DataView(bell.buffer).setUint32(0, tail, true);
      p.write(db + ACCEL_DB_SQ_TAIL, bell);
      return tag;
    },
    /** A copy descriptor. */
    copy(src: number, dst: number, len: number, dstLen = len): number {
      return this.submit({ op: ACCEL_OP_COPY, src, dst, src_len: len, dst_len: dstLen });
    },
    /** Take the next completion, if any (as wd_recv polls the CQ). */
    reap(): AccelCqe | null {
      const c = ctrl();
      if (c.cq_head === c.cq_tail) return null;
      const cqe = ACCEL_CQE.decode(
        p.read(dus + cqOff + (c.cq_head % depth) * ACCEL_CQE.size, ACCEL_CQE.size),
      );
      const head = new Uint8Array(4);
      new DataView(head.buffer).setUint32(0, (c.cq_head + 1) >>> 0, true);
      p.write(dus + ACCEL_QUEUE_CTRL.offsetOf('cq_head'), head);
      return cqe;
    },
  };
}

/** Byte equality without jest's element-by-element diff (slow on 1 MiB). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('memcpy_accel', () => {
  it('registers through uacce with SVA, algorithms memcpy', () => {
    const { k, acc } = boot();
    const name = findDevice(k);
    expect(name).toBe('memcpy_accel-0');
    expect(acc.devPath).toBe('/dev/memcpy_accel-0');
    expect(k.readSysfs(`/sys/class/uacce/${name}/flags`)).toBe(`${UACCE_DEV_SVA}\n`);
    expect(k.readSysfs(`/sys/class/uacce/${name}/available_instances`)).toBe('4\n');
    expect(k.readSysfs(`/sys/class/uacce/${name}/region_mmio_size`)).toBe(`${PAGE_SIZE}\n`);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('copies 1 MiB of fresh memory through IO page faults, then again without any', async () => {
    const { k, acc } = boot();
    const p = k.spawn();
    const q = openQueue(k, p);
    const src = p.mmap(MiB);
    const dst = p.mmap(MiB);
    expect(p.poll(q.fd)).toBe(0);
    const iopfBefore = k.vmstat().iopf_count;
    const t0 = k.now();
    const tag = q.copy(src, dst, MiB);
    await k.runUntilIdle();
    expect(k.checkInvariants()).toEqual([]);
    expect(p.poll(q.fd)).not.toBe(0);
    const first = q.reap()!;
    expect(first).toMatchObject({ tag, status: 0, consumed: MiB, produced: MiB });
    // Both buffers were never touched: every page of both faults once (the source maps the zero page).
    expect(first.faults).toBe((2 * MiB) / PAGE_SIZE);
    expect(k.vmstat().iopf_count - iopfBefore).toBe(first.faults);
    const perFault = first.latency_ns / first.faults;
    expect(perFault).toBeGreaterThanOrEqual(10_000);
    expect(perFault).toBeLessThan(100_000);
    expect(first.latency_ns).toBeLessThanOrEqual(k.now() - t0);
    expect(same(p.read(dst, MiB), p.read(src, MiB))).toBe(true);
    expect(p.poll(q.fd)).toBe(0);

    // Same buffers again: every translation is in place now.
    p.write(src, pattern(MiB, 7));
    q.copy(src, dst, MiB);
    await k.runUntilIdle();
    const second = q.reap()!;
    expect(second).toMatchObject({ status: 0, faults: 0, produced: MiB });
    expect(second.latency_ns * 20).toBeLessThan(first.latency_ns);
    expect(same(p.read(dst, MiB), pattern(MiB, 7))).toBe(true);
    expect(acc.stats).toMatchObject({ submitted: 2, completed: 2, errors: 0 });
    expect(k.checkInvariants()).toEqual([]);
  });

  it('copies real bytes at unaligned addresses', async () => {
    const { k } = boot();
    const p = k.spawn();
    const q = openQueue(k, p);
    const src = p.mmap(4 * PAGE_SIZE);
    const dst = p.mmap(4 * PAGE_SIZE);
    const bytes = pattern(2 * PAGE_SIZE + 100, 3);
    p.write(src + 123, bytes);
    q.copy(src + 123, dst + 4000, bytes.length);
    await k.runUntilIdle();
    expect(q.reap()).toMatchObject({ status: 0, produced: bytes.length });
    expect(p.read(dst + 4000, bytes.length)).toEqual(bytes);
    expect(p.read(dst, 4000)).toEqual(new Uint8Array(4000));
  });

  it('completes bad requests with a negative status and keeps going', async () => {
    const { k, acc } = boot();
    const p = k.spawn();
    const q = openQueue(k, p);
    const buf = p.mmap(2 * PAGE_SIZE);
    const ro = p.mmap(PAGE_SIZE, { prot: PROT_READ });
    // An address nothing maps: the page request is answered INVALID.
    q.copy(0x10000, buf, PAGE_SIZE);
    // A destination the process may not write.
    q.copy(buf, ro, PAGE_SIZE);
    // A destination too small for the copy.
    q.copy(buf, buf + PAGE_SIZE, PAGE_SIZE, 16);
    // An op the device does not do.
    q.submit({ op: 2, src: buf, dst: buf, src_len: 8, dst_len: 8 });
    // And a good one after them.
    p.write(buf, pattern(100, 1));
    q.copy(buf, buf + PAGE_SIZE, 100);
    await k.runUntilIdle();
    const got = [q.reap(), q.reap(), q.reap(), q.reap(), q.reap()].map((c) => c && c.status);
    expect(got).toEqual([-ERRNO.EFAULT, -ERRNO.EFAULT, -ERRNO.ENOSPC, -ERRNO.EOPNOTSUPP, 0]);
    expect(q.reap()).toBeNull();
    expect(p.read(buf + PAGE_SIZE, 100)).toEqual(pattern(100, 1));
    expect(acc.busy).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('PUT_Q cancels what is in flight (-ECANCELED); exit mid-copy leaves nothing behind', async () => {
    const { k, acc } = boot();
    const p = k.spawn();
    const q = openQueue(k, p);
    const seen: AccelCqe[] = [];
    acc.onInterrupt = (_q, cqe) => void seen.push(cqe);
    q.copy(p.mmap(MiB), p.mmap(MiB), MiB);
    q.copy(p.mmap(MiB), p.mmap(MiB), MiB);
    await k.runFor(100_000);
    expect(p.ioctl(q.fd, UACCE_CMD_PUT_Q)).toBe(0);
    expect(seen.map((c) => c.status)).toEqual([-ERRNO.ECANCELED, -ERRNO.ECANCELED]);
    expect(acc.busy).toBe(0);
    await k.runUntilIdle();
    expect(seen).toHaveLength(2);
    expect(k.checkInvariants()).toEqual([]);

    const p2 = k.spawn();
    const q2 = openQueue(k, p2);
    q2.copy(p2.mmap(MiB), p2.mmap(MiB), MiB);
    await k.runFor(100_000);
    p2.exit();
    expect(acc.busy).toBe(0);
    await k.runUntilIdle();
    expect(k.readSysfs('/sys/class/uacce/memcpy_accel-0/available_instances')).toBe('3\n');
    expect(k.checkInvariants()).toEqual([]);
  });

  it('is deterministic for a seed', async () => {
    const run = async () => {
      const { k } = boot(42);
      const p = k.spawn();
      const q = openQueue(k, p);
      q.copy(p.mmap(MiB / 4), p.mmap(MiB / 4), MiB / 4);
      await k.runUntilIdle();
      return q.reap()!.latency_ns;
    };
    expect(await run()).toBe(await run());
  });

  it('hot removal with a request in flight: it completes -ENODEV, the mappings EFAULT', async () => {
    const { k, acc } = boot();
    const p = k.spawn();
    const q = openQueue(k, p);
    const seen: AccelCqe[] = [];
    acc.onInterrupt = (_q, cqe) => void seen.push(cqe);
    q.copy(p.mmap(MiB), p.mmap(MiB), MiB);
    await k.runFor(200_000); // some pages in, the rest still faulting
    expect(acc.busy).toBe(1);
    acc.unrealize();
    // The error completion is written to the CQ and signalled, but uacceRemove then zaps the
    // user mappings, so user space learns it from the interrupt (or poll/ioctl failing), not the ring.
    expect(seen).toEqual([expect.objectContaining({ status: -ERRNO.ENODEV })]);
    expect(acc.busy).toBe(0);
    await k.runUntilIdle(); // page responses still in the IOPF pipeline find nothing to resume
    expect(seen).toHaveLength(1);
    expect(() => p.read(q.dus, 4)).toThrow(errno('EFAULT'));
    expect(() => p.write(q.db, new Uint8Array(4))).toThrow(errno('EFAULT'));
    expect(p.poll(q.fd)).toBe(0);
    expect(() => p.ioctl(q.fd, UACCE_CMD_START_Q)).toThrow(errno('ENXIO'));
    expect(() => p.open('/dev/memcpy_accel-0')).toThrow();
    expect(k.checkInvariants()).toEqual([]);
    p.close(q.fd);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });
});
