import { describe, expect, it } from '@jest/globals';
import { WorkloadSchema } from '../../scenario';
import { rdmaLayout, rdmaRegistrationWorkload, type RdmaRegistrationWorkloadSpec } from './rdma-registration';

const spec = (over: Record<string, unknown>) =>
  WorkloadSchema.parse({
    kind: 'rdma-registration',
    region: '1MiB',
    ...over,
  }) as RdmaRegistrationWorkloadSpec;

describe('rdma-registration layout', () => {
  it('rounds the region to pages and the working set down to whole access slots (at least one)', () => {
    expect(rdmaLayout(spec({}))).toEqual({ region: 1 << 20, access: 4096, slots: 256 }); // all of it
    expect(rdmaLayout(spec({ workingSetFraction: 0.1 })).slots).toBe(25);
    expect(rdmaLayout(spec({ workingSet: '64KiB', accessSize: '16KiB' })).slots).toBe(4);
    expect(rdmaLayout(spec({ workingSetFraction: 0 })).slots).toBe(1);
    expect(rdmaLayout(spec({ region: 5000, accessSize: 100 }))).toEqual({
      region: 8192,
      access: 100,
      slots: 81,
    });
  });

  it('refuses an access size of 0 or larger than the region, and other kinds', () => {
    expect(() => rdmaLayout(spec({ accessSize: 0 }))).toThrow(RangeError);
    expect(() => rdmaRegistrationWorkload(spec({ accessSize: '2MiB' }))).toThrow(/accessSize/);
    expect(() =>
      rdmaRegistrationWorkload(WorkloadSchema.parse({ kind: 'memcpy', requestSize: '4KiB' })),
    ).toThrow(RangeError);
  });
});
