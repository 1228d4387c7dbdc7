import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCaptured } from './test-io';

let tmp: string;

const TINY = `name: tiny
description: two copies at a time, fresh buffers
machine:
  memory:
    nodes:
      - { size: 128MiB }
devices:
  - name: memcpy_accel
processes:
  - name: app
    workload: { kind: memcpy, requestSize: 16KiB, inflight: 2, buffers: fresh, verify: true }
duration: 2ms
strategies: [none, mempinfd]
`;

const API_METRICS = [
  'dma_latency_ns',
  'throughput_bytes_per_s',
  'iopf_count',
  'pinned_bytes',
  'cma_alloc_success_rate',
  'thp_coverage',
  'hugepage_1g_assembled',
  'migrate_fail',
];

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'svasim-run-'));
  writeFileSync(join(tmp, 'tiny.yaml'), TINY);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (argv: string[], env: Record<string, string> = {}) => runCaptured(argv, tmp, env);

describe('svasim run', () => {
  it('--json prints exactly one JSON document of API.md shape, and writes the reports', async () => {
    const r = await run(['run', 'tiny.yaml', '--json', '--seeds', '2', '--out', 'out-json']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const doc = JSON.parse(r.out) as {
      scenario: string;
      seeds: number[];
      strategies: string[];
      results: Array<{ strategy: string; seed?: number; runs?: number; metrics: Record<string, unknown> }>;
    };
    expect(doc.scenario).toBe('tiny');
    expect(doc.seeds).toEqual([1, 2]);
    expect(doc.strategies).toEqual(['none', 'mempinfd']);
    expect(doc.results.map((x) => `${x.strategy}/${x.seed ?? 'all'}`)).toEqual([
      'none/all',
      'mempinfd/all',
      'none/1',
      'none/2',
      'mempinfd/1',
      'mempinfd/2',
    ]);
    for (const res of doc.results) {
      for (const name of API_METRICS) expect(res.metrics).toHaveProperty(name);
      expect(Object.keys(res.metrics.dma_latency_ns as object)).toEqual(
        expect.arrayContaining(['p50', 'p99', 'p999', 'max']),
      );
    }
    const none = doc.results[0].metrics;
    const pinned = doc.results[1].metrics;
    expect(none.iopf_count as number).toBeGreaterThan(0);
    expect(pinned.iopf_count).toBe(0);
    expect((pinned.pinned_bytes as { peak: number }).peak).toBeGreaterThan(0);
    expect(readdirSync(join(tmp, 'out-json')).sort()).toEqual(['report.html', 'results.json']);
    expect(readFileSync(join(tmp, 'out-json', 'report.html'), 'utf8')).toMatch(/^<!DOCTYPE html>/i);
    const full = JSON.parse(readFileSync(join(tmp, 'out-json', 'results.json'), 'utf8')) as {
      results: Array<{ seed?: number; series?: unknown }>;
    };
    expect(full.results.filter((x) => x.seed !== undefined).every((x) => x.series)).toBe(true);
  });

  it('prints the comparison table and where the report and the trace went', async () => {
    const r = await run(['run', 'tiny.yaml', '--strategies', 'mempinfd', '--trace']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^tiny: 1 strategy x 1 seed, 2 ms simulated each\n/);
    expect(r.out).toMatch(/\[application\]\n\s+DMA latency p50/);
    expect(r.out).toContain('IO page faults');
    expect(r.out).toContain(`report: ${join('svasim-out', 'tiny', 'report.html')}\n`);
    expect(r.out).toContain(`trace:  ${join('svasim-out', 'tiny', 'trace.json')}`);
    const trace = JSON.parse(readFileSync(join(tmp, 'svasim-out', 'tiny', 'trace.json'), 'utf8')) as {
      traceEvents: unknown[];
    };
    expect(trace.traceEvents.length).toBeGreaterThan(10);
  });

  it('reports a run that fails inside the simulation in its results, without crashing', async () => {
    // vfio maps IOVAs for the zip device, which uses SVA: its prepare is refused (EINVAL) in the run.
    const zip = TINY.replace('memcpy_accel', 'hisi_zip').replace(
      'kind: memcpy, requestSize: 16KiB, inflight: 2, buffers: fresh, verify: true',
      'kind: zip-offload, requestSize: 16KiB, inflight: 2, buffers: fresh, verifyEvery: 4',
    );
    writeFileSync(join(tmp, 'zip.yaml'), zip);
    const r = await run(['run', 'zip.yaml', '--strategies', 'none,vfio', '--json', '--out', 'out-fail']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as {
      results: Array<{
        strategy: string;
        seed?: number;
        failed?: number;
        error?: { phase: string; code?: string };
      }>;
    };
    const vfio = doc.results.find((x) => x.strategy === 'vfio' && x.seed === 1)!;
    expect(vfio.error).toMatchObject({ phase: 'run', code: 'EINVAL' });
    expect(doc.results.find((x) => x.strategy === 'vfio' && x.seed === undefined)!.failed).toBe(1);
    expect(doc.results.find((x) => x.strategy === 'none' && x.seed === 1)!.error).toBeUndefined();
  });

  it('refuses bad input before running anything: exit 1, the reason on stderr', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['run', 'nope.yaml'],
        /^svasim run: cannot read scenario 'nope.yaml': ENOENT: no such file or directory\n$/,
      ],
      [
        ['run', 'tiny.yaml', '--strategies', 'none,pin-all'],
        /^svasim run: --strategies: unknown strategy 'pin-all' \(known: none, mlock, mempinfd, .*vfio\)\n$/,
      ],
      [['run', 'tiny.yaml', '--strategies', 'none,none'], /strategy 'none' is listed twice/],
      [['run', 'tiny.yaml', '--strategies', ','], /--strategies: give at least one strategy name/],
      [
        ['run', 'tiny.yaml', '--seeds', '0'],
        /^svasim run: --seeds: expected a positive integer \(1 to 1000\), got '0'\n$/,
      ],
      [['run', 'tiny.yaml', '--seeds', 'three'], /--seeds: expected a positive integer/],
      [['run', 'tiny.yaml', '--seeds', '1.5'], /--seeds: expected a positive integer/],
      [['run', 'tiny.yaml', '--seeds', '-2'], /--seeds: expected a positive integer/],
      [['run', 'tiny.yaml', '--duration', 'soon'], /--duration: invalid duration 'soon'/],
      [['run', 'tiny.yaml', '--duration', '0ms'], /--duration: the run must last some time/],
    ];
    for (const [argv, message] of cases) {
      const r = await run([...argv, '--out', 'never']);
      expect({ argv, code: r.code, out: r.out }).toEqual({ argv, code: 1, out: '' });
      expect(r.err).toMatch(message);
    }
    const file = await run(['run', 'tiny.yaml', '--out', join('tiny.yaml', 'sub')]);
    expect(file.code).toBe(1);
    expect(file.err).toMatch(/^svasim run: cannot create the output folder '.*tiny\.yaml.sub': ENOTDIR/);
    const env = await run(['run', 'tiny.yaml', '--out', 'never'], { SVASIM_SEEDS: 'x' });
    expect(env.code).toBe(1);
    expect(env.err).toMatch(/SVASIM_SEEDS: expected a positive integer/);
    expect(existsSync(join(tmp, 'never'))).toBe(false); // nothing ran, nothing was written
  });

  it('refuses an invalid scenario with each problem as file:line: field: message', async () => {
    writeFileSync(
      join(tmp, 'bad.yaml'),
      TINY.replace('inflight: 2', "inflight: 'two'").replace('[none, mempinfd]', '[none, pin-all]'),
    );
    const r = await run(['run', 'bad.yaml', '--out', 'never']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err.split('\n')).toEqual([
      'bad.yaml:11: processes[0].workload.inflight: Invalid input: expected number, received string',
      "svasim run: scenario 'bad.yaml' is invalid",
      '',
    ]);
    writeFileSync(join(tmp, 'bad2.yaml'), TINY.replace('[none, mempinfd]', '[none, pin-all]'));
    const r2 = await run(['run', 'bad2.yaml']);
    expect(r2.err).toMatch(/^bad2.yaml:13: strategies\[1\]: unknown strategy 'pin-all' \(known: none, mlock/);
  });

  it('with no command runs the flagship (shortened by SVASIM_DURATION and SVASIM_SEEDS)', async () => {
    const r = await run([], { SVASIM_DURATION: '3ms', SVASIM_SEEDS: '1' });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^flagship: 5 strategies x 1 seed, 3 ms simulated each\n/);
    expect(r.out).toMatch(/none +mlock +short-term +mempinfd +migration-control\n/);
    expect(r.out).toContain('[system]');
    expect(r.out).toContain(`report: ${join('svasim-out', 'flagship', 'report.html')}\n`);
    expect(existsSync(join(tmp, 'svasim-out', 'flagship', 'report.html'))).toBe(true);
    // A shipped scenario by name, too.
    const byName = await run(['run', 'flagship', '--json', '--strategies', 'none', '--out', 'f'], {
      SVASIM_DURATION: '1ms',
    });
    expect(JSON.parse(byName.out)).toMatchObject({ scenario: 'flagship', strategies: ['none'] });
  }, 30_000);
});
