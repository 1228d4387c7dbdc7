import { beforeAll, describe, expect, it } from '@jest/globals';
import { runExperiment, type ExperimentResult } from '../runner';
import { validateScenario } from '../scenario';
import { testRegistry } from '../test-support/strategies';
import { experimentJson } from './json';
import { comparisonTable } from './table';
import { chromeTrace, type TraceEvent } from './trace';
import { escapeXml, logTicks, niceTicks } from './svg';
import { htmlReport, REPORT_CHARTS } from './html';

const registry = testRegistry();
let result: ExperimentResult;

beforeAll(async () => {
  const s = validateScenario(
    {
      name: 'report',
      description: 'two strategies <on> the copy device',
      machine: { memory: { nodes: [{ size: '128MiB' }] } },
      devices: [{ name: 'memcpy_accel' }],
      processes: [
        { name: 'app', workload: { kind: 'memcpy', requestSize: '16KiB', inflight: 3, buffers: 'fresh' } },
      ],
      duration: '1ms',
      seeds: 2,
      strategies: ['none', 'longterm-pin'],
    },
    'report',
    registry,
  );
  result = await runExperiment(s, { registry, progress: false, trace: true });
});

describe('comparisonTable', () => {
  it('has a column per strategy and the application and system rows that apply', () => {
    const t = comparisonTable(result);
    const lines = t.split('\n');
    expect(lines[0]).toBe('report: 2 strategies x 2 seeds, 1 ms simulated each');
    expect(lines[1]).toMatch(/^\s+none\s+longterm-pin$/);
    expect(t).toMatch(
      /\[application\][\s\S]*DMA latency p99[\s\S]*IO page faults[\s\S]*\[system\][\s\S]*pinned \(peak\)/,
    );
    expect(t).not.toMatch(/CMA alloc/); // no CMA activity in this scenario
    const pinnedRow = lines.find((l) => l.includes('pinned (peak)'))!;
    expect(pinnedRow).toMatch(/0 B\s+\d+(\.\d+)? KiB$/);
  });
});

describe('experimentJson', () => {
  it('lists the aggregate of each strategy first, then every run with its seed', () => {
    const doc = JSON.parse(JSON.stringify(experimentJson(result))) as ReturnType<typeof experimentJson>;
    expect(doc).toMatchObject({
      scenario: 'report',
      seeds: [1, 2],
      strategies: ['none', 'longterm-pin'],
      durationNs: 1e6,
    });
    expect(doc.results.map((r) => `${r.strategy}${r.seed === undefined ? '' : `/${r.seed}`}`)).toEqual([
      'none',
      'longterm-pin',
      'none/1',
      'none/2',
      'longterm-pin/1',
      'longterm-pin/2',
    ]);
    const none = doc.results.find((r) => r.strategy === 'none')!;
    expect(none).toMatchObject({ runs: 2, failed: 0 });
    expect(Object.keys(none.metrics!.dma_latency_ns!)).toEqual([
      'p50',
      'p99',
      'p999',
      'max',
      'count',
      'mean',
    ]);
    for (const key of [
      'throughput_bytes_per_s',
      'iopf_count',
      'pinned_bytes',
      'cma_alloc_success_rate',
      'thp_coverage',
      'hugepage_1g_assembled',
      'migrate_fail',
    ])
      expect(none.metrics).toHaveProperty(key);
    expect(none.unavailable!.cma_alloc_success_rate).toMatch(/no CMA/);
    expect(doc.results[2].series).toBeUndefined();
    expect(experimentJson(result, { series: true }).results[2].series!.t.length).toBe(200);
  });
});

describe('chromeTrace', () => {
  it('parses, has a track per CPU, IOMMU queue and device queue, and never overlaps slices on a track', () => {
    const doc = JSON.parse(JSON.stringify(chromeTrace(result))) as {
      traceEvents: TraceEvent[];
      displayTimeUnit: string;
      otherData: { runs: string[] };
    };
    expect(doc.displayTimeUnit).toBe('ns');
    expect(doc.otherData.runs).toEqual(['none seed 1', 'longterm-pin seed 1']);
    const threads = doc.traceEvents
      .filter((e) => e.ph === 'M' && e.name === 'thread_name')
      .map((e) => `${e.pid} ${(e.args as { name: string }).name}`);
    for (const cpu of [0, 1, 2, 3]) expect(threads).toContain(`1 CPU ${cpu}`);
    expect(threads).toContain('2 iommu smmu PRI queue');
    expect(threads).toContain('3 memcpy_accel-0 q0');
    expect(threads).toContain('13 memcpy_accel-0 q0');
    const procs = doc.traceEvents
      .filter((e) => e.name === 'process_name')
      .map((e) => (e.args as { name: string }).name);
    expect(procs).toContain('none seed 1: IOMMU');
    const slices = doc.traceEvents.filter((e) => e.ph === 'X');
    expect(slices.some((e) => e.cat === 'cpu')).toBe(true);
    expect(slices.some((e) => e.cat === 'iopf')).toBe(true);
    expect(slices.filter((e) => e.cat === 'dma').length).toBe(
      result.runs[0].metrics!.dma_requests + result.runs[2].metrics!.dma_requests,
    );
    // ns precision in µs: page faults land between whole microseconds.
    expect(slices.some((e) => !Number.isInteger(e.ts))).toBe(true);
    const byTrack = new Map<string, TraceEvent[]>();
    for (const e of slices)
      byTrack.set(`${e.pid}/${e.tid}`, [...(byTrack.get(`${e.pid}/${e.tid}`) ?? []), e]);
    for (const list of byTrack.values()) {
      list.sort((a, b) => a.ts! - b.ts!);
      for (let i = 1; i < list.length; i++)
        expect(list[i].ts!).toBeGreaterThanOrEqual(list[i - 1].ts! + list[i - 1].dur! - 1e-9);
    }
    const named = new Set(
      doc.traceEvents.filter((e) => e.name === 'thread_name').map((e) => `${e.pid}/${e.tid}`),
    );
    for (const key of byTrack.keys()) expect(named.has(key)).toBe(true);
    expect(doc.traceEvents.some((e) => e.ph === 'C' && e.name === 'IO page faults')).toBe(true);
    // Metadata comes first.
    const firstOther = doc.traceEvents.findIndex((e) => e.ph !== 'M');
    expect(doc.traceEvents.slice(firstOther).some((e) => e.ph === 'M')).toBe(false);
  });

  it('keeps at most maxEvents and says how many were dropped', async () => {
    const r = await runExperiment(result.scenario, {
      registry,
      progress: false,
      strategies: ['none'],
      seeds: 1,
      trace: { maxEvents: 10 },
    });
    const t = r.runs[0].trace!;
    expect(t.cpuWork.cpu.length + t.slices.length + t.instants.length).toBe(10);
    expect(t.dropped).toBeGreaterThan(0);
    expect(chromeTrace(r).otherData.droppedEvents).toBe(t.dropped);
  });
});

describe('SVG helpers and the HTML document', () => {
  it('makes round ticks and escapes text', () => {
    expect(niceTicks(0, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(logTicks(1000, 1e6)).toEqual([1e3, 1e4, 1e5, 1e6]);
    expect(logTicks(100, 1000)).toEqual([100, 200, 500, 1000]);
    expect(escapeXml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
  });

  it('is one self-contained document with every chart', () => {
    const html = htmlReport(result);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    for (const id of REPORT_CHARTS) expect(html).toContain(`id="${id}"`);
    expect(html).toContain('two strategies &lt;on&gt; the copy device');
  });
});
