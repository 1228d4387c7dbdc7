import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERRNO, KernelError, SyscallError, definePlugin } from '@svasim/kernel';
import { memcpyAccelPlugin } from '@svasim/testkit';
import { ScenarioError, validateScenario, type ScenarioInput } from '../scenario';
import { testRegistry } from '../test-support/strategies';
import type { Workload } from './activity';
import { runExperiment } from './experiment';
import { WORKER_FILE, workerAvailable } from './pool';
import type { ProgressSink } from './progress';
import { createPluginRegistry, type PluginRegistry } from './registry';
import { memcpyWorkload } from './workloads';
import type { RunResult } from './types';

const registry = testRegistry();

function scenario(over: Partial<ScenarioInput> = {}, reg: PluginRegistry = registry) {
  return validateScenario(
    {
      name: 'copy',
      machine: { memory: { nodes: [{ size: '128MiB' }] } },
      devices: [{ name: 'memcpy_accel' }],
      processes: [
        {
          name: 'app',
          workload: { kind: 'memcpy', requestSize: '16KiB', inflight: 2, buffers: 'fresh', verify: true },
        },
      ],
      duration: '2ms',
      strategies: ['none', 'prefault'],
      ...over,
    },
    'copy',
    reg,
  );
}

/** A run without its host time, which is the one thing allowed to differ. */
const comparable = (r: RunResult) => ({ ...r, wallMs: 0 });

describe('runExperiment', () => {
  it('runs every strategy x seed on a fresh kernel; the same seed gives the same run', async () => {
    const s = scenario({ seeds: [1, 2] });
    const a = await runExperiment(s, { registry, progress: false, checkInvariants: true });
    const b = await runExperiment(s, { registry, progress: false });
    expect(a.workers).toBe(0);
    expect(a.runs.map((r) => `${r.strategy}/${r.seed}`)).toEqual([
      'none/1',
      'none/2',
      'prefault/1',
      'prefault/2',
    ]);
    for (const r of a.runs) {
      expect(r.error).toBeUndefined();
      expect(r.invariants).toEqual([]);
      expect(r.simNs).toBe(2e6);
    }
    expect(a.runs.map(comparable).map((r) => ({ ...r, invariants: undefined }))).toEqual(
      b.runs.map(comparable),
    );
    // The seed matters: IO page-fault service times are drawn from the kernel's streams.
    expect(a.runs[0].metrics!.dma_latency_ns).not.toEqual(a.runs[1].metrics!.dma_latency_ns);
    const [none, prefault] = a.summary;
    expect(none.metrics!.iopf_count).toBeGreaterThan(0);
    expect(prefault.metrics!.iopf_count).toBe(0);
    expect(prefault.metrics!.dma_latency_ns!.p50).toBeLessThan(none.metrics!.dma_latency_ns!.p50);
    expect(prefault.metrics!.throughput_bytes_per_s).toBeGreaterThan(none.metrics!.throughput_bytes_per_s);
    expect(none.metrics!.data_mismatch).toBe(0);
    expect(none.dmaLatencyCdf.length).toBeGreaterThan(1);
    expect(none.series!.t.length).toBe(200);
  });

  it('a long-term pin strategy holds the working set pinned; the count ends the workload', async () => {
    const s = scenario({
      processes: [
        {
          name: 'app',
          workload: {
            kind: 'memcpy',
            requestSize: '16KiB',
            inflight: 2,
            buffers: 'reused',
            workingSet: '1MiB',
            count: 50,
          },
        },
      ],
      strategies: ['longterm-pin'],
    });
    const r = await runExperiment(s, { registry, progress: false });
    const m = r.runs[0].metrics!;
    expect(m.pinned_bytes.peak).toBe(2 ** 20);
    expect(m.dma_requests).toBe(50);
    expect(m.iopf_count).toBe(0);
  });

  it('reports a simulated failure in the run that hit it and goes on with the others', async () => {
    let startedPrefault = 0;
    const failing = (spec: Parameters<typeof memcpyWorkload>[0]): Workload => {
      const inner = memcpyWorkload(spec);
      return {
        start(ctx) {
          if (ctx.strategy === 'none') {
            ctx.kernel.tasks.spawn('doomed', async (task) => {
              await task.sleep(500_000);
              throw new KernelError(-ERRNO.ENOMEM, 'out of simulated memory');
            });
          } else startedPrefault++;
          inner.start(ctx);
        },
      };
    };
    const reg = createPluginRegistry({ ...registryParts(), workloads: { memcpy: failing } });
    const r = await runExperiment(scenario({}, reg), { registry: reg, progress: false });
    expect(r.runs[0].error).toEqual({
      phase: 'run',
      name: 'KernelError',
      message: 'ENOMEM: out of simulated memory',
      code: 'ENOMEM',
      errno: -ERRNO.ENOMEM,
      atNs: 500_000,
    });
    expect(r.runs[0].metrics).not.toBeNull(); // what was measured until then
    expect(r.runs[1].error).toBeUndefined();
    expect(startedPrefault).toBe(1);
    expect(r.summary[0]).toMatchObject({ strategy: 'none', failed: 1, metrics: null });
    expect(r.summary[1].failed).toBe(0);
  });

  it('reports set-up and boot failures too', async () => {
    const setup = createPluginRegistry({
      ...registryParts(),
      workloads: {
        memcpy: () => ({
          start() {
            throw new SyscallError(-ERRNO.EBUSY, 'openContext', 'no queue');
          },
        }),
      },
    });
    const r1 = await runExperiment(scenario({ strategies: ['none'] }, setup), {
      registry: setup,
      progress: false,
    });
    expect(r1.runs[0].error).toMatchObject({ phase: 'setup', code: 'EBUSY', atNs: 0 });
    expect(r1.runs[0].metrics).toBeNull();
    const broken = definePlugin({
      name: 'broken_accel',
      kind: 'accelerator',
      register: () => ({ realize: () => -ERRNO.ENODEV }),
    });
    const boot = createPluginRegistry({
      ...registryParts(),
      devices: { memcpy_accel: memcpyAccelPlugin, broken: broken },
    });
    const s = scenario(
      { devices: [{ name: 'memcpy_accel' }, { name: 'broken' }], strategies: ['none'] },
      boot,
    );
    const r2 = await runExperiment(s, { registry: boot, progress: false });
    expect(r2.runs[0].error).toMatchObject({ phase: 'boot', name: 'KernelError', code: 'ENODEV' });
    const picky = createPluginRegistry({
      ...registryParts(),
      devices: {
        memcpy_accel: ({ config }) => {
          if (config.queues !== undefined)
            throw new RangeError(`memcpy_accel: queues ${String(config.queues)}`);
          return memcpyAccelPlugin;
        },
      },
    });
    const s3 = scenario(
      { devices: [{ name: 'memcpy_accel', config: { queues: -1 } }], strategies: ['none'] },
      picky,
    );
    const r3 = await runExperiment(s3, { registry: picky, progress: false });
    expect(r3.runs[0].error).toMatchObject({
      phase: 'boot',
      name: 'RangeError',
      message: 'memcpy_accel: queues -1',
    });
  });

  it('refuses unknown strategies and seeds before anything runs', async () => {
    const calls: string[] = [];
    const s = scenario();
    await expect(
      runExperiment(s, {
        registry,
        strategies: ['none', 'pin-everything'],
        onProgress: () => calls.push('x'),
        progress: false,
      }),
    ).rejects.toThrow(ScenarioError);
    await expect(runExperiment(s, { registry, seeds: [3, 3], progress: false })).rejects.toThrow(
      /seeds repeat/,
    );
    expect(calls).toEqual([]);
  });

  it('reports progress after each run and always stops the progress sink', async () => {
    const events: string[] = [];
    const sink: ProgressSink = {
      start: (n) => events.push(`start ${n}`),
      tick: (label) => events.push(label),
      stop: () => events.push('stop'),
    };
    const seen: number[] = [];
    await runExperiment(scenario({ duration: '200us' }), {
      registry,
      progress: sink,
      onProgress: (p) => seen.push(p.done * 10 + p.total),
    });
    expect(events).toEqual(['start 2', 'none seed 1', 'prefault seed 1', 'stop']);
    expect(seen).toEqual([12, 22]);
    events.length = 0;
    const throwing = () => {
      throw new TypeError('a listener bug');
    };
    await expect(
      runExperiment(scenario(), { registry, progress: sink, onProgress: throwing }),
    ).rejects.toThrow(TypeError);
    expect(events).toEqual(['start 2', 'none seed 1', 'stop']);
  });

  it('runs in worker threads from the built package, with the same results', async () => {
    const workerFile = join(__dirname, '..', '..', 'dist', 'runner', 'worker.js');
    // From sources the default worker entry does not exist, so runs stay in this thread.
    expect(workerAvailable()).toBe(existsSync(WORKER_FILE));
    if (!workerAvailable(workerFile)) {
      // Not built yet (`npm test` builds first): nothing to run the workers from.
      expect(existsSync(workerFile)).toBe(false);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'svasim-reg-'));
    const mod = join(dir, 'registry.js');
    const testkit = join(__dirname, '..', '..', '..', 'testkit', 'dist', 'index.js');
    writeFileSync(
      mod,
      `const { memcpyAccelPlugin } = require(${JSON.stringify(testkit)});\n` +
        `exports.registry = { devices: new Map([['memcpy_accel', memcpyAccelPlugin]]) };\n`,
    );
    const s = scenario({ seeds: 2, strategies: ['none'], duration: '1ms' });
    const inWorkers = await runExperiment(s, {
      registryModule: mod,
      workers: 2,
      workerFile,
      progress: false,
    });
    const inProcess = await runExperiment(s, {
      registryModule: mod,
      workers: 0,
      workerFile,
      progress: false,
    });
    expect(inWorkers.workers).toBe(2);
    expect(inProcess.workers).toBe(0);
    rmSync(dir, { recursive: true, force: true });
    expect(inWorkers.runs.map(comparable)).toEqual(inProcess.runs.map(comparable));
  });
});

function registryParts() {
  return {
    devices: registry.devices,
    strategies: registry.strategies,
  };
}
