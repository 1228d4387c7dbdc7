import { describe, expect, it } from '@jest/globals';
import { memcpyAccelPlugin } from '@svasim/testkit';
import { runExperiment } from '../runner';
import { validateScenario } from '../scenario';
import { defaultRegistry } from './default-registry';
import { memcpyAccelDevice } from './memcpy-device';

describe("the registry's memcpy_accel entry", () => {
  it('is the plain plugin without overrides and refuses what it cannot build', () => {
    expect(memcpyAccelDevice({ count: 1, config: {} })).toBe(memcpyAccelPlugin);
    expect(memcpyAccelDevice({ count: 1, config: { sva: false, queues: 2 } }).name).toBe('memcpy_accel');
    expect(() => memcpyAccelDevice({ count: 2, config: {} })).toThrow(/count must be 1/);
    expect(() => memcpyAccelDevice({ count: 1, config: { timing: {} } })).toThrow(/unknown config 'timing'/);
    expect(() => memcpyAccelDevice({ count: 1, config: { sva: 'no' } })).toThrow(/bad config sva/);
    expect(() => memcpyAccelDevice({ count: 1, config: { engines: 0 } })).toThrow(/bad config engines/);
  });

  it('sva: false gives the device an iova strategy needs; without a mapping its DMA fails', async () => {
    const registry = defaultRegistry();
    const s = validateScenario(
      {
        name: 'nosva',
        machine: { memory: { nodes: [{ size: '128MiB' }] } },
        devices: [{ name: 'memcpy_accel', config: { sva: false } }],
        processes: [
          { name: 'app', workload: { kind: 'memcpy', requestSize: '16KiB', count: 8, verify: true } },
        ],
        duration: '2ms',
        strategies: ['vfio', 'none'],
      },
      'nosva',
      registry,
    );
    const r = await runExperiment(s, { registry, progress: false, workers: 0 });
    const [vfio, none] = r.runs;
    expect(vfio.error).toBeUndefined();
    expect(vfio.metrics).toMatchObject({ dma_requests: 8, dma_errors: 0, iopf_count: 0, data_mismatch: 0 });
    // No SVA and nothing mapped: every request aborts (-EFAULT), no IO page fault.
    expect(none.metrics).toMatchObject({ dma_requests: 0, dma_errors: 8, iopf_count: 0 });
  });

  it('a configuration it refuses fails the run at boot, with the message', async () => {
    const registry = defaultRegistry();
    const s = validateScenario(
      {
        name: 'bad',
        devices: [{ name: 'memcpy_accel', config: { colour: 'red' } }],
        processes: [{ name: 'app', workload: { kind: 'memcpy', requestSize: '4KiB', count: 1 } }],
        duration: '1ms',
      },
      'bad',
      registry,
    );
    const r = await runExperiment(s, { registry, progress: false, workers: 0 });
    expect(r.runs[0].error).toMatchObject({
      phase: 'boot',
      message: expect.stringMatching(/unknown config 'colour'/),
    });
  });
});
