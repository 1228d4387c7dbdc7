import fc from 'fast-check';
import {
  MADV_DOFORK,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_KEEPONFORK,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  type Kernel,
  type Process,
} from '@svasim/kernel';
import { UNMAPPED, check, errnoOf, expectCode, pageOf, pick, slotOf } from './fuzz-helpers';
import { MmModel, type PageModel, type ProcModel } from './mm-model';

/** The system under test: a kernel and its processes by slot (null once exited). */
export interface MmReal {
  kernel: Kernel;
  procs: Array<Process | null>;
}

type Cmd = fc.Command<MmModel, MmReal>;

/** The most live processes a sequence keeps (fork is skipped beyond it). */
export const MAX_PROCS = 4;
class MmapCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly pages: number,
    readonly shared: boolean,
    readonly prot: number,
    readonly populate: boolean,
    readonly fixedPick: number | null,
  ) {}
  check = () => true;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const proc = r.procs[slot]!;
    const fixed = this.fixedPick !== null && pm.pages.size > 0 ? pageOf(pm, this.fixedPick) : 0;
    const flags =
      (this.shared ? MAP_SHARED : MAP_PRIVATE) |
      MAP_ANONYMOUS |
      (this.populate ? MAP_POPULATE : 0) |
      (fixed ? MAP_FIXED : 0);
    const addr = proc.mmap(this.pages * PAGE_SIZE, { prot: this.prot, flags, addr: fixed });
    if (fixed && addr !== fixed) throw new Error(`MAP_FIXED returned ${addr} not ${fixed}`);
    const obj = this.shared ? m.newObject() : 0;
    for (let i = 0; i < this.pages; i++) {
      const va = addr + i * PAGE_SIZE;
      pm.pages.set(va, {
        prot: this.prot,
        obj,
        objIdx: i,
        locked: false,
        dontfork: false,
        wipeonfork: false,
      });
    }
    check(r, this.toString());
  }
  toString = () =>
    `mmap(p${this.pick}, ${this.pages}p, ${this.shared ? 'shared' : 'private'}, prot=${this.prot}${this.populate ? ', populate' : ''}${this.fixedPick !== null ? `, fixed@${this.fixedPick}` : ''})`;
}

class MunmapCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
    readonly pages: number,
  ) {}
  check = () => true;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const va = pageOf(pm, this.page);
    r.procs[slot]!.munmap(va, this.pages * PAGE_SIZE);
    for (let i = 0; i < this.pages; i++) pm.pages.delete(va + i * PAGE_SIZE);
    check(r, this.toString());
  }
  toString = () => `munmap(p${this.pick}, page ${this.page}, ${this.pages}p)`;
}

class MprotectCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
    readonly pages: number,
    readonly prot: number,
  ) {}
  check = () => true;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const va = pageOf(pm, this.page);
    const got = errnoOf(() => r.procs[slot]!.mprotect(va, this.pages * PAGE_SIZE, this.prot));
    const prefix = m.mappedPrefix(pm, va, this.pages);
    for (const a of prefix) pm.pages.get(a)!.prot = this.prot;
    expectCode(got, prefix.length === this.pages ? 'OK' : 'ENOMEM', this.toString());
    check(r, this.toString());
  }
  toString = () => `mprotect(p${this.pick}, page ${this.page}, ${this.pages}p, prot=${this.prot})`;
}

const ADVICE_NAMES: Record<number, string> = {
  [MADV_DONTFORK]: 'DONTFORK',
  [MADV_DOFORK]: 'DOFORK',
  [MADV_WIPEONFORK]: 'WIPEONFORK',
  [MADV_KEEPONFORK]: 'KEEPONFORK',
  [MADV_DONTNEED]: 'DONTNEED',
};

class MadviseCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
    readonly pages: number,
    readonly advice: number,
  ) {}
  check = () => true;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const va = pageOf(pm, this.page);
    const got = errnoOf(() => r.procs[slot]!.madvise(va, this.pages * PAGE_SIZE, this.advice));
    // Page by page in address order, as the kernel walks VMAs: the first page whose VMA refuses
    // the advice stops the walk with EINVAL; holes give ENOMEM at the end.
    let want = 'OK';
    let hole = false;
    for (let i = 0; i < this.pages; i++) {
      const pg = pm.pages.get(va + i * PAGE_SIZE);
      if (!pg) {
        hole = true;
        continue;
      }
      if (!this.apply(m, pg)) {
        want = 'EINVAL';
        break;
      }
    }
    if (want === 'OK' && hole) want = 'ENOMEM';
    expectCode(got, want, this.toString());
    check(r, this.toString());
  }
  /** Apply the advice to one page; false when its VMA refuses it. */
  private apply(m: MmModel, pg: PageModel): boolean {
    switch (this.advice) {
      case MADV_DONTFORK:
        pg.dontfork = true;
        return true;
      case MADV_DOFORK:
        pg.dontfork = false;
        return true;
      case MADV_WIPEONFORK:
        if (pg.obj) return false;
        pg.wipeonfork = true;
        return true;
      case MADV_KEEPONFORK:
        pg.wipeonfork = false;
        return true;
      case MADV_DONTNEED:
        if (pg.locked) return false;
        if (!pg.obj) pg.data = undefined; // private memory reads back as zero; shared keeps its data
        return true;
      default:
        throw new Error(`advice ${this.advice}`);
    }
  }
  toString = () => `madvise(p${this.pick}, page ${this.page}, ${this.pages}p, ${ADVICE_NAMES[this.advice]})`;
}

class MlockCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
    readonly pages: number,
    readonly lock: boolean,
  ) {}
  check = () => true;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const proc = r.procs[slot]!;
    const va = pageOf(pm, this.page);
    const len = this.pages * PAGE_SIZE;
    const got = errnoOf(() => (this.lock ? proc.mlock(va, len) : proc.munlock(va, len)));
    let want = 'OK';
    if (this.lock) {
      let locked = this.pages + m.lockedPages(pm);
      if (locked > pm.memlockPages) {
        for (let i = 0; i < this.pages; i++) if (pm.pages.get(va + i * PAGE_SIZE)?.locked) locked--;
        if (locked > pm.memlockPages) want = 'ENOMEM';
      }
    }
    if (want === 'OK') {
      const prefix = m.mappedPrefix(pm, va, this.pages);
      for (const a of prefix) pm.pages.get(a)!.locked = this.lock;
      if (prefix.length < this.pages) want = 'ENOMEM';
      // The lock is applied, then populating a PROT_NONE page fails: mlock reports ENOMEM.
      else if (this.lock && prefix.some((a) => pm.pages.get(a)!.prot === PROT_NONE)) want = 'ENOMEM';
    }
    expectCode(got, want, this.toString());
    const vmLck = proc.status().vmLck / PAGE_SIZE;
    if (vmLck !== m.lockedPages(pm))
      throw new Error(`${this.toString()}: VmLck ${vmLck} != model ${m.lockedPages(pm)}`);
    check(r, this.toString());
  }
  toString = () => `${this.lock ? 'mlock' : 'munlock'}(p${this.pick}, page ${this.page}, ${this.pages}p)`;
}

class ForkCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<MmModel>) => m.live().length < MAX_PROCS;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const child = r.procs[slot]!.fork();
    const cm: ProcModel = { pages: new Map(), memlockPages: pm.memlockPages };
    for (const [va, pg] of pm.pages) {
      if (pg.dontfork) continue;
      const data = pg.obj || pg.wipeonfork || !pg.data ? undefined : pg.data.slice();
      cm.pages.set(va, { ...pg, locked: false, data });
    }
    m.procs.push(cm);
    r.procs.push(child);
    m.forked(slot, m.procs.length - 1);
    check(r, this.toString());
  }
  toString = () => `fork(p${this.pick})`;
}

class ExitCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<MmModel>) => m.live().length > 1;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    r.procs[slot]!.exit();
    r.procs[slot] = null;
    m.procs[slot] = null;
    m.exited(slot);
    check(r, this.toString());
  }
  toString = () => `exit(p${this.pick})`;
}

class WriteCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
    readonly offset: number,
    readonly bytes: Uint8Array,
    readonly stray: boolean,
  ) {}
  check = () => true;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const va = this.stray ? UNMAPPED : pageOf(pm, this.page);
    const off = Math.min(this.offset, PAGE_SIZE - this.bytes.length);
    const got = errnoOf(() => r.procs[slot]!.write(va + off, this.bytes));
    const pg = pm.pages.get(va);
    const ok = pg !== undefined && (pg.prot & PROT_WRITE) !== 0;
    expectCode(got, ok ? 'OK' : 'EFAULT', this.toString());
    if (ok) m.writable(pg).set(this.bytes, off);
    check(r, this.toString());
  }
  toString = () =>
    `write(p${this.pick}, page ${this.page}${this.stray ? ' (stray)' : ''}, +${this.offset}, ${this.bytes.length}B)`;
}

class ReadCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
  ) {}
  check = () => true;
  run(m: MmModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const va = pageOf(pm, this.page);
    const pg = pm.pages.get(va);
    let got: Uint8Array | null = null;
    const code = errnoOf(() => {
      got = r.procs[slot]!.read(va, PAGE_SIZE);
    });
    const ok = pg !== undefined && pg.prot !== PROT_NONE;
    expectCode(code, ok ? 'OK' : 'EFAULT', this.toString());
    if (ok) {
      const want = m.bytes(pg);
      const g = got as unknown as Uint8Array;
      for (let i = 0; i < PAGE_SIZE; i++)
        if (g[i] !== want[i])
          throw new Error(`${this.toString()}: byte ${i} is ${g[i]}, expected ${want[i]}`);
    }
    check(r, this.toString());
  }
  toString = () => `read(p${this.pick}, page ${this.page})`;
}

const npages = fc.integer({ min: 1, max: 6 });
/** Mostly small mappings; now and then a 2 MiB one, which gets a transparent huge page. */
const mmapPages = fc.oneof({ weight: 12, arbitrary: npages }, { weight: 1, arbitrary: fc.constant(512) });
const prot = fc.constantFrom(PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ, PROT_NONE);

/**
 * mmCommands - fast-check command arbitraries for model-based fuzzing of the process memory
 * API: mmap (private/shared, populate, MAP_FIXED over existing pages), munmap, mprotect,
 * madvise (DONTFORK, DOFORK, WIPEONFORK, KEEPONFORK, DONTNEED), mlock/munlock under
 * RLIMIT_MEMLOCK, fork, exit, write and read. Each command checks the syscall's result and errno
 * against the model, the data read back, and kernel.checkInvariants() after every step.
 */
export function mmCommands(): Array<fc.Arbitrary<Cmd>> {
  return [
    fc
      .tuple(pick, mmapPages, fc.boolean(), prot, fc.boolean(), fc.option(pick, { freq: 5 }))
      .map(([p, n, s, pr, pop, fx]) => new MmapCmd(p, n, s && n < 512, pr, pop, n < 512 ? fx : null)),
    fc.tuple(pick, pick, npages).map(([p, pg, n]) => new MunmapCmd(p, pg, n)),
    fc.tuple(pick, pick, npages, prot).map(([p, pg, n, pr]) => new MprotectCmd(p, pg, n, pr)),
    fc
      .tuple(
        pick,
        pick,
        npages,
        fc.constantFrom(MADV_DONTFORK, MADV_DOFORK, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTNEED),
      )
      .map(([p, pg, n, a]) => new MadviseCmd(p, pg, n, a)),
    fc.tuple(pick, pick, npages, fc.boolean()).map(([p, pg, n, l]) => new MlockCmd(p, pg, n, l)),
    pick.map((p) => new ForkCmd(p)),
    pick.map((p) => new ExitCmd(p)),
    fc
      .tuple(
        pick,
        pick,
        fc.nat({ max: PAGE_SIZE - 1 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.boolean(),
      )
      .map(([p, pg, off, b, stray]) => new WriteCmd(p, pg, off, b, stray && (off & 15) === 0)),
    fc.tuple(pick, pick).map(([p, pg]) => new ReadCmd(p, pg)),
    fc.tuple(pick, pick).map(([p, pg]) => new ReadCmd(p, pg)),
  ];
}

/**
 * mmFuzzSetup - a fresh kernel and one unprivileged process (uid 1000, RLIMIT_MEMLOCK of
 * `memlockPages` pages) for a command sequence.
 */
export function mmFuzzSetup(createKernel: () => Kernel, memlockPages = 12): { model: MmModel; real: MmReal } {
  const kernel = createKernel();
  const p = kernel.spawn({ uid: 1000, rlimits: { memlock: memlockPages * PAGE_SIZE } });
  const model = new MmModel();
  model.procs.push({ pages: new Map(), memlockPages });
  return { model, real: { kernel, procs: [p] } };
}

/** mmFuzzTeardown - exit every process and check that nothing leaked. */
export function mmFuzzTeardown(real: MmReal, freeAtBoot: number): void {
  for (const p of real.procs) p?.exit();
  check(real, 'teardown');
  const free = real.kernel.vmstat().nr_free_pages;
  if (free !== freeAtBoot)
    throw new Error(`leak: ${freeAtBoot - free} pages not freed after every process exited`);
}
