import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import { ERRNO, KernelError } from '../uapi/errno';
import { MADV_DONTNEED, PAGE_SIZE, PROT_READ } from '../uapi/mman';
import { GFP_HIGHUSER_MOVABLE, __GFP_THISNODE } from '../mm/gfp';
import { emptyMigrateStats, isolateLruFolio, migratePages } from '../mm/migrate';
import { MIGRATE_SYNC, MR_NUMA_MISPLACED } from '../mm/migrate-types';
import { mmuNotifierInvalidateRangeEnd } from '../mm/mmu-notify';
import type { MmStruct } from '../mm/mm-struct';
import { initNumaBalancing, setProcessNode, taskNumaWork } from '../mm/numa-balancing';
import {
  MMU_NOTIFY_CLEAR,
  MMU_NOTIFY_EVENT_NAMES,
  MMU_NOTIFY_MIGRATE,
  MMU_NOTIFY_PROTECTION_PAGE,
  MMU_NOTIFY_PROTECTION_VMA,
  MMU_NOTIFY_UNMAP,
  type MmuNotifierRange,
} from '../mm/notifier-hooks';
import {
  MmuNotifier,
  mmHasNotifiers,
  mmuNotifierGet,
  mmuNotifierInvalidateRangeStartNonblock,
  mmuNotifierPut,
  mmuNotifierRangeBlockable,
  mmuNotifierRangeInit,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  type MmuNotifierOps,
} from './index';

type Call = [string, string, number, number];

/** A subscriber that records every callback as [op, event, start, end]. */
function recorder(extra: Partial<MmuNotifierOps> = {}) {
  const calls: Call[] = [];
  const ops: MmuNotifierOps = {
    invalidateRangeStart: (_s, r) => {
      calls.push(['start', MMU_NOTIFY_EVENT_NAMES[r.event], r.start, r.end]);
      return 0;
    },
    invalidateRangeEnd: (_s, r) => {
      calls.push(['end', MMU_NOTIFY_EVENT_NAMES[r.event], r.start, r.end]);
    },
    release: () => {
      calls.push(['release', '', 0, 0]);
    },
    ...extra,
  };
  return { calls, sub: new MmuNotifier(ops), ops };
}

function pair(event: string, start: number, end: number): Call[] {
  return [
    ['start', event, start, end],
    ['end', event, start, end],
  ];
}

describe('mmuNotifierRegister / mmuNotifierUnregister', () => {
  it('installs the subscriptions on the mm, calls release on unregister, and uninstalls when empty', () => {
    const k = createKernel();
    const p = k.spawn();
    const { calls, sub } = recorder();
    expect(mmHasNotifiers(p.mm)).toBe(false);
    expect(mmuNotifierRegister(sub, p.mm)).toBe(0);
    expect(sub.mm).toBe(p.mm);
    expect(sub.users).toBe(1);
    expect(mmHasNotifiers(p.mm)).toBe(true);
    mmuNotifierUnregister(sub, p.mm);
    expect(calls).toEqual([['release', '', 0, 0]]);
    expect(mmHasNotifiers(p.mm)).toBe(false);
    // A second unregister does nothing.
    mmuNotifierUnregister(sub, p.mm);
    expect(calls.length).toBe(1);
    p.exit();
  });

  it('refuses a double registration, mixed ops and a dead mm', () => {
    const k = createKernel();
    const p = k.spawn();
    const { sub } = recorder();
    expect(mmuNotifierRegister(sub, p.mm)).toBe(0);
    expect(mmuNotifierRegister(sub, p.mm)).toBe(-ERRNO.EBUSY);
    const mixed = new MmuNotifier({ invalidateRangeStart: () => 0, archInvalidateSecondaryTlbs: () => {} });
    expect(mmuNotifierRegister(mixed, p.mm)).toBe(-ERRNO.EINVAL);
    const mm = p.mm;
    p.exit();
    expect(mmuNotifierRegister(recorder().sub, mm)).toBe(-ERRNO.EINVAL);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('calls subscriptions newest first, and stops calling one once unregistered', () => {
    const k = createKernel();
    const p = k.spawn();
    const order: string[] = [];
    const a = new MmuNotifier({ invalidateRangeStart: () => void order.push('a') });
    const b = new MmuNotifier({ invalidateRangeStart: () => void order.push('b') });
    mmuNotifierRegister(a, p.mm);
    mmuNotifierRegister(b, p.mm);
    const addr = p.mmap(PAGE_SIZE);
    p.write(addr, new Uint8Array([1]));
    p.munmap(addr, PAGE_SIZE);
    expect(order).toEqual(['b', 'a']);
    mmuNotifierUnregister(b, p.mm);
    const addr2 = p.mmap(PAGE_SIZE);
    p.munmap(addr2, PAGE_SIZE);
    expect(order).toEqual(['b', 'a', 'a']);
    p.exit();
  });
});

describe('every page-table change reaches subscribers with its range and event', () => {
  function setup() {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }, { size: '128MiB' }] } });
    const p = k.spawn();
    const { calls, sub } = recorder();
    expect(mmuNotifierRegister(sub, p.mm)).toBe(0);
    return { k, p, calls, sub };
  }

  it('munmap: UNMAP over the range', () => {
    const { k, p, calls } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE).fill(1));
    calls.length = 0;
    p.munmap(a + PAGE_SIZE, 2 * PAGE_SIZE);
    expect(calls).toEqual(pair('UNMAP', a + PAGE_SIZE, a + 3 * PAGE_SIZE));
    expect(k.vmstat().mmu_notifier_invalidations).toBeGreaterThan(0);
    p.exit();
  });

  it('mprotect: PROTECTION_VMA over the range', () => {
    const { p, calls } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE).fill(1));
    calls.length = 0;
    p.mprotect(a, 2 * PAGE_SIZE, PROT_READ);
    expect(calls).toEqual(pair('PROTECTION_VMA', a, a + 2 * PAGE_SIZE));
    p.exit();
  });

  it('COW break: CLEAR of the page', () => {
    const { p, calls } = setup();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(7));
    const c = p.fork();
    calls.length = 0;
    p.write(a + PAGE_SIZE + 5, new Uint8Array([9]));
    expect(calls).toEqual(pair('CLEAR', a + PAGE_SIZE, a + 2 * PAGE_SIZE));
    expect(c.read(a + PAGE_SIZE + 5, 1)[0]).toBe(7);
    c.exit();
    p.exit();
  });

  it('fork: PROTECTION_PAGE over each private VMA of the parent, none for the child', () => {
    const { p, calls } = setup();
    const a = p.mmap(3 * PAGE_SIZE);
    p.write(a, new Uint8Array([1]));
    calls.length = 0;
    const c = p.fork();
    expect(calls).toEqual(pair('PROTECTION_PAGE', a, a + 3 * PAGE_SIZE));
    expect(mmHasNotifiers(c.mm)).toBe(false);
    c.exit();
    p.exit();
  });

  it('migration: MIGRATE for each mapping of the folio', () => {
    const { k, p, calls } = setup();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([42]));
    const pfn = p.pagemap(a).pfn!;
    calls.length = 0;
    expect(isolateLruFolio(k.mmCore, pfn)).toBe(true);
    const to1 = (_s: number, o: number) => k.phys.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_THISNODE, o, 1);
    expect(migratePages(k.mmCore, [pfn], to1, MIGRATE_SYNC, MR_NUMA_MISPLACED, emptyMigrateStats())).toBe(0);
    expect(calls).toEqual(pair('MIGRATE', a, a + PAGE_SIZE));
    expect(p.read(a, 1)[0]).toBe(42);
    expect(MMU_NOTIFY_EVENT_NAMES[MMU_NOTIFY_MIGRATE]).toBe('MIGRATE');
    p.exit();
  });

  it('MADV_DONTNEED: CLEAR over the range (zap_page_range_single)', () => {
    const { p, calls } = setup();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE).fill(3));
    calls.length = 0;
    p.madvise(a, 2 * PAGE_SIZE, MADV_DONTNEED);
    expect(calls).toEqual(pair('CLEAR', a, a + 2 * PAGE_SIZE));
    expect(p.read(a, 1)[0]).toBe(0);
    p.exit();
  });

  it('NUMA balancing: PROTECTION_VMA over the scanned chunk, then MIGRATE at the hinting fault', () => {
    const { k, p, calls } = setup();
    initNumaBalancing(k.mmCore);
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(4));
    setProcessNode(p.mm, 1);
    calls.length = 0;
    expect(taskNumaWork(p.mm)).toBe(2);
    expect(calls).toEqual(pair('PROTECTION_VMA', a, a + 2 * PAGE_SIZE));
    calls.length = 0;
    expect(p.read(a, 1)[0]).toBe(4);
    // Making the entry accessible again needs no invalidation; moving the page does.
    expect(calls).toEqual(pair('MIGRATE', a, a + PAGE_SIZE));
    expect(p.pagemap(a).node).toBe(1);
    p.exit();
  });

  it('uses the kernel event numbers', () => {
    expect([
      MMU_NOTIFY_UNMAP,
      MMU_NOTIFY_CLEAR,
      MMU_NOTIFY_PROTECTION_VMA,
      MMU_NOTIFY_PROTECTION_PAGE,
    ]).toEqual([0, 1, 2, 3]);
  });
});

describe('release at exit', () => {
  it('runs exactly once, before any page is freed, and no callback follows', () => {
    const k = createKernel();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    p.write(a, new Uint8Array(8 * PAGE_SIZE).fill(0x5a));
    const pfns = Array.from({ length: 8 }, (_, i) => p.pagemap(a + i * PAGE_SIZE).pfn!);
    let releases = 0;
    let seenAtRelease: number[] = [];
    let freeAtRelease = 0;
    const { calls, sub } = recorder({
      release: (_s, mm: MmStruct) => {
        releases++;
        // Everything is still mapped and held: the device can still flush to it.
        seenAtRelease = pfns.map((pfn) => k.phys.frames.refcount[pfn]);
        freeAtRelease = k.phys.nrFreePages();
        expect(mm.rssAnon).toBe(8);
      },
    });
    mmuNotifierRegister(sub, p.mm);
    const freeBefore = k.phys.nrFreePages();
    p.exit();
    expect(releases).toBe(1);
    expect(seenAtRelease).toEqual(new Array(8).fill(1));
    expect(freeAtRelease).toBe(freeBefore);
    expect(k.phys.nrFreePages()).toBeGreaterThan(freeBefore);
    expect(calls.filter((c) => c[0] !== 'release')).toEqual([]);
    // Unregistering after exit releases nothing again.
    mmuNotifierUnregister(sub, sub.mm!);
    expect(releases).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('arch_invalidate_secondary_tlbs', () => {
  it('is called with the range of every CPU TLB invalidation', () => {
    const k = createKernel();
    const p = k.spawn();
    const flushes: Array<[number, number]> = [];
    const sub = new MmuNotifier({
      archInvalidateSecondaryTlbs: (_s, _mm, s, e) => void flushes.push([s, e]),
    });
    expect(mmuNotifierRegister(sub, p.mm)).toBe(0);
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE));
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    p.munmap(a, 4 * PAGE_SIZE);
    // munmap of the two VMAs mprotect left is announced VMA by VMA here (the kernel's
    // unmap_vmas announces [a, a + 4 pages) once).
    expect(flushes).toEqual([
      [a, a + PAGE_SIZE],
      [a, a + PAGE_SIZE],
      [a + PAGE_SIZE, a + 4 * PAGE_SIZE],
    ]);
    p.exit();
  });
});

describe('mmuNotifierGet / mmuNotifierPut', () => {
  it('shares one subscription per ops and mm, and frees it after the last put', () => {
    const k = createKernel();
    const p = k.spawn();
    const freed: MmuNotifier[] = [];
    const allocs: MmStruct[] = [];
    const ops: MmuNotifierOps = {
      allocNotifier: (mm) => {
        allocs.push(mm);
        return new MmuNotifier(ops);
      },
      freeNotifier: (s) => void freed.push(s),
    };
    const a = mmuNotifierGet(ops, p.mm);
    const b = mmuNotifierGet(ops, p.mm);
    expect(b).toBe(a);
    expect(a.users).toBe(2);
    expect(allocs).toEqual([p.mm]);
    mmuNotifierPut(a);
    expect(freed).toEqual([]);
    expect(mmHasNotifiers(p.mm)).toBe(true);
    mmuNotifierPut(b);
    expect(freed).toEqual([a]);
    expect(mmHasNotifiers(p.mm)).toBe(false);
    p.exit();
  });

  it('defers freeNotifier of a put made inside release until the callbacks return', () => {
    const k = createKernel();
    const p = k.spawn();
    const log: string[] = [];
    const ops: MmuNotifierOps = {
      allocNotifier: () => new MmuNotifier(ops),
      release: (s) => {
        log.push('release');
        mmuNotifierPut(s);
        log.push('put returned');
      },
      freeNotifier: () => void log.push('free'),
    };
    mmuNotifierGet(ops, p.mm);
    p.exit();
    expect(log).toEqual(['release', 'put returned', 'free']);
  });

  it('throws KernelError when the mm is gone or the ops cannot allocate', () => {
    const k = createKernel();
    const p = k.spawn();
    expect(() => mmuNotifierGet({}, p.mm)).toThrow(KernelError);
    const mm = p.mm;
    p.exit();
    const freed: number[] = [];
    const ops: MmuNotifierOps = {
      allocNotifier: () => new MmuNotifier(ops),
      freeNotifier: () => void freed.push(1),
    };
    expect(() => mmuNotifierGet(ops, mm)).toThrow(expect.objectContaining({ errno: -ERRNO.EINVAL }));
    expect(freed).toEqual([1]);
  });
});

describe('non-blockable invalidation', () => {
  it('returns -EAGAIN when a subscriber cannot proceed, and ends the others that started', () => {
    const k = createKernel();
    const p = k.spawn();
    const log: string[] = [];
    const busy = new MmuNotifier({
      invalidateRangeStart: (_s, r: Readonly<MmuNotifierRange>) =>
        mmuNotifierRangeBlockable(r) ? 0 : -ERRNO.EAGAIN,
    });
    const fine = new MmuNotifier({
      invalidateRangeStart: () => void log.push('start'),
      invalidateRangeEnd: () => void log.push('end'),
    });
    mmuNotifierRegister(fine, p.mm);
    mmuNotifierRegister(busy, p.mm);
    const range = mmuNotifierRangeInit(MMU_NOTIFY_CLEAR, 0, p.mm, 0x10000, 0x20000);
    expect(mmuNotifierInvalidateRangeStartNonblock(range)).toBe(-ERRNO.EAGAIN);
    expect(log).toEqual(['start', 'end']);
    mmuNotifierUnregister(busy, p.mm);
    log.length = 0;
    const r2 = mmuNotifierRangeInit(MMU_NOTIFY_CLEAR, 0, p.mm, 0x10000, 0x20000);
    expect(mmuNotifierInvalidateRangeStartNonblock(r2)).toBe(0);
    mmuNotifierInvalidateRangeEnd(r2);
    expect(log).toEqual(['start', 'end']);
    p.exit();
  });
});
