/**
 * The GPU's user-facing surface: registration, /dev and sysfs, the library's calls and the
 * errno of every rejected input, the latency model's figures, GPU kernels (launch), and
 * createGpuPlugin's options.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { ERRNO, O_RDWR, PAGE_SIZE, S_IFCHR, SyscallError, createKernel, type Kernel } from '@svasim/kernel';
import { GPU_TIMING_DEFAULTS, gpuTiming } from './gpu-config';
import type { GpuDevice } from './gpu-device';
import { openGpu } from './libgpu';
import { createGpuPlugin, gpuPlugin } from './plugin';
import { bootGpuKernel, errnoOf, ints } from './testing';
import {
  GPU_ATOMIC_F_FAULTED,
  GPU_ATOMIC_F_SYSMEM,
  GPU_ATOMIC_F_VRAM,
  SVASIM_GPU_IOC_LAUNCH,
  SVASIM_GPU_IOC_MIGRATE_TO_DEV,
  SVASIM_GPU_IOC_READ,
  SVASIM_GPU_IOC_SET_MODE,
} from './uapi';

const T = gpuTiming();
const booted: Kernel[] = [];
afterEach(() => {
  for (const k of booted.splice(0)) {
    expect(k.checkInvariants()).toEqual([]);
    for (const p of k.processList()) p.exit();
    expect(k.checkInvariants()).toEqual([]);
  }
});

function boot(): Kernel {
  const k = bootGpuKernel({ memory: { nodes: [{ size: '128MiB' }] } });
  booted.push(k);
  return k;
}

describe('registration, /dev and sysfs', () => {
  it('is an accelerator plugin whose instance is the realized device', () => {
    const k = boot();
    expect(gpuPlugin.kind).toBe('accelerator');
    expect(k.pluginNames()).toEqual(['gpu']);
    const gpu = k.plugin<GpuDevice>('gpu');
    expect(gpu.devPath).toBe('/dev/svasim_gpu0');
    expect(gpu.misc?.thisDevice).toBeDefined();
    expect(k.dmesg().some((l) => l.includes('svasim_gpu0: GPU registered, 32 MiB device memory'))).toBe(true);
  });

  it('has a 0666 character device and read-only sysfs attributes', () => {
    const k = boot();
    const inode = k.devices.vfs.lookup('/dev/svasim_gpu0')!;
    expect(inode.mode & 0o777).toBe(0o666);
    expect(inode.mode & S_IFCHR).toBe(S_IFCHR);
    const attr = (name: string) => k.readSysfs(`/sys/class/misc/svasim_gpu0/${name}`).trim();
    expect(attr('vram_size')).toBe(String(32 * 2 ** 20));
    expect(attr('vram_used')).toBe('0');
    expect(attr('vram_chunks')).toBe('0');
    expect(attr('atomic_modes')).toBe('notifier-only short-term longterm-pin');
    const p = k.spawn({ uid: 1000 });
    const g = openGpu(p);
    expect(attr('contexts')).toBe('1');
    const a = p.mmap(4 * PAGE_SIZE);
    g.migrateToDevice(a, 4 * PAGE_SIZE);
    expect(attr('vram_used')).toBe(String(4 * PAGE_SIZE));
    expect(attr('vram_chunks')).toBe('1');
    expect(Number(attr('device_ns'))).toBeGreaterThan(0);
    expect(() => k.writeSysfs('/sys/class/misc/svasim_gpu0/vram_size', '1')).toThrow(SyscallError);
  });

  it('createGpuPlugin makes a second GPU with its own name, memory size and timing', () => {
    const gpu2 = createGpuPlugin({
      pluginName: 'gpu2',
      name: 'svasim_gpu2',
      vramBytes: 2 ** 20,
      chunkPages: 64,
      timing: { gpuFaultNs: 31_790 },
    });
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] }, plugins: [gpuPlugin, gpu2] });
    booted.push(k);
    const p = k.spawn();
    const g = openGpu(p, { device: '/dev/svasim_gpu2' });
    const a = p.mmap(300 * PAGE_SIZE);
    g.atomicFetchAdd(a, 1);
    expect(g.last.ns).toBe(31_790 + T.sysmemAtomicNs);
    // 1 MiB is 256 pages: a 300-page migration runs out of device memory.
    expect(errnoOf(() => g.migrateToDevice(a, 300 * PAGE_SIZE))).toBe(-ERRNO.ENOMEM);
    expect(k.plugin<GpuDevice>('gpu2').vram.stats().usedPages).toBe(256);
    expect(() => createGpuPlugin({ pluginName: 'Bad Name' })).toThrow(TypeError);
  });

  it('refuses to realize a nonsensical configuration (EINVAL) or a taken name (EEXIST)', () => {
    expect(() => createKernel({ plugins: [createGpuPlugin({ vramBytes: PAGE_SIZE })] })).toThrow(/EINVAL/);
    expect(() => createKernel({ plugins: [gpuPlugin, createGpuPlugin({ pluginName: 'gpu-b' })] })).toThrow(
      /EEXIST/,
    );
  });
});

describe('the latency model', () => {
  it('every figure has a unit, a description and a source', () => {
    for (const [name, t] of Object.entries(GPU_TIMING_DEFAULTS)) {
      expect([
        name,
        t.value > 0,
        t.unit.length > 0,
        t.description.length > 10,
        (t.source ?? '').length > 5,
      ]).toEqual([name, true, true, true, true]);
    }
  });

  it('charges faults, bus and device-memory accesses as documented, and the caller waits for them', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(
      a,
      ints(4 * 1024, (i) => i),
    );
    const cpu0 = p.cpuNs;
    g.read(a, 4 * PAGE_SIZE);
    const first = T.gpuFaultNs + T.sysmemLatencyNs + (4 * PAGE_SIZE) / T.sysmemBytesPerNs;
    expect(g.last.ns).toBe(Math.round(first));
    expect(p.cpuNs - cpu0).toBeGreaterThanOrEqual(first);
    g.read(a, 4 * PAGE_SIZE);
    expect(g.last.ns).toBe(Math.round(T.sysmemLatencyNs + (4 * PAGE_SIZE) / T.sysmemBytesPerNs));
    g.atomicFetchAdd(a, 1);
    expect([g.last.ns, g.last.flags]).toEqual([
      T.gpuFaultNs + T.sysmemAtomicNs,
      GPU_ATOMIC_F_FAULTED | GPU_ATOMIC_F_SYSMEM,
    ]);
    g.atomicFetchAdd(a, 1);
    expect([g.last.ns, g.last.flags]).toEqual([T.sysmemAtomicNs, GPU_ATOMIC_F_SYSMEM]);
    expect(g.migrateToDevice(a + PAGE_SIZE, 3 * PAGE_SIZE)).toBe(3);
    expect(g.last.ns).toBe(Math.round(T.migrateSetupNs + (3 * PAGE_SIZE) / T.migrateBytesPerNs));
    g.atomicFetchAdd(a + PAGE_SIZE, 1);
    expect([g.last.ns, g.last.flags]).toEqual([T.vramAtomicNs, GPU_ATOMIC_F_VRAM]);
    g.read(a + PAGE_SIZE, 3 * PAGE_SIZE);
    expect(g.last.ns).toBe(Math.round(T.vramLatencyNs + (3 * PAGE_SIZE) / T.vramBytesPerNs));
    // A CPU access to device memory waits for migrate_to_ram, a revocation costs a TLB shootdown.
    const before = p.cpuNs;
    p.read(a + PAGE_SIZE, 4);
    expect(p.cpuNs - before).toBeGreaterThanOrEqual(T.devmemFaultNs + T.tlbShootdownNs);
    const s = g.stats();
    expect(s.deviceNs).toBeGreaterThan(0);
    expect(s.tlbShootdowns).toBeGreaterThan(0);
  });
});

describe('GPU kernels', () => {
  it('launch runs a kernel through the mirror: a histogram with atomics, then a store pass', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const input = p.mmap(2 * PAGE_SIZE);
    const bins = p.mmap(PAGE_SIZE);
    const data = new Uint8Array(2 * PAGE_SIZE);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 16;
    p.write(input, data);
    const ns = g.launch((t) => {
      const bytes = t.read(input, 2 * PAGE_SIZE);
      for (const b of bytes.subarray(0, 512)) t.atomicAdd(bins + 4 * b, 1);
      t.store32(bins + 64, t.load32(bins) + 1000);
      expect(t.atomicCas(bins + 68, 0, 5)).toBe(0);
      expect(t.atomicAdd64(bins + 72, 3n)).toBe(0n);
      expect(t.atomicCas64(bins + 72, 3n, 9n)).toBe(3n);
    });
    expect(ns).toBeGreaterThanOrEqual(T.launchNs);
    const got = new Int32Array(p.read(bins, 80).buffer);
    const want = new Array(16).fill(0);
    for (const b of data.subarray(0, 512)) want[b]++;
    expect([...got.subarray(0, 16)]).toEqual(want);
    expect([got[16], got[17], got[18], got[19]]).toEqual([want[0] + 1000, 5, 9, 0]);
    expect(g.stats().launches).toBe(1);
  });

  it('a kernel that faults on bad memory stops with the errno; other exceptions propagate', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(PAGE_SIZE);
    expect(errnoOf(() => g.launch((t) => t.write(0x1000, new Uint8Array(4))))).toBe(-ERRNO.EFAULT);
    expect(errnoOf(() => g.launch((t) => t.atomicAdd(a + 1, 1)))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.launch((t) => void t.read(a, -1)))).toBe(-ERRNO.EINVAL);
    expect(() =>
      g.launch(() => {
        throw new Error('kernel bug');
      }),
    ).toThrow('kernel bug');
    const fd = p.open('/dev/svasim_gpu0', O_RDWR);
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_LAUNCH, { kernel: 'not a function' }))).toBe(
      -ERRNO.EINVAL,
    );
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_LAUNCH, 0x1000))).toBe(-ERRNO.EINVAL);
  });
});

describe('errors', () => {
  it('answers each bad request with its errno', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(4 * PAGE_SIZE);
    const fd = p.open('/dev/svasim_gpu0', O_RDWR);
    // Unmapped memory: EFAULT for accesses and atomics, EINVAL for migrations (a hole).
    expect(errnoOf(() => g.read(0x10000, 4))).toBe(-ERRNO.EFAULT);
    expect(errnoOf(() => g.write(0x10000, new Uint8Array(4)))).toBe(-ERRNO.EFAULT);
    expect(errnoOf(() => g.atomicCas(0x10000, 0, 1))).toBe(-ERRNO.EFAULT);
    expect(errnoOf(() => g.migrateToDevice(0x10000, PAGE_SIZE))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.migrateToSystem(0x10000, PAGE_SIZE))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.read(2 ** 47, 4))).toBe(-ERRNO.EFAULT);
    // Malformed arguments.
    expect(errnoOf(() => g.migrateToDevice(a + 1, PAGE_SIZE))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.migrateToDevice(a, 0))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.read(a, -1))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.read(-4, 4))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.snapshot(a + 1, 1))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_READ, { addr: a, data: 'x' }))).toBe(-ERRNO.EINVAL);
    expect(
      errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_READ, { addr: a, len: 8, data: new Uint8Array(4) })),
    ).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_READ, { addr: a, len: 2 ** 31 }))).toBe(-ERRNO.ENOMEM);
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_READ, { addr: a, len: 4, bogus: 1 }))).toBe(
      -ERRNO.EINVAL,
    );
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_MIGRATE_TO_DEV, 0x10))).toBe(-ERRNO.EFAULT);
    expect(errnoOf(() => p.ioctl(fd, 0x1234))).toBe(-ERRNO.ENOTTY);
    // Modes: unknown, and pin-in-place outside longterm-pin.
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_SET_MODE, { mode: 3 }))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_SET_MODE, { mode: 0, flags: 1 }))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_SET_MODE, { mode: 2, flags: 2 }))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => openGpu(p, { mode: 'pinned' as never }))).toBe(-ERRNO.EINVAL);
    expect(errnoOf(() => g.setMode('nope' as never))).toBe(-ERRNO.EINVAL);
    // A missing device.
    expect(errnoOf(() => openGpu(p, { device: '/dev/svasim_gpu7' }))).toBe(-ERRNO.ENOENT);
  });

  it('a closed context answers EBADF, without touching the fd number someone else may reuse', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(PAGE_SIZE);
    g.close();
    const other = p.open('/dev/svasim_gpu0', O_RDWR);
    expect(other).toBe(g.fd);
    for (const call of [
      () => g.read(a, 4),
      () => g.atomicFetchAdd(a, 1),
      () => g.migrateToDevice(a, PAGE_SIZE),
      () => g.stats(),
      () => g.close(),
    ]) {
      const e = (() => {
        try {
          call();
        } catch (err) {
          return err;
        }
        return null;
      })();
      expect(e).toBeInstanceOf(SyscallError);
      expect((e as SyscallError).code).toBe('EBADF');
    }
    p.close(other);
    expect(errnoOf(() => p.ioctl(other, SVASIM_GPU_IOC_READ, { addr: a, len: 4 }))).toBe(-ERRNO.EBADF);
  });

  it('a context opened before fork mirrors the parent: the child using the inherited fd reaches the parent memory', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    const a = p.mmap(PAGE_SIZE);
    p.write(
      a,
      ints(1, () => 5),
    );
    const child = p.fork();
    child.write(
      a,
      ints(1, () => 9),
    );
    const data = new Uint8Array(4);
    child.ioctl(g.fd, SVASIM_GPU_IOC_READ, { addr: a, data });
    expect(new Int32Array(data.buffer)[0]).toBe(5);
    expect(new Int32Array(g.read(a, 4).buffer)[0]).toBe(5);
    child.exit();
    // The parent's exit closes the last reference: the context goes.
    p.exit();
    expect(k.plugin<GpuDevice>('gpu').stats().contexts).toBe(0);
  });
});
