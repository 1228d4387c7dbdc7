/**
 * Shipped experiment 1 (scenarios/01-iopf-vs-cpu-fault-<profile>.yaml): an IO page fault costs 3
 * to 80 times a CPU page fault (CALIBRATION.md section 1), under each IOMMU profile. One 4 KiB copy
 * at a time into a fresh destination: under 'none' each takes exactly one IO page fault, under
 * 'mlock' none; the difference of the median DMA latencies is the fault as the application sees
 * it, compared with the profile's CPU fault (the figure its sources compare with) and with the
 * simulated CPU fault itself.
 */
import { describe, expect, it } from '@jest/globals';
import { createKernel, iommuProfile } from '@svasim/kernel';
import { loadShipped, metricsOf, runShipped } from '../test-support/shipped-scenarios';

describe('shipped experiment 1: IO page fault against CPU fault', () => {
  it.each(['smmuv3', 'vtd', 'amd-iommuv2'])(
    '%s: an IO page fault costs 3-80x a CPU fault',
    async (profile) => {
      const s = loadShipped(`01-iopf-vs-cpu-fault-${profile}.yaml`);
      expect(s.iommu).toBe(profile);
      const r = await runShipped(s);
      const faulting = metricsOf(r, 'none');
      const populated = metricsOf(r, 'mlock');
      expect(faulting.dma_requests).toBe(400);
      expect(populated.dma_requests).toBe(400);
      expect(faulting.data_mismatch).toBe(0);
      expect(populated.data_mismatch).toBe(0);
      // One IO page fault per request, never two in flight; none once the CPU populated the page.
      expect(faulting.iopf_count).toBe(400);
      expect(populated.iopf_count).toBe(0);
      const iopfNs = faulting.dma_latency_ns!.p50 - populated.dma_latency_ns!.p50;
      const cpuFaultNs = iommuProfile(profile).cpuFaultNs;
      const ratio = iopfNs / cpuFaultNs;
      expect(ratio).toBeGreaterThanOrEqual(3);
      expect(ratio).toBeLessThanOrEqual(80);
      // Against the kernel's own simulated CPU fault too.
      const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
      const simulatedCpuFault = k.costs.minorFaultAnon;
      k.shutdown();
      expect(iopfNs / simulatedCpuFault).toBeGreaterThanOrEqual(3);
      expect(iopfNs / simulatedCpuFault).toBeLessThanOrEqual(80);
    },
  );

  it('the profiles keep their order: SMMUv3 stall faults cost most, AMD IOMMUv2 faults least', async () => {
    const cost: Record<string, number> = {};
    for (const profile of ['smmuv3', 'vtd', 'amd-iommuv2']) {
      const r = await runShipped(
        loadShipped(`01-iopf-vs-cpu-fault-${profile}.yaml`, { strategies: ['none'] }),
      );
      cost[profile] = metricsOf(r, 'none').iopf_response_ns!.p50;
    }
    expect(cost.smmuv3).toBeGreaterThan(cost.vtd);
    expect(cost.vtd).toBeGreaterThan(cost['amd-iommuv2']);
  });
});
