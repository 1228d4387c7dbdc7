import fc from 'fast-check';
import {
  ERRNO,
  FOLL_LONGTERM,
  FOLL_WRITE,
  GFP_HIGHUSER_MOVABLE,
  HPAGE_PMD_NR,
  MADV_HUGEPAGE,
  MADV_PAGEOUT,
  MIGRATE_SYNC,
  MR_SYSCALL,
  PAGE_SIZE,
  PMD_SIZE,
  PROT_READ,
  PROT_WRITE,
  SCAN_ALLOC_HUGE_PAGE_FAIL,
  SCAN_LACK_REFERENCED_PAGE,
  SCAN_PAGE_COUNT,
  SCAN_PAGE_RO,
  SCAN_SUCCEED,
  __GFP_COMP,
  collapseHugePage,
  emptyMigrateStats,
  folioHead,
  isolateLruFolio,
  migratePages,
  pinUserPages,
  putbackMovableFolio,
  unpinUserPages,
  type Kernel,
  type MmCore,
  type Process,
} from '@svasim/kernel';
import {
  UNMAPPED,
  check,
  errnoOf,
  expectCode,
  firstDiff,
  hex,
  pageOf,
  pick,
  sameBytes,
  slotOf,
} from './fuzz-helpers';
import { mmCommands, type MmReal } from './mm-commands';
import type { MmModel, PageModel, ProcModel } from './mm-model';
import { PinModel, type PinSet, type PinnedPage } from './pin-model';

type Cmd = fc.Command<PinModel, MmReal>;

/**
 * How often the interesting outcomes happened, summed over every sequence of a run: the test
 * checks that the fuzz actually reaches them (a generator change that stops pinning, or stops
 * pinning in ZONE_MOVABLE, would otherwise pass silently).
 */
export interface PinFuzzCoverage {
  pins: number;
  longtermPins: number;
  zeroPagePins: number;
  /** Long-term pins refused with -ENOMEM (a pinned page in MOVABLE/CMA could not migrate). */
  longtermNomem: number;
  /** Pins whose pages started out in ZONE_MOVABLE or CMA (long-term ones had to migrate them). */
  pinsFromMovable: number;
  /** Pins on pages of a transparent huge page. */
  thpPins: number;
  migratedPinnedRefused: number;
  migratedUnpinned: number;
  collapsed: number;
  collapseRefusedPinned: number;
  pagedOut: number;
  forksWithPins: number;
  pinsOutlivingMapping: number;
  freedByUnpin: number;
}

export const pinFuzzCoverage: PinFuzzCoverage = {
  pins: 0,
  longtermPins: 0,
  zeroPagePins: 0,
  longtermNomem: 0,
  pinsFromMovable: 0,
  thpPins: 0,
  migratedPinnedRefused: 0,
  migratedUnpinned: 0,
  collapsed: 0,
  collapseRefusedPinned: 0,
  pagedOut: 0,
  forksWithPins: 0,
  pinsOutlivingMapping: 0,
  freedByUnpin: 0,
};

/** May a FOLL_LONGTERM pin stay on `pfn`: not in ZONE_MOVABLE, not in a CMA or isolated pageblock. */
function longtermPinnable(k: Kernel, pfn: number): boolean {
  const p = k.phys.placement(pfn);
  return p.zone !== 'MOVABLE' && p.migratetype !== 'CMA' && p.migratetype !== 'ISOLATE';
}

/** The folio heads the model's pins hold (the zero page is never counted). */
function pinnedHeads(m: PinModel, core: MmCore): Set<number> {
  const out = new Set<number>();
  for (const [, pp] of m.countedPins()) out.add(folioHead(core, pp.pfn));
  return out;
}

/**
 * checkPins - the pin rules after any step:
 *  - every pinned page still holds what the model says (a private page: the pinning process's last
 *    write, frozen once it unmapped it; a shared page: the object's bytes; the zero page: zeroes),
 *    so nothing pinned was migrated, swapped, freed or reused;
 *  - a private page still mapped by its pinning process is mapped at the same address (nothing
 *    moved it, fork copied the child's side), and no other process maps it there (pinned
 *    anonymous pages are exclusive);
 *  - a pinned shared page is the page every process mapping that object page maps;
 *  - no FOLL_LONGTERM pin is in ZONE_MOVABLE or CMA;
 *  - nr_foll_pin_acquired - nr_foll_pin_released is the number of pinned pages the model holds.
 */
export function checkPins(m: PinModel, r: MmReal, what: string): void {
  const k = r.kernel;
  const core = k.mmCore;
  const zero = core.alloc.zeroPfn;
  let counted = 0;
  for (const set of m.pinSets) {
    for (const pp of set.pages) {
      const where = `${what}: pin #${set.id} of p${set.slot} at ${hex(pp.va)} (pfn ${pp.pfn}, ${pp.kind})`;
      if (pp.kind === 'zero') {
        if (pp.pfn !== zero) throw new Error(`${where}: not the zero page`);
        continue;
      }
      counted++;
      sameBytes(core, pp.pfn, m.pinBytes(pp), where);
      if (set.longterm && !longtermPinnable(k, pp.pfn)) {
        const p = k.phys.placement(pp.pfn);
        throw new Error(`${where}: FOLL_LONGTERM pin in ${p.zone}/${p.migratetype}`);
      }
      if (pp.kind === 'private' && m.attached(set, pp)) {
        const e = r.procs[set.slot]!.pagemap(pp.va);
        if (!e.present || e.pfn !== pp.pfn)
          throw new Error(
            `${where}: the pinning process now maps ${e.present ? `pfn ${e.pfn}` : 'nothing present'} there`,
          );
        for (const s of m.live()) {
          if (s === set.slot) continue;
          const o = r.procs[s]!.pagemap(pp.va);
          if (o.present && o.pfn === pp.pfn) throw new Error(`${where}: p${s} maps the pinned page too`);
        }
      } else if (pp.kind === 'shared') {
        for (const s of m.live()) {
          const pg = m.procs[s]!.pages.get(pp.va);
          if (!pg || pg.obj !== pp.obj || pg.objIdx !== pp.objIdx) continue;
          const o = r.procs[s]!.pagemap(pp.va);
          if (o.present && o.pfn !== pp.pfn)
            throw new Error(`${where}: p${s} maps pfn ${o.pfn} for the same shared page`);
        }
      }
    }
  }
  const v = k.vmstat();
  const held = v.nr_foll_pin_acquired - v.nr_foll_pin_released;
  if (held !== counted)
    throw new Error(
      `${what}: nr_foll_pin_acquired ${v.nr_foll_pin_acquired} - released ${v.nr_foll_pin_released} = ${held}, model holds ${counted}`,
    );
}

/** An mm-commands command run on the pin model, with the pin rules checked after it. */
class WithPinChecks implements Cmd {
  constructor(readonly inner: fc.Command<MmModel, MmReal>) {}
  check = (m: Readonly<PinModel>) => this.inner.check(m);
  run(m: PinModel, r: MmReal): void {
    const before = m.procs.length;
    const pinsBefore = [...m.countedPins()].filter(([s, pp]) => m.attached(s, pp)).length;
    this.inner.run(m, r);
    if (m.procs.length > before && m.pinSets.length) pinFuzzCoverage.forksWithPins++;
    const pinsAfter = [...m.countedPins()].filter(([s, pp]) => m.attached(s, pp)).length;
    if (pinsAfter < pinsBefore) pinFuzzCoverage.pinsOutlivingMapping += pinsBefore - pinsAfter;
    checkPins(m, r, this.inner.toString());
  }
  toString = () => this.inner.toString();
}

/** pin_user_pages(FOLL_PIN [| FOLL_WRITE] [| FOLL_LONGTERM]) on a range of a process. */
export class PinCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
    readonly pages: number,
    readonly longterm: boolean,
    readonly write: boolean,
    readonly stray: boolean,
  ) {}
  check = () => true;
  run(m: PinModel, r: MmReal): void {
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const proc = r.procs[slot]!;
    const k = r.kernel;
    const core = k.mmCore;
    const zero = core.alloc.zeroPfn;
    const va = this.stray ? UNMAPPED : pageOf(pm, this.page);
    const n = this.pages;
    const what = this.toString();
    // GUP walks page by page and stops at the first page it may not take: a hole (no VMA), or a
    // VMA check_vma_flags refuses (a write to a !VM_WRITE VMA, a read of a !VM_READ one).
    let want = 0;
    for (; want < n; want++) {
      const pg = pm.pages.get(va + want * PAGE_SIZE);
      if (!pg) break;
      if (!(pg.prot & (this.write ? PROT_WRITE : PROT_READ))) break;
    }
    // FOLL_LONGTERM migrates pages out of ZONE_MOVABLE/CMA; a page already pinned there cannot
    // move, so the whole call fails with -ENOMEM and nothing stays pinned.
    let nomem = false;
    let fromMovable = false;
    const heads = pinnedHeads(m, core);
    for (let i = 0; i < want; i++) {
      const a = va + i * PAGE_SIZE;
      const pg = pm.pages.get(a)!;
      // The page GUP will take: the one mapped there, or for shared memory the object's page,
      // which is the pinned one if the model holds a pin on it (mapped here or not).
      let pfn = -1;
      if (pg.obj)
        for (const [, pp] of m.countedPins())
          if (pp.kind === 'shared' && pp.obj === pg.obj && pp.objIdx === pg.objIdx) pfn = pp.pfn;
      if (pfn < 0) {
        const e = proc.pagemap(a);
        if (!e.present || e.zeroPage) continue;
        pfn = e.pfn!;
      }
      if (!longtermPinnable(k, pfn)) {
        fromMovable = true;
        if (this.longterm && heads.has(folioHead(core, pfn))) nomem = true;
      }
    }
    const pfns = new Int32Array(n).fill(-1);
    const flags = (this.write ? FOLL_WRITE : 0) | (this.longterm ? FOLL_LONGTERM : 0);
    const got = pinUserPages(proc.mm, va, n, flags, pfns);
    const wantRet = want === 0 ? -ERRNO.EFAULT : nomem ? -ERRNO.ENOMEM : want;
    if (got !== wantRet) throw new Error(`${what}: pin_user_pages returned ${got}, expected ${wantRet}`);
    if (nomem) pinFuzzCoverage.longtermNomem++;
    for (let i = Math.max(got, 0); i < n; i++)
      if (pfns[i] !== -1) throw new Error(`${what}: pages[${i}] = ${pfns[i]} beyond the ${got} pinned`);
    if (got > 0) {
      const pinned: PinnedPage[] = [];
      for (let i = 0; i < got; i++) {
        const a = va + i * PAGE_SIZE;
        const pfn = pfns[i];
        const pg: PageModel = pm.pages.get(a)!;
        const e = proc.pagemap(a);
        if (!e.present || e.pfn !== pfn)
          throw new Error(
            `${what}: pages[${i}] = ${pfn} but ${hex(a)} maps ${e.present ? e.pfn : 'nothing'}`,
          );
        if (pfn === zero) {
          // Only a read-only pin of a private page that was never written may get the zero page.
          if (this.write || pg.obj || pg.data)
            throw new Error(`${what}: the zero page was pinned at ${hex(a)}`);
          pinned.push({ va: a, pfn, kind: 'zero', obj: 0, objIdx: 0 });
          pinFuzzCoverage.zeroPagePins++;
          continue;
        }
        if (this.longterm && !longtermPinnable(k, pfn)) {
          const p = k.phys.placement(pfn);
          throw new Error(`${what}: FOLL_LONGTERM pinned pfn ${pfn} in ${p.zone}/${p.migratetype}`);
        }
        if (e.huge) pinFuzzCoverage.thpPins++;
        if (pg.obj) pinned.push({ va: a, pfn, kind: 'shared', obj: pg.obj, objIdx: pg.objIdx });
        else pinned.push({ va: a, pfn, kind: 'private', page: pg, data: m.writable(pg), obj: 0, objIdx: 0 });
        sameBytes(core, pfn, m.bytes(pg), `${what}: pages[${i}]`);
      }
      m.addPinSet({ slot, longterm: this.longterm, write: this.write, pfns, pages: pinned });
      pinFuzzCoverage.pins++;
      if (this.longterm) pinFuzzCoverage.longtermPins++;
      if (fromMovable) pinFuzzCoverage.pinsFromMovable++;
    }
    check(r, what);
    checkPins(m, r, what);
  }
  toString = () =>
    `pin(p${this.pick}, page ${this.page}${this.stray ? ' (stray)' : ''}, ${this.pages}p${this.write ? ', WRITE' : ''}${this.longterm ? ', LONGTERM' : ''})`;
}

/**
 * unpinSet - unpin_user_pages one pin set and check what that frees: a private page its process
 * no longer maps goes back to the allocator with its last pin; one still mapped is no longer
 * reported pinned.
 */
function unpinSet(m: PinModel, r: MmReal, set: PinSet, what: string): void {
  const core = r.kernel.mmCore;
  const f = core.frames;
  const info = set.pages.map((pp) => {
    const head = folioHead(core, pp.pfn);
    return { pp, head, order: f.getOrder(head), attached: m.attached(set, pp) };
  });
  m.removePinSet(set);
  const still = pinnedHeads(m, core);
  unpinUserPages(core, set.pfns, set.pages.length);
  for (const { pp, head, order, attached } of info) {
    if (pp.kind === 'zero' || still.has(head) || order > 0) continue;
    const where = `${what}: pin #${set.id} at ${hex(pp.va)} (pfn ${pp.pfn})`;
    if (pp.kind === 'private' && !attached) {
      if (f.refcount[pp.pfn] !== 0)
        throw new Error(`${where}: unmapped and unpinned, but refcount is still ${f.refcount[pp.pfn]}`);
      pinFuzzCoverage.freedByUnpin++;
    } else if (attached && r.procs[set.slot]!.pagemap(pp.va).pinned)
      throw new Error(`${where}: still reported pinned after its only pin was released`);
  }
}

export class UnpinCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<PinModel>) => m.pinSets.length > 0;
  run(m: PinModel, r: MmReal): void {
    const set = m.pinSets[this.pick % m.pinSets.length];
    unpinSet(m, r, set, this.toString());
    check(r, this.toString());
    checkPins(m, r, this.toString());
  }
  toString = () => `unpin(set ${this.pick})`;
}

/**
 * Isolate the folio a process maps at one of its pages and migrate it (move_pages-like,
 * MIGRATE_SYNC): a pinned folio must stay where it is, an unpinned one moves; the bytes are the
 * same either way.
 */
export class MigrateCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
  ) {}
  check = () => true;
  run(m: PinModel, r: MmReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const proc = r.procs[slot]!;
    const k = r.kernel;
    const core = k.mmCore;
    const va = pageOf(pm, this.page);
    const pg = pm.pages.get(va);
    const e = pg ? proc.pagemap(va) : null;
    if (pg && e?.present && !e.zeroPage) {
      const head = folioHead(core, e.pfn!);
      const order = core.frames.getOrder(head);
      const pinned = pinnedHeads(m, core).has(head);
      if (!isolateLruFolio(core, head))
        throw new Error(`${what}: could not isolate pfn ${head} mapped at ${hex(va)}`);
      const stats = emptyMigrateStats();
      const newFolio = (_src: number, o: number) =>
        k.phys.allocPages(GFP_HIGHUSER_MOVABLE | (o > 0 ? __GFP_COMP : 0), o);
      const ret = migratePages(core, [head], newFolio, MIGRATE_SYNC, MR_SYSCALL, stats);
      for (const h of stats.failedFolios) putbackMovableFolio(core, h);
      const after = proc.pagemap(va);
      if (!after.present) throw new Error(`${what}: nothing present at ${hex(va)} after migration`);
      if (pinned) {
        if (ret !== 1 || after.pfn !== e.pfn)
          throw new Error(`${what}: pinned pfn ${e.pfn} migrated (returned ${ret}, now pfn ${after.pfn})`);
        pinFuzzCoverage.migratedPinnedRefused++;
      } else if (ret === 0) {
        if (after.pfn === e.pfn) throw new Error(`${what}: migration succeeded but pfn ${e.pfn} stayed`);
        pinFuzzCoverage.migratedUnpinned++;
      } else if (!(ret === -ERRNO.ENOMEM && order > 0)) {
        throw new Error(`${what}: unpinned pfn ${e.pfn} (order ${order}) failed to migrate: ${ret}`);
      }
      sameBytes(core, after.pfn!, m.bytes(pg), `${what}: ${hex(va)} after migration`);
    }
    check(r, what);
    checkPins(m, r, what);
  }
  toString = () => `migrate(p${this.pick}, page ${this.page})`;
}

/** echo 1 > /proc/sys/vm/compact_memory: pinned pages keep their pfns (checkPins). */
export class CompactCmd implements Cmd {
  check = () => true;
  run(m: PinModel, r: MmReal): void {
    r.kernel.compactMemory();
    check(r, this.toString());
    checkPins(m, r, this.toString());
  }
  toString = () => 'compact_memory';
}

/** 2 MiB-aligned ranges of private pages a process maps entirely. */
function collapsibleBases(p: ProcModel): number[] {
  const out: number[] = [];
  for (const [va, pg] of p.pages) {
    if (va % PMD_SIZE !== 0 || pg.obj) continue;
    let ok = true;
    for (let i = 1; i < HPAGE_PMD_NR && ok; i++) {
      const q = p.pages.get(va + i * PAGE_SIZE);
      ok = q !== undefined && !q.obj;
    }
    if (ok) out.push(va);
  }
  return out.sort((a, b) => a - b);
}

/**
 * MADV_HUGEPAGE a 2 MiB-aligned private range and collapse it into a huge page as khugepaged does
 * (collapse_huge_page): refused while any page of it is pinned; when it succeeds the range is one
 * PMD-mapped huge page with the same bytes.
 */
export class CollapseCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly region: number,
    readonly preferPinned: boolean,
  ) {}
  check = () => true;
  run(m: PinModel, r: MmReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const proc: Process = r.procs[slot]!;
    let bases = collapsibleBases(pm);
    if (this.preferPinned) {
      // Aim at a range holding a pin of this process when there is one.
      const pinned = bases.filter((b) => {
        for (const [set, pp] of m.countedPins())
          if (set.slot === slot && pp.va >= b && pp.va < b + PMD_SIZE && m.attached(set, pp)) return true;
        return false;
      });
      if (pinned.length) bases = pinned;
    }
    if (bases.length) {
      const base = bases[this.region % bases.length];
      expectCode(
        errnoOf(() => proc.madvise(base, PMD_SIZE, MADV_HUGEPAGE)),
        'OK',
        `${what}: MADV_HUGEPAGE`,
      );
      const vma = proc.mm.vmaLookup(base);
      // Pages with different protections or locks are in different VMAs: nothing to collapse.
      if (vma && vma.end >= base + PMD_SIZE) {
        let pinnedHere = false;
        for (const [set, pp] of m.countedPins())
          if (set.slot === slot && pp.va >= base && pp.va < base + PMD_SIZE && m.attached(set, pp))
            pinnedHere = true;
        const ret = collapseHugePage(vma, base);
        // The scan stops at the pinned page with SCAN_PAGE_COUNT unless an earlier page already
        // disqualified the range; it can never get as far as the read-only / referenced checks,
        // the allocation or success.
        const pastScan = [SCAN_SUCCEED, SCAN_PAGE_RO, SCAN_LACK_REFERENCED_PAGE, SCAN_ALLOC_HUGE_PAGE_FAIL];
        if (pinnedHere && pastScan.includes(ret))
          throw new Error(`${what}: a pinned page at ${hex(base)}+ passed the collapse scan (result ${ret})`);
        if (!pinnedHere && ret === SCAN_PAGE_COUNT)
          throw new Error(`${what}: SCAN_PAGE_COUNT at ${hex(base)} but nothing there is pinned`);
        if (pinnedHere && ret === SCAN_PAGE_COUNT) pinFuzzCoverage.collapseRefusedPinned++;
        if (ret === SCAN_SUCCEED) {
          pinFuzzCoverage.collapsed++;
          const e = proc.pagemap(base);
          if (e.huge !== '2MiB') throw new Error(`${what}: collapsed but ${hex(base)} is not PMD-mapped`);
          for (let i = 0; i < HPAGE_PMD_NR; i++) {
            const a = base + i * PAGE_SIZE;
            sameBytes(r.kernel.mmCore, e.pfn! + i, m.bytes(pm.pages.get(a)!), `${what}: ${hex(a)}`);
          }
        }
      }
    }
    check(r, what);
    checkPins(m, r, what);
  }
  toString = () => `collapse(p${this.pick}, region ${this.region}${this.preferPinned ? ', pinned' : ''})`;
}

/** MADV_PAGEOUT: unpinned private pages may go to swap; pinned ones stay present (checkPins). */
export class PageoutCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly page: number,
    readonly pages: number,
  ) {}
  check = () => true;
  run(m: PinModel, r: MmReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const va = pageOf(pm, this.page);
    const out0 = r.kernel.vmstat().pswpout;
    const got = errnoOf(() => r.procs[slot]!.madvise(va, this.pages * PAGE_SIZE, MADV_PAGEOUT));
    // VMA by VMA: a locked VMA refuses (EINVAL, the walk stops), holes give ENOMEM at the end.
    let want = 'OK';
    let hole = false;
    for (let i = 0; i < this.pages; i++) {
      const pg = pm.pages.get(va + i * PAGE_SIZE);
      if (!pg) hole = true;
      else if (pg.locked) {
        want = 'EINVAL';
        break;
      }
    }
    if (want === 'OK' && hole) want = 'ENOMEM';
    expectCode(got, want, what);
    pinFuzzCoverage.pagedOut += r.kernel.vmstat().pswpout - out0;
    check(r, what);
    checkPins(m, r, what);
  }
  toString = () => `madvise(p${this.pick}, page ${this.page}, ${this.pages}p, PAGEOUT)`;
}

/**
 * A 2 MiB private mapping (PMD-aligned), MADV_HUGEPAGE'd or not, with one page written: a
 * transparent huge page in the first case, a range to collapse later in the second.
 */
export class MmapHugeCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly huge: boolean,
    readonly touch: number,
    readonly byte: number,
  ) {}
  check = () => true;
  run(m: PinModel, r: MmReal): void {
    const what = this.toString();
    const slot = slotOf(m, this.pick);
    const pm = m.procs[slot]!;
    const proc = r.procs[slot]!;
    const addr = proc.mmap(PMD_SIZE, { prot: PROT_READ | PROT_WRITE });
    if (addr % PMD_SIZE) throw new Error(`${what}: a 2 MiB mapping at ${hex(addr)} is not PMD-aligned`);
    for (let i = 0; i < HPAGE_PMD_NR; i++)
      pm.pages.set(addr + i * PAGE_SIZE, {
        prot: PROT_READ | PROT_WRITE,
        obj: 0,
        objIdx: i,
        locked: false,
        dontfork: false,
        wipeonfork: false,
      });
    if (this.huge) proc.madvise(addr, PMD_SIZE, MADV_HUGEPAGE);
    const a = addr + (this.touch % HPAGE_PMD_NR) * PAGE_SIZE;
    proc.write(a + 8, new Uint8Array([this.byte]));
    m.writable(pm.pages.get(a)!)[8] = this.byte;
    check(r, what);
    checkPins(m, r, what);
  }
  toString = () => `mmap2M(p${this.pick}${this.huge ? ', MADV_HUGEPAGE' : ''}, write page ${this.touch})`;
}

/**
 * pinCommands - the pinning commands alone: pin_user_pages (R/O or R/W, short- or long-term,
 * sometimes at an unmapped address), unpin_user_pages of a held set, migration of a process page,
 * compact_memory, THP collapse of a 2 MiB range, MADV_PAGEOUT, and 2 MiB mappings that get a
 * transparent huge page or are left for collapse.
 */
export function pinCommands(): Array<fc.Arbitrary<Cmd>> {
  const pin = fc
    .tuple(pick, pick, fc.integer({ min: 1, max: 8 }), fc.boolean(), fc.boolean(), fc.nat({ max: 15 }))
    .map(([p, pg, n, lt, w, s]) => new PinCmd(p, pg, n, lt, w, s === 0));
  const unpin = pick.map((p) => new UnpinCmd(p));
  const migrate = fc.tuple(pick, pick).map(([p, pg]) => new MigrateCmd(p, pg));
  const collapse = fc.tuple(pick, pick, fc.boolean()).map(([p, g, pp]) => new CollapseCmd(p, g, pp));
  const pageout = fc
    .tuple(pick, pick, fc.integer({ min: 1, max: 8 }))
    .map(([p, pg, n]) => new PageoutCmd(p, pg, n));
  const mmap2m = fc
    .tuple(pick, fc.boolean(), fc.nat({ max: HPAGE_PMD_NR - 1 }), fc.integer({ min: 1, max: 255 }))
    .map(([p, h, t, b]) => new MmapHugeCmd(p, h, t, b));
  return [
    pin,
    pin,
    pin,
    unpin,
    migrate,
    migrate,
    fc.constant(new CompactCmd()),
    collapse,
    collapse,
    pageout,
    pageout,
    mmap2m,
    mmap2m,
  ];
}

/**
 * mmPinCommands - the process-memory commands of mmCommands (each followed by the pin checks) and
 * the pinning commands, for model-based fuzzing of pins against everything else mm does.
 */
export function mmPinCommands(): Array<fc.Arbitrary<Cmd>> {
  return [...mmCommands().map((a) => a.map((c): Cmd => new WithPinChecks(c))), ...pinCommands()];
}

/**
 * pinFuzzSetup - a fresh kernel and one unprivileged process (uid 1000, RLIMIT_MEMLOCK of
 * `memlockPages` pages) with the pin model.
 */
export function pinFuzzSetup(
  createKernel: () => Kernel,
  memlockPages = 12,
): { model: PinModel; real: MmReal } {
  const kernel = createKernel();
  const p = kernel.spawn({ uid: 1000, rlimits: { memlock: memlockPages * PAGE_SIZE } });
  const model = new PinModel();
  model.procs.push({ pages: new Map(), memlockPages });
  return { model, real: { kernel, procs: [p] } };
}

/**
 * pinFuzzTeardown - check the pins and every readable page once more, release every pin (each
 * page a process no longer maps must be freed by its last unpin), exit every process, and check
 * that nothing leaked and pin accounting balances.
 */
export function pinFuzzTeardown(model: PinModel, real: MmReal, freeAtBoot: number): void {
  checkPins(model, real, 'teardown');
  for (const slot of model.live()) {
    const proc = real.procs[slot]!;
    for (const [va, pg] of model.procs[slot]!.pages) {
      // Pages never written read as zero through any path; the written ones are the interesting part.
      if (!(pg.prot & PROT_READ) || !(pg.data || pg.obj)) continue;
      const got = proc.read(va, PAGE_SIZE);
      const want = model.bytes(pg);
      const i = firstDiff(got, want);
      if (i >= 0)
        throw new Error(`teardown: p${slot} ${hex(va)} byte ${i} is ${got[i]}, expected ${want[i]}`);
    }
  }
  while (model.pinSets.length) unpinSet(model, real, model.pinSets[0], 'teardown unpin');
  checkPins(model, real, 'teardown unpin');
  for (const p of real.procs) p?.exit();
  check(real, 'teardown');
  const v = real.kernel.vmstat();
  if (v.nr_foll_pin_acquired !== v.nr_foll_pin_released)
    throw new Error(`teardown: ${v.nr_foll_pin_acquired} pins acquired, ${v.nr_foll_pin_released} released`);
  if (v.nr_free_pages !== freeAtBoot)
    throw new Error(`leak: ${freeAtBoot - v.nr_free_pages} pages not freed after every pin and process went`);
}
