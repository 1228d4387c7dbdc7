import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createKernel } from '@svasim/kernel';
import {
  MmapHugeCmd,
  PinCmd,
  mmPinCommands,
  pinFuzzCoverage,
  pinFuzzSetup,
  pinFuzzTeardown,
} from './pin-commands';

// FUZZ_RUNS raises the number of sequences for a longer local soak (npm test runs at least 200);
// FUZZ_SEED replays a run fast-check reported.
const RUNS = Math.max(200, Number(process.env.FUZZ_RUNS ?? 200));
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** 128 MiB with 32 MiB of ZONE_MOVABLE, a 16 MiB CMA area and 32 MiB of swap; THP only where asked. */
const boot = () =>
  createKernel({
    memory: { nodes: [{ size: '128MiB', movable: '32MiB', cma: '16MiB' }] },
    swap: '32MiB',
    sysctl: { transparent_hugepage: 'madvise' },
  });

describe('model-based fuzz of pinning against the rest of mm', () => {
  const freeAtBoot = boot().vmstat().nr_free_pages;

  // Counterexamples the fuzz found, kept as fixed sequences.
  it('a long-term pin refused (-ENOMEM) on a short-term-pinned ZONE_MOVABLE page leaves no long-term pin counted', () => {
    // The FOLL_LONGTERM loop dropped its own pin as a plain FOLL_PIN release, so the pin tracker
    // kept counting the remaining short-term pin as long-term, in ZONE_MOVABLE ('gup' invariant).
    const { model, real } = pinFuzzSetup(boot);
    const cmds = [
      new MmapHugeCmd(0, false, 0, 1),
      new PinCmd(0, 0, 1, false, false, false),
      new PinCmd(0, 0, 1, true, false, false),
    ];
    fc.modelRun(() => ({ model, real }), cmds);
    pinFuzzTeardown(model, real, freeAtBoot);
  });

  it(`${RUNS} random sequences keep pins in place, data exact and accounting balanced`, () => {
    fc.assert(
      fc.property(fc.commands(mmPinCommands(), { maxCommands: 60, size: '+1' }), (cmds) => {
        const { model, real } = pinFuzzSetup(boot);
        fc.modelRun(() => ({ model, real }), cmds);
        pinFuzzTeardown(model, real, freeAtBoot);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    // The run must have reached what it is meant to test.
    const c = pinFuzzCoverage;
    if (process.env.FUZZ_COVERAGE) console.log(c);
    expect(c.pins).toBeGreaterThan(RUNS);
    expect(c.longtermPins).toBeGreaterThan(0);
    expect(c.pinsFromMovable).toBeGreaterThan(0);
    expect(c.longtermNomem).toBeGreaterThan(0);
    expect(c.migratedPinnedRefused).toBeGreaterThan(0);
    expect(c.migratedUnpinned).toBeGreaterThan(0);
    expect(c.collapsed).toBeGreaterThan(0);
    expect(c.collapseRefusedPinned).toBeGreaterThan(0);
    expect(c.pagedOut).toBeGreaterThan(0);
    expect(c.forksWithPins).toBeGreaterThan(0);
    expect(c.pinsOutlivingMapping).toBeGreaterThan(0);
    expect(c.freedByUnpin).toBeGreaterThan(0);
  });
});
