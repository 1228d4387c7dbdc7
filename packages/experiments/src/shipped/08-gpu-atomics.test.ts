/**
 * Shipped experiment 8 (scenarios/08-gpu-atomics.yaml): GPU atomics to system memory while
 * ZONE_MOVABLE goes offline (seeds/003). notifier-only lets the offline migrate the counters and
 * pays a fault storm on the next launch; the short-term reference lets it migrate them through
 * its callback and reinstates the mappings without a fault; FOLL_LONGTERM pins moved the pages
 * out of ZONE_MOVABLE at the first launch, so the offline never touches them, and they are
 * pinned for good; a pin without FOLL_LONGTERM (the experiment-only 'gup-pin') keeps them in
 * ZONE_MOVABLE and every offline fails. The test runs 60 ms, one seed, two offline attempts.
 */
import { describe, expect, it } from '@jest/globals';
import { defaultRegistry } from '../registry';
import { runExperiment } from '../runner';
import { EXPERIMENT_STRATEGIES } from '../strategies';
import { loadShipped, metricsOf } from '../test-support/shipped-scenarios';

const PAGES = 256; // 1 MiB of counters
const FAULT_NS = 16_000;

describe('shipped experiment 8: GPU atomics against ZONE_MOVABLE offline', () => {
  it('long-term pin against short-term reference against notifier-only, and a pin kept in ZONE_MOVABLE', async () => {
    const [offline] = loadShipped('08-gpu-atomics.yaml').background;
    if (offline.kind !== 'memory-offline')
      throw new Error('08-gpu-atomics.yaml: expected a memory-offline background');
    const s = loadShipped('08-gpu-atomics.yaml', {
      duration: '60ms',
      seeds: [1],
      background: [{ ...offline, count: 2 }],
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
    for (const name of ['none', 'short-term', 'mempinfd', 'gup-pin']) {
      const x = m(name);
      // Every counter holds exactly what the GPU and the CPU added, whatever moved meanwhile.
      expect({ name, mismatch: x.data_mismatch, errors: x.dma_errors }).toEqual({
        name,
        mismatch: 0,
        errors: 0,
      });
      expect(x.extra.gpu_launches).toBeGreaterThan(40);
      expect(x.extra.gpu_atomics).toBe(x.extra.gpu_launches * 1024);
      expect(x.extra.gpu_host_touches).toBeGreaterThan(20);
      // The first launch faults every page in, in every mode.
      expect(x.extra.gpu_launch_ns_max).toBeGreaterThan(PAGES * FAULT_NS);
    }
    // notifier-only: the offline migrated the counters; the migration revoked the GPU, whose
    // next launch faulted all of them in again.
    const none = m('none');
    expect(none.offline_success_rate).toBe(1);
    expect(none.extra.pgmigrate_memory_hotplug).toBe(PAGES);
    expect(none.extra.gpu_revocations_migration).toBe(PAGES);
    expect(none.extra.gpu_held_pages).toBe(0);
    expect(none.pinned_bytes.peak).toBe(0);
    expect(none.extra.gpu_launch_ns_max_warm).toBeGreaterThan(PAGES * FAULT_NS);
    // short-term: the same migration went through the callback; the driver reinstated the
    // mappings before the next launch, which took no fault storm.
    const st = m('short-term');
    expect(st.offline_success_rate).toBe(1);
    expect(st.extra.pgmigrate_memory_hotplug).toBe(PAGES);
    expect(st.extra.gpu_callback_revokes).toBe(PAGES);
    expect(st.extra.gpu_reinstates).toBe(PAGES);
    expect(st.extra.gpu_revocations_migration).toBe(0);
    expect(st.pinned_bytes.peak).toBe(0);
    expect(st.extra.gpu_launch_ns_max_warm).toBeLessThan(none.extra.gpu_launch_ns_max_warm / 3);
    expect(st.extra.gpu_faults).toBe(none.extra.gpu_faults - PAGES);
    // longterm-pin (mempinfd): pinning moved the counters out of ZONE_MOVABLE at the first
    // launch; the offline migrates nothing of theirs, the GPU never notices, and 1 MiB stays pinned.
    const lt = m('mempinfd');
    expect(lt.offline_success_rate).toBe(1);
    expect(lt.extra.pgmigrate_longterm_pin).toBe(PAGES);
    expect(lt.extra.pgmigrate_memory_hotplug ?? 0).toBe(0);
    expect(lt.extra.gpu_revocations_migration).toBe(0);
    expect(lt.pinned_bytes.end).toBe(PAGES * 4096);
    expect(lt.extra.gpu_launch_ns_max_warm).toBeLessThan(none.extra.gpu_launch_ns_max_warm / 3);
    // A pin that stays in ZONE_MOVABLE: every offline attempt times out.
    const gp = m('gup-pin');
    expect(gp.offline_success_rate).toBe(0);
    expect(gp.extra.offline_errno_110).toBe(2);
    expect(gp.pinned_bytes.end).toBe(PAGES * 4096);
  }, 30_000);

  it('is deterministic: the same seed gives the same results', async () => {
    const s = loadShipped('08-gpu-atomics.yaml', {
      duration: '25ms',
      seeds: [3],
      strategies: ['short-term'],
    });
    const run = async () =>
      (await runExperiment(s, { registry: defaultRegistry(), progress: false, workers: 0 })).runs[0].metrics;
    expect(await run()).toEqual(await run());
  }, 30_000);
});
