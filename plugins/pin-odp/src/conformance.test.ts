/**
 * The suites every strategy and every device pass, under 'odp': the pin-strategy conformance
 * suite with the strategy's declared effect, and the accelerator conformance suite of the memcpy
 * reference device served under it.
 */
import {
  describePinStrategyConformance,
  describeAcceleratorConformance,
  memcpyConformanceTarget,
} from '@svasim/testkit';
import { odpStrategy } from './index';

// No pin and no charge; prefetched, so a copy into fresh prepared buffers takes no IO page fault;
// mm still migrates the pages (the notifier lets them go) and the device faults on the migration
// entries; fork write-protects the parent's pages (an invalidation) and the device's first
// write after it faults.
describePinStrategyConformance(odpStrategy, {
  name: 'odp',
  expect: {
    faultsAfterPrepare: 0,
    pins: false,
    survivesMigration: false,
    charge: 'none',
    faultsAfterFork: 'some',
  },
});

describeAcceleratorConformance(memcpyConformanceTarget, { strategies: [odpStrategy] });
