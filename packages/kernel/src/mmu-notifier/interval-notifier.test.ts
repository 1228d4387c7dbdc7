import { describe, it, expect } from '@jest/globals';
import { createKernel } from '../plugin/create-kernel';
import { ERRNO } from '../uapi/errno';
import { PAGE_SIZE } from '../uapi/mman';
import { MMU_NOTIFY_EVENT_NAMES, type MmuNotifierRange } from '../mm/notifier-hooks';
import type { Process } from '../proc/process';
import {
  MmuIntervalNotifier,
  mmHasNotifiers,
  mmuIntervalCheckRetry,
  mmuIntervalNotifierInsert,
  mmuIntervalNotifierRemove,
  mmuIntervalReadBegin,
  mmuIntervalReadRetry,
  mmuIntervalSetSeq,
  type MmuIntervalNotifierOps,
} from './index';

/**
 * A minimal mirror in the style of an HMM/ODP driver: it copies the CPU's pfns of its interval
 * into a "device page table" under the read_begin / read_retry protocol, and drops them in
 * invalidate.
 */
class Mirror {
  readonly sub = new MmuIntervalNotifier();
  readonly spte = new Map<number, number>();
  readonly events: Array<[string, number, number]> = [];
  /** Run inside the next invalidate callback (to race a fault with an invalidation). */
  onInvalidate: (() => void) | null = null;
  readonly ops: MmuIntervalNotifierOps = {
    invalidate: (sub, range: Readonly<MmuNotifierRange>, curSeq) => {
      this.events.push([MMU_NOTIFY_EVENT_NAMES[range.event], range.start, range.end]);
      mmuIntervalSetSeq(sub, curSeq);
      for (const va of [...this.spte.keys()]) if (va >= range.start && va < range.end) this.spte.delete(va);
      const f = this.onInvalidate;
      this.onInvalidate = null;
      f?.();
      return true;
    },
  };

  constructor(
    readonly p: Process,
    readonly start: number,
    readonly length: number,
  ) {
    expect(mmuIntervalNotifierInsert(this.sub, p.mm, start, length, this.ops)).toBe(0);
  }

  /**
   * fault - hmm_range_fault-like: snapshot the pfns, then install them unless an invalidation
   * collided. `between` runs after the snapshot, before the retry check. Returns the tries used.
   */
  fault(between?: () => void): number {
    for (let tries = 1; ; tries++) {
      const seq = mmuIntervalReadBegin(this.sub);
      const snap = new Map<number, number>();
      for (let va = this.start; va < this.start + this.length; va += PAGE_SIZE) {
        this.p.touch(va, 1);
        snap.set(va, this.p.pagemap(va).pfn!);
      }
      if (tries === 1) between?.();
      if (mmuIntervalReadRetry(this.sub, seq)) continue;
      for (const [va, pfn] of snap) this.spte.set(va, pfn);
      return tries;
    }
  }
}

describe('mmu_interval_notifier', () => {
  it('is called only for invalidations that overlap its interval', () => {
    const k = createKernel();
    const p = k.spawn();
    const a = p.mmap(8 * PAGE_SIZE);
    p.write(a, new Uint8Array(8 * PAGE_SIZE).fill(1));
    const low = new Mirror(p, a, 2 * PAGE_SIZE);
    const high = new Mirror(p, a + 4 * PAGE_SIZE, 4 * PAGE_SIZE);
    p.munmap(a + 2 * PAGE_SIZE, 2 * PAGE_SIZE); // between them: nobody is called
    expect(low.events).toEqual([]);
    expect(high.events).toEqual([]);
    p.munmap(a + PAGE_SIZE, PAGE_SIZE); // overlaps low only
    expect(low.events).toEqual([['UNMAP', a + PAGE_SIZE, a + 2 * PAGE_SIZE]]);
    expect(high.events).toEqual([]);
    p.munmap(a + 7 * PAGE_SIZE, PAGE_SIZE); // the last page of high (its interval is inclusive)
    expect(high.events).toEqual([['UNMAP', a + 7 * PAGE_SIZE, a + 8 * PAGE_SIZE]]);
    expect(k.vmstat().mmu_interval_notifier_invalidations).toBe(2);
    mmuIntervalNotifierRemove(low.sub);
    mmuIntervalNotifierRemove(high.sub);
    expect(mmHasNotifiers(p.mm)).toBe(false);
    p.exit();
  });

  it('makes a read that overlaps an invalidation retry, and a clean read succeed at once', () => {
    const k = createKernel();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE).fill(2));
    const m = new Mirror(p, a, 4 * PAGE_SIZE);
    expect(m.fault()).toBe(1);
    const before = m.spte.get(a + PAGE_SIZE);
    expect(before).toBe(p.pagemap(a + PAGE_SIZE).pfn);
    // The CPU page moves while the mirror is between its snapshot and its commit.
    const tries = m.fault(() => p.madvise(a + PAGE_SIZE, PAGE_SIZE, 4 /* MADV_DONTNEED */));
    expect(tries).toBe(2);
    // The committed translation is the new one, never the stale pfn.
    expect(m.spte.get(a + PAGE_SIZE)).toBe(p.pagemap(a + PAGE_SIZE).pfn);
    expect(m.events.map((e) => e[0])).toEqual(['CLEAR']);
    mmuIntervalNotifierRemove(m.sub);
    p.exit();
    expect(k.checkInvariants()).toEqual([]);
  });

  it('follows the odd/even sequence protocol of mm/mmu_notifier.c', () => {
    const k = createKernel();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE));
    const m = new Mirror(p, a, PAGE_SIZE);
    const seq0 = mmuIntervalReadBegin(m.sub);
    expect(seq0 % 2).toBe(1); // odd, and not the (even) mm sequence
    expect(mmuIntervalReadRetry(m.sub, seq0)).toBe(false);
    let inside = -1;
    let threw = false;
    m.onInvalidate = () => {
      inside = m.sub.invalidateSeq;
      // read_begin during the invalidation would sleep until it ends: a callback deadlocks.
      try {
        mmuIntervalReadBegin(m.sub);
      } catch {
        threw = true;
      }
    };
    p.munmap(a, PAGE_SIZE);
    expect(inside % 2).toBe(1);
    expect(threw).toBe(true);
    expect(mmuIntervalCheckRetry(m.sub, seq0)).toBe(true);
    expect(mmuIntervalReadRetry(m.sub, seq0)).toBe(true);
    const seq1 = mmuIntervalReadBegin(m.sub);
    expect(seq1).toBe(inside);
    expect(mmuIntervalReadRetry(m.sub, seq1)).toBe(false);
    mmuIntervalNotifierRemove(m.sub);
    p.exit();
  });

  it('defers an insert made during an invalidation and reports it through the sequence', () => {
    const k = createKernel();
    const p = k.spawn();
    const a = p.mmap(4 * PAGE_SIZE);
    p.write(a, new Uint8Array(4 * PAGE_SIZE));
    const m = new Mirror(p, a, PAGE_SIZE);
    const late = new MmuIntervalNotifier();
    const lateOps: MmuIntervalNotifierOps = {
      invalidate: (s, _r, cur) => {
        mmuIntervalSetSeq(s, cur);
        return true;
      },
    };
    m.onInvalidate = () => {
      expect(mmuIntervalNotifierInsert(late, p.mm, a, 4 * PAGE_SIZE, lateOps)).toBe(0);
      expect(late.inTree).toBe(false);
    };
    p.munmap(a, PAGE_SIZE);
    expect(late.inTree).toBe(true);
    const seq = mmuIntervalReadBegin(late);
    expect(mmuIntervalReadRetry(late, seq)).toBe(false);
    mmuIntervalNotifierRemove(m.sub);
    mmuIntervalNotifierRemove(late);
    p.exit();
  });

  it('sees a RELEASE of the whole address space at exit', () => {
    const k = createKernel();
    const p = k.spawn();
    const a = p.mmap(2 * PAGE_SIZE);
    p.write(a, new Uint8Array([1]));
    const m = new Mirror(p, a, 2 * PAGE_SIZE);
    m.fault();
    p.exit();
    expect(m.events.length).toBe(1);
    expect(m.events[0][0]).toBe('RELEASE');
    expect(m.spte.size).toBe(0);
    mmuIntervalNotifierRemove(m.sub); // allowed after exit
  });

  it('validates its arguments', () => {
    const k = createKernel();
    const p = k.spawn();
    const ops: MmuIntervalNotifierOps = { invalidate: () => true };
    const s = new MmuIntervalNotifier();
    expect(mmuIntervalNotifierInsert(s, p.mm, 0x10000, 0, ops)).toBe(-ERRNO.EOVERFLOW);
    expect(mmuIntervalNotifierInsert(s, p.mm, -1, 10, ops)).toBe(-ERRNO.EINVAL);
    expect(mmuIntervalNotifierInsert(s, p.mm, 0x10000, PAGE_SIZE, ops)).toBe(0);
    expect(mmuIntervalNotifierInsert(s, p.mm, 0x10000, PAGE_SIZE, ops)).toBe(-ERRNO.EBUSY);
    mmuIntervalNotifierRemove(s);
    const mm = p.mm;
    p.exit();
    expect(mmuIntervalNotifierInsert(new MmuIntervalNotifier(), mm, 0x10000, PAGE_SIZE, ops)).toBe(
      -ERRNO.EINVAL,
    );
  });
});
