import { describe, expect, it } from '@jest/globals';
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  MADV_NOHUGEPAGE,
  PAGE_SIZE,
  createKernel,
  pinUserPages,
  unpinUserPages,
} from '@svasim/kernel';
import { MetricsCollector, MigrateReasonCounter } from '../../metrics';
import { validateScenario } from '../../scenario';
import { testRegistry } from '../../test-support/strategies';
import { runExperiment } from '../experiment';
import { pagesCopiedAtFork } from './fork-copies';
import { probeHugepageRanges } from './hugepage-probe';

describe('hugepage-alloc probe', () => {
  it('judges every aligned range on its own and blames pinned pages', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
    const p = k.spawn();
    const len = 32 * 2 ** 20;
    const a = p.mmap(len);
    p.madvise(a, len, MADV_NOHUGEPAGE);
    p.touch(a, len, { write: true });
    const free = k.counters.read('nr_free_pages');
    const clean = probeHugepageRanges(k, '2MiB');
    expect(clean.ranges).toBe(64);
    expect(clean.blockedByPin).toBe(0);
    expect(clean.assembled + clean.blockedOther).toBe(64);
    // Each range was given back: free memory is what it was.
    expect(k.counters.read('nr_free_pages')).toBe(free);
    // Pin one page in each of 3 different 2 MiB ranges of the buffer.
    const pages: number[] = [];
    for (const off of [0, 8, 16]) {
      const one: number[] = [];
      expect(pinUserPages(p.mm, a + off * 2 ** 20, 1, FOLL_WRITE | FOLL_LONGTERM, one)).toBe(1);
      pages.push(one[0]);
    }
    const pinned = probeHugepageRanges(k, '2MiB');
    expect(pinned.ranges).toBe(64);
    expect(pinned.blockedByPin).toBe(3);
    expect(pinned.assembled).toBe(clean.assembled - 3);
    unpinUserPages(k.mmCore, pages, pages.length);
    const after = probeHugepageRanges(k, '2MiB');
    expect(after.blockedByPin).toBe(0);
    expect(after.assembled).toBe(clean.assembled);
    expect(k.checkInvariants()).toEqual([]);
    k.shutdown();
  });

  it('as a background activity: one recorded attempt per range, the reasons in extra', async () => {
    const registry = testRegistry();
    const s = validateScenario(
      {
        name: 'probe',
        machine: { memory: { nodes: [{ size: '2GiB' }, { size: '1GiB' }] } },
        devices: [{ name: 'memcpy_accel' }],
        processes: [
          { name: 'heap', node: 0, workload: { kind: 'resident', size: '1200MiB', prepareFraction: 1e-4 } },
        ],
        background: [{ kind: 'hugepage-alloc', size: '1GiB', node: 0, probe: true, every: '1ms' }],
        duration: '3ms',
        strategies: ['none', 'longterm-pin'],
      },
      'probe',
      registry,
    );
    const r = await runExperiment(s, { registry, progress: false, workers: 0, checkInvariants: true });
    for (const run of r.runs) {
      expect(run.error).toBeUndefined();
      expect(run.invariants).toEqual([]);
    }
    const [none, pinned] = r.runs.map((x) => x.metrics!);
    // One pass over node 0's ranges: 0 (the kernel's memory and the heap's), 1 (the rest of the
    // heap, which migrates to node 1).
    expect(none.extra).toMatchObject({
      hugepage_1g_ranges: 2,
      hugepage_1g_blocked_other: 1,
      hugepage_1g_blocked_by_pin: 0,
    });
    expect(none).toMatchObject({ hugepage_1g_assembled: 1, hugepage_failed: 1 });
    // About 30 long-term pins among 307,200 pages: range 1 (61,000 of them) holds some.
    expect(pinned.extra.heap_prepared_pages).toBeGreaterThan(10);
    expect(pinned.extra.hugepage_1g_blocked_by_pin).toBeGreaterThanOrEqual(1);
    expect(pinned).toMatchObject({ hugepage_1g_assembled: 0, hugepage_failed: 2 });
  }, 20_000);

  it('the schema refuses a probe that is not a boolean', () => {
    expect(() =>
      validateScenario({
        name: 'x',
        devices: [{ name: 'memcpy_accel' }],
        processes: [{ name: 'a', workload: { kind: 'memcpy', requestSize: 4096 } }],
        background: [{ kind: 'hugepage-alloc', size: '2MiB', probe: 'yes' }],
        duration: '1ms',
      }),
    ).toThrow(/background\.0\.probe|background\[0\]\.probe/);
  });
});

describe('pagesCopiedAtFork', () => {
  it('counts the pinned pages early COW copies for the child, none with legacy COW', () => {
    for (const forkCow of ['early', 'legacy'] as const) {
      const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] }, forkCow });
      const p = k.spawn();
      const a = p.mmap(16 * PAGE_SIZE);
      p.madvise(a, 16 * PAGE_SIZE, MADV_NOHUGEPAGE);
      p.touch(a, 16 * PAGE_SIZE, { write: true });
      const pages: number[] = [];
      expect(pinUserPages(p.mm, a + 4 * PAGE_SIZE, 4, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(4);
      const child = p.fork();
      expect(pagesCopiedAtFork(p, child)).toBe(forkCow === 'early' ? 4 : 0);
      child.exit();
      unpinUserPages(k.mmCore, pages, 4);
      k.shutdown();
    }
  });
});

describe('MigrateReasonCounter', () => {
  it('splits pgmigrate_success by reason: compaction here, the long-term pin there', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB', cma: '64MiB' }] } });
    const c = new MetricsCollector(k, { sampleEveryNs: 1e6 });
    c.begin();
    const keep = k.spawn();
    const drop = k.spawn();
    const len = 16 * 2 ** 20;
    const a = keep.mmap(len);
    const b = drop.mmap(len);
    keep.madvise(a, len, MADV_NOHUGEPAGE);
    drop.madvise(b, len, MADV_NOHUGEPAGE);
    for (let off = 0; off < len; off += PAGE_SIZE) {
      keep.touch(a + off, PAGE_SIZE, { write: true });
      drop.touch(b + off, PAGE_SIZE, { write: true });
    }
    drop.exit();
    k.compactMemory();
    // A long-term pin of a page lent from CMA moves it out first.
    const pages: number[] = [];
    const lent = Array.from({ length: len / PAGE_SIZE }, (_, i) => i).find(
      (i) => keep.pagemap(a + i * PAGE_SIZE).migratetype === 'CMA',
    );
    expect(lent).toBeDefined();
    pinUserPages(keep.mm, a + lent! * PAGE_SIZE, 1, FOLL_WRITE | FOLL_LONGTERM, pages);
    const m = c.finish().metrics;
    expect(m.extra.pgmigrate_compaction).toBeGreaterThan(0);
    expect(m.extra.pgmigrate_longterm_pin).toBe(1);
    expect(m.extra.pgmigrate_compaction + m.extra.pgmigrate_longterm_pin).toBe(m.migrate_success);
    unpinUserPages(k.mmCore, pages, 1);
    k.shutdown();
  });

  it('counts nothing once detached, and attach twice counts once', () => {
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    const counter = new MigrateReasonCounter();
    counter.attach(k);
    counter.attach(k);
    k.trace.emit('mm_migrate_pages', { succeeded: 3, failed: 1, mode: 0, reason: 0 });
    counter.detach();
    k.trace.emit('mm_migrate_pages', { succeeded: 5, failed: 0, mode: 0, reason: 0 });
    expect(counter.extras()).toEqual({ pgmigrate_compaction: 3, pgmigrate_fail_compaction: 1 });
    k.shutdown();
  });
});
