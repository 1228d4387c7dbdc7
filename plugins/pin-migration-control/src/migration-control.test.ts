import { describe, expect, it } from '@jest/globals';
import {
  ERRNO,
  MADV_HUGEPAGE,
  PAGE_SIZE,
  SCAN_SUCCEED,
  SCAN_VMA_CHECK,
  collapseHugePage,
  compactMemory,
  createKernel,
  numaMmStats,
  setProcessNode,
  showNumaMap,
  taskNumaWork,
  type Kernel,
  type KernelOptions,
  type PinTarget,
  type Process,
} from '@svasim/kernel';
import { describePinStrategyConformance, memcpyAccelPlugin } from '@svasim/testkit';
import { openContext } from '@svasim/user';
import {
  PR_GET_MIGRATION_CONTROL,
  PR_SET_MIGRATION_CONTROL,
  migrationControlStrategy,
  type MigrationControlStrategy,
} from './index';

const KiB = 1024;
const MiB = 1024 * KiB;
const MS = 1_000_000;
const S = 1000 * MS;
const errno = (code: keyof typeof ERRNO, syscall?: string) =>
  expect.objectContaining(syscall ? { code, syscall } : { code });

// The suite every strategy passes. migrateBufferPages moves the pages as migrate_pages callers
// outside compaction's isolation (CMA, offline) do, so they move here under either strategy.
describePinStrategyConformance(migrationControlStrategy, {
  name: 'migration-control',
  expect: {
    faultsAfterPrepare: 0,
    pins: false,
    survivesMigration: false,
    charge: 'vmLck',
    faultsAfterFork: 'some',
  },
});

function boot(opts: KernelOptions = {}): { k: Kernel; mc: MigrationControlStrategy } {
  const k = createKernel({
    memory: { nodes: [{ size: '64MiB' }] },
    ...opts,
    sysctl: { transparent_hugepage: 'never', ...opts.sysctl },
    plugins: [...(opts.plugins ?? []), migrationControlStrategy],
  });
  const mc = k.plugin<MigrationControlStrategy>('pin-migration-control');
  expect(k.pinStrategy()).toBe(mc);
  return { k, mc };
}

const target = (k: Kernel, proc: Process): PinTarget => ({ kernel: k, proc, fd: -1, device: '' });
const flagOf = (p: Process) => p.syscall('prctl', PR_GET_MIGRATION_CONTROL);

/** The 4 bytes region #j writes at the start of its page #i. */
const tag = (j: number, i: number) => new Uint8Array([0xc0 | j, i & 255, i >> 8, 0x5a]);

interface Regions {
  addrs: number[];
  /** Current pfn of every page of every region. */
  pfns(): number[][];
  /** Throws if any region's bytes changed. */
  check(): void;
  /** Give back the free blocks taken to fragment the machine (before invariant checks). */
  unhide(): void;
}

/**
 * One region of @pages pages in each of @procs, faulted in round robin with a filler process's
 * pages in between; the filler exits and every free block of 2 MiB or more is taken off the buddy,
 * so the only free memory is the holes between the regions' pages: compaction then moves pages
 * from the low pageblocks into the holes of the high ones (as compaction.test.ts fragments).
 */
function interleave(k: Kernel, procs: Process[], pages: number): Regions {
  const filler = k.spawn();
  const fa = filler.mmap(pages * procs.length * PAGE_SIZE);
  const addrs = procs.map((p) => p.mmap(pages * PAGE_SIZE));
  for (let i = 0; i < pages; i++)
    procs.forEach((p, j) => {
      filler.write(fa + (i * procs.length + j) * PAGE_SIZE, new Uint8Array([1]));
      p.write(addrs[j] + i * PAGE_SIZE, tag(j, i));
    });
  const hidden: Array<[number, number]> = [];
  k.phys.forEachFreeBlock((pfn, order) => {
    if (order >= 9) hidden.push([pfn, 2 ** order]);
  });
  for (const [pfn, n] of hidden) expect(k.phys.takeFreeRange(pfn, n)).toBe(true);
  filler.exit();
  return {
    addrs,
    pfns: () =>
      procs.map((p, j) => Array.from({ length: pages }, (_, i) => p.pagemap(addrs[j] + i * PAGE_SIZE).pfn!)),
    check() {
      procs.forEach((p, j) => {
        for (let i = 0; i < pages; i++)
          if (!Buffer.from(p.read(addrs[j] + i * PAGE_SIZE, 4)).equals(Buffer.from(tag(j, i))))
            throw new Error(`region ${j} page ${i} changed`);
      });
    },
    unhide() {
      for (const [pfn, n] of hidden.splice(0)) k.phys.freeRange(pfn, n);
    },
  };
}

const moved = (before: number[], after: number[]) => before.filter((pfn, i) => pfn !== after[i]).length;

describe('migration-control: prepare and release', () => {
  it('mlocks the range and sets the flag once; release unlocks and clears it with the last range', () => {
    const { k, mc } = boot();
    const p = k.spawn();
    const a = p.mmap(16 * PAGE_SIZE);
    const b = p.mmap(8 * PAGE_SIZE);
    expect(flagOf(p)).toBe(0);
    // Unaligned: the pages the bytes touch are locked, as mlock rounds.
    mc.prepare(target(k, p), a + 100, 2 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(3 * PAGE_SIZE);
    expect(p.pagemap(a).mlocked).toBe(true); // populated by mlock
    expect(flagOf(p)).toBe(1);
    mc.prepare(target(k, p), b, 8 * PAGE_SIZE);
    expect(mc.stats.flagSets).toBe(1);
    expect(mc.preparedRanges(p)).toEqual([
      [a, a + 3 * PAGE_SIZE],
      [b, b + 8 * PAGE_SIZE],
    ]);
    // The same pages, spelt differently.
    mc.release(target(k, p), a, 3 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(8 * PAGE_SIZE);
    expect(flagOf(p)).toBe(1); // b is still prepared
    mc.release(target(k, p), b + 1, 8 * PAGE_SIZE - 1);
    expect(p.status().vmLck).toBe(0);
    expect(flagOf(p)).toBe(0);
    expect(mc.stats).toEqual({ prepares: 2, releases: 2, flagSets: 1, flagClears: 1 });
    expect(k.checkInvariants()).toEqual([]);
  });

  it('counts double prepares, keeps pages another range covers, and keeps a flag it did not set', () => {
    const { k, mc } = boot();
    const p = k.spawn();
    const a = p.mmap(12 * PAGE_SIZE);
    const t = target(k, p);
    mc.prepare(t, a, 4 * PAGE_SIZE);
    mc.prepare(t, a, 4 * PAGE_SIZE);
    mc.release(t, a, 4 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(4 * PAGE_SIZE); // one prepare left
    mc.release(t, a, 4 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(0);
    expect(() => mc.release(t, a, 4 * PAGE_SIZE)).toThrow(errno('EINVAL', 'release'));
    // Overlapping ranges: releasing one leaves the pages the other covers locked.
    mc.prepare(t, a, 8 * PAGE_SIZE);
    mc.prepare(t, a + 4 * PAGE_SIZE, 8 * PAGE_SIZE);
    mc.release(t, a, 8 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(8 * PAGE_SIZE);
    expect(p.pagemap(a + 3 * PAGE_SIZE).mlocked).toBe(false);
    expect(p.pagemap(a + 4 * PAGE_SIZE).mlocked).toBe(true);
    mc.release(t, a + 4 * PAGE_SIZE, 8 * PAGE_SIZE);
    expect(p.status().vmLck).toBe(0);
    // A process that set the flag itself keeps it.
    p.syscall('prctl', PR_SET_MIGRATION_CONTROL, 1);
    mc.prepare(t, a, PAGE_SIZE);
    mc.release(t, a, PAGE_SIZE);
    expect(flagOf(p)).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('errno table: bad ranges, unmapped memory, no permission, RLIMIT_MEMLOCK; failures change nothing', () => {
    const { k, mc } = boot();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    const t = target(k, p);
    // Zero length: mlock(addr, 0) succeeds and does nothing; so do prepare and release.
    mc.prepare(t, a, 0);
    mc.release(t, a, 0);
    expect(flagOf(p)).toBe(0);
    expect(mc.preparedRanges(p)).toEqual([]);
    const bad: Array<[number, number]> = [
      [a, -PAGE_SIZE],
      [-PAGE_SIZE, PAGE_SIZE],
      [a + 0.5, PAGE_SIZE],
      [a, Number.NaN],
      [2 ** 64 - PAGE_SIZE, 2 * PAGE_SIZE], // wraps in 64 bits
      [PAGE_SIZE, Number.MAX_SAFE_INTEGER], // end beyond what an address can be
    ];
    for (const [addr, len] of bad) {
      expect(() => mc.prepare(t, addr, len)).toThrow(errno('EINVAL', 'prepare'));
      expect(() => mc.release(t, addr, len)).toThrow(errno('EINVAL', 'release'));
    }
    // Unmapped memory, entirely or after the first pages: nothing is locked, no flag.
    p.munmap(a + 4 * PAGE_SIZE, 4 * PAGE_SIZE);
    expect(() => mc.prepare(t, a + 4 * PAGE_SIZE, PAGE_SIZE)).toThrow(errno('ENOMEM', 'prepare'));
    expect(() => mc.prepare(t, a, 8 * PAGE_SIZE)).toThrow(errno('ENOMEM', 'prepare'));
    expect(() => mc.prepare(t, 2 ** 47, PAGE_SIZE)).toThrow(errno('ENOMEM', 'prepare'));
    expect(p.status().vmLck).toBe(0);
    expect(flagOf(p)).toBe(0);
    // mlock's own checks: no RLIMIT_MEMLOCK and no CAP_IPC_LOCK, then over the limit.
    const weak = k.spawn({ uid: 1000, rlimits: { memlock: 0 } });
    const w = weak.mmap(32 * PAGE_SIZE);
    expect(() => mc.prepare(target(k, weak), w, PAGE_SIZE)).toThrow(errno('EPERM', 'mlock'));
    const small = k.spawn({ uid: 1000, rlimits: { memlock: 64 * KiB } });
    const s = small.mmap(32 * PAGE_SIZE);
    expect(() => mc.prepare(target(k, small), s, 32 * PAGE_SIZE)).toThrow(errno('ENOMEM', 'mlock'));
    mc.prepare(target(k, small), s, 16 * PAGE_SIZE); // exactly the limit
    expect(() => mc.prepare(target(k, small), s + 16 * PAGE_SIZE, PAGE_SIZE)).toThrow(
      errno('ENOMEM', 'mlock'),
    );
    expect(small.status().vmLck).toBe(64 * KiB);
    // CAP_IPC_LOCK lifts both.
    const cap = k.spawn({ uid: 1000, caps: ['CAP_IPC_LOCK'], rlimits: { memlock: 0 } });
    const c = cap.mmap(32 * PAGE_SIZE);
    mc.prepare(target(k, cap), c, 32 * PAGE_SIZE);
    expect(cap.status().vmLck).toBe(32 * PAGE_SIZE);
    for (const q of [weak, small]) expect(flagOf(q)).toBe(q === small ? 1 : 0);
    expect(weak.status().vmLck).toBe(0);
    // Released pages of an exited process: release fails (ESRCH), nothing is left behind.
    cap.exit();
    expect(() => mc.release(target(k, cap), c, 32 * PAGE_SIZE)).toThrow(errno('ESRCH'));
    expect(k.checkInvariants()).toEqual([]);
  });

  it('prctl(PR_SET/GET_MIGRATION_CONTROL) errno table', () => {
    const { k } = boot();
    const p = k.spawn({ uid: 1000 });
    const call =
      (...args: number[]) =>
      () =>
        p.syscall('prctl', ...args);
    expect(call(PR_SET_MIGRATION_CONTROL, 2)).toThrow(errno('EINVAL', 'prctl'));
    expect(call(PR_SET_MIGRATION_CONTROL, -1)).toThrow(errno('EINVAL', 'prctl'));
    expect(call(PR_SET_MIGRATION_CONTROL, 1, 1)).toThrow(errno('EINVAL', 'prctl'));
    expect(call(PR_SET_MIGRATION_CONTROL, 1, 0, 0, 7)).toThrow(errno('EINVAL', 'prctl'));
    expect(call(PR_GET_MIGRATION_CONTROL, 1)).toThrow(errno('EINVAL', 'prctl'));
    expect(call(0x12345)).toThrow(errno('EINVAL', 'prctl'));
    expect(flagOf(p)).toBe(0);
    // No privilege needed: the flag only affects pages the process may already lock.
    expect(p.syscall('prctl', PR_SET_MIGRATION_CONTROL, 1)).toBe(0);
    expect(flagOf(p)).toBe(1);
    expect(p.syscall('prctl', PR_SET_MIGRATION_CONTROL, 1)).toBe(0); // idempotent
    // Not inherited: a fork child's VMAs are not locked either.
    const c = p.fork();
    expect(flagOf(c)).toBe(0);
    expect(p.syscall('prctl', PR_SET_MIGRATION_CONTROL, 0)).toBe(0);
    expect(flagOf(p)).toBe(0);
    c.exit();
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('migration-control: what moves', () => {
  it('compaction leaves the flagged process’s locked pages in place and moves a mlock-only process’s', () => {
    const { k, mc } = boot();
    const a = k.spawn();
    const b = k.spawn();
    const n = 1024;
    const r = interleave(k, [a, b], n);
    mc.prepare(target(k, a), r.addrs[0], n * PAGE_SIZE);
    b.mlock(r.addrs[1], n * PAGE_SIZE); // the same lock, no flag
    const before = r.pfns();
    const report = compactMemory(k.mmCore);
    const after = r.pfns();
    expect(moved(before[0], after[0])).toBe(0);
    expect(moved(before[1], after[1])).toBeGreaterThan(n / 4);
    expect(report.skippedUnevictable).toBeGreaterThan(0);
    r.check();
    // Released: the next compaction moves them too.
    mc.release(target(k, a), r.addrs[0], n * PAGE_SIZE);
    compactMemory(k.mmCore);
    expect(moved(before[0], r.pfns()[0])).toBeGreaterThan(0);
    r.check();
    r.unhide();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('vm.compact_unevictable_allowed=0 does the same for every process, flag or not', () => {
    const { k } = boot({ sysctl: { 'vm.compact_unevictable_allowed': 0 } });
    const a = k.spawn();
    const b = k.spawn();
    const n = 1024;
    const r = interleave(k, [a, b], n);
    a.mlock(r.addrs[0], n * PAGE_SIZE); // locked, no flag: left alone system-wide
    const before = r.pfns();
    compactMemory(k.mmCore);
    const after = r.pfns();
    expect(moved(before[0], after[0])).toBe(0);
    expect(moved(before[1], after[1])).toBeGreaterThan(0); // not locked: compacted
    r.check();
    r.unhide();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('NUMA balancing neither hints nor migrates the flagged process’s locked pages', async () => {
    const k = createKernel({
      memory: { nodes: [{ size: '256MiB' }, { size: '256MiB' }] },
      plugins: [migrationControlStrategy],
    });
    const mc = k.plugin<MigrationControlStrategy>('pin-migration-control');
    const n = 64;
    const procs = [0, 1, 2].map(() => k.spawn({ node: 1 }));
    const addrs = procs.map((p, j) => {
      const a = p.mmap(n * PAGE_SIZE);
      p.write(a, new Uint8Array(n * PAGE_SIZE).fill(0x10 + j));
      return a;
    });
    const [ctl, locked, plain] = procs;
    // A hint from before the flag: the hinting fault must not move the page either.
    expect(taskNumaWork(ctl.mm)).toBe(0); // on node 1 while the task runs there: nothing to hint
    setProcessNode(ctl.mm, 0);
    expect(taskNumaWork(ctl.mm)).toBe(n);
    mc.prepare(target(k, ctl), addrs[0], n * PAGE_SIZE);
    locked.mlock(addrs[1], n * PAGE_SIZE);
    const pfns0 = Array.from({ length: n }, (_, i) => ctl.pagemap(addrs[0] + i * PAGE_SIZE).pfn);
    for (const p of procs) setProcessNode(p.mm, 0);
    const hintsBefore = numaMmStats(ctl.mm)!.pteUpdates;
    procs.forEach((p, j) =>
      p.run(async (t) => {
        for (let i = 0; i < 30; i++) {
          p.touch(addrs[j], n * PAGE_SIZE);
          await t.sleep(250 * MS);
        }
      }),
    );
    await k.runFor(8 * S);
    expect(showNumaMap(ctl.mm)).toEqual([0, n]);
    expect(Array.from({ length: n }, (_, i) => ctl.pagemap(addrs[0] + i * PAGE_SIZE).pfn)).toEqual(pfns0);
    expect(numaMmStats(ctl.mm)!.pteUpdates).toBe(hintsBefore); // scanned, never hinted again
    expect(numaMmStats(ctl.mm)!.pagesMigrated).toBe(0);
    expect(showNumaMap(locked.mm)).toEqual([n, 0]); // mlock alone does not stop NUMA balancing
    expect(showNumaMap(plain.mm)).toEqual([n, 0]);
    procs.forEach((p, j) => expect(p.read(addrs[j], n * PAGE_SIZE).every((b) => b === 0x10 + j)).toBe(true));
    expect(k.checkInvariants()).toEqual([]);
    // The system-wide alternative: with kernel.numa_balancing=0 nobody moves.
    mc.release(target(k, ctl), addrs[0], n * PAGE_SIZE);
    k.sysctl['kernel.numa_balancing'] = 0;
    setProcessNode(locked.mm, 1);
    locked.run(async (t) => {
      for (let i = 0; i < 30; i++) {
        ctl.touch(addrs[0], n * PAGE_SIZE);
        locked.touch(addrs[1], n * PAGE_SIZE);
        await t.sleep(250 * MS);
      }
    });
    await k.runFor(8 * S);
    expect(showNumaMap(ctl.mm)).toEqual([0, n]);
    expect(showNumaMap(locked.mm)).toEqual([n, 0]);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('khugepaged does not collapse the flagged process’s locked range; a mlock-only one collapses', async () => {
    const { k, mc } = boot({
      memory: { nodes: [{ size: '128MiB' }] },
      sysctl: { transparent_hugepage: 'madvise' },
    });
    const setup = () => {
      const p = k.spawn();
      const a = p.mmap(2 * MiB);
      p.write(
        a,
        new Uint8Array(2 * MiB).map((_, i) => (i * 7) & 255),
      );
      p.madvise(a, 2 * MiB, MADV_HUGEPAGE);
      return { p, a };
    };
    const ctl = setup();
    const locked = setup();
    mc.prepare(target(k, ctl.p), ctl.a, 2 * MiB);
    locked.p.mlock(locked.a, 2 * MiB);
    expect(collapseHugePage(ctl.p.mm.vmaLookup(ctl.a)!, ctl.a)).toBe(SCAN_VMA_CHECK);
    await k.runFor(25 * S); // two khugepaged passes
    expect(ctl.p.pagemap(ctl.a).huge).toBeUndefined();
    expect(locked.p.pagemap(locked.a).huge).toBe('2MiB');
    expect(locked.p.pagemap(locked.a).mlocked).toBe(true);
    for (const { p, a } of [ctl, locked])
      expect(p.read(a, 2 * MiB).every((b, i) => b === ((i * 7) & 255))).toBe(true);
    mc.release(target(k, ctl.p), ctl.a, 2 * MiB);
    expect(collapseHugePage(ctl.p.mm.vmaLookup(ctl.a)!, ctl.a)).toBe(SCAN_SUCCEED);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a CMA allocation over the locked pages still migrates them', () => {
    // CMA holds over half the free memory, so the buddy lends it to movable allocations first.
    const { k, mc } = boot({ memory: { nodes: [{ size: '256MiB', cma: '160MiB' }] } });
    const p = k.spawn();
    const n = 256;
    const a = p.mmap(n * PAGE_SIZE);
    p.write(a, new Uint8Array(n * PAGE_SIZE).fill(0x3c));
    mc.prepare(target(k, p), a, n * PAGE_SIZE);
    expect(p.pagemap(a).migratetype).toBe('CMA');
    expect(k.cmaAlloc('160MiB')).toBe(true);
    for (let i = 0; i < n; i++) expect(p.pagemap(a + i * PAGE_SIZE).migratetype).not.toBe('CMA');
    expect(p.pagemap(a).mlocked).toBe(true);
    expect(flagOf(p)).toBe(1);
    expect(p.read(a, n * PAGE_SIZE).every((b) => b === 0x3c)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    mc.release(target(k, p), a, n * PAGE_SIZE);
    k.cmaRelease();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('memory offline still migrates them', () => {
    const { k, mc } = boot({ memory: { nodes: [{ size: '1GiB', movable: '512MiB' }] } });
    const p = k.spawn();
    const n = 256;
    const a = p.mmap(n * PAGE_SIZE);
    p.write(a, new Uint8Array(n * PAGE_SIZE).fill(0x7e));
    mc.prepare(target(k, p), a, n * PAGE_SIZE);
    const block = k.phys.zone(0, 2).startPfn; // movable allocations fill ZONE_MOVABLE first
    expect(p.pagemap(a).pfn).toBe(block);
    expect(k.offlineMemory(0, 512 * MiB, 128 * MiB)).toBe(0);
    for (let i = 0; i < n; i++) {
      const pfn = p.pagemap(a + i * PAGE_SIZE).pfn!;
      expect(pfn < block || pfn >= block + (128 * MiB) / PAGE_SIZE).toBe(true);
    }
    expect(p.read(a, n * PAGE_SIZE).every((b) => b === 0x7e)).toBe(true);
    expect(p.status().vmLck).toBe(n * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('migration-control with a device', () => {
  it('after prepare the device does not fault, and still does not after compaction', () => {
    const { k } = boot({ plugins: [memcpyAccelPlugin] });
    const p = k.spawn();
    const other = k.spawn();
    const ctx = openContext(p, 'memcpy', { kernel: k });
    expect(ctx.pin.name).toBe('migration-control');
    const n = 1024;
    const r = interleave(k, [p, other], n);
    const src = r.addrs[0];
    const dst = p.mmap(n * PAGE_SIZE);
    ctx.prepare(src, n * PAGE_SIZE);
    ctx.prepare(dst, n * PAGE_SIZE); // never touched: mlock populates it
    const copy = () =>
      ctx.submitSync({ op: 'copy', alg: 'memcpy', src, srcLen: n * PAGE_SIZE, dst, dstLen: n * PAGE_SIZE });
    const first = copy();
    expect(first).toMatchObject({ status: 0, produced: n * PAGE_SIZE, faults: 0 });
    const before = r.pfns();
    compactMemory(k.mmCore);
    const after = r.pfns();
    expect(moved(before[0], after[0])).toBe(0);
    expect(moved(before[1], after[1])).toBeGreaterThan(0); // the machine was compacted
    p.write(
      src,
      new Uint8Array(n * PAGE_SIZE).map((_, i) => (i * 13) & 255),
    );
    const second = copy();
    expect(second).toMatchObject({ status: 0, faults: 0 });
    expect(Buffer.from(p.read(dst, n * PAGE_SIZE)).equals(Buffer.from(p.read(src, n * PAGE_SIZE)))).toBe(
      true,
    );
    ctx.release(src, n * PAGE_SIZE);
    ctx.release(dst, n * PAGE_SIZE);
    expect(p.status().vmLck).toBe(0);
    ctx.close();
    r.unhide();
    expect(k.checkInvariants()).toEqual([]);
  });
});
