import { describe, expect, it } from '@jest/globals';
import { aggregateRuns } from './aggregate';
import { LatencyRecorder } from './latency';
import type { RunMetrics } from './types';

function metrics(over: Partial<RunMetrics>): RunMetrics {
  return {
    dma_latency_ns: null,
    dma_requests: 0,
    dma_errors: 0,
    dma_bytes: 0,
    throughput_bytes_per_s: 0,
    iopf_count: 0,
    iopf_cpu_ns: 0,
    iopf_response_ns: null,
    cpu_fault_count: 0,
    atc_hit_rate: null,
    iotlb_hit_rate: null,
    pinned_bytes: { peak: 0, end: 0 },
    locked_bytes: { peak: 0, end: 0 },
    cma_alloc_success_rate: null,
    cma_alloc_latency_ns: null,
    thp_coverage: null,
    hugepage_2m_assembled: null,
    hugepage_1g_assembled: null,
    hugepage_failed: null,
    migrate_success: 0,
    migrate_fail: 0,
    compact_stall: 0,
    numa_pages_migrated: 0,
    offline_success_rate: null,
    numa_local_fraction: null,
    overcommit_reached: 0,
    data_mismatch: 0,
    extra: {},
    ...over,
  };
}

describe('LatencyRecorder', () => {
  it('summarises integer ns to three significant digits', () => {
    const r = new LatencyRecorder();
    expect(r.summary()).toBeNull();
    for (let v = 1; v <= 100_000; v++) r.record(v * 10);
    const s = r.summary()!;
    expect(s.count).toBe(100_000);
    expect(Math.abs(s.p50 - 500_000) / 500_000).toBeLessThan(1e-3);
    expect(Math.abs(s.p99 - 990_000) / 990_000).toBeLessThan(1e-3);
    expect(Math.abs(s.p999 - 999_000) / 999_000).toBeLessThan(1e-3);
    expect(Math.abs(s.max - 1_000_000) / 1_000_000).toBeLessThan(1e-3);
    expect(s.mean).toBeCloseTo(500_005, -2);
    for (const k of ['p50', 'p99', 'p999', 'max', 'mean'] as const) expect(Number.isInteger(s[k])).toBe(true);
  });

  it('round-trips through its encoding and merges', () => {
    const a = new LatencyRecorder();
    const b = new LatencyRecorder();
    for (let i = 0; i < 1000; i++) a.record(1000 + i);
    for (let i = 0; i < 10; i++) b.record(5_000_000);
    const decoded = new LatencyRecorder(a.encode());
    expect({ ...decoded.summary(), mean: 0 }).toEqual({ ...a.summary(), mean: 0 });
    const merged = new LatencyRecorder(a.encode());
    merged.add(new LatencyRecorder(b.encode()));
    expect(merged.count).toBe(1010);
    expect(merged.summary()!.p50).toBe(1504);
    expect(merged.summary()!.p999).toBeGreaterThan(4_990_000);
  });

  it('gives a CDF that rises to 1 over increasing latencies', () => {
    const r = new LatencyRecorder();
    for (let i = 1; i <= 500; i++) r.record(i * i);
    const cdf = r.cdf();
    expect(cdf[cdf.length - 1][1]).toBe(1);
    for (let i = 1; i < cdf.length; i++) {
      expect(cdf[i][0]).toBeGreaterThan(cdf[i - 1][0]);
      expect(cdf[i][1]).toBeGreaterThan(cdf[i - 1][1]);
    }
    expect(new LatencyRecorder().cdf()).toEqual([]);
  });
});

describe('aggregateRuns', () => {
  it('averages numbers, merges latency histograms and keeps nulls where every run has none', () => {
    const h1 = new LatencyRecorder();
    const h2 = new LatencyRecorder();
    for (let i = 0; i < 100; i++) h1.record(1000);
    for (let i = 0; i < 100; i++) h2.record(3000);
    const runs = [
      {
        metrics: metrics({
          dma_latency_ns: h1.summary(),
          iopf_count: 10,
          cma_alloc_success_rate: 1,
          extra: { forks: 2 },
        }),
        dmaLatencyHistogram: h1.encode(),
        cmaLatencyHistogram: '',
      },
      {
        metrics: metrics({ dma_latency_ns: h2.summary(), iopf_count: 30, cma_alloc_success_rate: null }),
        dmaLatencyHistogram: h2.encode(),
        cmaLatencyHistogram: '',
      },
    ];
    const a = aggregateRuns(runs);
    expect(a.metrics.iopf_count).toBe(20);
    expect(a.metrics.cma_alloc_success_rate).toBe(1);
    expect(a.metrics.thp_coverage).toBeNull();
    expect(a.metrics.extra).toEqual({ forks: 1 });
    expect(a.metrics.dma_latency_ns).toMatchObject({ count: 200, mean: 2000, max: 3000 });
    expect(a.metrics.dma_latency_ns!.p50).toBe(1000);
    expect(a.metrics.dma_latency_ns!.p99).toBeGreaterThanOrEqual(2998);
    expect(a.dmaLatencyCdf[a.dmaLatencyCdf.length - 1][1]).toBe(1);
    expect(() => aggregateRuns([])).toThrow(RangeError);
  });
});
