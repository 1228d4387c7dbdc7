import type { IVmstat } from './types';

/**
 * VM - indices of the pre-registered vmstat counters, in /proc/vmstat's spirit: hot paths write
 * `vmstat.inc(VM.pgfault)` and never look a name up.
 */
export const VM = {
  nr_free_pages: 0,
  nr_anon_pages: 1,
  nr_mlock: 2,
  nr_foll_pin_acquired: 3,
  nr_foll_pin_released: 4,
  pgfault: 5,
  pgmajfault: 6,
  pgalloc: 7,
  pgfree: 8,
  pgmigrate_success: 9,
  pgmigrate_fail: 10,
  compact_stall: 11,
  compact_success: 12,
  compact_fail: 13,
  thp_fault_alloc: 14,
  thp_fault_fallback: 15,
  thp_collapse_alloc: 16,
  thp_collapse_alloc_failed: 17,
  thp_split_page: 18,
  numa_pte_updates: 19,
  numa_hint_faults: 20,
  numa_pages_migrated: 21,
  cma_alloc_success: 22,
  cma_alloc_fail: 23,
  pswpin: 24,
  pswpout: 25,
  iopf_count: 26,
  cow_fault: 27,
  zero_page_fault: 28,
  unevictable_pgs_mlocked: 29,
  unevictable_pgs_munlocked: 30,
  htlb_buddy_alloc_success: 31,
  htlb_buddy_alloc_fail: 32,
  /**
   * Pages unpinned (by a pin registry: mempinfd, uacce_ctrl) while a device still had DMA in
   * flight on them (gup/dma-inflight.ts). svasim's own counter: the kernel cannot see this.
   */
  unpin_dma_inflight: 33,
} as const;

/** VmstatName - the name of a pre-registered counter. */
export type VmstatName = keyof typeof VM;

/** VMSTAT_NAMES - the pre-registered counters in index order. */
export const VMSTAT_NAMES: readonly VmstatName[] = Object.freeze(
  (Object.keys(VM) as VmstatName[]).sort((a, b) => VM[a] - VM[b]),
);

const INITIAL_CAPACITY = 64;

/**
 * Vmstat - vmstat-style counters in one growable Float64Array (Float64: page counts of large
 * machines and event totals of long runs exceed 2^32; integers stay exact up to 2^53).
 *
 * Derived counters are computed when read, so the owner of the real state (the buddy allocator
 * for nr_free_pages) need not keep a duplicate up to date on its hot path. Writing to a derived
 * counter only changes a shadow value that is never reported.
 */
export class Vmstat implements IVmstat {
  private values = new Float64Array(INITIAL_CAPACITY);
  private readonly names: string[] = [];
  private readonly indexOf = new Map<string, number>();
  /** Read function of each derived counter by index; undefined for plain counters. */
  private readonly derived: Array<(() => number) | undefined> = [];

  constructor() {
    for (const name of VMSTAT_NAMES) this.register(name);
  }

  /**
   * register - the index of counter @name, registering it at 0 if new.
   *
   * Return: the index, stable for the life of this Vmstat; counters are never unregistered.
   */
  register(name: string): number {
    const known = this.indexOf.get(name);
    if (known !== undefined) return known;
    const index = this.names.length;
    if (index >= this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.names.push(name);
    this.derived.push(undefined);
    this.indexOf.set(name, index);
    return index;
  }

  /** inc - add @delta (default 1) to the counter at @index. */
  inc(index: number, delta = 1): void {
    this.values[index] += delta;
  }

  /** dec - subtract @delta (default 1) from the counter at @index. */
  dec(index: number, delta = 1): void {
    this.values[index] -= delta;
  }

  /** set - set the counter at @index to @value. */
  set(index: number, value: number): void {
    this.values[index] = value;
  }

  /** get - the value of the counter at @index (computed now for a derived counter). */
  get(index: number): number {
    const fn = this.derived[index];
    return fn === undefined ? this.values[index] : fn();
  }

  /** read - the value of counter @name, or 0 when no such counter is registered. */
  read(name: string): number {
    const index = this.indexOf.get(name);
    return index === undefined ? 0 : this.get(index);
  }

  /**
   * derive - make counter @name computed by @fn whenever it is read (registering it if new,
   * replacing a previous function or a plain value if not).
   *
   * Return: nothing; the counter stays derived for the life of this Vmstat.
   */
  derive(name: string, fn: () => number): void {
    this.derived[this.register(name)] = fn;
  }

  /**
   * snapshot - every counter by name, in registration order, derived ones computed now.
   *
   * Return: a fresh object the caller owns.
   */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < this.names.length; i++) out[this.names[i]] = this.get(i);
    return out;
  }
}
