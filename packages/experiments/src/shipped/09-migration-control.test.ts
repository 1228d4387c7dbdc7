/**
 * Shipped experiment 9 (scenarios/09-migration-control.yaml, 09-system-wide.yaml): the
 * system-wide alternative of the mempinfd review (mlock + vm.compact_unevictable_allowed=0 + NUMA
 * balancing off) against per-process migration control. Both keep the device's pages in place;
 * only the system-wide settings also stop compaction and NUMA balancing for an unrelated mlocked
 * process. The tests run each file with one seed instead of three ('none' of the per-process file
 * left out).
 */
import { describe, expect, it } from '@jest/globals';
import { loadShipped, metricsOf, runShipped } from '../test-support/shipped-scenarios';

/** The unrelated process's pages (100 MiB). */
const DB_PAGES = (100 * 2 ** 20) / 4096;

describe('shipped experiment 9: system-wide knobs against per-process migration control', () => {
  it('both keep the device from faulting; only per-process control leaves the rest of the system alone', async () => {
    const perProcess = await runShipped(
      loadShipped('09-migration-control.yaml', { seeds: [1], strategies: ['mlock', 'migration-control'] }),
    );
    const systemWide = await runShipped(loadShipped('09-system-wide.yaml', { seeds: [1] }));
    const pp = (s: string) => metricsOf(perProcess, s);
    const sw = (s: string) => metricsOf(systemWide, s);
    for (const m of [pp('mlock'), pp('migration-control'), sw('none'), sw('mlock')]) {
      expect(m.data_mismatch).toBe(0);
      expect(m.dma_errors).toBe(0);
    }
    // Default sysctls: compaction and NUMA balancing move mlocked buffers (mlock is not a pin).
    expect(pp('mlock').iopf_count).toBeGreaterThan(0);
    // Either way of keeping the buffers in place works for the device.
    expect(pp('migration-control').iopf_count).toBe(0);
    expect(sw('mlock').iopf_count).toBe(0);
    // The knobs alone do not protect buffers that are not mlocked (compaction still moves them).
    expect(sw('none').iopf_count).toBeGreaterThan(0);

    // The unrelated mlocked db: compacted and NUMA-balanced after its process under per-process
    // control, left where it was by the system-wide settings.
    const mc = pp('migration-control');
    expect(mc.extra.db_pages_moved).toBe(DB_PAGES);
    expect(mc.extra.db_numa_local).toBe(1);
    expect(mc.extra.pgmigrate_compaction).toBeGreaterThan(0);
    expect(mc.extra.pgmigrate_numa_misplaced).toBeGreaterThanOrEqual(DB_PAGES);
    const wide = sw('mlock');
    expect(wide.extra.db_pages_moved).toBe(0);
    expect(wide.extra.db_numa_local).toBe(0);
    expect(wide.migrate_success).toBe(0);
    // ... and node 0 keeps db's scattered pages, so fewer 2 MiB pages can be assembled there.
    expect(mc.hugepage_2m_assembled).toBe(50);
    expect(wide.hugepage_2m_assembled!).toBeLessThan(35);
  }, 30_000);
});
