/**
 * tools/testing/selftests/mm/hmm-tests.c, device-private variants (hmm and hmm2 fixtures), run
 * against /dev/hmm_dmirror0 and /dev/hmm_dmirror1 through Process + ioctl. The coherent variants
 * and file_read/file_write are not ported (no MEMORY_DEVICE_COHERENT, no file systems). Every
 * test ends with the invariant checker clean, before and after its processes exit.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import type { Process } from '../proc/process';
import { ERRNO, SyscallError } from '../uapi/errno';
import { O_RDWR } from '../uapi/fcntl';
import {
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../uapi/mman';
import { FOLL_LONGTERM, FOLL_WRITE } from '../gup/foll-flags';
import {
  GUP_BASIC_TEST,
  GUP_FAST_BENCHMARK,
  GUP_TEST_PATH,
  PIN_FAST_BENCHMARK,
  PIN_LONGTERM_BENCHMARK,
} from './gup-test';
import {
  HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_CMD_LAYOUT,
  HMM_DMIRROR_EXCLUSIVE,
  HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_ERROR,
  HMM_DMIRROR_PROT_NONE,
  HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE,
  HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_READ,
  HMM_DMIRROR_RELEASE,
  HMM_DMIRROR_SNAPSHOT,
  HMM_DMIRROR_WRITE,
  registerTestHmm,
  testHmmStats,
  unregisterTestHmm,
} from './test-hmm';
import { _IOWR } from '../uapi/ioctl';

const TWOMEG = 1 << 21;
const HMM_BUFFER_SIZE = 1024 << 12;
const NTIMES = 10;

const booted: Kernel[] = [];

function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 4 } }, ...opts });
  expect(registerTestHmm(k, { devices: 2 })).toBe(0);
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

/** struct hmm_buffer: the range the device works on and the user buffer it copies to/from. */
interface HmmBuffer {
  ptr: number;
  mirror: number;
  size: number;
  cpages: number;
  faults: number;
}

function hmmBuffer(
  p: Process,
  size: number,
  prot = PROT_READ | PROT_WRITE,
  flags = MAP_PRIVATE | MAP_ANONYMOUS,
): HmmBuffer {
  return { ptr: p.mmap(size, { prot, flags }), mirror: p.mmap(size), size, cpages: 0, faults: 0 };
}

/** hmm_dmirror_cmd: 0 or -errno; cpages and faults land in the buffer. */
function hmmDmirrorCmd(p: Process, fd: number, request: number, b: HmmBuffer, npages: number): number {
  const cmd = { addr: b.ptr, ptr: b.mirror, npages, cpages: 0, faults: 0 };
  try {
    p.ioctl(fd, request, cmd);
  } catch (e) {
    if (e instanceof SyscallError) return e.errno;
    throw e;
  }
  b.cpages = cmd.cpages;
  b.faults = cmd.faults;
  return 0;
}

function hmmOpen(p: Process, unit: number): number {
  return p.open(`/dev/hmm_dmirror${unit}`, O_RDWR);
}

/** `count` little-endian int32 values f(i), as the C tests' int arrays. */
function ints(count: number, f: (i: number) => number): Uint8Array {
  const a = new Int32Array(count);
  for (let i = 0; i < count; i++) a[i] = f(i);
  return new Uint8Array(a.buffer);
}

function readInts(p: Process, addr: number, bytes: number): Int32Array {
  const b = p.read(addr, bytes);
  return new Int32Array(b.buffer, b.byteOffset, bytes / 4);
}

function expectInts(p: Process, addr: number, bytes: number, f: (i: number) => number): void {
  expect(Buffer.compare(p.read(addr, bytes), ints(bytes / 4, f))).toBe(0);
}

/** ptr[i]++ for every int, checking the old value (the exclusive tests' CPU pass). */
function incrementInts(p: Process, addr: number, bytes: number, f: (i: number) => number): void {
  const a = readInts(p, addr, bytes);
  for (let i = 0; i < a.length; i++) if (a[i] !== f(i)) throw new Error(`ptr[${i}] = ${a[i]}, want ${f(i)}`);
  p.write(
    addr,
    ints(a.length, (i) => f(i) + 1),
  );
}

function errnoOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError) return e.errno;
    throw e;
  }
  return 0;
}

describe('hmm fixture (device private)', () => {
  it('open_close: the devices open and close; there is no third one', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    expect(fd).toBeGreaterThanOrEqual(0);
    p.close(fd);
    p.close(hmmOpen(p, 1));
    expect(errnoOf(() => hmmOpen(p, 2))).toBe(-ERRNO.ENOENT);
    // Root only, as the kernel's cdev node.
    const user = k.spawn({ uid: 1000 });
    expect(errnoOf(() => hmmOpen(user, 0))).toBe(-ERRNO.EACCES);
  });

  it('anon_read: the device reads pte_none, zero-page and data pages in one fault pass', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const size = HMM_BUFFER_SIZE;
    const b = hmmBuffer(p, size);
    // Without THP: a first write would map the whole 2 MiB, leaving neither pte_none nor the zero page.
    p.madvise(b.ptr, size, MADV_NOHUGEPAGE);
    // Leave the first two pages zero (pte_none and the zero page).
    const skip = (2 * PAGE_SIZE) / 4;
    p.write(
      b.ptr + 2 * PAGE_SIZE,
      ints(size / 4 - skip, (i) => i + skip),
    );
    p.mprotect(b.ptr, size, PROT_READ);
    expect(readInts(p, b.ptr + PAGE_SIZE, 4)[0]).toBe(0);
    expect(p.pagemap(b.ptr + PAGE_SIZE).zeroPage).toBe(true);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(b.faults).toBe(1);
    expectInts(p, b.mirror, size, (i) => (i < skip ? 0 : i));
  });

  it('anon_read_prot: PROT_NONE memory fails with EFAULT and the mirror is untouched', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const size = HMM_BUFFER_SIZE;
    const b = hmmBuffer(p, size);
    p.write(
      b.ptr,
      ints(size / 4, (i) => i),
    );
    p.write(
      b.mirror,
      ints(size / 4, (i) => -i),
    );
    p.mprotect(b.ptr, size, PROT_NONE);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, npages)).toBe(-ERRNO.EFAULT);
    p.mprotect(b.ptr, size, PROT_READ);
    expectInts(p, b.ptr, size, (i) => i);
    expectInts(p, b.mirror, size, (i) => -i);
  });

  it('anon_write: what the device writes the CPU sees', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.mirror,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_WRITE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(b.faults).toBe(1);
    expectInts(p, b.ptr, b.size, (i) => i);
  });

  it('anon_write_prot: read-only memory reads as the zero page, refuses a write with EPERM, takes one after mprotect', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE, PROT_READ);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, 1)).toBe(0);
    expect(b.cpages).toBe(1);
    expect(b.faults).toBe(1);
    p.write(
      b.mirror,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_WRITE, b, npages)).toBe(-ERRNO.EPERM);
    expectInts(p, b.ptr, b.size, () => 0);
    p.mprotect(b.ptr, b.size, PROT_READ | PROT_WRITE);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_WRITE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(b.faults).toBe(1);
    expectInts(p, b.ptr, b.size, (i) => i);
  });

  it('anon_write_child: a device write in the child goes through COW; the parent keeps its data', () => {
    const k = boot();
    const p = k.spawn();
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    p.write(
      b.mirror,
      ints(b.size / 4, (i) => -i),
    );
    const child = p.fork();
    expectInts(child, b.ptr, b.size, (i) => i);
    expectInts(child, b.mirror, b.size, (i) => -i);
    const childFd = hmmOpen(child, 0);
    expect(hmmDmirrorCmd(child, childFd, HMM_DMIRROR_WRITE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(b.faults).toBe(1);
    expectInts(child, b.ptr, b.size, (i) => -i);
    child.close(childFd);
    child.exit();
    expectInts(p, b.ptr, b.size, (i) => i);
  });

  it('anon_write_child_shared: with MAP_SHARED the parent sees what the device wrote in the child', () => {
    const k = boot();
    const p = k.spawn();
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    p.write(
      b.mirror,
      ints(b.size / 4, (i) => -i),
    );
    const child = p.fork();
    expectInts(child, b.ptr, b.size, (i) => i);
    const childFd = hmmOpen(child, 0);
    expect(hmmDmirrorCmd(child, childFd, HMM_DMIRROR_WRITE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(b.faults).toBe(1);
    expectInts(child, b.ptr, b.size, (i) => -i);
    child.exit();
    expectInts(p, b.ptr, b.size, (i) => -i);
  });

  it('anon_write_huge: the device writes a transparent huge page, mapped by one PMD', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const b = hmmBuffer(p, 2 * TWOMEG);
    const map = Math.ceil(b.ptr / TWOMEG) * TWOMEG;
    p.madvise(map, TWOMEG, MADV_HUGEPAGE);
    const huge: HmmBuffer = { ...b, ptr: map, size: TWOMEG };
    const npages = TWOMEG / PAGE_SIZE;
    p.write(
      huge.mirror,
      ints(TWOMEG / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_WRITE, huge, npages)).toBe(0);
    expect(huge.cpages).toBe(npages);
    expect(huge.faults).toBe(1);
    expect(p.pagemap(map).huge).toBe('2MiB');
    expectInts(p, map, TWOMEG, (i) => i);
    // The snapshot reports the PMD mapping.
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_SNAPSHOT, huge, npages)).toBe(0);
    expect([...new Set(p.read(huge.mirror, npages))]).toEqual([
      HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD,
    ]);
  });

  it('anon_write_hugetlbfs: the device writes a 2 MiB hugetlb page', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = TWOMEG / PAGE_SIZE;
    const b: HmmBuffer = {
      ptr: p.mmap(TWOMEG, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB }),
      mirror: p.mmap(TWOMEG),
      size: TWOMEG,
      cpages: 0,
      faults: 0,
    };
    p.write(
      b.mirror,
      ints(TWOMEG / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_WRITE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(b.faults).toBe(1);
    expectInts(p, b.ptr, TWOMEG, (i) => i);
    p.munmap(b.ptr, TWOMEG);
  });

  it('migrate: anonymous memory moves to device memory, all of it', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    p.touch(b.mirror, b.size, { write: true });
    const rss = p.status().vmRss;
    const free = k.phys.nrFreePages();
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expectInts(p, b.mirror, b.size, (i) => i);
    // The pages are device pages now: RSS keeps them, system memory got them back.
    expect(p.pagemap(b.ptr).devicePrivate).toBe(true);
    expect(p.pagemap(b.ptr).present).toBe(false);
    expect(p.status().vmRss).toBe(rss);
    expect(k.phys.nrFreePages()).toBe(free + npages);
  });

  it('migrate_fault: CPU touches bring half the pages back; a second migrate moves them all', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expectInts(p, b.mirror, b.size, (i) => i);
    expectInts(p, b.ptr, b.size / 2, (i) => i);
    expect(p.pagemap(b.ptr).present).toBe(true);
    expect(p.pagemap(b.ptr + b.size / 2).devicePrivate).toBe(true);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expectInts(p, b.mirror, b.size, (i) => i);
    expect(p.pagemap(b.ptr).devicePrivate).toBe(true);
  });

  it('migrate_release: RELEASE evicts device memory; the CPU reads its data without faulting it back', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(testHmmStats(k)[0].chunks).toBeGreaterThan(0);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_RELEASE, b, npages)).toBe(0);
    expect(testHmmStats(k)[0].chunks).toBe(0);
    const faults = k.vmstat().pgfault;
    expect(p.pagemap(b.ptr).present).toBe(true);
    expectInts(p, b.ptr, b.size / 2, (i) => i);
    expect(k.vmstat().pgfault).toBe(faults);
    // The device allocates a fresh chunk for the next migration.
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
  });

  it('migrate_shared: shared anonymous memory does not move (ENOENT)', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(-ERRNO.ENOENT);
    // Not even populated shared pages move: only anonymous memory goes to device memory.
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(-ERRNO.ENOENT);
    expect(p.pagemap(b.ptr).present).toBe(true);
    expectInts(p, b.ptr, b.size, (i) => i);
  });

  it('migrate_multiple: ten round trips to the device and back through CPU faults', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    for (let c = 0; c < NTIMES; c++) {
      const b = hmmBuffer(p, HMM_BUFFER_SIZE);
      p.write(
        b.ptr,
        ints(b.size / 4, (i) => i),
      );
      expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
      expect(b.cpages).toBe(npages);
      expectInts(p, b.mirror, b.size, (i) => i);
      expectInts(p, b.ptr, b.size, (i) => i);
      p.munmap(b.ptr, b.size);
      p.munmap(b.mirror, b.size);
    }
    // Every device page went back to the free list.
    const s = testHmmStats(k)[0];
    expect(s.calloc - s.cfree).toBe(0);
  });

  it('anon_read_multiple: ten device reads', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    for (let c = 0; c < NTIMES; c++) {
      const b = hmmBuffer(p, HMM_BUFFER_SIZE);
      p.write(
        b.ptr,
        ints(b.size / 4, (i) => i + c),
      );
      expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, npages)).toBe(0);
      expect(b.cpages).toBe(npages);
      expect(b.faults).toBe(1);
      expectInts(p, b.mirror, b.size, (i) => i + c);
      p.munmap(b.ptr, b.size);
      p.munmap(b.mirror, b.size);
    }
  });

  it('anon_teardown: reads against a munmap of half the buffer finish cleanly either way', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    for (let c = 0; c < NTIMES; c++) {
      const b = hmmBuffer(p, HMM_BUFFER_SIZE);
      p.write(
        b.ptr,
        ints(b.size / 4, (i) => i + c),
      );
      // The unmap lands before (odd rounds) or after (even rounds) the device read.
      if (c % 2) p.munmap(b.ptr + b.size / 2, b.size / 2);
      const rc = hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, npages);
      if (c % 2) expect(rc).toBe(-ERRNO.EFAULT);
      else {
        expect(rc).toBe(0);
        expect(b.cpages).toBe(npages);
        expect(b.faults).toBe(1);
        expectInts(p, b.mirror, b.size, (i) => i + c);
        p.munmap(b.ptr + b.size / 2, b.size / 2);
      }
      expect(k.checkInvariants()).toEqual([]);
      p.munmap(b.ptr, b.size / 2);
      p.munmap(b.mirror, b.size);
    }
  });

  it('mixedmap: a snapshot of the driver-file mapping reports READ', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const ptr = p.mmap(PAGE_SIZE, { prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE, fd });
    const b: HmmBuffer = { ptr, mirror: p.mmap(PAGE_SIZE), size: PAGE_SIZE, cpages: 0, faults: 0 };
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_SNAPSHOT, b, 1)).toBe(0);
    expect(b.cpages).toBe(1);
    expect(p.read(b.mirror, 1)[0]).toBe(HMM_DMIRROR_PROT_READ);
  });

  it('compound: a hugetlb snapshot is WRITE|PMD, then READ|PMD after mprotect', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = TWOMEG / PAGE_SIZE;
    const b: HmmBuffer = {
      ptr: p.mmap(TWOMEG, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB }),
      mirror: p.mmap(npages),
      size: TWOMEG,
      cpages: 0,
      faults: 0,
    };
    p.write(
      b.ptr,
      ints(TWOMEG / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_SNAPSHOT, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect([...new Set(p.read(b.mirror, npages))]).toEqual([HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD]);
    p.mprotect(b.ptr, TWOMEG, PROT_READ);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_SNAPSHOT, b, npages)).toBe(0);
    expect([...new Set(p.read(b.mirror, npages))]).toEqual([HMM_DMIRROR_PROT_READ | HMM_DMIRROR_PROT_PMD]);
    p.munmap(b.ptr, TWOMEG);
  });

  it('exclusive: the device gets atomic access; CPU accesses revoke it', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_EXCLUSIVE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expectInts(p, b.mirror, b.size, (i) => i);
    // While held, the device still has its atomic mappings.
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, npages)).toBe(-ERRNO.EPERM);
    expect(p.pagemap(b.ptr).present).toBe(false);
    incrementInts(p, b.ptr, b.size, (i) => i);
    expectInts(p, b.ptr, b.size, (i) => i + 1);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, npages)).toBe(0);
  });

  it('exclusive_mprotect: a device write after mprotect(PROT_READ) fails with EPERM', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_EXCLUSIVE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expectInts(p, b.mirror, b.size, (i) => i);
    p.mprotect(b.ptr, b.size, PROT_READ);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_WRITE, b, npages)).toBe(-ERRNO.EPERM);
    expectInts(p, b.ptr, b.size, (i) => i);
  });

  it('exclusive_cow: fork after EXCLUSIVE keeps the data right in parent and child', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = HMM_BUFFER_SIZE / PAGE_SIZE;
    const b = hmmBuffer(p, HMM_BUFFER_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_EXCLUSIVE, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    const child = p.fork();
    // fork's invalidation took the device's atomic mappings away.
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, npages)).toBe(0);
    for (const proc of [p, child]) {
      incrementInts(proc, b.ptr, b.size, (i) => i);
      expectInts(proc, b.ptr, b.size, (i) => i + 1);
    }
  });

  it('hmm_gup_test: GUP, GUP-fast, PIN-fast LONGTERM and PIN_LONGTERM on device pages bring them back', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const gupFd = p.open(GUP_TEST_PATH, O_RDWR);
    const npages = 4;
    const b = hmmBuffer(p, npages * PAGE_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expectInts(p, b.mirror, b.size, (i) => i);
    const gup = (addr: number, cmd: number, flags: number) =>
      errnoOf(() =>
        p.ioctl(gupFd, cmd, { addr, size: PAGE_SIZE, nr_pages_per_call: 1, gup_flags: FOLL_WRITE | flags }),
      );
    expect(gup(b.ptr, GUP_BASIC_TEST, 0)).toBe(0);
    expect(gup(b.ptr + PAGE_SIZE, GUP_FAST_BENCHMARK, 0)).toBe(0);
    expect(gup(b.ptr + 2 * PAGE_SIZE, PIN_FAST_BENCHMARK, FOLL_LONGTERM)).toBe(0);
    expect(gup(b.ptr + 3 * PAGE_SIZE, PIN_LONGTERM_BENCHMARK, 0)).toBe(0);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_SNAPSHOT, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect([...p.read(b.mirror, npages)]).toEqual(new Array(npages).fill(HMM_DMIRROR_PROT_WRITE));
    expectInts(p, b.ptr, b.size, (i) => i);
    // No device page was ever pinned: GUP migrated each one first.
    expect(k.dmesg().filter((l) => l.includes('NOT dma-pinned'))).toEqual([]);
  });

  it('hmm_cow_in_device: a parent write after fork migrates back and makes system copies', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = 4;
    const b = hmmBuffer(p, npages * PAGE_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    const child = p.fork();
    expect(child.pagemap(b.ptr).devicePrivate).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    child.exit();
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_SNAPSHOT, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect([...p.read(b.mirror, npages)]).toEqual(new Array(npages).fill(HMM_DMIRROR_PROT_WRITE));
  });

  it('migrate to system memory explicitly (MIGRATE_TO_SYS) counts the pages moved', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const npages = 64 + 8;
    const b = hmmBuffer(p, npages * PAGE_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => 3 * i),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(p.pagemap(b.ptr + (npages - 1) * PAGE_SIZE).present).toBe(true);
    expectInts(p, b.ptr, b.size, (i) => 3 * i);
    // Nothing is left on the device: a second pass moves nothing.
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages)).toBe(0);
    expect(b.cpages).toBe(0);
  });
});

describe('hmm2 fixture (two device-private devices)', () => {
  it('migrate_mixed: PROT_NONE and holes refuse with EINVAL; zero, RO and RW pages move; another device page ENOENT', () => {
    const k = boot();
    const p = k.spawn();
    const fd0 = hmmOpen(p, 0);
    const fd1 = hmmOpen(p, 1);
    const npages = 6;
    const b = hmmBuffer(p, npages * PAGE_SIZE, PROT_NONE);
    const base = b.ptr;
    expect(hmmDmirrorCmd(p, fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(-ERRNO.EINVAL);
    p.munmap(base + PAGE_SIZE, PAGE_SIZE);
    expect(hmmDmirrorCmd(p, fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, 3)).toBe(-ERRNO.EINVAL);
    // Page 2: the read-only zero page.
    p.mprotect(base + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    const val = readInts(p, base + 2 * PAGE_SIZE, 4)[0] + 3;
    expect(val).toBe(3);
    // Page 3: read-only data.
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 3 * PAGE_SIZE,
      ints(1, () => val),
    );
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    // Pages 4-5: read-write data.
    p.mprotect(base + 4 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 4 * PAGE_SIZE,
      ints(1, () => val),
    );
    p.write(
      base + 5 * PAGE_SIZE,
      ints(1, () => val),
    );
    b.ptr = base + 2 * PAGE_SIZE;
    expect(hmmDmirrorCmd(p, fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, 4)).toBe(0);
    expect(b.cpages).toBe(4);
    b.ptr = base + 5 * PAGE_SIZE;
    expect(hmmDmirrorCmd(p, fd0, HMM_DMIRROR_MIGRATE_TO_DEV, b, 1)).toBe(-ERRNO.ENOENT);
    // The CPU still reads what it wrote.
    expect(readInts(p, base + 3 * PAGE_SIZE, 4)[0]).toBe(3);
    expect(readInts(p, base + 5 * PAGE_SIZE, 4)[0]).toBe(3);
  });

  it('snapshot: ERROR, ERROR, ZERO|READ, READ, WRITE, DEV_PRIVATE_LOCAL|WRITE, NONE', () => {
    const k = boot();
    const p = k.spawn();
    const fd0 = hmmOpen(p, 0);
    const fd1 = hmmOpen(p, 1);
    const npages = 7;
    const b = hmmBuffer(p, npages * PAGE_SIZE, PROT_NONE);
    const base = b.ptr;
    p.munmap(base + PAGE_SIZE, PAGE_SIZE);
    p.mprotect(base + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    const val = readInts(p, base + 2 * PAGE_SIZE, 4)[0] + 3;
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 3 * PAGE_SIZE,
      ints(1, () => val),
    );
    p.mprotect(base + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    p.mprotect(base + 4 * PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(
      base + 4 * PAGE_SIZE,
      ints(1, () => val),
    );
    b.ptr = base + 5 * PAGE_SIZE;
    expect(hmmDmirrorCmd(p, fd0, HMM_DMIRROR_MIGRATE_TO_DEV, b, 1)).toBe(0);
    expect(b.cpages).toBe(1);
    b.ptr = base + 6 * PAGE_SIZE;
    expect(hmmDmirrorCmd(p, fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, 1)).toBe(0);
    expect(b.cpages).toBe(1);
    b.ptr = base;
    expect(hmmDmirrorCmd(p, fd0, HMM_DMIRROR_SNAPSHOT, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect([...p.read(b.mirror, npages)]).toEqual([
      HMM_DMIRROR_PROT_ERROR,
      HMM_DMIRROR_PROT_ERROR,
      HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ,
      HMM_DMIRROR_PROT_READ,
      HMM_DMIRROR_PROT_WRITE,
      HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE,
      HMM_DMIRROR_PROT_NONE,
    ]);
    // The snapshot faulted nothing: page 6 is still on device 1.
    expect(p.pagemap(base + 6 * PAGE_SIZE).devicePrivate).toBe(true);
  });

  it('double_map: both devices read; after a migration to device 1, device 0 still reads the data', () => {
    const k = boot();
    const p = k.spawn();
    const fd0 = hmmOpen(p, 0);
    const fd1 = hmmOpen(p, 1);
    const npages = 6;
    const b = hmmBuffer(p, npages * PAGE_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    p.mprotect(b.ptr, b.size, PROT_READ);
    for (const fd of [fd0, fd1]) {
      expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, npages)).toBe(0);
      expect(b.cpages).toBe(npages);
      expect(b.faults).toBe(1);
      expectInts(p, b.mirror, b.size, (i) => i);
    }
    expect(hmmDmirrorCmd(p, fd1, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    p.write(b.mirror, new Uint8Array(b.size));
    expect(hmmDmirrorCmd(p, fd0, HMM_DMIRROR_READ, b, npages)).toBe(0);
    expect(b.cpages).toBe(npages);
    expect(b.faults).toBe(1);
    expectInts(p, b.mirror, b.size, (i) => i);
    // Device 0's read brought the pages back from device 1.
    expect(p.pagemap(b.ptr).present).toBe(true);
  });
});

describe('the dmirror ioctl rejects bad commands', () => {
  it('answers EINVAL for an unaligned address, zero pages, a wrapping range and an unknown command', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const b = hmmBuffer(p, 4 * PAGE_SIZE);
    const cmd = (c: number, o: Partial<Record<'addr' | 'ptr' | 'npages', number>>) =>
      errnoOf(() => p.ioctl(fd, c, { addr: b.ptr, ptr: b.mirror, npages: 1, cpages: 0, faults: 0, ...o }));
    expect(cmd(HMM_DMIRROR_READ, { addr: b.ptr + 1 })).toBe(-ERRNO.EINVAL);
    expect(cmd(HMM_DMIRROR_READ, { npages: 0 })).toBe(-ERRNO.EINVAL);
    expect(cmd(HMM_DMIRROR_READ, { npages: 2 ** 52 })).toBe(-ERRNO.EINVAL);
    expect(cmd(_IOWR('H', 0x08, HMM_DMIRROR_CMD_LAYOUT.size), {})).toBe(-ERRNO.EINVAL);
    expect(cmd(HMM_DMIRROR_CHECK_EXCLUSIVE, {})).toBe(0);
  });

  it('answers EFAULT for an unreadable argument or an unwritable data buffer, ENOMEM for a huge bounce buffer', () => {
    const k = boot();
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const b = hmmBuffer(p, 4 * PAGE_SIZE);
    expect(errnoOf(() => p.ioctl(fd, HMM_DMIRROR_READ, 0x1000))).toBe(-ERRNO.EFAULT);
    const bad: HmmBuffer = { ...b, mirror: 0x1000 };
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, bad, 4)).toBe(-ERRNO.EFAULT);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_WRITE, bad, 4)).toBe(-ERRNO.EFAULT);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_SNAPSHOT, bad, 4)).toBe(-ERRNO.EFAULT);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, 2 ** 20)).toBe(-ERRNO.ENOMEM);
    // Pages past the mapping: the device cannot fault them in.
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_READ, b, 8)).toBe(-ERRNO.EFAULT);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_EXCLUSIVE, b, 8)).toBe(-ERRNO.EFAULT);
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, 8)).toBe(-ERRNO.EINVAL);
  });

  it('registerTestHmm refuses bad options and is idempotent; unregister evicts device memory', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
    booted.push(k);
    expect(registerTestHmm(k, { devices: 0 })).toBe(-ERRNO.EINVAL);
    expect(registerTestHmm(k, { devices: 5 })).toBe(-ERRNO.EINVAL);
    expect(registerTestHmm(k, { chunkPages: 0 })).toBe(-ERRNO.EINVAL);
    expect(registerTestHmm(k, { devices: 1, chunkPages: 16 })).toBe(0);
    expect(registerTestHmm(k)).toBe(0);
    expect(testHmmStats(k)).toHaveLength(1);
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const b = hmmBuffer(p, 40 * PAGE_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i ^ 0x55),
    );
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 40)).toBe(0);
    expect(testHmmStats(k)[0].chunks).toBe(3);
    unregisterTestHmm(k);
    expect(testHmmStats(k)).toEqual([]);
    expect(errnoOf(() => hmmOpen(p, 0))).toBe(-ERRNO.ENOENT);
    expect(p.pagemap(b.ptr).present).toBe(true);
    expectInts(p, b.ptr, b.size, (i) => i ^ 0x55);
  });

  it('fails a migration cleanly when the ZONE_DEVICE pfn space is used up', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }], zoneDevice: 32 * PAGE_SIZE } });
    booted.push(k);
    expect(registerTestHmm(k, { devices: 1, chunkPages: 16 })).toBe(0);
    const p = k.spawn();
    const fd = hmmOpen(p, 0);
    const b = hmmBuffer(p, 48 * PAGE_SIZE);
    p.write(
      b.ptr,
      ints(b.size / 4, (i) => i),
    );
    // 32 device pages exist: the rest stays in system memory, so the read-back misses pages.
    expect(hmmDmirrorCmd(p, fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 48)).toBe(-ERRNO.ENOENT);
    expect(p.pagemap(b.ptr).devicePrivate).toBe(true);
    expect(p.pagemap(b.ptr + 47 * PAGE_SIZE).present).toBe(true);
    expectInts(p, b.ptr, b.size, (i) => i);
  });
});
