import { describe, it, expect, afterEach } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import { ERRNO, SyscallError, type ErrnoName } from '../uapi/errno';
import { O_RDONLY, O_RDWR, POLLNVAL } from '../uapi/fcntl';
import { _IOW } from '../uapi/ioctl';
import {
  MADV_DODUMP,
  MADV_DOFORK,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_KEEPONFORK,
  MADV_NOHUGEPAGE,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_HUGE_SHIFT,
  MAP_HUGETLB,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MLOCK_ONFAULT,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from '../uapi/mman';
import type { FileOperations } from '../fs/file';
import { defineStruct, readIoctlArg } from '../fs/struct-layout';
import type { MiscDevice } from '../base/misc';
import { MMAP_MIN_ADDR } from '../mm/mm-struct';
import {
  VM_DONTCOPY,
  VM_HUGEPAGE,
  VM_LOCKED,
  VM_NOHUGEPAGE,
  VM_READ,
  VM_SHARED,
  VM_WIPEONFORK,
  VM_WRITE,
} from '../mm/vm-flags';
import { Process, type SpawnOptions } from './process';

// ---------------------------------------------------------------------------------------------
// Helpers: small machines, every process call followed by the invariant checker, exact errnos.
// ---------------------------------------------------------------------------------------------

const SMALL: KernelOptions = { memory: { nodes: [{ size: '256MiB' }] } };
const HUGE: KernelOptions = { memory: { nodes: [{ size: '1GiB' }], hugepages: { '2MiB': 4 } } };
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const SHARED = MAP_SHARED | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;
const MiB = 1 << 20;

const kernels: Kernel[] = [];

function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel({ ...SMALL, ...opts });
  kernels.push(k);
  return k;
}

afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

/**
 * A process whose every method call, successful or not, is followed by kernel.checkInvariants():
 * a violation fails the test at the call that caused it. Children from fork() are watched too.
 */
function watched(k: Kernel, p: Process): Process {
  return new Proxy(p, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        let ok = false;
        try {
          const r: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
          ok = true;
          return r instanceof Process ? watched(k, r) : r;
        } finally {
          const bad = k.checkInvariants();
          if (bad.length)
            // eslint-disable-next-line no-unsafe-finally
            throw new Error(
              `invariants broken after ${String(prop)}(${ok ? 'ok' : 'threw'}):\n${bad.join('\n')}`,
            );
        }
      };
    },
  });
}

function spawn(k: Kernel, opts?: SpawnOptions): Process {
  return watched(k, k.spawn(opts));
}

/** Boot a small machine and spawn one root process. */
function setup(opts: KernelOptions = {}, spawnOpts?: SpawnOptions): { k: Kernel; p: Process } {
  const k = boot(opts);
  return { k, p: spawn(k, spawnOpts) };
}

/** The SyscallError `fn` throws (fails the test if it returns or throws anything else). */
function errOf(fn: () => unknown): SyscallError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError) return e;
    throw e;
  }
  throw new Error('expected a SyscallError, but the call succeeded');
}

/** `fn` throws SyscallError with this errno name, the matching negative errno and syscall. */
function expectErrno(fn: () => unknown, code: ErrnoName, syscall: string): void {
  const e = errOf(fn);
  expect({ code: e.code, errno: e.errno, syscall: e.syscall }).toEqual({
    code,
    errno: -ERRNO[code],
    syscall,
  });
  expect(e).toBeInstanceOf(Error);
  expect(e.message).toContain(code);
}

/** Deterministic bytes (xorshift32, int32 arithmetic only): the same seed gives the same data. */
function randomBytes(n: number, seed: number): Uint8Array {
  let x = seed | 0 || 1;
  const out = new Uint8Array(n + 3);
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = x;
    out[i + 1] = x >> 8;
    out[i + 2] = x >> 16;
    out[i + 3] = x >> 24;
  }
  return out.subarray(0, n);
}

/** Byte-exact comparison that stays fast for megabytes (toEqual walks element by element). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.length);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.length);
  if (a.equals(b)) return;
  const i = actual.findIndex((x, j) => x !== expected[j]);
  expect(`byte ${i}: ${actual[i]}`).toBe(`byte ${i}: ${expected[i]}`);
}

const fill = (n: number, byte: number): Uint8Array => new Uint8Array(n).fill(byte);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

// ---------------------------------------------------------------------------------------------
// mmap
// ---------------------------------------------------------------------------------------------

describe('mmap', () => {
  it('defaults to a private anonymous read-write mapping, page aligned, not populated', () => {
    const { p } = setup();
    const a = p.mmap(3 * PAGE_SIZE);
    expect(a % PAGE_SIZE).toBe(0);
    expect(a).toBeGreaterThanOrEqual(MMAP_MIN_ADDR);
    expect(a + 3 * PAGE_SIZE).toBeLessThanOrEqual(TASK_SIZE);
    const vma = p.mm.vmaLookup(a)!;
    expect(vma.start).toBe(a);
    expect(vma.end).toBe(a + 3 * PAGE_SIZE);
    expect(vma.flags & (VM_READ | VM_WRITE | VM_SHARED)).toBe(VM_READ | VM_WRITE);
    expect(p.pagemap(a).present).toBe(false);
    expect(p.status()).toMatchObject({ vmRss: 0, vmLck: 0, vmPin: 0, vmSize: 3 * PAGE_SIZE });
    expect([...p.read(a, 4)]).toEqual([0, 0, 0, 0]);
    p.write(a + 5, text('abc'));
    expect(str(p.read(a + 5, 3))).toBe('abc');
    // a length that is not a multiple of the page size is rounded up
    const b = p.mmap(100);
    expect(p.mm.vmaLookup(b)!.end - b).toBe(PAGE_SIZE);
    expect(b + PAGE_SIZE <= a || b >= a + 3 * PAGE_SIZE).toBe(true);
  });

  it('rejects a zero length with EINVAL', () => {
    const { p } = setup();
    expectErrno(() => p.mmap(0), 'EINVAL', 'mmap');
    expectErrno(() => p.mmap(0, { flags: PRIV | MAP_HUGETLB }), 'EINVAL', 'mmap');
  });

  it('rejects an offset that is not page aligned with EINVAL, before looking at the fd', () => {
    const { p } = setup();
    expectErrno(() => p.mmap(PAGE_SIZE, { offset: 100 }), 'EINVAL', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_PRIVATE, fd: 77, offset: 1 }), 'EINVAL', 'mmap');
    expect(p.mmap(PAGE_SIZE, { offset: PAGE_SIZE })).toBeGreaterThan(0);
  });

  it('MAP_FIXED: unaligned address is EINVAL, beyond TASK_SIZE is ENOMEM', () => {
    const { p } = setup();
    const fixed = PRIV | MAP_FIXED;
    expectErrno(() => p.mmap(PAGE_SIZE, { addr: 0x100000 + 1, flags: fixed }), 'EINVAL', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { addr: TASK_SIZE, flags: fixed }), 'ENOMEM', 'mmap');
    expectErrno(() => p.mmap(2 * PAGE_SIZE, { addr: TASK_SIZE - PAGE_SIZE, flags: fixed }), 'ENOMEM', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { addr: 2 ** 47, flags: fixed }), 'ENOMEM', 'mmap');
    // the last page below TASK_SIZE is fine
    expect(p.mmap(PAGE_SIZE, { addr: TASK_SIZE - PAGE_SIZE, flags: fixed })).toBe(TASK_SIZE - PAGE_SIZE);
    p.write(TASK_SIZE - 1, new Uint8Array([9]));
    expect(p.read(TASK_SIZE - 1, 1)[0]).toBe(9);
    expect(p.mmap(PAGE_SIZE, { addr: 0x200000, flags: fixed })).toBe(0x200000);
  });

  it('rejects lengths beyond the address space with ENOMEM', () => {
    const { p } = setup();
    expectErrno(() => p.mmap(2 ** 47), 'ENOMEM', 'mmap');
    expectErrno(() => p.mmap(TASK_SIZE + 1), 'ENOMEM', 'mmap');
    expectErrno(() => p.mmap(2 ** 60), 'ENOMEM', 'mmap');
    // fits the address space in principle, but not between MMAP_MIN_ADDR and the mmap base
    expectErrno(() => p.mmap(TASK_SIZE), 'ENOMEM', 'mmap');
    expect(p.mm.vmas).toHaveLength(0);
  });

  it('needs exactly one of MAP_SHARED and MAP_PRIVATE (EINVAL otherwise)', () => {
    const { p } = setup();
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_ANONYMOUS }), 'EINVAL', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_ANONYMOUS | 0x0f }), 'EINVAL', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_ANONYMOUS | 0x04 }), 'EINVAL', 'mmap');
    // MAP_SHARED|MAP_PRIVATE is MAP_SHARED_VALIDATE, which do_mmap only accepts for files
    expect(MAP_SHARED | MAP_PRIVATE).toBe(MAP_SHARED_VALIDATE);
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_SHARED_VALIDATE | MAP_ANONYMOUS }), 'EINVAL', 'mmap');
    expect(p.mm.vmas).toHaveLength(0);
  });

  it('ignores PROT bits it does not know, as do_mmap does (only mprotect validates them)', () => {
    const { p } = setup();
    const a = p.mmap(PAGE_SIZE, { prot: PROT_READ | 0x10 });
    expect(p.mm.vmaLookup(a)!.flags & (VM_READ | VM_WRITE)).toBe(VM_READ);
    expectErrno(() => p.write(a, new Uint8Array([1])), 'EFAULT', 'access');
    const b = p.mmap(PAGE_SIZE, { prot: RW | 0x08 /* PROT_SEM */ | 0x01000000 /* PROT_GROWSDOWN */ });
    p.write(b, new Uint8Array([1]));
    const c = p.mmap(PAGE_SIZE, { prot: PROT_NONE });
    expectErrno(() => p.read(c, 1), 'EFAULT', 'access');
  });

  it('needs an fd without MAP_ANONYMOUS: EBADF for none, a bad one or a closed one', () => {
    const { k, p } = setup();
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_PRIVATE }), 'EBADF', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_SHARED }), 'EBADF', 'mmap');
    for (const fd of [-1, 3, 99, 1.5, NaN, '0' as unknown as number])
      expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_SHARED, fd }), 'EBADF', 'mmap');
    const misc: MiscDevice = { minor: 255, name: 'mapme', fops: { mmap: () => 0 } };
    expect(k.miscRegister(misc)).toBe(0);
    const fd = p.open('/dev/mapme');
    p.close(fd);
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_SHARED, fd }), 'EBADF', 'mmap');
    expect(p.mm.vmas).toHaveLength(0);
  });

  it('MAP_FIXED_NOREPLACE: EEXIST over any part of a mapping, the exact address when free', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, fill(4 * PAGE_SIZE, 7));
    const nr = PRIV | MAP_FIXED_NOREPLACE;
    expectErrno(() => p.mmap(PAGE_SIZE, { addr: a + 2 * PAGE_SIZE, flags: nr }), 'EEXIST', 'mmap');
    expectErrno(() => p.mmap(2 * PAGE_SIZE, { addr: a - PAGE_SIZE, flags: nr }), 'EEXIST', 'mmap');
    expectErrno(() => p.mmap(8 * PAGE_SIZE, { addr: a - 2 * PAGE_SIZE, flags: nr }), 'EEXIST', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { addr: a + 1, flags: nr }), 'EINVAL', 'mmap');
    expectBytes(p.read(a, 4 * PAGE_SIZE), fill(4 * PAGE_SIZE, 7));
    expect(p.mmap(PAGE_SIZE, { addr: a - PAGE_SIZE, flags: nr })).toBe(a - PAGE_SIZE);
    expect(p.mmap(PAGE_SIZE, { addr: a + 4 * PAGE_SIZE, flags: nr })).toBe(a + 4 * PAGE_SIZE);
  });

  it('MAP_FIXED replaces what was there: the old data is gone, the rest of the old mapping stays', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, fill(4 * PAGE_SIZE, 0x11));
    expect(p.status().vmRss).toBe(4 * PAGE_SIZE);
    expect(p.mmap(2 * PAGE_SIZE, { addr: a + PAGE_SIZE, flags: PRIV | MAP_FIXED })).toBe(a + PAGE_SIZE);
    expectBytes(p.read(a + PAGE_SIZE, 2 * PAGE_SIZE), fill(2 * PAGE_SIZE, 0));
    expectBytes(p.read(a, PAGE_SIZE), fill(PAGE_SIZE, 0x11));
    expectBytes(p.read(a + 3 * PAGE_SIZE, PAGE_SIZE), fill(PAGE_SIZE, 0x11));
    expect(p.status().vmRss).toBe(2 * PAGE_SIZE);
    expect(p.status().vmSize).toBe(4 * PAGE_SIZE);
    expect(p.mm.vmas.map((v) => [v.start - a, v.end - a])).toEqual([
      [0, PAGE_SIZE],
      [PAGE_SIZE, 3 * PAGE_SIZE],
      [3 * PAGE_SIZE, 4 * PAGE_SIZE],
    ]);
  });

  describe('MAP_HUGETLB', () => {
    it('fails with ENOMEM when the pool has no pages', () => {
      const { k, p } = setup();
      expectErrno(() => p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB }), 'ENOMEM', 'mmap');
      expectErrno(() => p.mmap(PMD_SIZE, { flags: SHARED | MAP_HUGETLB }), 'ENOMEM', 'mmap');
      expect(k.hugetlb.stats('2MiB')).toMatchObject({ nr: 0, resv: 0 });
    });

    it('maps 2 MiB pages from the pool, rounding the length up to 2 MiB', () => {
      const { k, p } = setup(HUGE);
      const a = p.mmap(PAGE_SIZE, { flags: PRIV | MAP_HUGETLB });
      expect(a % PMD_SIZE).toBe(0);
      expect(p.status().vmSize).toBe(PMD_SIZE);
      expect(k.hugetlb.stats('2MiB')).toMatchObject({ nr: 4, free: 4, resv: 1 });
      expect(p.pagemap(a).present).toBe(false);
      const data = randomBytes(3 * PAGE_SIZE, 1);
      p.write(a + PMD_SIZE - 2 * PAGE_SIZE - 5, data.subarray(0, 2 * PAGE_SIZE + 5));
      const head = p.pagemap(a);
      expect(head).toMatchObject({ present: true, huge: '2MiB', mlocked: false, pinned: false });
      expect(p.pagemap(a + PMD_SIZE - 1)).toMatchObject({ huge: '2MiB', pfn: head.pfn! + 511 });
      expectBytes(
        p.read(a + PMD_SIZE - 2 * PAGE_SIZE - 5, 2 * PAGE_SIZE + 5),
        data.subarray(0, 2 * PAGE_SIZE + 5),
      );
      expect(k.hugetlb.stats('2MiB')).toMatchObject({ free: 3, resv: 0 });
      // hugetlb pages are not in VmRSS (they show as HugetlbPages in /proc/PID/status)
      expect(p.status().vmRss).toBe(0);
      // MAP_HUGE_2MB says the same thing explicitly
      const b = p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB | MAP_HUGE_2MB });
      expect(b % PMD_SIZE).toBe(0);
      p.munmap(a, PMD_SIZE);
      p.munmap(b, PMD_SIZE);
      expect(k.hugetlb.stats('2MiB')).toMatchObject({ nr: 4, free: 4, resv: 0 });
    });

    it('reserves at mmap time: more pages than the pool holds is ENOMEM up front', () => {
      const { k, p } = setup(HUGE);
      expectErrno(() => p.mmap(5 * PMD_SIZE, { flags: PRIV | MAP_HUGETLB }), 'ENOMEM', 'mmap');
      const a = p.mmap(3 * PMD_SIZE, { flags: PRIV | MAP_HUGETLB });
      expectErrno(() => p.mmap(2 * PMD_SIZE, { flags: SHARED | MAP_HUGETLB }), 'ENOMEM', 'mmap');
      const b = p.mmap(PMD_SIZE, { flags: SHARED | MAP_HUGETLB });
      p.touch(a, 3 * PMD_SIZE, { write: true });
      p.touch(b, PMD_SIZE);
      expect(k.hugetlb.stats('2MiB')).toMatchObject({ free: 0, resv: 0 });
    });

    it('rejects a huge page size the kernel does not have with EINVAL; 1 GiB without a pool is ENOMEM', () => {
      const { p } = setup(HUGE);
      for (const log of [12, 16, 22, 29, 31, 63])
        expectErrno(
          () => p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB | (log << MAP_HUGE_SHIFT) }),
          'EINVAL',
          'mmap',
        );
      expectErrno(() => p.mmap(2 ** 30, { flags: PRIV | MAP_HUGETLB | MAP_HUGE_1GB }), 'ENOMEM', 'mmap');
      expect(p.mm.vmas).toHaveLength(0);
    });

    it('with MAP_LOCKED is populated but never counted in VmLck (hugetlb VMAs are not VM_LOCKED)', () => {
      const { p } = setup(HUGE);
      const a = p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB | MAP_LOCKED });
      expect(p.pagemap(a)).toMatchObject({ present: true, huge: '2MiB', mlocked: false });
      expect(p.status().vmLck).toBe(0);
      expect(p.mm.vmaLookup(a)!.flags & VM_LOCKED).toBe(0);
    });
  });

  describe('MAP_LOCKED', () => {
    it('is EPERM for an unprivileged process whose RLIMIT_MEMLOCK is 0', () => {
      const { p } = setup({}, { uid: 1000, rlimits: { memlock: 0 } });
      expectErrno(() => p.mmap(PAGE_SIZE, { flags: PRIV | MAP_LOCKED }), 'EPERM', 'mmap');
      expect(p.mm.vmas).toHaveLength(0);
    });

    it('is EAGAIN over RLIMIT_MEMLOCK, and locks and populates within it', () => {
      const { p } = setup({}, { uid: 1000, rlimits: { memlock: 64 * 1024 } });
      expectErrno(() => p.mmap(128 * 1024, { flags: PRIV | MAP_LOCKED }), 'EAGAIN', 'mmap');
      const a = p.mmap(64 * 1024, { flags: PRIV | MAP_LOCKED });
      expect(p.status()).toMatchObject({ vmLck: 64 * 1024, vmRss: 64 * 1024 });
      for (let off = 0; off < 64 * 1024; off += PAGE_SIZE)
        expect(p.pagemap(a + off)).toMatchObject({ present: true, mlocked: true });
      expect(p.pagemap(a).zeroPage).toBeFalsy();
      expectErrno(() => p.mmap(PAGE_SIZE, { flags: PRIV | MAP_LOCKED }), 'EAGAIN', 'mmap');
      // an unlocked mapping is not limited
      p.mmap(MiB);
    });

    it('is not limited for root (CAP_IPC_LOCK) even with RLIMIT_MEMLOCK 0', () => {
      const { p } = setup({}, { uid: 0, rlimits: { memlock: 0 } });
      p.mmap(MiB, { flags: PRIV | MAP_LOCKED });
      expect(p.status().vmLck).toBe(MiB);
    });
  });

  it('MAP_POPULATE faults every page in (write faults for a private writable mapping)', () => {
    const { p } = setup();
    const a = p.mmap(8 * PAGE_SIZE, { flags: PRIV | MAP_POPULATE });
    expect(p.status().vmRss).toBe(8 * PAGE_SIZE);
    const pfns = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const e = p.pagemap(a + i * PAGE_SIZE);
      expect(e.present).toBe(true);
      expect(e.zeroPage).toBeFalsy();
      pfns.add(e.pfn!);
    }
    expect(pfns.size).toBe(8);
    // a read-only mapping is populated with read faults: the zero page, nothing resident
    const r = p.mmap(2 * PAGE_SIZE, { prot: PROT_READ, flags: PRIV | MAP_POPULATE });
    expect(p.pagemap(r)).toMatchObject({ present: true, zeroPage: true });
    expect(p.status().vmRss).toBe(8 * PAGE_SIZE);
    // shared memory is populated too
    const s = p.mmap(2 * PAGE_SIZE, { flags: SHARED | MAP_POPULATE });
    expect(p.pagemap(s + PAGE_SIZE).present).toBe(true);
    expect(p.status().vmRss).toBe(10 * PAGE_SIZE);
  });

  it('MAP_SHARED|MAP_ANONYMOUS is shared with a forked child, writes visible both ways', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE, { flags: SHARED });
    p.write(a, text('hello'));
    const c = p.fork();
    expect(str(c.read(a, 5))).toBe('hello');
    c.write(a + PAGE_SIZE, text('world'));
    expect(str(p.read(a + PAGE_SIZE, 5))).toBe('world');
    p.write(a, text('HELLO'));
    expect(str(c.read(a, 5))).toBe('HELLO');
    expect(c.pagemap(a).pfn).toBe(p.pagemap(a).pfn);
    expect(c.pagemap(a + PAGE_SIZE).pfn).toBe(p.pagemap(a + PAGE_SIZE).pfn);
    p.exit();
    expect(str(c.read(a, 5))).toBe('HELLO');
    c.exit();
  });

  describe('vm.max_map_count', () => {
    it('mmap fails with ENOMEM once the mm has more than vm.max_map_count mappings', () => {
      const k = boot({ sysctl: { 'vm.max_map_count': 10 } });
      const p = spawn(k);
      const addrs: number[] = [];
      // alternate protections so that no two neighbours could merge in a real kernel either
      // do_mmap refuses when map_count > max_map_count, so the 11th mapping still fits
      for (let i = 0; i < 11; i++) addrs.push(p.mmap(PAGE_SIZE, { prot: i % 2 ? PROT_READ : RW }));
      expect(p.mm.vmas).toHaveLength(11);
      expectErrno(() => p.mmap(PAGE_SIZE), 'ENOMEM', 'mmap');
      expectErrno(() => p.mmap(PAGE_SIZE, { flags: SHARED }), 'ENOMEM', 'mmap');
      p.munmap(addrs[3], PAGE_SIZE);
      p.munmap(addrs[4], PAGE_SIZE);
      expect(p.mmap(PAGE_SIZE)).toBeGreaterThan(0);
    });

    it('a split that would exceed the limit fails with ENOMEM (split_vma), unmapping whole VMAs works', () => {
      const k = boot({ sysctl: { 'vm.max_map_count': 10 } });
      const p = spawn(k);
      const big = p.mmap(3 * PAGE_SIZE);
      p.write(big, fill(3 * PAGE_SIZE, 5));
      const singles: number[] = [];
      for (let i = 0; i < 9; i++) singles.push(p.mmap(PAGE_SIZE, { prot: i % 2 ? PROT_READ : RW }));
      expect(p.mm.vmas).toHaveLength(10);
      expectErrno(() => p.mprotect(big + PAGE_SIZE, PAGE_SIZE, PROT_READ), 'ENOMEM', 'mprotect');
      expectErrno(() => p.madvise(big, PAGE_SIZE, MADV_DONTFORK), 'ENOMEM', 'madvise');
      expectErrno(() => p.mlock(big + 2 * PAGE_SIZE, PAGE_SIZE), 'ENOMEM', 'mlock');
      // punching a hole would leave 11 mappings: refused
      expectErrno(() => p.munmap(big + PAGE_SIZE, PAGE_SIZE), 'ENOMEM', 'munmap');
      expectBytes(p.read(big, 3 * PAGE_SIZE), fill(3 * PAGE_SIZE, 5));
      expect(p.status().vmLck).toBe(0);
      // cutting the head off keeps the count: allowed
      p.munmap(big, PAGE_SIZE);
      expect(p.mm.vmas).toHaveLength(10);
      expectBytes(p.read(big + PAGE_SIZE, 2 * PAGE_SIZE), fill(2 * PAGE_SIZE, 5));
      // still at the limit: no split
      expectErrno(() => p.mprotect(big + PAGE_SIZE, PAGE_SIZE, PROT_READ), 'ENOMEM', 'mprotect');
      // below the limit, splits work again
      p.munmap(singles[0], PAGE_SIZE);
      p.mprotect(big + PAGE_SIZE, PAGE_SIZE, PROT_READ);
      expect(p.mm.vmas).toHaveLength(10);
    });
  });

  it('answers garbage arguments with EINVAL or EBADF, never a crash', () => {
    const { p } = setup();
    const bad = [NaN, -1, 1.5, Infinity, '4096' as unknown as number, null as unknown as number];
    for (const length of bad) expectErrno(() => p.mmap(length), 'EINVAL', 'mmap');
    for (const addr of [NaN, -1, 1.5, '4096' as unknown as number])
      expectErrno(() => p.mmap(PAGE_SIZE, { addr }), 'EINVAL', 'mmap');
    for (const prot of [NaN, -1, 1.5, '3' as unknown as number])
      expectErrno(() => p.mmap(PAGE_SIZE, { prot }), 'EINVAL', 'mmap');
    for (const offset of [NaN, -1, 1.5, '0' as unknown as number])
      expectErrno(() => p.mmap(PAGE_SIZE, { offset }), 'EINVAL', 'mmap');
    for (const flags of [NaN, -1, 1.5, '34' as unknown as number, 2 ** 40]) {
      const e = errOf(() => p.mmap(PAGE_SIZE, { flags }));
      expect(['EINVAL', 'EBADF']).toContain(e.code);
      expect(e.syscall).toBe('mmap');
    }
    // no arguments at all: no MAP_ANONYMOUS, so the (missing) fd is looked up first
    expectErrno(() => p.syscall('mmap'), 'EBADF', 'mmap');
    expect(p.mm.vmas).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------
// munmap
// ---------------------------------------------------------------------------------------------

describe('munmap', () => {
  it('rejects an unaligned address, a zero length and ranges beyond user space with EINVAL', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    expectErrno(() => p.munmap(a + 1, PAGE_SIZE), 'EINVAL', 'munmap');
    expectErrno(() => p.munmap(a, 0), 'EINVAL', 'munmap');
    expectErrno(() => p.munmap(TASK_SIZE, PAGE_SIZE), 'EINVAL', 'munmap');
    expectErrno(() => p.munmap(a, TASK_SIZE), 'EINVAL', 'munmap');
    for (const x of [NaN, -1, 1.5, '1' as unknown as number]) {
      expectErrno(() => p.munmap(x, PAGE_SIZE), 'EINVAL', 'munmap');
      expectErrno(() => p.munmap(a, x), 'EINVAL', 'munmap');
    }
    expect(p.status().vmSize).toBe(2 * PAGE_SIZE);
  });

  it('succeeds on a range with nothing mapped', () => {
    const { p } = setup();
    p.munmap(0x10000, 16 * PAGE_SIZE);
    const a = p.mmap(PAGE_SIZE);
    p.munmap(a + PAGE_SIZE, PAGE_SIZE);
    expect(p.mm.vmas).toHaveLength(1);
  });

  it('rounds the length up to a page and splits a partly unmapped VMA', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, randomBytes(4 * PAGE_SIZE, 2));
    const before = p.read(a, 4 * PAGE_SIZE);
    p.munmap(a + PAGE_SIZE, 1); // one byte: one page
    expect(p.mm.vmas.map((v) => [v.start - a, v.end - a])).toEqual([
      [0, PAGE_SIZE],
      [2 * PAGE_SIZE, 4 * PAGE_SIZE],
    ]);
    expect(p.status()).toMatchObject({ vmRss: 3 * PAGE_SIZE, vmSize: 3 * PAGE_SIZE });
    expectBytes(p.read(a, PAGE_SIZE), before.subarray(0, PAGE_SIZE));
    expectBytes(p.read(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE), before.subarray(2 * PAGE_SIZE));
    expect(p.pagemap(a + PAGE_SIZE).present).toBe(false);
  });

  it('unmaps across several VMAs and holes at once', () => {
    const { k, p } = setup();
    const free0 = k.vmstat().nr_free_pages;
    const a = p.mmap(PAGE_SIZE, { addr: 0x100000, flags: PRIV | MAP_FIXED });
    const b = p.mmap(PAGE_SIZE, { addr: 0x104000, flags: SHARED | MAP_FIXED });
    p.write(a, text('a'));
    p.write(b, text('b'));
    p.munmap(0x100000, 0x10000);
    expect(p.mm.vmas).toHaveLength(0);
    expect(k.vmstat().nr_free_pages).toBe(free0);
  });

  it('after munmap an access faults with EFAULT (syscall access) and the process carries on', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, text('x'));
    p.munmap(a, 2 * PAGE_SIZE);
    expectErrno(() => p.read(a, 1), 'EFAULT', 'access');
    expectErrno(() => p.write(a + PAGE_SIZE, text('y')), 'EFAULT', 'access');
    expectErrno(() => p.touch(a, 1), 'EFAULT', 'access');
    const b = p.mmap(PAGE_SIZE);
    p.write(b, text('z'));
    expect(str(p.read(b, 1))).toBe('z');
  });

  it('refuses to cut a hugetlb mapping off a 2 MiB boundary (EINVAL), whole huge pages are fine', () => {
    const { k, p } = setup(HUGE);
    const a = p.mmap(2 * PMD_SIZE, { flags: PRIV | MAP_HUGETLB });
    p.touch(a, 2 * PMD_SIZE, { write: true });
    expectErrno(() => p.munmap(a + PAGE_SIZE, PAGE_SIZE), 'EINVAL', 'munmap');
    expectErrno(() => p.munmap(a, PAGE_SIZE), 'EINVAL', 'munmap');
    expectErrno(() => p.munmap(a + PMD_SIZE - PAGE_SIZE, 2 * PAGE_SIZE), 'EINVAL', 'munmap');
    expectErrno(() => p.mprotect(a, PAGE_SIZE, PROT_READ), 'EINVAL', 'mprotect');
    expect(p.mm.vmas).toHaveLength(1);
    expect(k.hugetlb.stats('2MiB').free).toBe(2);
    p.munmap(a + PMD_SIZE, PMD_SIZE);
    expect(k.hugetlb.stats('2MiB').free).toBe(3);
    expect(p.pagemap(a).huge).toBe('2MiB');
  });
});

// ---------------------------------------------------------------------------------------------
// mprotect
// ---------------------------------------------------------------------------------------------

describe('mprotect', () => {
  it('rejects an unaligned start and unknown prot bits with EINVAL', () => {
    const { p } = setup();
    const a = p.mmap(PAGE_SIZE);
    expectErrno(() => p.mprotect(a + 1, PAGE_SIZE, PROT_READ), 'EINVAL', 'mprotect');
    expectErrno(() => p.mprotect(a, PAGE_SIZE, 0x10), 'EINVAL', 'mprotect');
    expectErrno(() => p.mprotect(a, PAGE_SIZE, PROT_READ | 0x40000000), 'EINVAL', 'mprotect');
    // PROT_GROWSDOWN and PROT_GROWSUP together are never valid; alone, they need a VMA that
    // grows (VM_GROWSDOWN / VM_GROWSUP), which anonymous mmap memory is not
    expectErrno(() => p.mprotect(a, PAGE_SIZE, 0x03000000 | PROT_READ), 'EINVAL', 'mprotect');
    expectErrno(() => p.mprotect(a, PAGE_SIZE, 0x01000000 | PROT_READ), 'EINVAL', 'mprotect');
    expectErrno(() => p.mprotect(a, PAGE_SIZE, 0x02000000 | PROT_READ), 'EINVAL', 'mprotect');
    expectErrno(() => p.mprotect(0x10000, PAGE_SIZE, 0x01000000 | PROT_READ), 'ENOMEM', 'mprotect');
    for (const x of [NaN, -1, 1.5]) expectErrno(() => p.mprotect(a, PAGE_SIZE, x), 'EINVAL', 'mprotect');
    // PROT_SEM is a known bit (arch_validate_prot)
    p.mprotect(a, PAGE_SIZE, RW | 0x8);
    expect(p.mm.vmaLookup(a)!.flags & (VM_READ | VM_WRITE)).toBe(VM_READ | VM_WRITE);
  });

  it('answers ENOMEM for a range with a hole; VMAs before the hole are changed, as in the kernel', () => {
    const { p } = setup();
    const a = p.mmap(3 * PAGE_SIZE);
    p.munmap(a + PAGE_SIZE, PAGE_SIZE);
    expectErrno(() => p.mprotect(a, 3 * PAGE_SIZE, PROT_READ), 'ENOMEM', 'mprotect');
    expectErrno(() => p.write(a, text('x')), 'EFAULT', 'access');
    p.write(a + 2 * PAGE_SIZE, text('x'));
    // starting in the hole changes nothing
    expectErrno(() => p.mprotect(a + PAGE_SIZE, 2 * PAGE_SIZE, PROT_NONE), 'ENOMEM', 'mprotect');
    expect(str(p.read(a + 2 * PAGE_SIZE, 1))).toBe('x');
    expectErrno(() => p.mprotect(0x10000, PAGE_SIZE, PROT_READ), 'ENOMEM', 'mprotect');
  });

  it('PROT_READ: a write is EFAULT (syscall access), reads work and the process stays usable', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, text('keep'));
    p.mprotect(a, 2 * PAGE_SIZE, PROT_READ);
    expectErrno(() => p.write(a, text('lost')), 'EFAULT', 'access');
    expectErrno(() => p.touch(a + PAGE_SIZE, 1, { write: true }), 'EFAULT', 'access');
    expect(str(p.read(a, 4))).toBe('keep');
    const b = p.mmap(PAGE_SIZE);
    p.write(b, text('ok'));
    expect(str(p.read(b, 2))).toBe('ok');
  });

  it('PROT_NONE: reads and writes are EFAULT; restoring read-write brings the same data back', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    const data = randomBytes(2 * PAGE_SIZE, 3);
    p.write(a, data);
    const pfn = p.pagemap(a).pfn;
    p.mprotect(a, 2 * PAGE_SIZE, PROT_NONE);
    expectErrno(() => p.read(a, 1), 'EFAULT', 'access');
    expectErrno(() => p.write(a + PAGE_SIZE, text('x')), 'EFAULT', 'access');
    expect(p.pagemap(a).pfn).toBe(pfn);
    p.mprotect(a, 2 * PAGE_SIZE, RW);
    expectBytes(p.read(a, 2 * PAGE_SIZE), data);
    p.write(a, text('new'));
    expect(p.pagemap(a).pfn).toBe(pfn);
    expect(str(p.read(a, 3))).toBe('new');
  });

  it('a protection change on part of a VMA splits it', () => {
    const { p } = setup();
    const a = p.mmap(3 * PAGE_SIZE);
    p.mprotect(a + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_EXEC);
    expect(p.mm.vmas.map((v) => [v.start - a, v.flags & (VM_READ | VM_WRITE)])).toEqual([
      [0, VM_READ | VM_WRITE],
      [PAGE_SIZE, VM_READ],
      [2 * PAGE_SIZE, VM_READ | VM_WRITE],
    ]);
  });

  it('a zero length is a no-op that succeeds, even unmapped or with bits validated later', () => {
    const { p } = setup();
    p.mprotect(0x10000, 0, PROT_READ);
    const a = p.mmap(PAGE_SIZE);
    p.mprotect(a, 0, PROT_NONE);
    // do_mprotect_pkey returns 0 for !len before arch_validate_prot looks at the bits
    p.mprotect(a, 0, 0x10);
    p.write(a, text('x'));
  });

  it('a range running past the end of user space is ENOMEM', () => {
    const { p } = setup();
    const a = p.mmap(PAGE_SIZE);
    expectErrno(() => p.mprotect(a, 2 ** 52, PROT_READ), 'ENOMEM', 'mprotect');
    expectErrno(() => p.mprotect(a, Number.MAX_SAFE_INTEGER, PROT_READ), 'ENOMEM', 'mprotect');
    expectErrno(() => p.mprotect(TASK_SIZE, PAGE_SIZE, PROT_READ), 'ENOMEM', 'mprotect');
  });

  it('cannot make a shared read-only file mapping writable (EACCES); private is fine', () => {
    const { k, p } = setup();
    expect(k.miscRegister({ minor: 255, name: 'rodev', fops: { mmap: () => 0 }, mode: 0o644 })).toBe(0);
    const fd = p.open('/dev/rodev', O_RDONLY);
    expectErrno(() => p.mmap(PAGE_SIZE, { prot: RW, flags: MAP_SHARED, fd }), 'EACCES', 'mmap');
    const s = p.mmap(PAGE_SIZE, { prot: PROT_READ, flags: MAP_SHARED, fd });
    expectErrno(() => p.mprotect(s, PAGE_SIZE, RW), 'EACCES', 'mprotect');
    const q = p.mmap(PAGE_SIZE, { prot: PROT_READ, flags: MAP_PRIVATE, fd });
    p.mprotect(q, PAGE_SIZE, RW);
  });
});

// ---------------------------------------------------------------------------------------------
// madvise
// ---------------------------------------------------------------------------------------------

describe('madvise', () => {
  it('MADV_DONTFORK leaves the range out of a child (EFAULT there); MADV_DOFORK undoes it', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, fill(4 * PAGE_SIZE, 3));
    p.madvise(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, MADV_DONTFORK);
    expect(p.mm.vmaLookup(a + 2 * PAGE_SIZE)!.flags & VM_DONTCOPY).toBe(VM_DONTCOPY);
    const c = p.fork();
    expectBytes(c.read(a, 2 * PAGE_SIZE), fill(2 * PAGE_SIZE, 3));
    expectErrno(() => c.read(a + 2 * PAGE_SIZE, 1), 'EFAULT', 'access');
    expect(c.status().vmSize).toBe(2 * PAGE_SIZE);
    expectBytes(p.read(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE), fill(2 * PAGE_SIZE, 3));
    p.madvise(a, 4 * PAGE_SIZE, MADV_DOFORK);
    const d = p.fork();
    expectBytes(d.read(a, 4 * PAGE_SIZE), fill(4 * PAGE_SIZE, 3));
    c.exit();
    d.exit();
  });

  it('MADV_WIPEONFORK gives the child zeroes and the parent keeps its data; MADV_KEEPONFORK undoes it', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    const data = randomBytes(2 * PAGE_SIZE, 4);
    p.write(a, data);
    p.madvise(a, 2 * PAGE_SIZE, MADV_WIPEONFORK);
    const c = p.fork();
    expectBytes(c.read(a, 2 * PAGE_SIZE), fill(2 * PAGE_SIZE, 0));
    expect(c.status().vmRss).toBe(0);
    expectBytes(p.read(a, 2 * PAGE_SIZE), data);
    c.write(a, text('child'));
    expectBytes(p.read(a, 2 * PAGE_SIZE), data);
    // the flag is inherited: the grandchild is wiped too
    const g = c.fork();
    expectBytes(g.read(a, 5), fill(5, 0));
    p.madvise(a, 2 * PAGE_SIZE, MADV_KEEPONFORK);
    const d = p.fork();
    expectBytes(d.read(a, 2 * PAGE_SIZE), data);
    for (const q of [g, c, d]) q.exit();
  });

  it('MADV_WIPEONFORK is EINVAL on shared memory', () => {
    const { p } = setup();
    const s = p.mmap(PAGE_SIZE, { flags: SHARED });
    expectErrno(() => p.madvise(s, PAGE_SIZE, MADV_WIPEONFORK), 'EINVAL', 'madvise');
    expect(p.mm.vmaLookup(s)!.flags & VM_WIPEONFORK).toBe(0);
    // KEEPONFORK has nothing to undo and succeeds
    p.madvise(s, PAGE_SIZE, MADV_KEEPONFORK);
  });

  it('MADV_HUGEPAGE and MADV_NOHUGEPAGE set and clear the VMA flags, splitting as needed', () => {
    const { p } = setup();
    const a = p.mmap(3 * PAGE_SIZE);
    p.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_HUGEPAGE);
    expect(p.mm.vmas.map((v) => v.flags & (VM_HUGEPAGE | VM_NOHUGEPAGE))).toEqual([0, VM_HUGEPAGE, 0]);
    p.madvise(a, 3 * PAGE_SIZE, MADV_NOHUGEPAGE);
    expect(p.mm.vmas.map((v) => v.flags & (VM_HUGEPAGE | VM_NOHUGEPAGE))).toEqual([
      VM_NOHUGEPAGE,
      VM_NOHUGEPAGE,
      VM_NOHUGEPAGE,
    ]);
    p.madvise(a, 3 * PAGE_SIZE, MADV_HUGEPAGE);
    expect(p.mm.vmas.every((v) => (v.flags & (VM_HUGEPAGE | VM_NOHUGEPAGE)) === VM_HUGEPAGE)).toBe(true);
    // other hints are accepted and change nothing visible
    p.madvise(a, 3 * PAGE_SIZE, MADV_DODUMP);
  });

  it('MADV_DONTNEED drops private pages (they read back as zero); shared memory keeps its data', () => {
    const { k, p } = setup();
    const free0 = k.vmstat().nr_free_pages;
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, fill(4 * PAGE_SIZE, 9));
    p.madvise(a + PAGE_SIZE, 2 * PAGE_SIZE, MADV_DONTNEED);
    expect(p.pagemap(a + PAGE_SIZE).present).toBe(false);
    expect(p.status().vmRss).toBe(2 * PAGE_SIZE);
    expect(p.read(a, 4 * PAGE_SIZE)).toEqual(
      new Uint8Array([...fill(PAGE_SIZE, 9), ...fill(2 * PAGE_SIZE, 0), ...fill(PAGE_SIZE, 9)]),
    );
    const s = p.mmap(PAGE_SIZE, { flags: SHARED });
    p.write(s, text('persist'));
    p.madvise(s, PAGE_SIZE, MADV_DONTNEED);
    expect(p.pagemap(s).present).toBe(false);
    expect(str(p.read(s, 7))).toBe('persist');
    p.munmap(a, 4 * PAGE_SIZE);
    p.munmap(s, PAGE_SIZE);
    expect(k.vmstat().nr_free_pages).toBe(free0);
  });

  it('MADV_FREE drops private anonymous pages and is EINVAL on shared memory', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, fill(2 * PAGE_SIZE, 4));
    p.madvise(a, 2 * PAGE_SIZE, MADV_FREE);
    // nothing rewrote them: the kernel may drop them at once, and svasim does
    expectBytes(p.read(a, 2 * PAGE_SIZE), fill(2 * PAGE_SIZE, 0));
    const s = p.mmap(PAGE_SIZE, { flags: SHARED });
    p.write(s, text('kept'));
    expectErrno(() => p.madvise(s, PAGE_SIZE, MADV_FREE), 'EINVAL', 'madvise');
    expect(str(p.read(s, 4))).toBe('kept');
  });

  it('MADV_DONTNEED is EINVAL on a locked range, which keeps its pages', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, fill(2 * PAGE_SIZE, 1));
    p.mlock(a + PAGE_SIZE, PAGE_SIZE);
    expectErrno(() => p.madvise(a + PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED), 'EINVAL', 'madvise');
    expectBytes(p.read(a, 2 * PAGE_SIZE), fill(2 * PAGE_SIZE, 1));
    // VMA by VMA: the unlocked one before the locked one was already zapped
    expectErrno(() => p.madvise(a, 2 * PAGE_SIZE, MADV_DONTNEED), 'EINVAL', 'madvise');
    expectBytes(p.read(a, 2 * PAGE_SIZE), new Uint8Array([...fill(PAGE_SIZE, 0), ...fill(PAGE_SIZE, 1)]));
  });

  it('rejects unknown advice and an unaligned start with EINVAL; a zero length succeeds', () => {
    const { p } = setup();
    const a = p.mmap(PAGE_SIZE);
    for (const advice of [999, 50, -1, 1.5, NaN])
      expectErrno(() => p.madvise(a, PAGE_SIZE, advice), 'EINVAL', 'madvise');
    expectErrno(() => p.madvise(a + 1, PAGE_SIZE, MADV_DONTNEED), 'EINVAL', 'madvise');
    for (const x of [NaN, -1, 1.5]) {
      expectErrno(() => p.madvise(x, PAGE_SIZE, MADV_DONTNEED), 'EINVAL', 'madvise');
      expectErrno(() => p.madvise(a, x, MADV_DONTNEED), 'EINVAL', 'madvise');
    }
    p.madvise(a, 0, MADV_DONTNEED);
    p.madvise(0x10000, 0, MADV_DONTFORK);
    // an unknown advice is EINVAL even for a zero length
    expectErrno(() => p.madvise(a, 0, 999), 'EINVAL', 'madvise');
  });

  it('answers ENOMEM for a range with a hole, after advising the mapped parts', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, fill(4 * PAGE_SIZE, 2));
    p.munmap(a + PAGE_SIZE, PAGE_SIZE);
    expectErrno(() => p.madvise(a, 4 * PAGE_SIZE, MADV_DONTFORK), 'ENOMEM', 'madvise');
    expect(p.mm.vmas.map((v) => v.flags & VM_DONTCOPY)).toEqual([VM_DONTCOPY, VM_DONTCOPY]);
    const c = p.fork();
    expect(c.mm.vmas).toHaveLength(0);
    expectErrno(() => p.madvise(a, 4 * PAGE_SIZE, MADV_DONTNEED), 'ENOMEM', 'madvise');
    expect(p.status().vmRss).toBe(0);
    // a range running past the last mapping, even past the end of user space, is a hole too
    expectErrno(() => p.madvise(a + 2 * PAGE_SIZE, 2 ** 50, MADV_DOFORK), 'ENOMEM', 'madvise');
    expect(p.mm.vmaLookup(a + 2 * PAGE_SIZE)!.flags & VM_DONTCOPY).toBe(0);
    expectErrno(() => p.madvise(0x10000, PAGE_SIZE, MADV_DOFORK), 'ENOMEM', 'madvise');
    c.exit();
  });
});

// ---------------------------------------------------------------------------------------------
// mlock, munlock, mlockall, munlockall
// ---------------------------------------------------------------------------------------------

describe('mlock and friends', () => {
  const user = (memlock: number, caps?: string[]): SpawnOptions => ({
    uid: 1000,
    caps,
    rlimits: { memlock },
  });

  it('are EPERM for an unprivileged process with RLIMIT_MEMLOCK 0; munlock needs no privilege', () => {
    const { p } = setup({}, user(0));
    const a = p.mmap(PAGE_SIZE);
    expectErrno(() => p.mlock(a, PAGE_SIZE), 'EPERM', 'mlock');
    expectErrno(() => p.syscall('mlock2', a, PAGE_SIZE, 0), 'EPERM', 'mlock2');
    expectErrno(() => p.mlockall(MCL_CURRENT), 'EPERM', 'mlockall');
    expectErrno(() => p.mlockall(MCL_FUTURE), 'EPERM', 'mlockall');
    p.munlock(a, PAGE_SIZE);
    p.munlockall();
    expect(p.status().vmLck).toBe(0);
  });

  it('are ENOMEM over RLIMIT_MEMLOCK; the limit counts pages, each locked page once', () => {
    const { p } = setup({}, user(64 * 1024 + 100));
    const a = p.mmap(32 * PAGE_SIZE);
    expectErrno(() => p.mlock(a, 17 * PAGE_SIZE), 'ENOMEM', 'mlock');
    expect(p.status().vmLck).toBe(0);
    p.mlock(a, 16 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(16 * PAGE_SIZE);
    // the same range again, or a part of it, is within the limit: already locked pages count once
    p.mlock(a, 16 * PAGE_SIZE);
    p.mlock(a + PAGE_SIZE, 3 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(16 * PAGE_SIZE);
    expectErrno(() => p.mlock(a + 15 * PAGE_SIZE, 2 * PAGE_SIZE), 'ENOMEM', 'mlock');
    expectErrno(() => p.mlockall(MCL_CURRENT), 'ENOMEM', 'mlockall');
    p.munlock(a, PAGE_SIZE);
    p.mlock(a + 15 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(16 * PAGE_SIZE);
  });

  it('CAP_IPC_LOCK and uid 0 are exempt from RLIMIT_MEMLOCK, even when it is 0', () => {
    const k = boot();
    for (const opts of [user(0, ['CAP_IPC_LOCK']), { uid: 0, rlimits: { memlock: 0 } }]) {
      const p = spawn(k, opts);
      const a = p.mmap(MiB);
      p.mlock(a, MiB);
      expect(p.status()).toMatchObject({ vmLck: MiB, vmRss: MiB });
      const b = p.mmap(PAGE_SIZE, { flags: PRIV | MAP_LOCKED });
      p.mlockall(MCL_CURRENT | MCL_FUTURE);
      expect(p.status().vmLck).toBe(MiB + PAGE_SIZE);
      expect(p.pagemap(b).mlocked).toBe(true);
      p.exit();
    }
  });

  it('lock and fault in the range (rounded to whole pages); vmLck is exact', () => {
    const { p } = setup();
    const a = p.mmap(8 * PAGE_SIZE);
    p.mlock(a + PAGE_SIZE + 100, PAGE_SIZE); // touches pages 1 and 2
    expect(p.status()).toMatchObject({ vmLck: 2 * PAGE_SIZE, vmRss: 2 * PAGE_SIZE });
    expect(p.pagemap(a + PAGE_SIZE)).toMatchObject({ present: true, mlocked: true });
    expect(p.pagemap(a + 2 * PAGE_SIZE)).toMatchObject({ present: true, mlocked: true });
    expect(p.pagemap(a).present).toBe(false);
    p.mlock(a, 8 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(8 * PAGE_SIZE);
    // partial munlock
    p.munlock(a + 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(5 * PAGE_SIZE);
    expect(p.pagemap(a + 3 * PAGE_SIZE)).toMatchObject({ present: true, mlocked: false });
    // munmap of a locked range gives its pages back
    p.munmap(a + 6 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(3 * PAGE_SIZE);
    p.munmap(a, 8 * PAGE_SIZE);
    expect(p.status()).toMatchObject({ vmLck: 0, vmRss: 0 });
  });

  it('mlock2(MLOCK_ONFAULT) locks without faulting in; bad mlock2 flags are EINVAL', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    expect(p.syscall('mlock2', a, 4 * PAGE_SIZE, MLOCK_ONFAULT)).toBe(0);
    expect(p.status()).toMatchObject({ vmLck: 4 * PAGE_SIZE, vmRss: 0 });
    p.write(a, text('x'));
    expect(p.pagemap(a).mlocked).toBe(true);
    expectErrno(() => p.syscall('mlock2', a, PAGE_SIZE, 2), 'EINVAL', 'mlock2');
  });

  it('are ENOMEM for a range with a hole', () => {
    const { p } = setup();
    const a = p.mmap(3 * PAGE_SIZE);
    p.munmap(a + PAGE_SIZE, PAGE_SIZE);
    expectErrno(() => p.mlock(a + PAGE_SIZE, PAGE_SIZE), 'ENOMEM', 'mlock');
    expectErrno(() => p.mlock(0x10000, PAGE_SIZE), 'ENOMEM', 'mlock');
    expectErrno(() => p.munlock(a + PAGE_SIZE, 2 * PAGE_SIZE), 'ENOMEM', 'munlock');
    expect(p.status().vmLck).toBe(0);
    // apply_vma_lock_flags stops at the hole: the VMA before it is locked, but not faulted in
    expectErrno(() => p.mlock(a, 3 * PAGE_SIZE), 'ENOMEM', 'mlock');
    expect(p.status()).toMatchObject({ vmLck: PAGE_SIZE, vmRss: 0 });
    expect(p.mm.vmaLookup(a)!.flags & VM_LOCKED).toBe(VM_LOCKED);
    expect(p.mm.vmaLookup(a + 2 * PAGE_SIZE)!.flags & VM_LOCKED).toBe(0);
  });

  it('mlockall rejects no flags, unknown bits and MCL_ONFAULT alone with EINVAL', () => {
    const { p } = setup();
    for (const flags of [0, 8, MCL_CURRENT | 16, MCL_ONFAULT, -1, 1.5, NaN])
      expectErrno(() => p.mlockall(flags), 'EINVAL', 'mlockall');
    expect(p.mm.defFlags & VM_LOCKED).toBe(0);
  });

  it('mlockall(MCL_CURRENT) locks and populates what is mapped; MCL_FUTURE locks later mappings', () => {
    const { p } = setup({}, user(MiB));
    const a = p.mmap(4 * PAGE_SIZE);
    p.mlockall(MCL_CURRENT);
    expect(p.status()).toMatchObject({ vmLck: 4 * PAGE_SIZE, vmRss: 4 * PAGE_SIZE });
    const b = p.mmap(2 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(4 * PAGE_SIZE);
    expect(p.pagemap(b).present).toBe(false);
    p.mlockall(MCL_FUTURE);
    const c = p.mmap(2 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(6 * PAGE_SIZE);
    expect(p.pagemap(c)).toMatchObject({ present: true, mlocked: true });
    // a future mapping is held to RLIMIT_MEMLOCK like MAP_LOCKED (EAGAIN)
    expectErrno(() => p.mmap(MiB), 'EAGAIN', 'mmap');
    // MCL_FUTURE|MCL_ONFAULT: locked, but faulted in only when touched
    p.mlockall(MCL_FUTURE | MCL_ONFAULT);
    const d = p.mmap(PAGE_SIZE);
    expect(p.pagemap(d).present).toBe(false);
    p.write(d, text('x'));
    expect(p.pagemap(d).mlocked).toBe(true);
    expect(p.status().vmLck).toBe(7 * PAGE_SIZE);
    expect(p.pagemap(a).mlocked).toBe(true);
  });

  it('munlockall unlocks everything and stops locking future mappings', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.mlockall(MCL_CURRENT | MCL_FUTURE);
    p.munlockall();
    expect(p.status()).toMatchObject({ vmLck: 0, vmRss: 4 * PAGE_SIZE });
    expect(p.pagemap(a)).toMatchObject({ present: true, mlocked: false });
    const b = p.mmap(PAGE_SIZE);
    expect(p.pagemap(b).present).toBe(false);
    expect(p.status().vmLck).toBe(0);
  });

  it('locks are not inherited by a fork child; shared pages stay mlocked while the parent locks them', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    p.mlock(a, 2 * PAGE_SIZE);
    p.mlockall(MCL_FUTURE);
    p.write(a, text('locked'));
    const c = p.fork();
    expect(c.status().vmLck).toBe(0);
    expect(c.mm.vmas.every((v) => !(v.flags & VM_LOCKED))).toBe(true);
    expect(c.pagemap(a).pfn).toBe(p.pagemap(a).pfn);
    expect(c.pagemap(a).mlocked).toBe(true);
    // MCL_FUTURE is not inherited either
    const cb = c.mmap(PAGE_SIZE);
    expect(c.pagemap(cb).present).toBe(false);
    // the child's COW copy is its own, unlocked page
    c.write(a, text('child'));
    expect(c.pagemap(a).mlocked).toBe(false);
    expect(p.pagemap(a).mlocked).toBe(true);
    expect(c.pagemap(a + PAGE_SIZE).mlocked).toBe(true);
    p.munlock(a, 2 * PAGE_SIZE);
    expect(c.pagemap(a + PAGE_SIZE).mlocked).toBe(false);
    expect(p.pagemap(a).mlocked).toBe(false);
    expect(str(p.read(a, 6))).toBe('locked');
    c.exit();
  });
});

// ---------------------------------------------------------------------------------------------
// read, write, touch
// ---------------------------------------------------------------------------------------------

describe('read, write and touch', () => {
  it('fault with EFAULT (syscall access) on unmapped memory', () => {
    const { p } = setup();
    expectErrno(() => p.read(0x10000, 1), 'EFAULT', 'access');
    expectErrno(() => p.write(0x10000, text('x')), 'EFAULT', 'access');
    expectErrno(() => p.touch(0x10000, PAGE_SIZE), 'EFAULT', 'access');
    expectErrno(() => p.touch(0x10000, PAGE_SIZE, { write: true }), 'EFAULT', 'access');
    expectErrno(() => p.read(TASK_SIZE, 1), 'EFAULT', 'access');
    expectErrno(() => p.read(0, 1), 'EFAULT', 'access');
    // nothing to transfer: nothing to fault
    expectBytes(p.read(0x10000, 0), new Uint8Array(0));
    // a read far larger than anything mapped faults; it does not try to allocate the buffer
    const a = p.mmap(PAGE_SIZE);
    expectErrno(() => p.read(a, 2 ** 40), 'EFAULT', 'access');
    expectErrno(() => p.read(a, Number.MAX_SAFE_INTEGER), 'EFAULT', 'access');
    expectErrno(() => p.touch(a, 2 ** 40), 'EFAULT', 'access');
    expect(p.pagemap(a).zeroPage).toBe(true);
  });

  it('write across page and VMA boundaries; a store running off a mapping stores what fits', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE, { addr: 0x100000, flags: PRIV | MAP_FIXED });
    const b = p.mmap(PAGE_SIZE, { addr: 0x102000, flags: SHARED | MAP_FIXED });
    const data = randomBytes(2 * PAGE_SIZE + 20, 5);
    p.write(a + 10, data);
    expectBytes(p.read(a + 10, data.length), data);
    expectBytes(p.read(b, 30), data.subarray(2 * PAGE_SIZE - 10, 2 * PAGE_SIZE + 20));
    expectErrno(() => p.write(b + PAGE_SIZE - 4, fill(8, 0xee)), 'EFAULT', 'access');
    expectBytes(p.read(b + PAGE_SIZE - 4, 4), fill(4, 0xee));
  });

  it('refuses a write of anything but a Uint8Array and bad lengths with EINVAL', () => {
    const { p } = setup();
    const a = p.mmap(PAGE_SIZE);
    for (const junk of [[1, 2, 3], 'abc', null, undefined, new Uint16Array(2), new ArrayBuffer(4)])
      expectErrno(() => p.write(a, junk as unknown as Uint8Array), 'EINVAL', 'access');
    for (const len of [-1, 1.5, NaN, Infinity, '4' as unknown as number]) {
      expectErrno(() => p.read(a, len), 'EINVAL', 'access');
      expectErrno(() => p.touch(a, len), 'EINVAL', 'access');
    }
    // a Buffer is a Uint8Array
    p.write(a, Buffer.from('buf'));
    expect(str(p.read(a, 3))).toBe('buf');
    expect(p.status().vmRss).toBe(PAGE_SIZE);
  });

  it('a read maps the shared zero page; the first write replaces it with a page of its own', () => {
    const { k, p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    const free0 = k.vmstat().nr_free_pages;
    expect([...p.read(a, 8)]).toEqual(new Array(8).fill(0));
    const z = p.pagemap(a);
    expect(z).toMatchObject({ present: true, zeroPage: true, mlocked: false, pinned: false });
    expect(p.status().vmRss).toBe(0);
    expect(k.vmstat().nr_free_pages).toBe(free0);
    // every zero-page mapping is the same page
    p.touch(a + PAGE_SIZE, 1);
    expect(p.pagemap(a + PAGE_SIZE).pfn).toBe(z.pfn);
    p.write(a + 3, text('w'));
    const w = p.pagemap(a);
    expect(w.present).toBe(true);
    expect(w.zeroPage).toBeFalsy();
    expect(w.pfn).not.toBe(z.pfn);
    expect(p.status().vmRss).toBe(PAGE_SIZE);
    expect(k.vmstat().nr_free_pages).toBe(free0 - 1);
    expect([...p.read(a, 5)]).toEqual([0, 0, 0, 119, 0]);
    expect(p.pagemap(a + PAGE_SIZE).zeroPage).toBe(true);
  });

  it('touch faults pages in without changing their bytes', () => {
    const { p } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, text('data'));
    p.touch(a, 4 * PAGE_SIZE);
    expect(p.status().vmRss).toBe(PAGE_SIZE);
    p.touch(a, 4 * PAGE_SIZE, { write: true });
    expect(p.status().vmRss).toBe(4 * PAGE_SIZE);
    expect(str(p.read(a, 4))).toBe('data');
    p.touch(a + 10, 0);
  });

  it('keeps 1 MiB of random bytes exactly, whatever the access pattern', () => {
    const { p } = setup();
    const a = p.mmap(MiB + PAGE_SIZE);
    const data = randomBytes(MiB, 0xc0ffee);
    p.write(a + 123, data);
    expectBytes(p.read(a + 123, MiB), data);
    // odd-sized, unaligned slices
    let off = 0;
    for (const n of [1, 4095, 4097, 12345, 65536, 7]) {
      expectBytes(p.read(a + 123 + off, n), data.subarray(off, off + n));
      off += n * 3;
    }
    // rewrite in odd chunks and read back whole
    const again = randomBytes(MiB, 42);
    for (let o = 0; o < MiB; o += 65537) p.write(a + 123 + o, again.subarray(o, Math.min(MiB, o + 65537)));
    expectBytes(p.read(a + 123, MiB), again);
    expectBytes(p.read(a, 123), fill(123, 0));
    // the data really is in RAM pages: every page of the buffer is resident
    expect(p.status().vmRss).toBe(MiB + PAGE_SIZE);
  });
});

// ---------------------------------------------------------------------------------------------
// fork and copy-on-write
// ---------------------------------------------------------------------------------------------

describe('fork and copy-on-write', () => {
  it('the child sees the parent data; later writes are private both ways', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, text('parent'));
    const c = p.fork();
    expect(c.pid).not.toBe(p.pid);
    expect(c.parent?.pid).toBe(p.pid);
    expect(str(c.read(a, 6))).toBe('parent');
    expect(c.pagemap(a).pfn).toBe(p.pagemap(a).pfn);
    c.write(a, text('CHILD!'));
    p.write(a + PAGE_SIZE, text('p2'));
    expect(str(p.read(a, 6))).toBe('parent');
    expect(str(c.read(a, 6))).toBe('CHILD!');
    expectBytes(c.read(a + PAGE_SIZE, 2), fill(2, 0));
    expect(c.pagemap(a).pfn).not.toBe(p.pagemap(a).pfn);
    expect(c.status().vmRss).toBe(PAGE_SIZE);
    c.exit();
  });

  it('the parent keeps its page (same pfn) when the child exits before it writes', () => {
    const { k, p } = setup();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, text('mine'));
    const pfn = p.pagemap(a).pfn;
    const c = p.fork();
    c.exit();
    const cow0 = k.vmstat().cow_fault ?? 0;
    p.write(a, text('MINE'));
    expect(p.pagemap(a).pfn).toBe(pfn);
    expect(k.vmstat().cow_fault ?? 0).toBe(cow0);
    expect(str(p.read(a, 4))).toBe('MINE');
  });

  it('the last sharer to write reuses the page; the first one copies', () => {
    const { p } = setup();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, text('orig'));
    const pfn = p.pagemap(a).pfn;
    const c = p.fork();
    c.write(a, text('copy'));
    expect(c.pagemap(a).pfn).not.toBe(pfn);
    p.write(a, text('same'));
    expect(p.pagemap(a).pfn).toBe(pfn);
    c.exit();
  });

  it('works over three generations, in any exit order', () => {
    const { p } = setup();
    const a = p.mmap(3 * PAGE_SIZE);
    p.write(a, text('gen0'));
    const c = p.fork();
    c.write(a + PAGE_SIZE, text('gen1'));
    const g = c.fork();
    g.write(a + 2 * PAGE_SIZE, text('gen2'));
    expect(str(g.read(a, 4))).toBe('gen0');
    expect(str(g.read(a + PAGE_SIZE, 4))).toBe('gen1');
    expectBytes(p.read(a + PAGE_SIZE, 4), fill(4, 0));
    expectBytes(c.read(a + 2 * PAGE_SIZE, 4), fill(4, 0));
    c.exit();
    expect(str(g.read(a + PAGE_SIZE, 4))).toBe('gen1');
    g.write(a, text('GEN2'));
    expect(str(p.read(a, 4))).toBe('gen0');
    p.exit();
    expect(str(g.read(a, 4))).toBe('GEN2');
    g.exit();
  });

  it('the child keeps its data when the parent exits first', () => {
    const { p } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    const data = randomBytes(2 * PAGE_SIZE, 6);
    p.write(a, data);
    const c = p.fork();
    p.exit();
    expectBytes(c.read(a, 2 * PAGE_SIZE), data);
    c.write(a, text('alone'));
    expect(str(c.read(a, 5))).toBe('alone');
    c.exit();
  });

  it('gives every page back once everything has exited', () => {
    const { k, p } = setup(HUGE);
    const free0 = k.vmstat().nr_free_pages;
    const a = p.mmap(16 * PAGE_SIZE);
    const s = p.mmap(4 * PAGE_SIZE, { flags: SHARED });
    const h = p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB });
    p.write(a, randomBytes(16 * PAGE_SIZE, 7));
    p.write(s, randomBytes(4 * PAGE_SIZE, 8));
    p.write(h, text('huge'));
    p.mlock(a, 4 * PAGE_SIZE);
    const c = p.fork();
    c.write(a, text('c'));
    c.write(h, text('c'));
    const g = c.fork();
    g.write(a + 8 * PAGE_SIZE, text('g'));
    p.exit();
    g.exit();
    c.exit();
    expect(k.vmstat().nr_free_pages).toBe(free0);
    expect(k.hugetlb.stats('2MiB')).toMatchObject({ free: 4, resv: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// exit
// ---------------------------------------------------------------------------------------------

describe('exit', () => {
  it('is harmless twice, and every method afterwards throws ESRCH', () => {
    const { k, p } = setup();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, text('x'));
    p.exit(3);
    p.exit();
    expect(p.state).toBe('exited');
    expect(p.exitCode).toBe(3);
    expect(k.processList()).not.toContain(p);
    const calls: Array<[string, () => unknown]> = [
      ['mmap', () => p.mmap(PAGE_SIZE)],
      ['munmap', () => p.munmap(a, PAGE_SIZE)],
      ['mprotect', () => p.mprotect(a, PAGE_SIZE, PROT_READ)],
      ['madvise', () => p.madvise(a, PAGE_SIZE, MADV_DONTNEED)],
      ['mlock', () => p.mlock(a, PAGE_SIZE)],
      ['munlock', () => p.munlock(a, PAGE_SIZE)],
      ['mlockall', () => p.mlockall(MCL_CURRENT)],
      ['munlockall', () => p.munlockall()],
      ['access', () => p.write(a, text('y'))],
      ['access', () => p.read(a, 1)],
      ['access', () => p.touch(a, 1)],
      ['fork', () => p.fork()],
      ['open', () => p.open('/dev/null')],
      ['close', () => p.close(0)],
      ['ioctl', () => p.ioctl(0, 1)],
      ['poll', () => p.poll(0)],
      ['getpid', () => p.syscall('getpid')],
      ['pagemap', () => p.pagemap(a)],
      ['status', () => p.status()],
    ];
    for (const [syscall, call] of calls) expectErrno(call, 'ESRCH', syscall);
  });

  it('closes the fds (the driver sees release) and frees the address space', () => {
    const { k, p } = setup();
    const free0 = k.vmstat().nr_free_pages;
    const released: number[] = [];
    expect(k.miscRegister({ minor: 255, name: 'rel', fops: { release: () => void released.push(1) } })).toBe(
      0,
    );
    const fd = p.open('/dev/rel');
    p.open('/dev/rel');
    const c = p.fork();
    p.write(p.mmap(PAGE_SIZE), text('x'));
    p.exit();
    expect(p.files.count).toBe(0);
    expect(released).toEqual([]); // the child still holds the files
    expect(c.poll(fd)).not.toBe(POLLNVAL);
    c.exit();
    expect(released).toEqual([1, 1]);
    expect(k.vmstat().nr_free_pages).toBe(free0);
    expect(k.processList()).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// open, close, ioctl, poll, syscall
// ---------------------------------------------------------------------------------------------

describe('files and devices', () => {
  const ARG = defineStruct('test_arg', [
    ['addr', 'u64'],
    ['size', 'u32'],
    ['flags', 'u32'],
  ]);
  const TEST_CMD = _IOW('T', 1, ARG.size);

  function device(k: Kernel, fops: FileOperations, mode = 0o600): MiscDevice {
    const misc: MiscDevice = { minor: 255, name: 'testdev', fops, mode };
    expect(k.miscRegister(misc)).toBe(0);
    return misc;
  }

  it('open of a missing path is ENOENT; bad paths are errors too', () => {
    const { p } = setup();
    expectErrno(() => p.open('/dev/nope'), 'ENOENT', 'open');
    expectErrno(() => p.open('relative'), 'ENOENT', 'open');
    expectErrno(() => p.open(42 as unknown as string), 'EFAULT', 'open');
  });

  it('close of a bad, closed or absurd fd is EBADF', () => {
    const { k, p } = setup();
    device(k, {}, 0o666);
    const fd = p.open('/dev/testdev');
    p.close(fd);
    for (const bad of [fd, -1, 1.5, NaN, 1 << 30, '0' as unknown as number])
      expectErrno(() => p.close(bad), 'EBADF', 'close');
  });

  it('ioctl on a bad fd is EBADF; poll of a bad fd reports POLLNVAL; unknown syscalls are ENOSYS', () => {
    const { p } = setup();
    for (const bad of [0, -1, NaN, 1.5]) {
      expectErrno(() => p.ioctl(bad, 1), 'EBADF', 'ioctl');
      expect(p.poll(bad)).toBe(POLLNVAL);
    }
    expectErrno(() => p.syscall('nope'), 'ENOSYS', 'nope');
    expectErrno(() => p.syscall(''), 'ENOSYS', '');
    expect(p.syscall('getpid')).toBe(p.pid);
  });

  it('a 0600 misc device: uid 1000 gets EACCES, root opens it', () => {
    const k = boot();
    device(k, {});
    const user = spawn(k, { uid: 1000 });
    expectErrno(() => user.open('/dev/testdev'), 'EACCES', 'open');
    expectErrno(() => user.open('/dev/testdev', O_RDONLY), 'EACCES', 'open');
    const root = spawn(k);
    const fd = root.open('/dev/testdev', O_RDWR);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(root.poll(fd)).not.toBe(POLLNVAL);
  });

  it('chmod as a udev rule would: root opens a node to everyone; only the owner or CAP_FOWNER may', () => {
    const k = boot();
    device(k, {});
    const user = spawn(k, { uid: 1000 });
    expectErrno(() => user.chmod('/dev/testdev', 0o666), 'EPERM', 'chmod');
    const root = spawn(k);
    root.chmod('/dev/testdev', 0o666);
    expect(k.devices.vfs.lookup('/dev/testdev')!.mode & 0o7777).toBe(0o666);
    expect(user.open('/dev/testdev', O_RDWR)).toBeGreaterThanOrEqual(0);
    const fowner = spawn(k, { uid: 1001, caps: ['CAP_FOWNER'] });
    fowner.chmod('/dev/testdev', 0o600);
    expectErrno(() => user.open('/dev/testdev'), 'EACCES', 'open');
    // The file type stays a character device whatever the mode says.
    expect(k.devices.vfs.lookup('/dev/testdev')!.mode & ~0o7777).not.toBe(0);
    for (const bad of [-1, 0o10000, 1.5, NaN])
      expectErrno(() => root.chmod('/dev/testdev', bad), 'EINVAL', 'chmod');
    expectErrno(() => root.chmod('/dev/nothere', 0o666), 'ENOENT', 'chmod');
    expectErrno(() => root.chmod('/dev', 0o666), 'EISDIR', 'chmod');
    expectErrno(() => root.syscall('chmod', 42, 0o666), 'EFAULT', 'chmod');
  });

  it('ioctl without a handler is ENOTTY; mmap without an mmap op is ENODEV', () => {
    const { k, p } = setup();
    device(k, {});
    const fd = p.open('/dev/testdev');
    expectErrno(() => p.ioctl(fd, TEST_CMD, 0), 'ENOTTY', 'ioctl');
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_SHARED, fd }), 'ENODEV', 'mmap');
    expectErrno(() => p.mmap(PAGE_SIZE, { flags: MAP_PRIVATE, fd }), 'ENODEV', 'mmap');
    expect(p.mm.vmas).toHaveLength(0);
  });

  it('a driver ioctl reads its struct with copyFromUser: from a user address, or EFAULT', () => {
    const { k, p } = setup();
    const seen: unknown[] = [];
    device(k, {
      unlockedIoctl: (_file, cmd, arg, current) => {
        if (cmd !== TEST_CMD) return -ERRNO.ENOTTY;
        const v = readIoctlArg(current, arg, ARG);
        if (typeof v === 'number') return v;
        seen.push(v);
        return v.size;
      },
    });
    const fd = p.open('/dev/testdev');
    const a = p.mmap(2 * PAGE_SIZE);
    // the struct straddles a page boundary
    const at = a + PAGE_SIZE - 8;
    p.write(at, ARG.encode({ addr: 0x7f0000001000, size: 4242, flags: 3 }));
    expect(p.ioctl(fd, TEST_CMD, at)).toBe(4242);
    expect(seen).toEqual([{ addr: 0x7f0000001000, size: 4242, flags: 3 }]);
    expect(p.ioctl(fd, TEST_CMD, { size: 7 })).toBe(7);
    expectErrno(() => p.ioctl(fd, TEST_CMD, 0x10000), 'EFAULT', 'ioctl');
    expectErrno(() => p.ioctl(fd, TEST_CMD, a + 2 * PAGE_SIZE - 4), 'EFAULT', 'ioctl');
    expectErrno(() => p.ioctl(fd, TEST_CMD), 'EFAULT', 'ioctl');
    expectErrno(() => p.ioctl(fd, TEST_CMD, { nope: 1 }), 'EINVAL', 'ioctl');
    expectErrno(() => p.ioctl(fd, 99, at), 'ENOTTY', 'ioctl');
    p.mprotect(a, 2 * PAGE_SIZE, PROT_NONE);
    expectErrno(() => p.ioctl(fd, TEST_CMD, at), 'EFAULT', 'ioctl');
    expect(seen).toHaveLength(2);
  });

  it('a file mapping without a fault handler answers SIGBUS (EFAULT), never anonymous memory', () => {
    const { k, p } = setup();
    device(k, { mmap: () => 0 });
    const fd = p.open('/dev/testdev');
    const a = p.mmap(PAGE_SIZE, { prot: RW, flags: MAP_SHARED, fd });
    expectErrno(() => p.read(a, 1), 'EFAULT', 'access');
    expectErrno(() => p.write(a, text('x')), 'EFAULT', 'access');
    expect(p.status().vmRss).toBe(0);
    const q = p.mmap(PAGE_SIZE, { prot: RW | PROT_EXEC, flags: MAP_PRIVATE, fd });
    expectErrno(() => p.write(q, text('x')), 'EFAULT', 'access');
    p.munmap(a, PAGE_SIZE);
  });
});

// ---------------------------------------------------------------------------------------------
// status and pagemap
// ---------------------------------------------------------------------------------------------

describe('status and pagemap', () => {
  it('vmRss counts resident pages exactly: written, shared and COW pages, not the zero page', () => {
    const { p } = setup();
    const a = p.mmap(10 * PAGE_SIZE);
    p.touch(a, 3 * PAGE_SIZE, { write: true });
    p.touch(a + 5 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(p.status().vmRss).toBe(3 * PAGE_SIZE);
    const s = p.mmap(2 * PAGE_SIZE, { flags: SHARED });
    p.touch(s, 2 * PAGE_SIZE);
    expect(p.status().vmRss).toBe(5 * PAGE_SIZE);
    const c = p.fork();
    // the child maps the parent's anonymous pages; shared memory is faulted in again on use
    expect(c.status().vmRss).toBe(3 * PAGE_SIZE);
    c.touch(s, PAGE_SIZE);
    c.write(a, text('c'));
    expect(c.status().vmRss).toBe(4 * PAGE_SIZE);
    expect(p.status().vmRss).toBe(5 * PAGE_SIZE);
    p.munmap(a, PAGE_SIZE);
    expect(p.status().vmRss).toBe(4 * PAGE_SIZE);
    c.exit();
  });

  it('pagemap: not present for unmapped or untouched memory; EINVAL for a bad address', () => {
    const { k, p } = setup();
    expect(p.pagemap(0x10000)).toEqual({ present: false, pinned: false, mlocked: false });
    expect(p.pagemap(TASK_SIZE + PAGE_SIZE).present).toBe(false);
    const a = p.mmap(PAGE_SIZE);
    expect(p.pagemap(a).present).toBe(false);
    p.write(a, text('x'));
    const e = p.pagemap(a + 100);
    expect(e).toMatchObject({ present: true, zone: 'DMA32', node: 0, migratetype: 'MOVABLE' });
    expect(e.pfn).toBeGreaterThan(0);
    expect(e.pfn).toBeLessThan(k.phys.maxPfn);
    for (const bad of [-1, NaN, 1.5, Infinity, '0' as unknown as number])
      expectErrno(() => p.pagemap(bad), 'EINVAL', 'pagemap');
  });
});

describe('kernel rules added after review', () => {
  it('mlock over a PROT_NONE mapping locks it but reports ENOMEM (populate refuses PROT_NONE)', async () => {
    const { createKernel } = await import('../plugin/create-kernel');
    const { PROT_NONE } = await import('../uapi/mman');
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const p = k.spawn();
    const a = p.mmap(8192, { prot: PROT_NONE });
    expect(() => p.mlock(a, 8192)).toThrow(
      expect.objectContaining({ code: 'ENOMEM', errno: -12, syscall: 'mlock' }),
    );
    expect(p.status().vmLck).toBe(8192);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('MAP_FIXED below vm.mmap_min_addr needs CAP_SYS_RAWIO', async () => {
    const { createKernel } = await import('../plugin/create-kernel');
    const { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE } = await import('../uapi/mman');
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    const user = k.spawn({ uid: 1000 });
    expect(() => user.mmap(4096, { addr: 0x1000, flags })).toThrow(
      expect.objectContaining({ code: 'EPERM', errno: -1, syscall: 'mmap' }),
    );
    expect(k.spawn({ uid: 1000, caps: ['CAP_SYS_RAWIO'] }).mmap(4096, { addr: 0x1000, flags })).toBe(0x1000);
    expect(k.spawn().mmap(4096, { addr: 0, flags })).toBe(0);
  });
});
