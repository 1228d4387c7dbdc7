import { describe, expect, it } from '@jest/globals';
import { validateScenario, type ScenarioInput } from '../../scenario';
import { testRegistry } from '../../test-support/strategies';
import { runExperiment } from '../experiment';
import type { RunResult } from '../types';

const registry = testRegistry();

/** Run a small copy workload with @over (background activity, machine...) for each strategy. */
async function run(over: Partial<ScenarioInput>, strategies = ['none']): Promise<RunResult[]> {
  const s = validateScenario(
    {
      name: 'bg',
      machine: { memory: { nodes: [{ size: '128MiB' }] } },
      devices: [{ name: 'memcpy_accel' }],
      processes: [
        {
          name: 'app',
          workload: {
            kind: 'memcpy',
            requestSize: '64KiB',
            inflight: 2,
            buffers: 'reused',
            workingSet: '2MiB',
            verify: true,
          },
        },
      ],
      duration: '3ms',
      strategies,
      ...over,
    },
    'bg',
    registry,
  );
  const r = await runExperiment(s, { registry, progress: false, checkInvariants: true });
  for (const x of r.runs) {
    expect(x.error).toBeUndefined();
    expect(x.invariants).toEqual([]);
  }
  return r.runs;
}

describe('background activities', () => {
  it('cma-alloc: another driver allocates and releases CMA memory; success and latency are measured', async () => {
    const [r] = await run({
      machine: { memory: { nodes: [{ size: '256MiB', cma: '64MiB' }] } },
      background: [{ kind: 'cma-alloc', sizes: ['8MiB', '16MiB'], rate: 2000, hold: '1ms' }],
    });
    expect(r.metrics!.cma_alloc_success_rate).toBe(1);
    expect(r.metrics!.cma_alloc_latency_ns!.count).toBe(6);
    expect(r.unavailable.cma_alloc_success_rate).toBeUndefined();
  });

  it('hugepage-alloc: assembles 2 MiB and 1 GiB pages at run time', async () => {
    const [r] = await run({
      machine: { memory: { nodes: [{ size: '2GiB' }] } },
      background: [
        { kind: 'hugepage-alloc', size: '2MiB', every: '500us', count: 3 },
        { kind: 'hugepage-alloc', size: '1GiB', every: '1ms', count: 1 },
      ],
    });
    expect(r.metrics).toMatchObject({
      hugepage_2m_assembled: 3,
      hugepage_1g_assembled: 1,
      hugepage_failed: 0,
    });
  });

  it('memory-offline: offlines a movable block and brings it back, each attempt', async () => {
    const [r] = await run({
      machine: { memory: { nodes: [{ size: '512MiB', movable: '256MiB' }] } },
      background: [{ kind: 'memory-offline', offset: '384MiB', count: 2, every: '500us' }],
    });
    expect(r.metrics!.offline_success_rate).toBe(1);
  });

  it('memory-pressure: fills memory; what cannot be had is counted, the run goes on', async () => {
    const [r] = await run({
      background: [{ kind: 'memory-pressure', size: '160MiB', chunk: '8MiB', every: '100us' }],
    });
    expect(r.metrics!.extra.pressure_enomem).toBeGreaterThan(0);
  });

  it('fork-storm: a helper forks and its children write; with a target the workload process forks', async () => {
    const [helper] = await run({
      background: [{ kind: 'fork-storm', every: '500us', children: 2, childWrites: '64KiB', memory: '4MiB' }],
    });
    expect(helper.metrics!.extra.forks).toBe(10);
    const [legacy, early] = await Promise.all([
      run(
        { kernel: { forkCow: 'legacy' }, background: [{ kind: 'fork-storm', target: 'app', every: '1ms' }] },
        ['longterm-pin'],
      ),
      run({ background: [{ kind: 'fork-storm', target: 'app', every: '1ms' }] }, ['longterm-pin']),
    ]);
    // Legacy COW write-protects the pinned buffers in the parent: the device faults on them.
    expect(legacy[0].metrics!.iopf_count).toBeGreaterThan(0);
    expect(early[0].metrics!.iopf_count).toBe(0);
    expect(early[0].metrics!.extra.forks).toBe(2);
  });

  it('numa-imbalance: moved processes see their unpinned pages migrate after them', async () => {
    const [moved, pinned] = await run(
      {
        duration: '10ms',
        machine: { memory: { nodes: [{ size: '128MiB' }, { size: '128MiB' }] } },
        background: [{ kind: 'numa-imbalance', every: '3ms', scanEvery: '1ms' }],
      },
      ['prefault', 'longterm-pin'],
    );
    expect(moved.metrics!.extra.numa_moves).toBe(3); // now on node 1
    expect(moved.metrics!.numa_pages_migrated).toBeGreaterThan(0);
    expect(pinned.metrics!.numa_pages_migrated).toBe(0);
    expect(pinned.metrics!.numa_local_fraction).toBe(0);
  });

  it('fragmentation and compaction: memory is fragmented, then compacted; pinned pages fail to move', async () => {
    const [none, pinned] = await run(
      {
        background: [
          { kind: 'fragmentation', fill: 0.5 },
          { kind: 'compaction', every: '1ms', start: '1ms' },
        ],
      },
      ['none', 'longterm-pin'],
    );
    // Half of the free memory (about 32,000 pages) is filled, every other page kept.
    expect(none.metrics!.extra.fragmentation_pages_kept).toBeGreaterThan(7000);
    expect(none.metrics!.extra.compactions).toBe(1); // at 2 ms; its own cost pushes the next past the end
    expect(none.metrics!.migrate_success).toBeGreaterThan(1000);
    expect(pinned.metrics!.migrate_success).toBeGreaterThan(1000);
  });

  it('thp: sets the mode and runs khugepaged passes', async () => {
    const [r] = await run({
      background: [{ kind: 'thp', mode: 'always', khugepagedEvery: '1ms', churn: '8MiB', pagesToScan: 8192 }],
    });
    expect(r.metrics!.extra.khugepaged_passes).toBe(2);
    expect(r.metrics!.extra.thp_collapsed).toBeGreaterThanOrEqual(0);
  });
});
