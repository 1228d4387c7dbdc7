/**
 * Accelerator conformance for the GPU. The testkit's describeAcceleratorConformance drives a
 * uacce device through @svasim/user (queues, request rings, pin strategies): it runs here on the
 * GPU's copy engine (/dev/svasim_gpu_ce-<id>, algorithm 'gpu_copy'), whose hot removal is the
 * whole GPU's. The GPU's compute side is not a uacce device - it is an HMM device with its own
 * page table, opened as a misc device - so the second block runs the same checks by hand against
 * its own interface (README.md, "Conformance"): registers; appears in sysfs and /dev; serves
 * requests (in each atomic mode, which is what the GPU has instead of pin strategies); survives
 * hot removal with contexts open; is deterministic for a seed; leaves no invariant violation
 * (checked after every step of every check).
 */
import { describe, expect, it } from '@jest/globals';
import { ERRNO, PAGE_SIZE, SyscallError, createKernel, type Kernel, type Process } from '@svasim/kernel';
import { describeAcceleratorConformance, firstDifference } from '@svasim/testkit';
import { GPU_ATOMIC_MODES, type GpuAtomicMode } from './atomic-holds';
import type { GpuDevice } from './gpu-device';
import { openGpu, type GpuClient } from './libgpu';
import { gpuPlugin } from './plugin';
import { errnoOf } from './testing';

describeAcceleratorConformance({
  plugin: gpuPlugin,
  alg: 'gpu_copy',
  uaccePrefix: 'svasim_gpu_ce',
  sva: true,
  name: 'gpu copy engine (uacce)',
  sample({ proc, alloc, bytes, index }) {
    const len = 3 * PAGE_SIZE + 100 * index + 1;
    const src = alloc(len);
    const dst = alloc(len);
    const data = bytes(len);
    proc.write(src, data);
    return {
      req: { op: 'copy', alg: 'gpu_copy', src, srcLen: len, dst, dstLen: len },
      verify: (c, p) => {
        if (c.status !== 0) return `status ${c.status}`;
        if (c.produced !== len) return `produced ${c.produced}, expected ${len}`;
        return firstDifference(p.read(dst, len), data) ?? undefined;
      },
    };
  },
});

const violations: string[] = [];

function boot(seed = 1): Kernel {
  return createKernel({ memory: { nodes: [{ size: '256MiB' }] }, seed, plugins: [gpuPlugin] });
}

function step(k: Kernel, label: string): void {
  const v = k.checkInvariants();
  if (v.length) violations.push(`${label}: ${v.slice(0, 3).join('; ')}`);
  expect(v).toEqual([]);
}

/** bytes - deterministic data for request @i. */
function bytes(len: number, i: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = 0x9e3779b9 ^ (i * 0x85ebca6b);
  for (let j = 0; j < len; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[j] = x & 255;
  }
  return b;
}

/** One batch of requests on a context: write, read back, migrate both ways, atomics. Returns the latencies. */
function serveOn(k: Kernel, p: Process, g: GpuClient, label: string): number[] {
  const lat: number[] = [];
  const len = 3 * PAGE_SIZE + 100;
  const buf = p.mmap(4 * PAGE_SIZE);
  for (let i = 0; i < 4; i++) {
    const data = bytes(len, i);
    g.write(buf, data);
    lat.push(g.last.ns);
    expect(Buffer.compare(p.read(buf, len), data)).toBe(0);
    expect(Buffer.compare(g.read(buf, len), data)).toBe(0);
    lat.push(g.last.ns);
    step(k, `${label}: request ${i}`);
  }
  expect(g.migrateToDevice(buf, 4 * PAGE_SIZE)).toBe(4);
  lat.push(g.last.ns);
  expect(Buffer.compare(g.read(buf, len), bytes(len, 3))).toBe(0);
  expect(g.migrateToSystem(buf, 4 * PAGE_SIZE)).toBe(4);
  lat.push(g.last.ns);
  const word = buf + 4 * PAGE_SIZE - 8;
  const before = new DataView(p.read(word, 4).buffer).getUint32(0, true);
  for (let i = 0; i < 10; i++) {
    g.atomicFetchAdd(word, 1);
    lat.push(g.last.ns);
  }
  expect(new DataView(p.read(word, 4).buffer).getUint32(0, true)).toBe((before + 10) >>> 0);
  step(k, `${label}: migrations and atomics`);
  p.munmap(buf, 4 * PAGE_SIZE);
  return lat;
}

/** serve - a process opens a context in @mode, serves, closes and exits: nothing may leak. */
function serve(k: Kernel, mode: GpuAtomicMode): number[] {
  const gpu = k.plugin<GpuDevice>('gpu');
  const free0 = k.phys.nrFreePages();
  const p = k.spawn({ name: 'conformance', uid: 1000 });
  const g = openGpu(p, { mode });
  expect(gpu.stats().contexts).toBe(1);
  step(k, `serve ${mode}: open`);
  const lat = serveOn(k, p, g, `serve ${mode}`);
  g.close();
  expect(gpu.stats().contexts).toBe(0);
  p.exit();
  step(k, `serve ${mode}: exit`);
  expect(k.phys.nrFreePages()).toBe(free0);
  return lat;
}

describe('accelerator conformance: gpu (by hand)', () => {
  it('registers', () => {
    const k = boot();
    expect(gpuPlugin.kind).toBe('accelerator');
    expect(k.pluginNames()).toContain('gpu');
    const gpu = k.plugin<GpuDevice>('gpu');
    expect(gpu).toBeDefined();
    expect(gpu.misc).not.toBeNull();
    expect(gpu.devPath).toBe('/dev/svasim_gpu0');
    step(k, 'registers');
  });

  it('appears in sysfs and /dev', () => {
    const k = boot();
    expect(k.devices.vfs.lookup('/dev/svasim_gpu0')).toBeDefined();
    const names = k.devices.sysfs.readdir('/sys/class/misc');
    expect(Array.isArray(names) && names.includes('svasim_gpu0')).toBe(true);
    for (const attr of ['vram_size', 'vram_used', 'vram_chunks', 'contexts', 'atomic_modes', 'device_ns'])
      expect(k.readSysfs(`/sys/class/misc/svasim_gpu0/${attr}`).trim()).not.toBe('');
    step(k, 'sysfs');
  });

  for (const mode of GPU_ATOMIC_MODES)
    it(`serves requests in atomic mode '${mode}'`, () => {
      const k = boot();
      const lat = serve(k, mode);
      expect(lat.every((ns) => ns > 0)).toBe(true);
    });

  it('serves several processes at once', () => {
    const k = boot();
    const procs = [0, 1, 2].map((i) => k.spawn({ name: `p${i}` }));
    const ctxs = procs.map((p, i) => openGpu(p, { mode: GPU_ATOMIC_MODES[i] }));
    procs.forEach((p, i) => serveOn(k, p, ctxs[i], `process ${i}`));
    for (const p of procs) p.exit();
    expect(k.plugin<GpuDevice>('gpu').stats().contexts).toBe(0);
    step(k, 'several processes');
  });

  it('survives hot removal with contexts open', () => {
    const k = boot();
    const gpu = k.plugin<GpuDevice>('gpu');
    const busy = k.spawn({ name: 'busy' });
    const idle = k.spawn({ name: 'idle' });
    const g = openGpu(busy, { mode: 'short-term' });
    const gi = openGpu(idle, { mode: 'longterm-pin' });
    const buf = busy.mmap(8 * PAGE_SIZE);
    const data = bytes(8 * PAGE_SIZE, 42);
    busy.write(buf, data);
    expect(g.migrateToDevice(buf, 4 * PAGE_SIZE)).toBe(4);
    g.atomicFetchAdd(buf + 6 * PAGE_SIZE, 0);
    const ibuf = idle.mmap(PAGE_SIZE);
    gi.atomicFetchAdd(ibuf, 7);
    step(k, 'before the removal');
    gpu.unrealize();
    step(k, 'after the removal');
    expect(k.devices.vfs.lookup('/dev/svasim_gpu0')).toBeUndefined();
    const names = k.devices.sysfs.readdir('/sys/class/misc');
    expect(Array.isArray(names) && names.includes('svasim_gpu0')).toBe(false);
    expect(Buffer.compare(busy.read(buf, 8 * PAGE_SIZE), data)).toBe(0);
    expect(new DataView(idle.read(ibuf, 4).buffer).getUint32(0, true)).toBe(7);
    // Later requests fail at once (ENXIO), never hang; new opens find nothing.
    expect(errnoOf(() => g.read(buf, 4))).toBe(-ERRNO.ENXIO);
    expect(errnoOf(() => gi.atomicFetchAdd(ibuf, 1))).toBe(-ERRNO.ENXIO);
    expect(errnoOf(() => openGpu(busy))).toBe(-ERRNO.ENOENT);
    g.close();
    gi.close();
    busy.exit();
    idle.exit();
    step(k, 'exit after the removal');
    // Against the same machine removed unused: no page leaked.
    const control = boot();
    control.plugin<GpuDevice>('gpu').unrealize();
    expect(k.phys.nrFreePages()).toBe(control.phys.nrFreePages());
  });

  it('is deterministic for a seed', () => {
    const run = () => {
      const k = boot(7);
      const lat = GPU_ATOMIC_MODES.flatMap((m) => serve(k, m));
      return { lat, vmstat: k.vmstat(), dmesg: k.dmesg().join('\n') };
    };
    const a = run();
    const b = run();
    expect(a.lat).toEqual(b.lat);
    expect(a.vmstat).toEqual(b.vmstat);
    expect(a.dmesg).toBe(b.dmesg);
  });

  it('leaves no invariant violation', () => {
    expect(violations).toEqual([]);
  });

  it('throws SyscallError, never a plain Error, for bad requests', () => {
    const k = boot();
    const p = k.spawn();
    const g = openGpu(p);
    for (const call of [() => g.read(0, 4), () => g.atomicFetchAdd(3, 1), () => g.migrateToDevice(1, 1)]) {
      let e: unknown = null;
      try {
        call();
      } catch (err) {
        e = err;
      }
      expect(e).toBeInstanceOf(SyscallError);
    }
    step(k, 'bad requests');
  });
});
