/**
 * Shipped experiment 5 (scenarios/05-1g-assembly.yaml, 05-1g-assembly-movable.yaml): 1 GiB page
 * assembly against the fraction p of pinned pages, beside the analytic (1 - p)^262144 - the
 * "1/256th chance of encountering a pinned page" of seed 003.
 *
 * The tests run the scenarios on a smaller machine (node 0 of 2 GiB: range 0 with the kernel,
 * range 1 full of the heap) so each run takes about a second. SVASIM_FULL_EXPERIMENTS=1 also
 * runs the documented sweep on the full machine (7 heap ranges, 5 seeds per p) and prints
 * measured against analytic: the figures of docs/experiments.md.
 */
import { describe, expect, it } from '@jest/globals';
import type { RunMetrics } from '../metrics';
import type { Scenario } from '../scenario';
import { loadShipped, metricsOf, runShipped } from '../test-support/shipped-scenarios';

const RANGE_PAGES = 262144;

/** The heap's scenario with its prepare fraction @p (and the machine and size given). */
function variant(
  file: string,
  p: number,
  over: {
    nodes?: Scenario['machine']['memory']['nodes'];
    size?: string;
    strategies?: string[];
    seeds?: number | number[];
  } = {},
): Scenario {
  const s = loadShipped(file);
  const [heap] = s.processes;
  if (heap.workload.kind !== 'resident') throw new Error('the heap is a resident workload');
  return loadShipped(file, {
    machine: over.nodes ? { ...s.machine, memory: { ...s.machine.memory, nodes: over.nodes } } : s.machine,
    processes: [
      { ...heap, workload: { ...heap.workload, prepareFraction: p, size: over.size ?? heap.workload.size } },
    ],
    strategies: over.strategies ?? s.strategies,
    seeds: over.seeds ?? s.seeds,
  });
}

const SMALL = { nodes: [{ size: '2GiB' }, { size: '1GiB' }], size: '1950MiB', seeds: [1] };
/** Pages of the heap on the small machine. */
const HEAP_PAGES = (1950 * 1024 * 1024) / 4096;

function ranges(m: RunMetrics): { assembled: number; byPin: number; other: number; total: number } {
  return {
    assembled: m.hugepage_1g_assembled ?? -1,
    byPin: m.extra.hugepage_1g_blocked_by_pin ?? 0,
    other: m.extra.hugepage_1g_blocked_other ?? 0,
    total: m.extra.hugepage_1g_ranges ?? 0,
  };
}

describe('shipped experiment 5: 1 GiB page assembly against pinned pages', () => {
  it('the shipped files load with the shipped registry', () => {
    const s = loadShipped('05-1g-assembly.yaml');
    expect(s.strategies).toEqual(['none', 'mlock', 'short-term', 'mempinfd']);
    expect(s.processes[0].workload).toMatchObject({ kind: 'resident', prepareFraction: 4e-6 });
    expect(loadShipped('05-1g-assembly-movable.yaml').machine.memory.nodes[0].movable).toBe('6GiB');
  });

  it('a long-term pin spoils its 1 GiB range; mlock and a short-term reference with a callback do not', async () => {
    // p = 1e-4: (1 - p)^262144 = 4e-12. mlock splits a VMA per prepared page, so a larger p only
    // costs wall time (svasim's anonymous rmap walks every VMA of the group).
    const r = await runShipped(
      variant('05-1g-assembly.yaml', 1e-4, { ...SMALL, strategies: ['mlock', 'short-term', 'mempinfd'] }),
    );
    for (const strategy of ['mlock', 'short-term']) {
      const m = metricsOf(r, strategy);
      // Range 0 holds the kernel's memory; range 1 is the heap's.
      expect({ strategy, ...ranges(m) }).toEqual({ strategy, assembled: 1, byPin: 0, other: 1, total: 2 });
      expect(m.pinned_bytes.peak).toBe(0);
    }
    const locked = metricsOf(r, 'mlock');
    expect(locked.locked_bytes.peak).toBe(locked.extra.heap_prepared_pages * 4096);
    const pinned = metricsOf(r, 'mempinfd');
    const pins = pinned.extra.heap_prepared_pages;
    // Each page chosen independently with p = 1e-4 (binomial mean 49.9, within 4 sigma).
    expect(Math.abs(pins - HEAP_PAGES * 1e-4)).toBeLessThan(4 * Math.sqrt(HEAP_PAGES * 1e-4));
    expect(pinned.pinned_bytes.end).toBe(pins * 4096);
    expect(ranges(pinned)).toEqual({ assembled: 0, byPin: 2, other: 0, total: 2 });
    // The pins stayed where the heap's pages were (not CMA, not ZONE_MOVABLE): nothing migrated
    // at pin time, and pinned anonymous pages are not even isolated (no failed migration).
    expect(pinned.extra.pgmigrate_longterm_pin ?? 0).toBe(0);
    expect(pinned.migrate_fail).toBe(0);
  }, 30_000);

  it('with the heap in ZONE_MOVABLE the long-term pins migrate out and pack together', async () => {
    const s = variant('05-1g-assembly-movable.yaml', 1 / 256, {
      nodes: [{ size: '3GiB', movable: '1GiB' }, { size: '1GiB' }],
      size: '950MiB',
      seeds: [1],
    });
    const r = await runShipped(s);
    const none = metricsOf(r, 'none');
    const pinned = metricsOf(r, 'mempinfd');
    const pins = pinned.extra.heap_prepared_pages;
    expect(pins).toBeGreaterThan(800);
    // Every pinned page moved out of ZONE_MOVABLE when it was pinned, and only those.
    expect(pinned.extra.pgmigrate_longterm_pin).toBe(pins);
    expect(pinned.extra.heap_pages_moved).toBe(pins);
    // ZONE_DMA32 has two ranges: 0 (kernel) never assembles, 1 still does despite p = 1/256.
    expect(ranges(none)).toEqual({ assembled: 1, byPin: 0, other: 1, total: 2 });
    expect(ranges(pinned).assembled).toBe(1);
  }, 30_000);

  const full = process.env.SVASIM_FULL_EXPERIMENTS === '1' ? it : it.skip;
  full(
    'full sweep (SVASIM_FULL_EXPERIMENTS=1): measured against (1 - p)^262144',
    async () => {
      const rows: string[] = ['p | pins (mean) | heap ranges assembled | measured | analytic'];
      for (const p of [0, 1e-6, 2.6e-6, 4e-6, 1e-5, 1 / 256]) {
        const r = await runShipped(variant('05-1g-assembly.yaml', p, { strategies: ['mempinfd'] }));
        let assembled = 0;
        let heapRanges = 0;
        let pins = 0;
        for (const run of r.runs) {
          const m = run.metrics!;
          assembled += m.hugepage_1g_assembled ?? 0;
          heapRanges += (m.extra.hugepage_1g_ranges ?? 0) - 1; // range 0 is the kernel's
          pins += m.extra.heap_prepared_pages ?? 0;
        }
        const analytic = (1 - p) ** RANGE_PAGES;
        rows.push(
          `${p} | ${(pins / r.runs.length).toFixed(1)} | ${assembled}/${heapRanges} | ${(assembled / heapRanges).toFixed(3)} | ${analytic.toPrecision(3)}`,
        );
      }
      process.stdout.write(`${rows.join('\n')}\n`);
    },
    600_000,
  );
});
