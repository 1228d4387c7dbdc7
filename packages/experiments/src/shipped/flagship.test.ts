/**
 * The flagship experiment (scenarios/flagship.yaml, what `npm start` runs): the same nginx-like
 * gzip offload under each strategy, side by side. Its qualitative result, on a shortened run
 * (60 ms instead of 100, one seed; the scheduler still moves the server at 50 ms):
 * - the application: the pinning strategies take fewer IO page faults than none (mempinfd and
 *   migration-control none at all) and have a shorter DMA latency tail;
 * - the system: what they keep from faulting is memory that cannot move (mempinfd pins the
 *   working set, NUMA balancing migrates nothing of it after the server moved), mlock breaks the
 *   pool's huge pages; long-term pins evacuate the CMA area at pin time, so CMA allocations
 *   still succeed (and faster);
 * - every run is deterministic.
 */
import { describe, expect, it } from '@jest/globals';
import { runOne } from '../runner';
import {
  comparable,
  loadShipped,
  metricsOf,
  runShipped,
  shippedRegistry,
} from '../test-support/shipped-scenarios';

const MiB = 2 ** 20;

describe('shipped experiment: the flagship', () => {
  it('pinning trades IO page faults for memory that cannot move; runs are deterministic', async () => {
    const s = loadShipped('flagship.yaml', { duration: '60ms', seeds: 1 });
    expect(s.strategies).toEqual(['none', 'mlock', 'short-term', 'mempinfd', 'migration-control']);
    const r = await runShipped(s);
    const none = metricsOf(r, 'none');
    const mlock = metricsOf(r, 'mlock');
    const short = metricsOf(r, 'short-term');
    const pinfd = metricsOf(r, 'mempinfd');
    const migctl = metricsOf(r, 'migration-control');
    const all = [none, mlock, short, pinfd, migctl];
    for (const m of all) {
      expect(m.dma_requests).toBeGreaterThan(1000);
      expect(m.dma_errors).toBe(0);
      expect(m.data_mismatch).toBe(0);
      expect(m.extra.verified).toBeGreaterThan(50); // real gzip output inflated back
    }
    // The application: fewer IO page faults, a shorter tail, more throughput.
    for (const m of [mlock, short, pinfd, migctl]) {
      expect(m.iopf_count).toBeLessThan(none.iopf_count / 5);
      expect(m.dma_latency_ns!.p99).toBeLessThan(none.dma_latency_ns!.p99);
      expect(m.throughput_bytes_per_s).toBeGreaterThan(none.throughput_bytes_per_s);
    }
    expect(none.iopf_count).toBeGreaterThan(1000);
    expect(mlock.iopf_count).toBeGreaterThan(0); // mlocked pages still migrate (and fault)
    expect(pinfd.iopf_count).toBe(0);
    expect(migctl.iopf_count).toBe(0);
    expect(pinfd.dma_latency_ns!.p99).toBeLessThan(none.dma_latency_ns!.p99 / 2);
    // The system: pinned and locked memory...
    expect(pinfd.pinned_bytes.peak).toBeGreaterThanOrEqual(8 * MiB);
    for (const m of [none, mlock, short, migctl]) expect(m.pinned_bytes.peak).toBe(0);
    expect(mlock.locked_bytes.peak).toBeGreaterThanOrEqual(8 * MiB);
    expect(migctl.locked_bytes.peak).toBeGreaterThanOrEqual(8 * MiB);
    // ...that NUMA balancing cannot move after the server moved to node 1...
    expect(none.extra.numa_moves).toBe(1);
    expect(none.numa_pages_migrated).toBeGreaterThan(100);
    expect(mlock.numa_pages_migrated).toBeGreaterThan(100);
    expect(pinfd.numa_pages_migrated).toBe(0);
    expect(migctl.numa_pages_migrated).toBe(0);
    expect(pinfd.numa_local_fraction!).toBeLessThan(none.numa_local_fraction!);
    // ...huge pages: mlock of each buffer splits the pool's THPs...
    expect(none.thp_coverage!).toBeGreaterThan(0.5);
    expect(mlock.thp_coverage).toBe(0);
    // ...and CMA: FOLL_LONGTERM moved the pinned pages out of the area, so nothing is lost there.
    for (const m of all) expect(m.cma_alloc_success_rate).toBe(1);
    expect(pinfd.cma_alloc_latency_ns!.p99).toBeLessThan(none.cma_alloc_latency_ns!.p99 / 4);
    // Deterministic: the same strategy and seed again gives the same run.
    const first = r.runs.find((x) => x.strategy === 'mempinfd')!;
    const again = await runOne(s, first.strategy, first.seed, shippedRegistry);
    expect(comparable(again)).toEqual(comparable(first));
  }, 30_000);
});
