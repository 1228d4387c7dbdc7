import { describe, expect, it } from '@jest/globals';
import {
  ERRNO,
  FOLL_LONGTERM,
  FOLL_WRITE,
  O_RDWR,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  MAP_SHARED,
  UACCE_QFRT_MMIO,
  compactMemory,
  createKernel,
  getUserPages,
  gupPutPages,
  pinUserPages,
  setProcessNode,
  showNumaMap,
  taskNumaWork,
  unpinUserPages,
  type Kernel,
  type KernelOptions,
  type PinTarget,
  type Process,
  type VirtualAccelerator,
} from '@svasim/kernel';
import { describePinStrategyConformance, memcpyAccelPlugin } from '@svasim/testkit';
import { openContext } from '@svasim/user';
import { SHORT_TERM_REF_SYSCALL, shortTermStrategy, type ShortTermStrategy } from './index';

const errno = (code: keyof typeof ERRNO, syscall?: string) =>
  expect.objectContaining(syscall ? { code, syscall } : { code });

// The suite every strategy passes. migrateBufferPages moves the pages as migrate_pages callers
// outside compaction's isolation (CMA, offline) do, so they move here under either strategy.
describePinStrategyConformance(shortTermStrategy, {
  name: 'short-term',
  expect: {
    faultsAfterPrepare: 0,
    pins: false,
    survivesMigration: false,
    charge: 'none',
    faultsAfterFork: 'some',
  },
});

function boot(opts: KernelOptions = {}): { k: Kernel; st: ShortTermStrategy } {
  const k = createKernel({
    memory: { nodes: [{ size: '64MiB' }] },
    ...opts,
    sysctl: { transparent_hugepage: 'never', ...opts.sysctl },
    plugins: [...(opts.plugins ?? []), shortTermStrategy],
  });
  const st = k.plugin<ShortTermStrategy>('pin-short-term');
  expect(k.pinStrategy()).toBe(st);
  return { k, st };
}

const target = (k: Kernel, proc: Process): PinTarget => ({ kernel: k, proc, fd: -1, device: '' });
const tag = (j: number, i: number) => new Uint8Array([0xa0 | j, i & 255, i >> 8, 0x5a]);
const pinAcquired = (k: Kernel) => k.vmstat().nr_foll_pin_acquired ?? 0;
const refcount = (k: Kernel, p: Process, va: number) => k.phys.frames.refcount[p.pagemap(va).pfn!];
const moved = (before: number[], after: number[]) => before.filter((pfn, i) => pfn !== after[i]).length;

interface Regions {
  addrs: number[];
  pfns(j: number): number[];
  check(): void;
  unhide(): void;
}

/**
 * One region of @pages pages per process, faulted in round robin with a filler's pages in
 * between; the filler exits and every free block of 2 MiB or more is taken off the buddy, so
 * compaction moves pages from the low pageblocks into the holes of the high ones.
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
    pfns: (j) => Array.from({ length: pages }, (_, i) => procs[j].pagemap(addrs[j] + i * PAGE_SIZE).pfn!),
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

describe('short-term: prepare and release', () => {
  it('takes one plain reference per page (no pin, no rlimit charge) and release gives them back', () => {
    const { k, st } = boot();
    const p = k.spawn({ uid: 1000, rlimits: { memlock: 0 } }); // no mlock rights needed
    const a = p.mmap(8 * PAGE_SIZE);
    p.write(a, new Uint8Array(8 * PAGE_SIZE).fill(7));
    const pins0 = pinAcquired(k);
    st.prepare(target(k, p), a + 100, 3 * PAGE_SIZE); // touches pages 0..3
    for (let i = 0; i < 4; i++) expect(refcount(k, p, a + i * PAGE_SIZE)).toBe(2);
    expect(refcount(k, p, a + 4 * PAGE_SIZE)).toBe(1);
    expect(p.pagemap(a).pinned).toBe(false);
    expect(pinAcquired(k)).toBe(pins0);
    expect(p.status()).toMatchObject({ vmPin: 0, vmLck: 0 });
    expect(st.heldRefs(p.mm).map((r) => [r.start, r.nrPages])).toEqual([[a, 4]]);
    expect(k.checkInvariants()).toEqual([]);
    // Untouched memory is faulted in (for writing where the VMA is writable).
    const fresh = p.mmap(4 * PAGE_SIZE);
    st.prepare(target(k, p), fresh, 4 * PAGE_SIZE);
    expect(p.pagemap(fresh).present).toBe(true);
    expect(p.pagemap(fresh).zeroPage).toBeFalsy();
    // A read-only mapping is referenced as it is: the zero page takes no reference.
    const ro = p.mmap(2 * PAGE_SIZE, { prot: PROT_READ });
    st.prepare(target(k, p), ro, 2 * PAGE_SIZE);
    expect(p.pagemap(ro).zeroPage).toBe(true);
    expect(st.heldRefs(p.mm)[2].heldPages()).toBe(0);
    st.release(target(k, p), a, 4 * PAGE_SIZE); // the same pages, spelt differently
    st.release(target(k, p), fresh, 4 * PAGE_SIZE);
    st.release(target(k, p), ro, 2 * PAGE_SIZE);
    for (let i = 0; i < 8; i++) expect(refcount(k, p, a + i * PAGE_SIZE)).toBe(1);
    expect(st.heldRefs(p.mm)).toEqual([]);
    expect(pinAcquired(k)).toBe(pins0);
    expect(st.stats).toMatchObject({ gets: 3, puts: 3 });
    expect(k.checkInvariants()).toEqual([]);
  });

  it('errno table: bad ranges, unmapped or un-GUP-able memory, double and mismatched releases', () => {
    const { k, st } = boot({ plugins: [memcpyAccelPlugin] });
    const p = k.spawn();
    const t = target(k, p);
    const a = p.mmap(8 * PAGE_SIZE);
    p.write(a, new Uint8Array(8 * PAGE_SIZE).fill(1));
    const bad: Array<[number, number]> = [
      [a, 0], // zero size
      [a, -PAGE_SIZE],
      [-PAGE_SIZE, PAGE_SIZE],
      [a + 0.5, PAGE_SIZE],
      [a, Number.NaN],
      [2 ** 64 - PAGE_SIZE, 2 * PAGE_SIZE], // wraps in 64 bits
      [PAGE_SIZE, Number.MAX_SAFE_INTEGER],
    ];
    for (const [addr, len] of bad) {
      expect(() => st.prepare(t, addr, len)).toThrow(errno('EINVAL', SHORT_TERM_REF_SYSCALL));
      expect(() => st.release(t, addr, len)).toThrow(errno('EINVAL', SHORT_TERM_REF_SYSCALL));
    }
    expect(() => p.syscall(SHORT_TERM_REF_SYSCALL, 7, a, PAGE_SIZE)).toThrow(errno('EINVAL'));
    // Unmapped memory, beyond user space, PROT_NONE, a device's MMIO (VM_IO): EFAULT, nothing held.
    p.munmap(a + 6 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(() => st.prepare(t, a, 8 * PAGE_SIZE)).toThrow(errno('EFAULT'));
    expect(() => st.prepare(t, a + 6 * PAGE_SIZE, PAGE_SIZE)).toThrow(errno('EFAULT'));
    expect(() => st.prepare(t, 2 ** 47, PAGE_SIZE)).toThrow(errno('EFAULT'));
    expect(() => st.prepare(t, a, 2 ** 40)).toThrow(errno('ENOMEM')); // more than the machine has
    const none = p.mmap(PAGE_SIZE, { prot: PROT_NONE });
    expect(() => st.prepare(t, none, PAGE_SIZE)).toThrow(errno('EFAULT'));
    const fd = p.open('/dev/memcpy_accel-0', O_RDWR);
    const mmio = p.mmap(PAGE_SIZE, {
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_SHARED,
      fd,
      offset: UACCE_QFRT_MMIO * PAGE_SIZE,
    });
    expect(() => st.prepare(t, mmio, PAGE_SIZE)).toThrow(errno('EFAULT'));
    for (let i = 0; i < 6; i++) expect(refcount(k, p, a + i * PAGE_SIZE)).toBe(1);
    expect(st.heldRefs(p.mm)).toEqual([]);
    // Double prepare stacks; each release drops one; a third, or another size, is EINVAL.
    st.prepare(t, a, 2 * PAGE_SIZE);
    st.prepare(t, a, 2 * PAGE_SIZE);
    expect(refcount(k, p, a)).toBe(3);
    expect(() => st.release(t, a, 3 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(() => st.release(t, a + PAGE_SIZE, PAGE_SIZE)).toThrow(errno('EINVAL'));
    st.release(t, a, 2 * PAGE_SIZE);
    expect(refcount(k, p, a)).toBe(2);
    st.release(t, a, 2 * PAGE_SIZE);
    expect(() => st.release(t, a, 2 * PAGE_SIZE)).toThrow(errno('EINVAL'));
    expect(refcount(k, p, a)).toBe(1);
    // Another process's range is not this one's to release.
    const q = k.spawn();
    st.prepare(t, a, PAGE_SIZE);
    expect(() => st.release(target(k, q), a, PAGE_SIZE)).toThrow(errno('EINVAL'));
    p.close(fd);
    p.exit();
    expect(() => st.prepare(t, a, PAGE_SIZE)).toThrow(errno('ESRCH'));
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('short-term: the pages still move', () => {
  it('compaction moves them (the references follow); a get_page reference and a FOLL_LONGTERM pin stay', () => {
    const { k, st } = boot();
    const [a, b, c] = [0, 1, 2].map(() => k.spawn());
    const n = 1024;
    const r = interleave(k, [a, b, c], n);
    st.prepare(target(k, a), r.addrs[0], n * PAGE_SIZE);
    const got = new Int32Array(n);
    expect(getUserPages(b.mm, r.addrs[1], n, FOLL_WRITE, got)).toBe(n);
    const pinned = new Int32Array(n);
    expect(pinUserPages(c.mm, r.addrs[2], n, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(n);
    const pins = pinAcquired(k);
    const before = [0, 1, 2].map((j) => r.pfns(j));
    compactMemory(k.mmCore);
    const after = [0, 1, 2].map((j) => r.pfns(j));
    const m = moved(before[0], after[0]);
    expect(m).toBeGreaterThan(n / 8);
    expect(moved(before[1], after[1])).toBe(0);
    expect(moved(before[2], after[2])).toBe(0);
    expect(Array.from(st.heldRefs(a.mm)[0].pfns)).toEqual(after[0]);
    // A revoke whose move then failed (no target left) is reinstated on the same page.
    expect(st.stats.revokes).toBeGreaterThanOrEqual(m);
    expect(st.stats.reinstates).toBe(st.stats.revokes);
    expect(st.stats.moves).toBe(m);
    expect(pinAcquired(k)).toBe(pins); // nothing of a's counted as a pin
    r.check();
    expect(k.checkInvariants()).toEqual([]);
    st.release(target(k, a), r.addrs[0], n * PAGE_SIZE);
    gupPutPages(k.mmCore, got, n);
    unpinUserPages(k.mmCore, pinned, n);
    [a, b, c].forEach((q, j) => expect(refcount(k, q, r.addrs[j])).toBe(1));
    r.unhide();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a CMA allocation moves them; a get_page reference blocks it; a FOLL_LONGTERM pin leaves CMA first', () => {
    // CMA holds over half the free memory, so the buddy lends it to movable allocations first.
    const { k, st } = boot({ memory: { nodes: [{ size: '256MiB', cma: '160MiB' }] } });
    const p = k.spawn();
    const n = 256;
    const a = p.mmap(n * PAGE_SIZE);
    const data = new Uint8Array(n * PAGE_SIZE).map((_, i) => (i * 11) & 255);
    p.write(a, data);
    const g = p.mmap(4 * PAGE_SIZE);
    const lt = p.mmap(4 * PAGE_SIZE);
    p.write(g, new Uint8Array(4 * PAGE_SIZE).fill(0x66));
    p.write(lt, new Uint8Array(4 * PAGE_SIZE).fill(0x77));
    for (const va of [a, g, lt]) expect(p.pagemap(va).migratetype).toBe('CMA');
    st.prepare(target(k, p), a, n * PAGE_SIZE);
    const got = new Int32Array(4);
    expect(getUserPages(p.mm, g, 4, FOLL_WRITE, got)).toBe(4);
    const ltBefore = p.pagemap(lt).pfn;
    const pinned = new Int32Array(4);
    expect(pinUserPages(p.mm, lt, 4, FOLL_WRITE | FOLL_LONGTERM, pinned)).toBe(4);
    expect(p.pagemap(lt).pfn).not.toBe(ltBefore); // moved out of CMA before the pin held
    expect(p.pagemap(lt).migratetype).not.toBe('CMA');
    expect(k.cmaAlloc('160MiB')).toBe(false); // the get_page reference keeps its CMA page busy
    gupPutPages(k.mmCore, got, 4);
    expect(k.cmaAlloc('160MiB')).toBe(true);
    for (let i = 0; i < n; i++) expect(p.pagemap(a + i * PAGE_SIZE).migratetype).not.toBe('CMA');
    const ref = st.heldRefs(p.mm)[0];
    expect(Array.from(ref.pfns)).toEqual(
      Array.from({ length: n }, (_, i) => p.pagemap(a + i * PAGE_SIZE).pfn),
    );
    expect(ref.pagesMoved).toBe(n);
    expect(Buffer.from(p.read(a, n * PAGE_SIZE)).equals(Buffer.from(data))).toBe(true);
    expect(p.read(lt, 4 * PAGE_SIZE).every((x) => x === 0x77)).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    st.release(target(k, p), a, n * PAGE_SIZE);
    unpinUserPages(k.mmCore, pinned, 4);
    k.cmaRelease();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('NUMA balancing moves them to the node the task runs on', () => {
    const k = createKernel({
      memory: { nodes: [{ size: '128MiB' }, { size: '128MiB' }] },
      plugins: [shortTermStrategy],
    });
    const st = k.plugin<ShortTermStrategy>('pin-short-term');
    const p = k.spawn({ node: 1 });
    const n = 16;
    const a = p.mmap(n * PAGE_SIZE);
    p.write(a, new Uint8Array(n * PAGE_SIZE).fill(0x42));
    st.prepare(target(k, p), a, n * PAGE_SIZE);
    setProcessNode(p.mm, 0);
    expect(taskNumaWork(p.mm)).toBe(n); // a short-term reference is not maybe-pinned: hinted
    p.touch(a, n * PAGE_SIZE);
    expect(showNumaMap(p.mm)).toEqual([n, 0]);
    const ref = st.heldRefs(p.mm)[0];
    expect(Array.from(ref.pfns)).toEqual(
      Array.from({ length: n }, (_, i) => p.pagemap(a + i * PAGE_SIZE).pfn),
    );
    expect(p.read(a, n * PAGE_SIZE).every((x) => x === 0x42)).toBe(true);
    expect(k.vmstat().numa_pages_migrated).toBe(n);
    expect(k.checkInvariants()).toEqual([]);
  });
});

describe('short-term with a device', () => {
  it('no IO page fault after prepare or after the pages moved; one re-walk per moved page; data exact', () => {
    const { k, st } = boot({ plugins: [memcpyAccelPlugin] });
    const acc = k.plugin<VirtualAccelerator>('memcpy_accel');
    const p = k.spawn();
    const other = k.spawn();
    const ctx = openContext(p, 'memcpy', { kernel: k });
    expect(ctx.pin).toBe(st);
    const r = interleave(k, [p, other], 1024);
    const n = 16;
    const src = r.addrs[0]; // the lowest pages of the region: compaction moves them
    const dst = p.mmap(n * PAGE_SIZE);
    ctx.prepare(src, n * PAGE_SIZE);
    ctx.prepare(dst, n * PAGE_SIZE); // never touched: faulted in by prepare
    const copy = () =>
      ctx.submitSync({ op: 'copy', alg: 'memcpy', src, srcLen: n * PAGE_SIZE, dst, dstLen: n * PAGE_SIZE });
    const iopf0 = k.vmstat().iopf_count;
    expect(copy()).toMatchObject({ status: 0, produced: n * PAGE_SIZE, faults: 0 });
    const walks = () => acc.idev!.stats.walks;
    let w = walks();
    expect(copy().faults).toBe(0);
    expect(walks() - w).toBe(0); // every translation cached
    const pagesOf = (va: number) => Array.from({ length: n }, (_, i) => p.pagemap(va + i * PAGE_SIZE).pfn!);
    const before = [...pagesOf(src), ...pagesOf(dst)];
    compactMemory(k.mmCore);
    const after = [...pagesOf(src), ...pagesOf(dst)];
    const m = moved(before, after);
    expect(m).toBeGreaterThan(0);
    expect(st.stats.moves).toBe(m);
    expect(st.stats.invalidations).toBe(m); // one SVA domain: one IOTLB/ATC invalidation per revoke
    const fresh = new Uint8Array(n * PAGE_SIZE).map((_, i) => (i * 13 + 1) & 255);
    p.write(src, fresh);
    w = walks();
    expect(copy()).toMatchObject({ status: 0, faults: 0 });
    expect(walks() - w).toBe(m); // the moved pages are translated again, once each
    expect(k.vmstat().iopf_count).toBe(iopf0);
    expect(Buffer.from(p.read(dst, n * PAGE_SIZE)).equals(Buffer.from(fresh))).toBe(true);
    ctx.release(src, n * PAGE_SIZE);
    ctx.release(dst, n * PAGE_SIZE);
    ctx.close();
    r.unhide();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('exit without release drops the references: no leak', () => {
    const { k, st } = boot({ plugins: [memcpyAccelPlugin] });
    const free0 = k.phys.nrFreePages();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy', { kernel: k });
    const a = p.mmap(64 * PAGE_SIZE);
    ctx.prepare(a, 64 * PAGE_SIZE);
    ctx.prepare(a, 8 * PAGE_SIZE);
    expect(
      ctx.submitSync({
        op: 'copy',
        alg: 'memcpy',
        src: a,
        srcLen: 8 * PAGE_SIZE,
        dst: a + 32 * PAGE_SIZE,
        dstLen: 8 * PAGE_SIZE,
      }).faults,
    ).toBe(0);
    p.exit();
    expect(st.stats.putAtExit).toBe(2);
    expect(st.heldRefs(p.mm)).toEqual([]);
    expect(k.phys.nrFreePages()).toBe(free0);
    expect(k.checkInvariants()).toEqual([]);
    // With release, the same.
    const q = k.spawn();
    const b = q.mmap(64 * PAGE_SIZE);
    st.prepare(target(k, q), b, 64 * PAGE_SIZE);
    st.release(target(k, q), b, 64 * PAGE_SIZE);
    q.exit();
    expect(k.phys.nrFreePages()).toBe(free0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('fork keeps everyone’s data exact (the references stay with the pages they were taken on)', () => {
    const { k, st } = boot({ plugins: [memcpyAccelPlugin] });
    const free0 = k.phys.nrFreePages();
    const p = k.spawn();
    const ctx = openContext(p, 'memcpy', { kernel: k });
    const n = 8;
    const src = p.mmap(n * PAGE_SIZE);
    const dst = p.mmap(n * PAGE_SIZE);
    const d1 = new Uint8Array(n * PAGE_SIZE).fill(0xd1);
    const d2 = new Uint8Array(n * PAGE_SIZE).fill(0xd2);
    p.write(src, d1);
    ctx.prepare(src, n * PAGE_SIZE);
    ctx.prepare(dst, n * PAGE_SIZE);
    const held = p.pagemap(src).pfn;
    const c = p.fork();
    expect(c.pagemap(src).pfn).toBe(held); // shared copy-on-write: a short-term reference is no pin
    p.write(src, d2); // the parent breaks COW away from the referenced page
    // fork write-protected dst too (no early copy for a reference that is no pin): the device's
    // first write to each page is an IO page fault that breaks COW, as a CPU write would.
    expect(copyOf(ctx, src, dst, n).faults).toBe(n);
    expect(copyOf(ctx, src, dst, n).faults).toBe(0);
    expect(Buffer.from(p.read(dst, n * PAGE_SIZE)).equals(Buffer.from(d2))).toBe(true);
    expect(Buffer.from(c.read(src, n * PAGE_SIZE)).equals(Buffer.from(d1))).toBe(true);
    c.write(src, new Uint8Array([0xcc]));
    expect(p.read(src, 1)[0]).toBe(0xd2);
    expect(st.heldRefs(p.mm)[0].pfns[0]).toBe(held);
    expect(k.checkInvariants()).toEqual([]);
    ctx.release(src, n * PAGE_SIZE);
    ctx.release(dst, n * PAGE_SIZE);
    ctx.close();
    c.exit();
    p.exit();
    expect(k.phys.nrFreePages()).toBe(free0);
    expect(k.checkInvariants()).toEqual([]);
  });
});

function copyOf(ctx: ReturnType<typeof openContext>, src: number, dst: number, n: number) {
  return ctx.submitSync({
    op: 'copy',
    alg: 'memcpy',
    src,
    srcLen: n * PAGE_SIZE,
    dst,
    dstLen: n * PAGE_SIZE,
  });
}
