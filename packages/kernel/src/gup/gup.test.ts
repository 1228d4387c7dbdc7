import { afterEach, describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import { ERRNO } from '../uapi/errno';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  TASK_SIZE,
} from '../uapi/mman';
import { VM } from '../sim/vmstat';
import { checkMmInvariants } from '../mm/debug-vm';
import { MMF_HAS_PINNED } from '../mm/mm-struct';
import { PG_anon_exclusive, PG_buddy, PG_dirty } from '../mm/page-flags';
import { GUP_PIN_COUNTING_BIAS } from '../mm/page-ref';
import { VM_IO, VM_PFNMAP } from '../mm/vm-flags';
import {
  FOLL_ANON,
  FOLL_DUMP,
  FOLL_FAST_ONLY,
  FOLL_FORCE,
  FOLL_GET,
  FOLL_LONGTERM,
  FOLL_MADV_POPULATE,
  FOLL_NOFAULT,
  FOLL_NOWAIT,
  FOLL_PCI_P2PDMA,
  FOLL_PIN,
  FOLL_REMOTE,
  FOLL_SPLIT_PMD,
  FOLL_TOUCH,
  FOLL_TRIED,
  FOLL_UNLOCKABLE,
  FOLL_WRITE,
  INTERNAL_GUP_FLAGS,
} from './foll-flags';
import {
  getUserPages,
  getUserPagesFast,
  getUserPagesFastOnly,
  getUserPagesRemote,
  getUserPagesUnlocked,
  gupPutFolio,
  gupPutPages,
  pinUserPages,
  pinUserPagesFast,
  pinUserPagesRemote,
  pinUserPagesUnlocked,
  unpinUserPage,
  unpinUserPageRangeDirtyLock,
  unpinUserPages,
  unpinUserPagesDirtyLock,
  type GupPageArray,
} from './gup';
import { checkGupInvariants, gupAttach, gupState } from './pin-tracker';

const booted: Kernel[] = [];

/** A kernel with GUP's ref source and invariant check attached (as the lead's wiring will do). */
function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel(opts);
  gupAttach(k.mmCore, k);
  booted.push(k);
  return k;
}

afterEach(() => {
  for (const k of booted.splice(0)) {
    expect(k.checkInvariants()).toEqual([]);
    expect(checkGupInvariants(k.mmCore)).toEqual([]);
    const refs = new Map<number, number>();
    gupState(k.mmCore).addRefs(refs);
    expect(checkMmInvariants(k.mmCore, refs)).toEqual([]);
  }
});

const pinned = (k: Kernel) => k.vmstat().nr_foll_pin_acquired - k.vmstat().nr_foll_pin_released;

/** Map `n` anonymous pages and write `fill` into each (page i holds fill + i). */
function anonPages(k: Kernel, n: number, fill = 1) {
  const p = k.spawn();
  const a = p.mmap(n * PAGE_SIZE);
  for (let i = 0; i < n; i++) p.write(a + i * PAGE_SIZE, new Uint8Array([fill + i]));
  return { p, a };
}

describe('is_valid_gup_args and the entry points', () => {
  type Entry = (k: Kernel, flags: number, pages: GupPageArray | null, locked?: { locked: number }) => number;
  const entries: Record<string, { fn: Entry; refused: number; pin: boolean }> = {
    get_user_pages: {
      fn: (k, f, pg) => getUserPages(mmOf(k), addrOf(k), 1, f, pg),
      refused: -ERRNO.EINVAL,
      pin: false,
    },
    get_user_pages_remote: {
      fn: (k, f, pg, l) => getUserPagesRemote(mmOf(k), addrOf(k), 1, f, pg, l ?? null),
      refused: -ERRNO.EINVAL,
      pin: false,
    },
    get_user_pages_unlocked: {
      fn: (k, f, pg) => getUserPagesUnlocked(mmOf(k), addrOf(k), 1, pg, f),
      refused: -ERRNO.EINVAL,
      pin: false,
    },
    get_user_pages_fast: {
      fn: (k, f, pg) => getUserPagesFast(mmOf(k), addrOf(k), 1, f, pg as GupPageArray),
      refused: -ERRNO.EINVAL,
      pin: false,
    },
    get_user_pages_fast_only: {
      fn: (k, f, pg) => getUserPagesFastOnly(mmOf(k), addrOf(k), 1, f, pg as GupPageArray),
      refused: -ERRNO.EINVAL,
      pin: false,
    },
    pin_user_pages: { fn: (k, f, pg) => pinUserPages(mmOf(k), addrOf(k), 1, f, pg), refused: 0, pin: true },
    pin_user_pages_remote: {
      fn: (k, f, pg, l) => pinUserPagesRemote(mmOf(k), addrOf(k), 1, f, pg, l ?? null),
      refused: 0,
      pin: true,
    },
    pin_user_pages_unlocked: {
      fn: (k, f, pg) => pinUserPagesUnlocked(mmOf(k), addrOf(k), 1, pg, f),
      refused: 0,
      pin: true,
    },
    pin_user_pages_fast: {
      fn: (k, f, pg) => pinUserPagesFast(mmOf(k), addrOf(k), 1, f, pg as GupPageArray),
      refused: -ERRNO.EINVAL,
      pin: true,
    },
  };
  const world = new WeakMap<Kernel, { p: ReturnType<Kernel['spawn']>; a: number }>();
  function setup(): Kernel {
    const k = boot();
    world.set(k, anonPages(k, 1));
    return k;
  }
  const mmOf = (k: Kernel) => world.get(k)!.p.mm;
  const addrOf = (k: Kernel) => world.get(k)!.a;
  /** Release whatever an accepted call took. */
  function release(k: Kernel, ret: number, pages: GupPageArray | null, pin: boolean) {
    if (ret > 0 && pages) {
      if (pin) unpinUserPages(k.mmCore, pages, ret);
      else gupPutPages(k.mmCore, pages, ret);
    }
  }

  const internal: Array<[string, number]> = [
    ['FOLL_TOUCH', FOLL_TOUCH],
    ['FOLL_TRIED', FOLL_TRIED],
    ['FOLL_REMOTE', FOLL_REMOTE],
    ['FOLL_PIN', FOLL_PIN],
    ['FOLL_FAST_ONLY', FOLL_FAST_ONLY],
    ['FOLL_UNLOCKABLE', FOLL_UNLOCKABLE],
    ['FOLL_MADV_POPULATE', FOLL_MADV_POPULATE],
  ];
  for (const [name, { fn, refused }] of Object.entries(entries)) {
    for (const [flagName, flag] of internal) {
      it(`${name} refuses the internal flag ${flagName} with ${refused}`, () => {
        const k = setup();
        expect(fn(k, flag, [0])).toBe(refused);
        expect(pinned(k)).toBe(0);
        expect(k.dmesg().some((l) => l.includes('is_valid_gup_args'))).toBe(true);
      });
    }
    it(`${name} refuses FOLL_LONGTERM | FOLL_PCI_P2PDMA with ${refused}`, () => {
      const k = setup();
      expect(fn(k, FOLL_LONGTERM | FOLL_PCI_P2PDMA, [0])).toBe(refused);
    });
  }
  it('INTERNAL_GUP_FLAGS is exactly the internal set of mm/internal.h', () => {
    expect(INTERNAL_GUP_FLAGS).toBe(
      FOLL_TOUCH |
        FOLL_TRIED |
        FOLL_REMOTE |
        FOLL_PIN |
        FOLL_FAST_ONLY |
        FOLL_UNLOCKABLE |
        FOLL_MADV_POPULATE,
    );
    expect([FOLL_WRITE, FOLL_GET, FOLL_FORCE, FOLL_LONGTERM, FOLL_PIN, FOLL_FAST_ONLY]).toEqual([
      1,
      2,
      8,
      256,
      1 << 19,
      1 << 20,
    ]);
  });

  it('FOLL_PIN with FOLL_GET: pin_* refuse (0, or -EINVAL for the fast one); get_* accept FOLL_GET', () => {
    const k = setup();
    for (const name of [
      'pin_user_pages',
      'pin_user_pages_remote',
      'pin_user_pages_unlocked',
      'pin_user_pages_fast',
    ]) {
      const e = entries[name];
      expect([name, e.fn(k, FOLL_GET, [0])]).toEqual([name, e.refused]);
    }
    for (const name of [
      'get_user_pages',
      'get_user_pages_remote',
      'get_user_pages_fast',
      'get_user_pages_fast_only',
    ]) {
      const pages = [0];
      const r = entries[name].fn(k, FOLL_GET, pages);
      expect([name, r]).toEqual([name, 1]);
      release(k, r, pages, false);
    }
  });

  it('FOLL_LONGTERM without FOLL_PIN: every get_* entry returns -EINVAL', () => {
    const k = setup();
    for (const [name, e] of Object.entries(entries)) {
      if (e.pin) continue;
      expect([name, e.fn(k, FOLL_LONGTERM, [0])]).toEqual([name, -ERRNO.EINVAL]);
    }
  });

  it('no pages array: pin_* refuse (0 / -EINVAL fast), GUP-fast refuses, slow get_* just fault in', () => {
    const k = setup();
    for (const [name, e] of Object.entries(entries)) {
      const slowGet = !e.pin && !name.includes('fast');
      expect([name, e.fn(k, 0, null)]).toEqual([name, slowGet ? 1 : e.refused]);
    }
    expect(pinned(k)).toBe(0);
  });

  it('*locked must be 1 for the remote variants: get -> -EINVAL, pin -> 0; it stays 1', () => {
    const k = setup();
    expect(entries.get_user_pages_remote.fn(k, 0, [0], { locked: 0 })).toBe(-ERRNO.EINVAL);
    expect(entries.pin_user_pages_remote.fn(k, 0, [0], { locked: 2 })).toBe(0);
    const locked = { locked: 1 };
    const pages = [0];
    expect(pinUserPagesRemote(mmOf(k), addrOf(k), 1, FOLL_WRITE, pages, locked)).toBe(1);
    expect(locked.locked).toBe(1);
    unpinUserPages(k.mmCore, pages, 1);
  });

  it('GUP-fast refuses flags outside its set with -EINVAL; the slow path takes them', () => {
    const k = setup();
    for (const f of [FOLL_DUMP, FOLL_NOWAIT, FOLL_ANON, FOLL_SPLIT_PMD]) {
      expect(pinUserPagesFast(mmOf(k), addrOf(k), 1, f, [0])).toBe(-ERRNO.EINVAL);
      expect(getUserPagesFast(mmOf(k), addrOf(k), 1, f, [0])).toBe(-ERRNO.EINVAL);
      const pages = [0];
      expect(pinUserPages(mmOf(k), addrOf(k), 1, f, pages)).toBe(1);
      unpinUserPages(k.mmCore, pages, 1);
    }
    // FOLL_NOFAULT is allowed in GUP-fast: the page is present, so it works.
    const pages = [0];
    expect(pinUserPagesFast(mmOf(k), addrOf(k), 1, FOLL_NOFAULT, pages)).toBe(1);
    unpinUserPages(k.mmCore, pages, 1);
  });

  it('ranges: 0 pages -> 0, wrapping -> -EOVERFLOW, beyond TASK_SIZE -> -EFAULT', () => {
    const k = setup();
    const mm = mmOf(k);
    expect(pinUserPages(mm, addrOf(k), 0, 0, [])).toBe(0);
    expect(getUserPages(mm, addrOf(k), 0, 0, [])).toBe(0);
    expect(pinUserPagesFast(mm, addrOf(k), 0, 0, [])).toBe(0);
    expect(pinUserPagesFast(mm, PAGE_SIZE, 2 ** 52, 0, [])).toBe(-ERRNO.EOVERFLOW);
    expect(getUserPagesFast(mm, PAGE_SIZE, 2 ** 52, 0, [])).toBe(-ERRNO.EOVERFLOW);
    expect(pinUserPagesFast(mm, TASK_SIZE, 1, 0, [0])).toBe(-ERRNO.EFAULT);
    expect(pinUserPages(mm, TASK_SIZE, 1, 0, [0])).toBe(-ERRNO.EFAULT);
    expect(pinUserPages(mm, addrOf(k), -1, 0, [0])).toBe(-ERRNO.EINVAL);
    expect(pinUserPages(mm, -PAGE_SIZE, 1, 0, [0])).toBe(-ERRNO.EFAULT);
    expect(pinUserPagesFast(mm, addrOf(k), 4, 0, new Int32Array(2))).toBe(-ERRNO.EINVAL);
  });
});

describe('check_vma_flags', () => {
  it('VM_IO and VM_PFNMAP -> -EFAULT', () => {
    const k = boot();
    const { p, a } = anonPages(k, 1);
    const vma = p.mm.vmaLookup(a)!;
    for (const bit of [VM_IO, VM_PFNMAP]) {
      vma.flags |= bit;
      expect(pinUserPages(p.mm, a, 1, 0, [0])).toBe(-ERRNO.EFAULT);
      expect(getUserPages(p.mm, a, 1, 0, [0])).toBe(-ERRNO.EFAULT);
      expect(pinUserPagesFast(p.mm, a + PAGE_SIZE * 0, 1, FOLL_NOFAULT, [0])).toBe(1);
      unpinUserPages(k.mmCore, [p.pagemap(a).pfn!], 1);
      vma.flags &= ~bit;
    }
  });

  it('write to a !VM_WRITE mapping: -EFAULT, FOLL_FORCE breaks COW on a private one, not on a shared one', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE);
    p.write(a, new Uint8Array([7]));
    const c = p.fork(); // shared COW page
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE, [0])).toBe(-ERRNO.EFAULT);
    const pages = [0];
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE | FOLL_FORCE, pages)).toBe(1);
    expect(pages[0]).toBe(p.pagemap(a).pfn);
    expect(pages[0]).not.toBe(c.pagemap(a).pfn);
    expect(k.phys.frames.flags[pages[0]] & PG_anon_exclusive).toBeTruthy();
    expect(p.read(a, 1)[0]).toBe(7);
    unpinUserPages(k.mmCore, pages, 1);
    const s = c.mmap(PAGE_SIZE, { prot: PROT_READ, flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(pinUserPages(c.mm, s, 1, FOLL_WRITE | FOLL_FORCE, [0])).toBe(-ERRNO.EFAULT);
  });

  it('read of a !VM_READ mapping: -EFAULT without FOLL_FORCE, allowed with it (VM_MAYREAD)', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(PAGE_SIZE, { prot: PROT_NONE });
    expect(getUserPages(p.mm, a, 1, 0, [0])).toBe(-ERRNO.EFAULT);
    const pages = [0];
    expect(getUserPages(p.mm, a, 1, FOLL_FORCE, pages)).toBe(1);
    gupPutPages(k.mmCore, pages, 1);
  });

  it('FOLL_ANON on a shared mapping -> -EFAULT; FOLL_SPLIT_PMD on hugetlb -> -EOPNOTSUPP', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 1 } } });
    const p = k.spawn();
    const s = p.mmap(PAGE_SIZE, { flags: MAP_SHARED | MAP_ANONYMOUS });
    expect(getUserPages(p.mm, s, 1, FOLL_ANON, [0])).toBe(-ERRNO.EFAULT);
    const h = p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    expect(getUserPages(p.mm, h, 1, FOLL_SPLIT_PMD, [0])).toBe(-ERRNO.EOPNOTSUPP);
    expect(getUserPages(p.mm, h, 1, FOLL_ANON, [0])).toBe(-ERRNO.EFAULT);
  });
});

describe('partial success', () => {
  it('a range running into a hole returns the count before it; one starting in a hole -> -EFAULT', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    p.munmap(a + 4 * PAGE_SIZE, 4 * PAGE_SIZE);
    for (const pin of [pinUserPages, pinUserPagesFast]) {
      const pages = new Int32Array(8);
      expect(pin(p.mm, a, 8, FOLL_WRITE, pages)).toBe(4);
      expect(pinned(k)).toBe(4);
      unpinUserPages(k.mmCore, pages, 4);
      expect(pin(p.mm, a + 4 * PAGE_SIZE, 2, FOLL_WRITE, new Int32Array(2))).toBe(-ERRNO.EFAULT);
    }
    const pages = [0, 0];
    expect(getUserPages(p.mm, a + 3 * PAGE_SIZE, 2, 0, pages)).toBe(1);
    gupPutPages(k.mmCore, pages, 1);
    expect(pinned(k)).toBe(0);
  });

  it('a range crossing into a VMA GUP may not use stops there', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.mprotect(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE, PROT_READ);
    const pages = new Int32Array(4);
    expect(pinUserPages(p.mm, a, 4, FOLL_WRITE, pages)).toBe(2);
    unpinUserPages(k.mmCore, pages, 2);
    expect(pinUserPages(p.mm, a, 4, 0, pages)).toBe(4);
    unpinUserPages(k.mmCore, pages, 4);
  });

  it('FOLL_NOFAULT stops at the first missing page; FOLL_DUMP refuses holes and the zero page', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.touch(a, 2 * PAGE_SIZE, { write: true });
    const pages = new Int32Array(4);
    expect(getUserPages(p.mm, a, 4, FOLL_NOFAULT, pages)).toBe(2);
    gupPutPages(k.mmCore, pages, 2);
    expect(getUserPages(p.mm, a + 2 * PAGE_SIZE, 1, FOLL_NOFAULT, pages)).toBe(-ERRNO.EFAULT);
    expect(getUserPages(p.mm, a + 2 * PAGE_SIZE, 1, FOLL_DUMP, pages)).toBe(-ERRNO.EFAULT);
    p.touch(a + 3 * PAGE_SIZE, 1); // zero page
    expect(getUserPages(p.mm, a + 3 * PAGE_SIZE, 1, FOLL_DUMP, pages)).toBe(-ERRNO.EFAULT);
  });
});

describe('counting', () => {
  it('PIN adds GUP_PIN_COUNTING_BIAS to a small folio, GET adds 1; both released exactly', () => {
    const k = boot();
    const { p, a } = anonPages(k, 2);
    const f = k.phys.frames;
    const pfn = p.pagemap(a).pfn!;
    const before = f.refcount[pfn];
    const pins = [0];
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE, pins)).toBe(1);
    expect(pins[0]).toBe(pfn);
    expect(f.refcount[pfn]).toBe(before + GUP_PIN_COUNTING_BIAS);
    expect(p.pagemap(a).pinned).toBe(true);
    const gets = [0];
    expect(getUserPages(p.mm, a, 1, 0, gets)).toBe(1);
    expect(f.refcount[pfn]).toBe(before + GUP_PIN_COUNTING_BIAS + 1);
    expect(gupState(k.mmCore).pins(pfn)).toBe(1);
    expect(gupState(k.mmCore).gets(pfn)).toBe(1);
    expect(checkGupInvariants(k.mmCore)).toEqual([]);
    gupPutFolio(k.mmCore, gets[0], 1, FOLL_GET);
    unpinUserPage(k.mmCore, pins[0]);
    expect(f.refcount[pfn]).toBe(before);
    expect(p.pagemap(a).pinned).toBe(false);
  });

  it('a hugetlb folio gets +1 refcount and +1 pincount per pinned subpage; GET touches no pincount', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 2 } } });
    const p = k.spawn();
    const h = p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    p.write(h + 5 * PAGE_SIZE, new Uint8Array([9]));
    const head = p.pagemap(h).pfn!;
    const f = k.phys.frames;
    const ref0 = f.refcount[head];
    const pages = new Int32Array(512);
    const acquired0 = k.vmstat().nr_foll_pin_acquired;
    expect(pinUserPages(p.mm, h, 512, FOLL_WRITE, pages)).toBe(512);
    expect(pages[5]).toBe(head + 5);
    expect(f.refcount[head]).toBe(ref0 + 512);
    expect(f.privateData[head + 1]).toBe(512);
    expect(k.vmstat().nr_foll_pin_acquired - acquired0).toBe(512);
    const gets = new Int32Array(10);
    expect(getUserPagesFast(p.mm, h + 100 * PAGE_SIZE, 10, 0, gets)).toBe(10);
    expect(gets[0]).toBe(head + 100);
    expect(f.refcount[head]).toBe(ref0 + 522);
    expect(f.privateData[head + 1]).toBe(512);
    gupPutPages(k.mmCore, gets, 10);
    // Unpin from the middle: consecutive subpages of one folio are released together.
    unpinUserPages(k.mmCore, pages.subarray(256), 256);
    expect(f.privateData[head + 1]).toBe(256);
    unpinUserPages(k.mmCore, pages, 256);
    expect(f.refcount[head]).toBe(ref0);
    expect(f.privateData[head + 1]).toBe(0);
    expect(pinned(k)).toBe(0);
  });

  it('the zero page is never counted: a short-term R/O pin returns it untouched', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    const zero = k.phys.zeroPfn;
    const ref0 = k.phys.frames.refcount[zero];
    const pages = [0, 0];
    expect(pinUserPages(p.mm, a, 2, 0, pages)).toBe(2);
    expect(pages).toEqual([zero, zero]);
    expect(k.phys.frames.refcount[zero]).toBe(ref0);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(0);
    unpinUserPages(k.mmCore, pages, 2);
    expect(k.vmstat().nr_foll_pin_released).toBe(0);
    expect(k.phys.frames.refcount[zero]).toBe(ref0);
    // GUP-fast never takes the (special) zero page: it falls back to the slow path.
    const st = gupState(k.mmCore);
    const fb = st.stats.fastFallbacks;
    expect(pinUserPagesFast(p.mm, a, 1, 0, pages)).toBe(1);
    expect(pages[0]).toBe(zero);
    expect(st.stats.fastFallbacks).toBe(fb + 1);
    unpinUserPage(k.mmCore, pages[0]);
    // A long-term R/O pin unshares it into a real page (gup_must_unshare: COW mapping).
    expect(pinUserPages(p.mm, a, 1, FOLL_LONGTERM, pages)).toBe(1);
    expect(pages[0]).not.toBe(zero);
    expect(p.pagemap(a).pfn).toBe(pages[0]);
    expect(p.pagemap(a).zeroPage).toBeUndefined();
    unpinUserPage(k.mmCore, pages[0]);
  });

  it('MMF_HAS_PINNED is set by any pin (even one that fails), never by GET', () => {
    const k = boot();
    const { p, a } = anonPages(k, 1);
    const pages = [0];
    expect(getUserPagesFast(p.mm, a, 1, 0, pages)).toBe(1);
    gupPutPages(k.mmCore, pages, 1);
    expect(getUserPages(p.mm, a, 1, 0, pages)).toBe(1);
    gupPutPages(k.mmCore, pages, 1);
    expect(p.mm.flags & MMF_HAS_PINNED).toBe(0);
    expect(pinUserPages(p.mm, a + PAGE_SIZE, 1, 0, pages)).toBe(-ERRNO.EFAULT);
    expect(p.mm.flags & MMF_HAS_PINNED).toBe(MMF_HAS_PINNED);
    const q = k.spawn();
    const b = q.mmap(PAGE_SIZE);
    expect(pinUserPagesFast(q.mm, b, 1, FOLL_WRITE, pages)).toBe(1);
    expect(q.mm.flags & MMF_HAS_PINNED).toBe(MMF_HAS_PINNED);
    unpinUserPages(k.mmCore, pages, 1);
    expect(q.mm.flags & MMF_HAS_PINNED).toBe(MMF_HAS_PINNED); // stays for the mm's life
  });

  it('nr_foll_pin_acquired / _released count pages, and a double unpin WARNs without counting', () => {
    const k = boot();
    const { p, a } = anonPages(k, 8);
    const pages = new Int32Array(8);
    expect(pinUserPagesFast(p.mm, a, 8, FOLL_WRITE, pages)).toBe(8);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(8);
    unpinUserPages(k.mmCore, pages, 8);
    expect(k.vmstat().nr_foll_pin_released).toBe(8);
    const ref = k.phys.frames.refcount[pages[0]];
    unpinUserPages(k.mmCore, pages, 8);
    expect(k.vmstat().nr_foll_pin_released).toBe(8);
    expect(k.phys.frames.refcount[pages[0]]).toBe(ref);
    expect(k.dmesg().some((l) => l.includes('WARNING') && l.includes('unpin_user_page'))).toBe(true);
    // A GET reference is not a pin: unpinning it WARNs and leaves it.
    expect(getUserPages(p.mm, a, 1, 0, pages)).toBe(1);
    unpinUserPage(k.mmCore, pages[0]);
    expect(gupState(k.mmCore).gets(pages[0])).toBe(1);
    gupPutPages(k.mmCore, pages, 1);
    // An -errno passed as the count is refused.
    unpinUserPages(k.mmCore, pages, -ERRNO.EFAULT);
    expect(k.vmstat().nr_foll_pin_released).toBe(8);
  });

  it('entries set to -1 (NULL) are skipped by unpin_user_pages', () => {
    const k = boot();
    const { p, a } = anonPages(k, 3);
    const pages = [0, 0, 0];
    expect(pinUserPages(p.mm, a, 3, 0, pages)).toBe(3);
    const mid = pages[1];
    pages[1] = -1;
    unpinUserPages(k.mmCore, pages, 3);
    expect(gupState(k.mmCore).pins(mid)).toBe(1);
    unpinUserPage(k.mmCore, mid);
  });
});

describe('R/O pins of anonymous memory (gup_must_unshare)', () => {
  for (const [name, pin] of [
    ['pin_user_pages', pinUserPages],
    ['pin_user_pages_fast', pinUserPagesFast],
  ] as const) {
    it(`${name}: a R/O pin of a COW-shared page unshares it; the pinned page is the parent’s, data intact`, () => {
      const k = boot();
      const p = k.spawn();
      const a = p.mmap(PAGE_SIZE);
      const bytes = new Uint8Array(64).map((_, i) => i + 1);
      p.write(a, bytes);
      const c = p.fork();
      const shared = p.pagemap(a).pfn!;
      expect(c.pagemap(a).pfn).toBe(shared);
      const pages = [0];
      expect(pin(p.mm, a, 1, 0, pages)).toBe(1);
      expect(pages[0]).toBe(p.pagemap(a).pfn);
      expect(pages[0]).not.toBe(shared);
      expect(c.pagemap(a).pfn).toBe(shared);
      expect(k.phys.frames.flags[pages[0]] & PG_anon_exclusive).toBeTruthy();
      const seen = new Uint8Array(64);
      k.phys.data.read(pages[0], 0, 64, seen, 0);
      expect(seen).toEqual(bytes);
      // The parent's later write lands in the pinned page (no COW away from the pin).
      p.write(a, new Uint8Array([200]));
      k.phys.data.read(pages[0], 0, 1, seen, 0);
      expect(seen[0]).toBe(200);
      expect(c.read(a, 64)).toEqual(bytes);
      unpinUserPages(k.mmCore, pages, 1);
      c.exit();
    });
  }

  it('R/O GUP-fast leaves a shared anonymous page to the slow path', () => {
    const k = boot();
    const { p, a } = anonPages(k, 1);
    const c = p.fork();
    const st = gupState(k.mmCore);
    const fast0 = st.stats.fastPages;
    const pages = [0];
    expect(pinUserPagesFast(p.mm, a, 1, 0, pages)).toBe(1);
    expect(st.stats.fastPages).toBe(fast0);
    expect(st.stats.fastFallbacks).toBeGreaterThan(0);
    unpinUserPages(k.mmCore, pages, 1);
    // A GET (not a pin) does not unshare: it takes the shared page as it is.
    expect(getUserPagesFast(p.mm, a, 1, 0, pages)).toBe(1);
    gupPutPages(k.mmCore, pages, 1);
    c.exit();
  });

  it('a R/O long-term pin of a shared hugetlb page unshares it too', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 3 } } });
    const p = k.spawn();
    const h = p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    p.write(h, new Uint8Array([5, 6, 7]));
    const c = p.fork();
    expect(c.pagemap(h).pfn).toBe(p.pagemap(h).pfn);
    const pages = new Int32Array(512);
    expect(pinUserPages(p.mm, h, 512, FOLL_LONGTERM, pages)).toBe(512);
    expect(pages[0]).toBe(p.pagemap(h).pfn);
    expect(pages[0]).not.toBe(c.pagemap(h).pfn);
    expect(p.read(h, 3)).toEqual(new Uint8Array([5, 6, 7]));
    unpinUserPages(k.mmCore, pages, 512);
    c.exit();
  });
});

describe('GUP-fast', () => {
  it('backs out while fork holds write_protect_seq (odd) and the slow path pins everything', () => {
    const k = boot();
    const { p, a } = anonPages(k, 16);
    const st = gupState(k.mmCore);
    p.mm.writeProtectSeq++; // fork is copying
    const fast0 = st.stats.fastPages;
    const slow0 = st.stats.slowPages;
    const pages = new Int32Array(16);
    expect(pinUserPagesFast(p.mm, a, 16, FOLL_WRITE, pages)).toBe(16);
    expect(st.stats.fastPages).toBe(fast0);
    expect(st.stats.slowPages).toBe(slow0 + 16);
    unpinUserPages(k.mmCore, pages, 16);
    // Only pins care: GET-fast walks on, and fast-only GET gets every page.
    expect(getUserPagesFastOnly(p.mm, a, 16, 0, pages)).toBe(16);
    expect(st.stats.fastPages).toBe(fast0 + 16);
    gupPutPages(k.mmCore, pages, 16);
    p.mm.writeProtectSeq++; // fork done
    expect(pinUserPagesFast(p.mm, a, 16, FOLL_WRITE, pages)).toBe(16);
    expect(st.stats.fastPages).toBe(fast0 + 32);
    unpinUserPages(k.mmCore, pages, 16);
  });

  it('fast-only stops at the first page needing a fault; the fallback faults the rest in', () => {
    const k = boot();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    p.touch(a, 3 * PAGE_SIZE, { write: true });
    const pages = new Int32Array(8);
    expect(getUserPagesFastOnly(p.mm, a, 8, FOLL_WRITE, pages)).toBe(3);
    gupPutPages(k.mmCore, pages, 3);
    const st = gupState(k.mmCore);
    const fast0 = st.stats.fastPages;
    expect(pinUserPagesFast(p.mm, a, 8, FOLL_WRITE, pages)).toBe(8);
    expect(st.stats.fastPages - fast0).toBe(3);
    for (let i = 0; i < 8; i++) expect(pages[i]).toBe(p.pagemap(a + i * PAGE_SIZE).pfn);
    unpinUserPages(k.mmCore, pages, 8);
  });

  it('a write pin of a R/O-mapped private page goes through the slow path, which breaks COW', () => {
    const k = boot();
    const { p, a } = anonPages(k, 1);
    const c = p.fork();
    const pages = [0];
    expect(pinUserPagesFast(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    expect(pages[0]).not.toBe(c.pagemap(a).pfn);
    unpinUserPages(k.mmCore, pages, 1);
    c.exit();
  });
});

describe('release', () => {
  it('unpin_user_pages_dirty_lock marks clean folios dirty, the range variant too', () => {
    const k = boot();
    const { p, a } = anonPages(k, 2);
    const f = k.phys.frames;
    const pages = [0, 0];
    expect(pinUserPages(p.mm, a, 2, FOLL_WRITE, pages)).toBe(2);
    for (const pfn of pages) f.flags[pfn] &= ~PG_dirty; // written back meanwhile
    unpinUserPagesDirtyLock(k.mmCore, pages, 2, false);
    expect(f.flags[pages[0]] & PG_dirty).toBe(0);
    expect(pinUserPages(p.mm, a, 2, FOLL_WRITE, pages)).toBe(2);
    unpinUserPagesDirtyLock(k.mmCore, pages, 2, true);
    expect(f.flags[pages[0]] & PG_dirty).toBe(PG_dirty);
    expect(f.flags[pages[1]] & PG_dirty).toBe(PG_dirty);
    expect(pinned(k)).toBe(0);

    const h = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 1 } } });
    const q = h.spawn();
    const b = q.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    q.touch(b, 2 ** 21, { write: true });
    const hp = new Int32Array(512);
    expect(pinUserPages(q.mm, b, 512, FOLL_WRITE, hp)).toBe(512);
    h.phys.frames.flags[hp[0]] &= ~PG_dirty;
    unpinUserPageRangeDirtyLock(h.mmCore, hp[0], 512, true);
    expect(h.phys.frames.flags[hp[0]] & PG_dirty).toBe(PG_dirty);
    expect(h.phys.frames.privateData[hp[0] + 1]).toBe(0);
  });

  it('a pin outlives munmap: the page stays allocated with its data until unpin frees it', () => {
    const k = boot();
    const { p, a } = anonPages(k, 1, 42);
    const pages = [0];
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    const pfn = pages[0];
    const free0 = k.vmstat().nr_free_pages;
    p.munmap(a, PAGE_SIZE);
    expect(k.vmstat().nr_free_pages).toBe(free0);
    expect(k.phys.frames.refcount[pfn]).toBe(GUP_PIN_COUNTING_BIAS);
    expect(k.checkInvariants()).toEqual([]);
    const seen = new Uint8Array(1);
    k.phys.data.read(pfn, 0, 1, seen, 0);
    expect(seen[0]).toBe(42);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
    unpinUserPages(k.mmCore, pages, 1);
    expect(k.phys.frames.refcount[pfn]).toBe(0);
    expect(k.phys.frames.flags[pfn] & PG_buddy).toBeTruthy();
    expect(k.vmstat().nr_free_pages).toBe(free0 + 1);
  });

  it('a hugetlb page pinned past munmap goes back to its pool at unpin', () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 1 } } });
    const p = k.spawn();
    const h = p.mmap(2 ** 21, { flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    p.touch(h, PAGE_SIZE, { write: true });
    const pages = new Int32Array(2);
    expect(pinUserPagesFast(p.mm, h, 2, FOLL_WRITE, pages)).toBe(2);
    p.munmap(h, 2 ** 21);
    expect(k.hugetlb.stats('2MiB').free).toBe(0);
    unpinUserPages(k.mmCore, pages, 2);
    expect(k.hugetlb.stats('2MiB').free).toBe(1);
  });

  it('fork keeps the pinned page with the parent (early COW) and gives the child a copy', () => {
    const k = boot();
    const { p, a } = anonPages(k, 1, 3);
    const pages = [0];
    expect(pinUserPages(p.mm, a, 1, FOLL_WRITE, pages)).toBe(1);
    const c = p.fork();
    expect(p.pagemap(a).pfn).toBe(pages[0]);
    expect(c.pagemap(a).pfn).not.toBe(pages[0]);
    expect(c.read(a, 1)[0]).toBe(3);
    unpinUserPages(k.mmCore, pages, 1);
    c.exit();
  });
});

describe('remote and unlocked variants', () => {
  it('pin another process’s pages remotely and fault them in', () => {
    const k = boot();
    const target = k.spawn();
    const a = target.mmap(4 * PAGE_SIZE);
    const pages = new Int32Array(4);
    expect(pinUserPagesRemote(target.mm, a, 4, FOLL_WRITE, pages)).toBe(4);
    expect(target.pagemap(a + 3 * PAGE_SIZE).pinned).toBe(true);
    unpinUserPages(k.mmCore, pages, 4);
    expect(getUserPagesRemote(target.mm, a, 4, 0, pages)).toBe(4);
    gupPutPages(k.mmCore, pages, 4);
    expect(pinUserPagesUnlocked(target.mm, a, 4, pages, FOLL_WRITE)).toBe(4);
    unpinUserPages(k.mmCore, pages, 4);
    target.exit();
    expect(pinUserPagesRemote(target.mm, a, 4, 0, pages)).toBe(-ERRNO.EFAULT);
  });

  it('MAP_SHARED anonymous (shmem) pages pin in place, R/W and R/O', () => {
    const k = boot();
    const p = k.spawn();
    const s = p.mmap(2 * PAGE_SIZE, { flags: MAP_SHARED | MAP_ANONYMOUS, prot: PROT_READ | PROT_WRITE });
    const c = p.fork();
    c.write(s, new Uint8Array([77]));
    const pages = [0, 0];
    expect(pinUserPages(p.mm, s, 2, 0, pages)).toBe(2);
    expect(pages[0]).toBe(c.pagemap(s).pfn);
    expect(pinUserPagesFast(p.mm, s, 2, FOLL_WRITE | FOLL_LONGTERM, [0, 0])).toBe(2);
    expect(gupState(k.mmCore).pins(pages[0])).toBe(2);
    unpinUserPages(k.mmCore, pages, 2);
    unpinUserPages(k.mmCore, [p.pagemap(s).pfn!, p.pagemap(s + PAGE_SIZE).pfn!], 2);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(4);
    c.exit();
  });
});

describe('costs', () => {
  it('charges the calibrated per-page costs to the calling process', () => {
    const k = boot();
    const { p, a } = anonPages(k, 64);
    const st = gupState(k.mmCore);
    const pages = new Int32Array(64);
    const charged = (fn: () => void) => {
      const prev = k.mmCore.chargeHook;
      let ns = 0;
      k.mmCore.chargeHook = (n) => (ns += n);
      try {
        fn();
      } finally {
        k.mmCore.chargeHook = prev;
      }
      return ns;
    };
    expect(charged(() => pinUserPagesFast(p.mm, a, 64, FOLL_WRITE, pages))).toBe(64 * st.costs.fastPerPage);
    expect(charged(() => unpinUserPages(k.mmCore, pages, 64))).toBe(64 * st.costs.unpinPerPage);
    expect(charged(() => pinUserPages(p.mm, a, 64, FOLL_WRITE | FOLL_LONGTERM, pages))).toBe(
      64 * st.costs.slowPerPage,
    );
    unpinUserPages(k.mmCore, pages, 64);
  });
});

it('VM.nr_foll_pin_* are the vmstat indices GUP counts in', () => {
  const k = boot();
  const { p, a } = anonPages(k, 1);
  const pages = [0];
  pinUserPages(p.mm, a, 1, 0, pages);
  expect(k.counters.get(VM.nr_foll_pin_acquired)).toBe(1);
  unpinUserPages(k.mmCore, pages, 1);
  expect(k.counters.get(VM.nr_foll_pin_released)).toBe(1);
  expect(PROT_WRITE).toBe(2);
});
