import { describe, expect, it } from '@jest/globals';
import { PIN_STRATEGY, definePlugin, type PinStrategy } from '@svasim/kernel';
import { describeAcceleratorConformance, memcpyConformanceTarget } from '../conformance';

/** A tiny pin strategy for the strategies loop: mlock on prepare, munlock on release, counted. */
const calls = { prepare: 0, release: 0, lockedSeen: 0 };
const testMlock: PinStrategy = {
  name: 'test-mlock',
  prepare(t, addr, len) {
    calls.prepare++;
    t.proc.mlock(addr, len);
    if (t.proc.pagemap(addr).mlocked) calls.lockedSeen++;
  },
  release(t, addr, len) {
    calls.release++;
    t.proc.munlock(addr, len);
  },
};
const testMlockPlugin = definePlugin({
  name: 'pin-test-mlock',
  kind: 'pin-strategy',
  register: ({ container }) => void container.registerInstance(PIN_STRATEGY, testMlock),
});

describeAcceleratorConformance(memcpyConformanceTarget, { strategies: [testMlockPlugin] });

describe('memcpy_accel conformance, the strategies loop', () => {
  it('went through the test strategy: every prepare mlocked and was released', () => {
    // 1 sync + 4 async requests of 2 buffers each, under the test strategy only.
    expect(calls.prepare).toBe(10);
    expect(calls.release).toBe(10);
    expect(calls.lockedSeen).toBe(10);
  });
});
