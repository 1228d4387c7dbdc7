import { describe, expect, it } from '@jest/globals';
import { EventQueueScheduler } from './scheduler';

describe('EventQueueScheduler', () => {
  it('fires events in (time, seq) order, equal times in scheduling order', () => {
    const s = new EventQueueScheduler();
    const log: string[] = [];
    const push = (arg: unknown): void => {
      log.push(`${s.now()}:${arg as string}`);
    };
    s.at(20, push, 'c');
    s.at(10, push, 'a');
    s.at(20, push, 'd');
    s.at(10, push, 'b');
    s.after(0, push, 'z');
    s.at(20, push, 'e');
    s.runUntil(100);
    expect(log).toEqual(['0:z', '10:a', '10:b', '20:c', '20:d', '20:e']);
    expect(s.now()).toBe(100);
  });

  it('orders an event scheduled from a callback after those already due at the same time', () => {
    const s = new EventQueueScheduler();
    const log: string[] = [];
    s.at(5, () => {
      log.push('first');
      s.after(0, () => log.push('scheduled-during-first'));
    });
    s.at(5, () => log.push('second'));
    s.runUntil(5);
    expect(log).toEqual(['first', 'second', 'scheduled-during-first']);
  });

  it('rounds times to integer nanoseconds', () => {
    const s = new EventQueueScheduler();
    const seen: number[] = [];
    s.at(10.4, () => seen.push(s.now()));
    s.after(10.6, () => seen.push(s.now()));
    s.runUntil(Infinity);
    expect(seen).toEqual([10, 11]);
  });

  it('cancels pending events', () => {
    const s = new EventQueueScheduler();
    const log: number[] = [];
    const ids = [1, 2, 3, 4].map((t) => s.at(t, () => log.push(t)));
    expect(s.pending()).toBe(4);
    expect(s.cancel(ids[1])).toBe(true);
    expect(s.cancel(ids[1])).toBe(false);
    expect(s.pending()).toBe(3);
    expect(s.cancel(ids[0])).toBe(true);
    expect(s.nextEventTime()).toBe(3);
    s.runUntil(10);
    expect(log).toEqual([3, 4]);
    expect(s.cancel(ids[2])).toBe(false);
    expect(s.nextEventTime()).toBe(Infinity);
  });

  it('step fires one event and advances the clock to it', () => {
    const s = new EventQueueScheduler();
    let fired = 0;
    s.at(7, () => fired++);
    s.at(9, () => fired++);
    expect(s.step()).toBe(true);
    expect([s.now(), fired]).toEqual([7, 1]);
    expect(s.step()).toBe(true);
    expect(s.step()).toBe(false);
    expect(s.now()).toBe(9);
  });

  it('runUntil never moves the clock backwards', () => {
    const s = new EventQueueScheduler();
    s.runUntil(100);
    s.runUntil(50);
    expect(s.now()).toBe(100);
    s.at(120, () => undefined);
    s.runUntil(110);
    expect([s.now(), s.pending()]).toEqual([110, 1]);
    s.runUntil(Infinity);
    expect(s.now()).toBe(120);
  });

  it('rejects NaN, negative delays and times in the past', () => {
    const s = new EventQueueScheduler();
    s.runUntil(100);
    const fn = (): void => undefined;
    expect(() => s.at(99, fn)).toThrow(RangeError);
    expect(() => s.at(NaN, fn)).toThrow(RangeError);
    expect(() => s.at(Infinity, fn)).toThrow(RangeError);
    expect(() => s.after(-1, fn)).toThrow(RangeError);
    expect(() => s.after(NaN, fn)).toThrow(RangeError);
    expect(() => s.runUntil(NaN)).toThrow(RangeError);
    expect(s.pending()).toBe(0);
  });

  it('lets a throwing callback propagate and keeps the queue consistent', () => {
    const s = new EventQueueScheduler();
    const log: string[] = [];
    s.at(1, () => {
      throw new Error('boom');
    });
    s.at(2, () => log.push('later'));
    expect(() => s.runUntil(10)).toThrow('boom');
    expect(s.now()).toBe(1);
    s.runUntil(10);
    expect(log).toEqual(['later']);
  });
});

describe('background events', () => {
  it('fire in order with foreground events but do not keep runUntilIdle going', async () => {
    const { EventQueueScheduler } = await import('./scheduler');
    const { TaskRunner } = await import('./task');
    const s = new EventQueueScheduler();
    const runner = new TaskRunner(s);
    const log: string[] = [];
    const tick = () => {
      log.push(`bg@${s.now()}`);
      s.background!(100, tick);
    };
    s.background!(100, tick);
    s.after(250, () => log.push(`fg@${s.now()}`));
    expect(s.pending()).toBe(1);
    await runner.runUntilIdle();
    expect(log).toEqual(['bg@100', 'bg@200', 'fg@250']);
    expect(s.pending()).toBe(0);
    await runner.runFor(200);
    expect(log.slice(3)).toEqual(['bg@300', 'bg@400']);
    expect(s.now()).toBe(450);
  });
});
