import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import type { ForkCowMode } from './fork';
import { MMF_HAS_PINNED } from './mm-struct';
import { GUP_PIN_COUNTING_BIAS } from './page-ref';

/**
 * A process pins a page for a device (as FOLL_PIN does: refcount + GUP_PIN_COUNTING_BIAS and
 * MMF_HAS_PINNED), forks, then writes. What the device sees depends on the fork COW mode.
 */
function scenario(forkCow: ForkCowMode) {
  const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] }, forkCow });
  const parent = k.spawn();
  const buf = parent.mmap(4096);
  parent.write(buf, new Uint8Array([1]));
  const pinned = parent.pagemap(buf).pfn!;
  k.phys.frames.refcount[pinned] += GUP_PIN_COUNTING_BIAS;
  parent.mm.flags |= MMF_HAS_PINNED;
  k.addRefSource((refs) => refs.set(pinned, (refs.get(pinned) ?? 0) + GUP_PIN_COUNTING_BIAS));
  const child = parent.fork();
  parent.write(buf, new Uint8Array([2])); // the parent keeps using its buffer
  const device = () => k.phys.data.view(pinned)?.[0] ?? 0; // what DMA into the pinned page sees
  return { k, parent, child, buf, pinned, device };
}

describe('fork with pinned pages', () => {
  it("'early' (Linux 5.9+): the child gets a copy at fork and the parent keeps the pinned page", () => {
    const { k, parent, child, buf, pinned, device } = scenario('early');
    expect(parent.pagemap(buf).pfn).toBe(pinned);
    expect(child.pagemap(buf).pfn).not.toBe(pinned);
    expect(device()).toBe(2); // the device and the parent share the page
    expect(child.read(buf, 1)[0]).toBe(1);
    expect(k.checkInvariants()).toEqual([]);
  });

  it("'legacy' (before 5.9): the parent's write COW-breaks away from the pinned page", () => {
    const { k, parent, child, buf, pinned, device } = scenario('legacy');
    expect(parent.pagemap(buf).pfn).not.toBe(pinned);
    expect(child.pagemap(buf).pfn).toBe(pinned);
    expect(device()).toBe(1); // the device no longer sees what the parent writes
    expect(parent.read(buf, 1)[0]).toBe(2);
    expect(k.checkInvariants()).toEqual([]);
  });

  it('an unpinned page is shared copy-on-write in both modes', () => {
    for (const mode of ['early', 'legacy'] as const) {
      const k = createKernel({ memory: { nodes: [{ size: '128MiB' }] }, forkCow: mode });
      const p = k.spawn();
      const b = p.mmap(4096);
      p.write(b, new Uint8Array([5]));
      const c = p.fork();
      expect(c.pagemap(b).pfn).toBe(p.pagemap(b).pfn);
    }
  });
});
