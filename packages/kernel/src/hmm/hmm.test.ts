/**
 * hmmRangeFault's rules (mm/hmm.c): what each kind of entry reports with and without a fault
 * request, the errno of each refusal, the -EBUSY sequence protocol, per-page requests through
 * pfnFlagsMask, device-private pages of the caller's and of another owner, migration and
 * device-exclusive entries, and the order bits of huge mappings.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import type { Process } from '../proc/process';
import { ERRNO } from '../uapi/errno';
import {
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_HUGE_1GB,
  MAP_PRIVATE,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../uapi/mman';
import { remapPfnRange } from '../mm/device-map';
import { GFP_HIGHUSER_MOVABLE } from '../mm/gfp';
import {
  MEMORY_DEVICE_PRIVATE,
  folioTrylock,
  memremapPages,
  requestFreeMemRegion,
  zoneDevicePageInit,
  type DevPagemapFault,
  type PfnRange,
} from '../mm/memremap';
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  type MigrateVma,
} from '../mm/migrate-device';
import { MMU_NOTIFY_EXCLUSIVE } from '../mm/notifier-hooks';
import {
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalSetSeq,
} from '../mmu-notifier/interval-notifier';
import { MmuIntervalNotifier } from '../mmu-notifier/types';
import {
  HMM_PFN_DMA_MAPPED,
  HMM_PFN_ERROR,
  HMM_PFN_REQ_FAULT,
  HMM_PFN_REQ_WRITE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmmPfnToMapOrder,
  hmmPfnToPfn,
  hmmRangeFault,
  makeHmmPfn,
  type HmmRange,
} from './hmm';
import { makeDeviceExclusive, putDeviceExclusiveFolio } from './make-device-exclusive';

const booted: Kernel[] = [];

function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel({ memory: { nodes: [{ size: '64MiB' }], hugepages: { '2MiB': 2 } }, ...opts });
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

/** A device with private memory that migrates pages in and out (a toy dmirror). */
class Device {
  readonly free: number[] = [];
  readonly range: PfnRange;
  constructor(readonly k: Kernel) {
    const core = k.mmCore;
    this.range = requestFreeMemRegion(core, 16) as PfnRange;
    memremapPages(core, {
      type: MEMORY_DEVICE_PRIVATE,
      range: this.range,
      ops: { pageFree: (pfn) => this.free.push(pfn), migrateToRam: (vmf) => this.toRam(vmf) },
      owner: this,
    });
    for (let pfn = this.range.start; pfn < this.range.end; pfn++) this.free.push(pfn);
  }

  migrate(p: Process, addr: number): void {
    const core = this.k.mmCore;
    const args: MigrateVma = {
      vma: p.mm.vmaLookup(addr),
      start: addr,
      end: addr + PAGE_SIZE,
      src: new Float64Array(1),
      dst: new Float64Array(1),
      cpages: 0,
      npages: 0,
      pgmapOwner: this,
      flags: MIGRATE_VMA_SELECT_SYSTEM,
    };
    expect(migrateVmaSetup(args)).toBe(0);
    const d = this.free.pop()!;
    zoneDevicePageInit(core, d);
    const s = migratePfnToPage(args.src![0]);
    if (s >= 0) core.data.copyPage(d, s);
    args.dst![0] = migratePfn(d) + (args.src![0] & MIGRATE_PFN_WRITE ? MIGRATE_PFN_WRITE : 0);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
  }

  toRam(vmf: DevPagemapFault): number {
    const core = this.k.mmCore;
    const args: MigrateVma = {
      vma: vmf.vma,
      start: vmf.address,
      end: vmf.address + PAGE_SIZE,
      src: new Float64Array(1),
      dst: new Float64Array(1),
      cpages: 0,
      npages: 0,
      pgmapOwner: this,
      flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
      faultPage: vmf.page,
    };
    if (migrateVmaSetup(args)) return 2;
    if (args.src![0] & MIGRATE_PFN_MIGRATE) {
      const d = core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0);
      folioTrylock(core, d);
      core.data.copyPage(d, migratePfnToPage(args.src![0]));
      args.dst![0] = migratePfn(d) + (args.src![0] & MIGRATE_PFN_WRITE);
    }
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return 0;
  }
}

/** An interval notifier over the whole address space that only records sequence changes. */
function notifierOf(p: Process, log: number[] = []): MmuIntervalNotifier {
  const sub = new MmuIntervalNotifier();
  expect(
    mmuIntervalNotifierInsert(sub, p.mm, 0, 2 ** 47, {
      invalidate(s, range, seq) {
        log.push(range.event);
        mmuIntervalSetSeq(s, seq);
        return true;
      },
    }),
  ).toBe(0);
  return sub;
}

function range(p: Process, start: number, npages: number, o: Partial<HmmRange> = {}): HmmRange {
  const notifier = o.notifier ?? notifierOf(p);
  return {
    notifier,
    notifierSeq: mmuIntervalReadBegin(notifier),
    start,
    end: start + npages * PAGE_SIZE,
    hmmPfns: new Float64Array(npages),
    defaultFlags: 0,
    pfnFlagsMask: 0,
    devPrivateOwner: null,
    ...o,
  };
}

/** The driver loop: read_begin, hmmRangeFault, retry on -EBUSY. */
function faultLoop(r: HmmRange): number {
  for (let i = 0; i < 100; i++) {
    r.notifierSeq = mmuIntervalReadBegin(r.notifier);
    const ret = hmmRangeFault(r);
    if (ret !== -ERRNO.EBUSY) return ret;
  }
  return -ERRNO.EBUSY;
}

const FLAGS = HMM_PFN_VALID | HMM_PFN_WRITE | HMM_PFN_ERROR;
/** An address far below every mapping (mmap hands out addresses top-down). */
const NO_VMA = 0x100000;

describe('hmmRangeFault without fault requests (a snapshot)', () => {
  it('reports none, zero page, read-only and writable pages, and errors for holes and unreadable VMAs', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.madvise(a, 4 * PAGE_SIZE, MADV_NOHUGEPAGE);
    p.touch(a + PAGE_SIZE, PAGE_SIZE);
    p.write(a + 2 * PAGE_SIZE, new Uint8Array(2 * PAGE_SIZE).fill(1));
    p.mprotect(a + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    const none = p.mmap(PAGE_SIZE, { prot: PROT_NONE });
    const r = range(p, a, 4);
    expect(hmmRangeFault(r)).toBe(0);
    const v = [...r.hmmPfns];
    expect(v[0]).toBe(0);
    expect(v[1]).toBe(makeHmmPfn(k.mmCore.alloc.zeroPfn, HMM_PFN_VALID));
    expect(v[2] & FLAGS).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(hmmPfnToPfn(v[2])).toBe(p.pagemap(a + 2 * PAGE_SIZE).pfn);
    expect(v[3] & FLAGS).toBe(HMM_PFN_VALID);
    expect(hmmPfnToMapOrder(v[2])).toBe(0);
    const rn = range(p, none, 1, { notifier: r.notifier });
    expect(hmmRangeFault(rn)).toBe(0);
    expect(rn.hmmPfns[0]).toBe(HMM_PFN_ERROR);
    // A hole with no VMA.
    const rh = range(p, NO_VMA, 1, { notifier: r.notifier });
    expect(p.mm.vmaLookup(NO_VMA)).toBeNull();
    expect(hmmRangeFault(rh)).toBe(0);
    expect(rh.hmmPfns[0]).toBe(HMM_PFN_ERROR);
    // VM_IO / VM_PFNMAP mappings.
    const io = p.mmap(PAGE_SIZE);
    remapPfnRange(p.mm.vmaLookup(io)!, io, 2 ** 28, PAGE_SIZE);
    const ri = range(p, io, 1, { notifier: r.notifier });
    expect(hmmRangeFault(ri)).toBe(0);
    expect(ri.hmmPfns[0]).toBe(HMM_PFN_ERROR);
    // Nothing was faulted in.
    expect(p.pagemap(a).present).toBe(false);
  });

  it('carries the sticky input flags to the output', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([1]));
    const r = range(p, a, 1);
    r.hmmPfns[0] = HMM_PFN_DMA_MAPPED;
    expect(hmmRangeFault(r)).toBe(0);
    expect(r.hmmPfns[0] & HMM_PFN_DMA_MAPPED).toBe(HMM_PFN_DMA_MAPPED);
    expect(r.hmmPfns[0] & HMM_PFN_VALID).toBe(HMM_PFN_VALID);
  });
});

describe('hmmRangeFault with fault requests', () => {
  it('faults holes and read-only COW pages in, and answers -EPERM, -EFAULT where it cannot', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.madvise(a, 4 * PAGE_SIZE, MADV_NOHUGEPAGE);
    const r = range(p, a, 4, { defaultFlags: HMM_PFN_REQ_FAULT });
    expect(faultLoop(r)).toBe(0);
    // A read fault maps the zero page.
    expect([...r.hmmPfns].every((v) => v === makeHmmPfn(k.mmCore.alloc.zeroPfn, HMM_PFN_VALID))).toBe(true);
    const w = range(p, a, 4, { notifier: r.notifier, defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    expect(faultLoop(w)).toBe(0);
    expect([...w.hmmPfns].every((v) => (v & FLAGS) === (HMM_PFN_VALID | HMM_PFN_WRITE))).toBe(true);
    expect(p.pagemap(a + 3 * PAGE_SIZE).zeroPage).toBeUndefined();
    // Write on a read-only VMA, faults where no page can be.
    const ro = p.mmap(PAGE_SIZE, { prot: PROT_READ });
    expect(hmmRangeFault(range(p, ro, 1, { defaultFlags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE }))).toBe(
      -ERRNO.EPERM,
    );
    const none = p.mmap(PAGE_SIZE, { prot: PROT_NONE });
    expect(hmmRangeFault(range(p, none, 1, { defaultFlags: HMM_PFN_REQ_FAULT }))).toBe(-ERRNO.EFAULT);
    expect(hmmRangeFault(range(p, NO_VMA, 1, { defaultFlags: HMM_PFN_REQ_FAULT }))).toBe(-ERRNO.EFAULT);
    const io = p.mmap(PAGE_SIZE);
    remapPfnRange(p.mm.vmaLookup(io)!, io, 2 ** 28, PAGE_SIZE);
    expect(hmmRangeFault(range(p, io, 1, { defaultFlags: HMM_PFN_REQ_FAULT }))).toBe(-ERRNO.EFAULT);
  });

  it('returns -EBUSY once the interval was invalidated since notifierSeq, and after a COW break', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(2));
    const log: number[] = [];
    const sub = notifierOf(p, log);
    const r = range(p, a, 2, { notifier: sub, defaultFlags: HMM_PFN_REQ_FAULT });
    p.mprotect(a, 2 * PAGE_SIZE, PROT_READ);
    expect(hmmRangeFault(r)).toBe(-ERRNO.EBUSY);
    p.mprotect(a, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    const child = p.fork(); // the parent's pages are COW-shared now
    r.defaultFlags = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
    r.notifierSeq = mmuIntervalReadBegin(sub);
    // The write fault breaks COW (an invalidation): the next pass sees the sequence moved.
    expect(hmmRangeFault(r)).toBe(-ERRNO.EBUSY);
    expect(faultLoop(r)).toBe(0);
    expect([...r.hmmPfns].every((v) => v & HMM_PFN_WRITE)).toBe(true);
    expect(p.pagemap(a).pfn).not.toBe(child.pagemap(a).pfn);
    mmuIntervalNotifierRemove(sub);
  });

  it('faults from the first page requested through pfnFlagsMask to the end of its PMD', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.madvise(a, 4 * PAGE_SIZE, MADV_NOHUGEPAGE);
    // With a PTE table, pages are decided one by one (without one, the whole hole faults).
    p.write(a + 3 * PAGE_SIZE, new Uint8Array([1]));
    const r = range(p, a, 4, { pfnFlagsMask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE });
    r.hmmPfns[1] = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
    expect(faultLoop(r)).toBe(0);
    expect(r.hmmPfns[0]).toBe(0);
    expect(r.hmmPfns[1] & FLAGS).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(r.hmmPfns[2] & FLAGS).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(p.pagemap(a).present).toBe(false);
    // Without the mask the per-page requests are ignored.
    const q = range(p, a, 4, { notifier: r.notifier });
    q.hmmPfns.fill(HMM_PFN_REQ_FAULT);
    expect(hmmRangeFault(q)).toBe(0);
    expect(q.hmmPfns[0]).toBe(0);
    expect(p.pagemap(a).present).toBe(false);
    // A hole without a PTE table faults as a whole (hmm_vma_walk_hole over the PMD).
    const b = p.mmap(2 ** 22);
    p.madvise(b, 2 ** 22, MADV_NOHUGEPAGE);
    expect(b % 2 ** 21).toBe(0);
    const h = range(p, b, 4, { notifier: r.notifier, pfnFlagsMask: HMM_PFN_REQ_FAULT });
    h.hmmPfns[3] = HMM_PFN_REQ_FAULT;
    expect(faultLoop(h)).toBe(0);
    expect(p.pagemap(b).present).toBe(true);
  });

  it('reports a device-private page of its owner without faulting; another owner faults it back', () => {
    const k = boot();
    const mine = new Device(k);
    const theirs = new Device(k);
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(3));
    mine.migrate(p, a);
    theirs.migrate(p, a + PAGE_SIZE);
    const r = range(p, a, 2, { devPrivateOwner: mine, defaultFlags: 0 });
    expect(hmmRangeFault(r)).toBe(0);
    expect(r.hmmPfns[0] & FLAGS).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(hmmPfnToPfn(r.hmmPfns[0])).toBeGreaterThanOrEqual(mine.range.start);
    expect(r.hmmPfns[1]).toBe(0);
    r.defaultFlags = HMM_PFN_REQ_FAULT;
    expect(faultLoop(r)).toBe(0);
    expect(r.hmmPfns[0] & FLAGS).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(p.pagemap(a).devicePrivate).toBe(true);
    expect(p.pagemap(a + PAGE_SIZE).present).toBe(true);
    expect(r.hmmPfns[1] & FLAGS).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
    expect(p.read(a + PAGE_SIZE, 1)[0]).toBe(3);
  });

  it('waits out a migration entry (-EBUSY) and restores a device-exclusive entry when asked to fault', () => {
    const k = boot();
    const dev = new Device(k);
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(4));
    const args: MigrateVma = {
      vma: p.mm.vmaLookup(a),
      start: a,
      end: a + PAGE_SIZE,
      src: new Float64Array(1),
      dst: new Float64Array(1),
      cpages: 0,
      npages: 0,
      pgmapOwner: dev,
      flags: MIGRATE_VMA_SELECT_SYSTEM,
    };
    expect(migrateVmaSetup(args)).toBe(0);
    const ex = makeDeviceExclusive(p.mm, a + PAGE_SIZE, dev);
    if (typeof ex === 'number') throw new Error(`makeDeviceExclusive: ${ex}`);
    putDeviceExclusiveFolio(k.mmCore, ex.folio);
    const log: number[] = [];
    const sub = notifierOf(p, log);
    const r = range(p, a, 2, { notifier: sub });
    expect(hmmRangeFault(r)).toBe(0);
    expect([...r.hmmPfns]).toEqual([0, 0]);
    r.defaultFlags = HMM_PFN_REQ_FAULT;
    r.notifierSeq = mmuIntervalReadBegin(sub);
    expect(hmmRangeFault(r)).toBe(-ERRNO.EBUSY);
    expect(faultLoop(r)).toBe(0);
    expect([...r.hmmPfns].every((v) => (v & FLAGS) === (HMM_PFN_VALID | HMM_PFN_WRITE))).toBe(true);
    expect(log).toContain(MMU_NOTIFY_EXCLUSIVE);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(p.pagemap(a).present).toBe(true);
  });

  it('faults a swapped-out page back in when asked, reports nothing otherwise', () => {
    const k = boot({ swap: '16MiB' });
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array(PAGE_SIZE).fill(5));
    p.madvise(a, PAGE_SIZE, MADV_PAGEOUT);
    expect(p.status().vmSwap).toBe(PAGE_SIZE);
    const r = range(p, a, 1);
    expect(hmmRangeFault(r)).toBe(0);
    expect(r.hmmPfns[0]).toBe(0);
    r.defaultFlags = HMM_PFN_REQ_FAULT;
    expect(faultLoop(r)).toBe(0);
    expect(r.hmmPfns[0] & HMM_PFN_VALID).toBe(HMM_PFN_VALID);
    expect(p.read(a, 1)[0]).toBe(5);
  });
});

describe('hmmRangeFault order bits and arguments', () => {
  it('reports order 9 for a THP and a 2 MiB hugetlb page, 18 for a 1 GiB one', () => {
    const k = boot({ memory: { nodes: [{ size: '2GiB' }], hugepages: { '2MiB': 1, '1GiB': 1 } } });
    const p = k.spawn();
    const len = 2 ** 21;
    const thp = p.mmap(len);
    p.madvise(thp, len, MADV_HUGEPAGE);
    p.write(thp, new Uint8Array([1]));
    const r = range(p, thp, 512);
    expect(hmmRangeFault(r)).toBe(0);
    expect(hmmPfnToMapOrder(r.hmmPfns[0])).toBe(9);
    expect(hmmPfnToPfn(r.hmmPfns[511]) - hmmPfnToPfn(r.hmmPfns[0])).toBe(511);
    const huge = p.mmap(len, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    const h = range(p, huge, 512, { notifier: r.notifier, defaultFlags: HMM_PFN_REQ_FAULT });
    expect(faultLoop(h)).toBe(0);
    expect(hmmPfnToMapOrder(h.hmmPfns[7])).toBe(9);
    expect(h.hmmPfns[7] & FLAGS).toBe(HMM_PFN_VALID);
    const gig = p.mmap(2 ** 30, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB });
    p.write(gig, new Uint8Array([1]));
    const g = range(p, gig, 4, { notifier: r.notifier });
    expect(hmmRangeFault(g)).toBe(0);
    expect(hmmPfnToMapOrder(g.hmmPfns[3])).toBe(18);
    expect(g.hmmPfns[3] & FLAGS).toBe(HMM_PFN_VALID | HMM_PFN_WRITE);
  });

  it('answers -EINVAL for a notifier not inserted, unaligned or empty ranges and short arrays', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE, { prot: PROT_READ | PROT_WRITE });
    const ok = range(p, a, 2);
    expect(hmmRangeFault({ ...ok, notifier: new MmuIntervalNotifier() })).toBe(-ERRNO.EINVAL);
    expect(hmmRangeFault({ ...ok, start: a + 1 })).toBe(-ERRNO.EINVAL);
    expect(hmmRangeFault({ ...ok, end: a })).toBe(-ERRNO.EINVAL);
    expect(hmmRangeFault({ ...ok, hmmPfns: new Float64Array(1) })).toBe(-ERRNO.EINVAL);
    expect(hmmRangeFault(ok)).toBe(0);
  });
});
