/**
 * Shipped experiment 4 (scenarios/04-cma-vs-pins.yaml): "Should a CMA allocation fail because
 * another application is using SVA?" (seeds/001). Copy buffers lent from the CMA area, another
 * driver allocating 240 MiB of the 256 MiB area: CMA migrates unpinned (none), mlocked and
 * short-term-referenced pages away; FOLL_LONGTERM pins (mempinfd, vfio) moved their pages out of
 * CMA when they were taken, so CMA succeeds without migrating; a pin without FOLL_LONGTERM held
 * for the buffer's life (the experiment-only 'gup-pin') leaves its pages in the area and CMA fails.
 *
 * The test runs two allocations (180 ms instead of 520 ms, one seed, the application at a fixed
 * rate).
 */
import { describe, expect, it } from '@jest/globals';
import { defaultRegistry } from '../registry';
import { runExperiment } from '../runner';
import { EXPERIMENT_STRATEGIES } from '../strategies';
import { loadShipped, metricsOf } from '../test-support/shipped-scenarios';

describe('shipped experiment 4: CMA allocations against long-term and short-term pins', () => {
  it('CMA fails only for pins that stay in the area; FOLL_LONGTERM paid with a migration at pin time', async () => {
    const full = loadShipped('04-cma-vs-pins.yaml');
    // Fewer requests (20,000/s instead of as fast as the device goes) only to save wall time.
    const [app] = full.processes;
    if (app.workload.kind !== 'memcpy') throw new Error('the application is a memcpy workload');
    const s = loadShipped('04-cma-vs-pins.yaml', {
      duration: '180ms',
      seeds: [1],
      processes: [{ ...app, workload: { ...app.workload, rate: 20000 } }],
    });
    const registry = defaultRegistry({ strategies: EXPERIMENT_STRATEGIES });
    const r = await runExperiment(s, {
      registry,
      strategies: [...s.strategies, 'gup-pin'],
      progress: false,
      workers: 0,
    });
    for (const run of r.runs)
      expect({ strategy: run.strategy, error: run.error }).toEqual({
        strategy: run.strategy,
        error: undefined,
      });
    const m = (name: string) => metricsOf(r, name);
    for (const name of ['none', 'mlock', 'short-term', 'mempinfd', 'vfio', 'gup-pin']) {
      expect({ name, errors: m(name).dma_errors, mismatch: m(name).data_mismatch }).toEqual({
        name,
        errors: 0,
        mismatch: 0,
      });
      expect(m(name).dma_requests).toBeGreaterThan(100);
      expect({ name, tries: m(name).cma_alloc_latency_ns!.count }).toEqual({ name, tries: 2 });
    }
    // Nothing holds the pages: CMA migrates the application's buffers out of the window.
    for (const name of ['none', 'mlock', 'short-term']) {
      expect({ name, rate: m(name).cma_alloc_success_rate }).toEqual({ name, rate: 1 });
      expect(m(name).extra.pgmigrate_contig_range).toBeGreaterThan(4000);
      expect(m(name).extra.pgmigrate_longterm_pin ?? 0).toBe(0);
      // The first allocation pays for that migration: milliseconds.
      expect(m(name).cma_alloc_latency_ns!.max).toBeGreaterThan(5e6);
    }
    // mlock is not a pin, and the short-term reference's callback let the pages go without the
    // device faulting.
    expect(m('mlock').iopf_count).toBe(0);
    expect(m('short-term').iopf_count).toBe(0);
    expect(m('mlock').pinned_bytes.peak).toBe(0);
    // FOLL_LONGTERM: the pin moved the pages out of CMA first; CMA finds its area clean.
    for (const name of ['mempinfd', 'vfio']) {
      expect({ name, rate: m(name).cma_alloc_success_rate }).toEqual({ name, rate: 1 });
      expect(m(name).pinned_bytes.end).toBe(64 * 2 ** 20);
      expect(m(name).extra.pgmigrate_longterm_pin).toBeGreaterThan(4000);
      expect(m(name).extra.pgmigrate_contig_range ?? 0).toBe(0);
      expect(m(name).cma_alloc_latency_ns!.max).toBeLessThan(1e6);
    }
    // A pin without FOLL_LONGTERM stays where the page allocator put it: in the CMA area.
    expect(m('gup-pin').pinned_bytes.end).toBe(64 * 2 ** 20);
    expect(m('gup-pin').cma_alloc_success_rate).toBe(0);
    expect(m('gup-pin').migrate_success).toBe(0);
  }, 30_000);
});
