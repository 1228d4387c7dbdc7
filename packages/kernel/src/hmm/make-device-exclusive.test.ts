/**
 * makeDeviceExclusive (6.15+ semantics) and the device-exclusive entries it leaves: the
 * notifier events with their owner, the mapping and references kept, restoration by a CPU
 * access, GUP or fork, munmap and exit, THPs, and every errno.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { ERRNO } from '../uapi/errno';
import {
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../uapi/mman';
import { FOLL_WRITE } from '../gup/foll-flags';
import { getUserPages, gupPutPages } from '../gup/gup';
import { folioTrylock, folioUnlock } from '../mm/memremap';
import { MMU_NOTIFY_EXCLUSIVE, MMU_NOTIFY_PROTECTION_PAGE } from '../mm/notifier-hooks';
import { PTE_DEVICE_EXCLUSIVE } from '../mm/pte';
import { mmuIntervalNotifierInsert, mmuIntervalSetSeq } from '../mmu-notifier/interval-notifier';
import { MmuIntervalNotifier } from '../mmu-notifier/types';
import {
  makeDeviceExclusive,
  putDeviceExclusiveFolio,
  type DeviceExclusivePage,
} from './make-device-exclusive';

const booted: Kernel[] = [];

function boot(): Kernel {
  const k = createKernel({ memory: { nodes: [{ size: '64MiB' }], hugepages: { '2MiB': 1 } } });
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

interface Event {
  event: number;
  start: number;
  owner: unknown;
}

function watch(p: Process): Event[] {
  const events: Event[] = [];
  const sub = new MmuIntervalNotifier();
  mmuIntervalNotifierInsert(sub, p.mm, 0, 2 ** 47, {
    invalidate(s, r, seq) {
      mmuIntervalSetSeq(s, seq);
      events.push({ event: r.event, start: r.start, owner: r.owner });
      return true;
    },
  });
  return events;
}

function exclusive(k: Kernel, p: Process, addr: number, owner: unknown): DeviceExclusivePage {
  const r = makeDeviceExclusive(p.mm, addr, owner);
  if (typeof r === 'number') throw new Error(`makeDeviceExclusive: ${r}`);
  return r;
}

function entryHi(p: Process, addr: number): number {
  const pt = p.mm.pgtable;
  const t = pt.walk(addr, false);
  return t ? t[pt.slot + 1] : 0;
}

describe('makeDeviceExclusive', () => {
  it('replaces the PTE after MMU_NOTIFY_EXCLUSIVE with the owner; the page stays mapped and counted', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([7, 8, 9]));
    const pfn = p.pagemap(a).pfn!;
    const events = watch(p);
    const owner = { device: 'gpu0' };
    const r = exclusive(k, p, a, owner);
    expect(r).toEqual({ page: pfn, folio: pfn });
    expect(events).toEqual([{ event: MMU_NOTIFY_EXCLUSIVE, start: a, owner }]);
    expect(entryHi(p, a) & PTE_DEVICE_EXCLUSIVE).toBeTruthy();
    const f = k.mmCore.frames;
    // The caller holds the lock and a GUP reference until it releases them.
    expect(folioTrylock(k.mmCore, pfn)).toBe(false);
    expect([f.mapcount[pfn], f.refcount[pfn]]).toEqual([1, 2]);
    expect(k.checkInvariants()).toEqual([]);
    putDeviceExclusiveFolio(k.mmCore, r.folio);
    expect([f.mapcount[pfn], f.refcount[pfn]]).toEqual([1, 1]);
    expect(p.status().vmRss).toBe(PAGE_SIZE);
    expect(p.pagemap(a).present).toBe(false);
    expect(k.checkInvariants()).toEqual([]);
    // A CPU access revokes it (owner null), and the same page is mapped writable again.
    expect([...p.read(a, 3)]).toEqual([7, 8, 9]);
    expect(events[1]).toEqual({ event: MMU_NOTIFY_EXCLUSIVE, start: a, owner: null });
    expect(p.pagemap(a).pfn).toBe(pfn);
    p.write(a, new Uint8Array([1]));
    expect(p.pagemap(a).pfn).toBe(pfn);
  });

  it('is undone by GUP, and made again over an existing entry (telling the old owner)', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([1]));
    putDeviceExclusiveFolio(k.mmCore, exclusive(k, p, a, 'dev0').folio);
    const events = watch(p);
    putDeviceExclusiveFolio(k.mmCore, exclusive(k, p, a, 'dev1').folio);
    expect(events.map((e) => e.owner)).toEqual([null, 'dev1']);
    const pages = new Int32Array(1);
    expect(getUserPages(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    expect(p.pagemap(a).present).toBe(true);
    gupPutPages(k.mmCore, pages, 1);
  });

  it('fork restores the entry and shares the page copy-on-write', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(3));
    putDeviceExclusiveFolio(k.mmCore, exclusive(k, p, a, 'dev').folio);
    const events = watch(p);
    const child = p.fork();
    expect(events[0].event).toBe(MMU_NOTIFY_PROTECTION_PAGE);
    expect(p.pagemap(a).present && child.pagemap(a).present).toBe(true);
    expect(p.pagemap(a).pfn).toBe(child.pagemap(a).pfn);
    expect(k.checkInvariants()).toEqual([]);
    child.write(a, new Uint8Array([4]));
    expect(p.read(a, 1)[0]).toBe(3);
    expect(child.read(a, 1)[0]).toBe(4);
  });

  it('is released by munmap and exit; RSS and the page go', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(5));
    const free = k.phys.nrFreePages();
    for (const va of [a, a + PAGE_SIZE]) putDeviceExclusiveFolio(k.mmCore, exclusive(k, p, va, 'dev').folio);
    p.munmap(a, PAGE_SIZE);
    expect(p.status().vmRss).toBe(PAGE_SIZE);
    expect(k.phys.nrFreePages()).toBe(free + 1);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
    expect(k.phys.nrFreePages()).toBeGreaterThanOrEqual(free + 2);
  });

  it('splits a THP mapping to PTEs and works on one page of the large folio', () => {
    const k = boot();
    const p = k.spawn();
    const len = 2 ** 21;
    const a = p.mmap(len);
    p.madvise(a, len, MADV_HUGEPAGE);
    p.write(a, new Uint8Array(len).fill(6));
    expect(p.pagemap(a).huge).toBe('2MiB');
    const r = exclusive(k, p, a + 5 * PAGE_SIZE, 'dev');
    expect(r.page - r.folio).toBe(5);
    putDeviceExclusiveFolio(k.mmCore, r.folio);
    expect(p.pagemap(a).huge).toBeUndefined();
    expect(p.pagemap(a).present).toBe(true);
    expect(p.pagemap(a + 5 * PAGE_SIZE).present).toBe(false);
    expect(k.checkInvariants()).toEqual([]);
    expect(p.read(a + 5 * PAGE_SIZE, 1)[0]).toBe(6);
    p.munmap(a, len);
  });

  it('counts for mlock and munlock like the mapping it is', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array(2 * PAGE_SIZE).fill(2));
    putDeviceExclusiveFolio(k.mmCore, exclusive(k, p, a, 'dev').folio);
    p.mlock(a, 2 * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
    putDeviceExclusiveFolio(k.mmCore, exclusive(k, p, a + PAGE_SIZE, 'dev').folio);
    p.munlock(a, 2 * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
    expect(p.read(a + PAGE_SIZE, 1)[0]).toBe(2);
  });

  it('answers the errno of each refusal', () => {
    const k = boot();
    const p = k.spawn();
    expect(makeDeviceExclusive(p.mm, 0x100000, 'dev')).toBe(-ERRNO.EFAULT);
    expect(makeDeviceExclusive(p.mm, -1, 'dev')).toBe(-ERRNO.EFAULT);
    const ro = p.mmap(PAGE_SIZE, { prot: PROT_READ });
    expect(makeDeviceExclusive(p.mm, ro, 'dev')).toBe(-ERRNO.EFAULT);
    const shm = p.mmap(PAGE_SIZE, { prot: PROT_READ | PROT_WRITE, flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(makeDeviceExclusive(p.mm, shm, 'dev')).toBe(-ERRNO.EOPNOTSUPP);
    const huge = p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    expect(makeDeviceExclusive(p.mm, huge, 'dev')).toBe(-ERRNO.EOPNOTSUPP);
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([1]));
    const pfn = p.pagemap(a).pfn!;
    expect(folioTrylock(k.mmCore, pfn)).toBe(true);
    expect(makeDeviceExclusive(p.mm, a, 'dev')).toBe(-ERRNO.EBUSY);
    folioUnlock(k.mmCore, pfn);
    expect(p.pagemap(a).present).toBe(true);
    // A write fault first breaks COW: the device gets the child's own page.
    const child = p.fork();
    const r = exclusive(k, child, a, 'dev');
    expect(r.page).not.toBe(pfn);
    putDeviceExclusiveFolio(k.mmCore, r.folio);
  });
});

describe('device-exclusive pages and migration (6.15+)', () => {
  it('migrate: offline of ZONE_MOVABLE moves the page, telling the device (MIGRATE), data intact', () => {
    const k = createKernel({ memory: { nodes: [{ size: '512MiB', movable: '256MiB' }] } });
    booted.push(k);
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([4, 5, 6]));
    const pfn = p.pagemap(a).pfn!;
    const movable = k.phys.zone(0, 2);
    expect(pfn >= movable.startPfn).toBe(true);
    putDeviceExclusiveFolio(k.mmCore, exclusive(k, p, a, 'dev').folio);
    const events = watch(p);
    expect(k.offlineMemory(0, 256 * 2 ** 20, 256 * 2 ** 20)).toBe(0);
    expect(events.some((e) => e.event === 6 && e.start === a)).toBe(true); // MMU_NOTIFY_MIGRATE
    expect(k.checkInvariants()).toEqual([]);
    const now = p.pagemap(a);
    expect(now.present).toBe(true);
    expect(now.pfn! < movable.startPfn).toBe(true);
    expect([...p.read(a, 3)]).toEqual([4, 5, 6]);
    p.write(a, new Uint8Array([9]));
    expect(p.pagemap(a).pfn).toBe(now.pfn);
  });
});
