import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Vmstat } from '../sim/vmstat';
import { checkBuddyInvariants } from './buddy-check';
import {
  GFP_ATOMIC,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_NOWAIT,
  GFP_TRANSHUGE,
  MIGRATE_ISOLATE,
  PAGEBLOCK_NR_PAGES,
  __GFP_PIN,
  __GFP_RECLAIMABLE,
  __GFP_THISNODE,
} from './gfp';
import { PageAllocator } from './page-alloc';

const MiB = 2 ** 20;

const GFPS = [
  GFP_KERNEL,
  GFP_HIGHUSER_MOVABLE,
  GFP_HIGHUSER_MOVABLE | __GFP_PIN,
  GFP_KERNEL | __GFP_RECLAIMABLE,
  GFP_ATOMIC,
  GFP_NOWAIT,
  GFP_TRANSHUGE,
];

type Op =
  | { kind: 'alloc'; order: number; gfp: number; nid: number; thisNode: boolean }
  | { kind: 'free'; pick: number }
  | { kind: 'isolate'; pageblock: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      order: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) },
        fc.integer({ min: 0, max: 10 }),
      ),
      gfp: fc.constantFrom(...GFPS),
      nid: fc.integer({ min: -1, max: 1 }),
      thisNode: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('isolate' as const), pageblock: fc.nat({ max: 15 }) }),
  },
);

/** Every free block as "pfn:order", sorted. */
function freeBlocks(alloc: PageAllocator): string[] {
  const out: string[] = [];
  alloc.forEachFreeBlock((pfn, order) => out.push(`${pfn}:${order}`));
  return out.sort();
}

describe('PageAllocator under random alloc/free sequences', () => {
  it('keeps free counts, free lists and ownership consistent, and returns to the boot state', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
        const alloc = new PageAllocator(
          {
            nodes: [
              { size: 16 * MiB, movable: 4 * MiB, cma: 2 * MiB },
              { size: 16 * MiB, movable: 2 * MiB },
            ],
          },
          new Vmstat(),
        );
        alloc.debugVm = true;
        const boot = { free: alloc.nrFreePages(), blocks: freeBlocks(alloc), info: alloc.buddyinfo() };
        const owner = new Uint8Array(alloc.maxPfn);
        const held: Array<{ pfn: number; order: number; comp: boolean }> = [];
        // Pageblocks set to MIGRATE_ISOLATE, with the type to restore.
        const isolated = new Map<number, number>();
        for (const op of ops) {
          if (op.kind === 'alloc') {
            const gfp = op.gfp | (op.thisNode ? __GFP_THISNODE : 0);
            const pfn = alloc.allocPages(gfp, op.order, op.nid);
            if (pfn >= 0) {
              const nr = 1 << op.order;
              expect(pfn % nr).toBe(0);
              expect(alloc.migratetypeOf(pfn)).not.toBe(MIGRATE_ISOLATE);
              for (let p = pfn; p < pfn + nr; p++) {
                expect(owner[p]).toBe(0);
                owner[p] = 1;
              }
              if (op.thisNode) expect(alloc.nodeOf(pfn)).toBe(op.nid < 0 ? 0 : op.nid);
              held.push({ pfn, order: op.order, comp: (op.gfp & GFP_TRANSHUGE) === GFP_TRANSHUGE });
            }
          } else if (op.kind === 'isolate') {
            // Toggle isolation of a pageblock, as alloc_contig_range and offlining do.
            const pfn = op.pageblock * PAGEBLOCK_NR_PAGES;
            const old = isolated.get(pfn);
            if (old === undefined) {
              isolated.set(pfn, alloc.migratetypeOf(pfn));
              alloc.setPageblockMigratetype(pfn, MIGRATE_ISOLATE);
            } else {
              isolated.delete(pfn);
              alloc.setPageblockMigratetype(pfn, old);
            }
          } else if (held.length > 0) {
            const [b] = held.splice(op.pick % held.length, 1);
            if (b.comp && b.order > 0) alloc.freeFolio(b.pfn);
            else alloc.freePages(b.pfn, b.order);
            owner.fill(0, b.pfn, b.pfn + (1 << b.order));
          }
          // Counters match the lists, and no page is both free and allocated.
          expect(checkBuddyInvariants(alloc, true)).toEqual([]);
          alloc.forEachFreeBlock((pfn, order) => {
            for (let p = pfn; p < pfn + (1 << order); p++)
              if (owner[p]) throw new Error(`pfn ${p} free and held`);
          });
          let heldPages = 0;
          for (const b of held) heldPages += 1 << b.order;
          let isolatedFree = 0;
          for (const z of alloc.zones) isolatedFree += z.freeArea.isolatedPages;
          expect(alloc.nrFreePages() + isolatedFree).toBe(boot.free - heldPages);
        }
        for (const b of held) alloc.freePages(b.pfn, b.order);
        for (const [pfn, mt] of isolated) alloc.setPageblockMigratetype(pfn, mt);
        expect(alloc.nrFreePages()).toBe(boot.free);
        expect(freeBlocks(alloc)).toEqual(boot.blocks);
        expect(alloc.buddyinfo()).toBe(boot.info);
      }),
      { numRuns: 60, seed: 20240601 },
    );
  });
});
