/**
 * Pins against the rest of mm: one table, {nothing, get_page reference, mlock, short-term pin,
 * FOLL_LONGTERM pin} x {compaction, khugepaged collapse, CMA allocation, 1 GiB assembly, NUMA
 * migration, reclaim, memory offline, fork then parent write}, each cell the outcome Linux gives
 * (KERNEL-FACTS.md §2 and §3).
 *
 * Every cell boots its own small machine, writes a patterned mapping, takes the hold of its row on
 * one "probe" page of it (mlock takes the whole mapping: mlock works on VMAs), runs the activity of
 * its column, observes what happened to the probe page, checks the data and the kernel's
 * invariants, releases the hold and checks the invariants again. The "nothing" row is the control:
 * it shows that each activity, left alone, does act on the probe page.
 */
import { describe, expect, test } from '@jest/globals';
import {
  collapseHugePage,
  compactMemory,
  contigCounters,
  createKernel,
  emptyReclaimStats,
  ERRNO,
  FOLL_LONGTERM,
  FOLL_WRITE,
  getUserPages,
  gupPutPages,
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  numaMmStats,
  onlinePages,
  PAGE_SIZE,
  pinUserPages,
  reclaimPages,
  SCAN_PAGE_COUNT,
  SCAN_SUCCEED,
  setProcessNode,
  taskNumaWork,
  unpinUserPages,
  type Kernel,
  type KernelOptions,
  type Process,
} from '@svasim/kernel';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

const PINS = ['nothing', 'get_page', 'mlock', 'pin', 'longterm'] as const;
type Pin = (typeof PINS)[number];

const ACTIVITIES = ['compaction', 'khugepaged', 'cma', '1GiB', 'numa', 'reclaim', 'offline', 'fork'] as const;
type Activity = (typeof ACTIVITIES)[number];

type Row = Record<Activity, string>;

/**
 * The outcomes Linux gives. Columns: compact_memory moves the probe page or it stays; khugepaged
 * collapses its 2 MiB range or refuses it; cma_alloc of the whole area holding it is allocated or
 * fails; a 1 GiB hugetlb page is assembled over the only candidate range holding it or fails; NUMA
 * balancing moves it to the task's new node or it stays; reclaim frees it (to swap) or keeps it;
 * offlining its ZONE_MOVABLE memory block completes or stays blocked; after fork and a parent
 * write, the child got a copy at fork (early COW, the parent keeps the page) or the parent's write
 * copied (the child keeps it).
 */
const EXPECTED: Record<Pin, Row> = {
  // The control: every activity acts on a page nothing holds.
  nothing: {
    compaction: 'moved', // isolate_migratepages_block isolates it; migrate_pages moves it to the free scanner's page
    khugepaged: 'collapsed', // refcount == mapcount for all 512 pages (is_refcount_suitable), young and writable
    cma: 'allocated', // alloc_contig_range migrates the movable page out of the area
    '1GiB': 'allocated', // alloc_contig_pages -> alloc_contig_range empties the only candidate 1 GiB range
    numa: 'moved', // change_prot_numa hints it; do_numa_page -> migrate_misplaced_folio moves it to the task's node
    reclaim: 'reclaimed', // shrink_folio_list: try_to_unmap, pageout to swap, refcount freeze, freed
    offline: 'offlined', // offline_pages: scan_movable_pages + do_migrate_range move it to another block
    fork: 'parent-copied', // copy_present_pte shares it COW; the parent's write is not exclusive -> do_wp_page copies
  },
  // A get_user_pages (FOLL_GET) reference: +1 refcount, not maybe-pinned, no MMF_HAS_PINNED.
  get_page: {
    compaction: 'stays', // isolate_migratepages_block skips anon folios with refcount - 1 > mapcount
    khugepaged: 'refused', // is_refcount_suitable / folio_expected_ref_count != refcount: SCAN_PAGE_COUNT
    cma: 'failed', // not isolated (refcount > mapcount) -> test_pages_isolated fails: alloc_contig_range -EBUSY
    '1GiB': 'failed', // same alloc_contig_range -EBUSY on the one candidate range
    numa: 'stays', // hinted (not maybe-pinned), but folio_ref_freeze(expected) fails: -EAGAIN x10, not migrated
    reclaim: 'kept', // try_to_unmap succeeds, but is_page_cache_freeable / the refcount freeze fail: never freed (see cellReclaim)
    offline: 'blocked', // do_migrate_range isolates it but migrate_pages fails for ever: offline loops on it
    fork: 'parent-copied', // folio_needs_cow_for_dma is false (no MMF_HAS_PINNED, refcount < 1024): shared COW, parent copies
  },
  // mlock: unevictable and charged to locked_vm, but not pinned: every migration still moves it.
  mlock: {
    compaction: 'moved', // vm.compact_unevictable_allowed = 1 (default): unevictable folios are isolated
    khugepaged: 'collapsed', // VM_LOCKED is not in VM_NO_KHUGEPAGED; the new THP is mlocked (folio_add_lru_vma)
    cma: 'allocated', // alloc_contig_range isolates unevictable folios (ISOLATE_UNEVICTABLE) and migrates them
    '1GiB': 'allocated', // the same alloc_contig_range path
    numa: 'moved', // prot_numa_skip does not skip mlocked folios; migration moves them
    reclaim: 'kept', // folio_evictable() false: the unevictable LRU, never reclaimed
    offline: 'offlined', // do_migrate_range migrates mlocked folios
    fork: 'parent-copied', // VM_LOCKED is not inherited and mlock is no pin: shared COW, the parent copies
  },
  // A short-term FOLL_PIN: +GUP_PIN_COUNTING_BIAS (folio_maybe_dma_pinned), MMF_HAS_PINNED.
  pin: {
    compaction: 'stays', // isolate_migratepages_block: refcount - 1 > mapcount, skipped
    khugepaged: 'refused', // SCAN_PAGE_COUNT
    cma: 'failed', // a pinned CMA page makes cma_alloc fail (alloc_contig_range -EBUSY after 5 tries)
    '1GiB': 'failed', // alloc_contig_range -EBUSY on the only candidate range
    numa: 'stays', // prot_numa_skip: a maybe-pinned folio in a COW mapping is never hinted
    reclaim: 'kept', // try_to_unmap refuses a maybe-pinned anon-exclusive page (folio_try_share_anon_rmap_pte -EBUSY)
    offline: 'blocked', // offline_pages loops on the pinned page (svasim: until the timeout, -ETIMEDOUT)
    fork: 'child-copied', // fork's early COW: MMF_HAS_PINNED && maybe-pinned -> copy_present_page gives the child a copy
  },
  // FOLL_LONGTERM: first migrates out of ZONE_MOVABLE and CMA (check_and_migrate_movable_pages), then pins.
  longterm: {
    compaction: 'stays', // a pin is a pin: refcount - 1 > mapcount, skipped
    khugepaged: 'refused', // SCAN_PAGE_COUNT
    cma: 'allocated', // the pin moved the page out of CMA first, so the area holds no pinned page
    '1GiB': 'failed', // ZONE_NORMAL/DMA32 pages are long-term pinnable: it stays in the range and spoils it
    numa: 'stays', // prot_numa_skip of maybe-pinned folios
    reclaim: 'kept', // try_to_unmap refuses it
    offline: 'offlined', // the pin moved the page out of ZONE_MOVABLE first, so the block holds no pinned page
    fork: 'child-copied', // early COW, as for any pin
  },
};

// ---- helpers ----

/** Rows holding a reference beyond the mappings (refcount > mapcount). */
const REFERENCED: readonly Pin[] = ['get_page', 'pin', 'longterm'];
/** Rows whose page is folio_maybe_dma_pinned. */
const PINNED: readonly Pin[] = ['pin', 'longterm'];

/** A small machine with 4 KiB pages only, unless @opts says otherwise. */
function boot(opts: KernelOptions): Kernel {
  return createKernel({ ...opts, sysctl: { transparent_hugepage: 'never', ...opts.sysctl } });
}

/** The pattern mapping page i holds. */
function pattern(len: number, seed: number): Uint8Array {
  return new Uint8Array(len).map((_, i) => (i * 31 + seed + (i >> 12)) & 255);
}

/** A private anonymous mapping of @pages pages written with a pattern; its probe is page 5 (or the last). */
function populate(p: Process, pages: number, seed = 7) {
  const len = pages * PAGE_SIZE;
  const a = p.mmap(len);
  const data = pattern(len, seed);
  p.write(a, data);
  return { a, len, data, probe: a + Math.min(5, pages - 1) * PAGE_SIZE };
}

function sameBytes(got: Uint8Array, want: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(got), Buffer.from(want)) === 0;
}

function expectIntact(p: Process, a: number, data: Uint8Array): void {
  if (!sameBytes(p.read(a, data.length), data)) throw new Error('data changed');
}

function expectNoViolations(k: Kernel, when: string): void {
  const v = k.checkInvariants();
  if (v.length) throw new Error(`invariants ${when}: ${v.slice(0, 5).join('; ')}`);
}

/**
 * Take the hold of row @pin on the page at @probe of @p (mlock: the whole mapping [a, a + len)).
 * Returns the release; `pages` holds the pfn GUP returned (after a long-term pin's migration).
 */
function hold(pin: Pin, k: Kernel, p: Process, probe: number, a: number, len: number): () => void {
  const core = k.mmCore;
  const pages = [-1];
  switch (pin) {
    case 'nothing':
      return () => {};
    case 'get_page':
      expect(getUserPages(p.mm, probe, 1, FOLL_WRITE, pages)).toBe(1);
      expect(p.pagemap(probe).pinned).toBe(false); // a reference, not a pin
      return () => gupPutPages(core, pages, 1);
    case 'mlock':
      p.mlock(a, len);
      expect(p.pagemap(probe).mlocked).toBe(true);
      return () => p.munlock(a, len);
    case 'pin':
    case 'longterm': {
      const flags = FOLL_WRITE | (pin === 'longterm' ? FOLL_LONGTERM : 0);
      expect(pinUserPages(p.mm, probe, 1, flags, pages)).toBe(1);
      expect(p.pagemap(probe).pinned).toBe(true);
      expect(p.pagemap(probe).pfn).toBe(pages[0]);
      return () => unpinUserPages(core, pages, 1);
    }
  }
}

/** Check, release, check: every cell ends this way. */
function finish(k: Kernel, release: () => void): void {
  expectNoViolations(k, 'with the hold');
  release();
  expectNoViolations(k, 'after the release');
}

// ---- the activities: each returns the observed outcome for one row ----

/**
 * echo 1 > /proc/sys/vm/compact_memory. The probe mapping sits at the bottom of the zone, under
 * 8 MiB of another process's memory with every other page freed: holes the free scanner can use
 * (it leaves pageblocks whose free memory is already in 2 MiB blocks alone, suitable_migration_target,
 * so an empty zone would give it nowhere to move anything).
 */
function cellCompaction(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '128MiB' }] } });
  const p = k.spawn();
  const { a, len, data, probe } = populate(p, 16);
  const filler = k.spawn();
  const holes = populate(filler, 2048, 3);
  for (let i = 1; i < 2048; i += 2) filler.madvise(holes.a + i * PAGE_SIZE, PAGE_SIZE, MADV_DONTNEED);
  const release = hold(pin, k, p, probe, a, len);
  const before = p.pagemap(probe).pfn!;
  const first = p.pagemap(a).pfn!;
  const report = compactMemory(k.mmCore);
  const after = p.pagemap(probe).pfn!;
  // The mechanism: isolate_migratepages_block's refcount - 1 > mapcount test, not a failed migration.
  if (REFERENCED.includes(pin)) expect(report.skippedPinned).toBeGreaterThanOrEqual(1);
  else expect(report.skippedPinned).toBe(0);
  expect(report.skippedUnevictable).toBe(0); // vm.compact_unevictable_allowed = 1
  // Control: page 0 of the mapping, held by nothing, in the probe's pageblock, did move.
  expect(p.pagemap(a).pfn).not.toBe(first);
  expectIntact(p, a, data);
  finish(k, release);
  return after === before ? 'stays' : 'moved';
}

/** khugepaged's collapse of a 2 MiB range of 4 KiB pages (THP 'madvise' + MADV_HUGEPAGE after populating). */
function cellKhugepaged(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '256MiB' }] }, sysctl: { transparent_hugepage: 'madvise' } });
  const p = k.spawn();
  const { a, len, data, probe } = populate(p, 512);
  expect(p.pagemap(a).huge).toBeUndefined();
  const release = hold(pin, k, p, probe, a, len);
  p.madvise(a, len, MADV_HUGEPAGE);
  const r = collapseHugePage(p.mm.vmaLookup(a)!, a);
  expectIntact(p, a, data);
  if (r === SCAN_SUCCEED) {
    expect(p.pagemap(probe).huge).toBe('2MiB');
    if (pin === 'mlock') expect(p.pagemap(probe).mlocked).toBe(true); // the new THP is mlocked
  }
  finish(k, release);
  return r === SCAN_SUCCEED ? 'collapsed' : r === SCAN_PAGE_COUNT ? 'refused' : `scan result ${r}`;
}

/**
 * cma_alloc of the whole CMA area, the probe page having been faulted into it (CMA is most of the
 * node's free memory, so movable allocations take it first).
 */
function cellCma(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '256MiB', cma: '160MiB' }] } });
  const p = k.spawn();
  const { a, len, data, probe } = populate(p, 16);
  expect(p.pagemap(probe).migratetype).toBe('CMA');
  const release = hold(pin, k, p, probe, a, len);
  // FOLL_LONGTERM: the pin moved the page out of CMA before holding it.
  if (pin === 'longterm') expect(p.pagemap(probe).migratetype).not.toBe('CMA');
  else expect(p.pagemap(probe).migratetype).toBe('CMA');
  const area = k.phys.cmaAreas[0];
  const ok = k.cmaAlloc(area.count * PAGE_SIZE);
  const cc = contigCounters(k.mmCore);
  // A held CMA page is never isolated (refcount > mapcount); the range stays busy: -EBUSY.
  if (ok) expect(cc.busy).toBe(0);
  else expect(cc.skippedPinned > 0 && cc.busy > 0).toBe(true);
  if (ok) {
    expect(p.pagemap(probe).migratetype).not.toBe('CMA');
    expect(k.cmaRelease()).toBe(1);
  }
  expectIntact(p, a, data);
  finish(k, release);
  return ok ? 'allocated' : 'failed';
}

/**
 * One 1 GiB hugetlb page assembled at run time on a 2 GiB machine: [0, 1 GiB) holds the reserved
 * memmap, so [1, 2) GiB is the only candidate range, and the probe mapping is placed there (the
 * free memory below 1 GiB is taken off the buddy while it is faulted in, then given back as the
 * place the range's pages migrate to).
 */
function cell1GiB(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '2GiB' }] } });
  const target = GiB / PAGE_SIZE;
  const below: Array<[number, number]> = [];
  k.phys.forEachFreeBlock((pfn, order) => {
    if (pfn < target) below.push([pfn, Math.min(2 ** order, target - pfn)]);
  });
  for (const [pfn, n] of below) expect(k.phys.takeFreeRange(pfn, n)).toBe(true);
  const p = k.spawn();
  const { a, len, data, probe } = populate(p, 16);
  for (const [pfn, n] of below) k.phys.freeRange(pfn, n);
  expect(p.pagemap(probe).pfn).toBeGreaterThanOrEqual(target);
  expect(p.pagemap(probe).zone).toBe('DMA32'); // no ZONE_MOVABLE or CMA: a long-term pin leaves it here
  const release = hold(pin, k, p, probe, a, len);
  expect(p.pagemap(probe).pfn).toBeGreaterThanOrEqual(target);
  const ok = k.allocHugepage('1GiB');
  const cc = contigCounters(k.mmCore);
  if (!ok) expect(cc.skippedPinned > 0 && cc.busy > 0).toBe(true);
  if (ok) {
    expect(p.pagemap(probe).pfn).toBeLessThan(target);
    expect(k.hugetlb.stats('1GiB').nr).toBe(1);
    k.hugetlb.setNrHugepages('1GiB', 0);
  }
  expectIntact(p, a, data);
  finish(k, release);
  return ok ? 'allocated' : 'failed';
}

/**
 * NUMA balancing: the task's memory is on node 1, the scheduler moves it to node 0; three scan
 * passes (task_numa_work), each followed by an access of the whole mapping (hinting faults).
 */
function cellNuma(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '128MiB' }, { size: '128MiB' }] } });
  const p = k.spawn({ node: 1 });
  const { a, len, data, probe } = populate(p, 4);
  expect(p.pagemap(probe).node).toBe(1);
  const release = hold(pin, k, p, probe, a, len);
  expect(setProcessNode(p.mm, 0)).toBe(0);
  for (let i = 0; i < 3; i++) {
    taskNumaWork(p.mm);
    p.touch(a, len);
  }
  expect(p.pagemap(a).node).toBe(0); // control: page 0 of the mapping (held by nothing) moved
  const node = p.pagemap(probe).node;
  // The mechanism: a pinned page is never even hinted (prot_numa_skip): 3 hinting faults for the
  // other 3 pages. A get_page page is hinted, and its migration fails on the reference.
  if (PINNED.includes(pin)) expect(k.vmstat().numa_hint_faults).toBe(3);
  else expect(k.vmstat().numa_hint_faults).toBeGreaterThanOrEqual(4);
  if (pin === 'get_page') expect(numaMmStats(p.mm)!.migrateFailed).toBeGreaterThanOrEqual(1);
  expectIntact(p, a, data);
  finish(k, release);
  return node === 0 ? 'moved' : 'stays';
}

/**
 * Reclaim of the probe page: reclaim_pages (shrink_folio_list ignoring the accessed bits, the core
 * both the LRU scan and MADV_PAGEOUT use; MADV_PAGEOUT itself refuses a VM_LOCKED VMA with
 * -EINVAL before reaching it). Outcome: the page was swapped out and its frame freed, or kept.
 *
 * get_page row: Linux's try_to_unmap does unmap a page that only has an extra reference, putting
 * it in the swap cache, but pageout() refuses it (is_page_cache_freeable) and the refcount freeze
 * in __remove_mapping would fail: the frame is never freed and the same page is mapped again at
 * the next fault. svasim has no swap cache and keeps such a page mapped (documented in vmscan.ts);
 * either way the memory is kept, which is what this column records.
 */
function cellReclaim(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '64MiB' }] }, swap: '16MiB' });
  const p = k.spawn();
  const { a, len, data, probe } = populate(p, 4);
  const release = hold(pin, k, p, probe, a, len);
  const pfn = p.pagemap(probe).pfn!;
  const stats = emptyReclaimStats();
  const freed = reclaimPages(k.mmCore, [pfn], stats);
  // Why it was kept: try_to_unmap refused a maybe-pinned page; a referenced one is busy; an
  // mlocked one unevictable.
  expect(stats.nrPinned).toBe(PINNED.includes(pin) ? 1 : 0);
  expect(stats.nrBusy).toBe(pin === 'get_page' ? 1 : 0);
  expect(stats.nrUnevictable).toBe(pin === 'mlock' ? 1 : 0);
  const e = p.pagemap(probe);
  let out: string;
  if (!e.present && freed === 1 && p.status().vmSwap === PAGE_SIZE) out = 'reclaimed';
  else if (e.present && e.pfn === pfn && freed === 0 && p.status().vmSwap === 0) out = 'kept';
  else out = `present ${e.present} freed ${freed} swap ${p.status().vmSwap}`;
  expectIntact(p, a, data); // swaps the page back in if it went
  finish(k, release);
  return out;
}

/**
 * Offlining the 128 MiB ZONE_MOVABLE memory block the probe page was faulted into (movablecore:
 * movable allocations fill ZONE_MOVABLE first). Linux retries for ever; svasim is bounded by a
 * 1 s simulated timeout, after which it reports -ETIMEDOUT: "blocked".
 */
function cellOffline(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '1GiB', movable: '512MiB' }] } });
  const p = k.spawn();
  const { a, len, data, probe } = populate(p, 16);
  const e = p.pagemap(probe);
  expect(e.zone).toBe('MOVABLE');
  const block = 128 * MiB;
  const blockStart = Math.floor((e.pfn! * PAGE_SIZE) / block) * block;
  const release = hold(pin, k, p, probe, a, len);
  if (pin === 'longterm') expect(p.pagemap(probe).zone).not.toBe('MOVABLE'); // migrated out before the pin
  const r = k.offlineMemory(0, blockStart, block, { timeoutNs: 1e9 });
  expectIntact(p, a, data);
  if (r === 0) {
    const pfn = p.pagemap(probe).pfn!;
    expect(pfn * PAGE_SIZE < blockStart || pfn * PAGE_SIZE >= blockStart + block).toBe(true);
  }
  finish(k, release);
  if (r === 0) {
    expect(onlinePages(k.mmCore, blockStart / PAGE_SIZE, block / PAGE_SIZE)).toBe(0);
    expectNoViolations(k, 'after onlining');
  }
  return r === 0 ? 'offlined' : r === -ERRNO.ETIMEDOUT ? 'blocked' : `offline returned ${r}`;
}

/**
 * fork, then the parent writes the probe page. 'child-copied': early COW gave the child its own
 * copy at fork and the parent (and whoever holds the page) keeps the original; 'parent-copied':
 * the page was shared copy-on-write and the parent's write moved the parent to a new page, the
 * child keeping the original.
 */
function cellFork(pin: Pin): string {
  const k = boot({ memory: { nodes: [{ size: '128MiB' }] } });
  const p = k.spawn();
  const { a, len, data, probe } = populate(p, 4);
  const release = hold(pin, k, p, probe, a, len);
  const pfn = p.pagemap(probe).pfn!;
  const child = p.fork();
  const childAtFork = child.pagemap(probe).pfn;
  p.write(probe, new Uint8Array([0xee]));
  const parentPfn = p.pagemap(probe).pfn;
  const childPfn = child.pagemap(probe).pfn;
  // Whatever the COW path, each process sees its own data.
  expectIntact(child, a, data);
  expect(p.read(probe, 1)[0]).toBe(0xee);
  let out: string;
  if (parentPfn === pfn && childAtFork !== pfn && childPfn === childAtFork) {
    out = 'child-copied';
    expect(k.phys.data.view(pfn)![0]).toBe(0xee); // the holder of the page sees the parent's write
  } else if (parentPfn !== pfn && childAtFork === pfn && childPfn === pfn) {
    out = 'parent-copied';
    expect(k.phys.data.view(pfn)![0]).toBe(data[probe - a]); // the holder's page no longer follows the parent
  } else out = `parent ${parentPfn} child ${childAtFork}/${childPfn} page ${pfn}`;
  child.exit();
  finish(k, release);
  return out;
}

const CELLS: Record<Activity, (pin: Pin) => string> = {
  compaction: cellCompaction,
  khugepaged: cellKhugepaged,
  cma: cellCma,
  '1GiB': cell1GiB,
  numa: cellNuma,
  reclaim: cellReclaim,
  offline: cellOffline,
  fork: cellFork,
};

/** Observed outcomes, computed once per cell (the whole-table test reuses the per-cell results). */
const observed = new Map<string, string>();
function observe(pin: Pin, activity: Activity): string {
  const key = `${pin}/${activity}`;
  let v = observed.get(key);
  if (v === undefined) {
    v = CELLS[activity](pin);
    observed.set(key, v);
  }
  return v;
}

function formatTable(get: (pin: Pin, activity: Activity) => string): string {
  const rows = [['', ...ACTIVITIES], ...PINS.map((pin) => [pin, ...ACTIVITIES.map((act) => get(pin, act))])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

describe('pins versus the rest of mm', () => {
  const cells = PINS.flatMap((pin) =>
    ACTIVITIES.map((activity) => ({ pin, activity, want: EXPECTED[pin][activity] })),
  );

  test.each(cells)('$pin x $activity: $want', ({ pin, activity, want }) => {
    expect(observe(pin, activity)).toBe(want);
  });

  test('the whole table', () => {
    const got = formatTable(observe);
    console.log(`pins versus mm (observed):\n${got}`);
    expect(got).toBe(formatTable((pin, activity) => EXPECTED[pin][activity]));
  });
});
