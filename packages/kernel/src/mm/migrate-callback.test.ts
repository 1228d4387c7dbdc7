import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { ERRNO, KernelError } from '../uapi/errno';
import { MADV_DONTNEED, MADV_HUGEPAGE, PAGE_SIZE } from '../uapi/mman';
import { GFP_HIGHUSER_MOVABLE, GFP_TRANSHUGE, __GFP_THISNODE } from './gfp';
import { SCAN_PAGE_COUNT, SCAN_SUCCEED, collapseHugePage } from './khugepaged';
import {
  MR_THP_COLLAPSE,
  folioCallbackRefs,
  migrateCallbackAttach,
  migrateCallbackStats,
  shortTermRefRegister,
  shortTermRefRelease,
  shortTermRefsOf,
  type MigrateCallbackOps,
  type ShortTermRef,
} from './migrate-callback';
import {
  completeAllMigrations,
  completeDueMigrations,
  emptyMigrateStats,
  isolateLruFolio,
  migratePages,
  putbackMovableFolio,
} from './migrate';
import { MIGRATE_SYNC, MR_COMPACTION, MR_NUMA_MISPLACED } from './migrate-types';
import { GUP_PIN_COUNTING_BIAS, folioHead } from './page-ref';

const MiB = 2 ** 20;

function boot(sysctl = {}): Kernel {
  const k = createKernel({
    memory: { nodes: [{ size: '64MiB' }, { size: '64MiB' }] },
    sysctl: { transparent_hugepage: 'madvise', ...sysctl },
  });
  migrateCallbackAttach(k.mmCore, k);
  return k;
}

/** A holder that records its calls. */
function recorder() {
  const calls: string[] = [];
  const ops: MigrateCallbackOps = {
    revoke: (ref, first, end, reason) => calls.push(`revoke ${ref.id} ${first}-${end} r${reason}`),
    reinstate: (ref, first, end, moved) => calls.push(`reinstate ${ref.id} ${first}-${end} ${moved}`),
  };
  return { calls, ops };
}

function populate(p: Process, pages: number, seed = 1) {
  const a = p.mmap(pages * PAGE_SIZE);
  const data = new Uint8Array(pages * PAGE_SIZE).map((_, i) => (i * 31 + seed) & 255);
  p.write(a, data);
  return {
    a,
    data,
    pfns: () => Array.from({ length: pages }, (_, i) => p.pagemap(a + i * PAGE_SIZE).pfn!),
    same: () => Buffer.from(p.read(a, data.length)).equals(Buffer.from(data)),
  };
}

const toNode1 = (k: Kernel) => (_src: number, order: number) =>
  k.phys.allocPages(GFP_HIGHUSER_MOVABLE | __GFP_THISNODE, order, 1);

function migrate(k: Kernel, pfns: number[], opts = {}) {
  for (const f of pfns) expect(isolateLruFolio(k.mmCore, f)).toBe(true);
  const stats = emptyMigrateStats();
  const left = migratePages(k.mmCore, pfns, toNode1(k), MIGRATE_SYNC, MR_COMPACTION, stats, opts);
  for (const f of stats.failedFolios) putbackMovableFolio(k.mmCore, f);
  return { left, stats };
}

describe('short-term references with a migration callback', () => {
  it('holds one reference per page, not a pin, and gives it back', () => {
    const k = boot();
    const p = k.spawn();
    const d = populate(p, 4);
    const pfns = d.pfns();
    const { ops } = recorder();
    const ref = shortTermRefRegister(p.mm, d.a, pfns, ops);
    for (const pfn of pfns) {
      expect(k.phys.frames.refcount[pfn]).toBe(2);
      expect(folioCallbackRefs(k.mmCore, pfn)).toBe(1);
    }
    expect(p.pagemap(d.a).pinned).toBe(false);
    expect(k.vmstat().nr_foll_pin_acquired).toBe(0);
    expect(shortTermRefsOf(p.mm)).toEqual([ref]);
    expect(migrateCallbackStats(k.mmCore)).toMatchObject({ refs: 1, heldPages: 4 });
    expect(k.checkInvariants()).toEqual([]);
    shortTermRefRelease(ref);
    shortTermRefRelease(ref); // twice: nothing
    for (const pfn of pfns) expect(k.phys.frames.refcount[pfn]).toBe(1);
    expect(migrateCallbackStats(k.mmCore)).toMatchObject({ refs: 0, heldPages: 0 });
    expect(k.checkInvariants()).toEqual([]);
  });

  it('refuses bad input with EINVAL and takes nothing', () => {
    const k = boot();
    const p = k.spawn();
    const d = populate(p, 2);
    const { ops } = recorder();
    const pfns = d.pfns();
    const bad: Array<[number, ArrayLike<number>]> = [
      [d.a + 1, pfns],
      [-PAGE_SIZE, pfns],
      [d.a, []],
      [d.a, [pfns[0], k.phys.frames.count]],
      [d.a, [pfns[0], 1.5]],
    ];
    for (const [start, list] of bad) {
      let err: unknown;
      try {
        shortTermRefRegister(p.mm, start, list, ops);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KernelError);
      expect((err as KernelError).errno).toBe(-ERRNO.EINVAL);
    }
    // A free page.
    p.munmap(d.a + PAGE_SIZE, PAGE_SIZE);
    expect(() => shortTermRefRegister(p.mm, d.a, pfns, ops)).toThrow(KernelError);
    expect(k.phys.frames.refcount[pfns[0]]).toBe(1);
    // The zero page (a read-only reference to untouched memory) gets no reference.
    const z = p.mmap(PAGE_SIZE);
    p.read(z, 1);
    const zero = p.pagemap(z).pfn!;
    const ref = shortTermRefRegister(p.mm, z, [zero, -1], ops);
    expect(ref.heldPages()).toBe(0);
    shortTermRefRelease(ref);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('lets migration move the pages: revoke, move, reinstate on the new pfn', () => {
    const k = boot();
    const p = k.spawn();
    const d = populate(p, 4);
    const old = d.pfns();
    const { calls, ops } = recorder();
    const ref = shortTermRefRegister(p.mm, d.a, old, ops);
    const { left, stats } = migrate(k, old.slice(0, 2));
    expect(left).toBe(0);
    expect(stats.succeeded).toBe(2);
    const now = d.pfns();
    expect(now[0]).not.toBe(old[0]);
    expect(Array.from(ref.pfns)).toEqual(now); // the references followed the pages
    for (const pfn of now) expect(k.phys.frames.refcount[pfn]).toBe(2);
    expect(calls).toEqual([
      `revoke ${ref.id} 0-1 r${MR_COMPACTION}`,
      `reinstate ${ref.id} 0-1 true`,
      `revoke ${ref.id} 1-2 r${MR_COMPACTION}`,
      `reinstate ${ref.id} 1-2 true`,
    ]);
    expect(ref.pagesMoved).toBe(2);
    expect(d.same()).toBe(true);
    expect(k.vmstat().migrate_callback_revoked).toBe(2);
    expect(k.vmstat().migrate_callback_reinstated).toBe(2);
    expect(k.checkInvariants()).toEqual([]);
    shortTermRefRelease(ref);
    for (const pfn of now) expect(k.phys.frames.refcount[pfn]).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('does not revoke for a folio another reference keeps, and gives back the references when a move fails', () => {
    const k = boot();
    const p = k.spawn();
    const d = populate(p, 2);
    const old = d.pfns();
    const { calls, ops } = recorder();
    const ref = shortTermRefRegister(p.mm, d.a, old, ops);
    // A FOLL_PIN-like reference on page 0: migration must fail without bothering the holder.
    k.phys.frames.refcount[old[0]] += GUP_PIN_COUNTING_BIAS;
    k.addRefSource((refs) => refs.set(old[0], (refs.get(old[0]) ?? 0) + GUP_PIN_COUNTING_BIAS));
    const r = migrate(k, [old[0]]);
    expect(r.left).toBe(1);
    expect(calls).toEqual([]);
    // No destination memory: revoked, then reinstated on the same page.
    const noMem = () => -1;
    expect(isolateLruFolio(k.mmCore, old[1])).toBe(true);
    const stats = emptyMigrateStats();
    expect(migratePages(k.mmCore, [old[1]], noMem, MIGRATE_SYNC, MR_NUMA_MISPLACED, stats)).toBe(
      -ERRNO.ENOMEM,
    );
    putbackMovableFolio(k.mmCore, old[1]);
    expect(calls).toEqual([`revoke ${ref.id} 1-2 r${MR_NUMA_MISPLACED}`, `reinstate ${ref.id} 1-2 false`]);
    expect(Array.from(ref.pfns)).toEqual(old);
    expect(d.same()).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('a holder released while the copy is in flight gets nothing back, and nothing leaks', () => {
    const k = boot();
    const p = k.spawn();
    const d = populate(p, 2);
    const old = d.pfns();
    const { calls, ops } = recorder();
    const ref = shortTermRefRegister(p.mm, d.a, old, ops);
    const free0 = k.phys.nrFreePages();
    expect(migrate(k, old, { completeAt: k.now() + 1e6 }).left).toBe(0);
    expect(ref.heldPages()).toBe(0); // revoked for the window
    expect(k.checkInvariants()).toEqual([]);
    shortTermRefRelease(ref);
    completeDueMigrations(k.mmCore, k.now() + 2e6);
    expect(calls.filter((c) => c.startsWith('reinstate'))).toEqual([]);
    expect(d.same()).toBe(true);
    for (const pfn of d.pfns()) expect(k.phys.frames.refcount[pfn]).toBe(1);
    expect(k.phys.nrFreePages()).toBe(free0);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('lets khugepaged collapse the range; the references move to the huge page', () => {
    const k = boot();
    const p = k.spawn();
    const d = populate(p, 512);
    p.madvise(d.a, 2 * MiB, MADV_HUGEPAGE);
    const { calls, ops } = recorder();
    const ref = shortTermRefRegister(p.mm, d.a, d.pfns().slice(0, 8), ops);
    // A plain reference (get_page) still refuses the collapse.
    const extra = d.pfns()[100];
    k.phys.frames.refcount[extra]++;
    expect(collapseHugePage(p.mm.vmaLookup(d.a)!, d.a)).toBe(SCAN_PAGE_COUNT);
    k.phys.frames.refcount[extra]--;
    expect(collapseHugePage(p.mm.vmaLookup(d.a)!, d.a)).toBe(SCAN_SUCCEED);
    expect(p.pagemap(d.a).huge).toBe('2MiB');
    const head = p.pagemap(d.a).pfn!;
    expect(Array.from(ref.pfns)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => head + i));
    expect(k.phys.frames.refcount[head]).toBe(1 + 8);
    expect(calls).toEqual([`revoke ${ref.id} 0-8 r${MR_THP_COLLAPSE}`, `reinstate ${ref.id} 0-8 true`]);
    expect(d.same()).toBe(true);
    expect(k.checkInvariants()).toEqual([]);
    shortTermRefRelease(ref);
    expect(k.phys.frames.refcount[head]).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('releases after the mm exited leave nothing behind; the invariant check sees a lost reference', () => {
    const k = boot();
    const p = k.spawn();
    const d = populate(p, 3);
    const free0 = k.phys.nrFreePages();
    const ref: ShortTermRef = shortTermRefRegister(p.mm, d.a, d.pfns(), recorder().ops);
    // Tampering shows up: a reference dropped behind the mechanism's back.
    k.phys.frames.refcount[ref.pfns[0]]--;
    expect(k.checkInvariants().some((v) => v.includes('refcount 1 but 2 references'))).toBe(true);
    k.phys.frames.refcount[ref.pfns[0]]++;
    p.exit(); // the holder forgot: the pages stay, held by the references
    expect(k.phys.nrFreePages()).toBe(free0);
    expect(k.checkInvariants()).toEqual([]);
    shortTermRefRelease(ref);
    expect(k.phys.nrFreePages()).toBe(free0 + 3);
    expect(k.checkInvariants()).toEqual([]);
  });
});

type Op =
  | { kind: 'register'; page: number; pages: number }
  | { kind: 'release'; pick: number }
  | { kind: 'migrate'; page: number; pages: number; node: number; deferNs: number }
  | { kind: 'complete' }
  | { kind: 'collapse' }
  | { kind: 'write'; page: number; value: number }
  | { kind: 'dontneed'; page: number };

const REGION = 512;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('register' as const),
      page: fc.nat({ max: REGION - 1 }),
      pages: fc.integer({ min: 1, max: 16 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('migrate' as const),
      page: fc.nat({ max: REGION - 1 }),
      pages: fc.integer({ min: 1, max: 24 }),
      node: fc.integer({ min: 0, max: 1 }),
      deferNs: fc.constantFrom(0, 0, 1000, 50_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('complete' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('collapse' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      page: fc.nat({ max: REGION - 1 }),
      value: fc.integer({ min: 1, max: 255 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('dontneed' as const), page: fc.nat({ max: REGION - 1 }) }),
  },
);

describe('short-term references under random moves (model)', () => {
  it('keep data, refcounts and invariants right through migration, deferred copies, collapse and zap', () => {
    // Coverage: the runs must have moved referenced pages, in copy windows too, and collapsed them.
    const seen = { moved: 0, deferred: 0, collapsed: 0 };
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
        const k = boot();
        const free0 = k.phys.nrFreePages();
        const p = k.spawn();
        const a = p.mmap(REGION * PAGE_SIZE);
        const model = new Uint8Array(REGION);
        for (let i = 0; i < REGION; i++)
          p.write(a + i * PAGE_SIZE, new Uint8Array([(model[i] = (i % 250) + 1)]));
        // Small pages first; a 'collapse' makes the range one huge page.
        p.madvise(a, REGION * PAGE_SIZE, MADV_HUGEPAGE);
        const refs: ShortTermRef[] = [];
        const { ops: cb } = recorder();
        let now = k.now();
        for (const op of ops) {
          switch (op.kind) {
            case 'register': {
              const n = Math.min(op.pages, REGION - op.page);
              // Fault the pages in first, as GUP would (a zapped page reads back as zero).
              p.touch(a + op.page * PAGE_SIZE, n * PAGE_SIZE, { write: true });
              const pfns = Array.from(
                { length: n },
                (_, i) => p.pagemap(a + (op.page + i) * PAGE_SIZE).pfn ?? -1,
              );
              if (pfns.includes(-1)) break; // a page still in a migration window
              refs.push(shortTermRefRegister(p.mm, a + op.page * PAGE_SIZE, pfns, cb));
              break;
            }
            case 'release':
              if (refs.length) shortTermRefRelease(refs.splice(op.pick % refs.length, 1)[0]);
              break;
            case 'migrate': {
              const heads = new Set<number>();
              for (let i = op.page; i < Math.min(REGION, op.page + op.pages); i++) {
                const pfn = p.pagemap(a + i * PAGE_SIZE).pfn;
                if (pfn !== undefined) heads.add(folioHead(k.mmCore, pfn));
              }
              const list = [...heads].filter((h) => isolateLruFolio(k.mmCore, h));
              const stats = emptyMigrateStats();
              const to = (_src: number, order: number) =>
                k.phys.allocPages(
                  (order ? GFP_TRANSHUGE : GFP_HIGHUSER_MOVABLE) | __GFP_THISNODE,
                  order,
                  op.node,
                );
              // No copy window for a huge folio: the mm checker does not count PMD-level migration
              // entries in RSS (a limitation of debug-vm.ts, not of the mechanism under test).
              const huge = list.some((h) => k.phys.frames.getOrder(h) > 0);
              const held = list.some((h) => folioCallbackRefs(k.mmCore, h) > 0);
              migratePages(k.mmCore, list, to, MIGRATE_SYNC, MR_COMPACTION, stats, {
                completeAt: op.deferNs && !huge ? now + op.deferNs : 0,
              });
              if (held && op.deferNs && !huge && stats.moved.length) seen.deferred++;
              for (const f of stats.failedFolios) putbackMovableFolio(k.mmCore, f);
              break;
            }
            case 'complete':
              now += 20_000;
              completeDueMigrations(k.mmCore, now);
              break;
            case 'collapse':
              completeAllMigrations(k.mmCore);
              if (collapseHugePage(p.mm.vmaLookup(a)!, a) === SCAN_SUCCEED && refs.some((r) => r.heldPages()))
                seen.collapsed++;
              break;
            case 'write':
              p.write(a + op.page * PAGE_SIZE, new Uint8Array([op.value]));
              model[op.page] = op.value;
              break;
            case 'dontneed':
              p.madvise(a + op.page * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
              model[op.page] = 0;
              break;
          }
          const v = k.checkInvariants();
          if (v.length) throw new Error(`after ${JSON.stringify(op)}: ${v.join('; ')}`);
        }
        completeAllMigrations(k.mmCore);
        for (let i = 0; i < REGION; i++)
          if (p.read(a + i * PAGE_SIZE, 1)[0] !== model[i])
            throw new Error(`page ${i} differs from the model`);
        // Every held reference is on the page the model says, or on a page only it keeps.
        for (const ref of refs)
          for (let i = 0; i < ref.nrPages; i++)
            if (ref.held[i] && k.phys.frames.refcount[folioHead(k.mmCore, ref.pfns[i])] < 1)
              throw new Error('a held reference on a free page');
        seen.moved += migrateCallbackStats(k.mmCore).movedPages;
        for (const ref of refs.splice(0)) shortTermRefRelease(ref);
        p.exit();
        expect(k.checkInvariants()).toEqual([]);
        expect(k.phys.nrFreePages()).toBe(free0);
        expect(migrateCallbackStats(k.mmCore)).toMatchObject({ refs: 0, heldPages: 0 });
      }),
      { numRuns: 40, seed: 20250611 },
    );
    expect(seen.moved).toBeGreaterThan(0);
    expect(seen.deferred).toBeGreaterThan(0);
    expect(seen.collapsed).toBeGreaterThan(0);
  });
});
