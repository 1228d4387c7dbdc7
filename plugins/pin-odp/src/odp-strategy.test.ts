/**
 * The 'odp' strategy without a device: registration and prefetch (what is faulted in, writable
 * or not, what is pinned or charged: nothing), the errno table of its system calls, overlapping
 * registrations, the snapshot of large registrations, the notifier's bookkeeping, exit without
 * release, and the invariant check catching a stale mirror.
 */
import { describe, expect, it } from '@jest/globals';
import {
  ERRNO,
  HMM_PFN_VALID,
  MAP_SHARED,
  O_RDWR,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  UACCE_QFRT_MMIO,
  createKernel,
  makeHmmPfn,
  mmHasNotifiers,
  type Kernel,
  type KernelOptions,
  type PinTarget,
  type Process,
} from '@svasim/kernel';
import { memcpyAccelPlugin } from '@svasim/testkit';
import {
  ODP_ADVISE_MR_SYSCALL,
  ODP_ADVISE_PREFETCH,
  ODP_ADVISE_PREFETCH_NO_FAULT,
  ODP_DEREG_MR_SYSCALL,
  ODP_PREFETCH_MAX_BYTES,
  ODP_REG_MR_SYSCALL,
  createOdpStrategy,
  odpStrategy,
  type OdpStrategy,
} from './index';

const KiB = 1024;
const MiB = 1024 * KiB;

const errno = (code: keyof typeof ERRNO, syscall?: string) =>
  expect.objectContaining(syscall ? { code, syscall } : { code });

function boot(opts: KernelOptions = {}, plugin = odpStrategy): { k: Kernel; s: OdpStrategy } {
  const k = createKernel({
    memory: { nodes: [{ size: '256MiB' }] },
    ...opts,
    sysctl: { transparent_hugepage: 'never', ...opts.sysctl },
    plugins: [...(opts.plugins ?? []), plugin],
  });
  const s = k.plugin<OdpStrategy>('pin-odp');
  expect(k.pinStrategy()).toBe(s);
  return { k, s };
}

const target = (k: Kernel, proc: Process): PinTarget => ({ kernel: k, proc, fd: -1, device: '' });
const pinsHeld = (k: Kernel) => {
  const v = k.vmstat();
  return (v.nr_foll_pin_acquired ?? 0) - (v.nr_foll_pin_released ?? 0);
};
const pages = (p: Process, addr: number, n: number) =>
  Array.from({ length: n }, (_, i) => p.pagemap(addr + i * PAGE_SIZE));

describe('odp: prepare registers and prefetches, pins nothing, charges nothing', () => {
  it('faults the pages in writable, mirrors them, takes no pin and no RLIMIT_MEMLOCK charge', () => {
    const { k, s } = boot();
    // An ordinary user who may not mlock at all: ODP needs no such right (ib_umem_get's EPERM is
    // for pinned registrations only).
    const p = k.spawn({ uid: 1000, rlimits: { memlock: 0 } });
    const a = p.mmap(16 * PAGE_SIZE);
    p.write(a + 3 * PAGE_SIZE, new Uint8Array([7]));
    const pins0 = pinsHeld(k);
    const acquired0 = k.vmstat().nr_foll_pin_acquired ?? 0;
    s.prepare(target(k, p), a + 100, 8 * PAGE_SIZE); // pages 0..8
    const pm = pages(p, a, 10);
    expect(pm.slice(0, 9).every((e) => e.present && !e.zeroPage && !e.pinned && !e.mlocked)).toBe(true);
    expect(pm[9].present).toBe(false);
    expect(pinsHeld(k)).toBe(pins0);
    expect(k.vmstat().nr_foll_pin_acquired ?? 0).toBe(acquired0);
    expect(p.status()).toMatchObject({ vmLck: 0, vmPin: 0 });
    const [mr] = s.regions(p.mm);
    expect(mr).toMatchObject({ start: a, end: a + 9 * PAGE_SIZE, nrPages: 9 });
    expect(mr.validPages()).toBe(9);
    for (let i = 0; i < 9; i++) expect(mr.mirroredPfn(a + i * PAGE_SIZE)).toBe(pm[i].pfn);
    // The snapshot at registration found the one page already there; the prefetch made 8 more.
    expect(s.stats).toMatchObject({ registrations: 1, snapshotPages: 1, prefetches: 1, prefetchedPages: 8 });
    expect(mmHasNotifiers(p.mm)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    s.release(target(k, p), a + 100, 8 * PAGE_SIZE); // the same pages, spelt the same way
    expect(s.regions(p.mm)).toEqual([]);
    expect(s.stats.deregistrations).toBe(1);
    expect(pinsHeld(k)).toBe(pins0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('prefetches a read-only buffer read-only (the zero page), and mixed VMAs each their way', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const ro = p.mmap(4 * PAGE_SIZE, { prot: PROT_READ });
    s.prepare(target(k, p), ro, 4 * PAGE_SIZE);
    expect(pages(p, ro, 4).every((e) => e.present && e.zeroPage)).toBe(true);
    expect(s.regions(p.mm)[0].validPages()).toBe(4);
    // A writable mapping followed by a read-only one, as one registration.
    const a = p.mmap(8 * PAGE_SIZE);
    p.mprotect(a + 4 * PAGE_SIZE, 4 * PAGE_SIZE, PROT_READ);
    s.prepare(target(k, p), a, 8 * PAGE_SIZE);
    const pm = pages(p, a, 8);
    expect(pm.slice(0, 4).every((e) => e.present && !e.zeroPage)).toBe(true);
    expect(pm.slice(4).every((e) => e.present && e.zeroPage)).toBe(true);
    expect(s.regions(p.mm)[1].validPages()).toBe(8);
    expect(k.checkInvariants()).toEqual([]);
    s.release(target(k, p), a, 8 * PAGE_SIZE);
    s.release(target(k, p), ro, 4 * PAGE_SIZE);
  });

  it('overlapping prepares are separate regions; each release drops the newest of its exact range', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const t = target(k, p);
    const a = p.mmap(8 * PAGE_SIZE);
    s.prepare(t, a, 8 * PAGE_SIZE);
    s.prepare(t, a, 8 * PAGE_SIZE);
    s.prepare(t, a + 2 * PAGE_SIZE, 2 * PAGE_SIZE);
    const [r1, r2, r3] = s.regions(p.mm);
    expect([r1.key, r2.key, r3.key]).toEqual([r1.key, r1.key + 1, r1.key + 2]);
    expect([r1, r2, r3].map((r) => r.validPages())).toEqual([8, 8, 2]);
    // A write-protect of page 2 reaches every region over it.
    p.mprotect(a + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    expect([r1, r2, r3].map((r) => r.validPages())).toEqual([7, 7, 1]);
    expect([r1, r2, r3].every((r) => r.invalidations === 1)).toBe(true);
    // A prefetch refills each region containing the range, only where it was dropped.
    p.mprotect(a + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE);
    s.advise(t, a + 2 * PAGE_SIZE, PAGE_SIZE);
    expect([r1, r2, r3].map((r) => r.validPages())).toEqual([8, 8, 2]);
    expect(() => s.release(t, a, 4 * PAGE_SIZE)).toThrow(errno('EINVAL', ODP_DEREG_MR_SYSCALL));
    s.release(t, a, 8 * PAGE_SIZE);
    expect(s.regions(p.mm)).toEqual([r1, r3]); // the newest of the two went
    s.release(t, a + 2 * PAGE_SIZE + 1, PAGE_SIZE); // pages 2..3: the same pages
    s.release(t, a, 8 * PAGE_SIZE);
    expect(() => s.release(t, a, 8 * PAGE_SIZE)).toThrow(errno('EINVAL', ODP_DEREG_MR_SYSCALL));
    expect(mmHasNotifiers(p.mm)).toBe(false); // the last region took the exit notifier with it
    expect(k.checkInvariants()).toEqual([]);
  });

  it('registers a region above prefetchMaxBytes without faulting it in (a snapshot)', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const len = 2 * ODP_PREFETCH_MAX_BYTES;
    const a = p.mmap(len);
    p.write(a + 5 * PAGE_SIZE, new Uint8Array([1])); // the one resident page
    const rss0 = p.status().vmRss;
    s.prepare(target(k, p), a, len);
    expect(p.status().vmRss).toBe(rss0);
    const [mr] = s.regions(p.mm);
    expect(mr.validPages()).toBe(1);
    expect(mr.isValid(a + 5 * PAGE_SIZE)).toBe(true);
    expect(s.stats).toMatchObject({ prefetches: 0, snapshotPages: 1 });
    // An explicit prefetch of a part of it faults that part in.
    s.advise(target(k, p), a + MiB, 64 * KiB);
    expect(mr.validPages()).toBe(17);
    expect(p.status().vmRss).toBe(rss0 + 16 * PAGE_SIZE);
    // The read-only prefetch maps the zero page where nothing is.
    s.advise(target(k, p), a + 2 * MiB, PAGE_SIZE, ODP_ADVISE_PREFETCH);
    expect(p.pagemap(a + 2 * MiB).zeroPage).toBe(true);
    // Holes are fine in a registration that is not prefetched (nothing mirrored there).
    const b = p.mmap(len);
    p.munmap(b + MiB, MiB);
    s.prepare(target(k, p), b, len);
    expect(s.regions(p.mm)[1].validPages()).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    s.release(target(k, p), b, len);
    s.release(target(k, p), a, len);
  });

  it('createOdpStrategy: prefetchMaxBytes Infinity always prefetches, 0 never; bad values are refused', () => {
    const always = boot({}, createOdpStrategy({ prefetchMaxBytes: Infinity }));
    const p = always.k.spawn();
    const a = p.mmap(32 * MiB);
    always.s.prepare(target(always.k, p), a, 32 * MiB);
    expect(p.status().vmRss).toBeGreaterThanOrEqual(32 * MiB);
    const never = boot({}, createOdpStrategy({ prefetchMaxBytes: 0 }));
    const q = never.k.spawn();
    const b = q.mmap(PAGE_SIZE);
    never.s.prepare(target(never.k, q), b, PAGE_SIZE);
    expect(q.pagemap(b).present).toBe(false);
    for (const bad of [-1, Number.NaN, '1M' as unknown as number])
      expect(() => boot({}, createOdpStrategy({ prefetchMaxBytes: bad }))).toThrow(/prefetchMaxBytes/);
  });
});

describe('odp: errno table', () => {
  it('prepare: bad ranges, unmapped and unreadable memory, too large; a failed prepare registers nothing', () => {
    const { k, s } = boot({ plugins: [memcpyAccelPlugin] });
    const p = k.spawn();
    const t = target(k, p);
    const a = p.mmap(8 * PAGE_SIZE);
    const rows: Array<[number, number, keyof typeof ERRNO, string]> = [
      [a, 0, 'EINVAL', ODP_REG_MR_SYSCALL], // zero size: no entries
      [a, -PAGE_SIZE, 'EINVAL', ODP_REG_MR_SYSCALL],
      [-PAGE_SIZE, PAGE_SIZE, 'EINVAL', ODP_REG_MR_SYSCALL],
      [a + 0.5, PAGE_SIZE, 'EINVAL', ODP_REG_MR_SYSCALL],
      [a, Number.NaN, 'EINVAL', ODP_REG_MR_SYSCALL],
      [2 ** 64 - PAGE_SIZE, 2 * PAGE_SIZE, 'EOVERFLOW', ODP_REG_MR_SYSCALL], // wraps in 64 bits
      [PAGE_SIZE, Number.MAX_SAFE_INTEGER, 'EOVERFLOW', ODP_REG_MR_SYSCALL],
      [2 ** 47, PAGE_SIZE, 'EFAULT', ODP_REG_MR_SYSCALL], // beyond user space
      [a, 2 ** 40, 'ENOMEM', ODP_REG_MR_SYSCALL], // a region of 64x the machine's memory
    ];
    for (const [addr, len, code, call] of rows)
      expect(() => s.prepare(t, addr, len)).toThrow(errno(code, call));
    // Prefetched ranges must be there to fault in: a hole, PROT_NONE, a device's MMIO (VM_IO).
    p.munmap(a + 6 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(() => s.prepare(t, a, 8 * PAGE_SIZE)).toThrow(errno('EFAULT', ODP_ADVISE_MR_SYSCALL));
    expect(() => s.prepare(t, a + 6 * PAGE_SIZE, PAGE_SIZE)).toThrow(errno('EFAULT', ODP_ADVISE_MR_SYSCALL));
    const none = p.mmap(PAGE_SIZE, { prot: PROT_NONE });
    expect(() => s.prepare(t, none, PAGE_SIZE)).toThrow(errno('EFAULT', ODP_ADVISE_MR_SYSCALL));
    const fd = p.open('/dev/memcpy_accel-0', O_RDWR);
    const mmio = p.mmap(PAGE_SIZE, {
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_SHARED,
      fd,
      offset: UACCE_QFRT_MMIO * PAGE_SIZE,
    });
    expect(() => s.prepare(t, mmio, PAGE_SIZE)).toThrow(errno('EFAULT', ODP_ADVISE_MR_SYSCALL));
    expect(s.regions(p.mm)).toEqual([]);
    expect(s.stats.registrations - s.stats.deregistrations).toBe(0);
    expect(mmHasNotifiers(p.mm)).toBe(true); // the device's SVA bond, none of ours
    p.close(fd);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('release and advise: never prepared, double, another size, another process, bad input; after exit ESRCH', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const q = k.spawn();
    const t = target(k, p);
    const a = p.mmap(8 * PAGE_SIZE);
    expect(() => s.release(t, a, PAGE_SIZE)).toThrow(errno('EINVAL', ODP_DEREG_MR_SYSCALL));
    s.prepare(t, a, 4 * PAGE_SIZE);
    for (const [addr, len] of [
      [a, 0],
      [a, -1],
      [a + 0.5, PAGE_SIZE],
      [a, 8 * PAGE_SIZE], // another size
      [a + PAGE_SIZE, PAGE_SIZE], // inside, not the whole region
    ])
      expect(() => s.release(t, addr, len)).toThrow(errno('EINVAL', ODP_DEREG_MR_SYSCALL));
    expect(() => s.release(t, 2 ** 64 - PAGE_SIZE, 2 * PAGE_SIZE)).toThrow(errno('EOVERFLOW'));
    expect(() => s.release(target(k, q), a, 4 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    // advise: an unknown advice, a range no region contains, a range sticking out of one.
    expect(() => s.advise(t, a, PAGE_SIZE, 7)).toThrow(errno('EINVAL', ODP_ADVISE_MR_SYSCALL));
    expect(() => s.advise(t, a, 5 * PAGE_SIZE)).toThrow(errno('EINVAL', ODP_ADVISE_MR_SYSCALL));
    expect(() => s.advise(t, a + 6 * PAGE_SIZE, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => s.advise(target(k, q), a, PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => s.advise(t, a, 0)).toThrow(errno('EINVAL'));
    expect(p.syscall(ODP_ADVISE_MR_SYSCALL, a, PAGE_SIZE, ODP_ADVISE_PREFETCH_NO_FAULT)).toBe(0);
    // The system calls take numbers only.
    expect(() => p.syscall(ODP_REG_MR_SYSCALL, String(a), PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => p.syscall(ODP_DEREG_MR_SYSCALL, a)).toThrow(errno('EINVAL'));
    s.release(t, a, 4 * PAGE_SIZE);
    expect(() => s.release(t, a, 4 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    // odp_reg_mr answers the region's key.
    const key = p.syscall(ODP_REG_MR_SYSCALL, a, PAGE_SIZE);
    expect(key).toBe(s.regions(p.mm)[0].key);
    expect(key).toBeGreaterThan(0);
    p.exit();
    expect(() => s.prepare(t, a, PAGE_SIZE)).toThrow(errno('ESRCH'));
    expect(() => s.release(t, a, PAGE_SIZE)).toThrow(errno('ESRCH'));
    expect(k.checkInvariants()).toEqual([]);
  });

  it('unrealize removes the system calls (ENOSYS); realize brings them back', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    s.unrealize();
    expect(() => s.prepare(target(k, p), a, PAGE_SIZE)).toThrow(errno('ENOSYS'));
    expect(s.realize()).toBe(0);
    expect(s.realize()).toBe(-ERRNO.EEXIST);
    s.prepare(target(k, p), a, PAGE_SIZE);
    expect(s.regions(p.mm)).toHaveLength(1);
  });
});

describe('odp: the notifier instead of a pin', () => {
  it('munmap invalidates (UNMAP) and frees the pages at once; the region stays until released', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    s.prepare(target(k, p), a, 8 * PAGE_SIZE);
    const free0 = k.phys.nrFreePages();
    p.munmap(a, 4 * PAGE_SIZE);
    expect(k.phys.nrFreePages()).toBe(free0 + 4); // nothing held them
    const [mr] = s.regions(p.mm);
    expect(mr.validPages()).toBe(4);
    expect(s.stats.invalidationsByEvent.UNMAP).toBeGreaterThanOrEqual(1);
    expect(k.checkInvariants()).toEqual([]);
    // A prefetch of the unmapped half fails; of the other half it has nothing to do.
    expect(() => s.advise(target(k, p), a, 8 * PAGE_SIZE)).toThrow(errno('EFAULT'));
    s.advise(target(k, p), a + 4 * PAGE_SIZE, 4 * PAGE_SIZE);
    s.release(target(k, p), a, 8 * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('exit without release drops every region through the exit notifier: no leak', () => {
    const { k, s } = boot();
    const free0 = k.phys.nrFreePages();
    const p = k.spawn();
    const a = p.mmap(64 * PAGE_SIZE);
    s.prepare(target(k, p), a, 64 * PAGE_SIZE);
    s.prepare(target(k, p), a, 8 * PAGE_SIZE);
    s.prepare(target(k, p), a, 32 * MiB); // beyond the VMA: a snapshot registration
    p.exit();
    expect(s.stats).toMatchObject({ registrations: 3, deregistrations: 3, deregAtExit: 3 });
    expect(s.regions(p.mm)).toEqual([]);
    expect(k.phys.nrFreePages()).toBe(free0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a fork child inherits no region; the parent’s are write-protected (PROTECTION_PAGE) and dropped', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    p.write(a, new Uint8Array(8 * PAGE_SIZE).fill(0x11));
    s.prepare(target(k, p), a, 8 * PAGE_SIZE);
    const c = p.fork();
    expect(s.regions(c.mm)).toEqual([]);
    expect(s.regions(p.mm)[0].validPages()).toBe(0);
    expect(s.stats.invalidationsByEvent.PROTECTION_PAGE).toBeGreaterThanOrEqual(1);
    expect(() => s.release(target(k, c), a, 8 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    // The parent's prefetch breaks COW for itself; the child keeps the shared original.
    s.advise(target(k, p), a, 8 * PAGE_SIZE);
    expect(p.pagemap(a).pfn).not.toBe(c.pagemap(a).pfn);
    p.write(a, new Uint8Array([0x22]));
    expect(c.read(a, 1)[0]).toBe(0x11);
    expect(k.checkInvariants()).toEqual([]);
    c.exit();
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('the invariant check catches a mirror entry the page table does not back (a missed invalidation)', () => {
    const { k, s } = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    s.prepare(target(k, p), a, 4 * PAGE_SIZE);
    const [mr] = s.regions(p.mm);
    const pfn = p.pagemap(a).pfn!;
    mr.pfns[0] = makeHmmPfn(pfn + 1, HMM_PFN_VALID);
    expect(k.checkInvariants().join('\n')).toMatch(/pin-odp: region \d+ mirrors pfn/);
    mr.pfns[0] = makeHmmPfn(pfn, HMM_PFN_VALID);
    expect(k.checkInvariants()).toEqual([]);
  });
});
