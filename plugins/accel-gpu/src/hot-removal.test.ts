/**
 * Hot removal (unrealize) with contexts open, pages in device memory and pages held for atomics
 * in every mode: device memory comes home with its data, the holds go, the device disappears
 * from /dev and sysfs, open contexts answer ENXIO, and nothing leaks.
 */
import { describe, expect, it } from '@jest/globals';
import { ERRNO, O_RDWR, PAGE_SIZE } from '@svasim/kernel';
import type { GpuDevice } from './gpu-device';
import { openGpu } from './libgpu';
import { bootGpuKernel, errnoOf, ints } from './testing';

const MiB = 2 ** 20;

describe('hot removal', () => {
  it('brings device pages home intact, drops every hold, and leaves open contexts answering ENXIO', () => {
    const k = bootGpuKernel({ sysctl: { transparent_hugepage: 'never' } });
    const free0 = k.phys.nrFreePages();
    const gpu = k.plugin<GpuDevice>('gpu');
    const a = k.spawn({ name: 'a' });
    const b = k.spawn({ name: 'b' });
    const ga = openGpu(a, { mode: 'longterm-pin', pinInPlace: true });
    const gb = openGpu(b, { mode: 'short-term' });
    const gb2 = openGpu(b);
    const size = 80 * PAGE_SIZE;
    const bufA = a.mmap(size);
    const bufB = b.mmap(size);
    const dataA = ints(size / 4, (i) => i * 3);
    const dataB = ints(size / 4, (i) => ~i);
    a.write(bufA, dataA);
    b.write(bufB, dataB);
    // Half of each buffer in device memory, atomics held on the other half.
    expect(ga.migrateToDevice(bufA, size / 2)).toBe(40);
    expect(gb.migrateToDevice(bufB, size / 2)).toBe(40);
    for (let i = 40; i < 48; i++) {
      ga.atomicFetchAdd(bufA + i * PAGE_SIZE, 0);
      gb.atomicFetchAdd(bufB + i * PAGE_SIZE, 0);
      gb2.atomicFetchAdd(bufB + i * PAGE_SIZE + 4, 0);
    }
    expect([ga.stats().heldPages, gb.stats().heldPages]).toEqual([8, 8]);
    // Pinned in place in ZONE_MOVABLE, A's pages keep that block online.
    expect(k.offlineMemory(0, 256 * MiB, 128 * MiB)).toBe(-ERRNO.EBUSY);
    expect(gpu.vram.stats().usedPages).toBe(80);
    expect(k.checkInvariants()).toEqual([]);

    gpu.unrealize();
    expect(k.checkInvariants()).toEqual([]);
    expect(k.devices.vfs.lookup('/dev/svasim_gpu0')).toBeUndefined();
    expect(errnoOf(() => k.readSysfs('/sys/class/misc/svasim_gpu0/vram_size'))).toBe(-ERRNO.ENOENT);
    expect(gpu.vram.stats()).toMatchObject({ chunks: 0, usedPages: 0, evicted: 80 });
    for (const [p, buf] of [
      [a, bufA],
      [b, bufB],
    ] as const) {
      expect(p.pagemap(buf).devicePrivate).toBe(false);
      expect(p.pagemap(buf).present).toBe(true);
    }
    // Every hold went with the device: the block offlines now.
    expect(k.offlineMemory(0, 256 * MiB, 128 * MiB)).toBe(0);
    expect(Buffer.compare(a.read(bufA, size), dataA)).toBe(0);
    expect(Buffer.compare(b.read(bufB, size), dataB)).toBe(0);
    // Open contexts fail at once; new opens find no device; closing still works.
    expect(errnoOf(() => ga.read(bufA, 4))).toBe(-ERRNO.ENXIO);
    expect(errnoOf(() => gb.atomicFetchAdd(bufB, 1))).toBe(-ERRNO.ENXIO);
    expect(errnoOf(() => gb2.migrateToDevice(bufB, PAGE_SIZE))).toBe(-ERRNO.ENXIO);
    expect(errnoOf(() => openGpu(a))).toBe(-ERRNO.ENOENT);
    expect(errnoOf(() => a.open('/dev/svasim_gpu0', O_RDWR))).toBe(-ERRNO.ENOENT);
    ga.close();
    gb.close();
    gpu.unrealize();
    k.shutdown();
    expect(k.checkInvariants()).toEqual([]);
    a.exit();
    b.exit();
    expect(gpu.stats().contexts).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    // The offlined block is gone from the free count; nothing else is missing.
    expect(k.phys.nrFreePages()).toBe(free0 - (128 * MiB) / PAGE_SIZE);
  });

  it('a process exiting after the removal releases its context cleanly', () => {
    const k = bootGpuKernel({ memory: { nodes: [{ size: '128MiB' }] } });
    const p = k.spawn();
    const g = openGpu(p);
    const buf = p.mmap(4 * PAGE_SIZE);
    p.write(
      buf,
      ints(4, (i) => i + 1),
    );
    expect(g.migrateToDevice(buf, 4 * PAGE_SIZE)).toBe(4);
    k.shutdown();
    expect(k.checkInvariants()).toEqual([]);
    expect([...new Int32Array(p.read(buf, 16).buffer)]).toEqual([1, 2, 3, 4]);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
    expect(k.plugin<GpuDevice>('gpu').stats().contexts).toBe(0);
  });
});
