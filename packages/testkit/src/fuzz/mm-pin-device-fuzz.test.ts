import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createKernel, type VirtualAccelerator } from '@svasim/kernel';
import { memcpyAccelPlugin } from '../memcpy-accel';
import {
  deviceFuzzCoverage,
  deviceFuzzSetup,
  deviceFuzzTeardown,
  mmPinDeviceCommands,
} from './device-commands';

// FUZZ_RUNS raises the number of sequences for a longer local soak (npm test runs at least 200);
// FUZZ_SEED replays a run fast-check reported.
const RUNS = Math.max(200, Number(process.env.FUZZ_RUNS ?? 200));
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** The pin fuzz's machine plus the reference copy accelerator (4 hardware queues, SVA). */
const boot = () =>
  createKernel({
    memory: { nodes: [{ size: '128MiB', movable: '32MiB', cma: '16MiB' }] },
    swap: '32MiB',
    sysctl: { transparent_hugepage: 'madvise' },
    plugins: [memcpyAccelPlugin],
  });

describe('model-based fuzz of an SVA device against mm and pinning', () => {
  const freeAtBoot = boot().vmstat().nr_free_pages;
  const freeAfterRemoval = (() => {
    const k = boot();
    k.plugin<VirtualAccelerator>('memcpy_accel').unrealize();
    return k.vmstat().nr_free_pages;
  })();

  it(`${RUNS} random sequences: device copies land where the model says, fail with -EFAULT where it says, never hang or leak`, () => {
    fc.assert(
      fc.property(fc.commands(mmPinDeviceCommands(), { maxCommands: 60, size: '+1' }), (cmds) => {
        const { model, real } = deviceFuzzSetup(boot);
        fc.modelRun(() => ({ model, real }), cmds);
        deviceFuzzTeardown(model, real, freeAtBoot, freeAfterRemoval);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    const c = deviceFuzzCoverage;
    if (process.env.FUZZ_COVERAGE) console.log(c);
    expect(c.opens).toBeGreaterThan(RUNS);
    expect(c.opensBusy).toBeGreaterThan(0);
    expect(c.copies).toBeGreaterThan(RUNS);
    expect(c.copiesFaulted).toBeGreaterThan(0);
    expect(c.copiesWarm).toBeGreaterThan(0);
    expect(c.copiesEfault).toBeGreaterThan(0);
    expect(c.copiesPartial).toBeGreaterThan(0);
    expect(c.atcInvalidations).toBeGreaterThan(0);
    expect(c.closes).toBeGreaterThan(0);
    expect(c.removals).toBeGreaterThan(0);
    expect(c.exitsWithDma).toBeGreaterThan(0);
    expect(c.forksHoldingQueue).toBeGreaterThan(0);
  });
});
