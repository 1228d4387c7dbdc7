import { describe, it, expect, afterEach } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { KernelOptions } from '../plugin/kernel-options';
import type { Process } from '../proc/process';
import { SyscallError } from '../uapi/errno';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
} from '../uapi/mman';
import { PG_anon, PG_anon_exclusive, PG_shmem } from './page-flags';
import { PTE_WRITE } from './pte';

// Transparent huge pages off: these tests are about the 4 KiB and hugetlb fault paths.
const SMALL: KernelOptions = {
  memory: { nodes: [{ size: '256MiB' }] },
  sysctl: { transparent_hugepage: 'never' },
};
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const SHARED = MAP_SHARED | MAP_ANONYMOUS;

const kernels: Kernel[] = [];
function boot(opts: KernelOptions = {}): Kernel {
  const k = createKernel({ ...SMALL, ...opts });
  kernels.push(k);
  return k;
}
afterEach(() => {
  for (const k of kernels.splice(0)) expect(k.checkInvariants()).toEqual([]);
});

/** A process whose every call, successful or not, is followed by kernel.checkInvariants(). */
function watched(k: Kernel, p: Process): Process {
  return new Proxy(p, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        try {
          const r: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
          return r !== null && typeof r === 'object' && 'mmCaller' in r ? watched(k, r as Process) : r;
        } finally {
          const bad = k.checkInvariants();
          // eslint-disable-next-line no-unsafe-finally
          if (bad.length) throw new Error(`invariants broken after ${String(prop)}:\n${bad.join('\n')}`);
        }
      };
    },
  });
}

const spawn = (k: Kernel): Process => watched(k, k.spawn());

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const counter = (k: Kernel, name: string): number => k.vmstat()[name] ?? 0;

/** The page-frame state of the page `p` maps at `va`. */
function frame(k: Kernel, p: Process, va: number) {
  const pfn = p.pagemap(va).pfn!;
  const f = k.mmCore.frames;
  return {
    pfn,
    refcount: f.refcount[pfn],
    mapcount: f.mapcount[pfn],
    anon: (f.flags[pfn] & PG_anon) !== 0,
    exclusive: (f.flags[pfn] & PG_anon_exclusive) !== 0,
    shmem: (f.flags[pfn] & PG_shmem) !== 0,
  };
}

/** Is the page-table entry for `va` writable right now (no fault needed for a store)? */
function pteWritable(p: Process, va: number): boolean {
  const t = p.mm.pgtable.walk(va, false);
  return !!t && (t[p.mm.pgtable.slot + 1] & PTE_WRITE) !== 0;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SyscallError) return `${e.code}/${e.syscall}`;
    throw e;
  }
  return 'ok';
}

describe('anonymous faults', () => {
  it('a read fault maps the shared zero page read-only and allocates nothing', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(4 * PAGE_SIZE);
    const free0 = counter(k, 'nr_free_pages');
    const faults0 = counter(k, 'pgfault');
    const zero0 = counter(k, 'zero_page_fault');
    expect([...p.read(a, 2)]).toEqual([0, 0]);
    p.touch(a + PAGE_SIZE, 3 * PAGE_SIZE);
    expect(counter(k, 'pgfault') - faults0).toBe(4);
    expect(counter(k, 'zero_page_fault') - zero0).toBe(4);
    expect(counter(k, 'nr_free_pages')).toBe(free0);
    const z = p.pagemap(a);
    expect(z.zeroPage).toBe(true);
    expect(z.pfn).toBe(k.phys.zeroPfn);
    expect(pteWritable(p, a)).toBe(false);
    // a second read of a mapped page takes no fault
    p.read(a, PAGE_SIZE);
    expect(counter(k, 'pgfault') - faults0).toBe(4);
  });

  it('a write fault over the zero page gets a fresh zeroed page of its own', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(PAGE_SIZE);
    p.read(a, 1);
    const free0 = counter(k, 'nr_free_pages');
    p.write(a + 100, text('x'));
    const fr = frame(k, p, a);
    expect(fr.pfn).not.toBe(k.phys.zeroPfn);
    expect(fr).toMatchObject({ refcount: 1, mapcount: 1, anon: true, exclusive: true });
    expect(counter(k, 'nr_free_pages')).toBe(free0 - 1);
    expect(pteWritable(p, a)).toBe(true);
    const bytes = p.read(a, PAGE_SIZE);
    expect(bytes[100]).toBe(120);
    expect(bytes.reduce((s, b) => s + b, 0)).toBe(120);
  });

  it('a first write fault maps a new writable page directly (no zero page in between)', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(PAGE_SIZE);
    const zero0 = counter(k, 'zero_page_fault');
    p.write(a, text('w'));
    expect(counter(k, 'zero_page_fault')).toBe(zero0);
    expect(frame(k, p, a)).toMatchObject({ refcount: 1, mapcount: 1, exclusive: true });
  });

  it('a write to a write-protected exclusive page reuses it (no copy, same pfn)', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(PAGE_SIZE);
    p.write(a, text('old'));
    const pfn = p.pagemap(a).pfn;
    p.mprotect(a, PAGE_SIZE, PROT_READ);
    expect(pteWritable(p, a)).toBe(false);
    p.mprotect(a, PAGE_SIZE, PROT_READ | PROT_WRITE);
    const free0 = counter(k, 'nr_free_pages');
    const cow0 = counter(k, 'cow_fault');
    p.write(a, text('new'));
    expect(p.pagemap(a).pfn).toBe(pfn);
    expect(counter(k, 'nr_free_pages')).toBe(free0);
    expect(counter(k, 'cow_fault')).toBe(cow0);
    expect(str(p.read(a, 3))).toBe('new');
  });

  it('a write to a read-only mapping is SIGSEGV (EFAULT) and allocates nothing', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(PAGE_SIZE, { prot: PROT_READ });
    const free0 = counter(k, 'nr_free_pages');
    expect(codeOf(() => p.write(a, text('x')))).toBe('EFAULT/access');
    expect(counter(k, 'nr_free_pages')).toBe(free0);
    expect(p.pagemap(a).present).toBe(false);
  });
});

describe('copy-on-write', () => {
  it('fork shares the page write-protected and no longer exclusive', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(PAGE_SIZE);
    p.write(a, text('shared'));
    const c = p.fork();
    expect(frame(k, c, a)).toMatchObject({
      pfn: p.pagemap(a).pfn,
      refcount: 2,
      mapcount: 2,
      exclusive: false,
    });
    expect(pteWritable(p, a)).toBe(false);
    expect(pteWritable(c, a)).toBe(false);
    // reads take no COW
    expect(str(c.read(a, 6))).toBe('shared');
    expect(frame(k, p, a).mapcount).toBe(2);
    c.exit();
  });

  it('a write to a shared page copies it: same bytes, new pfn, one reference each', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(PAGE_SIZE);
    p.write(a, text('0123456789'));
    const old = p.pagemap(a).pfn;
    const c = p.fork();
    const free0 = counter(k, 'nr_free_pages');
    const cow0 = counter(k, 'cow_fault');
    c.write(a + 4, text('X'));
    expect(counter(k, 'cow_fault')).toBe(cow0 + 1);
    expect(counter(k, 'nr_free_pages')).toBe(free0 - 1);
    const cf = frame(k, c, a);
    expect(cf.pfn).not.toBe(old);
    expect(cf).toMatchObject({ refcount: 1, mapcount: 1, exclusive: true });
    expect(frame(k, p, a)).toMatchObject({ pfn: old, refcount: 1, mapcount: 1 });
    expect(str(c.read(a, 10))).toBe('0123X56789');
    expect(str(p.read(a, 10))).toBe('0123456789');
    // the parent, now the only mapper, reuses its page
    p.write(a, text('P'));
    expect(p.pagemap(a).pfn).toBe(old);
    expect(counter(k, 'cow_fault')).toBe(cow0 + 1);
    c.exit();
  });

  it('after the child exits the parent reuses its page and it becomes exclusive again', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(PAGE_SIZE);
    p.write(a, text('x'));
    const old = p.pagemap(a).pfn;
    p.fork().exit();
    expect(frame(k, p, a)).toMatchObject({ refcount: 1, mapcount: 1, exclusive: false });
    p.write(a, text('y'));
    expect(frame(k, p, a)).toMatchObject({ pfn: old, exclusive: true });
    expect(pteWritable(p, a)).toBe(true);
  });

  it('a write over a zero page shared with a child gets a fresh page, the child keeps the zero page', () => {
    const k = boot();
    const p = spawn(k);
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, text('anon')); // gives the VMA an anon_vma, so fork copies its page table
    p.read(a + PAGE_SIZE, 1);
    const c = p.fork();
    c.write(a + PAGE_SIZE, text('c'));
    expect(p.pagemap(a + PAGE_SIZE).zeroPage).toBe(true);
    expect(c.pagemap(a + PAGE_SIZE).zeroPage).toBeFalsy();
    expect(p.read(a + PAGE_SIZE, 1)[0]).toBe(0);
    c.exit();
  });
});

describe('shared memory faults', () => {
  it('a read fault maps a real page held by the shmem object and the mapping', () => {
    const k = boot();
    const p = spawn(k);
    const free0 = counter(k, 'nr_free_pages');
    const s = p.mmap(2 * PAGE_SIZE, { flags: SHARED });
    p.read(s, 1);
    const fr = frame(k, p, s);
    expect(fr.pfn).not.toBe(k.phys.zeroPfn);
    expect(fr).toMatchObject({ refcount: 2, mapcount: 1, shmem: true, anon: false });
    expect(counter(k, 'nr_free_pages')).toBe(free0 - 1);
    // a shared mapping is writable as soon as the page is there: no COW
    p.write(s, text('s'));
    expect(p.pagemap(s).pfn).toBe(fr.pfn);
    const c = p.fork();
    expect(c.pagemap(s).present).toBe(false);
    c.read(s, 1);
    expect(frame(k, c, s)).toMatchObject({ pfn: fr.pfn, refcount: 3, mapcount: 2 });
    c.write(s + PAGE_SIZE, text('t'));
    expect(p.pagemap(s + PAGE_SIZE).present).toBe(false);
    expect(str(p.read(s + PAGE_SIZE, 1))).toBe('t');
    // the object lives until its last mapping goes
    p.munmap(s, 2 * PAGE_SIZE);
    expect(str(c.read(s, 1))).toBe('s');
    c.exit();
    expect(counter(k, 'nr_free_pages')).toBe(free0);
  });
});

describe('hugetlb faults', () => {
  const HUGE: KernelOptions = { memory: { nodes: [{ size: '1GiB' }], hugepages: { '2MiB': 4 } } };

  it('map a whole 2 MiB page at the first touch', () => {
    const k = boot(HUGE);
    const p = spawn(k);
    const a = p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB });
    p.read(a + 12345, 1);
    expect(p.pagemap(a + PMD_SIZE - 1)).toMatchObject({ present: true, huge: '2MiB' });
    expect(k.hugetlb.stats('2MiB')).toMatchObject({ free: 3, resv: 0 });
    // reads of hugetlb memory are not the zero page
    expect(p.pagemap(a).zeroPage).toBeFalsy();
  });

  it('COW after fork copies the whole huge page from the pool; the last mapper reuses it', () => {
    const k = boot(HUGE);
    const p = spawn(k);
    const a = p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB });
    const offsets = [0, PAGE_SIZE - 1, PMD_SIZE / 2 + 7, PMD_SIZE - 1];
    for (const [i, off] of offsets.entries()) p.write(a + off, new Uint8Array([i + 1]));
    const head = p.pagemap(a).pfn!;
    const c = p.fork();
    expect(c.pagemap(a).pfn).toBe(head);
    expect(k.mmCore.frames.mapcount[head]).toBe(2);
    expect(k.hugetlb.stats('2MiB').free).toBe(3);
    c.write(a + PMD_SIZE / 2, text('c'));
    const copy = c.pagemap(a).pfn!;
    expect(copy).not.toBe(head);
    expect(c.pagemap(a)).toMatchObject({ huge: '2MiB' });
    expect(k.hugetlb.stats('2MiB').free).toBe(2);
    for (const [i, off] of offsets.entries()) {
      expect(c.read(a + off, 1)[0]).toBe(i + 1);
      expect(p.read(a + off, 1)[0]).toBe(i + 1);
    }
    expect(str(c.read(a + PMD_SIZE / 2, 1))).toBe('c');
    expect(p.read(a + PMD_SIZE / 2, 1)[0]).toBe(0);
    expect(k.mmCore.frames.mapcount[head]).toBe(1);
    p.write(a, text('p'));
    expect(p.pagemap(a).pfn).toBe(head);
    c.exit();
    expect(k.hugetlb.stats('2MiB').free).toBe(3);
    p.exit();
    expect(k.hugetlb.stats('2MiB')).toMatchObject({ free: 4, resv: 0 });
  });

  it("a child's COW with an empty pool is SIGBUS (EFAULT); its page and the parent's are untouched", () => {
    const k = boot({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 1 } } });
    const p = spawn(k);
    const a = p.mmap(PMD_SIZE, { flags: PRIV | MAP_HUGETLB });
    p.write(a, text('only'));
    const c = p.fork();
    expect(codeOf(() => c.write(a, text('COW!')))).toBe('EFAULT/access');
    expect(str(c.read(a, 4))).toBe('only');
    expect(str(p.read(a, 4))).toBe('only');
    c.exit();
    p.write(a, text('mine'));
    expect(str(p.read(a, 4))).toBe('mine');
  });

  it('shared hugetlb memory is the same page in parent and child', () => {
    const k = boot(HUGE);
    const p = spawn(k);
    const a = p.mmap(PMD_SIZE, { flags: SHARED | MAP_HUGETLB });
    p.write(a, text('both'));
    const c = p.fork();
    c.write(a + PMD_SIZE - 4, text('tail'));
    expect(c.pagemap(a).pfn).toBe(p.pagemap(a).pfn);
    expect(str(p.read(a + PMD_SIZE - 4, 4))).toBe('tail');
    expect(k.hugetlb.stats('2MiB').free).toBe(3);
    c.exit();
    p.exit();
    expect(k.hugetlb.stats('2MiB')).toMatchObject({ free: 4, resv: 0 });
  });
});

describe('out of memory', () => {
  it('a write fault with no free page is ENOMEM; nothing leaks, page tables included', () => {
    // Overcommit always: the test maps more than RAM on purpose, to run out at fault time.
    const k = boot({ memory: { nodes: [{ size: '32MiB' }] }, sysctl: { 'vm.overcommit_memory': 1 } });
    // unwatched: thousands of faults; the invariants are checked after each step below
    const p = k.spawn();
    const free0 = counter(k, 'nr_free_pages');
    const len = 64 << 20;
    const a = p.mmap(len);
    let code = 'ok';
    let stored = 0;
    // one byte in every page until the allocator refuses; stop at the first refusal
    for (let off = 0; off < len && code === 'ok'; off += PAGE_SIZE) {
      code = codeOf(() => p.write(a + off, new Uint8Array([1])));
      if (code === 'ok') stored++;
    }
    expect(code).toBe('ENOMEM/access');
    expect(stored).toBeGreaterThan(1000);
    expect(p.status().vmRss).toBe(stored * PAGE_SIZE);
    expect(k.checkInvariants()).toEqual([]);
    // a failing fault in a 2 MiB region nothing else maps leaves no empty page table behind
    const tables = p.mm.pgtable.nrTables;
    expect(codeOf(() => p.write(a + len - PMD_SIZE, new Uint8Array([1])))).toBe('ENOMEM/access');
    expect(p.mm.pgtable.nrTables).toBe(tables);
    expect(k.checkInvariants()).toEqual([]);
    // the process carries on: reads of the zero page need no memory
    expect(p.read(a + len - PAGE_SIZE, 1)[0]).toBe(0);
    expect(k.checkInvariants()).toEqual([]);
    p.munmap(a, len);
    expect(counter(k, 'nr_free_pages')).toBe(free0);
    expect(p.mm.pgtable.nrTables).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
    p.exit();
  });
});
