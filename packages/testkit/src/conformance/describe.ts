/**
 * describeAcceleratorConformance - the conformance suite as a jest describe block, one test per
 * check, so a plugin's test file runs it in one line:
 *
 *   describeAcceleratorConformance({ plugin: myPlugin, alg: 'xor8', sample });
 */
import { conformanceChecks } from './checks';
import { resolveConformanceOptions } from './harness';
import type { AcceleratorConformanceTarget, ConformanceOptions } from './types';

/**
 * describeAcceleratorConformance - declare `describe('accelerator conformance: <name>')` with an
 * it() per check (see conformanceChecks). Call it at the top level of a test file. The check
 * "leaves no invariant violation" sums up the others, so run the block whole.
 *
 * Context: jest only. @jest/globals is loaded when this is called, not when @svasim/testkit is
 * imported, because that module throws outside a jest test environment.
 */
export function describeAcceleratorConformance(
  target: AcceleratorConformanceTarget,
  opts: ConformanceOptions = {},
): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { describe, it } = require('@jest/globals') as typeof import('@jest/globals');
  const timeout = resolveConformanceOptions(opts).jestTimeoutMs;
  const checks = conformanceChecks(target, opts);
  describe(`accelerator conformance: ${target.name ?? target.plugin.name}`, () => {
    for (const c of checks) it(c.name, () => c.run().then(() => undefined), timeout);
  });
}
