import { describe, expect, it } from '@jest/globals';
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  MADV_NOHUGEPAGE,
  PAGE_SIZE,
  createKernel,
  pinUserPages,
  setProcessNode,
  unpinUserPages,
} from '@svasim/kernel';
import { MetricsCollector } from './collector';
import { numaLocalFraction, pinnedBytes, thpCoverage } from './kernel-probes';

const MiB = 2 ** 20;

describe('kernel probes', () => {
  it('pinned bytes follow FOLL_PIN pins', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
    const p = k.spawn();
    const a = p.mmap(64 * PAGE_SIZE);
    const pages: number[] = [];
    expect(pinUserPages(p.mm, a, 64, FOLL_WRITE | FOLL_LONGTERM, pages)).toBe(64);
    expect(pinnedBytes(k)).toBe(64 * PAGE_SIZE);
    unpinUserPages(k.mmCore, pages, 64);
    expect(pinnedBytes(k)).toBe(0);
  });

  it('THP coverage is the share of anonymous memory mapped by 2 MiB PMDs', () => {
    const k = createKernel({
      memory: { nodes: [{ size: '128MiB' }] },
      sysctl: { transparent_hugepage: 'always' },
    });
    const p = k.spawn();
    expect(thpCoverage(k, [p])).toBeNull();
    const huge = p.mmap(4 * MiB);
    p.touch(huge, 4 * MiB, { write: true });
    expect(thpCoverage(k, [p])).toBe(1);
    const small = p.mmap(4 * MiB);
    p.madvise(small, 4 * MiB, MADV_NOHUGEPAGE);
    p.touch(small, 4 * MiB, { write: true });
    expect(thpCoverage(k, [p])).toBe(0.5);
  });

  it('NUMA-local fraction compares page placement with the node the process runs on', () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }, { size: '128MiB' }] } });
    const p = k.spawn({ node: 0 });
    const a = p.mmap(MiB);
    p.touch(a, MiB, { write: true });
    expect(numaLocalFraction(k, [p])).toBe(1);
    setProcessNode(p.mm, 1);
    expect(numaLocalFraction(k, [p])).toBe(0);
  });
});

describe('MetricsCollector', () => {
  it('samples every period, counts deltas from begin() and summarises requests', async () => {
    const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] } });
    const p = k.spawn();
    p.touch(p.mmap(MiB), MiB, { write: true }); // before begin: not counted
    const c = new MetricsCollector(k, { sampleEveryNs: 1e6 });
    c.watch(p);
    c.begin();
    const b = p.mmap(16 * PAGE_SIZE);
    p.madvise(b, 16 * PAGE_SIZE, MADV_NOHUGEPAGE);
    p.touch(b, 16 * PAGE_SIZE, { write: true });
    const pages: number[] = [];
    pinUserPages(p.mm, b, 16, FOLL_WRITE, pages);
    c.recordRequest(0, 1500, 4096);
    c.recordRequest(0, 2500, 4096);
    c.recordRequest(-14, 0, 0);
    c.recordHugepage('1GiB', false);
    c.count('forks', 3);
    await k.runFor(10e6);
    unpinUserPages(k.mmCore, pages, 16);
    c.observe();
    const r = c.finish();
    expect(r.series.t).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 1e6));
    expect(r.series.pinned_bytes[0]).toBe(16 * PAGE_SIZE);
    expect(r.metrics.cpu_fault_count).toBe(16);
    expect(r.metrics).toMatchObject({
      dma_requests: 2,
      dma_errors: 1,
      dma_bytes: 8192,
      throughput_bytes_per_s: 8192 * 100,
      pinned_bytes: { peak: 16 * PAGE_SIZE, end: 0 },
      hugepage_1g_assembled: 0,
      hugepage_2m_assembled: null,
      hugepage_failed: 1,
      cma_alloc_success_rate: null,
      thp_coverage: 0,
      extra: { forks: 3 },
    });
    expect(r.metrics.dma_latency_ns).toMatchObject({ count: 2, max: 2500 });
    expect(r.unavailable.cma_alloc_success_rate).toMatch(/no CMA allocation/);
    expect(r.unavailable.hugepage_2m_assembled).toBeDefined();
    expect(r.dmaLatencyHistogram).not.toBe('');
  });

  it('refuses a period that is not positive', () => {
    const k = createKernel({ memory: { nodes: [{ size: '64MiB' }] } });
    expect(() => new MetricsCollector(k, { sampleEveryNs: 0 })).toThrow(RangeError);
  });
});
