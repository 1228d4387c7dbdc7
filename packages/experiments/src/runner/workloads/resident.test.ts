import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { defaultRegistry } from '../../registry';
import { ScenarioError, validateScenario, type ScenarioInput } from '../../scenario';
import { runExperiment } from '../experiment';
import { pickPages } from './resident';

const registry = defaultRegistry();

function scenario(over: Partial<ScenarioInput>, workload: Record<string, unknown>): ScenarioInput {
  return {
    name: 'resident',
    machine: { memory: { nodes: [{ size: '128MiB' }] } },
    processes: [{ name: 'db', workload: { kind: 'resident', size: '8MiB', ...workload } }],
    duration: '3ms',
    ...over,
  } as ScenarioInput;
}

describe('pickPages', () => {
  it('picks ascending distinct pages in range; none at p = 0, all at p = 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer(),
        (n, p, seed) => {
          let x = seed >>> 0;
          const float = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
          const picks = pickPages(n, p, float);
          for (let i = 0; i < picks.length; i++) {
            expect(picks[i]).toBeGreaterThanOrEqual(0);
            expect(picks[i]).toBeLessThan(n);
            if (i > 0) expect(picks[i]).toBeGreaterThan(picks[i - 1]);
          }
          if (p === 0) expect(picks).toEqual([]);
          if (p === 1) expect(picks.length).toBe(n);
        },
      ),
    );
  });

  it('picks each page with probability p (binomial count)', () => {
    let x = 42;
    const float = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    for (const p of [1e-3, 0.1, 0.5]) {
      const n = 200_000;
      const k = pickPages(n, p, float).length;
      expect(Math.abs(k - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)));
    }
  });
});

describe("the 'resident' workload", () => {
  it('fills its memory, prepares a share of its pages through the strategy, reports where they are', async () => {
    const s = validateScenario(
      scenario(
        {
          strategies: ['none', 'mlock', 'mempinfd'],
          background: [{ kind: 'compaction', every: '1ms' }],
        },
        { scatter: true, prepareFraction: 0.05, touchEvery: '500us' },
      ),
      'resident',
      registry,
    );
    const r = await runExperiment(s, { registry, progress: false, workers: 0, checkInvariants: true });
    for (const run of r.runs) {
      expect(run.error).toBeUndefined();
      expect(run.invariants).toEqual([]);
    }
    const [none, mlock, pinned] = r.runs.map((x) => x.metrics!);
    const pages = 2048;
    for (const m of [none, mlock, pinned]) {
      // The same seeded positions under every strategy.
      expect(m.extra.db_prepared_pages).toBe(none.extra.db_prepared_pages);
      expect(m.extra.db_numa_local).toBe(1);
      expect(m.extra.db_thp_coverage).toBe(0);
      expect(m.extra.db_prepare_failed ?? 0).toBe(0);
      expect(m.cpu_fault_count).toBeGreaterThanOrEqual(2 * pages); // scatter faults twice the size
    }
    const prepared = none.extra.db_prepared_pages;
    expect(Math.abs(prepared - pages * 0.05)).toBeLessThan(5 * Math.sqrt(pages * 0.05));
    expect(mlock.locked_bytes.peak).toBe(prepared * 4096);
    expect(pinned.pinned_bytes.end).toBe(prepared * 4096);
    // Scattered pages are what compaction moves; pinned ones stay.
    expect(none.extra.db_pages_moved).toBeGreaterThan(0);
    expect(pinned.extra.db_pages_moved).toBeLessThanOrEqual(pages - prepared);
  }, 20_000);

  it('mlock locks the whole mapping; a strategy that cannot prepare without a device is counted, not fatal', async () => {
    const s = validateScenario(
      scenario({ strategies: ['vfio'] }, { mlock: true, prepareFraction: 0.01 }),
      'resident',
      registry,
    );
    const r = await runExperiment(s, { registry, progress: false, workers: 0 });
    const m = r.runs[0].metrics!;
    expect(r.runs[0].error).toBeUndefined();
    expect(m.locked_bytes.peak).toBe(8 * 2 ** 20);
    expect(m.extra.db_prepared_pages).toBe(0);
    expect(m.extra.db_prepare_failed).toBeGreaterThan(0); // vfio: ENODEV without a device
  });

  it('needs no device; refuses a zero size or period and unknown fields, naming them', () => {
    expect(validateScenario(scenario({}, {}), 'ok', registry).processes[0].workload).toMatchObject({
      kind: 'resident',
      thp: false,
      scatter: false,
      mlock: false,
      prepareFraction: 0,
    });
    const issues = (w: Record<string, unknown>): string => {
      try {
        validateScenario(scenario({}, w), 'bad.yaml', registry);
      } catch (e) {
        if (e instanceof ScenarioError) return e.message;
        throw e;
      }
      return '';
    };
    expect(issues({ size: 0 })).toMatch(/processes\[0\]\.workload\.size: must be positive/);
    expect(issues({ touchEvery: 0 })).toMatch(/processes\[0\]\.workload\.touchEvery: must be positive/);
    expect(issues({ prepareFraction: 1.5 })).toMatch(/prepareFraction/);
    expect(issues({ pin: true })).toMatch(/pin/);
    expect(issues({ size: '2GiB' })).toMatch(/the processes need 2 GiB/);
  });
});
