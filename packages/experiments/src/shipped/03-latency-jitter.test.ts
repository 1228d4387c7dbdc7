/**
 * Shipped experiment 3 (scenarios/03-latency-jitter.yaml): DMA latency jitter under THP,
 * compaction and NUMA balancing, per strategy. AES-CBC records from reused buffers at a fixed
 * rate: every IO page fault is memory moving under the device. Strategies that let pages move
 * (none, mlock, short-term) get a latency tail ten times their median; those that keep the
 * buffers where they are (mempinfd's pins, migration-control's switch, hugetlb-pool's huge pages)
 * keep the tail within a few microseconds of the median. Without the background activity nobody
 * has a tail. A shortened run (60 ms, one seed).
 */
import { describe, expect, it } from '@jest/globals';
import { loadShipped, metricsOf, runShipped } from '../test-support/shipped-scenarios';

/** Jitter: how far the 99th percentile is from the median. */
const jitter = (m: ReturnType<typeof metricsOf>) => m.dma_latency_ns!.p99 / m.dma_latency_ns!.p50;

describe('shipped experiment 3: DMA latency jitter', () => {
  it('pages that move give a latency tail; pinned, locked-in-place and hugetlb buffers do not', async () => {
    const r = await runShipped(loadShipped('03-latency-jitter.yaml', { duration: '60ms', seeds: 1 }));
    const moving = ['none', 'mlock', 'short-term'].map((s) => metricsOf(r, s));
    const still = ['mempinfd', 'migration-control', 'hugetlb-pool'].map((s) => metricsOf(r, s));
    for (const m of [...moving, ...still]) {
      expect(m.dma_requests).toBe(2400); // the fixed rate is kept: 40,000/s for 60 ms
      expect(m.data_mismatch).toBe(0);
      expect(m.extra.verified).toBeGreaterThan(0);
    }
    for (const m of moving) {
      expect(m.iopf_count).toBeGreaterThan(100);
      expect(m.migrate_success).toBeGreaterThan(100);
      expect(jitter(m)).toBeGreaterThan(5);
    }
    for (const m of still) {
      expect(m.iopf_count).toBe(0);
      expect(jitter(m)).toBeLessThan(1.5);
      expect(m.dma_latency_ns!.max).toBeLessThan(moving[0].dma_latency_ns!.p99);
    }
    // The medians are the same: the cost is all in the tail.
    for (const m of [...moving, ...still])
      expect(m.dma_latency_ns!.p50).toBe(metricsOf(r, 'none').dma_latency_ns!.p50);
  }, 30_000);

  it('the tail is the background activity: a quiet machine has none', async () => {
    const quiet = await runShipped(
      loadShipped('03-latency-jitter.yaml', {
        duration: '30ms',
        seeds: 1,
        background: [],
        strategies: ['none'],
      }),
    );
    const m = metricsOf(quiet, 'none');
    expect(m.iopf_count).toBe(0);
    expect(jitter(m)).toBeLessThan(1.5);
  });
});
