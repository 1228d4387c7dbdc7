import { afterEach, describe, expect, it } from '@jest/globals';
import {
  MISC_DYNAMIC_MINOR,
  O_RDWR,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  SyscallError,
  UACCE_QFRT_MMIO,
  MAP_SHARED,
  PROT_WRITE,
  createKernel,
  dmaInflight,
  gupState,
  type Kernel,
  type KernelOptions,
  type Process,
} from '@svasim/kernel';
import { memcpyAccelPlugin } from '@svasim/testkit';
import {
  Mempinfd,
  MEM_CMD_PIN,
  MEM_CMD_UNPIN,
  MEM_PIN_ADDRESS,
  __NR_mempinfd,
  mempinfdPlugin,
} from './index';

const KiB = 1024;
const P = PAGE_SIZE;
const U64_MAX = (1n << 64n) - 1n;

const kernels: Kernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel({ memory: { nodes: [{ size: '256MiB' }] }, plugins: [mempinfdPlugin], ...opts });
  kernels.push(k);
  return k;
}

/** The errno name a call throws, or 'ok'. */
function errOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof SyscallError) return e.code;
    throw e;
  }
}

function pin(p: Process, fd: number, addr: number | bigint, size: number | bigint): string {
  return errOf(() => p.ioctl(fd, MEM_CMD_PIN, { addr, size }));
}

function unpin(p: Process, fd: number, addr: number | bigint, size: number | bigint): string {
  return errOf(() => p.ioctl(fd, MEM_CMD_UNPIN, { addr, size }));
}

/** A struct mem_pin_address in the process's memory, exact to 64 bits; returns its address. */
function structAt(p: Process, addr: bigint, size: bigint, at?: number): number {
  const where = at ?? p.mmap(P);
  const b = new Uint8Array(MEM_PIN_ADDRESS.size);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, addr, true);
  v.setBigUint64(8, size, true);
  p.write(where, b);
  return where;
}

/** Pages GUP holds pinned, machine-wide. */
const pinnedPages = (k: Kernel) => gupState(k.mmCore).pinnedPages;

describe('mempinfd()', () => {
  it('returns a close-on-exec anonymous fd; the syscall has the patch number 442; ioctls are _IOW', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    expect(p.files.get(fd)!.path).toBe('anon_inode:[mempinfd]');
    expect(p.files.isCloseOnExec(fd)).toBe(true);
    expect(__NR_mempinfd).toBe(442);
    expect(k.syscalls.nrOf('mempinfd')).toBe(442);
    const fd2 = k.syscalls.invokeNr(p, 442);
    expect(fd2).toBe(fd + 1);
    expect(MEM_CMD_PIN).toBe(0x40104d00);
    expect(MEM_CMD_UNPIN).toBe(0x40104d01);
    expect(MEM_PIN_ADDRESS.size).toBe(16);
    expect(k.plugin<Mempinfd>('pin-mempinfd').files()).toHaveLength(2);
    p.close(fd);
    expect(k.plugin<Mempinfd>('pin-mempinfd').files()).toHaveLength(1);
    expect(k.pinStrategy().name).toBe('mempinfd');
  });

  it('is removed when the plugin is unrealized; open fds keep working until closed', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const a = p.mmap(4 * P);
    expect(pin(p, fd, a, 4 * P)).toBe('ok');
    k.shutdown();
    expect(errOf(() => p.syscall('mempinfd'))).toBe('ENOSYS');
    expect(unpin(p, fd, a, 4 * P)).toBe('ok');
    expect(pin(p, fd, a, P)).toBe('ok');
    p.exit();
    expect(pinnedPages(k)).toBe(0);
  });

  it('fails with EMFILE when no fd is free, creating nothing', () => {
    const k = boot();
    const p = k.spawn({ rlimits: { nofile: 1 } });
    p.syscall('mempinfd');
    expect(errOf(() => p.syscall('mempinfd'))).toBe('EMFILE');
    expect(k.plugin<Mempinfd>('pin-mempinfd').files()).toHaveLength(1);
  });
});

describe('MEM_CMD_PIN / MEM_CMD_UNPIN', () => {
  it('pins long-term for writing: pages faulted in and pinned, VmPin charged; unpin undoes all', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const a = p.mmap(16 * P);
    const before = k.vmstat();
    expect(pin(p, fd, a, 16 * P)).toBe('ok');
    for (let i = 0; i < 16; i++) {
      const e = p.pagemap(a + i * P);
      expect(e).toMatchObject({ present: true, pinned: true });
      expect(e.zeroPage).toBeUndefined(); // FOLL_WRITE: a real page, never the zero page
      expect(gupState(k.mmCore).longtermPins(e.pfn!)).toBe(1);
    }
    expect(p.status().vmPin).toBe(16 * P);
    expect(pinnedPages(k)).toBe(16);
    expect(k.plugin<Mempinfd>('pin-mempinfd').files()[0].entries()).toEqual([{ addr: a, nrPages: 16 }]);
    expect(k.checkInvariants()).toEqual([]);
    expect(unpin(p, fd, a, 16 * P)).toBe('ok');
    for (let i = 0; i < 16; i++) expect(p.pagemap(a + i * P).pinned).toBe(false);
    expect(p.status().vmPin).toBe(0);
    expect(pinnedPages(k)).toBe(0);
    const after = k.vmstat();
    expect(after.nr_foll_pin_acquired - before.nr_foll_pin_acquired).toBe(
      after.nr_foll_pin_released - before.nr_foll_pin_released,
    );
  });

  it('reads the struct from user memory with copy_from_user', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const a = p.mmap(2 * P);
    const s = structAt(p, BigInt(a), BigInt(2 * P));
    expect(p.ioctl(fd, MEM_CMD_PIN, s)).toBe(0);
    expect(p.status().vmPin).toBe(2 * P);
    expect(p.ioctl(fd, MEM_CMD_UNPIN, s)).toBe(0);
    expect(p.status().vmPin).toBe(0);
  });

  it('keeps the data and moves pages out of ZONE_MOVABLE before pinning (FOLL_LONGTERM)', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB', movable: '64MiB' }] } });
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const a = p.mmap(32 * P);
    const data = new Uint8Array(32 * P).map((_, i) => (i * 7 + 3) & 0xff);
    p.write(a, data);
    expect(p.pagemap(a).zone).toBe('MOVABLE');
    const oldPfn = p.pagemap(a).pfn;
    expect(pin(p, fd, a, 32 * P)).toBe('ok');
    for (let i = 0; i < 32; i++) {
      const e = p.pagemap(a + i * P);
      expect(e.pinned).toBe(true);
      expect(e.zone).not.toBe('MOVABLE');
      expect(e.migratetype).not.toBe('CMA');
    }
    expect(p.pagemap(a).pfn).not.toBe(oldPfn);
    expect(Buffer.from(p.read(a, 32 * P)).equals(Buffer.from(data))).toBe(true);
    expect(gupState(k.mmCore).stats.longtermMigrated).toBeGreaterThanOrEqual(32);
    // Pinned pages block their own migration: compaction leaves them where they are.
    const pfns = Array.from({ length: 32 }, (_, i) => p.pagemap(a + i * P).pfn);
    k.compactMemory();
    expect(Array.from({ length: 32 }, (_, i) => p.pagemap(a + i * P).pfn)).toEqual(pfns);
  });

  it('moves pages out of a CMA area before pinning (FOLL_LONGTERM)', () => {
    const k = boot({ memory: { nodes: [{ size: '128MiB', cma: '64MiB' }] } });
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const n = 80 << 20; // more than ZONE_NORMAL outside CMA: some pages land in the CMA area
    const a = p.mmap(n);
    p.touch(a, n, { write: true });
    let first = -1;
    for (let i = 0; i < n / P && first < 0; i++) if (p.pagemap(a + i * P).migratetype === 'CMA') first = i;
    expect(first).toBeGreaterThanOrEqual(0);
    const at = a + first * P;
    const data = new Uint8Array(16 * P).map((_, i) => (i * 5 + 11) & 0xff);
    p.write(at, data);
    expect(pin(p, fd, at, 16 * P)).toBe('ok');
    for (let i = 0; i < 16; i++) {
      const e = p.pagemap(at + i * P);
      expect(e.pinned).toBe(true);
      expect(e.migratetype).not.toBe('CMA');
    }
    expect(Buffer.from(p.read(at, 16 * P)).equals(Buffer.from(data))).toBe(true);
    p.exit();
  });

  it('pins huge pages (a THP) by their subpages', () => {
    const k = boot({ sysctl: { transparent_hugepage: 'always' } });
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const raw = p.mmap(4 << 20);
    const a = Math.ceil(raw / (2 << 20)) * (2 << 20);
    p.touch(a, 2 << 20, { write: true });
    expect(p.pagemap(a).huge).toBe('2MiB');
    expect(pin(p, fd, a + 5 * P, 3 * P)).toBe('ok');
    expect(p.pagemap(a + 6 * P).pinned).toBe(true);
    expect(p.status().vmPin).toBe(3 * P);
    expect(k.checkInvariants()).toEqual([]);
    p.close(fd);
    expect(p.pagemap(a + 6 * P).pinned).toBe(false);
  });

  describe('unaligned ranges: the pages the range touches', () => {
    it('one byte pins its page; a range across a boundary pins both pages', () => {
      const k = boot();
      const p = k.spawn();
      const fd = p.syscall('mempinfd');
      const a = p.mmap(8 * P);
      expect(pin(p, fd, a + 100, 1)).toBe('ok');
      expect(p.status().vmPin).toBe(P);
      expect(pin(p, fd, a + 2 * P + 4000, 200)).toBe('ok');
      expect(p.status().vmPin).toBe(3 * P);
      expect(p.pagemap(a + 3 * P).pinned).toBe(true);
      expect(p.pagemap(a + 4 * P).pinned).toBe(false);
      // The unpin names the same pages: same first page, same count, offsets may differ.
      expect(unpin(p, fd, a + 2 * P + 4000, 50)).toBe('EINVAL'); // one page, not two
      expect(unpin(p, fd, a + 2 * P, 2 * P)).toBe('ok');
      expect(unpin(p, fd, a, P)).toBe('ok');
      expect(p.status().vmPin).toBe(0);
    });
  });

  describe('errno table', () => {
    function setup(opts: Parameters<Kernel['spawn']>[0] = {}) {
      const k = boot();
      const p = k.spawn(opts);
      const fd = p.syscall('mempinfd');
      const a = p.mmap(16 * P);
      return { k, p, fd, a };
    }

    it('EINVAL: zero size (pin and unpin)', () => {
      const { p, fd, a } = setup();
      expect(pin(p, fd, a, 0)).toBe('EINVAL');
      expect(pin(p, fd, 0, 0)).toBe('EINVAL');
      expect(pin(p, fd, a, P)).toBe('ok');
      expect(unpin(p, fd, a, 0)).toBe('EINVAL');
      expect(p.status().vmPin).toBe(P);
    });

    it('EINVAL: a range that wraps the 64-bit address space (exact 64-bit values)', () => {
      const { p, fd } = setup();
      const top = (1n << 64n) - BigInt(P);
      expect(pin(p, fd, top, BigInt(2 * P))).toBe('EINVAL');
      expect(pin(p, fd, U64_MAX, 1n)).toBe('EINVAL'); // end is exactly 2^64
      expect(pin(p, fd, U64_MAX, U64_MAX)).toBe('EINVAL');
      expect(pin(p, fd, top + 1n, BigInt(P - 10))).toBe('EINVAL'); // PAGE_ALIGN(end) wraps
      expect(unpin(p, fd, top, BigInt(2 * P))).toBe('EINVAL');
      // The same through copy_from_user: the struct's 64-bit fields are read exactly.
      const s = structAt(p, top, BigInt(2 * P));
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, s))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, structAt(p, U64_MAX, 1n, s)))).toBe('EINVAL');
      expect(p.status().vmPin).toBe(0);
    });

    it('EFAULT: beyond user space without wrapping', () => {
      const { p, fd } = setup();
      expect(pin(p, fd, 2 ** 47, P)).toBe('EFAULT');
      expect(pin(p, fd, 2 ** 47 - P, 2 * P)).toBe('EFAULT');
      expect(pin(p, fd, 1n << 60n, 1n << 60n)).toBe('EFAULT');
    });

    it('EFAULT: unmapped memory, and a range running into a hole pins nothing', () => {
      const { k, p, fd, a } = setup();
      expect(pin(p, fd, 0x10000, P)).toBe('EFAULT');
      p.munmap(a + 8 * P, 8 * P);
      const before = k.vmstat();
      expect(pin(p, fd, a, 16 * P)).toBe('EFAULT');
      for (let i = 0; i < 8; i++) expect(p.pagemap(a + i * P).pinned).toBe(false);
      expect(p.status().vmPin).toBe(0);
      expect(pinnedPages(k)).toBe(0);
      const after = k.vmstat();
      expect(after.nr_foll_pin_acquired - before.nr_foll_pin_acquired).toBeGreaterThan(0);
      expect(after.nr_foll_pin_acquired - before.nr_foll_pin_acquired).toBe(
        after.nr_foll_pin_released - before.nr_foll_pin_released,
      );
      // The range is free for a correct pin afterwards.
      expect(pin(p, fd, a, 8 * P)).toBe('ok');
    });

    it('EFAULT: a failure in a later batch undoes the pins of the earlier ones', () => {
      const { k, p, fd } = setup({ rlimits: { memlock: Infinity } });
      const a = p.mmap(1100 * P);
      p.munmap(a + 1000 * P, P); // batches are 512 pages: the hole is in the second
      expect(pin(p, fd, a, 1100 * P)).toBe('EFAULT');
      expect(p.pagemap(a).pinned).toBe(false);
      expect(p.pagemap(a + 600 * P).pinned).toBe(false);
      expect(pinnedPages(k)).toBe(0);
      expect(p.status().vmPin).toBe(0);
      expect(pin(p, fd, a, 1000 * P)).toBe('ok');
      expect(p.status().vmPin).toBe(1000 * P);
    });

    it('EFAULT: read-only and PROT_NONE mappings (FOLL_WRITE without FOLL_FORCE)', () => {
      const { p, fd } = setup();
      const ro = p.mmap(2 * P, { prot: PROT_READ });
      const none = p.mmap(2 * P, { prot: PROT_NONE });
      expect(pin(p, fd, ro, 2 * P)).toBe('EFAULT');
      expect(pin(p, fd, none, 2 * P)).toBe('EFAULT');
      expect(p.status().vmPin).toBe(0);
    });

    it('EFAULT: a bad struct address (copy_from_user)', () => {
      const { p, fd, a } = setup();
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, 0x10000))).toBe('EFAULT'); // unmapped
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, 0))).toBe('EFAULT'); // NULL
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, -1))).toBe('EFAULT');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN))).toBe('EFAULT');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, null))).toBe('EFAULT');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_UNPIN, 'x'))).toBe('EFAULT');
      // A struct whose second half lies in an unmapped page.
      const two = p.mmap(2 * P);
      p.munmap(two + P, P);
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, two + P - 8))).toBe('EFAULT');
      // A struct in unreadable memory.
      const hidden = structAt(p, BigInt(a), BigInt(P));
      p.mprotect(hidden, P, PROT_NONE);
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, hidden))).toBe('EFAULT');
      expect(p.status().vmPin).toBe(0);
    });

    it('EINVAL: an argument object C could not express', () => {
      const { p, fd, a } = setup();
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, { addr: a, size: P, flags: 1 }))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, { addr: a + 0.5, size: P }))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, { addr: -P, size: P }))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, { addr: 1n << 64n, size: 1 }))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, { addr: a, size: '4096' }))).toBe('EINVAL');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, { addr: a }))).toBe('EINVAL'); // size 0
    });

    it('ENOTTY: another command on a mempinfd fd, and a foreign fd without ioctls', () => {
      const { k, p, fd, a } = setup();
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN + 2, { addr: a, size: P }))).toBe('ENOTTY');
      expect(errOf(() => p.ioctl(fd, 0x40105702, { addr: a, size: P }))).toBe('ENOTTY'); // UACCE_CMD_PIN
      expect(errOf(() => p.ioctl(fd, 0x5700))).toBe('ENOTTY'); // the command is checked first
      // A device with no ioctl at all (a /dev/null-like misc device).
      expect(k.miscRegister({ minor: MISC_DYNAMIC_MINOR, name: 'null', fops: {}, mode: 0o666 })).toBe(0);
      const other = p.open('/dev/null', O_RDWR);
      expect(errOf(() => p.ioctl(other, MEM_CMD_PIN, { addr: a, size: P }))).toBe('ENOTTY');
      expect(p.status().vmPin).toBe(0);
    });

    it('EBADF: not an fd, or after close', () => {
      const { p, fd, a } = setup();
      expect(pin(p, fd, a, P)).toBe('ok');
      p.close(fd);
      expect(p.status().vmPin).toBe(0);
      expect(pin(p, fd, a, P)).toBe('EBADF');
      expect(unpin(p, fd, a, P)).toBe('EBADF');
      expect(pin(p, 99, a, P)).toBe('EBADF');
      expect(pin(p, -1, a, P)).toBe('EBADF');
    });

    it('EBUSY: a second pin starting in the same page; the first stays as it was', () => {
      const { p, fd, a } = setup();
      expect(pin(p, fd, a, 4 * P)).toBe('ok');
      expect(pin(p, fd, a, 4 * P)).toBe('EBUSY');
      expect(pin(p, fd, a + 8, 2 * P)).toBe('EBUSY'); // another offset in the same page
      expect(pin(p, fd, a, P)).toBe('EBUSY');
      expect(p.status().vmPin).toBe(4 * P);
      expect(unpin(p, fd, a, 4 * P)).toBe('ok');
      expect(pin(p, fd, a, P)).toBe('ok');
    });

    it('overlapping ranges from other starts are allowed, pinned and charged each', () => {
      const { k, p, fd, a } = setup();
      expect(pin(p, fd, a, 4 * P)).toBe('ok');
      expect(pin(p, fd, a + P, 2 * P)).toBe('ok');
      expect(pin(p, fd, a + 3 * P, 4 * P)).toBe('ok');
      expect(p.status().vmPin).toBe(10 * P);
      const st = gupState(k.mmCore);
      expect(st.pins(p.pagemap(a).pfn!)).toBe(1);
      expect(st.pins(p.pagemap(a + P).pfn!)).toBe(2);
      expect(st.pins(p.pagemap(a + 3 * P).pfn!)).toBe(2);
      expect(unpin(p, fd, a, 4 * P)).toBe('ok');
      expect(p.pagemap(a + P).pinned).toBe(true); // still held by the second range
      expect(p.pagemap(a).pinned).toBe(false);
      expect(p.status().vmPin).toBe(6 * P);
    });

    it('ENODEV: unpinning what no range starts at (never pinned, twice, inside a range)', () => {
      const { p, fd, a } = setup();
      expect(unpin(p, fd, a, P)).toBe('ENODEV');
      expect(pin(p, fd, a, 4 * P)).toBe('ok');
      expect(unpin(p, fd, a + P, 3 * P)).toBe('ENODEV');
      expect(unpin(p, fd, a, 4 * P)).toBe('ok');
      expect(unpin(p, fd, a, 4 * P)).toBe('ENODEV');
    });

    it('EINVAL: unpin with another size; the range stays pinned', () => {
      const { p, fd, a } = setup();
      expect(pin(p, fd, a, 4 * P)).toBe('ok');
      expect(unpin(p, fd, a, 3 * P)).toBe('EINVAL');
      expect(unpin(p, fd, a, 5 * P)).toBe('EINVAL');
      expect(p.pagemap(a + 3 * P).pinned).toBe(true);
      expect(p.status().vmPin).toBe(4 * P);
      expect(unpin(p, fd, a, 4 * P - 1)).toBe('ok'); // the same four pages
    });

    it('EPERM: a caller that cannot mlock (RLIMIT_MEMLOCK 0, no CAP_IPC_LOCK); unpin needs nothing', () => {
      const { p, fd, a } = setup({ uid: 1000, rlimits: { memlock: 0 } });
      expect(pin(p, fd, a, P)).toBe('EPERM');
      expect(p.status().vmPin).toBe(0);
      // Input errors come first, as in the patch and in ib_umem_get.
      expect(pin(p, fd, a, 0)).toBe('EINVAL');
      expect(unpin(p, fd, a, P)).toBe('ENODEV');
      // CAP_IPC_LOCK alone is enough.
      const k2 = boot();
      const q = k2.spawn({ uid: 1000, caps: ['CAP_IPC_LOCK'], rlimits: { memlock: 0 } });
      const qfd = q.syscall('mempinfd');
      const b = q.mmap(32 * P);
      expect(pin(q, qfd, b, 32 * P)).toBe('ok');
      expect(q.status().vmPin).toBe(32 * P); // exempt from the limit, still counted
    });

    it('ENOMEM: pinned_vm over RLIMIT_MEMLOCK (overlaps count twice); nothing is left behind', () => {
      const { k, p, fd, a } = setup({ uid: 1000, rlimits: { memlock: 64 * KiB } });
      expect(pin(p, fd, a, 12 * P)).toBe('ok');
      expect(pin(p, fd, a + 12 * P, 4 * P)).toBe('ok'); // exactly at the limit
      expect(pin(p, fd, a + P, P)).toBe('ENOMEM'); // an overlap is charged again
      expect(p.status().vmPin).toBe(64 * KiB);
      expect(pinnedPages(k)).toBe(16);
      expect(unpin(p, fd, a + 12 * P, 4 * P)).toBe('ok');
      expect(pin(p, fd, a + P, 4 * P)).toBe('ok');
      expect(pin(p, fd, a + 2 * P, P)).toBe('ENOMEM');
      expect(p.status().vmPin).toBe(64 * KiB);
    });

    it('CAP_IPC_LOCK (and root) are exempt from RLIMIT_MEMLOCK', () => {
      const k = boot();
      for (const opts of [
        { uid: 1000, caps: ['CAP_IPC_LOCK'], rlimits: { memlock: 64 * KiB } },
        { uid: 0, rlimits: { memlock: 64 * KiB } },
        { uid: 1000, rlimits: { memlock: Infinity } },
      ]) {
        const p = k.spawn(opts);
        const fd = p.syscall('mempinfd');
        const a = p.mmap(64 * P);
        expect(pin(p, fd, a, 64 * P)).toBe('ok');
        expect(p.status().vmPin).toBe(256 * KiB);
        p.exit();
      }
    });

    it('EIO: an fd used from another address space (a forked child); the parent keeps its pins', () => {
      const { k, p, fd, a } = setup();
      expect(pin(p, fd, a, 4 * P)).toBe('ok');
      const child = p.fork();
      const mine = child.mmap(P);
      expect(pin(child, fd, mine, P)).toBe('EIO');
      expect(unpin(child, fd, a, 4 * P)).toBe('EIO');
      // The fd is shared: the pins go when its last holder closes it.
      p.close(fd);
      expect(p.status().vmPin).toBe(4 * P);
      expect(p.pagemap(a).pinned).toBe(true);
      child.exit();
      expect(p.status().vmPin).toBe(0);
      expect(p.pagemap(a).pinned).toBe(false);
      expect(pinnedPages(k)).toBe(0);
    });

    it('EFAULT: device memory (a uacce MMIO mapping, VM_IO)', () => {
      const k = boot({ plugins: [memcpyAccelPlugin, mempinfdPlugin] });
      const p = k.spawn();
      const fd = p.syscall('mempinfd');
      const dev = p.open('/dev/memcpy_accel-0', O_RDWR);
      const mmio = p.mmap(P, {
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_SHARED,
        fd: dev,
        offset: UACCE_QFRT_MMIO * P,
      });
      expect(pin(p, fd, mmio, P)).toBe('EFAULT');
      // A foreign fd that has ioctls of its own answers for itself: uacce says -EINVAL.
      expect(errOf(() => p.ioctl(dev, MEM_CMD_PIN, { addr: mmio, size: P }))).toBe('EINVAL');
    });
  });

  describe('close and exit', () => {
    it('close unpins and un-accounts every range', () => {
      const k = boot();
      const p = k.spawn();
      const fd = p.syscall('mempinfd');
      const a = p.mmap(64 * P);
      expect(pin(p, fd, a, 16 * P)).toBe('ok');
      expect(pin(p, fd, a + 8 * P, 16 * P)).toBe('ok');
      expect(pin(p, fd, a + 40 * P + 7, 100)).toBe('ok');
      expect(p.status().vmPin).toBe(33 * P);
      const fd2 = p.syscall('mempinfd');
      expect(pin(p, fd2, a, 2 * P)).toBe('ok'); // another fd's registry is separate
      p.close(fd);
      expect(p.status().vmPin).toBe(2 * P);
      expect(pinnedPages(k)).toBe(2);
      for (let i = 2; i < 64; i++) expect(p.pagemap(a + i * P).pinned).toBe(false);
      p.close(fd2);
      expect(p.status().vmPin).toBe(0);
      expect(pinnedPages(k)).toBe(0);
      const v = k.vmstat();
      expect(v.nr_foll_pin_acquired).toBe(v.nr_foll_pin_released);
    });

    it('exit unpins everything and frees the memory', () => {
      const k = boot();
      const free0 = k.vmstat().nr_free_pages;
      const p = k.spawn();
      const fd = p.syscall('mempinfd');
      const a = p.mmap(256 * P);
      expect(pin(p, fd, a, 256 * P)).toBe('ok');
      expect(pin(p, fd, a + 10 * P, 10 * P)).toBe('ok');
      p.exit();
      expect(pinnedPages(k)).toBe(0);
      expect(k.plugin<Mempinfd>('pin-mempinfd').files()).toHaveLength(0);
      expect(k.vmstat().nr_free_pages).toBe(free0);
    });
  });

  it('the invariant check catches a registry out of step with GUP', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const a = p.mmap(4 * P);
    expect(pin(p, fd, a, 4 * P)).toBe('ok');
    const reg = k.plugin<Mempinfd>('pin-mempinfd').files()[0];
    reg.pinnedPages += 1;
    expect(k.checkInvariants().join('\n')).toMatch(
      /pin-mempinfd: mempinfd: ranges hold 4 pages, pinnedPages 5/,
    );
    reg.pinnedPages -= 1;
    p.exit();
  });

  it('user input cannot flood dmesg', () => {
    const k = boot();
    const p = k.spawn({ uid: 1000, rlimits: { memlock: 16 * KiB } });
    const fd = p.syscall('mempinfd');
    const a = p.mmap(8 * P);
    expect(pin(p, fd, a, P)).toBe('ok');
    const lines = k.dmesg().length;
    const ro = p.mmap(P, { prot: PROT_READ });
    for (let i = 0; i < 1000; i++) {
      expect(pin(p, fd, 0x10000 + i * P, P)).toBe('EFAULT');
      expect(pin(p, fd, ro, P)).toBe('EFAULT');
      expect(pin(p, fd, a, 0)).toBe('EINVAL');
      expect(pin(p, fd, a, P)).toBe('EBUSY');
      expect(pin(p, fd, a + P, 8 * P)).toBe('ENOMEM');
      expect(unpin(p, fd, a + P, P)).toBe('ENODEV');
      expect(errOf(() => p.ioctl(fd, MEM_CMD_PIN, 0x10000))).toBe('EFAULT');
      expect(errOf(() => p.ioctl(fd, 0x1234))).toBe('ENOTTY');
    }
    expect(k.dmesg().length - lines).toBe(0);
  });
});

describe('DMA in flight at unpin', () => {
  it('is counted (vmstat unpin_dma_inflight), traced and logged rate-limited, and never stops the unpin', () => {
    const k = boot();
    const p = k.spawn();
    const fd = p.syscall('mempinfd');
    const a = p.mmap(4 * P);
    expect(pin(p, fd, a, 4 * P)).toBe('ok');
    // Stand in for a device: DMA in flight on two of the four pages.
    const dma = dmaInflight(k.mmCore);
    const pfn1 = p.pagemap(a + P).pfn!;
    const pfn3 = p.pagemap(a + 3 * P).pfn!;
    dma.begin(pfn1);
    dma.begin(pfn3);
    const events: unknown[] = [];
    k.trace.on('gup_unpin_dma_inflight', (e) => events.push(e));
    const lines = k.dmesg().length;
    expect(unpin(p, fd, a, 4 * P)).toBe('ok');
    expect(p.pagemap(a + P).pinned).toBe(false);
    expect(k.vmstat().unpin_dma_inflight).toBe(2);
    expect(events).toEqual([
      { owner: 'mempinfd', pid: p.pid, addr: a, nrPages: 4, busyPages: 2, pfn: Math.min(pfn1, pfn3) },
    ]);
    expect(k.dmesg().slice(lines).join('\n')).toMatch(
      /mempinfd: pid \d+ unpinned .* DMA in flight on 2 of them/,
    );
    // A thousand of them: every one counted and traced, the log bounded.
    const before = k.dmesg().length;
    for (let i = 0; i < 1000; i++) {
      expect(pin(p, fd, a, 2 * P)).toBe('ok');
      expect(unpin(p, fd, a, 2 * P)).toBe('ok');
    }
    expect(k.vmstat().unpin_dma_inflight).toBe(1002);
    expect(events).toHaveLength(1001);
    expect(k.dmesg().length - before).toBeLessThanOrEqual(10);
    // close with DMA in flight reports too.
    expect(pin(p, fd, a + 3 * P, P)).toBe('ok');
    p.close(fd);
    expect(k.vmstat().unpin_dma_inflight).toBe(1003);
    dma.end(pfn1);
    dma.end(pfn3);
    expect(dma.total).toBe(0);
  });
});
