import { afterEach, describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import type { Process } from '../proc/process';
import { ERRNO, SyscallError } from '../uapi/errno';
import { O_RDWR } from '../uapi/fcntl';
import { _IOC_SIZE } from '../uapi/ioctl';
import {
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../uapi/mman';
import { checkMmInvariants } from '../mm/debug-vm';
import { FOLL_LONGTERM, FOLL_WRITE } from '../gup/foll-flags';
import { checkGupInvariants, gupAttach, gupState } from '../gup/pin-tracker';
import {
  DUMP_USER_PAGES_TEST,
  GUP_BASIC_TEST,
  GUP_FAST_BENCHMARK,
  GUP_TEST_FLAG_DUMP_PAGES_USE_PIN,
  GUP_TEST_LAYOUT,
  GUP_TEST_PATH,
  PIN_BASIC_TEST,
  PIN_FAST_BENCHMARK,
  PIN_LONGTERM_BENCHMARK,
  PIN_LONGTERM_TEST_FLAG_USE_FAST,
  PIN_LONGTERM_TEST_FLAG_USE_WRITE,
  PIN_LONGTERM_TEST_LAYOUT,
  PIN_LONGTERM_TEST_READ,
  PIN_LONGTERM_TEST_START,
  PIN_LONGTERM_TEST_STOP,
  decodeWhichPages,
  encodeWhichPages,
  registerGupTest,
  unregisterGupTest,
} from './gup-test';

const booted: Kernel[] = [];

function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel(opts);
  gupAttach(k.mmCore, k);
  expect(registerGupTest(k.devices, k.mmCore)).toBe(0);
  booted.push(k);
  return k;
}

afterEach(() => {
  for (const k of booted.splice(0)) {
    for (const p of k.processList()) p.exit();
    expect(k.checkInvariants()).toEqual([]);
    expect(checkGupInvariants(k.mmCore)).toEqual([]);
    const refs = new Map<number, number>();
    gupState(k.mmCore).addRefs(refs);
    expect(checkMmInvariants(k.mmCore, refs)).toEqual([]);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(k.vmstat().nr_foll_pin_released);
  }
});

const errno = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError) return e.code;
    throw e;
  }
  return 'no error';
};

describe('the device', () => {
  it('has the kernel’s ioctl numbers and struct layouts', () => {
    expect(GUP_TEST_LAYOUT.size).toBe(80);
    expect(GUP_TEST_LAYOUT.offsetOf('nr_pages_per_call')).toBe(32);
    expect(GUP_TEST_LAYOUT.offsetOf('which_pages')).toBe(44);
    expect(PIN_LONGTERM_TEST_LAYOUT.size).toBe(24);
    expect(GUP_FAST_BENCHMARK).toBe(0xc0506701);
    expect(PIN_FAST_BENCHMARK).toBe(0xc0506702);
    expect(PIN_LONGTERM_BENCHMARK).toBe(0xc0506703);
    expect(GUP_BASIC_TEST).toBe(0xc0506704);
    expect(PIN_BASIC_TEST).toBe(0xc0506705);
    expect(DUMP_USER_PAGES_TEST).toBe(0xc0506706);
    expect(PIN_LONGTERM_TEST_START).toBe(0x40186707);
    expect(PIN_LONGTERM_TEST_STOP).toBe(0x6708);
    expect(PIN_LONGTERM_TEST_READ).toBe(0x40086709);
    expect(_IOC_SIZE(PIN_LONGTERM_TEST_READ)).toBe(8);
  });

  it('is /sys/kernel/debug/gup_test, mode 0600 root: uid 1000 gets EACCES; registering twice is harmless', () => {
    const k = boot();
    expect(registerGupTest(k.devices, k.mmCore)).toBe(0);
    const inode = k.devices.vfs.lookup(GUP_TEST_PATH)!;
    expect(inode.mode & 0o7777).toBe(0o600);
    expect(inode.uid).toBe(0);
    const user = k.spawn({ uid: 1000 });
    expect(errno(() => user.open(GUP_TEST_PATH, O_RDWR))).toBe('EACCES');
    const root = k.spawn();
    const fd = root.open(GUP_TEST_PATH, O_RDWR);
    expect(errno(() => root.ioctl(fd, 0x1234, {}))).toBe('EINVAL');
    expect(errno(() => root.ioctl(fd, GUP_BASIC_TEST, 0))).toBe('EFAULT');
    root.close(fd);
    unregisterGupTest(k.devices);
    expect(errno(() => root.open(GUP_TEST_PATH, O_RDWR))).toBe('ENOENT');
    expect(registerGupTest(k.devices, k.mmCore)).toBe(0);
  });
});

interface GupTestArgs {
  get_delta_usec?: number;
  put_delta_usec?: number;
  addr: number;
  size: number;
  nr_pages_per_call: number;
  gup_flags?: number;
  test_flags?: number;
  which_pages?: Uint8Array;
}

function open(k: Kernel): { p: Process; fd: number } {
  const p = k.spawn();
  return { p, fd: p.open(GUP_TEST_PATH, O_RDWR) };
}

describe('benchmark and basic-test commands', () => {
  for (const [name, cmd, pin] of [
    ['GUP_FAST_BENCHMARK', GUP_FAST_BENCHMARK, false],
    ['PIN_FAST_BENCHMARK', PIN_FAST_BENCHMARK, true],
    ['PIN_LONGTERM_BENCHMARK', PIN_LONGTERM_BENCHMARK, true],
    ['GUP_BASIC_TEST', GUP_BASIC_TEST, false],
    ['PIN_BASIC_TEST', PIN_BASIC_TEST, true],
  ] as const) {
    it(`${name}: takes and releases 1024 pages, reporting the simulated time`, () => {
      const k = boot();
      const { p, fd } = open(k);
      const len = 1024 * PAGE_SIZE;
      const a = p.mmap(len);
      p.madvise(a, len, MADV_NOHUGEPAGE); // 4 KiB pages, as gup_test -T
      p.touch(a, len, { write: true });
      const args: GupTestArgs = { addr: a, size: len, nr_pages_per_call: 512, gup_flags: FOLL_WRITE };
      expect(p.ioctl(fd, cmd, args)).toBe(0);
      expect(args.size).toBe(len);
      const c = gupState(k.mmCore).costs;
      const get = cmd === GUP_FAST_BENCHMARK || cmd === PIN_FAST_BENCHMARK ? c.fastPerPage : c.slowPerPage;
      expect(args.get_delta_usec).toBe(Math.floor((1024 * get) / 1000));
      expect(args.put_delta_usec).toBe(Math.floor((1024 * (pin ? c.unpinPerPage : c.putPerPage)) / 1000));
      expect(k.vmstat().nr_foll_pin_acquired).toBe(pin ? 1024 : 0);
      expect(k.dmesg().filter((l) => l.includes('WARNING'))).toEqual([]);
      p.close(fd);
    });
  }

  it('reads and writes the struct at a user address; the size shrinks to what was taken', () => {
    const k = boot();
    const { p, fd } = open(k);
    const a = p.mmap(8 * PAGE_SIZE);
    p.munmap(a + 5 * PAGE_SIZE, 3 * PAGE_SIZE);
    const arg = p.mmap(PAGE_SIZE);
    p.write(
      arg,
      GUP_TEST_LAYOUT.encode({ addr: a, size: 8 * PAGE_SIZE, nr_pages_per_call: 2, gup_flags: FOLL_WRITE }),
    );
    expect(p.ioctl(fd, PIN_BASIC_TEST, arg)).toBe(0);
    const out = GUP_TEST_LAYOUT.decode(p.read(arg, GUP_TEST_LAYOUT.size));
    // Calls of 2 pages: [0,2) [2,4) [4,6) -> 1 (hole at 5), then stop: size covers the 3 calls.
    expect(out.size).toBe(6 * PAGE_SIZE);
    expect(out.addr).toBe(a);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(5);
    p.close(fd);
  });

  it('nr_pages_per_call 0 takes nothing; a range that wraps is EINVAL', () => {
    const k = boot();
    const { p, fd } = open(k);
    const a = p.mmap(PAGE_SIZE);
    const args: GupTestArgs = { addr: a, size: PAGE_SIZE, nr_pages_per_call: 0 };
    expect(p.ioctl(fd, GUP_BASIC_TEST, args)).toBe(0);
    expect(args.size).toBe(0);
    expect(
      errno(() =>
        p.ioctl(fd, GUP_BASIC_TEST, { addr: 2 ** 53 - 4096, size: 2 ** 64 - 2 ** 53, nr_pages_per_call: 1 }),
      ),
    ).toBe('EINVAL');
    p.close(fd);
  });

  it('PIN_LONGTERM_BENCHMARK migrates out of ZONE_MOVABLE and WARNs about nothing', () => {
    const k = boot({ memory: { nodes: [{ size: '512MiB', movable: '256MiB' }] } });
    const { p, fd } = open(k);
    const len = 64 * PAGE_SIZE;
    const a = p.mmap(len);
    p.touch(a, len, { write: true });
    expect(p.pagemap(a).zone).toBe('MOVABLE');
    const args: GupTestArgs = { addr: a, size: len, nr_pages_per_call: 64, gup_flags: FOLL_WRITE };
    expect(p.ioctl(fd, PIN_LONGTERM_BENCHMARK, args)).toBe(0);
    expect(p.pagemap(a).zone).toBe('DMA32');
    expect(k.vmstat().pgmigrate_success).toBe(64);
    expect(k.dmesg().filter((l) => l.includes('WARNING'))).toEqual([]);
    // PIN_BASIC_TEST of the zero page: a pin that is not counted, which gup_test WARNs about.
    const z = p.mmap(PAGE_SIZE);
    expect(p.ioctl(fd, PIN_BASIC_TEST, { addr: z, size: PAGE_SIZE, nr_pages_per_call: 1 })).toBe(0);
    expect(k.dmesg().some((l) => l.includes('pages[0] is NOT dma-pinned'))).toBe(true);
    p.close(fd);
  });

  it('hugetlb: GUP-fast and long-term pins of 2 MiB pages (gup_test -H)', () => {
    const k = boot({ memory: { nodes: [{ size: '512MiB' }], hugepages: { '2MiB': 4 } } });
    const { p, fd } = open(k);
    const len = 4 * 2 ** 21;
    const a = p.mmap(len, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    p.touch(a, len, { write: true });
    for (const cmd of [PIN_FAST_BENCHMARK, PIN_LONGTERM_BENCHMARK, GUP_FAST_BENCHMARK]) {
      const args: GupTestArgs = { addr: a, size: len, nr_pages_per_call: 512, gup_flags: FOLL_WRITE };
      expect(p.ioctl(fd, cmd, args)).toBe(0);
      expect(args.size).toBe(len);
      if (cmd !== GUP_FAST_BENCHMARK) {
        const c = gupState(k.mmCore).costs;
        expect(args.get_delta_usec).toBe(Math.floor((4 * c.hugetlbPinPer2M) / 1000));
      }
    }
    expect(k.vmstat().nr_foll_pin_acquired).toBe(2 * 2048);
    p.close(fd);
  });

  it('DUMP_USER_PAGES_TEST dumps the 1-based which_pages and zeroes the ones out of range', () => {
    const k = boot();
    const { p, fd } = open(k);
    const a = p.mmap(4 * PAGE_SIZE);
    p.touch(a, 4 * PAGE_SIZE, { write: true });
    for (const flags of [0, GUP_TEST_FLAG_DUMP_PAGES_USE_PIN]) {
      const args: GupTestArgs = {
        addr: a,
        size: 4 * PAGE_SIZE,
        nr_pages_per_call: 4,
        test_flags: flags,
        which_pages: encodeWhichPages([1, 3, 99]),
      };
      expect(p.ioctl(fd, DUMP_USER_PAGES_TEST, args)).toBe(0);
      expect(decodeWhichPages(args.which_pages!)).toEqual([1, 3, 0, 0, 0, 0, 0, 0]);
    }
    const log = k.dmesg();
    expect(log.some((l) => l.includes('ZEROING due to out of range: .which_pages[2]: 99'))).toBe(true);
    expect(log.filter((l) => l.includes('---- page #2, starting from user virt addr'))).toHaveLength(2);
    expect(
      log.filter((l) => l.includes(`pfn:0x${p.pagemap(a + 2 * PAGE_SIZE).pfn!.toString(16)}`)),
    ).toHaveLength(2);
    expect(log.some((l) => l.includes('page dumped because: gup_test: dump_pages() test'))).toBe(true);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(4);
    p.close(fd);
  });
});

describe('PIN_LONGTERM_TEST_START / STOP / READ', () => {
  it('refuses a second START, bad flags, unaligned ranges, size 0 (EINVAL) and a bad pointer (EFAULT)', () => {
    const k = boot();
    const { p, fd } = open(k);
    const a = p.mmap(4 * PAGE_SIZE);
    const start = (x: object | number) => errno(() => p.ioctl(fd, PIN_LONGTERM_TEST_START, x));
    expect(start({ addr: a, size: 0, flags: 0 })).toBe('EINVAL');
    expect(start({ addr: a + 1, size: PAGE_SIZE, flags: 0 })).toBe('EINVAL');
    expect(start({ addr: a, size: 100, flags: 0 })).toBe('EINVAL');
    expect(start({ addr: a, size: PAGE_SIZE, flags: 4 })).toBe('EINVAL');
    expect(start(8)).toBe('EFAULT');
    expect(errno(() => p.ioctl(fd, PIN_LONGTERM_TEST_READ, { user_addr: a }))).toBe('EINVAL'); // nothing pinned
    expect(start({ addr: a, size: 4 * PAGE_SIZE, flags: PIN_LONGTERM_TEST_FLAG_USE_WRITE })).toBe('no error');
    expect(start({ addr: a, size: 4 * PAGE_SIZE, flags: 0 })).toBe('EINVAL');
    expect(k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released).toBe(4);
    expect(p.ioctl(fd, PIN_LONGTERM_TEST_STOP)).toBe(0);
    expect(p.ioctl(fd, PIN_LONGTERM_TEST_STOP)).toBe(0);
    expect(k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released).toBe(0);
    // A range with a hole: the error, and nothing left pinned.
    p.munmap(a + 2 * PAGE_SIZE, PAGE_SIZE);
    expect(start({ addr: a, size: 4 * PAGE_SIZE, flags: PIN_LONGTERM_TEST_FLAG_USE_FAST })).toBe('EFAULT');
    expect(k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released).toBe(0);
    p.close(fd);
  });

  it('READ copies the pinned pages out; close releases the pins; the state is per open file', () => {
    const k = boot();
    const p = k.spawn();
    const fd1 = p.open(GUP_TEST_PATH, O_RDWR);
    const fd2 = p.open(GUP_TEST_PATH, O_RDWR);
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array([1, 2, 3]));
    p.write(a + PAGE_SIZE, new Uint8Array([4, 5, 6]));
    expect(p.ioctl(fd1, PIN_LONGTERM_TEST_START, { addr: a, size: 2 * PAGE_SIZE, flags: 0 })).toBe(0);
    expect(p.ioctl(fd2, PIN_LONGTERM_TEST_START, { addr: a, size: PAGE_SIZE, flags: 1 })).toBe(0);
    expect(gupState(k.mmCore).pins(p.pagemap(a).pfn!)).toBe(2);
    const dst = p.mmap(2 * PAGE_SIZE);
    const ptr = p.mmap(PAGE_SIZE);
    p.write(ptr, new Uint8Array(new BigUint64Array([BigInt(dst)]).buffer));
    expect(p.ioctl(fd1, PIN_LONGTERM_TEST_READ, ptr)).toBe(0);
    expect(Array.from(p.read(dst, 3))).toEqual([1, 2, 3]);
    expect(Array.from(p.read(dst + PAGE_SIZE, 3))).toEqual([4, 5, 6]);
    expect(errno(() => p.ioctl(fd1, PIN_LONGTERM_TEST_READ, { user_addr: 8 }))).toBe('EFAULT');
    p.close(fd1);
    expect(gupState(k.mmCore).pins(p.pagemap(a).pfn!)).toBe(1);
    p.exit(); // closes fd2: its pin goes too
    expect(k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released).toBe(0);
  });
});

describe('gup_longterm (tools/testing/selftests/mm/gup_longterm.c), ported', () => {
  type Backing =
    'anon private' | 'shmem (MAP_SHARED|MAP_ANONYMOUS)' | 'hugetlb 2MiB private' | 'hugetlb 2MiB shared';
  const backings: Array<[Backing, number, number]> = [
    ['anon private', PAGE_SIZE, MAP_PRIVATE | MAP_ANONYMOUS],
    ['shmem (MAP_SHARED|MAP_ANONYMOUS)', PAGE_SIZE, MAP_SHARED | MAP_ANONYMOUS],
    ['hugetlb 2MiB private', 2 ** 21, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB],
    ['hugetlb 2MiB shared', 2 ** 21, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB],
  ];
  const cases: Array<[string, boolean, boolean]> = [
    ['R/W longterm GUP pin', true, false],
    ['R/W longterm GUP-fast pin', true, true],
    ['R/O longterm GUP pin', false, false],
    ['R/O longterm GUP-fast pin', false, true],
  ];
  for (const [desc, rw, fast] of cases) {
    for (const [backing, size, flags] of backings) {
      // R/O pins and private mappings always work; R/W pins of shared memory work on tmpfs
      // and hugetlbfs, which is all svasim has: every case is expected to succeed.
      it(`${desc} in ${backing}`, () => {
        const k = boot({
          memory: { nodes: [{ size: '512MiB', movable: '128MiB' }], hugepages: { '2MiB': 2 } },
        });
        const { p, fd } = open(k);
        const mem = p.mmap(size, { prot: PROT_READ | PROT_WRITE, flags });
        p.write(mem, new Uint8Array(size)); // memset(mem, 0, size): GUP-fast can pin it directly
        p.write(mem, new Uint8Array([0x5a]));
        if (!rw) p.mprotect(mem, size, PROT_READ);
        const args = {
          addr: mem,
          size,
          flags: (fast ? PIN_LONGTERM_TEST_FLAG_USE_FAST : 0) | (rw ? PIN_LONGTERM_TEST_FLAG_USE_WRITE : 0),
        };
        expect(p.ioctl(fd, PIN_LONGTERM_TEST_START, args)).toBe(0);
        expect(p.pagemap(mem).pinned).toBe(true);
        expect(p.pagemap(mem).zone).not.toBe('MOVABLE');
        expect(checkGupInvariants(k.mmCore)).toEqual([]);
        expect(k.checkInvariants()).toEqual([]);
        expect(p.read(mem, 1)[0]).toBe(0x5a);
        expect(p.ioctl(fd, PIN_LONGTERM_TEST_STOP)).toBe(0);
        expect(p.pagemap(mem).pinned).toBe(false);
        p.munmap(mem, size);
        p.close(fd);
      });
    }
  }

  it('a R/O long-term pin of a COW-shared private page pins the process’s own copy', () => {
    const k = boot();
    const { p, fd } = open(k);
    const mem = p.mmap(PAGE_SIZE);
    p.write(mem, new Uint8Array([0x77]));
    const child = p.fork();
    expect(p.ioctl(fd, PIN_LONGTERM_TEST_START, { addr: mem, size: PAGE_SIZE, flags: 0 })).toBe(0);
    expect(p.pagemap(mem).pfn).not.toBe(child.pagemap(mem).pfn);
    p.write(mem, new Uint8Array([0x78])); // lands in the pinned page: READ sees it
    const dst = p.mmap(PAGE_SIZE);
    expect(p.ioctl(fd, PIN_LONGTERM_TEST_READ, { user_addr: dst })).toBe(0);
    expect(p.read(dst, 1)[0]).toBe(0x78);
    expect(child.read(mem, 1)[0]).toBe(0x77);
    child.exit();
    p.close(fd);
  });

  it('FOLL flags from user space go through unchanged (gup_flags of struct gup_test)', () => {
    const k = boot();
    const { p, fd } = open(k);
    const a = p.mmap(PAGE_SIZE);
    // FOLL_LONGTERM without FOLL_PIN: get_user_pages refuses (-EINVAL), which ends the loop.
    const args: GupTestArgs = { addr: a, size: PAGE_SIZE, nr_pages_per_call: 1, gup_flags: FOLL_LONGTERM };
    expect(p.ioctl(fd, GUP_BASIC_TEST, args)).toBe(0);
    expect(args.size).toBe(0);
    expect(ERRNO.EINVAL).toBe(22);
    p.close(fd);
  });
});
