import { describe, it, expect } from '@jest/globals';
import { createKernel } from './create-kernel';

describe('smoke', () => {
  it('boots, faults, forks, COW-breaks and exits cleanly', () => {
    const k = createKernel();
    const p = k.spawn();
    const a = p.mmap(1 << 20);
    p.write(a, new Uint8Array([1, 2, 3]));
    expect([...p.read(a, 3)]).toEqual([1, 2, 3]);
    const c = p.fork();
    expect([...c.read(a, 3)]).toEqual([1, 2, 3]);
    c.write(a, new Uint8Array([9]));
    expect([...p.read(a, 3)]).toEqual([1, 2, 3]);
    expect([...c.read(a, 3)]).toEqual([9, 2, 3]);
    expect(k.checkInvariants()).toEqual([]);
    c.exit();
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
    console.log(k.bootSummary(), k.vmstat().pgfault, k.dmesg());
  });
});
