/**
 * tools/testing/selftests/mm/hmm-tests.c, the cases that apply to a GPU, ported from
 * /dev/hmm_dmirror<N> to /dev/svasim_gpu<N> through the GpuClient library (and, for the struct
 * path, raw ioctls with user pointers). The selftests' EXCLUSIVE/CHECK_EXCLUSIVE pair becomes
 * GPU atomics and the MIRROR query. Differences from the C tests: `faults` counts
 * hmm_range_fault batches of 64 pages (a 256-page buffer takes 4), and any user may open the
 * device (mode 0666). Every test ends with the invariant checker clean, before and after its
 * processes exit.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  ERRNO,
  FOLL_LONGTERM,
  FOLL_WRITE,
  GUP_BASIC_TEST,
  GUP_FAST_BENCHMARK,
  GUP_TEST_PATH,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_SHARED,
  O_RDWR,
  PAGE_SIZE,
  PIN_FAST_BENCHMARK,
  PIN_LONGTERM_BENCHMARK,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  type Kernel,
  type KernelOptions,
  type Process,
} from '@svasim/kernel';
import type { GpuAtomicMode } from './atomic-holds';
import type { GpuDevice } from './gpu-device';
import { openGpu, type GpuClient } from './libgpu';
import { bootGpuKernel, errnoOf, ints } from './testing';
import {
  GPU_ATOMIC_FETCH_ADD,
  GPU_ATOMIC_LAYOUT,
  GPU_CMD_LAYOUT,
  GPU_MIRROR_ATOMIC,
  GPU_MIRROR_VRAM,
  SVASIM_GPU_IOC_ATOMIC,
  SVASIM_GPU_IOC_READ,
  SVASIM_GPU_IOC_WRITE,
} from './uapi';

const TWOMEG = 1 << 21;
const HMM_BUFFER_SIZE = 1024 << 12;
const NPAGES = HMM_BUFFER_SIZE / PAGE_SIZE;
const NTIMES = 10;
const MODES: GpuAtomicMode[] = ['notifier-only', 'short-term', 'longterm-pin'];

const booted: Kernel[] = [];

function boot(opts: KernelOptions = {}, two = false): Kernel {
  const k = bootGpuKernel({ memory: { nodes: [{ size: '256MiB' }] }, ...opts }, two);
  booted.push(k);
  return k;
}

afterEach(() => {
  for (const k of booted.splice(0)) {
    expect(k.checkInvariants()).toEqual([]);
    for (const p of k.processList()) p.exit();
    expect(k.checkInvariants()).toEqual([]);
  }
});

function open1(p: Process, unit = 0): GpuClient {
  return openGpu(p, { device: `/dev/svasim_gpu${unit}` });
}

function buffer(
  p: Process,
  size: number,
  prot = PROT_READ | PROT_WRITE,
  flags = 0x02 | MAP_ANONYMOUS,
): number {
  return p.mmap(size, { prot, flags });
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** ptr[i]++ for every int, checking the old value (the exclusive tests' CPU pass). */
function incrementInts(p: Process, addr: number, bytes: number, f: (i: number) => number): void {
  const b = p.read(addr, bytes);
  const a = new Int32Array(b.buffer, b.byteOffset, bytes / 4);
  for (let i = 0; i < a.length; i++) if (a[i] !== f(i)) throw new Error(`ptr[${i}] = ${a[i]}, want ${f(i)}`);
  p.write(
    addr,
    ints(a.length, (i) => f(i) + 1),
  );
}

/** The GPU takes atomic access to every page of [addr, addr + npages) (a fetch-add of 0 on its first word). */
function exclusive(g: GpuClient, addr: number, npages: number): void {
  for (let i = 0; i < npages; i++) g.atomicFetchAdd(addr + i * PAGE_SIZE, 0);
}

function atomicPages(g: GpuClient, addr: number, npages: number): number {
  return g.mirror(addr, npages).filter((b) => b & GPU_MIRROR_ATOMIC).length;
}

describe('hmm-tests, one GPU', () => {
  it('open_close: the device opens and closes for any user; there is no second one', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.open('/dev/svasim_gpu0', O_RDWR);
    p.close(fd);
    expect(errnoOf(() => p.open('/dev/svasim_gpu1', O_RDWR))).toBe(-ERRNO.ENOENT);
    const user = k.spawn({ uid: 1000 });
    open1(user).close();
    expect(k.plugin<GpuDevice>('gpu').stats().contexts).toBe(0);
  });

  it('anon_read: the GPU reads pte_none, zero-page and data pages; a second read takes no fault', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    p.madvise(ptr, HMM_BUFFER_SIZE, MADV_NOHUGEPAGE);
    const skip = (2 * PAGE_SIZE) / 4;
    p.write(
      ptr + 2 * PAGE_SIZE,
      ints(HMM_BUFFER_SIZE / 4 - skip, (i) => i + skip),
    );
    p.mprotect(ptr, HMM_BUFFER_SIZE, PROT_READ);
    expect(p.read(ptr + PAGE_SIZE, 4)[0]).toBe(0);
    expect(p.pagemap(ptr + PAGE_SIZE).zeroPage).toBe(true);
    const got = g.read(ptr, HMM_BUFFER_SIZE);
    expect(g.last.faults).toBe(NPAGES / 64);
    expect(
      same(
        got,
        ints(HMM_BUFFER_SIZE / 4, (i) => (i < skip ? 0 : i)),
      ),
    ).toBe(true);
    expect(same(g.read(ptr, HMM_BUFFER_SIZE), got)).toBe(true);
    expect(g.last.faults).toBe(0);
  });

  it('anon_read_prot: PROT_NONE memory fails with EFAULT and nothing changes', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    p.write(
      ptr,
      ints(HMM_BUFFER_SIZE / 4, (i) => i),
    );
    p.mprotect(ptr, HMM_BUFFER_SIZE, PROT_NONE);
    expect(errnoOf(() => g.read(ptr, HMM_BUFFER_SIZE))).toBe(-ERRNO.EFAULT);
    expect(errnoOf(() => g.write(ptr, new Uint8Array(8)))).toBe(-ERRNO.EFAULT);
    expect(errnoOf(() => g.atomicFetchAdd(ptr, 1))).toBe(-ERRNO.EFAULT);
    p.mprotect(ptr, HMM_BUFFER_SIZE, PROT_READ);
    expect(
      same(
        p.read(ptr, HMM_BUFFER_SIZE),
        ints(HMM_BUFFER_SIZE / 4, (i) => i),
      ),
    ).toBe(true);
  });

  it('anon_write: what the GPU writes the CPU sees', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    const data = ints(HMM_BUFFER_SIZE / 4, (i) => i);
    g.write(ptr, data);
    expect(g.last.faults).toBe(NPAGES / 64);
    expect(same(p.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
  });

  it('anon_write_prot: read-only memory reads as zeros, refuses a GPU write with EPERM, takes one after mprotect', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE, PROT_READ);
    expect([...g.read(ptr, 4)]).toEqual([0, 0, 0, 0]);
    expect(g.last.faults).toBe(1);
    const data = ints(HMM_BUFFER_SIZE / 4, (i) => i);
    expect(errnoOf(() => g.write(ptr, data))).toBe(-ERRNO.EPERM);
    expect(errnoOf(() => g.atomicFetchAdd(ptr, 1))).toBe(-ERRNO.EPERM);
    expect(p.read(ptr, HMM_BUFFER_SIZE).every((b) => b === 0)).toBe(true);
    p.mprotect(ptr, HMM_BUFFER_SIZE, PROT_READ | PROT_WRITE);
    g.write(ptr, data);
    expect(same(p.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
  });

  it('anon_write_child: a GPU write in the child goes through COW; the parent keeps its data', () => {
    const k = boot();
    const p = k.spawn();
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    p.write(
      ptr,
      ints(HMM_BUFFER_SIZE / 4, (i) => i),
    );
    const child = p.fork();
    const g = open1(child);
    g.write(
      ptr,
      ints(HMM_BUFFER_SIZE / 4, (i) => -i),
    );
    expect(
      same(
        child.read(ptr, HMM_BUFFER_SIZE),
        ints(HMM_BUFFER_SIZE / 4, (i) => -i),
      ),
    ).toBe(true);
    g.close();
    child.exit();
    expect(
      same(
        p.read(ptr, HMM_BUFFER_SIZE),
        ints(HMM_BUFFER_SIZE / 4, (i) => i),
      ),
    ).toBe(true);
  });

  it('anon_write_child_shared: with MAP_SHARED the parent sees what the GPU wrote in the child', () => {
    const k = boot();
    const p = k.spawn();
    const ptr = buffer(p, HMM_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    p.write(
      ptr,
      ints(HMM_BUFFER_SIZE / 4, (i) => i),
    );
    const child = p.fork();
    const g = open1(child);
    g.write(
      ptr,
      ints(HMM_BUFFER_SIZE / 4, (i) => -i),
    );
    child.exit();
    expect(
      same(
        p.read(ptr, HMM_BUFFER_SIZE),
        ints(HMM_BUFFER_SIZE / 4, (i) => -i),
      ),
    ).toBe(true);
  });

  it('anon_write_huge: the GPU writes a transparent huge page, mapped by one PMD', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const b = buffer(p, 2 * TWOMEG);
    const map = Math.ceil(b / TWOMEG) * TWOMEG;
    p.madvise(map, TWOMEG, MADV_HUGEPAGE);
    const data = ints(TWOMEG / 4, (i) => i);
    g.write(map, data);
    expect(p.pagemap(map).huge).toBe('2MiB');
    expect(same(p.read(map, TWOMEG), data)).toBe(true);
    expect([...new Set(g.snapshot(map, TWOMEG / PAGE_SIZE))]).toEqual([
      HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD,
    ]);
  });

  it('anon_write_hugetlbfs: the GPU writes a 2 MiB hugetlb page; atomics there refuse with EOPNOTSUPP', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 2 } } });
    const p = k.spawn();
    const g = open1(p);
    const ptr = p.mmap(TWOMEG, { flags: 0x02 | MAP_ANONYMOUS | MAP_HUGETLB });
    const data = ints(TWOMEG / 4, (i) => i);
    g.write(ptr, data);
    expect(same(p.read(ptr, TWOMEG), data)).toBe(true);
    expect(errnoOf(() => g.atomicFetchAdd(ptr, 1))).toBe(-ERRNO.EOPNOTSUPP);
    p.munmap(ptr, TWOMEG);
  });

  it('compound: a hugetlb snapshot is WRITE|PMD, then READ|PMD after mprotect', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 2 } } });
    const p = k.spawn();
    const g = open1(p);
    const npages = TWOMEG / PAGE_SIZE;
    const ptr = p.mmap(TWOMEG, { flags: 0x02 | MAP_ANONYMOUS | MAP_HUGETLB });
    p.write(
      ptr,
      ints(TWOMEG / 4, (i) => i),
    );
    expect([...new Set(g.snapshot(ptr, npages))]).toEqual([HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD]);
    p.mprotect(ptr, TWOMEG, PROT_READ);
    expect([...new Set(g.snapshot(ptr, npages))]).toEqual([HMM_DMIRROR_PROT_READ | HMM_DMIRROR_PROT_PMD]);
    p.munmap(ptr, TWOMEG);
  });

  it('migrate: anonymous memory moves to device memory, all of it; the GPU then reads it locally', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    const data = ints(HMM_BUFFER_SIZE / 4, (i) => i);
    p.write(ptr, data);
    const rss = p.status().vmRss;
    const free = k.phys.nrFreePages();
    expect(g.migrateToDevice(ptr, HMM_BUFFER_SIZE)).toBe(NPAGES);
    expect(p.pagemap(ptr).devicePrivate).toBe(true);
    expect(p.status().vmRss).toBe(rss);
    expect(k.phys.nrFreePages()).toBe(free + NPAGES);
    expect(g.mirror(ptr, NPAGES).every((b) => b & GPU_MIRROR_VRAM)).toBe(true);
    expect(same(g.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
    expect(g.last.faults).toBe(0);
    expect(k.readSysfs('/sys/class/misc/svasim_gpu0/vram_used').trim()).toBe(String(HMM_BUFFER_SIZE));
  });

  it('migrate_fault: CPU touches bring half the pages back; a second migrate moves them all', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    const data = ints(HMM_BUFFER_SIZE / 4, (i) => i);
    p.write(ptr, data);
    expect(g.migrateToDevice(ptr, HMM_BUFFER_SIZE)).toBe(NPAGES);
    expect(same(p.read(ptr, HMM_BUFFER_SIZE / 2), data.subarray(0, HMM_BUFFER_SIZE / 2))).toBe(true);
    expect(p.pagemap(ptr).present).toBe(true);
    expect(p.pagemap(ptr + HMM_BUFFER_SIZE / 2).devicePrivate).toBe(true);
    expect(g.mirror(ptr, 1)[0] & GPU_MIRROR_VRAM).toBe(0);
    expect(g.migrateToDevice(ptr, HMM_BUFFER_SIZE)).toBe(NPAGES / 2);
    expect(p.pagemap(ptr).devicePrivate).toBe(true);
    expect(same(g.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
  });

  it('migrate_release: EVICT brings device memory home; the CPU reads its data without faulting it back', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    const data = ints(HMM_BUFFER_SIZE / 4, (i) => i);
    p.write(ptr, data);
    expect(g.migrateToDevice(ptr, HMM_BUFFER_SIZE)).toBe(NPAGES);
    expect(g.evict()).toBe(NPAGES);
    expect(k.readSysfs('/sys/class/misc/svasim_gpu0/vram_chunks').trim()).toBe('0');
    const faults = k.vmstat().pgfault;
    expect(p.pagemap(ptr).present).toBe(true);
    expect(same(p.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
    expect(k.vmstat().pgfault).toBe(faults);
    expect(g.migrateToDevice(ptr, HMM_BUFFER_SIZE)).toBe(NPAGES);
  });

  it('migrate_shared: shared anonymous memory does not move (ENOENT)', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    expect(errnoOf(() => g.migrateToDevice(ptr, HMM_BUFFER_SIZE))).toBe(-ERRNO.ENOENT);
    p.write(
      ptr,
      ints(HMM_BUFFER_SIZE / 4, (i) => i),
    );
    expect(errnoOf(() => g.migrateToDevice(ptr, HMM_BUFFER_SIZE))).toBe(-ERRNO.ENOENT);
    expect(p.pagemap(ptr).present).toBe(true);
    expect(
      same(
        p.read(ptr, HMM_BUFFER_SIZE),
        ints(HMM_BUFFER_SIZE / 4, (i) => i),
      ),
    ).toBe(true);
  });

  it('migrate_multiple: ten round trips to the device and back through CPU faults; device memory is all free again', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    for (let c = 0; c < NTIMES; c++) {
      const ptr = buffer(p, HMM_BUFFER_SIZE);
      const data = ints(HMM_BUFFER_SIZE / 4, (i) => i + c);
      p.write(ptr, data);
      expect(g.migrateToDevice(ptr, HMM_BUFFER_SIZE)).toBe(NPAGES);
      expect(same(g.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
      expect(same(p.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
      p.munmap(ptr, HMM_BUFFER_SIZE);
    }
    expect(k.plugin<GpuDevice>('gpu').vram.stats().usedPages).toBe(0);
  });

  it('anon_read_multiple: ten GPU reads', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    for (let c = 0; c < NTIMES; c++) {
      const ptr = buffer(p, HMM_BUFFER_SIZE);
      const data = ints(HMM_BUFFER_SIZE / 4, (i) => i + c);
      p.write(ptr, data);
      expect(same(g.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
      expect(g.last.faults).toBe(NPAGES / 64);
      p.munmap(ptr, HMM_BUFFER_SIZE);
    }
  });

  it('anon_teardown: reads against a munmap of half the buffer finish cleanly either way', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    for (let c = 0; c < NTIMES; c++) {
      const ptr = buffer(p, HMM_BUFFER_SIZE);
      const data = ints(HMM_BUFFER_SIZE / 4, (i) => i + c);
      p.write(ptr, data);
      if (c % 2) p.munmap(ptr + HMM_BUFFER_SIZE / 2, HMM_BUFFER_SIZE / 2);
      if (c % 2) expect(errnoOf(() => g.read(ptr, HMM_BUFFER_SIZE))).toBe(-ERRNO.EFAULT);
      else {
        expect(same(g.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
        p.munmap(ptr + HMM_BUFFER_SIZE / 2, HMM_BUFFER_SIZE / 2);
      }
      expect(k.checkInvariants()).toEqual([]);
      p.munmap(ptr, HMM_BUFFER_SIZE / 2);
    }
  });

  it('exclusive: GPU atomics take exclusive access; CPU accesses revoke it, in every mode', () => {
    const k = boot();
    const p = k.spawn();
    for (const mode of MODES) {
      const g = openGpu(p, { mode });
      const npages = 16;
      const ptr = buffer(p, npages * PAGE_SIZE);
      p.write(
        ptr,
        ints((npages * PAGE_SIZE) / 4, (i) => i),
      );
      exclusive(g, ptr, npages);
      expect(atomicPages(g, ptr, npages)).toBe(npages);
      expect(p.pagemap(ptr).present).toBe(false);
      expect(k.checkInvariants()).toEqual([]);
      incrementInts(p, ptr, npages * PAGE_SIZE, (i) => i);
      expect(atomicPages(g, ptr, npages)).toBe(0);
      expect(g.stats().revocations).toBe(npages);
      expect(
        same(
          p.read(ptr, npages * PAGE_SIZE),
          ints((npages * PAGE_SIZE) / 4, (i) => i + 1),
        ),
      ).toBe(true);
      g.close();
    }
  });

  it('exclusive_mprotect: a GPU write or atomic after mprotect(PROT_READ) fails with EPERM', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    p.write(
      ptr,
      ints(HMM_BUFFER_SIZE / 4, (i) => i),
    );
    exclusive(g, ptr, NPAGES);
    p.mprotect(ptr, HMM_BUFFER_SIZE, PROT_READ);
    expect(atomicPages(g, ptr, NPAGES)).toBe(0);
    expect(errnoOf(() => g.write(ptr, new Uint8Array(HMM_BUFFER_SIZE)))).toBe(-ERRNO.EPERM);
    expect(errnoOf(() => g.atomicFetchAdd(ptr, 1))).toBe(-ERRNO.EPERM);
    expect(
      same(
        p.read(ptr, HMM_BUFFER_SIZE),
        ints(HMM_BUFFER_SIZE / 4, (i) => i),
      ),
    ).toBe(true);
  });

  it('exclusive_cow: fork after GPU atomics keeps the data right in parent and child, in every mode', () => {
    const k = boot();
    for (const mode of MODES) {
      const p = k.spawn();
      const g = openGpu(p, { mode });
      const npages = 8;
      const size = npages * PAGE_SIZE;
      const ptr = buffer(p, size);
      p.write(
        ptr,
        ints(size / 4, (i) => i),
      );
      exclusive(g, ptr, npages);
      const child = p.fork();
      // fork's invalidation took the GPU's atomic mappings away.
      expect(atomicPages(g, ptr, npages)).toBe(0);
      for (const proc of [p, child]) incrementInts(proc, ptr, size, (i) => i);
      // The GPU's next atomics work on the parent's own (copied) pages.
      for (let i = 0; i < npages; i++) expect(g.atomicFetchAdd(ptr + i * PAGE_SIZE, 10)).toBe(i * 1024 + 1);
      expect(k.checkInvariants()).toEqual([]);
      expect(
        same(
          child.read(ptr, size),
          ints(size / 4, (i) => i + 1),
        ),
      ).toBe(true);
      expect(
        same(
          p.read(ptr, size),
          ints(size / 4, (i) => i + 1 + (i % 1024 === 0 ? 10 : 0)),
        ),
      ).toBe(true);
      child.exit();
      p.exit();
    }
  });

  it('hmm_gup_test: GUP, GUP-fast and PIN(-fast) LONGTERM of device pages bring them back; data intact', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const gupFd = p.open(GUP_TEST_PATH, O_RDWR);
    const npages = 4;
    const ptr = buffer(p, npages * PAGE_SIZE);
    const data = ints((npages * PAGE_SIZE) / 4, (i) => i);
    p.write(ptr, data);
    expect(g.migrateToDevice(ptr, npages * PAGE_SIZE)).toBe(npages);
    const gup = (addr: number, cmd: number, flags: number) =>
      errnoOf(() =>
        p.ioctl(gupFd, cmd, { addr, size: PAGE_SIZE, nr_pages_per_call: 1, gup_flags: FOLL_WRITE | flags }),
      );
    expect(gup(ptr, GUP_BASIC_TEST, 0)).toBe(0);
    expect(gup(ptr + PAGE_SIZE, GUP_FAST_BENCHMARK, 0)).toBe(0);
    expect(gup(ptr + 2 * PAGE_SIZE, PIN_FAST_BENCHMARK, FOLL_LONGTERM)).toBe(0);
    expect(gup(ptr + 3 * PAGE_SIZE, PIN_LONGTERM_BENCHMARK, 0)).toBe(0);
    expect([...g.snapshot(ptr, npages)]).toEqual(new Array(npages).fill(HMM_DMIRROR_PROT_WRITE));
    expect(same(p.read(ptr, npages * PAGE_SIZE), data)).toBe(true);
    expect(same(g.read(ptr, npages * PAGE_SIZE), data)).toBe(true);
  });

  it('hmm_cow_in_device: a parent write after fork migrates back and makes system copies', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const npages = 4;
    const size = npages * PAGE_SIZE;
    const ptr = buffer(p, size);
    p.write(
      ptr,
      ints(size / 4, (i) => i),
    );
    expect(g.migrateToDevice(ptr, size)).toBe(npages);
    const child = p.fork();
    expect(child.pagemap(ptr).devicePrivate).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    p.write(
      ptr,
      ints(size / 4, (i) => i),
    );
    child.exit();
    expect([...g.snapshot(ptr, npages)]).toEqual(new Array(npages).fill(HMM_DMIRROR_PROT_WRITE));
  });

  it('a GPU write to its own page made read-only by fork brings it home and breaks COW (the hmm quirk handled)', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const size = 2 * PAGE_SIZE;
    const ptr = buffer(p, size);
    p.write(
      ptr,
      ints(size / 4, (i) => i),
    );
    expect(g.migrateToDevice(ptr, size)).toBe(2);
    const child = p.fork();
    g.write(
      ptr,
      ints(2, () => -7),
    );
    expect(g.atomicFetchAdd(ptr + PAGE_SIZE, 5)).toBe(1024);
    expect([...new Int32Array(p.read(ptr, 8).buffer)]).toEqual([-7, -7]);
    expect([...new Int32Array(child.read(ptr, 8).buffer)]).toEqual([0, 1]);
    expect(new Int32Array(child.read(ptr + PAGE_SIZE, 4).buffer)[0]).toBe(1024);
    expect(new Int32Array(p.read(ptr + PAGE_SIZE, 4).buffer)[0]).toBe(1029);
  });

  it('migrate to system memory explicitly counts the pages moved', () => {
    const k = boot();
    const p = k.spawn();
    const g = open1(p);
    const npages = 64 + 8;
    const ptr = buffer(p, npages * PAGE_SIZE);
    const data = ints((npages * PAGE_SIZE) / 4, (i) => 3 * i);
    p.write(ptr, data);
    expect(g.migrateToDevice(ptr, npages * PAGE_SIZE)).toBe(npages);
    expect(g.migrateToSystem(ptr, npages * PAGE_SIZE)).toBe(npages);
    expect(p.pagemap(ptr + (npages - 1) * PAGE_SIZE).present).toBe(true);
    expect(same(p.read(ptr, npages * PAGE_SIZE), data)).toBe(true);
    expect(g.migrateToSystem(ptr, npages * PAGE_SIZE)).toBe(0);
  });

  it('the struct path: READ/WRITE with user pointers, ATOMIC with a user struct, EFAULT for a bad pointer', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.open('/dev/svasim_gpu0', O_RDWR);
    const ptr = buffer(p, 4 * PAGE_SIZE);
    const mirror = buffer(p, 4 * PAGE_SIZE);
    const cmd = buffer(p, PAGE_SIZE);
    p.write(
      mirror,
      ints(4 * 1024, (i) => i * 5),
    );
    p.write(cmd, GPU_CMD_LAYOUT.encode({ addr: ptr, ptr: mirror, len: 4 * PAGE_SIZE }));
    expect(p.ioctl(fd, SVASIM_GPU_IOC_WRITE, cmd)).toBe(0);
    const out = GPU_CMD_LAYOUT.decode(p.read(cmd, GPU_CMD_LAYOUT.size));
    expect([out.cpages, out.faults, out.ns > 0]).toEqual([4, 1, true]);
    expect(
      same(
        p.read(ptr, 4 * PAGE_SIZE),
        ints(4 * 1024, (i) => i * 5),
      ),
    ).toBe(true);
    p.write(cmd, GPU_CMD_LAYOUT.encode({ addr: ptr, ptr: 0x10, len: 8 }));
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_READ, cmd))).toBe(-ERRNO.EFAULT);
    const operand = new Uint8Array(8);
    operand[0] = 3;
    p.write(cmd, GPU_ATOMIC_LAYOUT.encode({ addr: ptr + 8, op: GPU_ATOMIC_FETCH_ADD, width: 64, operand }));
    expect(p.ioctl(fd, SVASIM_GPU_IOC_ATOMIC, cmd)).toBe(0);
    const a = GPU_ATOMIC_LAYOUT.decode(p.read(cmd, GPU_ATOMIC_LAYOUT.size));
    // ints 2 and 3 (10 and 15) form the old 64-bit value.
    expect(new DataView(a.result.buffer, a.result.byteOffset).getBigUint64(0, true)).toBe((15n << 32n) + 10n);
    expect([...new Int32Array(p.read(ptr + 8, 8).buffer)]).toEqual([13, 15]);
    expect(errnoOf(() => p.ioctl(fd, SVASIM_GPU_IOC_ATOMIC, 0x10))).toBe(-ERRNO.EFAULT);
  });
});

describe('hmm-tests, two GPUs (hmm2)', () => {
  it('migrate_mixed: PROT_NONE and holes refuse with EINVAL; zero, RO and RW pages move; another GPU page ENOENT', () => {
    const k = boot({}, true);
    const p = k.spawn();
    const g0 = open1(p, 0);
    const g1 = open1(p, 1);
    const npages = 6;
    const base = buffer(p, npages * PAGE_SIZE, PROT_NONE);
    expect(errnoOf(() => g1.migrateToDevice(base, npages * PAGE_SIZE))).toBe(-ERRNO.EINVAL);
    p.munmap(base + PAGE_SIZE, PAGE_SIZE);
    expect(errnoOf(() => g1.migrateToDevice(base, 3 * PAGE_SIZE))).toBe(-ERRNO.EINVAL);
    p.mprotect(base + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    expect(p.read(base + 2 * PAGE_SIZE, 4)[0]).toBe(0);
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 3 * PAGE_SIZE,
      ints(1, () => 3),
    );
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    p.mprotect(base + 4 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 4 * PAGE_SIZE,
      ints(1, () => 3),
    );
    p.write(
      base + 5 * PAGE_SIZE,
      ints(1, () => 3),
    );
    expect(g1.migrateToDevice(base + 2 * PAGE_SIZE, 4 * PAGE_SIZE)).toBe(4);
    expect(errnoOf(() => g0.migrateToDevice(base + 5 * PAGE_SIZE, PAGE_SIZE))).toBe(-ERRNO.ENOENT);
    expect(p.read(base + 3 * PAGE_SIZE, 4)[0]).toBe(3);
    expect(p.read(base + 5 * PAGE_SIZE, 4)[0]).toBe(3);
  });

  it('snapshot: ERROR, ERROR, ZERO|READ, READ, WRITE, DEV_PRIVATE_LOCAL|WRITE, NONE', () => {
    const k = boot({}, true);
    const p = k.spawn();
    const g0 = open1(p, 0);
    const g1 = open1(p, 1);
    const npages = 7;
    const base = buffer(p, npages * PAGE_SIZE, PROT_NONE);
    p.munmap(base + PAGE_SIZE, PAGE_SIZE);
    p.mprotect(base + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    expect(p.read(base + 2 * PAGE_SIZE, 4)[0]).toBe(0);
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 3 * PAGE_SIZE,
      ints(1, () => 3),
    );
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    p.mprotect(base + 4 * PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 4 * PAGE_SIZE,
      ints(1, () => 3),
    );
    expect(g0.migrateToDevice(base + 5 * PAGE_SIZE, PAGE_SIZE)).toBe(1);
    expect(g1.migrateToDevice(base + 6 * PAGE_SIZE, PAGE_SIZE)).toBe(1);
    expect([...g0.snapshot(base, npages)]).toEqual([
      HMM_DMIRROR_PROT_ERROR,
      HMM_DMIRROR_PROT_ERROR,
      HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ,
      HMM_DMIRROR_PROT_READ,
      HMM_DMIRROR_PROT_WRITE,
      HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE,
      HMM_DMIRROR_PROT_NONE,
    ]);
    expect(p.pagemap(base + 6 * PAGE_SIZE).devicePrivate).toBe(true);
  });

  it('double_map: both GPUs read; after a migration to GPU 1, GPU 0 still reads the right data', () => {
    const k = boot({}, true);
    const p = k.spawn();
    const g0 = open1(p, 0);
    const g1 = open1(p, 1);
    const ptr = buffer(p, HMM_BUFFER_SIZE);
    const data = ints(HMM_BUFFER_SIZE / 4, (i) => i);
    p.write(ptr, data);
    p.mprotect(ptr, HMM_BUFFER_SIZE, PROT_READ);
    expect(same(g0.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
    expect(same(g1.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
    expect(g1.migrateToDevice(ptr, HMM_BUFFER_SIZE)).toBe(NPAGES);
    expect(same(g0.read(ptr, HMM_BUFFER_SIZE), data)).toBe(true);
    // GPU 0's read pulled the pages out of GPU 1's memory.
    expect(p.pagemap(ptr).present).toBe(true);
    expect(g1.mirror(ptr, 1)[0]).toBe(0);
  });
});
