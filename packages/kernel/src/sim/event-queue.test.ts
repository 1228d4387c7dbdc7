import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { EventQueue } from './event-queue';

const noop = (): void => undefined;

describe('EventQueue', () => {
  it('pops by time, then by push order for equal times', () => {
    const q = new EventQueue();
    const times = [5, 1, 5, 3, 1, 0, 5, 3];
    times.forEach((t, i) => q.push(t, noop, i));
    const out: Array<[number, unknown]> = [];
    while (q.pop() !== null) out.push([q.poppedTime, q.poppedArg]);
    expect(out).toEqual([
      [0, 5],
      [1, 1],
      [1, 4],
      [3, 3],
      [3, 7],
      [5, 0],
      [5, 2],
      [5, 6],
    ]);
  });

  it('cancels a pending event exactly once and never a fired one', () => {
    const q = new EventQueue();
    const a = q.push(1, noop, 'a');
    const b = q.push(2, noop, 'b');
    expect(q.cancel(b)).toBe(true);
    expect(q.cancel(b)).toBe(false);
    expect(q.pop()).toBe(noop);
    expect(q.cancel(a)).toBe(false);
    // The recycled slot hands out a new id; the stale ones stay dead.
    const c = q.push(3, noop, 'c');
    expect(c).not.toBe(a);
    expect(c).not.toBe(b);
    expect(q.cancel(a)).toBe(false);
    expect(q.cancel(b)).toBe(false);
    expect(q.size).toBe(1);
    expect(q.cancel(0)).toBe(false);
    expect(q.cancel(-1)).toBe(false);
    expect(q.cancel(1.5)).toBe(false);
  });

  it('grows past its initial capacity', () => {
    const q = new EventQueue();
    for (let i = 999; i >= 0; i--) q.push(i, noop, i);
    for (let i = 0; i < 1000; i++) {
      q.pop();
      expect(q.poppedArg).toBe(i);
    }
    expect(q.pop()).toBeNull();
    expect(q.peekTime()).toBe(Infinity);
  });

  it('matches a sorted-list model under random push, pop and cancel', () => {
    type Op = { kind: 'push'; time: number } | { kind: 'pop' } | { kind: 'cancel'; pick: number };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), time: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant('pop' as const) }),
      fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops: Op[]) => {
        const q = new EventQueue();
        let seq = 0;
        const model: Array<{ time: number; seq: number; id: number }> = [];
        const issued: number[] = [];
        for (const o of ops) {
          if (o.kind === 'push') {
            const id = q.push(o.time, noop, seq);
            model.push({ time: o.time, seq, id });
            issued.push(id);
            seq++;
          } else if (o.kind === 'pop') {
            model.sort((x, y) => x.time - y.time || x.seq - y.seq);
            const want = model.shift();
            const fn = q.pop();
            if (want === undefined) expect(fn).toBeNull();
            else expect([q.poppedTime, q.poppedArg]).toEqual([want.time, want.seq]);
          } else if (issued.length > 0) {
            const id = issued[o.pick % issued.length];
            const i = model.findIndex((e) => e.id === id);
            expect(q.cancel(id)).toBe(i >= 0);
            if (i >= 0) model.splice(i, 1);
          }
          expect(q.size).toBe(model.length);
          expect(q.peekTime()).toBe(model.length ? Math.min(...model.map((e) => e.time)) : Infinity);
        }
      }),
    );
  });
});
