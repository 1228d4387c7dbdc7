/**
 * ZONE_DEVICE memory (memremap.ts) and device migration (migrate-device.ts) through a toy
 * driver: memremapPages' errno table, migrateVmaSetup's -EINVAL rules, what setup collects and
 * skips, commit and finalize, cancellation by a CPU access / fork / munmap between setup and
 * finalize, device-private entries under fork, mprotect, munmap and exit, migrateDeviceRange.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { ERRNO, SyscallError } from '../uapi/errno';
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
import { FOLL_WRITE } from '../gup/foll-flags';
import { getUserPages, gupPutPages, pinUserPages, unpinUserPages } from '../gup/gup';
import { mmuIntervalNotifierInsert, mmuIntervalSetSeq } from '../mmu-notifier';
import { MmuIntervalNotifier } from '../mmu-notifier/types';
import { VM_FAULT_SIGBUS } from './fault-flags';
import { GFP_HIGHUSER_MOVABLE } from './gfp';
import {
  MEMORY_DEVICE_COHERENT,
  MEMORY_DEVICE_PRIVATE,
  folioTrylock,
  folioUnlock,
  isDevicePrivatePage,
  isZoneDevicePage,
  memremapPages,
  memunmapPages,
  pagePgmap,
  releaseMemRegion,
  requestFreeMemRegion,
  zoneDevicePageInit,
  type DevPagemap,
  type DevPagemapFault,
  type PfnRange,
} from './memremap';
import {
  MIGRATE_PFN_MIGRATE,
  MIGRATE_PFN_VALID,
  MIGRATE_PFN_WRITE,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_SYSTEM,
  inflightDeviceMigrations,
  migrateDeviceFinalize,
  migrateDevicePages,
  migrateDevicePfns,
  migrateDeviceRange,
  migratePfn,
  migratePfnToPage,
  migrateVmaFinalize,
  migrateVmaPages,
  migrateVmaSetup,
  type MigrateVma,
} from './migrate-device';
import type { MmCore } from './mm-core';
import { MMU_NOTIFY_MIGRATE, type MmuNotifierRange } from './notifier-hooks';
import { PG_anon_exclusive, PG_locked } from './page-flags';
import { remapPfnRange } from './device-map';

const booted: Kernel[] = [];

function boot(): Kernel {
  const k = createKernel({
    memory: { nodes: [{ size: '64MiB' }], hugepages: { '2MiB': 2 }, zoneDevice: 256 * PAGE_SIZE },
  });
  booted.push(k);
  return k;
}

afterEach(() => {
  for (const k of booted.splice(0)) {
    expect(k.checkInvariants()).toEqual([]);
    for (const p of k.processList()) p.exit();
    expect(k.checkInvariants()).toEqual([]);
    expect(inflightDeviceMigrations(k.mmCore)).toBe(0);
  }
});

/** A minimal device-private driver: a pool of device pages and a migrate_to_ram. */
class ToyDevice {
  readonly pagemap: DevPagemap;
  readonly range: PfnRange;
  readonly free: number[] = [];
  freed = 0;
  faults = 0;
  failFault = false;
  readonly core: MmCore;

  constructor(k: Kernel, nrPages = 32) {
    this.core = k.mmCore;
    const r = requestFreeMemRegion(this.core, nrPages, 'toy');
    if (typeof r === 'number') throw new Error(`region: ${r}`);
    this.range = r;
    this.pagemap = {
      type: MEMORY_DEVICE_PRIVATE,
      range: r,
      ops: {
        pageFree: (pfn) => {
          this.freed++;
          this.free.push(pfn);
        },
        migrateToRam: (vmf) => this.migrateToRam(vmf),
      },
      owner: this,
    };
    expect(memremapPages(this.core, this.pagemap)).toBe(r.start);
    for (let pfn = r.end - 1; pfn >= r.start; pfn--) this.free.push(pfn);
  }

  alloc(): number {
    const pfn = this.free.pop();
    if (pfn === undefined) return -1;
    expect(zoneDevicePageInit(this.core, pfn)).toBe(0);
    return pfn;
  }

  /** Device memory for every page to migrate, with its bytes (the driver's alloc_and_copy). */
  allocAndCopy(args: MigrateVma): void {
    for (let i = 0; i < args.npages; i++) {
      if (!(args.src![i] & MIGRATE_PFN_MIGRATE)) continue;
      const spage = migratePfnToPage(args.src![i]);
      const dpage = this.alloc();
      if (dpage < 0) continue;
      if (spage >= 0) this.core.data.copyPage(dpage, spage);
      else this.core.data.clear(dpage);
      args.dst![i] =
        migratePfn(dpage) + (args.src![i] & MIGRATE_PFN_WRITE || spage < 0 ? MIGRATE_PFN_WRITE : 0);
    }
  }

  args(p: Process, addr: number, npages: number, flags = MIGRATE_VMA_SELECT_SYSTEM): MigrateVma {
    return {
      vma: p.mm.vmaLookup(addr),
      start: addr,
      end: addr + npages * PAGE_SIZE,
      src: new Float64Array(npages),
      dst: new Float64Array(npages),
      cpages: 0,
      npages: 0,
      pgmapOwner: this,
      flags,
    };
  }

  /** The whole migration to device memory. */
  toDevice(p: Process, addr: number, npages: number): MigrateVma {
    const args = this.args(p, addr, npages);
    expect(migrateVmaSetup(args)).toBe(0);
    this.allocAndCopy(args);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return args;
  }

  /** System pages for device pages going back (dmirror_devmem_fault_alloc_and_copy). */
  backToRam(args: MigrateVma): void {
    for (let i = 0; i < args.npages; i++) {
      const spage = migratePfnToPage(args.src![i]);
      if (spage < 0 || !(args.src![i] & MIGRATE_PFN_MIGRATE)) continue;
      const dpage = this.core.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0);
      folioTrylock(this.core, dpage);
      this.core.data.copyPage(dpage, spage);
      args.dst![i] = migratePfn(dpage) + (args.src![i] & MIGRATE_PFN_WRITE);
    }
  }

  migrateToRam(vmf: DevPagemapFault): number {
    this.faults++;
    if (this.failFault) return VM_FAULT_SIGBUS;
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
    if (migrateVmaSetup(args)) return VM_FAULT_SIGBUS;
    this.backToRam(args);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    return 0;
  }
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255;
  return b;
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

/** Record the MMU notifier events reaching an interval over the whole address space. */
function recordEvents(p: Process): Array<Pick<MmuNotifierRange, 'event' | 'start' | 'end' | 'owner'>> {
  const events: Array<Pick<MmuNotifierRange, 'event' | 'start' | 'end' | 'owner'>> = [];
  const sub = new MmuIntervalNotifier();
  expect(
    mmuIntervalNotifierInsert(sub, p.mm, 0, 2 ** 47, {
      invalidate(s, range, seq) {
        mmuIntervalSetSeq(s, seq);
        events.push({ event: range.event, start: range.start, end: range.end, owner: range.owner });
        return true;
      },
    }),
  ).toBe(0);
  return events;
}

describe('memremapPages and device pages', () => {
  it('answers the kernel errno for every malformed pagemap', () => {
    const k = boot();
    const core = k.mmCore;
    const r = requestFreeMemRegion(core, 16) as PfnRange;
    const ops = { pageFree: () => {}, migrateToRam: () => 0 };
    const pm = (o: Partial<DevPagemap>): DevPagemap => ({
      type: MEMORY_DEVICE_PRIVATE,
      range: r,
      ops,
      owner: 1,
      ...o,
    });
    expect(memremapPages(core, pm({ ops: { pageFree: () => {} } }))).toBe(-ERRNO.EINVAL);
    expect(memremapPages(core, pm({ ops: { migrateToRam: () => 0 } }))).toBe(-ERRNO.EINVAL);
    expect(memremapPages(core, pm({ ops: null }))).toBe(-ERRNO.EINVAL);
    expect(memremapPages(core, pm({ owner: null }))).toBe(-ERRNO.EINVAL);
    expect(memremapPages(core, pm({ type: MEMORY_DEVICE_COHERENT }))).toBe(-ERRNO.EOPNOTSUPP);
    expect(memremapPages(core, pm({ type: 77 }))).toBe(-ERRNO.EINVAL);
    expect(memremapPages(core, pm({ range: { start: r.start, end: r.start } }))).toBe(-ERRNO.EINVAL);
    expect(memremapPages(core, pm({ range: { start: 100, end: 116 } }))).toBe(-ERRNO.ENXIO);
    const cap = core.frames.capacity;
    expect(memremapPages(core, pm({ range: { start: cap - 4, end: cap + 4 } }))).toBe(-ERRNO.ENOMEM);
    const good = pm({});
    expect(memremapPages(core, good)).toBe(r.start);
    expect(memremapPages(core, good)).toBe(-ERRNO.EEXIST);
    expect(memremapPages(core, pm({ range: { start: r.start + 8, end: r.end + 8 } }))).toBe(-ERRNO.ENOMEM);
    expect(k.dmesg().some((l) => l.includes('Missing migrate_to_ram method'))).toBe(true);
    expect(isZoneDevicePage(core, r.start)).toBe(true);
    expect(isDevicePrivatePage(core, r.end - 1)).toBe(true);
    expect(isDevicePrivatePage(core, r.end)).toBe(false);
    expect(isDevicePrivatePage(core, 100)).toBe(false);
    expect(pagePgmap(core, r.start + 3)).toBe(good);
    // A page in use keeps the pagemap and its region.
    expect(zoneDevicePageInit(core, r.start)).toBe(0);
    expect(zoneDevicePageInit(core, r.start)).toBe(-ERRNO.EBUSY);
    expect(zoneDevicePageInit(core, 100)).toBe(-ERRNO.EINVAL);
    expect(memunmapPages(core, good)).toBe(-ERRNO.EBUSY);
    expect(releaseMemRegion(core, r)).toBe(-ERRNO.EBUSY);
    folioUnlock(core, r.start);
    core.frames.refcount[r.start] = 0;
    expect(memunmapPages(core, good)).toBe(0);
    expect(memunmapPages(core, good)).toBe(-ERRNO.EINVAL);
    expect(isZoneDevicePage(core, r.start)).toBe(false);
    expect(releaseMemRegion(core, r)).toBe(0);
    expect(releaseMemRegion(core, r)).toBe(-ERRNO.EINVAL);
  });

  it('hands out regions of the ZONE_DEVICE pfn space until it is used up', () => {
    const k = boot();
    const core = k.mmCore;
    expect(requestFreeMemRegion(core, 0)).toBe(-ERRNO.EINVAL);
    expect(requestFreeMemRegion(core, 1.5)).toBe(-ERRNO.EINVAL);
    const a = requestFreeMemRegion(core, 200) as PfnRange;
    expect(a.start).toBe(core.frames.count);
    expect(requestFreeMemRegion(core, 100)).toBe(-ERRNO.ERANGE);
    const b = requestFreeMemRegion(core, 56) as PfnRange;
    expect(b.start).toBe(a.end);
    expect(releaseMemRegion(core, a)).toBe(0);
    expect((requestFreeMemRegion(core, 100) as PfnRange).start).toBe(a.start);
  });

  it('createKernel sizes the pfn space and refuses a partial page', () => {
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }], zoneDevice: '1MiB' } });
    expect(k.phys.frames.capacity - k.phys.frames.count).toBe(256);
    expect(() => createKernel({ memory: { nodes: [{ size: '64MiB' }], zoneDevice: 100 } })).toThrow(
      RangeError,
    );
  });
});

describe('migrateVmaSetup argument checks', () => {
  it('answers -EINVAL for every rule of migrate_vma_setup', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(8 * PAGE_SIZE);
    const vma = p.mm.vmaLookup(addr)!;
    const huge = p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    const special = p.mmap(4 * PAGE_SIZE);
    expect(remapPfnRange(p.mm.vmaLookup(special)!, special, 2 ** 28, 4 * PAGE_SIZE)).toBe(0);
    const ok = (o: Partial<MigrateVma> = {}): MigrateVma => ({ ...dev.args(p, addr, 4), ...o });
    const locked = dev.alloc();
    const unlocked = dev.alloc();
    folioUnlock(k.mmCore, unlocked);
    const cases: Array<[string, Partial<MigrateVma>]> = [
      ['no VMA', { vma: null }],
      ['hugetlb VMA', { vma: p.mm.vmaLookup(huge), start: huge, end: huge + PAGE_SIZE }],
      ['VM_SPECIAL VMA', { vma: p.mm.vmaLookup(special), start: special, end: special + PAGE_SIZE }],
      ['end == start', { end: addr }],
      ['end < start', { start: addr + PAGE_SIZE, end: addr }],
      ['less than a page', { start: addr + 100, end: addr + PAGE_SIZE }],
      ['start below the VMA', { start: addr - PAGE_SIZE }],
      ['start at the VMA end', { start: vma.end, end: vma.end + PAGE_SIZE }],
      ['end beyond the VMA', { end: vma.end + PAGE_SIZE }],
      ['no src', { src: null }],
      ['no dst', { dst: null }],
      ['fault page in system memory', { faultPage: k.mmCore.alloc.zeroPfn }],
      ['fault page not locked', { faultPage: unlocked }],
      ['src too short', { src: new Float64Array(2) }],
      ['non-integer start', { start: addr + 0.5 }],
    ];
    for (const [what, o] of cases) expect([what, migrateVmaSetup(ok(o))]).toEqual([what, -ERRNO.EINVAL]);
    // A locked device page is accepted as the fault page; unaligned bounds are masked.
    const a = ok({ faultPage: locked, start: addr + 10, end: addr + 2 * PAGE_SIZE + 10 });
    expect(migrateVmaSetup(a)).toBe(0);
    expect([a.start, a.end, a.npages]).toEqual([addr, addr + 2 * PAGE_SIZE, 2]);
    migrateVmaFinalize(a);
    folioUnlock(k.mmCore, locked);
    for (const pfn of [locked, unlocked]) {
      k.mmCore.frames.refcount[pfn] = 0;
      dev.free.push(pfn);
    }
    // A dead mm's VMA.
    const q = k.spawn();
    const qa = q.mmap(PAGE_SIZE);
    const qvma = q.mm.vmaLookup(qa);
    q.exit();
    expect(migrateVmaSetup({ ...dev.args(p, addr, 1), vma: qvma, start: qa, end: qa + PAGE_SIZE })).toBe(
      -ERRNO.EINVAL,
    );
  });
});

describe('migrateVmaSetup collects', () => {
  it('holes and the zero page as MIGRATE without a page, present pages with their write bit, and announces MIGRATE with the owner', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(4 * PAGE_SIZE);
    p.madvise(addr, 4 * PAGE_SIZE, MADV_NOHUGEPAGE);
    p.touch(addr + PAGE_SIZE, PAGE_SIZE); // the zero page
    p.write(addr + 2 * PAGE_SIZE, pattern(PAGE_SIZE, 1));
    p.write(addr + 3 * PAGE_SIZE, pattern(PAGE_SIZE, 2));
    p.mprotect(addr + 3 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    const events = recordEvents(p);
    const pfn2 = p.pagemap(addr + 2 * PAGE_SIZE).pfn!;
    const args = dev.args(p, addr, 3);
    expect(migrateVmaSetup(args)).toBe(0);
    expect(args.cpages).toBe(3);
    expect(args.npages).toBe(3);
    expect([...args.src!]).toEqual([
      MIGRATE_PFN_MIGRATE,
      MIGRATE_PFN_MIGRATE,
      migratePfn(pfn2) + MIGRATE_PFN_MIGRATE + MIGRATE_PFN_WRITE,
    ]);
    expect(events[0]).toEqual({
      event: MMU_NOTIFY_MIGRATE,
      start: addr,
      end: addr + 3 * PAGE_SIZE,
      owner: dev,
    });
    // Locked and unmapped meanwhile; the checker balances the migration's references.
    expect(k.mmCore.frames.flags[pfn2] & PG_locked).toBeTruthy();
    expect(p.pagemap(addr + 2 * PAGE_SIZE).present).toBe(false);
    expect(k.checkInvariants()).toEqual([]);
    dev.allocAndCopy(args);
    migrateVmaPages(args);
    expect(k.checkInvariants()).toEqual([]);
    migrateVmaFinalize(args);
    // A read-only page (its own VMA after mprotect) is collected without MIGRATE_PFN_WRITE.
    const ro = dev.args(p, addr + 3 * PAGE_SIZE, 1);
    expect(migrateVmaSetup(ro)).toBe(0);
    expect(ro.src![0] & (MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE)).toBe(
      MIGRATE_PFN_VALID | MIGRATE_PFN_MIGRATE,
    );
    dev.allocAndCopy(ro);
    migrateVmaPages(ro);
    migrateVmaFinalize(ro);
    for (let i = 0; i < 4; i++) expect(p.pagemap(addr + i * PAGE_SIZE).devicePrivate).toBe(true);
    const want = Buffer.concat([new Uint8Array(2 * PAGE_SIZE), pattern(PAGE_SIZE, 1), pattern(PAGE_SIZE, 2)]);
    expect(Buffer.compare(p.read(addr, 4 * PAGE_SIZE), want)).toBe(0);
    // The read-only page came back read-only; writable ones writable.
    expect(errnoOf(() => p.write(addr + 3 * PAGE_SIZE, new Uint8Array(1)))).toBe(-ERRNO.EFAULT);
    p.write(addr + 2 * PAGE_SIZE, new Uint8Array([9]));
    expect(dev.faults).toBe(4);
  });

  it('skips pinned, locked, shared-memory and other devices pages, and pages not selected', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const other = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(6 * PAGE_SIZE);
    p.madvise(addr, 6 * PAGE_SIZE, MADV_NOHUGEPAGE);
    p.write(addr, pattern(6 * PAGE_SIZE, 3));
    other.toDevice(p, addr + 5 * PAGE_SIZE, 1);
    const pins = new Int32Array(1);
    expect(pinUserPages(p.mm, addr, 1, FOLL_WRITE, pins)).toBe(1);
    const gets = new Int32Array(1);
    expect(getUserPages(p.mm, addr + PAGE_SIZE, 1, 0, gets)).toBe(1);
    const lockedPfn = p.pagemap(addr + 2 * PAGE_SIZE).pfn!;
    folioTrylock(k.mmCore, lockedPfn);
    const args = dev.args(p, addr, 6, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_DEVICE_PRIVATE);
    expect(migrateVmaSetup(args)).toBe(0);
    expect([...args.src!].map((v) => (v & MIGRATE_PFN_MIGRATE ? 1 : 0))).toEqual([0, 0, 0, 1, 1, 0]);
    expect(args.cpages).toBe(2);
    // The skipped pages stay mapped (the pinned one and the referenced one were restored).
    expect(p.pagemap(addr).present && p.pagemap(addr + PAGE_SIZE).present).toBe(true);
    migrateVmaFinalize(args);
    folioUnlock(k.mmCore, lockedPfn);
    unpinUserPages(k.mmCore, pins, 1);
    gupPutPages(k.mmCore, gets, 1);
    // Without SELECT_SYSTEM nothing in system memory is collected; shared memory never moves.
    const none = dev.args(p, addr, 5, MIGRATE_VMA_SELECT_DEVICE_PRIVATE);
    expect(migrateVmaSetup(none)).toBe(0);
    expect(none.cpages).toBe(0);
    migrateVmaFinalize(none);
    const shm = p.mmap(2 * PAGE_SIZE, { flags: MAP_SHARED | MAP_ANONYMOUS });
    p.write(shm, pattern(PAGE_SIZE, 4));
    const s = dev.toDevice(p, shm, 2);
    expect(s.src![1]).toBe(0); // a hole of a shared mapping
    expect(s.src![0] & MIGRATE_PFN_MIGRATE).toBe(0); // collected, refused by migrateVmaPages
    expect(p.pagemap(shm).present).toBe(true);
    expect(Buffer.compare(p.read(addr, 6 * PAGE_SIZE), pattern(6 * PAGE_SIZE, 3))).toBe(0);
  });

  it('splits a THP first, but not a pinned one', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const len = 2 ** 21;
    const addr = p.mmap(len);
    p.madvise(addr, len, MADV_HUGEPAGE);
    p.write(addr, pattern(len, 5));
    expect(p.pagemap(addr).huge).toBe('2MiB');
    const a = dev.toDevice(p, addr, 4);
    expect(a.cpages).toBe(4);
    expect(p.pagemap(addr).devicePrivate).toBe(true);
    expect(p.pagemap(addr + 4 * PAGE_SIZE).huge).toBeUndefined();
    const b2 = p.mmap(len);
    p.madvise(b2, len, MADV_HUGEPAGE);
    p.write(b2, pattern(PAGE_SIZE, 6));
    const pins = new Int32Array(1);
    expect(pinUserPages(p.mm, b2 + PAGE_SIZE, 1, FOLL_WRITE, pins)).toBe(1);
    const b = dev.toDevice(p, b2, 4);
    expect(b.cpages).toBe(0);
    expect(p.pagemap(b2).huge).toBe('2MiB');
    unpinUserPages(k.mmCore, pins, 1);
    expect(Buffer.compare(p.read(addr, len), pattern(len, 5))).toBe(0);
  });
});

describe('migrateVmaPages and migrateVmaFinalize', () => {
  it('restores the source where the driver gave no destination, and maps holes at once', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(4 * PAGE_SIZE);
    p.madvise(addr, 4 * PAGE_SIZE, MADV_NOHUGEPAGE);
    p.write(addr, pattern(2 * PAGE_SIZE, 7));
    const args = dev.args(p, addr, 4);
    expect(migrateVmaSetup(args)).toBe(0);
    dev.allocAndCopy(args);
    // Give back the destination of page 1: it must stay in system memory.
    const d1 = migratePfnToPage(args.dst![1]);
    args.dst![1] = 0;
    migrateVmaPages(args);
    expect(args.src![1] & MIGRATE_PFN_MIGRATE).toBe(0);
    // The hole at page 2 is mapped by migrateVmaPages already.
    expect(p.pagemap(addr + 2 * PAGE_SIZE).devicePrivate).toBe(true);
    migrateVmaFinalize(args);
    folioUnlock(k.mmCore, d1);
    k.mmCore.frames.refcount[d1] = 0;
    dev.free.push(d1);
    expect(p.pagemap(addr).devicePrivate).toBe(true);
    expect(p.pagemap(addr + PAGE_SIZE).present).toBe(true);
    expect(
      Buffer.compare(
        p.read(addr, 4 * PAGE_SIZE),
        Buffer.concat([pattern(2 * PAGE_SIZE, 7), new Uint8Array(2 * PAGE_SIZE)]),
      ),
    ).toBe(0);
  });

  it('brings pages back PROT_NONE into a VMA without access', () => {
    const k = boot();
    const dev = new ToyDevice(k, 4);
    const p = k.spawn();
    const addr = p.mmap(PAGE_SIZE);
    p.write(addr, pattern(PAGE_SIZE, 17));
    dev.toDevice(p, addr, 1);
    p.mprotect(addr, PAGE_SIZE, PROT_NONE);
    const src = new Float64Array(4);
    const dst = new Float64Array(4);
    expect(migrateDeviceRange(k.mmCore, src, dev.range.start, 4)).toBe(0);
    for (let i = 0; i < 4; i++) {
      const s = migratePfnToPage(src[i]);
      if (s < 0) continue;
      const d = k.mmCore.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0);
      folioTrylock(k.mmCore, d);
      k.mmCore.data.copyPage(d, s);
      dst[i] = migratePfn(d);
    }
    migrateDevicePages(k.mmCore, src, dst, 4);
    migrateDeviceFinalize(k.mmCore, src, dst, 4);
    expect(p.pagemap(addr).present).toBe(true);
    expect(errnoOf(() => p.read(addr, 1))).toBe(-ERRNO.EFAULT);
    p.mprotect(addr, PAGE_SIZE, PROT_READ);
    expect(Buffer.compare(p.read(addr, PAGE_SIZE), pattern(PAGE_SIZE, 17))).toBe(0);
  });

  it('fails a page someone referenced between setup and pages', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(PAGE_SIZE);
    p.write(addr, pattern(PAGE_SIZE, 8));
    const args = dev.args(p, addr, 1);
    expect(migrateVmaSetup(args)).toBe(0);
    const src = migratePfnToPage(args.src![0]);
    k.mmCore.frames.refcount[src]++; // a speculative reference
    dev.allocAndCopy(args);
    migrateVmaPages(args);
    expect(args.src![0] & MIGRATE_PFN_MIGRATE).toBe(0);
    migrateVmaFinalize(args);
    k.mmCore.frames.refcount[src]--;
    expect(p.pagemap(addr).pfn).toBe(src);
    expect(dev.freed).toBe(1);
  });
});

describe('between setup and finalize', () => {
  function setupWindow(k: Kernel, dev: ToyDevice, p: Process, addr: number, n: number): MigrateVma {
    const args = dev.args(p, addr, n);
    expect(migrateVmaSetup(args)).toBe(0);
    dev.allocAndCopy(args);
    return args;
  }

  it('a CPU access cancels that page: data intact, destination released, secondary MMUs told', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(2 * PAGE_SIZE);
    p.write(addr, pattern(2 * PAGE_SIZE, 9));
    const args = setupWindow(k, dev, p, addr, 2);
    migrateVmaPages(args);
    expect(k.checkInvariants()).toEqual([]);
    const events = recordEvents(p);
    expect(Buffer.compare(p.read(addr, PAGE_SIZE), pattern(2 * PAGE_SIZE, 9).subarray(0, PAGE_SIZE))).toBe(0);
    expect(args.src![0]).toBe(0);
    expect(args.dst![0]).toBe(0);
    expect(events.some((e) => e.event === MMU_NOTIFY_MIGRATE && e.owner === null && e.start === addr)).toBe(
      true,
    );
    expect(dev.freed).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
    migrateVmaFinalize(args);
    expect(p.pagemap(addr).present).toBe(true);
    expect(p.pagemap(addr + PAGE_SIZE).devicePrivate).toBe(true);
    expect(Buffer.compare(p.read(addr, 2 * PAGE_SIZE), pattern(2 * PAGE_SIZE, 9))).toBe(0);
  });

  it('GUP cancels too, and fork copies the restored page', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(2 * PAGE_SIZE);
    p.write(addr, pattern(2 * PAGE_SIZE, 10));
    const args = setupWindow(k, dev, p, addr, 2);
    const pages = new Int32Array(1);
    expect(getUserPages(p.mm, addr, 1, FOLL_WRITE, pages)).toBe(1);
    gupPutPages(k.mmCore, pages, 1);
    const child = p.fork();
    expect(args.src![1]).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    migrateVmaPages(args);
    migrateVmaFinalize(args);
    expect(Buffer.compare(child.read(addr, 2 * PAGE_SIZE), pattern(2 * PAGE_SIZE, 10))).toBe(0);
    child.write(addr, new Uint8Array([1]));
    expect(Buffer.compare(p.read(addr, 2 * PAGE_SIZE), pattern(2 * PAGE_SIZE, 10))).toBe(0);
  });

  it('munmap and exit drop the entries; finalize frees what nothing maps', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(2 * PAGE_SIZE);
    p.write(addr, pattern(2 * PAGE_SIZE, 11));
    const free = k.phys.nrFreePages();
    const args = setupWindow(k, dev, p, addr, 2);
    migrateVmaPages(args);
    p.munmap(addr, 2 * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
    migrateVmaFinalize(args);
    expect(dev.freed).toBe(2);
    expect(k.phys.nrFreePages()).toBe(free + 2);
    // Device pages in flight when the process exits.
    const q = k.spawn();
    const b = q.mmap(PAGE_SIZE);
    q.write(b, pattern(PAGE_SIZE, 12));
    dev.toDevice(q, b, 1);
    const back = dev.args(q, b, 1, MIGRATE_VMA_SELECT_DEVICE_PRIVATE);
    expect(migrateVmaSetup(back)).toBe(0);
    q.exit();
    dev.backToRam(back);
    migrateVmaPages(back);
    migrateVmaFinalize(back);
    expect(dev.freed).toBe(3);
  });
});

describe('device-private entries', () => {
  it('fork shares them read-only; each side faults its own way back', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(PAGE_SIZE);
    p.write(addr, pattern(PAGE_SIZE, 13));
    dev.toDevice(p, addr, 1);
    const dpage = p.mm.pgtable.walk(addr, false)![p.mm.pgtable.slot];
    expect(k.mmCore.frames.flags[dpage] & PG_anon_exclusive).toBeTruthy();
    const child = p.fork();
    expect(k.mmCore.frames.mapcount[dpage]).toBe(2);
    expect(k.mmCore.frames.flags[dpage] & PG_anon_exclusive).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    child.write(addr, new Uint8Array([0xee]));
    expect(p.read(addr, 1)[0]).toBe(pattern(1, 13)[0]);
    expect(child.read(addr, 1)[0]).toBe(0xee);
    expect(dev.freed).toBe(1);
  });

  it('mprotect(PROT_READ) makes them read-only; munmap and exit hand the pages back', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(3 * PAGE_SIZE);
    p.write(addr, pattern(3 * PAGE_SIZE, 14));
    dev.toDevice(p, addr, 3);
    p.mprotect(addr, PAGE_SIZE, PROT_READ);
    expect(k.checkInvariants()).toEqual([]);
    expect(p.read(addr, 1)[0]).toBe(pattern(1, 14)[0]);
    expect(errnoOf(() => p.write(addr, new Uint8Array(1)))).toBe(-ERRNO.EFAULT);
    p.mprotect(addr, PAGE_SIZE, PROT_READ | PROT_WRITE);
    p.write(addr, new Uint8Array(1));
    const rss = p.status().vmRss;
    p.munmap(addr + PAGE_SIZE, PAGE_SIZE);
    expect(p.status().vmRss).toBe(rss - PAGE_SIZE);
    expect(dev.freed).toBe(2);
    p.exit();
    expect(dev.freed).toBe(3);
  });

  it('a migrate_to_ram failure (VM_FAULT_SIGBUS) fails the access with EFAULT, GUP too', () => {
    const k = boot();
    const dev = new ToyDevice(k);
    const p = k.spawn();
    const addr = p.mmap(PAGE_SIZE);
    p.write(addr, pattern(PAGE_SIZE, 15));
    dev.toDevice(p, addr, 1);
    dev.failFault = true;
    expect(errnoOf(() => p.read(addr, 1))).toBe(-ERRNO.EFAULT);
    expect(getUserPages(p.mm, addr, 1, 0, new Int32Array(1))).toBe(-ERRNO.EFAULT);
    dev.failFault = false;
    expect(Buffer.compare(p.read(addr, PAGE_SIZE), pattern(PAGE_SIZE, 15))).toBe(0);
  });

  it('migrateDeviceRange evicts by pfn, including pages two processes share', () => {
    const k = boot();
    const dev = new ToyDevice(k, 8);
    const p = k.spawn();
    const addr = p.mmap(2 * PAGE_SIZE);
    p.write(addr, pattern(2 * PAGE_SIZE, 16));
    dev.toDevice(p, addr, 2);
    const child = p.fork();
    const src = new Float64Array(8);
    const dst = new Float64Array(8);
    expect(migrateDeviceRange(k.mmCore, new Float64Array(2), dev.range.start, 8)).toBe(-ERRNO.EINVAL);
    expect(migrateDeviceRange(k.mmCore, src, 5, 8)).toBe(-ERRNO.EINVAL);
    expect(migrateDeviceRange(k.mmCore, src, dev.range.start, 8)).toBe(0);
    expect([...src].filter((v) => v & MIGRATE_PFN_MIGRATE)).toHaveLength(2);
    expect(k.checkInvariants()).toEqual([]);
    for (let i = 0; i < 8; i++) {
      const s = migratePfnToPage(src[i]);
      if (s < 0) continue;
      const d = k.mmCore.alloc.allocPages(GFP_HIGHUSER_MOVABLE, 0);
      folioTrylock(k.mmCore, d);
      k.mmCore.data.copyPage(d, s);
      dst[i] = migratePfn(d);
    }
    migrateDevicePages(k.mmCore, src, dst, 8);
    migrateDeviceFinalize(k.mmCore, src, dst, 8);
    expect(dev.freed).toBe(2);
    for (const proc of [p, child]) {
      expect(proc.pagemap(addr).present).toBe(true);
      expect(Buffer.compare(proc.read(addr, 2 * PAGE_SIZE), pattern(2 * PAGE_SIZE, 16))).toBe(0);
    }
    expect(p.pagemap(addr).pfn).toBe(child.pagemap(addr).pfn);
    expect(migrateDevicePfns(k.mmCore, new Float64Array([5]), 1)).toBe(-ERRNO.EINVAL);
  });
});
