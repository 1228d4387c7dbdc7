import { PAGE_SIZE } from '../uapi/mman';
import { PTE_HUGE, PTE_PRESENT, PTE_TABLE } from './pte';

/** Entries per table at every level (x86-64 / arm64 with 4 KiB pages). */
export const PTRS_PER_TABLE = 512;
/** Levels, numbered as the walk meets them. */
export const LEVEL_PGD = 0;
export const LEVEL_PUD = 1;
export const LEVEL_PMD = 2;
export const LEVEL_PTE = 3;
/** Bytes mapped by one entry at each level. */
export const LEVEL_SIZE = [2 ** 39, 2 ** 30, 2 ** 21, PAGE_SIZE] as const;

const VPN_LOW = 1 << 18; // virtual page numbers below this are indexed by PMD+PTE

/**
 * PageTable - a 4-level radix page table of 512-entry typed-array tables.
 *
 * Each table is a Uint32Array of 1024 words: entry i is (lo = words[2i], hi = words[2i+1]), see
 * pte.ts. Upper-level entries with PTE_TABLE point at a child table by number; a PTE_HUGE entry at
 * PMD or PUD level is a leaf. Empty tables are freed as the kernel's free_pgtables does, so a
 * long simulation's page tables stay proportional to what is mapped.
 *
 * Walks return the table holding the entry and leave the entry's word index in `slot` and its
 * level in `level`: no object is allocated per walk.
 */
export class PageTable {
  private readonly tables: Array<Uint32Array | null> = [];
  /** Non-empty entries per table, to free tables that empty. */
  private readonly used: number[] = [];
  /** Parent table number and entry index of each table, to unlink it when it empties. */
  private readonly parent: number[] = [];
  private readonly parentIdx: number[] = [];
  private readonly freeIds: number[] = [];
  /** Word index of the entry found by the last walk (its lo word; hi is slot + 1). */
  slot = 0;
  /** Level of the entry found by the last walk. */
  level = LEVEL_PTE;
  /** Table number of the entry found by the last walk. */
  tableId = 0;

  constructor() {
    this.newTable(-1, 0);
  }

  /** Page-table pages in use (the VmPTE of /proc/PID/status, in tables). */
  get nrTables(): number {
    return this.tables.length - this.freeIds.length;
  }

  /**
   * walk - find the entry translating `va`.
   * Stops early at a huge leaf (level PUD or PMD). With `create`, missing tables are allocated
   * down to `targetLevel` (LEVEL_PTE by default, LEVEL_PMD/LEVEL_PUD to install a huge leaf);
   * without it, returns null where a table is missing.
   * Returns the table holding the entry; `slot`, `level` and `tableId` describe it.
   */
  walk(va: number, create: boolean, targetLevel = LEVEL_PTE): Uint32Array | null {
    const vpn = Math.floor(va / PAGE_SIZE);
    const low = vpn % VPN_LOW;
    const high = (vpn - low) / VPN_LOW;
    let id = 0;
    for (let level = LEVEL_PGD; ; level++) {
      const t = this.tables[id] as Uint32Array;
      const idx =
        level === LEVEL_PGD
          ? high >>> 9
          : level === LEVEL_PUD
            ? high & 511
            : level === LEVEL_PMD
              ? low >>> 9
              : low & 511;
      const s = idx << 1;
      if (level === targetLevel || level === LEVEL_PTE) {
        this.slot = s;
        this.level = level;
        this.tableId = id;
        return t;
      }
      const hi = t[s + 1];
      if (hi & PTE_TABLE) {
        id = t[s];
        continue;
      }
      if (hi & PTE_HUGE && hi !== 0) {
        this.slot = s;
        this.level = level;
        this.tableId = id;
        return t;
      }
      if (hi !== 0) {
        // A non-present huge entry (migration/swap of a huge page) is a leaf too.
        this.slot = s;
        this.level = level;
        this.tableId = id;
        return t;
      }
      if (!create) return null;
      const child = this.newTable(id, idx);
      t[s] = child;
      t[s + 1] = PTE_TABLE | PTE_PRESENT;
      this.used[id]++;
      id = child;
    }
  }

  /**
   * pruneEmpty - free the tables on the path to `va` that map nothing, lowest first, as
   * free_pgtables would at munmap: a fault that allocated the levels for a new entry and then
   * failed (no memory, SIGBUS) leaves no empty table behind. Tables with entries stay.
   */
  pruneEmpty(va: number): void {
    const vpn = Math.floor(va / PAGE_SIZE);
    const low = vpn % VPN_LOW;
    const high = (vpn - low) / VPN_LOW;
    let id = 0;
    for (let level = LEVEL_PGD; level < LEVEL_PTE; level++) {
      const t = this.tables[id] as Uint32Array;
      const idx = level === LEVEL_PGD ? high >>> 9 : level === LEVEL_PUD ? high & 511 : low >>> 9;
      if (!(t[(idx << 1) + 1] & PTE_TABLE)) break;
      id = t[idx << 1];
    }
    if (id !== 0 && this.used[id] === 0) this.freeTable(id);
  }

  /** table - the table with number `id` (as left in `tableId` by a walk). */
  table(id: number): Uint32Array {
    return this.tables[id] as Uint32Array;
  }

  /**
   * set - write an entry found by a walk (table `id`, word `slot`), keeping the per-table use
   * counts right. Writing hi = 0 clears it, and frees tables that become empty.
   */
  set(id: number, slot: number, lo: number, hi: number): void {
    const t = this.tables[id] as Uint32Array;
    const wasUsed = t[slot + 1] !== 0;
    t[slot] = lo;
    t[slot + 1] = hi;
    if (hi !== 0 && !wasUsed) this.used[id]++;
    else if (hi === 0 && wasUsed) {
      t[slot] = 0;
      if (--this.used[id] === 0 && id !== 0) this.freeTable(id);
    }
  }

  /**
   * forEachEntry - visit every non-empty leaf entry in [start, end): `fn(va, tableId, slot, level)`.
   * Leaves are PTEs, or huge entries at PMD/PUD level (visited once, at their aligned address).
   * Empty subtrees are skipped in one step. `fn` may change or clear the entry it is given.
   */
  forEachEntry(
    start: number,
    end: number,
    fn: (va: number, tableId: number, slot: number, level: number) => void,
  ): void {
    this.visit(0, LEVEL_PGD, 0, start, end, fn);
  }

  private visit(
    id: number,
    level: number,
    base: number,
    start: number,
    end: number,
    fn: (va: number, tableId: number, slot: number, level: number) => void,
  ): void {
    const size = LEVEL_SIZE[level];
    const first = Math.max(0, Math.floor((start - base) / size));
    const last = Math.min(PTRS_PER_TABLE - 1, Math.floor((end - 1 - base) / size));
    for (let i = first; i <= last; i++) {
      const t = this.tables[id];
      if (!t) return; // freed by fn clearing its last entry
      const s = i << 1;
      const hi = t[s + 1];
      if (hi === 0) continue;
      const va = base + i * size;
      if (hi & PTE_TABLE) {
        const child = t[s];
        this.visit(child, level + 1, va, start, end, fn);
      } else {
        fn(va, id, s, level);
      }
    }
  }

  private newTable(parentId: number, parentIdx: number): number {
    const recycled = this.freeIds.pop();
    const id = recycled ?? this.tables.length;
    this.tables[id] = new Uint32Array(PTRS_PER_TABLE * 2);
    this.used[id] = 0;
    this.parent[id] = parentId;
    this.parentIdx[id] = parentIdx;
    return id;
  }

  private freeTable(id: number): void {
    const p = this.parent[id];
    const pi = this.parentIdx[id] << 1;
    this.tables[id] = null;
    this.freeIds.push(id);
    this.set(p, pi, 0, 0);
  }
}
