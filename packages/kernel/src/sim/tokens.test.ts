import { describe, expect, it } from '@jest/globals';
import { DMESG, RNG_STREAMS, SCHEDULER, TASK_RUNNER, TRACEPOINTS, VMSTAT } from './tokens';

describe('sim tokens', () => {
  it('are distinct global symbols, shared across copies of the module', () => {
    const tokens = [SCHEDULER, RNG_STREAMS, VMSTAT, DMESG, TRACEPOINTS, TASK_RUNNER];
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(SCHEDULER).toBe(Symbol.for('@svasim/kernel/sim/Scheduler'));
    expect(TASK_RUNNER).toBe(Symbol.for('@svasim/kernel/sim/TaskRunner'));
  });
});
