/**
 * Shipped experiment 6 (scenarios/06-fork-cow*.yaml): fork with prepared DMA buffers, early COW
 * against legacy COW, with an SVA device (faults) and without (vfio's IOVA mappings: data).
 * The tests run 20 ms (three forks) with one seed instead of 50 ms with three.
 */
import { describe, expect, it } from '@jest/globals';
import type { RunMetrics } from '../metrics';
import { loadShipped, metricsOf, runShipped } from '../test-support/shipped-scenarios';

/** Pages of the 4 buffer pairs: 64 sources and 64 destinations of 64 KiB. */
const SRC_PAGES = 64;
const DST_PAGES = 64;

async function run(file: string): Promise<(strategy: string) => RunMetrics> {
  const r = await runShipped(loadShipped(file, { duration: '20ms', seeds: [1] }));
  return (strategy) => metricsOf(r, strategy);
}

describe('shipped experiment 6: fork with pinned buffers, early against legacy COW', () => {
  it('early COW: the child gets copies of the pinned pages, the parent keeps them (no IO page fault)', async () => {
    const m = await run('06-fork-cow.yaml');
    for (const name of ['mempinfd', 'vfio']) {
      const x = m(name);
      const forks = x.extra.forks;
      expect(forks).toBe(3);
      expect({ name, iopf: x.iopf_count, mismatch: x.data_mismatch }).toEqual({ name, iopf: 0, mismatch: 0 });
      // Every pinned page (sources and destinations) is copied for the child at every fork.
      expect(x.extra.fork_pages_copied).toBe(forks * (SRC_PAGES + DST_PAGES));
    }
    // Nothing pinned: shared copy-on-write, so the device's next write to each destination page
    // faults (none also faults once on each destination before the first fork: never touched).
    for (const name of ['mlock', 'short-term', 'none']) {
      const x = m(name);
      const first = name === 'none' ? DST_PAGES : 0;
      expect({
        name,
        iopf: x.iopf_count,
        copied: x.extra.fork_pages_copied,
        mismatch: x.data_mismatch,
      }).toEqual({
        name,
        iopf: first + x.extra.forks * DST_PAGES,
        copied: 0,
        mismatch: 0,
      });
    }
  }, 30_000);

  it('legacy COW: the pinned pages are shared too; with SVA the device follows the parent and faults', async () => {
    const m = await run('06-fork-cow-legacy.yaml');
    for (const name of ['mempinfd', 'vfio', 'mlock', 'short-term']) {
      const x = m(name);
      expect({
        name,
        iopf: x.iopf_count,
        copied: x.extra.fork_pages_copied,
        mismatch: x.data_mismatch,
      }).toEqual({
        name,
        iopf: x.extra.forks * DST_PAGES,
        copied: 0,
        mismatch: 0,
      });
    }
    // The pins are still held - on the pages the parent left behind at its first write.
    expect(m('mempinfd').pinned_bytes.end).toBe((SRC_PAGES + DST_PAGES) * 4096);
  }, 30_000);

  it('without SVA (vfio IOVA): early COW keeps the data right; legacy COW makes the device use stale pages', async () => {
    const early = (await run('06-fork-cow-iova.yaml'))('vfio');
    expect(early.iopf_count).toBe(0);
    expect(early.data_mismatch).toBe(0);
    expect(early.extra.fork_pages_copied).toBe(early.extra.forks * (SRC_PAGES + DST_PAGES));
    const legacy = (await run('06-fork-cow-iova-legacy.yaml'))('vfio');
    expect(legacy.iopf_count).toBe(0);
    expect(legacy.dma_errors).toBe(0);
    expect(legacy.extra.fork_pages_copied).toBe(0);
    // Nothing fails and nothing faults, but after the first fork (at 5 of 20 ms) the device reads
    // the sources the parent no longer writes: most copies carry a stale stamp.
    expect(legacy.data_mismatch).toBeGreaterThan(0.5 * legacy.extra.verified);
  }, 30_000);
});
