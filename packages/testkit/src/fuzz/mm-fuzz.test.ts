import { describe, it } from '@jest/globals';
import fc from 'fast-check';
import { createKernel } from '@svasim/kernel';
import { mmCommands, mmFuzzSetup, mmFuzzTeardown } from './mm-commands';

// FUZZ_RUNS raises the number of sequences for a longer local soak; npm test runs at least 200.
const RUNS = Math.max(200, Number(process.env.FUZZ_RUNS ?? 200));
const boot = () => createKernel({ memory: { nodes: [{ size: '64MiB' }] } });

describe('model-based fuzz of the process memory API', () => {
  const freeAtBoot = boot().vmstat().nr_free_pages;

  it(`${RUNS} random sequences keep data, errno and invariants right`, () => {
    fc.assert(
      fc.property(fc.commands(mmCommands(), { maxCommands: 60, size: '+1' }), (cmds) => {
        const { model, real } = mmFuzzSetup(boot);
        fc.modelRun(() => ({ model, real }), cmds);
        mmFuzzTeardown(real, freeAtBoot);
      }),
      { numRuns: RUNS },
    );
  });
});
