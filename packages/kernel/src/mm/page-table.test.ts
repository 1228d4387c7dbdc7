import { describe, it, expect } from '@jest/globals';
import { PAGE_SIZE, TASK_SIZE } from '../uapi/mman';
import { LEVEL_PMD, LEVEL_PTE, LEVEL_PUD, LEVEL_SIZE, PageTable, PTRS_PER_TABLE } from './page-table';
import { PTE_HUGE, PTE_MIGRATION, PTE_PRESENT, PTE_WRITE } from './pte';

const GiB = 2 ** 30;
const TOP = 2 ** 47; // the end of the 4-level user address space

/** Install a leaf at `level` mapping `lo`. */
function put(pt: PageTable, va: number, lo: number, hi = PTE_PRESENT, level = LEVEL_PTE): void {
  pt.walk(va, true, level);
  pt.set(pt.tableId, pt.slot, lo, level === LEVEL_PTE ? hi : hi | PTE_HUGE);
}

/** Clear the leaf translating `va`. */
function clear(pt: PageTable, va: number): void {
  expect(pt.walk(va, false)).not.toBeNull();
  pt.set(pt.tableId, pt.slot, 0, 0);
}

/** What the leaf translating `va` holds, or null when no table reaches it. */
function lookup(pt: PageTable, va: number): { lo: number; hi: number; level: number } | null {
  const t = pt.walk(va, false);
  if (!t) return null;
  return { lo: t[pt.slot], hi: t[pt.slot + 1], level: pt.level };
}

/** Every leaf in [start, end) as [va, level, lo]. */
function leaves(pt: PageTable, start = 0, end = TOP): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  pt.forEachEntry(start, end, (va, id, slot, level) => out.push([va, level, pt.table(id)[slot]]));
  return out;
}

describe('PageTable', () => {
  it('starts with only the root table and translates nothing', () => {
    const pt = new PageTable();
    expect(pt.nrTables).toBe(1);
    for (const va of [0, PAGE_SIZE, GiB, TASK_SIZE - PAGE_SIZE, TOP - 1])
      expect(pt.walk(va, false)).toBeNull();
    expect(leaves(pt)).toEqual([]);
  });

  it('walks and sets entries at sparse addresses up to the top of user space', () => {
    const pt = new PageTable();
    const vas = [
      0,
      PAGE_SIZE,
      2 ** 21 - PAGE_SIZE,
      GiB,
      2 ** 39 + 5 * PAGE_SIZE,
      TOP - 2 * PAGE_SIZE,
      TOP - PAGE_SIZE,
    ];
    vas.forEach((va, i) => put(pt, va, 1000 + i, PTE_PRESENT | PTE_WRITE));
    // root + [PGD 0: a PUD table, PMD tables for PUD 0 and 1, one PTE table each]
    //      + [PGD 1: PUD, PMD, PTE] + [PGD 255: PUD, PMD, PTE]
    expect(pt.nrTables).toBe(1 + 5 + 3 + 3);
    vas.forEach((va, i) => {
      expect(lookup(pt, va)).toEqual({ lo: 1000 + i, hi: PTE_PRESENT | PTE_WRITE, level: LEVEL_PTE });
      // any address inside the page walks to the same entry
      expect(lookup(pt, va + PAGE_SIZE - 1)!.lo).toBe(1000 + i);
    });
    // neighbours share tables but not entries
    expect(lookup(pt, 2 * PAGE_SIZE)).toEqual({ lo: 0, hi: 0, level: LEVEL_PTE });
    expect(lookup(pt, TOP - 3 * PAGE_SIZE)).toEqual({ lo: 0, hi: 0, level: LEVEL_PTE });
    // other PMDs, PUDs and PGD entries have no tables
    expect(pt.walk(2 ** 21, false)).toBeNull();
    expect(pt.walk(2 * GiB, false)).toBeNull();
    expect(pt.walk(2 ** 40, false)).toBeNull();
    // forEachEntry reports every leaf once, in address order, at its address
    expect(leaves(pt)).toEqual(vas.map((va, i) => [va, LEVEL_PTE, 1000 + i]));
  });

  it('forEachEntry visits only [start, end), including ranges that straddle tables', () => {
    const pt = new PageTable();
    // the last PTE of one table and the first of the next, in different PUDs
    const edge = [GiB - PAGE_SIZE, GiB];
    for (const va of [...edge, GiB + PAGE_SIZE, 5 * GiB]) put(pt, va, va / PAGE_SIZE);
    expect(leaves(pt, GiB - PAGE_SIZE, GiB + PAGE_SIZE).map(([va]) => va)).toEqual(edge);
    expect(leaves(pt, GiB - 1, GiB + 1).map(([va]) => va)).toEqual(edge);
    expect(leaves(pt, GiB + 2 * PAGE_SIZE, 5 * GiB)).toEqual([]);
    expect(leaves(pt, 5 * GiB, 5 * GiB + 1)).toEqual([[5 * GiB, LEVEL_PTE, (5 * GiB) / PAGE_SIZE]]);
    expect(leaves(pt, 2 * GiB, GiB)).toEqual([]);
  });

  it('fills a whole table: 512 entries, then the next table', () => {
    const pt = new PageTable();
    const base = 7 * 2 ** 21;
    for (let i = 0; i <= PTRS_PER_TABLE; i++) put(pt, base + i * PAGE_SIZE, i + 1);
    expect(pt.nrTables).toBe(1 + 1 + 1 + 2);
    const all = leaves(pt);
    expect(all).toHaveLength(PTRS_PER_TABLE + 1);
    expect(all.every(([va, , lo], i) => va === base + i * PAGE_SIZE && lo === i + 1)).toBe(true);
  });

  it('huge leaves at PMD and PUD level end the walk and are visited once, at their aligned address', () => {
    const pt = new PageTable();
    const pmdVa = 2 * GiB + 3 * 2 ** 21;
    const pudVa = 3 * 2 ** 39 + 7 * GiB;
    put(pt, pmdVa, 512 * 10, PTE_PRESENT, LEVEL_PMD);
    put(pt, pudVa, 262144 * 3, PTE_PRESENT, LEVEL_PUD);
    expect(lookup(pt, pmdVa + 123 * PAGE_SIZE + 5)).toEqual({
      lo: 5120,
      hi: PTE_PRESENT | PTE_HUGE,
      level: LEVEL_PMD,
    });
    expect(lookup(pt, pudVa + GiB - 1)).toMatchObject({ lo: 262144 * 3, level: LEVEL_PUD });
    // a creating walk inside a huge leaf stops at the leaf too (it does not split it)
    const before = pt.nrTables;
    pt.walk(pmdVa + PAGE_SIZE, true);
    expect(pt.level).toBe(LEVEL_PMD);
    expect(pt.nrTables).toBe(before);
    // a sub-range inside the leaf still reports it, once, at the leaf's address
    expect(leaves(pt, pmdVa + PAGE_SIZE, pmdVa + 2 * PAGE_SIZE)).toEqual([[pmdVa, LEVEL_PMD, 5120]]);
    expect(leaves(pt, pudVa + GiB / 2, pudVa + GiB / 2 + 1)).toEqual([[pudVa, LEVEL_PUD, 262144 * 3]]);
    expect(leaves(pt).map(([va, level]) => [va, level])).toEqual([
      [pmdVa, LEVEL_PMD],
      [pudVa, LEVEL_PUD],
    ]);
    expect(LEVEL_SIZE[LEVEL_PMD]).toBe(2 ** 21);
    expect(LEVEL_SIZE[LEVEL_PUD]).toBe(GiB);
  });

  it('a non-present huge entry (a migrating huge page) is a leaf as well', () => {
    const pt = new PageTable();
    pt.walk(GiB, true, LEVEL_PMD);
    pt.set(pt.tableId, pt.slot, 4096, PTE_MIGRATION | PTE_HUGE);
    expect(lookup(pt, GiB + 5 * PAGE_SIZE)).toEqual({
      lo: 4096,
      hi: PTE_MIGRATION | PTE_HUGE,
      level: LEVEL_PMD,
    });
    expect(leaves(pt)).toEqual([[GiB, LEVEL_PMD, 4096]]);
  });

  it('frees a table when its last entry goes, all the way up, and reuses table numbers', () => {
    const pt = new PageTable();
    const a = TOP - PAGE_SIZE;
    const b = TOP - 2 * PAGE_SIZE;
    const c = 2 ** 39;
    put(pt, a, 1);
    put(pt, b, 2);
    put(pt, c, 3);
    expect(pt.nrTables).toBe(7);
    clear(pt, a);
    expect(pt.nrTables).toBe(7); // b still lives in that table
    expect(lookup(pt, b)!.lo).toBe(2);
    clear(pt, b);
    expect(pt.nrTables).toBe(4); // its PTE, PMD and PUD tables went
    expect(pt.walk(b, false)).toBeNull();
    expect(lookup(pt, c)!.lo).toBe(3);
    clear(pt, c);
    expect(pt.nrTables).toBe(1);
    expect(leaves(pt)).toEqual([]);
    // the freed numbers are recycled: the table count grows back the same way
    put(pt, a, 4);
    expect(pt.nrTables).toBe(4);
    expect(lookup(pt, a)!.lo).toBe(4);
    // clearing an empty entry changes nothing
    pt.walk(a - PAGE_SIZE, false);
    pt.set(pt.tableId, pt.slot, 0, 0);
    expect(pt.nrTables).toBe(4);
  });

  it('a huge leaf replaced by nothing frees the tables above it', () => {
    const pt = new PageTable();
    put(pt, 4 * GiB, 512, PTE_PRESENT, LEVEL_PMD);
    expect(pt.nrTables).toBe(3);
    clear(pt, 4 * GiB + PAGE_SIZE);
    expect(pt.nrTables).toBe(1);
  });

  it('lets forEachEntry clear what it visits (as zap does): every table is freed', () => {
    const pt = new PageTable();
    const vas: number[] = [];
    for (let i = 0; i < 40; i++) vas.push(i * 97 * PAGE_SIZE * 1031);
    for (const va of vas) put(pt, va, 1);
    put(pt, 9 * GiB, 512, PTE_PRESENT, LEVEL_PMD);
    let seen = 0;
    pt.forEachEntry(0, TOP, (_va, id, slot) => {
      seen++;
      pt.set(id, slot, 0, 0);
    });
    expect(seen).toBe(vas.length + 1);
    expect(pt.nrTables).toBe(1);
    expect(leaves(pt)).toEqual([]);
  });

  it('pruneEmpty frees the empty tables a creating walk left on the path, and nothing else', () => {
    const pt = new PageTable();
    put(pt, GiB, 1);
    const tables = pt.nrTables;
    pt.walk(2 * GiB + PAGE_SIZE, true); // allocates a PMD and a PTE table, sets nothing
    expect(pt.nrTables).toBe(tables + 2);
    pt.pruneEmpty(2 * GiB + PAGE_SIZE);
    expect(pt.nrTables).toBe(tables);
    pt.pruneEmpty(GiB + PAGE_SIZE); // the table holding GiB's entry is not empty
    expect(lookup(pt, GiB)!.lo).toBe(1);
    pt.pruneEmpty(100 * GiB); // nothing there at all
    expect(pt.nrTables).toBe(tables);
  });
});
