import { describe, expect, it } from '@jest/globals';
import { createKernel } from '@svasim/kernel';
import { DEFAULT_STRATEGIES, defaultRegistry } from './default-registry';

describe('defaultRegistry', () => {
  it('names every shipped device and strategy as scenario files do', () => {
    const r = defaultRegistry();
    expect([...r.devices.keys()].sort()).toEqual(['hisi_sec2', 'hisi_zip', 'memcpy_accel', 'svasim_gpu']);
    expect([...r.strategies.keys()].sort()).toEqual(
      [
        'hugetlb-pool',
        'migration-control',
        'mempinfd',
        'mlock',
        'none',
        'odp',
        'short-term',
        'uacce-ctrl',
        'vfio',
      ].sort(),
    );
    expect(r.workloads.has('memcpy')).toBe(true);
  });

  it('each strategy plugin boots and is the kernel strategy of its own name', () => {
    for (const [name, entry] of Object.entries(DEFAULT_STRATEGIES)) {
      const plugins = Array.isArray(entry) ? [...entry] : [entry];
      const k = createKernel({ memory: { nodes: [{ size: '256MiB' }], hugepages: { '2MiB': 16 } }, plugins });
      expect(k.pinStrategy().name).toBe(name);
      k.shutdown();
    }
  });
});
