import { describe, expect, it } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { Kernel } from '../plugin/kernel';
import type { Process } from '../proc/process';
import { PAGE_SIZE } from '../uapi/mman';
import {
  compactionCounters,
  extfragForOrder,
  fragmentationIndex,
  fragmentationScoreNode,
  fragmentationScoreWmark,
  initCompaction,
  kcompactdStats,
} from './compaction';
import { GFP_TRANSHUGE_LIGHT, PAGEBLOCK_NR_PAGES, __GFP_KSWAPD_RECLAIM } from './gfp';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';

/** A 128 MiB one-node machine with 4 KiB pages only. */
function machine(sysctl: Record<string, unknown> = {}): Kernel {
  return createKernel({
    memory: { nodes: [{ size: '128MiB' }] },
    sysctl: { transparent_hugepage: 'never', ...sysctl },
  });
}

/** The 8 bytes process #j writes at the start of its page #i. */
function tag(j: number, i: number): Uint8Array {
  return new Uint8Array([0xa5, j, i & 255, (i >> 8) & 255, (i >> 16) & 255, 0x5a, j ^ 0xff, i % 251]);
}

interface Fragmented {
  k: Kernel;
  /** The two processes left, each with one mapping of `pages` pages. */
  procs: Process[];
  addrs: number[];
  pages: number;
  /** Free blocks of order >= 9 taken off the buddy so that no 2 MiB block stays free. */
  hidden: Array<[number, number]>;
}

/**
 * Fragment a machine deterministically: four processes fault their pages in round robin, so
 * consecutive pfns belong to processes 0,1,2,3,0,1,...; what is left free at the top in blocks of
 * 2 MiB or more is taken off the buddy; processes 1 and 3 exit, leaving every other page free.
 */
function fragment(k: Kernel): Fragmented {
  const all = [0, 1, 2, 3].map(() => k.spawn());
  const pages = Math.floor((k.phys.nrFreePages() - 2048) / 4);
  const addrs = all.map((p) => p.mmap(pages * PAGE_SIZE));
  for (let i = 0; i < pages; i++)
    for (let j = 0; j < 4; j++) all[j].write(addrs[j] + i * PAGE_SIZE, tag(j, i));
  const hidden: Array<[number, number]> = [];
  k.phys.forEachFreeBlock((pfn, order) => {
    if (order >= 9) hidden.push([pfn, 2 ** order]);
  });
  for (const [pfn, n] of hidden) expect(k.phys.takeFreeRange(pfn, n)).toBe(true);
  all[1].exit();
  all[3].exit();
  return { k, procs: [all[0], all[2]], addrs: [addrs[0], addrs[2]], pages, hidden };
}

function unhide(fr: Fragmented): void {
  for (const [pfn, n] of fr.hidden) fr.k.phys.freeRange(pfn, n);
  fr.hidden = [];
}

function pfnsOf(fr: Fragmented): number[][] {
  return fr.procs.map((p, j) => {
    const out: number[] = [];
    for (let i = 0; i < fr.pages; i++) out.push(p.pagemap(fr.addrs[j] + i * PAGE_SIZE).pfn!);
    return out;
  });
}

function expectDataIntact(fr: Fragmented): void {
  const ids = [0, 2];
  fr.procs.forEach((p, j) => {
    for (let i = 0; i < fr.pages; i++) {
      const got = p.read(fr.addrs[j] + i * PAGE_SIZE, 8);
      if (got.some((b, x) => b !== tag(ids[j], i)[x]))
        throw new Error(`process ${ids[j]} page ${i} corrupted`);
    }
  });
}

/** Pageblocks of node 0 that are entirely free. */
function freePageblocks(k: Kernel): Set<number> {
  const out = new Set<number>();
  const n = k.phys.nodes[0];
  for (let pb = n.startPfn; pb < n.startPfn + n.spannedPages; pb += PAGEBLOCK_NR_PAGES)
    if (k.phys.isRangeFree(pb, PAGEBLOCK_NR_PAGES)) out.add(pb);
  return out;
}

/** Pin @pfn as FOLL_PIN would (GUP_PIN_COUNTING_BIAS), reporting the reference to the checker. */
function pinner(k: Kernel) {
  const pins = new Map<number, number>();
  k.addRefSource((refs) => {
    for (const [pfn, n] of pins) refs.set(pfn, (refs.get(pfn) ?? 0) + n * GUP_PIN_COUNTING_BIAS);
  });
  return {
    pin(pfn: number) {
      k.phys.frames.refcount[pfn] += GUP_PIN_COUNTING_BIAS;
      pins.set(pfn, (pins.get(pfn) ?? 0) + 1);
    },
    unpinAll() {
      for (const [pfn, n] of pins) k.phys.frames.refcount[pfn] -= n * GUP_PIN_COUNTING_BIAS;
      pins.clear();
    },
  };
}

describe('compaction', () => {
  it('computes the fragmentation index and score as the kernel does', () => {
    const k = machine();
    const zone = k.phys.zone(0, 0);
    // Fresh memory is in 4 MiB blocks: nothing is fragmented.
    expect(extfragForOrder(zone, 9)).toBe(0);
    expect(fragmentationIndex(zone, 9)).toBe(-1000);
    expect(fragmentationScoreNode(k.mmCore, 0)).toBe(0);
    expect(fragmentationScoreWmark(k.mmCore, true)).toBe(80);
    expect(fragmentationScoreWmark(k.mmCore, false)).toBe(90);
    const fr = fragment(k);
    expect(extfragForOrder(zone, 9)).toBe(100);
    expect(fragmentationIndex(zone, 9)).toBeGreaterThan(990);
    expect(fragmentationScoreNode(k.mmCore, 0)).toBeGreaterThan(90);
    unhide(fr);
  });

  it('compact_memory assembles 2 MiB blocks in a fragmented zone; data and mappings follow', () => {
    const fr = fragment(machine());
    const { k } = fr;
    expect(freePageblocks(k).size).toBe(0);
    const before = pfnsOf(fr);
    const vm0 = k.vmstat();
    k.compactMemory();
    const free = freePageblocks(k);
    // About half of the fragmented pageblocks were emptied.
    expect(free.size).toBeGreaterThan(20);
    const after = pfnsOf(fr);
    let moved = 0;
    for (let j = 0; j < 2; j++) for (let i = 0; i < fr.pages; i++) if (after[j][i] !== before[j][i]) moved++;
    expect(moved).toBeGreaterThan(free.size * 256 * 0.9);
    expectDataIntact(fr);
    const c = compactionCounters(k.mmCore);
    const vm = k.vmstat();
    expect(c.migrated).toBe(moved);
    expect(c.failed).toBe(0);
    expect(c.skippedPinned).toBe(0);
    expect(c.costNs).toBeGreaterThan(moved * 1000);
    expect(vm.pgmigrate_success - vm0.pgmigrate_success).toBe(moved);
    expect(vm.compact_migrate_scanned).toBeGreaterThan(0);
    expect(vm.compact_free_scanned).toBeGreaterThan(0);
    expect(fragmentationScoreNode(k.mmCore, 0)).toBeLessThan(10);
    expect(k.checkInvariants()).toEqual([]);
    // The moved pages still behave: write, fork-COW and exit work on them.
    const c0 = fr.procs[0].fork();
    c0.write(fr.addrs[0], new Uint8Array([7]));
    expect(fr.procs[0].read(fr.addrs[0], 1)[0]).toBe(0xa5);
    c0.exit();
    unhide(fr);
    for (const p of fr.procs) p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('direct compaction serves a 2 MiB allocation (compact_stall, compact_success)', () => {
    const fr = fragment(machine());
    const { k } = fr;
    expect(k.allocHugepage('2MiB')).toBe(true);
    const vm = k.vmstat();
    expect(vm.compact_stall).toBeGreaterThanOrEqual(1);
    expect(vm.compact_success).toBe(1);
    expect(vm.htlb_buddy_alloc_success).toBeGreaterThanOrEqual(1);
    expect(k.hugetlb.stats('2MiB')).toEqual({ nr: 1, free: 1, resv: 0, surplus: 0 });
    // Direct compaction stops as soon as a block is free: far fewer pages moved than a full pass.
    expect(compactionCounters(k.mmCore).migrated).toBeLessThan(1024);
    expectDataIntact(fr);
    expect(k.checkInvariants()).toEqual([]);
    unhide(fr);
  });

  it('skips a pinned page, which blocks only its own pageblock', () => {
    // Two identical machines, one with a pinned page: deterministic runs differ only there.
    const a = fragment(machine());
    const b = fragment(machine());
    const victim = pfnsOf(b)[0][1000];
    const pb = victim - (victim % PAGEBLOCK_NR_PAGES);
    const pins = pinner(b.k);
    pins.pin(victim);
    a.k.compactMemory();
    b.k.compactMemory();
    const freeA = freePageblocks(a.k);
    const freeB = freePageblocks(b.k);
    expect(freeA.has(pb)).toBe(true);
    expect(freeB.has(pb)).toBe(false);
    // The only 2 MiB block lost to the pin is the pinned page's own.
    expect([...freeA].filter((x) => !freeB.has(x))).toEqual([pb]);
    expect(b.procs[0].pagemap(b.addrs[0] + 1000 * PAGE_SIZE).pfn).toBe(victim);
    expect(b.procs[0].pagemap(b.addrs[0] + 1000 * PAGE_SIZE).pinned).toBe(true);
    expect(compactionCounters(b.k.mmCore).skippedPinned).toBeGreaterThanOrEqual(1);
    expect(compactionCounters(a.k.mmCore).skippedPinned).toBe(0);
    // Everything else in the pinned page's pageblock moved out.
    let busy = 0;
    for (let p = pb; p < pb + PAGEBLOCK_NR_PAGES; p++) if (!b.k.phys.isFreeBuddy(p)) busy++;
    expect(busy).toBe(1);
    expectDataIntact(b);
    expect(b.k.checkInvariants()).toEqual([]);
    pins.unpinAll();
    b.k.compactMemory();
    expect(freePageblocks(b.k).size).toBeGreaterThanOrEqual(freeA.size);
    expect(b.k.checkInvariants()).toEqual([]);
    unhide(a);
    unhide(b);
  });

  it('moves mlocked pages only when vm.compact_unevictable_allowed is 1', () => {
    const fr = fragment(machine({ 'vm.compact_unevictable_allowed': 0 }));
    const { k } = fr;
    fr.procs[0].mlock(fr.addrs[0], fr.pages * PAGE_SIZE);
    expect(fr.procs[0].pagemap(fr.addrs[0]).mlocked).toBe(true);
    const before = pfnsOf(fr);
    k.compactMemory();
    const mid = pfnsOf(fr);
    expect(mid[0]).toEqual(before[0]); // mlocked: stayed
    expect(mid[1]).not.toEqual(before[1]); // the other process's pages moved
    expect(compactionCounters(k.mmCore).skippedUnevictable).toBeGreaterThan(0);
    expect(k.checkInvariants()).toEqual([]);
    k.sysctl['vm.compact_unevictable_allowed'] = 1;
    k.compactMemory();
    const after = pfnsOf(fr);
    expect(after[0]).not.toEqual(before[0]);
    expect(fr.procs[0].pagemap(fr.addrs[0] + 5 * PAGE_SIZE).mlocked).toBe(true);
    expect(k.vmstat().nr_mlock).toBe(fr.pages);
    expectDataIntact(fr);
    expect(k.checkInvariants()).toEqual([]);
    unhide(fr);
  });

  it('kcompactd compacts proactively every 500 ms in the background', async () => {
    const k = machine();
    initCompaction(k.mmCore);
    initCompaction(k.mmCore); // idempotent
    const fr = fragment(k);
    const s0 = fragmentationScoreNode(k.mmCore, 0);
    expect(s0).toBeGreaterThan(fragmentationScoreWmark(k.mmCore, false));
    await k.runFor(400e6);
    expect(kcompactdStats(k.mmCore, 0).proactiveRuns).toBe(0);
    await k.runFor(5e9 - 400e6);
    const s1 = fragmentationScoreNode(k.mmCore, 0);
    expect(s1).toBeLessThan(s0);
    expect(s1).toBeLessThanOrEqual(fragmentationScoreWmark(k.mmCore, true));
    const st = kcompactdStats(k.mmCore, 0);
    expect(st.proactiveRuns).toBeGreaterThanOrEqual(1);
    expect(st.cpuNs).toBeGreaterThan(0);
    expect(k.vmstat().compact_daemon_migrate_scanned).toBeGreaterThan(0);
    expectDataIntact(fr);
    expect(k.checkInvariants()).toEqual([]);
    // Background events alone do not keep the machine busy.
    const t = k.now();
    await k.runUntilIdle();
    expect(k.now()).toBe(t);
    unhide(fr);
  });

  it('a high-order allocation that may not compact wakes kcompactd', async () => {
    const k = machine();
    initCompaction(k.mmCore);
    k.sysctl['vm.compaction_proactiveness'] = 0;
    const fr = fragment(k);
    const gfp = GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM;
    expect(k.phys.allocPages(gfp, 9, 0)).toBe(-1);
    expect(k.vmstat().compact_stall).toBe(0);
    await k.runFor(1e6);
    expect(kcompactdStats(k.mmCore, 0).wakeups).toBe(1);
    expect(k.vmstat().compact_daemon_wake).toBe(1);
    const head = k.phys.allocPages(gfp, 9, 0);
    expect(head).toBeGreaterThanOrEqual(0);
    k.phys.freePages(head, 9);
    expectDataIntact(fr);
    expect(k.checkInvariants()).toEqual([]);
    unhide(fr);
  });
});
