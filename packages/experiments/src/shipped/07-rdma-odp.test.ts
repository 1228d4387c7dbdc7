/**
 * Shipped experiment 7 (scenarios/07-rdma-odp.yaml): RDMA registration against On-Demand Paging
 * with a 10% working set (seeds/004). A pinned registration (mempinfd) makes the whole region
 * resident and pinned before the first write and never faults; ODP pins nothing and keeps only
 * the working set resident, paying with IO page faults on first touch and a latency tail. The
 * memcpy device stands in for the RDMA NIC. A shortened run (60 ms, one seed), then the
 * overcommit case the thread names: a region larger than the machine registers only with ODP.
 */
import { describe, expect, it } from '@jest/globals';
import { runExperiment } from '../runner';
import { validateScenario } from '../scenario';
import { loadShipped, metricsOf, runShipped, shippedRegistry } from '../test-support/shipped-scenarios';

const MiB = 2 ** 20;
const REGION = 128 * MiB;

describe('shipped experiment 7: RDMA registration against ODP', () => {
  it('ODP keeps a tenth of the region resident and nothing pinned; the pinned registration holds it all and never faults', async () => {
    const r = await runShipped(loadShipped('07-rdma-odp.yaml', { duration: '60ms', seeds: 1 }));
    const pinned = metricsOf(r, 'mempinfd');
    const odp = metricsOf(r, 'odp');
    const none = metricsOf(r, 'none');
    for (const m of [pinned, odp, none]) {
      expect(m.dma_requests).toBeGreaterThan(1500);
      expect(m.dma_errors).toBe(0);
      expect(m.data_mismatch).toBe(0);
      expect(m.extra.region_bytes).toBe(REGION);
    }
    const ws = odp.extra.working_set_bytes;
    expect(ws).toBeCloseTo(REGION / 10, -5);
    // Memory: everything resident and pinned against only (part of) the working set, unpinned.
    expect(pinned.pinned_bytes.peak).toBeGreaterThanOrEqual(REGION);
    expect(pinned.extra.resident_bytes).toBeGreaterThanOrEqual(REGION);
    expect(odp.pinned_bytes.peak).toBe(0);
    expect(odp.locked_bytes.peak).toBe(0);
    expect(odp.extra.resident_bytes).toBeLessThanOrEqual(ws + MiB);
    expect(odp.extra.resident_bytes).toBeLessThan(pinned.extra.resident_bytes / 8);
    // Registration: pinning faults in and pins 32,768 pages; ODP only walks the page table.
    expect(pinned.extra.registration_cpu_ns).toBeGreaterThan(20 * odp.extra.registration_cpu_ns);
    // Latency: no faults at all against a first-touch fault on most of the working set.
    expect(pinned.iopf_count).toBe(0);
    expect(pinned.extra.faulting_requests).toBe(0);
    expect(odp.iopf_count).toBeGreaterThan(ws / 4096 / 4);
    expect(odp.extra.faulting_requests).toBeGreaterThan(0);
    expect(odp.iopf_response_ns!.p50).toBeGreaterThan(10_000);
    expect(odp.dma_latency_ns!.p99).toBeGreaterThan(5 * pinned.dma_latency_ns!.p99);
    expect(odp.dma_latency_ns!.max).toBeGreaterThan(pinned.dma_latency_ns!.max);
    // Compaction moves ODP's working set (the notifier lets it go) and cannot touch the pins.
    expect(odp.migrate_success).toBeGreaterThan(0);
    expect(pinned.migrate_success).toBe(0);
    // ODP costs what plain SVA costs (same faults, same memory): the notifier adds nothing.
    expect(odp.iopf_count).toBeGreaterThan(none.iopf_count * 0.9);
    expect(odp.iopf_count).toBeLessThan(none.iopf_count * 1.1);
  }, 30_000);

  it('a region twice the size of the machine: the pinned registration fails with ENOMEM, ODP serves it', async () => {
    const s = loadShipped('07-rdma-odp.yaml');
    const w = s.processes[0].workload;
    const big = validateScenario(
      {
        ...s,
        duration: '20ms',
        seeds: 1,
        strategies: ['mempinfd', 'odp'],
        background: [],
        processes: [{ ...s.processes[0], workload: { ...w, region: '1GiB', workingSetFraction: 0.05 } }],
      },
      '07-rdma-odp.yaml',
      shippedRegistry,
    );
    const r = await runExperiment(big, { registry: shippedRegistry, progress: false, workers: 0 });
    const [pinRun, odpRun] = ['mempinfd', 'odp'].map((name) => r.runs.find((x) => x.strategy === name)!);
    expect(pinRun.error).toMatchObject({ code: 'ENOMEM' }); // reported in the results, not thrown
    expect(odpRun.error).toBeUndefined();
    const m = odpRun.metrics!;
    expect(m.dma_requests).toBeGreaterThan(100);
    expect(m.data_mismatch).toBe(0);
    expect(m.extra.resident_bytes).toBeLessThan(64 * MiB);
  }, 30_000);
});
